//! Exactness against the homework's own PyTorch code (`hw2-q2.py`), run on this machine kind
//! with one thread on the Fashion-MNIST substitute (the workplace's `shared/reference`, see
//! its README): the same seed gives the same initial weights and the same training losses,
//! bit for bit.

use std::collections::HashMap;

use tch::{nn, Device, Tensor};
use vision::dataset::{Dataset, Layout};
use vision::model::{Cnn, CnnConfig};
use vision::train::{first_losses, TrainConfig};

fn reference(run: &str, file: &str) -> std::path::PathBuf {
    datasets::local::reference_file(run, file).unwrap_or_else(|e| panic!("{e}"))
}

fn models() -> [(CnnConfig, &'static str); 2] {
    let nchw = |c: CnnConfig| CnnConfig {
        kernels: vision::kernels::Kernels::Reference,
        ..c
    };
    [
        (nchw(CnnConfig::model_2_2()), "q2-2.2-lr0.01"),
        (nchw(CnnConfig::model_2_1()), "q2-2.1-lr0.01"),
    ]
}

#[test]
fn initial_weights_are_the_homeworks_bit_for_bit() {
    let _generator = torchkit::rng::exclusive();
    for (config, run) in models() {
        let want: HashMap<String, Tensor> =
            Tensor::read_safetensors(reference(run, "init.safetensors"))
                .unwrap()
                .into_iter()
                .filter(|(k, _)| !k.ends_with("num_batches_tracked")) // tch keeps no such counter
                .collect();
        torchkit::rng::seed(42);
        let vs = nn::VarStore::new(Device::Cpu);
        let _net = Cnn::new(&vs.root(), &config);
        let vars = vs.variables();
        assert_eq!(vars.len(), want.len(), "{run}: the same tensors");
        for (name, t) in &want {
            let ours = vars
                .get(name)
                .unwrap_or_else(|| panic!("{run}: we have no {name}"));
            assert!(ours.equal(t), "{run}: {name} differs");
        }
    }
}

#[test]
fn the_first_fifty_training_losses_are_the_homeworks() {
    let _generator = torchkit::rng::exclusive();
    let npz = datasets::local::fashion6().unwrap_or_else(|e| panic!("{e}"));
    let data = Dataset::load(&npz, Layout::Skeleton).unwrap();
    for (model, run) in models() {
        let committed = std::path::PathBuf::from(format!(
            "{}/tests/data/{run}-losses.txt",
            env!("CARGO_MANIFEST_DIR")
        ));
        let want =
            datasets::local::reference_losses(run, &committed).unwrap_or_else(|e| panic!("{e}"));
        torchkit::rng::seed(42);
        let config = TrainConfig {
            exact: true,
            learning_rate: 0.01,
            ..TrainConfig::default()
        };
        let ours = first_losses(&model, &config, &data, 50);
        // Elsewhere than on the reference's CPU kind: the first three losses (the forward
        // pass, one backward pass and SGD step, and another) within 1e-6. Later ones drift
        // apart: batch norm over 8 images amplifies a last-bit difference (an Intel Xeon:
        // 3.7e-5 at batch 8, 1e-2 by batch 12 for 2.2; 2.1 stayed equal).
        want.assert_matches(run, &ours, 3, 1e-6);
    }
}

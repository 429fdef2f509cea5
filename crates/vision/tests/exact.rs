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
        channels_last_memory: false,
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
        let text = std::fs::read_to_string(format!(
            "{}/tests/data/{run}-losses.txt",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let want: Vec<f32> = text
            .lines()
            .filter_map(|l| l.strip_prefix("train "))
            .map(|v| v.parse::<f64>().unwrap() as f32)
            .collect();
        torchkit::rng::seed(42);
        let config = TrainConfig {
            exact: true,
            learning_rate: 0.01,
            ..TrainConfig::default()
        };
        let ours = first_losses(&model, &config, &data, 50);
        for (i, (a, b)) in ours.iter().zip(&want).enumerate() {
            // `%.9g` identifies a float32: equal digits, equal value.
            assert_eq!(*a as f32, *b, "{run}: batch {} ({a} against {b})", i + 1);
        }
    }
}

//! Exactness against the homework's own PyTorch code, run on this machine kind with one
//! thread (`../shared/reference`, see its README): the same seed gives the same initial
//! weights, bit for bit.

mod common;

use std::collections::HashMap;

use tch::Tensor;

fn reference(run: &str, file: &str) -> std::path::PathBuf {
    datasets::local::reference_file(run, file).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn initial_weights_are_the_homeworks_bit_for_bit() {
    let _generator = torchkit::rng::exclusive();
    let d = common::data();
    for (attention, run) in [(false, "q3-no-attn"), (true, "q3-attn")] {
        let want: HashMap<String, Tensor> =
            Tensor::read_safetensors(reference(run, "init.safetensors"))
                .unwrap()
                .into_iter()
                .collect();
        torchkit::rng::seed(42);
        let model = d.model(128, 0.3, attention, tch::Device::Cpu);
        let vars = model.vs.variables();
        let mut names: Vec<&String> = want.keys().collect();
        names.sort();
        for name in names {
            let ours = if name == "generator.weight" {
                &vars["decoder.embedding.weight"]
            } else {
                vars.get(name)
                    .unwrap_or_else(|| panic!("{run}: we have no {name}"))
            };
            assert!(ours.equal(&want[name]), "{run}: {name} differs");
        }
        assert_eq!(vars.len() + 1, want.len(), "{run}: the same tensors");
    }
}

/// The reference's training losses (`losses.txt`: `train %.9g` per batch).
fn reference_losses(run: &str, n: usize) -> Vec<f32> {
    let text = std::fs::read_to_string(
        env!("CARGO_MANIFEST_DIR").to_string() + "/tests/data/" + run + "-losses.txt",
    )
    .unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("train "))
        .take(n)
        .map(|v| v.parse::<f64>().unwrap() as f32)
        .collect()
}

#[test]
fn the_first_fifty_training_losses_are_the_homeworks() {
    let _generator = torchkit::rng::exclusive();
    let d = common::data();
    let data = d.train_data();
    for (attention, run) in [(false, "q3-no-attn"), (true, "q3-attn")] {
        torchkit::rng::seed(42);
        let mut model = d.model(128, 0.3, attention, tch::Device::Cpu);
        let config = seq2seq::train::TrainConfig {
            exact: true,
            ..Default::default()
        };
        let ours =
            seq2seq::train::first_losses(&mut model, &data, &config, tch::Device::Cpu, 50).unwrap();
        let want = reference_losses(run, 50);
        for (i, (a, b)) in ours.iter().zip(&want).enumerate() {
            // `%.9g` identifies a float32: equal digits, equal value.
            assert_eq!(*a as f32, *b, "{run}: batch {} ({a} against {b})", i + 1);
        }
    }
}

//! The fast backend against the readable model, on the seed report's trained weights and
//! real batches: the same loss and gradients, the same greedy words.

mod common;

use seq2seq::batch::{Batch, Encoded};
use seq2seq::decode::Strategy;
use seq2seq::kernels::Kernels;
use seq2seq::model::{HopfieldConfig, Model, ModelConfig};
use tch::{Device, Tensor};
use torchkit::rng::exclusive;

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// Loss and every parameter's gradient (dropout off, so both compute one function): the
/// fast backend's packed LSTMs with hand-written backward passes, attention of scored rows
/// and generator at scored positions against the homework's step-by-step model under
/// autograd. Tolerances: loss 1e-5, gradients 1e-4 of each tensor's largest entry.
#[test]
fn fast_loss_and_gradients_equal_the_readable_models() {
    let _generator = exclusive();
    let d = common::data();
    // The seed checkpoints, and a freshly drawn model with the Hopfield head (two steps,
    // β learned): the fast backend runs that head's readable code on the scored rows.
    let hopfield = || {
        torchkit::rng::seed(5);
        let config = ModelConfig {
            hopfield: Some(HopfieldConfig {
                steps: 2,
                learn_beta: true,
            }),
            ..common::config(&d, true)
        };
        Model::new(&config, Device::Cpu)
    };
    for (attention, model) in [
        ("none", common::seed_model(&d, false)),
        ("Bahdanau", common::seed_model(&d, true)),
        ("Hopfield", hopfield()),
    ] {
        let items: Vec<&Encoded> = d.train[..64].iter().collect();
        let batch = Batch::new(&items, Device::Cpu);
        let run = |kernels: Kernels| {
            let loss = kernels.loss(&model.net, &batch, false);
            let value = loss.value.double_value(&[]);
            loss.backward();
            let mut grads = model.vs.variables().into_iter().collect::<Vec<_>>();
            grads.sort_by(|a, b| a.0.cmp(&b.0));
            let grads: Vec<(String, Tensor)> = grads
                .into_iter()
                .map(|(name, p)| {
                    let g = p.grad().copy();
                    let _ = p.grad().zero_();
                    (name, g)
                })
                .collect();
            (value, grads)
        };
        let (reference, reference_grads) = run(Kernels::Reference);
        let (fast, fast_grads) = run(Kernels::Fast);
        assert!(
            (reference - fast).abs() < 1e-5,
            "attention {attention}: loss {fast} against the reference's {reference}"
        );
        assert_eq!(
            reference_grads.len(),
            match attention {
                "none" => 15,
                "Bahdanau" => 19,
                _ => 20,
            }
        );
        for ((name, a), (_, b)) in reference_grads.iter().zip(&fast_grads) {
            let scale = a.abs().max().double_value(&[]);
            assert!(scale > 0.0, "{name} received no gradient");
            assert!(
                max_diff(a, b) <= 1e-4 * scale,
                "attention {attention}: {name}'s gradients differ by {} (largest {scale})",
                max_diff(a, b)
            );
        }
    }
}

/// Batched decoding (finished rows leaving the batch) spells what the homework's
/// word-by-word `generate` spells.
#[test]
fn batched_greedy_decoding_spells_the_reference_words() {
    let _generator = exclusive();
    let d = common::data();
    for attention in [false, true] {
        let model = common::seed_model(&d, attention);
        let words = &d.test[..200];
        let decode = |kernels: Kernels| {
            kernels
                .predict(
                    &model.net,
                    words,
                    &d.vocabs.tgt,
                    Strategy::Greedy,
                    50,
                    64,
                    Device::Cpu,
                )
                .unwrap()
        };
        let (reference, fast) = (decode(Kernels::Reference), decode(Kernels::Fast));
        assert_eq!(reference.len(), 200);
        let differ: Vec<_> = reference
            .iter()
            .zip(&fast)
            .filter(|(a, b)| a != b)
            .collect();
        assert!(differ.is_empty(), "attention {attention}: {differ:?}");
        // Not a degenerate model: most words are spelled out.
        assert!(reference.iter().filter(|w| w.len() > 2).count() > 150);
    }
}

/// Beam search is the fast backend's alone, and the reference says so.
#[test]
fn the_reference_has_no_beam_search() {
    let _generator = exclusive();
    let d = common::data();
    let model = common::seed_model(&d, true);
    let err = Kernels::Reference
        .predict(
            &model.net,
            &d.test[..2],
            &d.vocabs.tgt,
            Strategy::Beam { width: 2 },
            50,
            64,
            Device::Cpu,
        )
        .unwrap_err();
    assert!(err.to_string().contains("--exact"), "{err}");
}

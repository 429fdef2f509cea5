//! Properties of the model and decoders on real data: masking, packing, decoders agreeing
//! where they must, checkpoints, and a short real training run. (The fast backend against
//! the readable model: `backends.rs`.)
//!
//! Every test draws from libtorch's global generator (initialisation at least), and the
//! training run's outcome depends on its exact draws after seeding: each test holds
//! [`exclusive`] so that no test draws in the middle of another's.

mod common;

use seq2seq::batch::{Batch, Encoded};
use seq2seq::decode::{decode, Strategy};
use seq2seq::fast::attention::{attend, keys};
use seq2seq::fast::encoder::encode;
use seq2seq::model::{BahdanauAttention, Model};
use tch::{nn, Device, Kind, Tensor};
use torchkit::rng::exclusive;

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// A random attention layer (H = 16) with encoder outputs (3 × 5, source lengths 5, 2, 3),
/// their source mask and queries (3 × 4).
fn attention_case() -> (nn::VarStore, BahdanauAttention, Tensor, Tensor, Tensor) {
    let vs = nn::VarStore::new(Device::Cpu);
    let attn = BahdanauAttention::new(&vs.root(), 16);
    let enc = Tensor::randn([3, 5, 16], (Kind::Float, Device::Cpu));
    let query = Tensor::randn([3, 4, 16], (Kind::Float, Device::Cpu));
    let mask = seq2seq::batch::source_mask(&Tensor::from_slice(&[5i64, 2, 3]), Device::Cpu);
    (vs, attn, enc, query, mask)
}

#[test]
fn attention_gives_padding_zero_weight() {
    let _generator = exclusive();
    let (_vs, attn, enc, query, mask) = attention_case();
    let (_, weights) = attend(&attn, &query, &enc, &keys(&attn, &enc), &mask, None);
    let padded = weights.masked_select(&mask.logical_not().unsqueeze(1).expand([3, 4, 5], true));
    assert_eq!(padded.numel(), 4 * (3 + 2));
    assert_eq!(padded.abs().sum(Kind::Float).double_value(&[]), 0.0);
    let sums = weights.sum_dim_intlist(-1, false, Kind::Float);
    assert!(max_diff(&sums, &sums.ones_like()) < 1e-6);
    // Changing what sits at padded positions changes nothing.
    let noisy = enc.where_self(&mask.unsqueeze(-1), &(enc.randn_like() * 100.0));
    let (a, _) = attend(&attn, &query, &enc, &keys(&attn, &enc), &mask, None);
    let (b, _) = attend(&attn, &query, &noisy, &keys(&attn, &noisy), &mask, None);
    assert!(max_diff(&a, &b) < 1e-6);
}

#[test]
fn attention_on_real_queries_only_matches_dense_attention() {
    let _generator = exclusive();
    let (vs, attn, enc, query, mask) = attention_case();
    let query_mask = seq2seq::batch::source_mask(&Tensor::from_slice(&[2i64, 4, 1]), Device::Cpu);
    // The gradient of a loss that reads real query positions only, under both ways.
    let run = |qm: Option<&Tensor>| {
        let (out, weights) = attend(&attn, &query, &enc, &keys(&attn, &enc), &mask, qm);
        let keep = query_mask.unsqueeze(-1).to_kind(Kind::Float);
        (&out * &keep).sum(Kind::Float).backward();
        let grads: Vec<Tensor> = vs
            .trainable_variables()
            .iter()
            .map(|p| p.grad().copy())
            .collect();
        for p in vs.trainable_variables() {
            let _ = p.grad().zero_();
        }
        (out * &keep, weights * keep, grads)
    };
    let (dense, dense_w, dense_g) = run(None);
    let (sparse, sparse_w, sparse_g) = run(Some(&query_mask));
    assert!(max_diff(&dense, &sparse) < 1e-6);
    assert!(max_diff(&dense_w, &sparse_w) < 1e-6);
    for (a, b) in dense_g.iter().zip(&sparse_g) {
        assert!(a.abs().sum(Kind::Float).double_value(&[]) > 0.0);
        assert!(
            max_diff(a, b) < 1e-5,
            "gradients differ by {}",
            max_diff(a, b)
        );
    }
    // Skipped query rows stay finite, so no NaN can reach the backward pass.
    let (out, _) = attend(
        &attn,
        &query,
        &enc,
        &keys(&attn, &enc),
        &mask,
        Some(&query_mask),
    );
    assert_eq!(out.isfinite().all().int64_value(&[]), 1);
}

#[test]
fn packed_encoder_ignores_extra_padding_and_batch_order() {
    let _generator = exclusive();
    let d = common::data();
    let model = common::seed_model(&d, true);
    let items: Vec<&Encoded> = d.test[..16].iter().collect();
    let batch = Batch::new(&items, Device::Cpu);
    let enc = encode(&model.net.encoder, &batch.src, &batch.src_lengths, false);
    let wider = Tensor::cat(&[&batch.src, &batch.src.zeros_like().narrow(1, 0, 4)], 1);
    let enc2 = encode(&model.net.encoder, &wider, &batch.src_lengths, false);
    assert_eq!(enc.outputs.size(), enc2.outputs.size());
    assert!(max_diff(&enc.outputs, &enc2.outputs) < 1e-6);
    assert!(max_diff(&enc.h, &enc2.h) < 1e-6 && max_diff(&enc.c, &enc2.c) < 1e-6);
    // Each row alone: the same states as inside the padded batch.
    for (i, item) in items.iter().enumerate().step_by(5) {
        let single = Batch::new(&[item], Device::Cpu);
        let e = encode(&model.net.encoder, &single.src, &single.src_lengths, false);
        let len = item.src.len() as i64;
        assert!(
            max_diff(
                &e.outputs.get(0),
                &enc.outputs.get(i as i64).narrow(0, 0, len)
            ) < 1e-5
        );
        assert!(max_diff(&e.h.select(1, 0), &enc.h.select(1, i as i64)) < 1e-5);
    }
    // Outputs at padding are exactly zero.
    let short = (0..16)
        .find(|&i| (items[i].src.len() as i64) < enc.outputs.size()[1])
        .unwrap();
    let pad_out = enc
        .outputs
        .get(short as i64)
        .narrow(0, items[short].src.len() as i64, 1);
    assert_eq!(pad_out.abs().sum(Kind::Float).double_value(&[]), 0.0);
}

#[test]
fn nucleus_with_tiny_p_and_beam_of_one_are_greedy() {
    let _generator = exclusive();
    let d = common::data();
    let model = common::seed_model(&d, true);
    let items: Vec<&Encoded> = d.test[..300].iter().collect();
    let batch = Batch::new(&items, Device::Cpu);
    let greedy = decode(&model.net, &batch, Strategy::Greedy, 50);
    assert_eq!(
        decode(&model.net, &batch, Strategy::Nucleus { p: 1e-9 }, 50),
        greedy
    );
    assert_eq!(
        decode(&model.net, &batch, Strategy::Beam { width: 1 }, 50),
        greedy
    );
    let wide = decode(&model.net, &batch, Strategy::Beam { width: 4 }, 50);
    assert_eq!(wide.len(), greedy.len());
    assert!(wide
        .iter()
        .all(|h| h.last() == Some(&seq2seq::vocab::EOS) || h.len() == 50));
}

#[test]
fn checkpoint_round_trip_keeps_predictions_and_pytorch_names() {
    let _generator = exclusive();
    let d = common::data();
    let model = common::seed_model(&d, false);
    let path = std::env::temp_dir().join(format!("p2g-rt-{}.safetensors", std::process::id()));
    model.save(&path).unwrap();
    let names: Vec<String> = Tensor::read_safetensors(&path)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(
        names.contains(&"generator.weight".to_string())
            && names.contains(&"encoder.lstm.weight_hh_l0_reverse".to_string())
    );
    let mut again = Model::new(&common::config(&d, false), Device::Cpu);
    again.load(&path).unwrap();
    let items: Vec<&Encoded> = d.test[..100].iter().collect();
    let batch = Batch::new(&items, Device::Cpu);
    assert_eq!(
        decode(&model.net, &batch, Strategy::Greedy, 50),
        decode(&again.net, &batch, Strategy::Greedy, 50)
    );
    // A no-attention checkpoint does not load into an attention model, and says why: the
    // two models' options and the missing tensor.
    let mut attn = Model::new(&common::config(&d, true), Device::Cpu);
    let err = format!("{:#}", attn.load(&path).unwrap_err());
    assert!(
        err.contains("\"attention\":false")
            && err.contains("--use-attn")
            && err.contains("decoder.attn"),
        "{err}"
    );
    std::fs::remove_file(path).unwrap();
}

#[test]
fn short_training_on_real_lines_lowers_the_loss() {
    let _generator = exclusive();
    let d = common::data();
    torchkit::rng::seed(42);
    let mut model = Model::new(&common::config(&d, true), Device::Cpu);
    let (out, dir) = common::train_briefly(&d, &mut model, "p2g-train");
    let losses: Vec<f64> = out.epochs.iter().map(|r| r.train_loss).collect();
    assert!(losses[2] < losses[0] * 0.8, "loss did not fall: {losses:?}");
    assert!(dir.join("m.safetensors").exists());
    assert_eq!(
        std::fs::read_to_string(dir.join("m.csv"))
            .unwrap()
            .lines()
            .count(),
        4
    );
    // A model that has learned nothing scores CER ≥ 1 (wrong or overlong words); 22 seeds
    // gave best validation CERs of 0.63–0.82 after these 3 epochs.
    let val_cers: Vec<f64> = out.epochs.iter().map(|r| r.val_cer).collect();
    assert!(
        out.best_val_cer < 0.9,
        "validation CER per epoch: {val_cers:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

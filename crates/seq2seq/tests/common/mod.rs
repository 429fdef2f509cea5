//! Shared set-up of the integration tests: the homework's Q3 data and the seed report's
//! PyTorch checkpoints, found by `datasets::local` (`cargo xtask test` fetches them into
//! `data/` first). A missing file fails the test with one sentence saying how to get it;
//! nothing is skipped silently.

#![allow(dead_code)]

use std::path::PathBuf;

use seq2seq::corpus::Corpus;
use seq2seq::model::{Model, ModelConfig};

/// Folder with the homework's train/valid/test TSV files.
pub fn data_dir() -> PathBuf {
    datasets::local::p2g_dir().unwrap_or_else(|e| panic!("{e}"))
}

/// A seed-report checkpoint as the homework saved it (`seed-attn` or `seed-no-attn`), `.pt`.
pub fn seed_checkpoint(name: &str) -> PathBuf {
    let dir = datasets::local::checkpoints_dir().unwrap_or_else(|e| panic!("{e}"));
    dir.join(format!("{name}.pt"))
}

/// The real data, encoded.
pub fn data() -> Corpus {
    Corpus::read(data_dir()).unwrap()
}

/// The homework's model options for this data.
pub fn config(d: &Corpus, attention: bool) -> ModelConfig {
    d.model_config(128, 0.3, attention)
}

/// A model with a seed checkpoint loaded.
pub fn seed_model(d: &Corpus, attention: bool) -> Model {
    let mut m = d.model(128, 0.3, attention, tch::Device::Cpu);
    m.load(seed_checkpoint(if attention {
        "seed-attn"
    } else {
        "seed-no-attn"
    }))
    .unwrap();
    m
}

/// Three epochs of `model` on the first 1,280 real training lines (validation: 100 test
/// lines) into a fresh folder named after `name`; returns the outcome and the folder.
pub fn train_briefly(
    d: &Corpus,
    model: &mut Model,
    name: &str,
) -> (seq2seq::train::TrainOutcome, PathBuf) {
    use seq2seq::train::{train, RunFiles, TrainConfig, TrainData};
    let data = TrainData {
        train: &d.train[..1280],
        valid: &d.test[..100],
        valid_gold: &d.test_gold[..100],
        tgt_vocab: &d.vocabs.tgt,
        sha256: &d.sha256,
    };
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let files = RunFiles {
        checkpoint: dir.join("m.safetensors"),
        log_csv: dir.join("m.csv"),
        replace: true,
        outcome: None,
    };
    let config = TrainConfig {
        epochs: 3,
        ..TrainConfig::default()
    };
    let out = train(model, &data, &config, &files, tch::Device::Cpu).unwrap();
    (out, dir)
}

//! Shared set-up of the integration tests: the real homework data and seed checkpoints,
//! which live in the workplace's `shared/` folder beside the repository (or `P2G_DIR` /
//! `SEED_CHECKPOINTS`). Missing files fail the tests with instructions; they are never
//! skipped silently.

#![allow(dead_code)]

use std::path::PathBuf;

use seq2seq::corpus::Corpus;
use seq2seq::model::{Model, ModelConfig};

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// Folder with the homework's train/valid/test TSV files.
pub fn data_dir() -> PathBuf {
    let dir = std::env::var_os("P2G_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| shared().join("data/p2g"));
    assert!(
        dir.join("train.tsv").exists(),
        "the Q3 data is not at {} — set P2G_DIR to a folder with train.tsv, valid.tsv, test.tsv (e.g. data/p2g after `cargo xtask reproduce --only q3`)",
        dir.display()
    );
    dir
}

/// A seed-report checkpoint (`seed-attn` or `seed-no-attn`).
pub fn seed_checkpoint(name: &str) -> PathBuf {
    let dir = std::env::var_os("SEED_CHECKPOINTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| shared().join("checkpoints"));
    let path = dir.join(format!("{name}.safetensors"));
    assert!(
        path.exists(),
        "seed checkpoint {} missing — set SEED_CHECKPOINTS to the folder holding it",
        path.display()
    );
    path
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
    let mut m = Model::new(&config(d, attention), tch::Device::Cpu);
    m.load(seed_checkpoint(if attention {
        "seed-attn"
    } else {
        "seed-no-attn"
    }))
    .unwrap();
    m
}

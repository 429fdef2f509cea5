//! The options of a training run (the homework's defaults), the data it reads and where it
//! writes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::batch::Encoded;
use crate::vocab::Vocab;

/// Training hyper-parameters (the homework's defaults).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainConfig {
    /// Adam learning rate (0.003).
    pub lr: f64,
    /// Epochs (20).
    pub epochs: usize,
    /// Examples per batch (64), shuffled every epoch.
    pub batch_size: usize,
    /// Longest decoded output (50).
    pub max_len: usize,
    /// Decoder rows at once when decoding (validation and test): bounds memory.
    pub eval_batch_size: usize,
    /// The seed the caller seeded libtorch with.
    pub seed: u64,
    /// Follow the homework's code op for op and draw for draw ([`crate::exact`]).
    #[serde(default)]
    pub exact: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            lr: 0.003,
            epochs: 20,
            batch_size: 64,
            max_len: 50,
            eval_batch_size: 1000,
            seed: 42,
            exact: false,
        }
    }
}

/// The data a run needs.
pub struct TrainData<'a> {
    /// Encoded training examples.
    pub train: &'a [Encoded],
    /// Encoded validation examples.
    pub valid: &'a [Encoded],
    /// Raw validation spellings.
    pub valid_gold: &'a [String],
    /// Target vocabulary, to turn ids into strings.
    pub tgt_vocab: &'a Vocab,
    /// SHA-256 of the files the examples came from (a resume point must match it).
    pub sha256: &'a str,
}

/// Where a run writes: the best checkpoint and the per-epoch CSV (its resume files go
/// beside the checkpoint).
#[derive(Debug, Clone)]
pub struct RunFiles {
    /// The best checkpoint (safetensors).
    pub checkpoint: PathBuf,
    /// The per-epoch CSV.
    pub log_csv: PathBuf,
    /// Replace a finished run or a checkpoint of other options instead of refusing.
    pub replace: bool,
    /// The outcome record the caller writes afterwards, if any.
    pub outcome: Option<PathBuf>,
}

impl RunFiles {
    /// The homework's layout: the CSV beside the checkpoint as `<stem>_epochs.csv`.
    pub fn beside(checkpoint: &Path, replace: bool) -> Self {
        let stem = checkpoint.file_stem().unwrap_or_default().to_string_lossy();
        Self {
            log_csv: checkpoint.with_file_name(format!("{stem}_epochs.csv")),
            checkpoint: checkpoint.to_path_buf(),
            replace,
            outcome: None,
        }
    }
}

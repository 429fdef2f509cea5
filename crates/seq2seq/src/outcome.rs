//! What a training run produced: its per-epoch rows and the record of the finished run.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;

/// One line of the per-epoch CSV log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRow {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Loss of the epoch's last batch (what the homework prints).
    pub last_batch_loss: f64,
    /// Greedy validation CER.
    pub val_cer: f64,
    /// Greedy validation WER (exact match).
    pub val_wer: f64,
    /// Whether this epoch's weights became the best checkpoint.
    pub best: bool,
    /// Seconds spent on training batches.
    pub train_seconds: f64,
    /// Seconds spent decoding the validation set.
    pub val_decode_seconds: f64,
}

/// What a training run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainOutcome {
    /// Per-epoch rows.
    pub epochs: Vec<EpochRow>,
    /// Epoch of the best checkpoint (1-based).
    pub best_epoch: usize,
    /// Its validation CER.
    pub best_val_cer: f64,
    /// Training seconds (validation decoding included), over every process that worked
    /// on the run.
    pub train_seconds: f64,
    /// Where the best checkpoint is.
    pub checkpoint: PathBuf,
    /// Trainable parameters.
    pub params: i64,
    /// Peak resident memory of the training process, MiB.
    pub peak_rss_mib: Option<f64>,
    /// The epochs after which the run was interrupted and resumed (it continued exactly:
    /// see `torchkit::trainer`).
    pub resumed_after_epochs: Vec<usize>,
    /// Where the processes that trained it ran.
    #[serde(default)]
    pub places: Vec<String>,
    /// The options it ran with.
    pub config: TrainConfig,
}

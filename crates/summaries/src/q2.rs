//! Q2's summary: the learning-rate sweep of model 2.1 and model 2.2 at the best rate, run by
//! run and epoch by epoch, on the data file it names.

pub use metrics::ConfusionMatrix;
use serde::{Deserialize, Serialize};

/// The options of the stage, as run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Q2Options {
    /// The npz file.
    pub npz: String,
    /// `npz` is the generated quick-run set.
    pub synthetic: bool,
    /// Epochs per run (40).
    pub epochs: usize,
    /// Learning rates of the 2.1 sweep.
    pub learning_rates: Vec<f64>,
    /// Seed.
    pub seed: u64,
    /// Pixel layout (`skeleton` or `channels-last`).
    pub layout: String,
    /// Sweep runs at once.
    pub jobs: usize,
    /// Every run as the skeleton's code runs it, op for op and draw for draw.
    pub exact: bool,
}

/// `summary.json` of the stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Q2Summary {
    /// [`crate::VERSION`].
    pub version: u32,
    /// Options.
    pub config: Q2Options,
    /// The data.
    pub dataset: DatasetInfo,
    /// Every run, 2.1 sweep first.
    pub runs: Vec<Run>,
    /// Learning rate of the 2.1 run with the highest final dev accuracy.
    pub best_learning_rate: f64,
    /// Figures written.
    pub figures: Vec<String>,
    /// Peak resident memory, MiB.
    pub peak_rss_mib: Option<f64>,
}

/// One training run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// "2.1" or "2.2".
    pub model: String,
    /// SGD learning rate.
    pub learning_rate: f64,
    /// Trainable parameters.
    pub params: i64,
    /// Epochs run.
    pub epochs: usize,
    /// Accuracy of the final weights on test.
    pub test_accuracy: f64,
    /// Dev accuracy after the last epoch.
    pub final_val_accuracy: f64,
    /// Best dev accuracy over the epochs.
    pub best_val_accuracy: f64,
    /// Wall time of training and evaluation.
    pub seconds: f64,
    /// Mean seconds per epoch (dev evaluation included).
    pub seconds_per_epoch: f64,
    /// Per-epoch figures.
    pub per_epoch: Vec<EpochRow>,
    /// Test confusion matrix (rows: true class).
    pub confusion: ConfusionMatrix,
    /// The epochs after which training was interrupted and (exactly) resumed.
    pub resumed_after_epochs: Vec<usize>,
    /// Where the processes that trained it ran (`host`, `host, slurm job 12_1`), in order.
    #[serde(default)]
    pub places: Vec<String>,
    /// The options it ran with (a finished run is reused only under the same ones).
    pub key: String,
}

/// Which file the stage ran on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// Path of the npz.
    pub file: String,
    /// Its SHA-256.
    pub sha256: String,
    /// Whether it is the homework's Intel file (otherwise a substitute).
    pub intel: bool,
    /// Whether it is the generated quick-run set.
    pub synthetic: bool,
    /// What it is, in words, for titles and the report.
    pub label: String,
}

/// One epoch's figures (a line of the CSV log).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRow {
    /// 1-based.
    pub epoch: usize,
    /// Mean of all batch losses since training started — the skeleton's "Training loss".
    pub train_loss_cumulative: f64,
    /// Mean of this epoch's batch losses.
    pub train_loss_epoch: f64,
    /// Dev loss (eval mode).
    pub val_loss: f64,
    /// Dev accuracy (eval mode).
    pub val_accuracy: f64,
    /// Seconds for the epoch, dev evaluation included.
    pub seconds: f64,
}

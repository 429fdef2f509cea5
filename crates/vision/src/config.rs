//! The options of one training run (the skeleton's defaults) and where it writes.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Optimiser choice (`--optimizer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// Plain SGD: no momentum.
    Sgd,
    /// Adam with PyTorch's defaults.
    Adam,
}

/// Training options (the skeleton's defaults).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TrainConfig {
    /// Epochs (40).
    pub epochs: usize,
    /// Batch size (8), shuffled every epoch.
    pub batch_size: usize,
    /// Learning rate.
    pub learning_rate: f64,
    /// L2 weight decay (0).
    pub l2_decay: f64,
    /// SGD or Adam.
    pub optimizer: Optimizer,
    /// Examples per forward pass when evaluating (32: activations that stay in the caches —
    /// 2,100 images of 2.2 took 0.50 s in chunks of 32, 1.02 s of 250, 1.29 s of 700 on an
    /// Intel Xeon — and a one-epoch run's peak of 0.5 GB, where chunks of 1,000 with float32
    /// pixels peaked at 1.26 GB).
    pub eval_chunk: usize,
    /// The seed the caller seeded libtorch with.
    pub seed: u64,
    /// Follow the skeleton's code op for op and draw for draw: its DataLoader's draws,
    /// libtorch's SGD on every parameter (no fused update), the validation split in one forward
    /// pass, float32 loss means. The model must run on NCHW memory.
    pub exact: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 40,
            batch_size: 8,
            learning_rate: 0.01,
            l2_decay: 0.0,
            optimizer: Optimizer::Sgd,
            eval_chunk: 32,
            seed: 42,
            exact: false,
        }
    }
}

/// Where a run writes: the checkpoint of the final weights and the per-epoch CSV (its
/// resume files go beside the checkpoint).
#[derive(Debug, Clone)]
pub struct RunFiles {
    /// The final weights (safetensors), published after every epoch.
    pub checkpoint: PathBuf,
    /// The per-epoch CSV.
    pub log_csv: PathBuf,
    /// Replace a finished run or a checkpoint of other options instead of refusing.
    pub replace: bool,
}

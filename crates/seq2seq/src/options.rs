//! The options of `p2g train` and `p2g test`, typed: the binary parses them, and the stage
//! builds them for its training children and hands them over with [`cli::to_args`], so that a
//! renamed option fails to compile rather than at run time.

use std::path::PathBuf;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use torchkit::options;

use crate::corpus::Corpus;
use crate::model::{HopfieldConfig, Model, ModelConfig};

/// The homework's options, with its spellings (`--n_epochs`, `--lr`, `--use_attn`, …) as
/// aliases.
#[derive(clap::Args, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelOptions {
    /// Adam learning rate.
    #[arg(long, visible_alias = "lr", alias = "learning_rate", default_value_t = 0.003, value_parser = cli::values::positive_f64)]
    pub learning_rate: f64,
    /// Dropout on embeddings and outputs.
    #[arg(long, default_value_t = 0.3, value_parser = cli::values::dropout)]
    pub dropout: f64,
    /// Training epochs.
    #[arg(long, visible_alias = "n_epochs", alias = "n-epochs", default_value_t = 20, value_parser = cli::values::positive_usize)]
    pub epochs: usize,
    /// Examples per training batch.
    #[arg(long, visible_alias = "batch_size", default_value_t = 64, value_parser = cli::values::positive_usize)]
    pub batch_size: usize,
    /// Hidden size: even (each encoder direction has half), at most 65536.
    #[arg(long, visible_alias = "hidden_size", default_value_t = 128, value_parser = hidden_size)]
    pub hidden_size: i64,
    #[command(flatten)]
    #[serde(flatten)]
    pub run: cli::Run,
    /// Bahdanau attention in the decoder (the homework's).
    #[arg(long, visible_alias = "use_attn")]
    pub use_attn: bool,
    /// Which attention head: the homework's Bahdanau attention (what --use-attn gives), or a
    /// Hopfield layer on Q1's update rule. Implies --use-attn.
    #[arg(long, value_enum)]
    pub attn: Option<Head>,
    /// Hopfield head: retrievals per decoder step (1 = one update, i.e. attention; more
    /// iterate the update towards a fixed point).
    #[arg(long, default_value_t = 1, value_parser = hopfield_steps)]
    pub hopfield_steps: usize,
    /// Hopfield head: learn β (starting at 1/√H) instead of keeping it 1/√H.
    #[arg(long)]
    pub learn_beta: bool,
    /// Folder with train.tsv, valid.tsv, test.tsv.
    #[arg(
        long,
        visible_alias = "data_dir",
        alias = "data-dir",
        default_value = "data/p2g"
    )]
    pub data: PathBuf,
    /// Checkpoint file: safetensors (what training writes; default model.safetensors /
    /// model-attn.safetensors), or for testing also the homework's PyTorch `.pt` file.
    #[arg(long, visible_alias = "checkpoint_name")]
    pub checkpoint: Option<PathBuf>,
    /// Longest decoded output.
    #[arg(long, visible_alias = "max_len", default_value_t = 50, value_parser = cli::values::positive_usize)]
    pub max_len: usize,
}

/// The decoder's attention head (`--attn`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Head {
    /// The homework's additive attention.
    Bahdanau,
    /// A Hopfield layer on Q1's update rule (`model::HopfieldAttention`).
    Hopfield,
}

/// 1 to 64 retrievals per decoder step.
fn hopfield_steps(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(v) if (1..=64).contains(&v) => Ok(v),
        Ok(_) => Err("must be from 1 to 64".into()),
        Err(e) => Err(format!("{e}")),
    }
}

/// An even hidden size from 2 to 65536 (each encoder direction gets half).
fn hidden_size(s: &str) -> Result<i64, String> {
    match s.parse::<i64>() {
        Ok(v) if (2..=65536).contains(&v) && v % 2 == 0 => Ok(v),
        Ok(_) => Err("must be even, from 2 to 65536 (each encoder direction gets half)".into()),
        Err(e) => Err(format!("{e}")),
    }
}

impl ModelOptions {
    /// Resolves the device, seeds libtorch, reads the data and builds a fresh model — in
    /// that order, so initialisation draws come right after the seed. A model too large for
    /// the machine is refused before it is allocated.
    pub fn setup(&self) -> Result<(tch::Device, Corpus, Model)> {
        let device = torchkit::device::resolve(self.run.device)?;
        torchkit::rng::seed(self.run.seed);
        let corpus = Corpus::read(&self.data)?;
        let config = self.model_config(&corpus);
        // Weights, gradients and Adam's two moments, 4 bytes each.
        let bytes = (config.parameters() as u64).saturating_mul(16);
        options::check_fits_in_memory(
            bytes,
            &format!(
                "--hidden-size {} ({} parameters)",
                self.hidden_size,
                config.parameters()
            ),
        )?;
        let model = corpus.model_of(&config, device);
        Ok((device, corpus, model))
    }

    /// The model these options ask for, sized to `corpus`'s vocabularies.
    pub fn model_config(&self, corpus: &Corpus) -> ModelConfig {
        let attention = self.use_attn || self.attn.is_some();
        ModelConfig {
            hopfield: (self.attn == Some(Head::Hopfield)).then_some(HopfieldConfig {
                steps: self.hopfield_steps,
                learn_beta: self.learn_beta,
            }),
            ..corpus.model_config(self.hidden_size, self.dropout, attention)
        }
    }

    pub fn checkpoint(&self) -> PathBuf {
        self.checkpoint.clone().unwrap_or_else(|| {
            PathBuf::from(match (self.attn, self.use_attn) {
                (Some(Head::Hopfield), _) => "model-hopfield.safetensors",
                (Some(Head::Bahdanau), _) | (None, true) => "model-attn.safetensors",
                (None, false) => "model.safetensors",
            })
        })
    }
}

/// `p2g train`'s options: the model's and where the outcome goes.
#[derive(clap::Args, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainArgs {
    #[command(flatten)]
    #[serde(flatten)]
    pub model: ModelOptions,
    /// Also write the run's outcome (per-epoch figures, best epoch) as JSON here.
    #[arg(long)]
    pub outcome: Option<PathBuf>,
    /// Train again in place of a finished run (or a checkpoint, or a resume point) of
    /// other options or data, instead of refusing.
    #[arg(long)]
    pub force: bool,
}

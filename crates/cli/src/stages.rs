//! The stage commands `cargo xtask reproduce` runs — `q1`, `cnn reproduce`, `p2g reproduce` —
//! typed: each binary parses its struct, and the xtask builds it and hands it over with
//! [`crate::to_args`], so that a renamed option fails to compile in the xtask too.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::values::positive_usize;

/// Q2's epochs per run (the homework's).
pub const Q2_EPOCHS: usize = 40;
/// Q3's epochs per model (the homework's).
pub const Q3_EPOCHS: usize = 20;

/// `q1`: the Q1 checks and retrieval experiments.
#[derive(clap::Args, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Q1Stage {
    /// Folder for summary.json and the figures (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Smaller experiments (seconds, for tests and `reproduce --quick`).
    #[arg(long, alias = "synthetic")]
    pub quick: bool,
}

/// What every Q2 stage command takes (`cnn reproduce`, and the `cnn sweep-run` children it
/// starts).
#[derive(clap::Args, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Q2Run {
    /// The stage's output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Epochs per run.
    #[arg(long, default_value_t = Q2_EPOCHS, value_parser = positive_usize)]
    pub epochs: usize,
    #[command(flatten)]
    #[serde(flatten)]
    pub run: crate::Run,
    /// Read each image's pixels as (48, 48, 3), height-width-channel, and move the channels
    /// first, instead of the skeleton's view of them (the file's layout question, not the
    /// memory layout the model computes on: that is `--nchw`).
    #[arg(long, alias = "channels-last", conflicts_with = "exact")]
    pub pixels_hwc: bool,
}

/// `cnn reproduce`: the report's Q2 stage.
#[derive(clap::Args, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Q2Stage {
    /// The npz file (Intel layout).
    #[arg(
        long,
        aliases = ["npz", "data-path", "data_path"],
        required_unless_present = "quick"
    )]
    pub data: Option<PathBuf>,
    /// Train on a small generated image set (written to OUT/quick_images.npz) instead:
    /// the quick run's data, not the homework's.
    #[arg(long, alias = "synthetic", conflicts_with = "data")]
    pub quick: bool,
    #[command(flatten)]
    #[serde(flatten)]
    pub stage: Q2Run,
    /// 2.1 learning rates trained at once, each in a child process with its share of
    /// the cores (1: one after the other, here, with every core).
    #[arg(long, default_value_t = 1, value_parser = positive_usize)]
    pub jobs: usize,
}

/// `p2g reproduce`: the report's Q3 stage.
#[derive(clap::Args, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Q3Stage {
    /// Folder with train.tsv, valid.tsv, test.tsv [default: data/p2g].
    #[arg(long, visible_alias = "data_dir", alias = "data-dir")]
    pub data: Option<PathBuf>,
    /// Train on a small generated corpus (written to OUT/quick_data/) instead: the quick
    /// run's data, not the homework's.
    #[arg(long, alias = "synthetic", conflicts_with = "data")]
    pub quick: bool,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Epochs per model.
    #[arg(long, default_value_t = Q3_EPOCHS, value_parser = positive_usize)]
    pub epochs: usize,
    #[command(flatten)]
    #[serde(flatten)]
    pub run: crate::Run,
    /// Beam widths to compare with greedy.
    #[arg(long, value_delimiter = ',', default_value = "5", value_parser = positive_usize)]
    pub beam_widths: Vec<usize>,
    /// Trainings at once, each a child process with its share of the cores (1: (a)
    /// then (b), each with every core).
    #[arg(long, default_value_t = 2, value_parser = positive_usize)]
    pub jobs: usize,
    /// Beside (b), a model with a Hopfield-layer attention head for each of these numbers of
    /// retrievals per decoder step, compared with (b) and studied in Q1's terms.
    #[arg(long, value_delimiter = ',', default_value = "1,3", value_parser = positive_usize)]
    pub hopfield_steps: Vec<usize>,
    /// Train no Hopfield-head model: only the homework's (a) and (b).
    #[arg(long, conflicts_with = "hopfield_steps")]
    pub no_hopfield: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Q2 {
        #[command(flatten)]
        a: Q2Stage,
    }

    #[derive(clap::Parser)]
    struct Q3 {
        #[command(flatten)]
        a: Q3Stage,
    }

    /// What the xtask builds, its stages parse back; `--data` and `--quick` exclude each other
    /// only when both are given (`to_args` leaves out the `None` and the `false`).
    #[test]
    fn stage_commands_survive_the_command_line() {
        let run = crate::Run {
            seed: 43,
            device: crate::Device::Cpu,
            exact: true,
        };
        let q3 = Q3Stage {
            data: Some("d/p2g".into()),
            quick: false,
            out: "o/q3".into(),
            epochs: 5,
            run: run.clone(),
            beam_widths: vec![3, 5],
            jobs: 4,
            hopfield_steps: vec![1, 3],
            no_hopfield: false,
        };
        let args = std::iter::once("p2g".to_string()).chain(crate::to_args(&q3));
        assert_eq!(<Q3 as clap::Parser>::try_parse_from(args).unwrap().a, q3);
        let q2 = Q2Stage {
            data: None,
            quick: true,
            stage: Q2Run {
                out: "o/q2".into(),
                epochs: 3,
                run,
                pixels_hwc: false,
            },
            jobs: 1,
        };
        let args = std::iter::once("cnn".to_string()).chain(crate::to_args(&q2));
        assert_eq!(<Q2 as clap::Parser>::try_parse_from(args).unwrap().a, q2);
    }
}

//! The options of `cnn sweep-run`, typed (those of `cnn reproduce` are
//! `cli::stages::Q2Stage`): the binary parses them, and the stage builds [`SweepRunArgs`] for
//! its children and hands them over with [`cli::to_args`], so that a
//! renamed option fails to compile rather than at run time.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::dataset::Layout;

/// `cnn sweep-run`: one run of the stage into OUT (what `reproduce --jobs N` starts in child
/// processes); a finished run with the same options is kept.
#[derive(clap::Args, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRunArgs {
    /// The npz file.
    #[arg(long, alias = "npz")]
    pub data: PathBuf,
    /// The npz is the generated quick-run set.
    #[arg(long, alias = "synthetic")]
    pub quick: bool,
    /// Model: 2.1 or 2.2.
    #[arg(long)]
    pub model: String,
    /// Learning rate.
    #[arg(long, value_parser = cli::values::positive_f64)]
    pub learning_rate: f64,
    #[command(flatten)]
    #[serde(flatten)]
    pub stage: cli::stages::Q2Run,
}

/// The pixel reading order `--pixels-hwc` asks for.
pub fn layout(pixels_hwc: bool) -> Layout {
    if pixels_hwc {
        Layout::ChannelsLast
    } else {
        Layout::Skeleton
    }
}

//! `cnn`: the homework's Q2 script — train one CNN — or the whole Q2 stage (`reproduce`).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use torchkit::device::DeviceChoice;
use torchkit::options;
use vision::dataset::{Dataset, Layout};
use vision::model::CnnConfig;
use vision::stage::{run_stage, StageConfig};
use vision::train::{evaluate, train, Optimizer, RunFiles, TrainConfig};

/// CNN image classification (homework 2, Q2) on libtorch.
#[derive(Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(Subcommand)]
enum Command {
    /// The report's Q2 stage: 2.1 at lr 0.1, 0.01, 0.001, then 2.2 at the best; plots and summary.json.
    Reproduce {
        /// The npz file (Intel layout).
        #[arg(
            long,
            visible_alias = "data-path",
            required_unless_present = "synthetic"
        )]
        npz: Option<PathBuf>,
        /// Train on a small generated image set (written to OUT/quick_images.npz) instead:
        /// the quick run's data, not the homework's.
        #[arg(long, visible_alias = "quick", conflicts_with = "npz")]
        synthetic: bool,
        #[command(flatten)]
        stage: StageArgs,
        /// 2.1 learning rates trained at once, each in a child process with its share of
        /// the cores (1: one after the other, here, with every core).
        #[arg(long, default_value_t = 1, value_parser = options::positive_usize)]
        jobs: usize,
    },
    /// One run of the stage into OUT (what `reproduce --jobs N` starts in child processes);
    /// a finished run with the same options is kept.
    SweepRun {
        /// The npz file.
        #[arg(long)]
        npz: PathBuf,
        /// The npz is the generated quick-run set.
        #[arg(long)]
        synthetic: bool,
        /// Model: 2.1 or 2.2.
        #[arg(long)]
        model: String,
        /// Learning rate.
        #[arg(long, value_parser = options::positive_f64)]
        learning_rate: f64,
        #[command(flatten)]
        stage: StageArgs,
    },
}

/// Options shared by `reproduce` and `sweep-run` (a sweep run gets its stage's).
#[derive(clap::Args)]
struct StageArgs {
    /// The stage's output folder.
    #[arg(long)]
    out: PathBuf,
    /// Epochs per run.
    #[arg(long, default_value_t = 40, value_parser = options::positive_usize)]
    epochs: usize,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Read pixels as (48, 48, 3) and move channels first, instead of the skeleton's view.
    #[arg(long)]
    channels_last: bool,
    /// Where to run.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
    /// Every run as the skeleton's code runs it, op for op and draw for draw (see
    /// `cnn --help`).
    #[arg(long, conflicts_with = "channels_last")]
    exact: bool,
}

impl StageArgs {
    fn config(
        &self,
        npz: PathBuf,
        synthetic: bool,
        learning_rates: Vec<f64>,
        jobs: usize,
    ) -> StageConfig {
        StageConfig {
            npz,
            synthetic,
            epochs: self.epochs,
            learning_rates,
            seed: self.seed,
            layout: layout(self.channels_last),
            jobs,
            exact: self.exact,
        }
    }
}

/// The skeleton's options (train one model, then test it).
#[derive(clap::Args)]
struct TrainArgs {
    /// Epochs.
    #[arg(long, default_value_t = 40, value_parser = options::positive_usize)]
    epochs: usize,
    /// Batch size.
    #[arg(long, default_value_t = 8, value_parser = options::positive_usize)]
    batch_size: usize,
    /// Learning rate.
    #[arg(long, visible_alias = "lr", default_value_t = 0.01, value_parser = options::positive_f64)]
    learning_rate: f64,
    /// L2 weight decay.
    #[arg(long, default_value_t = 0.0, value_parser = options::non_negative_f64)]
    l2_decay: f64,
    /// Dropout probability.
    #[arg(long, default_value_t = 0.1, value_parser = options::dropout)]
    dropout: f64,
    /// Optimiser.
    #[arg(long, value_enum, default_value_t = Optimizer::Sgd)]
    optimizer: Optimizer,
    /// Without max-pooling in the blocks.
    #[arg(long)]
    no_maxpool: bool,
    /// Model 2.1: no batch norm, flatten instead of global average pooling.
    #[arg(long)]
    no_batch_norm: bool,
    /// The npz file.
    #[arg(
        long,
        visible_alias = "npz",
        default_value = "data/intel_landscapes.v2.npz"
    )]
    data_path: PathBuf,
    /// Where to run.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
    /// Read pixels as (48, 48, 3) and move channels first, instead of the skeleton's view.
    #[arg(long)]
    channels_last: bool,
    /// Compute on PyTorch's default NCHW memory layout (slower; the same kernels as the
    /// PyTorch skeleton) instead of channels-last.
    #[arg(long)]
    nchw: bool,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Folder for the per-epoch CSV and the final checkpoint.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// Train again in place of a finished run (or a checkpoint, or a resume point) of
    /// other options or data in --out, instead of refusing.
    #[arg(long)]
    force: bool,
    /// Follow the skeleton's PyTorch code op for op and draw for draw (its DataLoader's
    /// draws, NCHW, plain SGD, the dev split in one pass, float32 loss means): with the same
    /// seed and one thread, its printed numbers digit for digit; slower.
    #[arg(long, conflicts_with_all = ["channels_last"])]
    exact: bool,
}

fn layout(channels_last: bool) -> Layout {
    if channels_last {
        Layout::ChannelsLast
    } else {
        Layout::Skeleton
    }
}

fn main() -> std::process::ExitCode {
    artifacts::exit_code(run(Cli::parse()))
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::Reproduce {
            npz,
            synthetic,
            stage,
            jobs,
        }) => {
            let out = &stage.out;
            let npz = match npz {
                Some(npz) => npz,
                None => {
                    std::fs::create_dir_all(out)?;
                    let path = out.join("quick_images.npz");
                    vision::synthetic::write_quick_npz(
                        &path,
                        stage.seed,
                        vision::synthetic::QUICK_SIZES,
                    )?;
                    path
                }
            };
            let config = stage.config(npz, synthetic, vec![0.1, 0.01, 0.001], jobs);
            let s = run_stage(
                &config,
                out,
                stage.device.resolve()?,
                &std::env::current_exe()?,
            )?;
            for r in &s.runs {
                eprintln!(
                    "model {} lr {}: test accuracy {:.4} ({:.1} s/epoch)",
                    r.model, r.learning_rate, r.test_accuracy, r.seconds_per_epoch
                );
            }
            eprintln!(
                "best learning rate {}; results in {}",
                s.best_learning_rate,
                out.display()
            );
        }
        Some(Command::SweepRun {
            npz,
            synthetic,
            model,
            learning_rate,
            stage,
        }) => {
            let config = stage.config(npz, synthetic, vec![learning_rate], 1);
            let r = vision::stage::run_one(
                &config,
                &model,
                learning_rate,
                &stage.out,
                stage.device.resolve()?,
            )?;
            eprintln!(
                "model {} lr {}: test accuracy {:.4}",
                r.model, r.learning_rate, r.test_accuracy
            );
        }
        None => {
            let a = cli.train;
            let device = a.device.resolve()?;
            // Before the data loads: an unwritable --out fails now, naming it.
            artifacts::check_writable(a.out.join("cnn.safetensors"))?;
            torchkit::rng::seed(a.seed);
            let data = Dataset::load(&a.data_path, layout(a.channels_last))?;
            let model = CnnConfig {
                dropout: a.dropout,
                maxpool: !a.no_maxpool,
                batch_norm: !a.no_batch_norm,
                channels_last_memory: !a.nchw && !a.exact,
                pytorch_draws: a.exact,
                fused_kernels: !a.exact,
            };
            let tc = TrainConfig {
                epochs: a.epochs,
                batch_size: a.batch_size,
                learning_rate: a.learning_rate,
                l2_decay: a.l2_decay,
                optimizer: a.optimizer,
                seed: a.seed,
                exact: a.exact,
                ..TrainConfig::default()
            };
            let files = RunFiles {
                checkpoint: a.out.join("cnn.safetensors"),
                log_csv: a.out.join("cnn_epochs.csv"),
                replace: a.force,
            };
            let trained = train(&model, &tc, &data, &files, device)?;
            let acc = if a.exact {
                vision::train::evaluate_whole(&trained.net, &data.test).1
            } else {
                evaluate(&trained.net, &data.test, tc.eval_chunk).1
            };
            println!("Final Test acc: {acc:.4}");
            println!(
                "Number of trainable parameters: {}",
                torchkit::layers::trainable_parameters(&trained.vs)
            );
        }
    }
    Ok(())
}

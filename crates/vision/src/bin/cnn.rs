//! `cnn`: the homework's Q2 script — train one CNN — or the whole Q2 stage (`reproduce`).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use vision::dataset::Dataset;
use vision::kernels::Kernels;
use vision::model::CnnConfig;
use vision::options::SweepRunArgs;
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
    Reproduce(cli::stages::Q2Stage),
    /// One run of the stage into OUT (what `reproduce --jobs N` starts in child processes);
    /// a finished run with the same options is kept.
    SweepRun(SweepRunArgs),
}

/// The skeleton's options (train one model, then test it), with its one-dash spellings
/// (`-learning_rate 0.1 -no_batch_norm`) as aliases.
#[derive(clap::Args)]
struct TrainArgs {
    /// Epochs.
    #[arg(long, default_value_t = 40, value_parser = cli::values::positive_usize)]
    epochs: usize,
    /// Batch size.
    #[arg(long, visible_alias = "batch_size", default_value_t = 8, value_parser = cli::values::positive_usize)]
    batch_size: usize,
    /// Learning rate.
    #[arg(long, visible_alias = "learning_rate", alias = "lr", default_value_t = 0.01, value_parser = cli::values::positive_f64)]
    learning_rate: f64,
    /// L2 weight decay.
    #[arg(long, visible_alias = "l2_decay", default_value_t = 0.0, value_parser = cli::values::non_negative_f64)]
    l2_decay: f64,
    /// Dropout probability.
    #[arg(long, default_value_t = 0.1, value_parser = cli::values::dropout)]
    dropout: f64,
    /// Optimiser.
    #[arg(long, value_enum, default_value_t = Optimizer::Sgd)]
    optimizer: Optimizer,
    /// Without max-pooling in the blocks.
    #[arg(long, visible_alias = "no_maxpool")]
    no_maxpool: bool,
    /// Model 2.1: no batch norm, flatten instead of global average pooling.
    #[arg(long, visible_alias = "no_batch_norm")]
    no_batch_norm: bool,
    /// The npz file.
    #[arg(
        long,
        visible_alias = "data_path",
        aliases = ["data-path", "npz"],
        default_value = "data/intel_landscapes.v2.npz"
    )]
    data: PathBuf,
    #[command(flatten)]
    run: cli::Run,
    /// Read each image's pixels as (48, 48, 3), height-width-channel, and move the channels
    /// first, instead of the skeleton's view of them (the file's layout question, not the
    /// memory layout the model computes on: that is `--nchw`).
    #[arg(long, alias = "channels-last", conflicts_with = "exact")]
    pixels_hwc: bool,
    /// Compute on PyTorch's default NCHW memory layout (slower; the same kernels as the
    /// PyTorch skeleton) instead of channels-last.
    #[arg(long)]
    nchw: bool,
    /// Folder for the per-epoch CSV and the final checkpoint.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// Train again in place of a finished run (or a checkpoint, or a resume point) of
    /// other options or data in --out, instead of refusing.
    #[arg(long)]
    force: bool,
}

fn main() -> std::process::ExitCode {
    let args = cli::homework_spellings(std::env::args_os(), cli::Q2_SCRIPT_OPTIONS);
    artifacts::exit_code(run(Cli::parse_from(args)))
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::Reproduce(cli::stages::Q2Stage {
            data,
            quick,
            stage,
            jobs,
        })) => {
            let out = &stage.out;
            let npz = match data {
                Some(npz) => npz,
                None => {
                    std::fs::create_dir_all(out)?;
                    let path = out.join("quick_images.npz");
                    vision::synthetic::write_quick_npz(
                        &path,
                        stage.run.seed,
                        vision::synthetic::QUICK_SIZES,
                    )?;
                    path
                }
            };
            let config = StageConfig::from_args(&stage, npz, quick, vec![0.1, 0.01, 0.001], jobs);
            let s = run_stage(
                &config,
                out,
                torchkit::device::resolve(stage.run.device)?,
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
        Some(Command::SweepRun(SweepRunArgs {
            data,
            quick,
            model,
            learning_rate,
            stage,
        })) => {
            let config = StageConfig::from_args(&stage, data, quick, vec![learning_rate], 1);
            let r = vision::stage::run_one(
                &config,
                &model,
                learning_rate,
                &stage.out,
                torchkit::device::resolve(stage.run.device)?,
            )?;
            eprintln!(
                "model {} lr {}: test accuracy {:.4}",
                r.model, r.learning_rate, r.test_accuracy
            );
        }
        None => {
            let a = cli.train;
            let device = torchkit::device::resolve(a.run.device)?;
            let exact = a.run.exact;
            // Before the data loads: an unwritable --out fails now, naming it.
            artifacts::check_writable(a.out.join("cnn.safetensors"))?;
            torchkit::rng::seed(a.run.seed);
            let data = Dataset::load(&a.data, vision::options::layout(a.pixels_hwc))?;
            let model = CnnConfig {
                dropout: a.dropout,
                maxpool: !a.no_maxpool,
                batch_norm: !a.no_batch_norm,
                kernels: Kernels::for_run(exact, a.nchw),
            };
            let tc = TrainConfig {
                epochs: a.epochs,
                batch_size: a.batch_size,
                learning_rate: a.learning_rate,
                l2_decay: a.l2_decay,
                optimizer: a.optimizer,
                seed: a.run.seed,
                exact,
                ..TrainConfig::default()
            };
            let files = RunFiles {
                checkpoint: a.out.join("cnn.safetensors"),
                log_csv: a.out.join("cnn_epochs.csv"),
                replace: a.force,
            };
            let trained = train(&model, &tc, &data, &files, device)?;
            let acc = evaluate(&trained.net, &data.test, tc.eval_chunk).1;
            println!("Final Test acc: {acc:.4}");
            println!(
                "Number of trainable parameters: {}",
                torchkit::layers::trainable_parameters(&trained.vs)
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        let args = cli::homework_spellings(
            std::iter::once("cnn").chain(args.iter().copied()),
            cli::Q2_SCRIPT_OPTIONS,
        );
        Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The skeleton's own command line (`python hw2-q2.py -learning_rate 0.1 …`, one dash)
    /// runs as it is, and means what the canonical names mean.
    #[test]
    fn the_skeletons_spellings_are_aliases_of_ours() {
        let theirs = parse(&[
            "-epochs",
            "5",
            "-batch_size",
            "16",
            "-learning_rate",
            "0.1",
            "-l2_decay",
            "0.01",
            "-dropout",
            "0.2",
            "-optimizer",
            "adam",
            "-no_maxpool",
            "-no_batch_norm",
            "-data_path",
            "x.npz",
            "-device",
            "cpu",
        ])
        .train;
        let ours = parse(&[
            "--epochs",
            "5",
            "--batch-size",
            "16",
            "--learning-rate",
            "0.1",
            "--l2-decay",
            "0.01",
            "--dropout",
            "0.2",
            "--optimizer",
            "adam",
            "--no-maxpool",
            "--no-batch-norm",
            "--data",
            "x.npz",
            "--device",
            "cpu",
        ])
        .train;
        for a in [&theirs, &ours] {
            assert_eq!(
                (
                    a.epochs,
                    a.batch_size,
                    a.learning_rate,
                    a.l2_decay,
                    a.dropout
                ),
                (5, 16, 0.1, 0.01, 0.2)
            );
            assert!(a.optimizer == Optimizer::Adam && a.no_maxpool && a.no_batch_norm);
            assert_eq!(a.data, PathBuf::from("x.npz"));
            assert_eq!(a.run.device, cli::Device::Cpu);
        }
        // The stage's earlier spellings still parse.
        let Some(Command::Reproduce(cli::stages::Q2Stage { data, quick, .. })) =
            parse(&["reproduce", "--npz", "y.npz", "--out", "o"]).command
        else {
            panic!("reproduce")
        };
        assert_eq!((data, quick), (Some(PathBuf::from("y.npz")), false));
    }
}

//! `p2g`: train and test the phoneme-to-grapheme model, or run the whole Q3 stage.

use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use seq2seq::decode::Strategy;
use seq2seq::evaluate::{score, wer_at_k};
use seq2seq::kernels::Kernels;
use seq2seq::options::{ModelOptions, TrainArgs};
use seq2seq::stage::{self, StageConfig};
use seq2seq::train::RunFiles;
use seq2seq::train::{train, TrainConfig};

/// Phoneme-to-grapheme seq2seq (homework 2, Q3) on libtorch.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train, keeping the checkpoint with the lowest validation CER.
    Train(TrainArgs),
    /// Decode the test set with a checkpoint and print CER / WER (and WER@k with --topp).
    Test {
        #[command(flatten)]
        common: ModelOptions,
        /// Nucleus sampling with this p instead of greedy decoding.
        #[arg(long, value_parser = cli::values::top_p)]
        topp: Option<f64>,
        /// Samples per example for WER@k (with --topp).
        #[arg(long, default_value_t = 3, value_parser = cli::values::positive_usize)]
        k: usize,
        /// Beam search of this width instead of greedy decoding.
        #[arg(long, conflicts_with = "topp", value_parser = cli::values::positive_usize)]
        beam: Option<usize>,
    },
    /// The report's Q3 stage: (a), (b), (c) and beam search, with figures and summary.json.
    Reproduce(cli::stages::Q3Stage),
}

fn main() -> std::process::ExitCode {
    artifacts::exit_code(run(Cli::parse()))
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(TrainArgs {
            model: c,
            outcome,
            force,
        }) => {
            if let Some(path) = &outcome {
                artifacts::check_writable(path)?;
            }
            let (device, corpus, mut model) = c.setup()?;
            println!("Number of parameters: {}", model.parameters());
            let ckpt = c.checkpoint();
            let files = RunFiles {
                outcome: outcome.clone(),
                ..RunFiles::beside(&ckpt, force)
            };
            let data = corpus.train_data();
            let tc = TrainConfig {
                lr: c.learning_rate,
                epochs: c.epochs,
                batch_size: c.batch_size,
                max_len: c.max_len,
                seed: c.run.seed,
                exact: c.run.exact,
                ..TrainConfig::default()
            };
            let out = train(&mut model, &data, &tc, &files, device)?;
            println!(
                "Best checkpoint: {} (epoch {}), log: {}, {:.1} s",
                ckpt.display(),
                out.best_epoch,
                files.log_csv.display(),
                out.train_seconds
            );
            if let Some(path) = outcome {
                artifacts::write_json(path, &out)?;
            }
        }
        Command::Test {
            common: c,
            topp,
            k,
            beam,
        } => {
            let (device, corpus, mut model) = c.setup()?;
            if let Some(width) = beam {
                seq2seq::decode::check_beam_width(width, corpus.vocabs.tgt.len())
                    .context("--beam")?;
            }
            let ckpt = c.checkpoint();
            model.load(&ckpt).with_context(|| {
                format!(
                    "loading {} (train first, or pass --checkpoint)",
                    ckpt.display()
                )
            })?;
            let strategy = match (topp, beam) {
                (Some(p), _) => Strategy::Nucleus { p },
                (_, Some(width)) => Strategy::Beam { width },
                _ => Strategy::Greedy,
            };
            let kernels = Kernels::for_run(c.run.exact);
            let t = Instant::now();
            let run = || {
                kernels.predict(
                    &model.net,
                    &corpus.test,
                    &corpus.vocabs.tgt,
                    strategy,
                    c.max_len,
                    1000,
                    device,
                )
            };
            let s = score(&run()?, &corpus.test_gold);
            println!("Test CER: {:.4}, Test WER: {:.4}", s.cer, s.wer);
            if topp.is_some() {
                let sets: Vec<Vec<String>> = (0..k).map(|_| run()).collect::<Result<_>>()?;
                let at_k = wer_at_k(&sets, &corpus.test_gold);
                println!("Printing first 10 examples with multiple predictions:");
                for ex in at_k.differing.iter().take(10) {
                    println!("{ex:?}");
                }
                println!("Test WER@{k}: {:.4}", at_k.wer_at_k);
            }
            eprintln!("decoded in {:.2} s", t.elapsed().as_secs_f64());
        }
        Command::Reproduce(cli::stages::Q3Stage {
            data,
            quick,
            out,
            epochs,
            run,
            beam_widths,
            jobs,
            hopfield_steps,
            no_hopfield,
        }) => {
            let cli::Run {
                seed,
                device,
                exact,
            } = run;
            let data_dir = if quick {
                let dir = out.join("quick_data");
                seq2seq::synthetic::write_quick_corpus(
                    &dir,
                    seed,
                    seq2seq::synthetic::QUICK_SIZES,
                )?;
                dir
            } else {
                data.unwrap_or_else(|| "data/p2g".into())
            };
            let config = StageConfig {
                data_dir,
                synthetic: quick,
                seed,
                train: TrainConfig {
                    epochs,
                    seed,
                    exact,
                    ..TrainConfig::default()
                },
                hidden: 128,
                dropout: 0.3,
                top_p: 0.8,
                k: 3,
                beam_widths,
                jobs,
                hopfield_steps: if no_hopfield {
                    Vec::new()
                } else {
                    hopfield_steps
                },
            };
            let s = stage::run(
                &config,
                &out,
                torchkit::device::resolve(device)?,
                &std::env::current_exe()?,
            )?;
            eprintln!(
                "Q3 done in {:.1} s: training {:.1} s wall ((a) {:.1} s, (b) {:.1} s), testing {:.1} s; peak memory (a) {:.0} MiB, (b) {:.0} MiB, testing {:.0} MiB; results in {}",
                s.total_seconds,
                s.training_wall_seconds,
                s.no_attention.train_seconds,
                s.attention.train_seconds,
                s.testing_wall_seconds,
                s.no_attention.peak_rss_mib.unwrap_or(f64::NAN),
                s.attention.peak_rss_mib.unwrap_or(f64::NAN),
                s.peak_rss_mib.unwrap_or(f64::NAN),
                out.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once("p2g").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .command
    }

    /// The homework's own command lines (`python hw2-q3.py train --use_attn …`) run as
    /// they are, and mean what the canonical names mean.
    #[test]
    fn the_homeworks_spellings_are_aliases_of_ours() {
        let theirs = parse(&[
            "train",
            "--use_attn",
            "--n_epochs",
            "7",
            "--lr",
            "0.001",
            "--batch_size",
            "32",
            "--hidden_size",
            "64",
            "--dropout",
            "0.2",
            "--seed",
            "3",
            "--data_dir",
            "d",
            "--checkpoint_name",
            "m.pt",
            "--max_len",
            "40",
        ]);
        let ours = parse(&[
            "train",
            "--use-attn",
            "--epochs",
            "7",
            "--learning-rate",
            "0.001",
            "--batch-size",
            "32",
            "--hidden-size",
            "64",
            "--dropout",
            "0.2",
            "--seed",
            "3",
            "--data",
            "d",
            "--checkpoint",
            "m.pt",
            "--max-len",
            "40",
        ]);
        let (
            Command::Train(TrainArgs { model: a, .. }),
            Command::Train(TrainArgs { model: b, .. }),
        ) = (theirs, ours)
        else {
            panic!("train")
        };
        assert_eq!(
            (
                a.use_attn,
                a.epochs,
                a.learning_rate,
                a.batch_size,
                a.hidden_size
            ),
            (true, 7, 0.001, 32, 64)
        );
        assert_eq!(
            (
                b.use_attn,
                b.epochs,
                b.learning_rate,
                b.batch_size,
                b.hidden_size
            ),
            (true, 7, 0.001, 32, 64)
        );
        assert_eq!(
            (a.data, a.checkpoint, a.max_len),
            (b.data, b.checkpoint, b.max_len)
        );
        assert_eq!(a.run, b.run);
        let Command::Test { topp, k, .. } =
            parse(&["test", "--use_attn", "--topp", "0.8", "--k", "3"])
        else {
            panic!("test")
        };
        assert_eq!((topp, k), (Some(0.8), 3));
        // The stage's own earlier spellings still parse.
        let Command::Reproduce(cli::stages::Q3Stage { quick, data, .. }) =
            parse(&["reproduce", "--synthetic", "--out", "o"])
        else {
            panic!("reproduce")
        };
        assert!(quick && data.is_none());
    }
}

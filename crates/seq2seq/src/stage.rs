//! The report's Q3 stage: (a) no attention, (b) attention, (c) attention with nucleus
//! sampling and WER@3, plus beam search on both checkpoints; figures and `summary.json`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use plot::{LineChart, Series};
use serde::Serialize;
use tch::Device;

use crate::corpus::Corpus;
use crate::decode::Strategy;
use crate::evaluate::{predict, score, wer_at_k};
use crate::kernels::Kernels;
use crate::model::Model;
use crate::options::{Head, ModelOptions, TrainArgs};
use crate::train::{TrainConfig, TrainOutcome};
pub use summaries::q3::{
    BeamReport, HopfieldRun, ModelReport, NucleusReport, NucleusScores, Q3Options, Q3Summary,
};
use torchkit::jobs::Job;

/// Options of the stage.
#[derive(Debug, Clone, Serialize)]
pub struct StageConfig {
    /// Folder with `train.tsv`, `valid.tsv`, `test.tsv`.
    pub data_dir: PathBuf,
    /// `data_dir` holds the generated quick-run corpus (`synthetic.rs`), not the homework's.
    pub synthetic: bool,
    /// Seed (42).
    pub seed: u64,
    /// Training options (epochs may be shortened for quick runs).
    pub train: TrainConfig,
    /// Hidden size (128).
    pub hidden: i64,
    /// Dropout on embeddings and outputs (0.3).
    pub dropout: f64,
    /// Nucleus mass (0.8).
    pub top_p: f64,
    /// Samples per example for WER@k (3).
    pub k: usize,
    /// Beam widths to compare with greedy.
    pub beam_widths: Vec<usize>,
    /// Trainings at once, each a child process with its share of the cores (2: (a) and (b)
    /// side by side, single-threaded — much sooner than one after the other).
    pub jobs: usize,
    /// Retrievals per step of each Hopfield-head model trained beside (b) (1 and 3).
    pub hopfield_steps: Vec<usize>,
}

impl StageConfig {
    /// The options as the summary records them.
    pub fn options(&self) -> Q3Options {
        Q3Options {
            data_dir: self.data_dir.display().to_string(),
            synthetic: self.synthetic,
            seed: self.seed,
            epochs: self.train.epochs,
            lr: self.train.lr,
            batch_size: self.train.batch_size,
            max_len: self.train.max_len,
            exact: self.train.exact,
            hidden: self.hidden,
            dropout: self.dropout,
            top_p: self.top_p,
            k: self.k,
            beam_widths: self.beam_widths.clone(),
            jobs: self.jobs,
            hopfield_steps: self.hopfield_steps.clone(),
        }
    }
}

/// A model the stage trains: (a), (b), or (b) with the Hopfield head of `n` retrievals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// (a).
    NoAttention,
    /// (b).
    Bahdanau,
    /// (b)'s decoder with a Hopfield-layer head.
    Hopfield(usize),
}

impl Variant {
    /// The trained models: (a), (b) and one per Hopfield step count.
    fn all(c: &StageConfig) -> Vec<Variant> {
        [Variant::NoAttention, Variant::Bahdanau]
            .into_iter()
            .chain(c.hopfield_steps.iter().map(|&n| Variant::Hopfield(n)))
            .collect()
    }

    /// The stem of its files.
    fn name(self) -> String {
        match self {
            Variant::NoAttention => "no_attention".into(),
            Variant::Bahdanau => "attention".into(),
            Variant::Hopfield(n) => format!("hopfield_{n}"),
        }
    }

    /// How the report and the log call it.
    pub fn label(self) -> String {
        match self {
            Variant::NoAttention => "(a) no attention".into(),
            Variant::Bahdanau => "(b) Bahdanau attention".into(),
            Variant::Hopfield(1) => "Hopfield, 1 step".into(),
            Variant::Hopfield(n) => format!("Hopfield, {n} steps"),
        }
    }

    /// The options of its `p2g train`: (b)'s, with the head replaced.
    fn head(self) -> (bool, Option<Head>, usize) {
        match self {
            Variant::NoAttention => (false, None, 1),
            Variant::Bahdanau => (true, None, 1),
            Variant::Hopfield(n) => (true, Some(Head::Hopfield), n),
        }
    }
}

/// The `exe train …` job of one model, handed its options typed ([`training_options`]); its
/// output goes to `<name>.log` in `dir`.
fn training_job(exe: &Path, c: &StageConfig, v: Variant, dir: &Path, device: Device) -> Job {
    let log = dir.join(format!("{}.log", v.name()));
    Job::new(format!("Q3 training {}", v.label()), exe, log)
        .arg("train")
        .args(cli::to_args(&training_options(c, v, dir, device)))
}

/// What `p2g train` is given to train one model of the stage into `dir`.
fn training_options(c: &StageConfig, v: Variant, dir: &Path, device: Device) -> TrainArgs {
    let name = v.name();
    let (use_attn, attn, hopfield_steps) = v.head();
    TrainArgs {
        model: ModelOptions {
            learning_rate: c.train.lr,
            dropout: c.dropout,
            epochs: c.train.epochs,
            batch_size: c.train.batch_size,
            hidden_size: c.hidden,
            run: cli::Run {
                seed: c.seed,
                device: torchkit::device::choice_of(device),
                exact: c.train.exact,
            },
            use_attn,
            attn,
            hopfield_steps,
            learn_beta: false,
            data: c.data_dir.clone(),
            checkpoint: Some(dir.join(format!("{name}.safetensors"))),
            max_len: c.train.max_len,
        },
        outcome: Some(dir.join(format!("{name}_outcome.json"))),
        force: false,
    }
}

/// The outcome the training of one model wrote in `dir`; it must be of these options.
fn training_outcome(c: &StageConfig, v: Variant, dir: &Path) -> Result<TrainOutcome> {
    let path = dir.join(format!("{}_outcome.json", v.name()));
    let o: TrainOutcome = artifacts::read_json(&path)?;
    anyhow::ensure!(
        o.config == c.train,
        "{} is of other training options than this stage's",
        path.display()
    );
    Ok(o)
}

/// A fresh model of `v` for this corpus: the one its `p2g train` built, which its
/// checkpoint loads into.
fn fresh_model(p: &Corpus, c: &StageConfig, v: Variant, device: Device) -> Model {
    let options = training_options(c, v, Path::new("."), device).model;
    p.model_of(&options.model_config(p), device)
}

fn test_model(
    p: &Corpus,
    c: &StageConfig,
    kernels: Kernels,
    v: Variant,
    outcome: TrainOutcome,
    device: Device,
) -> Result<(Model, ModelReport)> {
    let (name, label) = (v.name(), v.label());
    let mut model = fresh_model(p, c, v, device);
    model.load(&outcome.checkpoint)?;
    let t = Instant::now();
    let preds = kernels.predict(
        &model.net,
        &p.test,
        &p.vocabs.tgt,
        Strategy::Greedy,
        c.train.max_len,
        c.train.eval_batch_size,
        device,
    )?;
    let test = score(&preds, &p.test_gold);
    let test_decode_seconds = t.elapsed().as_secs_f64();
    println!(
        "{label}: Test CER: {:.4}, Test WER: {:.4}",
        test.cer, test.wer
    );
    // Beam search is the fast backend's alone (the homework has none), in either mode.
    let mut beam = Vec::new();
    for &width in &c.beam_widths {
        let t = Instant::now();
        let preds = predict(
            &model.net,
            &p.test,
            &p.vocabs.tgt,
            Strategy::Beam { width },
            c.train.max_len,
            c.train.eval_batch_size,
            device,
        );
        let s = score(&preds, &p.test_gold);
        println!(
            "{label}, beam {width}: Test CER: {:.4}, Test WER: {:.4}",
            s.cer, s.wer
        );
        beam.push(BeamReport {
            width,
            test: s,
            seconds: t.elapsed().as_secs_f64(),
        });
    }
    let report = ModelReport {
        params: model.parameters(),
        best_val_cer: outcome.best_val_cer,
        best_epoch: outcome.best_epoch,
        val_cer: outcome.epochs.iter().map(|r| r.val_cer).collect(),
        test,
        train_seconds: outcome.train_seconds,
        test_decode_seconds,
        beam,
        files: vec![format!("{name}_epochs.csv"), format!("{name}.safetensors")],
        peak_rss_mib: outcome.peak_rss_mib,
        resumed_after_epochs: outcome.resumed_after_epochs,
        places: outcome.places,
    };
    Ok((model, report))
}

/// Runs the stage into `out` (summary last, so its presence means the stage finished).
/// Training runs as `exe train …` child processes (`exe` is the `p2g` binary); testing
/// happens here.
pub fn run(c: &StageConfig, out: &Path, device: Device, exe: &Path) -> Result<Q3Summary> {
    let start = Instant::now();
    // One writer per stage folder; what a killed one left half-written goes (before the
    // trainings start, which clean up after themselves).
    let _lock = artifacts::Lock::acquire(
        out.join(".lock"),
        &format!("Q3's results in {}", out.display()),
    )?;
    artifacts::remove_stale_temps_in(out);
    let p = Corpus::read(&c.data_dir)?;
    let kernels = Kernels::for_run(c.train.exact);
    for &width in &c.beam_widths {
        crate::decode::check_beam_width(width, p.vocabs.tgt.len()).context("--beam-widths")?;
    }
    // A finished training of the same options and data is reused by its own process
    // (`torchkit::trainer`), an interrupted one resumes.
    let variants = Variant::all(c);
    let jobs = variants
        .iter()
        .map(|&v| training_job(exe, c, v, out, device))
        .collect();
    torchkit::jobs::run_all(jobs, c.jobs)?;
    let (a, b) = (
        training_outcome(c, Variant::NoAttention, out)?,
        training_outcome(c, Variant::Bahdanau, out)?,
    );
    let attention_checkpoint = b.checkpoint.clone();
    let training_seconds = start.elapsed().as_secs_f64();
    let (_, no_attention) = test_model(&p, c, kernels, Variant::NoAttention, a, device)?;
    let (attn_model, attention) = test_model(&p, c, kernels, Variant::Bahdanau, b, device)?;

    eprintln!("== Q3 (c) nucleus sampling, p = {}", c.top_p);
    torchkit::rng::seed(c.seed);
    // The homework samples in a process of its own: seeded, then the model built (its
    // initial draws) and loaded.
    drop(attn_model);
    let mut attn_model = fresh_model(&p, c, Variant::Bahdanau, device);
    attn_model.load(&attention_checkpoint)?;
    let sample = |_: usize| {
        kernels.predict(
            &attn_model.net,
            &p.test,
            &p.vocabs.tgt,
            Strategy::Nucleus { p: c.top_p },
            c.train.max_len,
            c.train.eval_batch_size,
            device,
        )
    };
    let first = sample(0)?;
    let s = score(&first, &p.test_gold);
    println!("Test CER: {:.4}, Test WER: {:.4}", s.cer, s.wer);
    let sets: Vec<Vec<String>> = (0..c.k).map(sample).collect::<Result<_>>()?;
    let at_k = wer_at_k(&sets, &p.test_gold);
    println!("Printing first 10 examples with multiple predictions:");
    for ex in at_k.differing.iter().take(10) {
        println!("{ex:?}");
    }
    println!("Test WER@{}: {:.4}", c.k, at_k.wer_at_k);
    let nucleus = NucleusReport {
        p: c.top_p,
        test: NucleusScores {
            cer: s.cer,
            wer: s.wer,
            wer_at_3: at_k.wer_at_k,
        },
        differing_examples: at_k.differing.len(),
        differing_sample: at_k.differing.iter().take(10).cloned().collect(),
    };

    // The Hopfield heads, tested as (b) was, then what every head retrieves.
    let mut hopfield = Vec::new();
    let mut hopfield_models = Vec::new();
    for &v in &variants {
        if let Variant::Hopfield(steps) = v {
            let outcome = training_outcome(c, v, out)?;
            let (model, report) = test_model(&p, c, kernels, v, outcome, device)?;
            hopfield.push(HopfieldRun { steps, report });
            hopfield_models.push((v.label(), model));
        }
    }
    let mut figures = Vec::new();
    let retrieval = if hopfield_models.is_empty() {
        None
    } else {
        eprintln!("== Q3: what the attention heads retrieve");
        let settings = crate::retrieval::Settings {
            max_len: c.train.max_len,
            rows: c.train.eval_batch_size,
            synthetic: c.synthetic,
        };
        let (study, drawn) = crate::retrieval::study(
            &p,
            settings,
            (Variant::Bahdanau.label(), &attn_model),
            &mut hopfield_models,
            out,
            device,
        )?;
        figures.extend(drawn);
        Some(study)
    };

    let note = if c.synthetic {
        " (generated quick-run data)"
    } else {
        ""
    };
    for (name, title, r) in [
        (
            "val_cer_no_attention",
            "Validation CER, (a) no attention",
            &no_attention,
        ),
        (
            "val_cer_attention",
            "Validation CER, (b) attention",
            &attention,
        ),
    ] {
        LineChart::new(format!("{title}{note}"))
            .x_label("epoch")
            .y_label("validation CER")
            .series(Series::over_epochs("validation set", &r.val_cer))
            .save(out.join(name))?;
        figures.extend([format!("{name}.png"), format!("{name}.svg")]);
    }
    LineChart::new(format!("Validation CER per epoch{note}"))
        .x_label("epoch")
        .y_label("validation CER")
        .series(Series::over_epochs(
            "(a) no attention",
            &no_attention.val_cer,
        ))
        .series(Series::over_epochs("(b) attention", &attention.val_cer))
        .save(out.join("val_cer"))?;
    figures.extend(["val_cer.png".to_string(), "val_cer.svg".to_string()]);

    let summary = Q3Summary {
        version: summaries::VERSION,
        config: c.options(),
        vocab_sizes: (p.vocabs.src.len(), p.vocabs.tgt.len()),
        no_attention,
        attention,
        nucleus,
        hopfield,
        retrieval,
        device: torchkit::device::describe(device),
        total_seconds: start.elapsed().as_secs_f64(),
        training_wall_seconds: training_seconds,
        testing_wall_seconds: start.elapsed().as_secs_f64() - training_seconds,
        peak_rss_mib: torchkit::runlog::peak_rss_mib(),
        figures,
    };
    artifacts::write_json(out.join("summary.json"), &summary)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_children_run_on_the_stages_device() {
        let c = StageConfig {
            data_dir: PathBuf::from("data/p2g"),
            synthetic: false,
            seed: 42,
            train: TrainConfig::default(),
            hidden: 128,
            dropout: 0.3,
            top_p: 0.8,
            k: 3,
            beam_widths: vec![5],
            jobs: 2,
            hopfield_steps: vec![1, 3],
        };
        for (device, flag) in [(Device::Cpu, "cpu"), (Device::Cuda(0), "cuda")] {
            let job = training_job(
                Path::new("p2g"),
                &c,
                Variant::Bahdanau,
                Path::new("out"),
                device,
            );
            assert_eq!(job.flag_value("--device").as_deref(), Some(flag));
        }
        let has_exact = |c: &StageConfig| {
            training_job(
                Path::new("p2g"),
                c,
                Variant::NoAttention,
                Path::new("out"),
                Device::Cpu,
            )
            .command
            .get_args()
            .any(|a| a == "--exact")
        };
        assert!(!has_exact(&c));
        let exact = StageConfig {
            train: TrainConfig {
                exact: true,
                ..TrainConfig::default()
            },
            ..c.clone()
        };
        assert!(has_exact(&exact));
    }

    /// The child parses back exactly the options its stage built.
    #[test]
    fn training_children_get_their_options_typed() {
        #[derive(clap::Parser)]
        struct Train {
            #[command(flatten)]
            args: TrainArgs,
        }
        let c = StageConfig {
            data_dir: PathBuf::from("data dir/p2g"),
            synthetic: false,
            seed: 7,
            train: TrainConfig {
                epochs: 3,
                lr: 0.001,
                exact: true,
                ..TrainConfig::default()
            },
            hidden: 64,
            dropout: 0.25,
            top_p: 0.8,
            k: 3,
            beam_widths: vec![5],
            jobs: 2,
            hopfield_steps: vec![1, 3],
        };
        for v in Variant::all(&c) {
            let want = training_options(&c, v, Path::new("out"), Device::Cpu);
            let job = training_job(Path::new("p2g"), &c, v, Path::new("out"), Device::Cpu);
            let args: Vec<_> = job.command.get_args().collect();
            assert_eq!(args[0], "train");
            let got = <Train as clap::Parser>::try_parse_from(
                std::iter::once("p2g".as_ref()).chain(args[1..].iter().copied()),
            )
            .unwrap()
            .args;
            assert_eq!(got, want);
            assert_eq!(got.model.use_attn, v != Variant::NoAttention);
            assert_eq!(
                (got.model.attn, got.model.hopfield_steps),
                match v {
                    Variant::Hopfield(n) => (Some(Head::Hopfield), n),
                    _ => (None, 1),
                }
            );
        }
    }
}

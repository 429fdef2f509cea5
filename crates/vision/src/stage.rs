//! The report's Q2 stage: model 2.1 at three learning rates, the best rate chosen on
//! validation accuracy, model 2.2 at that rate; plots and `summary.json`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use plot::{LineChart, Series};
use serde::Serialize;
use tch::Device;

use crate::dataset::{Dataset, Layout};
use crate::kernels::Kernels;
use crate::model::CnnConfig;
use crate::options::SweepRunArgs;
use crate::train::{confusion, evaluate, train, RunFiles, TrainConfig};
pub use summaries::q2::{DatasetInfo, Q2Options, Q2Summary, Run};
use torchkit::jobs::Job;

/// Options of the stage.
#[derive(Debug, Clone, Serialize)]
pub struct StageConfig {
    /// The npz file.
    pub npz: PathBuf,
    /// `npz` is the generated quick-run set (`synthetic.rs`).
    pub synthetic: bool,
    /// Epochs per run (40).
    pub epochs: usize,
    /// Learning rates of the 2.1 sweep.
    pub learning_rates: Vec<f64>,
    /// Seed.
    pub seed: u64,
    /// Pixel layout.
    pub layout: Layout,
    /// Sweep runs at once, each a child process (`cnn sweep-run`) with its share of the cores.
    pub jobs: usize,
    /// Every run as the skeleton's code runs it, op for op and draw for draw (NCHW).
    pub exact: bool,
}

impl StageConfig {
    /// The options as the summary records them.
    pub fn options(&self) -> Q2Options {
        Q2Options {
            npz: self.npz.display().to_string(),
            synthetic: self.synthetic,
            epochs: self.epochs,
            learning_rates: self.learning_rates.clone(),
            seed: self.seed,
            layout: clap::ValueEnum::to_possible_value(&self.layout)
                .map_or_else(String::new, |v| v.get_name().to_string()),
            jobs: self.jobs,
            exact: self.exact,
        }
    }

    /// The model of a run name ("2.1" or "2.2"), with the backend the stage's mode asks for
    /// (the reference ops in exact mode).
    pub fn model(&self, name: &str) -> Result<CnnConfig> {
        Ok(CnnConfig {
            kernels: Kernels::for_run(self.exact, false),
            ..model_config(name)?
        })
    }
}

/// The tag of a run's files: `model2_1_lr0.01`.
fn tag(name: &str, lr: f64) -> String {
    format!("model{}_lr{lr}", name.replace('.', "_"))
}

/// The model of a run name ("2.1" or "2.2").
pub fn model_config(name: &str) -> Result<CnnConfig> {
    match name {
        "2.1" => Ok(CnnConfig::model_2_1()),
        "2.2" => Ok(CnnConfig::model_2_2()),
        other => anyhow::bail!("unknown model '{other}' (2.1 or 2.2)"),
    }
}

/// Trains and tests one run of the stage (model `name` at `lr`) into `out`, or returns the
/// finished run a previous call left there: what `cnn sweep-run` does in a child process.
pub fn run_one(c: &StageConfig, name: &str, lr: f64, out: &Path, device: Device) -> Result<Run> {
    std::fs::create_dir_all(out)?;
    let model = c.model(name)?;
    if let Some(r) = finished_run(c, name, &model, lr, out) {
        return Ok(r);
    }
    let data = Dataset::load(&c.npz, c.layout)?;
    run(name, &model, lr, c, &data, out, device)
}

fn train_config(c: &StageConfig, lr: f64) -> TrainConfig {
    TrainConfig {
        epochs: c.epochs,
        learning_rate: lr,
        seed: c.seed,
        exact: c.exact,
        ..TrainConfig::default()
    }
}

/// What a run's results depend on, besides the code and the data's content (which the
/// xtask's stage fingerprint covers).
fn run_key(c: &StageConfig, model: &CnnConfig, lr: f64) -> String {
    format!(
        "{:?} {model:?} {} {:?}",
        train_config(c, lr),
        c.npz.display(),
        c.layout
    )
}

/// The record of a finished run with the same options in `out`, if any.
fn finished_run(
    c: &StageConfig,
    name: &str,
    model: &CnnConfig,
    lr: f64,
    out: &Path,
) -> Option<Run> {
    let key = run_key(c, model, lr);
    artifacts::read_json::<Run>(out.join(format!("{}_run.json", tag(name, lr))))
        .ok()
        .filter(|r| r.key == key)
}

fn run(
    name: &str,
    model: &CnnConfig,
    lr: f64,
    c: &StageConfig,
    data: &Dataset,
    out: &Path,
    device: Device,
) -> Result<Run> {
    let tc = train_config(c, lr);
    let tag = tag(name, lr);
    let key = run_key(c, model, lr);
    let record = out.join(format!("{tag}_run.json"));
    if let Some(r) = finished_run(c, name, model, lr, out) {
        eprintln!(
            "== Q2 model {name}, learning rate {lr}: reusing the finished run ({})",
            record.display()
        );
        return Ok(r);
    }
    eprintln!("== Q2 model {name}, learning rate {lr}");
    torchkit::rng::seed(c.seed);
    let files = RunFiles {
        checkpoint: out.join(format!("{tag}.safetensors")),
        log_csv: out.join(format!("{tag}_epochs.csv")),
        replace: false,
    };
    let trained = train(model, &tc, data, &files, device)?;
    let start = Instant::now();
    let (_, test_accuracy, preds) = evaluate(&trained.net, &data.test, tc.eval_chunk);
    println!("Final Test acc: {test_accuracy:.4}");
    let params = torchkit::layers::trainable_parameters(&trained.vs);
    println!("Number of trainable parameters: {params}");
    // Training (over every process that worked on it) and this test evaluation.
    let seconds = trained.seconds + start.elapsed().as_secs_f64();
    let accs: Vec<f64> = trained.epochs.iter().map(|r| r.val_accuracy).collect();
    let run = Run {
        model: name.to_string(),
        learning_rate: lr,
        params,
        epochs: c.epochs,
        test_accuracy,
        final_val_accuracy: *accs.last().unwrap_or(&0.0),
        best_val_accuracy: accs.iter().copied().fold(0.0, f64::max),
        seconds,
        seconds_per_epoch: trained.epochs.iter().map(|r| r.seconds).sum::<f64>()
            / c.epochs.max(1) as f64,
        per_epoch: trained.epochs,
        confusion: confusion(&preds, &data.test),
        resumed_after_epochs: trained.resumed_after_epochs,
        places: trained.places,
        key,
    };
    artifacts::write_json(&record, &run)?;
    Ok(run)
}

impl StageConfig {
    /// The configuration a stage command's options give, with the data, learning rates and
    /// parallel runs the command adds.
    pub fn from_args(
        args: &cli::stages::Q2Run,
        npz: PathBuf,
        synthetic: bool,
        learning_rates: Vec<f64>,
        jobs: usize,
    ) -> Self {
        StageConfig {
            npz,
            synthetic,
            epochs: args.epochs,
            learning_rates,
            seed: args.run.seed,
            layout: crate::options::layout(args.pixels_hwc),
            jobs,
            exact: args.run.exact,
        }
    }
}

/// The `cnn sweep-run` job of one model at one learning rate, handed its options typed
/// ([`sweep_options`]).
fn sweep_job(exe: &Path, c: &StageConfig, model: &str, lr: f64, out: &Path, device: Device) -> Job {
    let log = out.join(format!("{}.log", tag(model, lr)));
    Job::new(format!("Q2 model {model}, learning rate {lr}"), exe, log)
        .arg("sweep-run")
        .args(cli::to_args(&sweep_options(c, model, lr, out, device)))
}

/// What `cnn sweep-run` is given to train `model` at `lr` into `out`.
fn sweep_options(
    c: &StageConfig,
    model: &str,
    lr: f64,
    out: &Path,
    device: Device,
) -> SweepRunArgs {
    SweepRunArgs {
        data: c.npz.clone(),
        quick: c.synthetic,
        model: model.to_string(),
        learning_rate: lr,
        stage: cli::stages::Q2Run {
            out: out.to_path_buf(),
            epochs: c.epochs,
            run: cli::Run {
                seed: c.seed,
                device: torchkit::device::choice_of(device),
                exact: c.exact,
            },
            pixels_hwc: c.layout == Layout::ChannelsLast,
        },
    }
}

/// Runs the stage into `out` (summary last). With `c.jobs` > 1 the 2.1 sweep runs as
/// `exe sweep-run …` child processes side by side (`exe` is the `cnn` binary), on `device`
/// too; otherwise everything runs here.
pub fn run_stage(c: &StageConfig, out: &Path, device: Device, exe: &Path) -> Result<Q2Summary> {
    // One writer per stage folder; what a killed one left half-written goes (before the
    // sweep's children start, which clean up after themselves).
    let _lock = artifacts::Lock::acquire(
        out.join(".lock"),
        &format!("Q2's results in {}", out.display()),
    )?;
    artifacts::remove_stale_temps_in(out);
    let sha256 = artifacts::sha256_file(&c.npz)?;
    let intel = sha256 == datasets::INTEL.sha256;
    let label = if intel {
        "Intel landscapes"
    } else if c.synthetic {
        "generated quick-run images"
    } else if sha256 == datasets::FASHION6_SHA256 {
        "Fashion-MNIST substitute"
    } else {
        "substitute, not the Intel file"
    };
    if !intel {
        eprintln!(
            "note: {} is not the Intel file (SHA-256 {sha256}); results are for {label}",
            c.npz.display()
        );
    }
    let model_2_1 = c.model("2.1")?;
    if c.jobs > 1 {
        let jobs = c
            .learning_rates
            .iter()
            .filter(|&&lr| finished_run(c, "2.1", &model_2_1, lr, out).is_none())
            .map(|&lr| sweep_job(exe, c, "2.1", lr, out, device))
            .collect();
        torchkit::jobs::run_all(jobs, c.jobs)?;
    }
    // Loaded after the children finished, so that they do not all hold the data at once.
    let data = Dataset::load(&c.npz, c.layout)?;
    let mut runs = Vec::new();
    for &lr in &c.learning_rates {
        runs.push(run("2.1", &c.model("2.1")?, lr, c, &data, out, device)?);
    }
    let best = runs
        .iter()
        .max_by(|a, b| a.final_val_accuracy.total_cmp(&b.final_val_accuracy))
        .expect("at least one rate");
    let best_learning_rate = best.learning_rate;
    eprintln!("best learning rate for 2.1 on validation accuracy: {best_learning_rate}");
    // 2.2 as a job of its own too, where the sweep ran as jobs: on a cluster, every
    // training is a task (the record it leaves is reused below).
    let model_2_2 = c.model("2.2")?;
    if c.jobs > 1 && finished_run(c, "2.2", &model_2_2, best_learning_rate, out).is_none() {
        let job = sweep_job(exe, c, "2.2", best_learning_rate, out, device);
        torchkit::jobs::run_all(vec![job], 1)?;
    }
    runs.push(run(
        "2.2",
        &model_2_2,
        best_learning_rate,
        c,
        &data,
        out,
        device,
    )?);

    let title_note = if intel {
        String::new()
    } else {
        format!(" ({label})")
    };
    let mut figures = Vec::new();
    let best21 = runs
        .iter()
        .find(|r| r.model == "2.1" && r.learning_rate == best_learning_rate)
        .expect("present");
    let r22 = runs.last().expect("2.2 ran");
    for (r, tag) in [(best21, "2_1"), (r22, "2_2")] {
        let loss: Vec<f64> = r
            .per_epoch
            .iter()
            .map(|e| e.train_loss_cumulative)
            .collect();
        let epoch_loss: Vec<f64> = r.per_epoch.iter().map(|e| e.train_loss_epoch).collect();
        let acc: Vec<f64> = r.per_epoch.iter().map(|e| e.val_accuracy).collect();
        let name = format!("model{tag}_train_loss");
        LineChart::new(format!(
            "Model {}, lr {}: training loss{title_note}",
            r.model, r.learning_rate
        ))
        .x_label("epoch")
        .y_label("loss")
        .series(Series::over_epochs(
            "running mean since start (homework)",
            &loss,
        ))
        .series(Series::over_epochs("epoch mean", &epoch_loss))
        .save(out.join(&name))?;
        figures.extend([format!("{name}.png"), format!("{name}.svg")]);
        let name = format!("model{tag}_val_accuracy");
        LineChart::new(format!(
            "Model {}, lr {}: validation accuracy{title_note}",
            r.model, r.learning_rate
        ))
        .x_label("epoch")
        .y_label("accuracy")
        .series(Series::over_epochs("validation", &acc))
        .save(out.join(&name))?;
        figures.extend([format!("{name}.png"), format!("{name}.svg")]);
    }
    let summary = Q2Summary {
        version: summaries::VERSION,
        config: c.options(),
        dataset: DatasetInfo {
            file: c.npz.display().to_string(),
            sha256,
            intel,
            synthetic: c.synthetic,
            label: label.to_string(),
        },
        runs,
        best_learning_rate,
        figures,
        peak_rss_mib: torchkit::runlog::peak_rss_mib(),
    };
    artifacts::write_json(out.join("summary.json"), &summary)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_children_run_on_the_stages_device_and_mode() {
        let mut c = StageConfig {
            npz: PathBuf::from("data.npz"),
            synthetic: false,
            epochs: 2,
            learning_rates: vec![0.1],
            seed: 42,
            layout: Layout::Skeleton,
            jobs: 3,
            exact: false,
        };
        for (device, flag) in [(Device::Cpu, "cpu"), (Device::Cuda(0), "cuda")] {
            let job = sweep_job(Path::new("cnn"), &c, "2.1", 0.1, Path::new("out"), device);
            assert_eq!(job.flag_value("--device").as_deref(), Some(flag));
        }
        let has_exact = |c: &StageConfig| {
            sweep_job(
                Path::new("cnn"),
                c,
                "2.1",
                0.1,
                Path::new("out"),
                Device::Cpu,
            )
            .command
            .get_args()
            .any(|a| a == "--exact")
        };
        assert!(!has_exact(&c));
        assert_ne!(c.model("2.1").unwrap().kernels, Kernels::Reference);
        c.exact = true;
        assert!(has_exact(&c));
        assert_eq!(
            c.model("2.1").unwrap().kernels,
            Kernels::Reference,
            "exact runs the reference ops"
        );
    }

    /// The child parses back exactly the options its stage built, from a config to the
    /// stage's own `StageConfig` again.
    #[test]
    fn sweep_children_get_their_options_typed() {
        #[derive(clap::Parser)]
        struct SweepRun {
            #[command(flatten)]
            args: SweepRunArgs,
        }
        let c = StageConfig {
            npz: PathBuf::from("my data/x.npz"),
            synthetic: true,
            epochs: 3,
            learning_rates: vec![0.01],
            seed: 9,
            layout: Layout::ChannelsLast,
            jobs: 3,
            exact: false,
        };
        let want = sweep_options(&c, "2.2", 0.01, Path::new("out"), Device::Cpu);
        let job = sweep_job(
            Path::new("cnn"),
            &c,
            "2.2",
            0.01,
            Path::new("out"),
            Device::Cpu,
        );
        let args: Vec<_> = job.command.get_args().collect();
        assert_eq!(args[0], "sweep-run");
        let got = <SweepRun as clap::Parser>::try_parse_from(
            std::iter::once("cnn".as_ref()).chain(args[1..].iter().copied()),
        )
        .unwrap()
        .args;
        assert_eq!(got, want);
        let again = StageConfig::from_args(&got.stage, got.data.clone(), got.quick, vec![0.01], 3);
        assert_eq!(again.npz, c.npz);
        assert_eq!(
            (
                again.epochs,
                again.seed,
                again.layout,
                again.synthetic,
                again.exact
            ),
            (3, 9, Layout::ChannelsLast, true, false)
        );
    }
}

//! `cargo xtask reproduce`: runs each question's stage binary and merges their summaries.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};

use crate::{libtorch, obtain, report};

/// A stage of the homework.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Stage {
    /// Modern Hopfield networks.
    Q1,
    /// CNN image classification.
    Q2,
    /// Phoneme-to-grapheme seq2seq.
    Q3,
}

impl Stage {
    /// Its name in folders and summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Q1 => "q1",
            Stage::Q2 => "q2",
            Stage::Q3 => "q3",
        }
    }
}

/// Options of `cargo xtask reproduce`.
#[derive(clap::Args)]
pub struct Args {
    /// Comma-separated stages to run.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "q1,q2,q3")]
    only: Vec<Stage>,
    /// Output folder (default: reports/latest when it holds this configuration's runs,
    /// finished or interrupted, so a rerun continues there; else a new
    /// reports/<UTC timestamp>/, and reports/latest points at it).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Folder holding (or receiving) the datasets: p2g/{train,valid,test}.tsv and
    /// intel_landscapes.v2.npz.
    #[arg(long, alias = "data-dir", default_value = "data")]
    data: PathBuf,
    /// Run Q2 on this npz (same layout as the Intel file, e.g. a substitute) instead.
    #[arg(long)]
    npz: Option<PathBuf>,
    /// The whole pipeline in a few minutes on generated data (Q2: 900 pattern images, Q3:
    /// 2,400 made-up words) with short runs; labelled as such, never the homework numbers.
    #[arg(long)]
    quick: bool,
    /// Trainings a stage runs at the same time, each in its own process with its share of
    /// the cores: Q2's three 2.1 learning rates, Q3's (a) and (b). Default: each stage's
    /// own (Q3: 2; Q2: 1, as three runs do not share two cores evenly).
    #[arg(long, value_parser = at_least_one)]
    jobs: Option<usize>,
    /// Epochs per training run (default: the homework's).
    #[arg(long, value_parser = at_least_one)]
    epochs: Option<usize>,
    /// `--seed` (the first seed with --seeds), `--device` (with cuda the stages are built
    /// with their `cuda` feature, and the repository's libtorch gets every CUDA library
    /// unless LIBTORCH names another), `--exact` (one thread per training, as the reference
    /// runs).
    #[command(flatten)]
    run: cli::Run,
    /// Repeat every training stage with this many seeds (seed, seed+1, ...); the report then
    /// gives mean ± standard deviation and per-epoch bands. Extra seeds go to OUT/<stage>-seed<S>/.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    seeds: u64,
    /// Rerun stages whose results in --out came from other inputs (they are replaced).
    #[arg(long)]
    force: bool,
    /// Where the trainings run: here (child processes), or as tasks of Slurm job arrays
    /// (`sbatch`; needs a filesystem the nodes share for the repository, data/ and --out).
    #[arg(long, value_enum, default_value_t = Executor::Local)]
    executor: Executor,
    /// An extra `sbatch` option, passed as it is (`--slurm-arg=--partition=gpu`); repeatable.
    #[arg(long = "slurm-arg", allow_hyphen_values = true, requires = "executor")]
    slurm_args: Vec<String>,
    /// With Slurm: how many times a failed or cancelled training is submitted again (it
    /// continues from its last epoch).
    #[arg(long, default_value_t = 2)]
    retries: usize,
    /// With Slurm: CPUs per training task (its libtorch threads; Q3's trainings run best on one).
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    slurm_cpus: usize,
    /// With Slurm: submit the whole run as one job (it builds nothing there: the binaries
    /// are built here first) and return at once; its log is OUT/reproduce.log, and its report
    /// OUT/REPORT.md when it has finished.
    #[arg(long, requires = "executor")]
    no_wait: bool,
}

/// Where the trainings run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Executor {
    /// Child processes on this machine, with their share of its cores.
    Local,
    /// Tasks of Slurm job arrays.
    Slurm,
}

impl Args {
    /// The environment that makes the stage binaries' trainings go to Slurm
    /// (`torchkit::slurm`): none for the local executor.
    fn executor_env(&self) -> Vec<(&'static str, String)> {
        match self.executor {
            Executor::Local => Vec::new(),
            Executor::Slurm => vec![
                ("HW2_EXECUTOR", "slurm".into()),
                ("HW2_SLURM_ARGS", self.slurm_args.join("\u{1f}")),
                ("HW2_SLURM_RETRIES", self.retries.to_string()),
                ("HW2_SLURM_CPUS", self.slurm_cpus.to_string()),
            ],
        }
    }
}

impl Args {
    /// The Slurm executor these options describe (`None` for the local one).
    fn slurm(&self) -> Option<executors::slurm::Slurm> {
        (self.executor == Executor::Slurm).then(|| executors::slurm::Slurm {
            extra_args: self.slurm_args.clone(),
            retries: self.retries,
            cpus_per_task: self.slurm_cpus,
            mem_mib: executors::slurm::DEFAULT_MEM_MIB,
        })
    }
}

/// Set in the job that `--no-wait` submits: the stage binaries were built on the submitting
/// machine, and the compute nodes may have no Rust, so nothing is built.
const PREBUILT_ENV: &str = "HW2_PREBUILT";

/// A count of at least 1 (`--epochs`, `--jobs`).
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

impl Args {
    /// What the parser cannot check one flag at a time; refused (exit 2) before any work.
    pub fn check(&self) -> Result<(), String> {
        if self.no_wait && self.executor != Executor::Slurm {
            return Err("--no-wait submits the run to Slurm: add --executor slurm".into());
        }
        if self.run.seed.checked_add(self.seeds - 1).is_none() {
            return Err(format!(
                "--seed {} with --seeds {} runs past the largest seed, {}; choose a smaller --seed",
                self.run.seed,
                self.seeds,
                u64::MAX
            ));
        }
        Ok(())
    }
}

/// Stages whose data could not be had: the others ran and the report was written, but the
/// run is incomplete. `cargo xtask` exits with [`StagesSkipped::EXIT_CODE`] for it.
#[derive(Debug)]
pub struct StagesSkipped(pub Vec<String>);

impl StagesSkipped {
    /// The exit code of a run with skipped stages (a crash exits with 1, a bad flag with 2).
    pub const EXIT_CODE: u8 = 3;
}

impl std::fmt::Display for StagesSkipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stages skipped: {} (see the reasons above)",
            self.0.join(", ")
        )
    }
}

impl std::error::Error for StagesSkipped {}

/// Every stage, in the order they run.
pub const STAGES: &[&str] = &["q1", "q2", "q3"];

/// A stage's binary, its arguments, and the data files it reads.
struct StageCommand {
    /// The binary's name (`p2g`), one of [`STAGE_BINARIES`].
    binary: &'static str,
    args: Vec<String>,
    /// Data files with their SHA-256, hashed once per command.
    inputs: Vec<(PathBuf, String)>,
}

impl StageCommand {
    /// The binary [`build_stages`] built: `target/release/p2g`.
    fn binary(&self, root: &Path) -> Result<PathBuf> {
        let exe = crate::target_dir(root).join("release").join(self.binary);
        anyhow::ensure!(
            exe.is_file(),
            "{} is missing: build the stage binaries with `cargo xtask build` on a machine with Rust and the same filesystem",
            exe.display()
        );
        Ok(exe)
    }
}

/// The stage binaries: (package, binary).
const STAGE_BINARIES: [(&str, &str); 3] =
    [("hopfield", "q1"), ("vision", "cnn"), ("seq2seq", "p2g")];

/// Builds every stage binary in release mode, in one cargo run (so that every selection of
/// stages, and the tests that build first, share one set of artifacts), with the `cuda`
/// feature for `cuda`. Nothing is built in a `--no-wait` job: its submitting machine built
/// them, and the compute nodes may have no Rust.
pub fn build_stages(torch: &libtorch::Libtorch, cuda: bool) -> Result<()> {
    if std::env::var_os(PREBUILT_ENV).is_some() {
        return Ok(());
    }
    libtorch::cargo(torch, &build_args(cuda))
}

/// `cargo build` of every stage binary; a CUDA run links libtorch_cuda (the `cuda`
/// feature), without which libtorch sees no GPU.
fn build_args(cuda: bool) -> Vec<&'static str> {
    let mut args = vec!["build", "--release", "--quiet"];
    for (package, bin) in STAGE_BINARIES {
        args.extend(["-p", package, "--bin", bin]);
    }
    if cuda {
        args.extend(["--features", "cuda"]);
    }
    args
}

/// The data file (Q2's npz) or folder (Q3's TSVs) a stage reads, put in place (fetched when
/// missing); `None` for Q1 and quick runs, which read none.
fn stage_data(root: &Path, stage: &str, args: &Args) -> Result<Option<PathBuf>> {
    Ok(match stage {
        _ if args.quick => None,
        "q2" => Some(obtain::ensure_intel(&args.data, args.npz.as_deref())?),
        "q3" => Some(obtain::ensure_p2g(root, &args.data)?),
        _ => None,
    })
}

fn hashed(file: PathBuf) -> Result<(PathBuf, String)> {
    let sha = artifacts::sha256_file(&file)?;
    Ok((file, sha))
}

fn stage_command(
    root: &Path,
    stage: &str,
    args: &Args,
    seed: u64,
    dir: &Path,
) -> Result<StageCommand> {
    let data = stage_data(root, stage, args)?;
    let inputs = match (stage, &data) {
        ("q2", Some(npz)) => vec![hashed(npz.clone())?],
        ("q3", Some(dir)) => datasets::P2G
            .iter()
            .map(|f| hashed(dir.join(f.name)))
            .collect::<Result<_>>()?,
        _ => Vec::new(),
    };
    // The stages' own options, typed (`cli::stages`): --epochs is the user's, or a short
    // run for --quick, which trains on generated data.
    let epochs = |quick: usize, homework: usize| {
        args.epochs
            .unwrap_or(if args.quick { quick } else { homework })
    };
    // With Slurm, every training of a stage is a task at once (a local --jobs 1 would keep
    // Q2's sweep in the stage's own process).
    let jobs = |own: usize| {
        args.jobs
            .or((args.executor == Executor::Slurm).then_some(4))
            .unwrap_or(own)
    };
    let run = cli::Run {
        seed,
        ..args.run.clone()
    };
    let reproduce = |options: Vec<String>| {
        std::iter::once("reproduce".to_string())
            .chain(options)
            .collect()
    };
    let (index, options) = match stage {
        "q1" => {
            let q1 = cli::stages::Q1Stage {
                out: dir.to_path_buf(),
                seed,
                quick: args.quick,
            };
            (0, cli::to_args(&q1))
        }
        "q2" => {
            let q2 = cli::stages::Q2Stage {
                data,
                quick: args.quick,
                stage: cli::stages::Q2Run {
                    out: dir.to_path_buf(),
                    epochs: epochs(3, cli::stages::Q2_EPOCHS),
                    run,
                    pixels_hwc: false,
                },
                jobs: jobs(1),
            };
            (1, reproduce(cli::to_args(&q2)))
        }
        "q3" => {
            let q3 = cli::stages::Q3Stage {
                data,
                quick: args.quick,
                out: dir.to_path_buf(),
                epochs: epochs(5, cli::stages::Q3_EPOCHS),
                run,
                beam_widths: vec![5],
                jobs: jobs(2),
                hopfield_steps: vec![1, 3],
                no_hopfield: false,
            };
            (2, reproduce(cli::to_args(&q3)))
        }
        other => bail!("unknown stage '{other}'"),
    };
    Ok(StageCommand {
        binary: STAGE_BINARIES[index].1,
        args: options,
        inputs,
    })
}

/// What a stage's results depend on: its command line (less the output folder), the
/// SHA-256 of its data files, and the code (commit plus any uncommitted diff).
fn fingerprint(root: &Path, stage: &str, cmd: &StageCommand, dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(stage.as_bytes());
    let out = dir.display().to_string();
    for a in &cmd.args {
        h.update(if *a == out { "<out>" } else { a.as_str() }.as_bytes());
        h.update([0]);
    }
    for (_, sha) in &cmd.inputs {
        h.update(sha.as_bytes());
    }
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default()
    };
    h.update(git(&["rev-parse", "HEAD"]));
    h.update(git(&["diff", "HEAD"]));
    format!("{:x}", h.finalize())
}

/// Runs the requested stages in order, then writes `OUT/summary.json`.
pub fn run(root: &Path, args: &Args) -> Result<()> {
    let torch = libtorch::setup(
        root,
        &libtorch::SetupArgs {
            cuda: args.run.device == cli::Device::Cuda,
            force: false,
        },
    )?;
    let out = match &args.out {
        Some(dir) => dir.clone(),
        None => match latest_with_same_inputs(root, args) {
            Some(dir) => {
                eprintln!(
                    "== continuing in {} (reports/latest: same configuration, data and code)",
                    dir.display()
                );
                dir
            }
            None => root.join("reports").join(crate::clock::stamp()),
        },
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    if args.no_wait {
        if args.out.is_none() {
            point_latest(root, &out)?;
        }
        return submit_run(root, &torch, args, &out);
    }
    // One reproduce per folder at a time; the stages lock their own folders too, so an
    // orphaned stage of a killed run keeps a new run out of its folder.
    let _lock = artifacts::Lock::acquire(
        out.join(".lock"),
        &format!("the results in {}", out.display()),
    )?;
    artifacts::remove_stale_temps_in(&out);
    artifacts::remove_stale_temps_in(&out.join("figures"));
    if args.out.is_none() {
        point_latest(root, &out)?;
    }
    build_stages(&torch, args.run.device == cli::Device::Cuda)?;
    let mut table: Vec<report::StageRecord> = Vec::new();
    let mut skipped: Vec<(String, String)> = Vec::new();
    // Q1 has no training: one seed is enough.
    for (stage, seed) in stage_runs(args) {
        let name = report::stage_dir_name(stage, seed, args.run.seed);
        if skipped.iter().any(|(s, _)| s == stage) {
            continue;
        }
        let start = Instant::now();
        let dir = out.join(&name);
        let command = match stage_command(root, stage, args, seed, &dir) {
            Ok(c) => c,
            Err(e) => {
                // A dataset that cannot be had skips its stage; the others still run.
                eprintln!("== {stage}: SKIPPED — {e:#}");
                skipped.push((stage.to_string(), format!("{e:#}")));
                continue;
            }
        };
        let fp = fingerprint(root, stage, &command, &dir);
        let record_file = dir.join("stage.json");
        let pending = dir.join(".pending-fingerprint");
        if dir.exists() {
            // A stage process still running (its xtask was killed) holds its folder; once
            // it is free, what a killed writer left half-written goes.
            let stage_lock = artifacts::Lock::acquire(
                dir.join(".lock"),
                &format!("{name}'s results in {}", dir.display()),
            )?;
            artifacts::remove_stale_temps_in(&dir);
            drop(stage_lock);
        }
        let other_inputs = |what: &str| {
            anyhow!(
                "{} holds {what} {stage} results of other inputs (configuration, data or code); pass --force to replace them, or choose another --out",
                dir.display()
            )
        };
        if dir.join("summary.json").exists() {
            let record = report::StageRecord::read(&dir).or_else(|| {
                // The stage finished after its xtask was killed: the pending fingerprint
                // says which inputs it ran on, and the two files when it started and ended.
                let started = std::fs::read_to_string(&pending).ok()?;
                let seconds = mtime(&dir.join("summary.json"))? - mtime(&pending)?;
                Some(report::StageRecord {
                    stage: stage.to_string(),
                    dir: name.clone(),
                    seed,
                    seconds,
                    fingerprint: started,
                    inputs: recorded_inputs(&command),
                    reused: false,
                })
                .filter(|r| r.fingerprint == fp)
                .and_then(|r| {
                    eprintln!(
                        "== {name}: the stage finished after its xtask was stopped; recording it"
                    );
                    artifacts::write_json(&record_file, &r).ok()?;
                    let _ = std::fs::remove_file(&pending);
                    Some(r)
                })
            });
            match record {
                Some(mut r) if r.fingerprint == fp => {
                    eprintln!(
                        "== {name}: reused (same configuration, data and code as the results in {})",
                        dir.display()
                    );
                    r.reused = true;
                    table.push(r);
                    // Recorded before its xtask could clear it: the stage is finished.
                    let _ = std::fs::remove_file(&pending);
                    continue;
                }
                _ if !args.force => return Err(other_inputs("finished")),
                _ => clear(&dir)?,
            }
        } else if dir.exists() {
            // An interrupted run: its trainings resume from their last finished epoch, but
            // only if it was started with the same inputs.
            match std::fs::read_to_string(&pending) {
                Ok(p) if p == fp => eprintln!(
                    "== {name}: continuing the interrupted run in {}",
                    dir.display()
                ),
                _ if std::fs::read_dir(&dir)?
                    .filter_map(|e| e.ok())
                    .all(|e| e.file_name() == ".lock") => {}
                _ if !args.force => return Err(other_inputs("unfinished")),
                _ => clear(&dir)?,
            }
        }
        artifacts::write_atomic(&pending, fp.as_bytes())?;
        eprintln!("== {name}: running");
        let mut cmd = libtorch::runtime_command(&torch, &command.binary(root)?);
        cmd.args(&command.args).envs(args.executor_env());
        if args.run.exact {
            // The reference runs of the homework's code used one thread; Q2's convolutions
            // round differently with more.
            cmd.env("OMP_NUM_THREADS", "1");
        }
        match args.slurm().filter(|_| stage == "q1") {
            // Q1 has no trainings to hand out: with Slurm, the whole stage is one job.
            Some(slurm) => {
                std::fs::create_dir_all(&dir)?;
                let log = dir.join("q1.log");
                let job = executors::Job {
                    name: name.clone(),
                    command: cmd,
                    log: log.clone(),
                };
                let ran = slurm.run_all(std::slice::from_ref(&job));
                eprint!("{}", std::fs::read_to_string(&log).unwrap_or_default());
                ran.with_context(|| format!("stage {name} failed"))?;
            }
            // Supervised: SIGTERM to the xtask stops the stage's whole tree and waits for it.
            None => {
                if !supervise::status(&mut cmd)
                    .context("running the stage")?
                    .success()
                {
                    bail!("stage {name} failed (see its output above)");
                }
            }
        }
        anyhow::ensure!(
            dir.join("summary.json").exists(),
            "stage {name} wrote no summary.json"
        );
        let record = report::StageRecord {
            stage: stage.to_string(),
            dir: name,
            seed,
            seconds: start.elapsed().as_secs_f64(),
            fingerprint: fp,
            inputs: recorded_inputs(&command),
            reused: false,
        };
        artifacts::write_json(&record_file, &record)?;
        let _ = std::fs::remove_file(&pending);
        table.push(record);
    }
    // Stages finished in this folder by earlier runs (e.g. `--only q2` after `--only q1,q3`)
    // belong in the summary and the report too.
    for stage in STAGES {
        if table.iter().any(|r| r.stage == *stage) {
            continue;
        }
        let earlier = report::StageRecord::read(&out.join(stage));
        if let Some(mut r) = earlier.filter(|_| out.join(stage).join("summary.json").exists()) {
            r.reused = true;
            table.push(r);
        }
    }
    let ran: Vec<&str> = table
        .iter()
        .filter(|r| r.seed == args.run.seed)
        .map(|r| r.stage.as_str())
        .collect();
    let mut merged = report::stage_summaries(&out, &ran, args.quick)?;
    if args.seeds > 1 {
        merged.seeds = Some(report::seeds::aggregate(&out, &table, args.quick)?);
    }
    artifacts::write_json(out.join("summary.json"), &merged)?;
    let facts = report::RunFacts {
        date: crate::clock::stamp(),
        commit: git_commit(root),
        libtorch: torch.version.clone(),
        device: args.run.device.as_arg().to_string(),
        stages: table.clone(),
        skipped: skipped.clone(),
        quick: args.quick,
    };
    report::write(root, &out, &merged, &facts)?;
    eprintln!("\n{:<12} {:>8} {:>10}", "stage", "seed", "seconds");
    for r in &table {
        let how = if r.reused { " (reused)" } else { "" };
        eprintln!("{:<12} {:>8} {:>10.1}{how}", r.stage, r.seed, r.seconds);
    }
    eprintln!("Results in {}", out.display());
    eprintln!(
        "Report: {} (and report.html)",
        out.join("REPORT.md").display()
    );
    if !skipped.is_empty() {
        let names = skipped.iter().map(|s| s.0.clone()).collect();
        return Err(StagesSkipped(names).into());
    }
    Ok(())
}

/// `--no-wait`: builds the stage binaries here (and fetches the data), then
/// submits the run itself — this command without `--no-wait`, into `out` — as one Slurm job,
/// and returns. The job's log is `OUT/reproduce.log`, its exit code `OUT/reproduce.status`.
fn submit_run(root: &Path, torch: &libtorch::Libtorch, args: &Args, out: &Path) -> Result<()> {
    let slurm = args.slurm().context("--no-wait needs --executor slurm")?;
    let record = out.join(".slurm-run");
    if let Ok(id) = std::fs::read_to_string(&record) {
        let id = id.trim();
        if executors::slurm::in_queue(id)? {
            bail!(
                "{} is already being reproduced by slurm job {id} (squeue -j {id}): wait for it, cancel it (scancel {id}), or choose another --out",
                out.display()
            );
        }
    }
    // Not while a reproduce works in this folder.
    drop(artifacts::Lock::acquire(
        out.join(".lock"),
        &format!("the results in {}", out.display()),
    )?);
    build_stages(torch, args.run.device == cli::Device::Cuda)?;
    // The data too: compute nodes often have no internet. What cannot be had here skips its
    // stage in the job as well, saying why there.
    for stage in STAGES {
        if args.only.iter().any(|o| o.as_str() == *stage) {
            let _ = stage_data(root, stage, args);
        }
    }
    // This command as typed, less what made it return at once and where it wrote.
    let mut words = Vec::new();
    let mut typed = std::env::args().skip(1);
    while let Some(word) = typed.next() {
        match word.as_str() {
            "--no-wait" => {}
            "--out" => {
                typed.next();
            }
            w if w.starts_with("--out=") => {}
            _ => words.push(word),
        }
    }
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command
        .current_dir(root)
        .args(&words)
        .arg("--out")
        .arg(out)
        .env(PREBUILT_ENV, "1");
    let log = out.join("reproduce.log");
    let job = executors::Job {
        name: "reproduce".into(),
        command,
        log: log.clone(),
    };
    // The run itself only waits on its stages' jobs: one CPU.
    let run = executors::slurm::Slurm {
        cpus_per_task: 1,
        ..slurm
    };
    let id = run.submit_detached(&job)?;
    artifacts::write_atomic(&record, id.as_bytes())?;
    eprintln!(
        "== submitted: slurm job {id} runs `xtask {}` (log: {})",
        words.join(" "),
        log.display()
    );
    eprintln!(
        "   watch it with `squeue -j {id}` and `tail -f {}`; cancel it with `scancel {id}`, and the same command continues it",
        log.display()
    );
    eprintln!(
        "   when it ends, its exit code is in {} and the report in {} (`cargo xtask report --out {}` assembles it again)",
        executors::slurm::status_file(&log).display(),
        out.join("REPORT.md").display(),
        out.display()
    );
    Ok(())
}

/// A stage's data files with their SHA-256, as its record keeps them.
fn recorded_inputs(command: &StageCommand) -> Vec<(String, String)> {
    command
        .inputs
        .iter()
        .map(|(f, sha)| (f.display().to_string(), sha.clone()))
        .collect()
}

/// Seconds since the epoch of a file's last modification.
fn mtime(path: &Path) -> Option<f64> {
    let t = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64())
}

/// Every (stage, seed) to run, in order; Q1 has no training, so one seed is enough.
fn stage_runs(args: &Args) -> impl Iterator<Item = (&'static str, u64)> + '_ {
    STAGES
        .iter()
        .filter(|s| args.only.iter().any(|o| o.as_str() == **s))
        .flat_map(move |s| {
            let n = if *s == "q1" { 1 } else { args.seeds };
            (0..n).map(move |i| (*s, args.run.seed + i))
        })
}

/// `reports/latest` when every stage folder there is missing, finished or interrupted with
/// the fingerprint this run would have: so that the plain `cargo xtask reproduce`, run
/// again after an interruption (or after it finished), continues in the same folder.
fn latest_with_same_inputs(root: &Path, args: &Args) -> Option<PathBuf> {
    let latest = std::fs::canonicalize(root.join("reports").join("latest")).ok()?;
    let same = stage_runs(args).all(|(stage, seed)| {
        let dir = latest.join(report::stage_dir_name(stage, seed, args.run.seed));
        let Ok(command) = stage_command(root, stage, args, seed, &dir) else {
            return true; // skipped again either way
        };
        let fp = fingerprint(root, stage, &command, &dir);
        let recorded = report::StageRecord::read(&dir)
            .map(|r| r.fingerprint)
            .or_else(|| std::fs::read_to_string(dir.join(".pending-fingerprint")).ok());
        recorded.is_none_or(|r| r == fp)
    });
    same.then_some(latest)
}

/// Empties a stage folder whose results `--force` replaces.
fn clear(dir: &Path) -> Result<()> {
    eprintln!(
        "== --force: removing the previous results in {}",
        dir.display()
    );
    std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))
}

/// Points `reports/latest` at `out` (a symlink, replaced atomically).
fn point_latest(root: &Path, out: &Path) -> Result<()> {
    let reports = root.join("reports");
    let target = out.strip_prefix(&reports).unwrap_or(out);
    let tmp = reports.join(".latest.tmp");
    let _ = std::fs::remove_file(&tmp);
    #[cfg(unix)]
    std::os::unix::fs::symlink(target, &tmp)
        .and_then(|()| std::fs::rename(&tmp, reports.join("latest")))
        .with_context(|| {
            format!(
                "pointing {} at {}",
                reports.join("latest").display(),
                out.display()
            )
        })?;
    Ok(())
}

/// `cargo xtask report --out DIR`: the report again from the stage summaries in DIR.
pub fn report_only(root: &Path, out: &Path) -> Result<()> {
    // The merged summary of the run that made `out` knows whether it was quick, and its
    // statistics over seeds; the stages' own summaries are read afresh.
    let previous: Option<summaries::Run> = summaries::read(out.join("summary.json")).ok();
    let quick = previous.as_ref().is_some_and(|p| p.quick);
    let mut merged = report::stage_summaries(out, STAGES, quick)?;
    anyhow::ensure!(
        merged.q1.is_some() || merged.q2.is_some() || merged.q3.is_some(),
        "{} holds no stage results (q1/summary.json, ...)",
        out.display()
    );
    merged.seeds = previous.and_then(|p| p.seeds);
    let mut stages: Vec<report::StageRecord> = std::fs::read_dir(out)?
        .filter_map(|e| report::StageRecord::read(&e.ok()?.path()))
        .collect();
    stages.sort_by(|a, b| (&a.stage, a.seed).cmp(&(&b.stage, b.seed)));
    let facts = report::RunFacts {
        date: crate::clock::stamp(),
        commit: git_commit(root),
        libtorch: libtorch::installed_version(root).unwrap_or_else(|| "unknown".into()),
        device: merged
            .q3
            .as_ref()
            .map_or("as recorded by the stages".into(), |q| q.device.clone()),
        stages,
        skipped: Vec::new(),
        quick,
    };
    report::write(root, out, &merged, &facts)?;
    eprintln!(
        "Report: {} (and report.html)",
        out.join("REPORT.md").display()
    );
    Ok(())
}

/// The checked-out commit (short), with `-dirty` when the tree has changes.
fn git_commit(root: &Path) -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "--short", "HEAD"]) {
        Some(c) if run(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty()) => {
            format!("{c}-dirty")
        }
        Some(c) => c,
        None => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_would_fail_later_are_refused_by_the_parser() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let parse = |flags: &[&str]| {
            <Cli as clap::Parser>::try_parse_from(
                std::iter::once("reproduce").chain(flags.iter().copied()),
            )
        };
        for bad in [["--epochs", "0"], ["--jobs", "0"], ["--seeds", "0"]] {
            let err = parse(&bad).err().expect("refused");
            assert_eq!(err.exit_code(), 2, "{bad:?}");
            assert!(err.to_string().contains(bad[0]), "{bad:?}: {err}");
        }
        let args = parse(&["--seed", "18446744073709551615", "--seeds", "2"])
            .unwrap()
            .args;
        let why = args.check().unwrap_err();
        assert!(why.contains("runs past the largest seed"), "{why}");
        assert_eq!(parse(&["--no-wait"]).err().expect("refused").exit_code(), 2);
        let why = parse(&["--no-wait", "--executor", "local"])
            .unwrap()
            .args
            .check()
            .unwrap_err();
        assert!(why.contains("--executor slurm"), "{why}");
        parse(&["--no-wait", "--executor", "slurm"])
            .unwrap()
            .args
            .check()
            .unwrap();
        let args = parse(&["--seed", "18446744073709551614", "--seeds", "2"])
            .unwrap()
            .args;
        args.check().unwrap();
        assert_eq!(stage_runs(&args).last(), Some(("q3", u64::MAX)));
    }

    #[test]
    fn fingerprint_ignores_the_output_folder_but_not_arguments_or_data() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let data = std::env::temp_dir().join(format!("fp-data-{}", std::process::id()));
        std::fs::write(&data, b"one").unwrap();
        let cmd = |out: &str, seed: &str| StageCommand {
            binary: "q1",
            args: vec!["--out".into(), out.into(), "--seed".into(), seed.into()],
            inputs: vec![hashed(data.clone()).unwrap()],
        };
        let fp = |out: &str, seed: &str| fingerprint(&root, "q9", &cmd(out, seed), Path::new(out));
        let base = fp("/a", "42");
        assert_eq!(
            base,
            fp("/b", "42"),
            "moving the output folder changes nothing"
        );
        assert_ne!(base, fp("/a", "7"), "a different seed is a different run");
        std::fs::write(&data, b"two").unwrap();
        assert_ne!(base, fp("/a", "42"), "different data is a different run");
        std::fs::remove_file(data).unwrap();
    }
    #[test]
    fn cuda_runs_build_the_stages_with_their_cuda_feature() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let stage_args = |device: &str| {
            let cli: Cli =
                clap::Parser::try_parse_from(["reproduce", "--quick", "--device", device]).unwrap();
            stage_command(Path::new("."), "q3", &cli.args, 42, Path::new("out"))
                .unwrap()
                .args
        };
        let cuda = build_args(true);
        assert!(cuda
            .windows(4)
            .any(|w| w == ["-p", "seq2seq", "--bin", "p2g"]));
        assert!(cuda.ends_with(&["--features", "cuda"]), "{cuda:?}");
        assert!(stage_args("cuda")
            .windows(2)
            .any(|w| w == ["--device", "cuda"]));
        let cpu = build_args(false);
        assert!(!cpu.contains(&"--features"), "{cpu:?}");
    }

    #[test]
    fn exact_runs_hand_their_stages_the_flag() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        for (flags, expect) in [
            (&["--quick"][..], false),
            (&["--quick", "--exact"][..], true),
        ] {
            let cli: Cli = clap::Parser::try_parse_from(
                std::iter::once("reproduce").chain(flags.iter().copied()),
            )
            .unwrap();
            for stage in ["q2", "q3"] {
                let args = stage_command(Path::new("."), stage, &cli.args, 42, Path::new("out"))
                    .unwrap()
                    .args;
                assert_eq!(
                    args.contains(&"--exact".to_string()),
                    expect,
                    "{stage}: {args:?}"
                );
            }
        }
    }
}

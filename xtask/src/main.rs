//! `cargo xtask`: the project's automation, in the style of rust-analyzer's xtask.
//!
//! * `setup`     — install libtorch 2.11.0 into `.libtorch/` (idempotent).
//! * `fixtures`  — the files the test suite reads (Q3 data, the seed report's weights).
//! * `test`      — set-up, fixtures, then fmt check, clippy, and the whole test suite.
//! * `fresh-clone` — the suite on a clone of HEAD with no `../shared`, no `data/` and no
//!   downloads: only the tests that need the fixtures may fail, each saying how to get them.
//! * `reproduce` — set-up, then every question's stage and the merged summary.
//! * `bench`     — our speed beside the homework's code, timed side by side.
//! * `screenshot` — `report.html` checked in headless Chromium at a laptop's and a phone's
//!   width, and photographed.
//! * `fuzz`      — mutation campaigns against every reader of outside files.
//!
//! It links no libtorch itself, so it always compiles; it drives cargo with the environment
//! the libtorch crates need.

mod bench;
mod browser;
mod clock;
mod fresh_clone;
mod growth;
mod libtorch;
mod measuring;
mod obtain;
mod report;
mod reproduce;
mod slurm;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    version,
    about = "Build, test and reproduce the homework."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install libtorch 2.11.0 into .libtorch/ (skipped when present or LIBTORCH is set).
    Setup(libtorch::SetupArgs),
    /// Put the files the test suite reads into data/ (from ../shared/ where it is there,
    /// else downloaded and verified; CARGO_NET_OFFLINE=true forbids downloads).
    Fixtures,
    /// Set-up, fixtures, then `cargo fmt --check`, `cargo clippy -D warnings` and
    /// `cargo test --workspace`.
    Test {
        /// Skip fmt and clippy; only run the tests.
        #[arg(long)]
        no_lint: bool,
        /// Extra arguments passed to `cargo test` (after `--`).
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
    /// Check that a fresh clone of HEAD (no ../shared, no data/, downloads off) builds and
    /// passes every test but those needing the fixtures, which must say how to get them.
    FreshClone,
    /// Set-up, then run the homework's stages and write the results and REPORT.md.
    Reproduce(reproduce::Args),
    /// Build the stage binaries `reproduce` runs (release, all three in one cargo run), e.g.
    /// once on a cluster's submitting machine.
    Build {
        /// With libtorch's CUDA backend (the `cuda` feature), as `reproduce --device cuda` runs.
        #[arg(long)]
        cuda: bool,
    },
    /// Time our Q2 epochs and Q3 stage beside the homework's own code (`--homework DIR
    /// --python PY`), alternating, on this machine; writes reports/bench/latest.json, which
    /// the report's speed section shows.
    Bench(bench::Args),
    /// How an epoch's cost grows with the training set (¼, ½, 1, 2×; Q2 and Q3) and with
    /// Q3's hidden size (64, 128, 256), ours and, with --homework, the homework's code's;
    /// writes reports/bench/growth.{json,png}, which the report's speed section shows.
    Growth(growth::Args),
    /// Check OUT/report.html in headless Chromium at a laptop's and a phone's width (every
    /// figure loads, the maths is drawn, nothing overflows) and write report-laptop.png and
    /// report-phone.png.
    Screenshot {
        /// The folder of a `reproduce` run.
        #[arg(long, default_value = "reports/latest")]
        out: std::path::PathBuf,
        /// Where the screenshots go (`assets` for the README's).
        #[arg(long, default_value = "reports/screenshots")]
        to: std::path::PathBuf,
        /// Also photograph these sections at the laptop width, by the start of their anchor
        /// (`q3` for "Q3 — Phoneme-to-grapheme seq2seq"): report-<section>.png.
        #[arg(long, value_delimiter = ',')]
        section: Vec<String>,
    },
    /// Longer mutation campaigns than the test suite's against every reader of outside
    /// files (.pt, safetensors, npz, TSV, resume points), with fresh seeds; the mutants that
    /// break a rule stay in target/fuzz/ (see crates/fuzz).
    Fuzz {
        /// Mutants per reader.
        #[arg(long, default_value_t = 20_000)]
        count: usize,
        /// Seed of the mutations (default: from the clock; printed, to reproduce a campaign).
        #[arg(long)]
        seed: Option<u64>,
        /// Readers to fuzz, comma-separated: pt, safetensors, npz, tsv, resume (default: all).
        #[arg(long)]
        only: Option<String>,
    },
    /// Write REPORT.md again from the stage results already in a folder.
    Report {
        /// The folder of a `reproduce` run.
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Command::Reproduce(args) = &cli.command {
        if let Err(why) = args.check() {
            use clap::CommandFactory;
            Cli::command()
                .error(clap::error::ErrorKind::ArgumentConflict, why)
                .exit();
        }
    }
    match run(cli) {
        Err(e) if e.downcast_ref::<reproduce::StagesSkipped>().is_some() => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(reproduce::StagesSkipped::EXIT_CODE)
        }
        result => artifacts::exit_code(result),
    }
}

fn run(cli: Cli) -> Result<()> {
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match cli.command {
        Command::Setup(args) => libtorch::setup(&root, &args).map(|_| ()),
        Command::Fixtures => {
            for (var, dir) in obtain::ensure_fixtures(&root)? {
                eprintln!("{var}={}", dir.display());
            }
            Ok(())
        }
        Command::Test {
            no_lint,
            cargo_args,
        } => test(&root, no_lint, &cargo_args),
        Command::FreshClone => {
            std::env::set_var("SLURM_CONF", slurm::ensure_cluster(&root)?);
            fresh_clone::run(&root, &libtorch::ensure(&root)?)
        }
        Command::Reproduce(args) => reproduce::run(&root, &args),
        Command::Build { cuda } => {
            let torch = libtorch::setup(&root, &libtorch::SetupArgs { cuda, force: false })?;
            reproduce::build_stages(&torch, cuda)
        }
        Command::Bench(args) => bench::run(&root, &libtorch::ensure(&root)?, &args),
        Command::Growth(args) => growth::run(&root, &libtorch::ensure(&root)?, &args),
        Command::Report { out } => reproduce::report_only(&root, &out),
        Command::Fuzz { count, seed, only } => {
            let torch = libtorch::ensure(&root)?;
            // Optimised, with overflow checks: a wrapped size is what fuzzing looks for.
            libtorch::cargo(
                &torch,
                &["build", "--profile", "fuzz", "-p", "fuzz", "--bins"],
            )?;
            let mut cmd = std::process::Command::new(target_dir(&root).join("fuzz").join("fuzz"));
            cmd.args(["--count", &count.to_string()]);
            if let Some(seed) = seed {
                cmd.args(["--seed", &seed.to_string()]);
            }
            if let Some(only) = only {
                cmd.args(["--only", &only]);
            }
            anyhow::ensure!(
                supervise::status(&mut cmd)?.success(),
                "the fuzz campaigns found mutants that break a rule (listed above)"
            );
            Ok(())
        }
        Command::Screenshot { out, to, section } => {
            ensure_debian_tool("chromium", "screenshot", || browser::chromium().is_some())?;
            browser::run(&out, &to, &section)
        }
    }
}

fn workspace_root() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

/// Where cargo puts what it builds (`CARGO_TARGET_DIR`, else `target/`).
fn target_dir(root: &std::path::Path) -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// Whether `cmd args` runs and succeeds.
fn succeeds(cmd: &str, args: &[&str]) -> bool {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A tool some tests need (strace places the kill-anywhere tests' SIGKILLs; Chromium checks
/// the report page): installed from Debian's `package` when `present` says it is missing and
/// this is root with apt-get, else a one-sentence error.
fn ensure_debian_tool(package: &str, why: &str, present: impl Fn() -> bool) -> Result<()> {
    if present() {
        return Ok(());
    }
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if root && succeeds("apt-get", &["--version"]) {
        eprintln!("Installing {package} (apt-get) for {why} ...");
        if succeeds("apt-get", &["update", "-qq"])
            && succeeds("apt-get", &["install", "-y", "-qq", package])
            && present()
        {
            return Ok(());
        }
    }
    anyhow::bail!(
        "{why} needs {package}, which is not installed: install it (Debian: sudo apt-get install {package}) and run again"
    )
}

fn test(root: &std::path::Path, no_lint: bool, cargo_args: &[String]) -> Result<()> {
    let torch = libtorch::ensure(root)?;
    ensure_debian_tool("strace", "the kill-anywhere tests", || {
        succeeds("strace", &["--version"])
    })?;
    ensure_debian_tool("chromium", "the report page's browser test", || {
        browser::chromium().is_some()
    })?;
    // The Slurm executor's tests submit to a one-node cluster on this machine.
    std::env::set_var("SLURM_CONF", slurm::ensure_cluster(root)?);
    // The tests that need the Q3 data or the seed report's weights find them through these
    // variables; without them they fail naming the missing file.
    for (var, dir) in obtain::ensure_fixtures(root).context(
        "the test suite's files could not be had (see above); `cargo xtask fixtures` retries",
    )? {
        std::env::set_var(var, dir);
    }
    if !no_lint {
        libtorch::cargo(&torch, &["fmt", "--all", "--check"])?;
        libtorch::cargo(
            &torch,
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        )?;
    }
    // libtorch's OpenMP threads busy-wait when the test harness already keeps every core
    // busy; one thread per test is much faster here.
    if std::env::var_os("OMP_NUM_THREADS").is_none() {
        std::env::set_var("OMP_NUM_THREADS", "1");
    }
    let mut args = vec!["test", "--workspace"];
    if !cargo_args.is_empty() {
        args.push("--");
        args.extend(cargo_args.iter().map(String::as_str));
    }
    libtorch::cargo(&torch, &args)
}

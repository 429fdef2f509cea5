//! The report's head: what ran, where, when, on which data, and the stage records the xtask
//! keeps beside each stage's summary.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use summaries::Stage;

/// One stage run as the xtask saw it; `OUT/<dir>/stage.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageRecord {
    /// q1, q2 or q3.
    pub stage: String,
    /// Its folder under OUT (`q2`, or `q2-seed43` for extra seeds).
    pub dir: String,
    /// Seed of the run.
    pub seed: u64,
    /// Wall seconds of the run (build included).
    pub seconds: f64,
    /// What the results depend on (see `reproduce::fingerprint`).
    pub fingerprint: String,
    /// Data files read, with their SHA-256.
    pub inputs: Vec<(String, String)>,
    /// Reused from an earlier run in this run (not saved).
    #[serde(skip)]
    pub reused: bool,
}

impl StageRecord {
    /// The record in a stage folder (`<dir>/stage.json`), if there is a readable one.
    pub fn read(dir: &Path) -> Option<Self> {
        artifacts::read_json(dir.join("stage.json")).ok()
    }
}

/// The folder of a stage run: `q2` for the first seed, `q2-seed43` for the others.
pub fn stage_dir_name(stage: &str, seed: u64, first_seed: u64) -> String {
    if seed == first_seed {
        stage.to_string()
    } else {
        format!("{stage}-seed{seed}")
    }
}

/// Facts about the run, printed at the top of the report.
pub struct RunFacts {
    /// UTC timestamp, `YYYYMMDDTHHMMSSZ`.
    pub date: String,
    /// `git describe`-like commit id, or "unknown".
    pub commit: String,
    /// libtorch version string.
    pub libtorch: String,
    /// `--device` of the training stages.
    pub device: String,
    /// Every stage run, in order.
    pub stages: Vec<StageRecord>,
    /// Stages that could not run, with the reason.
    pub skipped: Vec<(String, String)>,
    /// A `--quick` run.
    pub quick: bool,
}

/// Appends the title, the run facts and the table of stage runs to `md`.
pub fn write(md: &mut String, out: &Path, facts: &RunFacts) {
    md.push_str("# IST Deep Learning 2024-25, Homework 2 — reproduced in Rust on libtorch\n\n");
    if facts.quick {
        md.push_str("> **Quick run — not the homework numbers.** Shortened runs for a first look; see `cargo xtask reproduce` without `--quick`.\n\n");
    }
    let threads = std::env::var("OMP_NUM_THREADS")
        .unwrap_or_else(|_| "libtorch default (one per core)".into());
    let _ = writeln!(
        md,
        "| run fact | value |\n|---|---|\n| date | {} |\n| git commit | {} |\n| libtorch | {} |\n| machine | {} cores; training device: {}; libtorch threads: {threads} |",
        crate::clock::readable(&facts.date),
        facts.commit,
        facts.libtorch,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        facts.device
    );
    md.push_str("\n| stage run | seed | wall time | peak memory | data (SHA-256) |\n|---|---|---|---|---|\n");
    let mut interrupted = Vec::new();
    let mut places = Vec::new();
    let short = |sha: &str| sha[..sha.len().min(12)].to_string();
    for r in &facts.stages {
        let summary = Stage::read(&r.stage, &out.join(&r.dir)).ok();
        let summary = summary.as_ref();
        for (training, on) in summary.map(Stage::places).unwrap_or_default() {
            places.push((format!("{} {training}", r.dir), on.join(", then ")));
        }
        for (training, epochs) in summary.map(Stage::resumed).unwrap_or_default() {
            let epochs: Vec<String> = epochs.iter().map(usize::to_string).collect();
            interrupted.push((format!("{} {training}", r.dir), epochs.join(", ")));
        }
        let peak = summary
            .and_then(Stage::peak_rss_mib)
            .map_or("–".into(), |m| format!("{m:.0} MiB"));
        let data = if let Some(ds) = summary.and_then(Stage::dataset) {
            format!("`{}` ({}…) — {}", ds.file, short(&ds.sha256), ds.label)
        } else if summary.is_some_and(Stage::synthetic) {
            "generated quick-run data".into()
        } else if r.inputs.is_empty() {
            "–".into()
        } else {
            r.inputs
                .iter()
                .map(|(f, sha)| format!("`{f}` ({}…)", short(sha)))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let how = if r.reused { " (reused)" } else { "" };
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} s{how} | {peak} | {data} |",
            r.dir, r.seed, r.seconds
        );
    }
    for (stage, why) in &facts.skipped {
        let _ = writeln!(
            md,
            "| {stage} | – | **skipped** | – | {} |",
            why.replace('|', "\\|").replace('\n', " ")
        );
    }
    md.push('\n');
    // Where the trainings ran, when a scheduler placed them (a local run is all here).
    if places.iter().any(|(_, on)| on.contains("slurm job")) {
        md.push_str("| training | ran on |\n|---|---|\n");
        for (training, on) in &places {
            let _ = writeln!(md, "| {training} | {on} |");
        }
        md.push('\n');
    }
    for (at, epoch) in &interrupted {
        let _ = writeln!(md, "> Training `{at}` was interrupted and resumed after epoch {epoch}; it continued exactly (weights, optimiser and generator state restored), so its figures are those of an unbroken run.\n");
    }
}

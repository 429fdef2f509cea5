//! `OUT/REPORT.md` and `OUT/report.html`: every stage's numbers beside the homework's
//! published ones, with figures; [`seeds`] adds mean ± std over repeated runs.

mod exactness;
pub mod html;
pub mod seeds;
mod speed;

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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

const DERIVATIONS: &str = include_str!("../../../assets/q1_derivations.md");

fn f4(v: &Value) -> String {
    v.as_f64().map_or("–".into(), |x| format!("{x:.4}"))
}

/// "0.5543 (0.49–0.57)" and our difference to the seed figure, with ✓ when inside the range.
fn beside(ours: &Value, reference: Option<&toml::Value>) -> (String, String) {
    let Some(r) = reference else {
        return ("–".into(), "".into());
    };
    let seed = r.get("seed").and_then(toml::Value::as_float);
    let range: Vec<f64> = r
        .get("range")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(toml::Value::as_float).collect())
        .unwrap_or_default();
    let published = match (seed, range.as_slice()) {
        (Some(s), [lo, hi]) => format!("{s:.4} ({lo:.2}–{hi:.2})"),
        (Some(s), _) => format!("{s:.4}"),
        _ => "–".into(),
    };
    let diff = match (ours.as_f64(), seed) {
        (Some(o), Some(s)) => {
            let inside = matches!(range.as_slice(), [lo, hi] if (*lo..=*hi).contains(&((o * 100.0).round() / 100.0)));
            format!("{:+.4}{}", o - s, if inside { " ✓" } else { "" })
        }
        _ => "".into(),
    };
    (published, diff)
}

/// References a figure (`q2/model2_1_train_loss.png`) from `OUT/figures/`, copying it (and
/// its SVG twin) there, so `REPORT.md` with `figures/` is the whole report.
fn figure(md: &mut String, out: &Path, path: &str, caption: &str) {
    let name = path.replace('/', "_");
    let target = if path.starts_with("figures/") {
        path.to_string()
    } else {
        for ext in ["png", "svg"] {
            let (from, to) = (
                out.join(path).with_extension(ext),
                out.join("figures").join(&name).with_extension(ext),
            );
            if let Ok(bytes) = std::fs::read(&from) {
                let _ = artifacts::write_atomic(&to, &bytes);
            }
        }
        format!("figures/{name}")
    };
    let _ = writeln!(md, "![{caption}]({target})\n");
}

/// Reads the summaries of the stages that finished in `out` (`<stage>/summary.json`).
pub fn stage_summaries(out: &Path, stages: &[&str]) -> Result<serde_json::Map<String, Value>> {
    let mut merged = serde_json::Map::new();
    for stage in stages {
        let path = out.join(stage).join("summary.json");
        if path.exists() {
            merged.insert(stage.to_string(), artifacts::read_json(&path)?);
        }
    }
    Ok(merged)
}

/// Largest `peak_rss_mib` anywhere in a stage summary (per-process peaks), MiB.
fn peak_mib(v: &Value) -> Option<f64> {
    match v {
        Value::Object(m) => m
            .iter()
            .filter_map(|(k, v)| {
                if k == "peak_rss_mib" {
                    v.as_f64()
                } else {
                    peak_mib(v)
                }
            })
            .reduce(f64::max),
        Value::Array(a) => a.iter().filter_map(peak_mib).reduce(f64::max),
        _ => None,
    }
}

/// (where, epochs) of every non-empty `resumed_after_epochs` in a stage summary.
fn resumed(v: &Value, at: &str, found: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            let epochs: Vec<String> = m
                .get("resumed_after_epochs")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_u64)
                        .map(|e| e.to_string())
                        .collect()
                })
                .unwrap_or_default();
            if !epochs.is_empty() {
                found.push((at.to_string(), epochs.join(", ")));
            }
            for (k, v) in m {
                resumed(v, &format!("{at}.{k}"), found);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                resumed(v, &format!("{at}[{i}]"), found);
            }
        }
        _ => {}
    }
}

/// "5,340,742" from an integer.
fn thousands(v: &Value) -> String {
    let Some(n) = v.as_i64() else {
        return "–".into();
    };
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// "0.6900 ± 0.0123" from a `seeds` statistic.
fn pm(stat: &Value) -> String {
    match (stat["mean"].as_f64(), stat["std"].as_f64()) {
        (Some(m), Some(s)) => format!(
            "{m:.4} ± {s:.4} (n={})",
            stat["values"].as_array().map_or(0, Vec::len)
        ),
        _ => "–".into(),
    }
}

/// Writes `OUT/REPORT.md` and `OUT/report.html` from `OUT/<stage>/summary.json` and
/// `assets/reference.toml`.
pub fn write(
    root: &Path,
    out: &Path,
    summary: &serde_json::Map<String, Value>,
    facts: &RunFacts,
) -> Result<()> {
    let reference: toml::Value = toml::from_str(
        &std::fs::read_to_string(root.join("assets/reference.toml"))
            .context("reading assets/reference.toml")?,
    )?;
    let mut md = String::new();
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
    for r in &facts.stages {
        let stage_summary: Value =
            artifacts::read_json(out.join(&r.dir).join("summary.json")).unwrap_or_default();
        resumed(&stage_summary, &r.dir, &mut interrupted);
        let peak = peak_mib(&stage_summary).map_or("–".into(), |m| format!("{m:.0} MiB"));
        let short = |sha: &str| sha[..sha.len().min(12)].to_string();
        let data = if let Some(ds) = stage_summary.get("dataset") {
            format!(
                "`{}` ({}…) — {}",
                ds["file"].as_str().unwrap_or(""),
                short(ds["sha256"].as_str().unwrap_or("")),
                ds["label"].as_str().unwrap_or("")
            )
        } else if stage_summary["config"]["synthetic"] == Value::Bool(true) {
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
    for (at, epoch) in &interrupted {
        let _ = writeln!(md, "> Training `{at}` was interrupted and resumed after epoch {epoch}; it continued exactly (weights, optimiser and generator state restored), so its figures are those of an unbroken run.\n");
    }

    exactness::write(&mut md, summary, &reference);
    speed::write(&mut md, root);

    if let Some(q1) = summary.get("q1") {
        md.push_str("## Q1 — Modern Hopfield networks\n\n");
        md.push_str(DERIVATIONS);
        md.push_str(
            "\n### Numerical checks (f64, against libtorch)\n\n| check | result |\n|---|---|\n",
        );
        let rows = [
            (
                "max relative error of ∇E, ∇E2 vs autograd",
                "grad_max_rel_err",
            ),
            (
                "max relative error of ∇²E, ∇²E2 vs autograd",
                "hessian_max_rel_err",
            ),
            (
                "smallest eigenvalue of ∇²(−E2) (LAPACK)",
                "hessian_min_eigenvalue",
            ),
            ("largest energy rise along CCCP", "cccp_max_energy_increase"),
            (
                "max \\|ours − softmax(QXᵀ/√D)X\\|",
                "attention_max_abs_diff",
            ),
            (
                "max \\|ours − scaled_dot_product_attention\\|",
                "sdpa_max_abs_diff",
            ),
        ];
        for (label, key) in rows {
            let _ = writeln!(
                md,
                "| {label} | {:.2e} |",
                q1[key].as_f64().unwrap_or(f64::NAN)
            );
        }
        let _ = writeln!(
            md,
            "| energy non-increasing along CCCP ({} random problems) | {} |\n",
            q1["cccp_trials"], q1["cccp_monotone"]
        );
        md.push_str("### Retrieval (Ramsauer et al., 2020)\n\n");
        for (file, caption) in [
            ("q1/cccp_energy.png", "energy along CCCP"),
            ("q1/retrieval_vs_beta.png", "one-step retrieval vs beta"),
            ("q1/effective_patterns.png", "metastable states"),
            ("q1/capacity.png", "capacity, classic vs modern"),
            ("q1/image_retrieval.png", "half-masked images"),
        ] {
            figure(&mut md, out, file, caption);
        }
    }

    if let Some(q2) = summary.get("q2") {
        md.push_str("## Q2 — CNN image classification\n\n");
        let ds = &q2["dataset"];
        if ds["intel"] == Value::Bool(true) {
            let _ = writeln!(
                md,
                "Data: Intel landscapes (`{}`, SHA-256 `{}`).\n",
                ds["file"].as_str().unwrap_or(""),
                ds["sha256"].as_str().unwrap_or("")
            );
        } else {
            let _ = writeln!(md, "Data: **{}, not the Intel file** (`{}`, SHA-256 `{}`): published figures below are for Intel and are not comparable.\n", ds["label"].as_str().unwrap_or("substitute").trim_end_matches(", not the Intel file"), ds["file"].as_str().unwrap_or(""), ds["sha256"].as_str().unwrap_or(""));
        }
        let seeds = summary.get("seeds").and_then(|s| s.get("q2"));
        md.push_str("| model | learning rate | parameters | epochs | test accuracy | published (seed, range) | difference | s/epoch |");
        md.push_str(if seeds.is_some() {
            " over seeds: mean ± std |\n|---|---|---|---|---|---|---|---|---|\n"
        } else {
            "\n|---|---|---|---|---|---|---|---|\n"
        });
        for r in q2["runs"].as_array().into_iter().flatten() {
            let key = format!(
                "{}@{}",
                r["model"].as_str().unwrap_or(""),
                r["learning_rate"]
            );
            let reference = reference
                .get("q2")
                .and_then(|q| q.get("runs"))
                .and_then(|runs| runs.get(&key))
                .and_then(|v| v.get("test_accuracy"));
            let (published, diff) = if ds["intel"] == Value::Bool(true) {
                beside(&r["test_accuracy"], reference)
            } else {
                (beside(&Value::Null, reference).0, "n/a (substitute)".into())
            };
            let _ = write!(
                md,
                "| {} | {} | {} | {} | {} | {published} | {diff} | {:.1} |",
                r["model"].as_str().unwrap_or(""),
                r["learning_rate"],
                thousands(&r["params"]),
                r["epochs"],
                f4(&r["test_accuracy"]),
                r["seconds_per_epoch"].as_f64().unwrap_or(f64::NAN)
            );
            if let Some(s) = seeds {
                let _ = write!(md, " {} |", pm(&s["runs"][&key]["test_accuracy"]));
            }
            md.push('\n');
        }
        let _ = writeln!(
            md,
            "\nBest learning rate for model 2.1 (final validation accuracy): **{}**.\n",
            q2["best_learning_rate"]
        );
        md.push_str("Model 2.1 flattens 128·6·6 = 4,608 features into a 1,024-unit layer (4,719,616 weights); model 2.2 averages each channel globally (128 features, 132,096 weights) and adds batch norm (2,496 parameters), hence 5,340,742 vs 755,718 trainable parameters.\n\n");
        for (file, caption) in [
            ("q2/model2_1_train_loss.png", "2.1 training loss"),
            ("q2/model2_1_val_accuracy.png", "2.1 validation accuracy"),
            ("q2/model2_2_train_loss.png", "2.2 training loss"),
            ("q2/model2_2_val_accuracy.png", "2.2 validation accuracy"),
        ] {
            figure(&mut md, out, file, caption);
        }
    }

    if let Some(q3) = summary.get("q3") {
        let seeds = summary.get("seeds").and_then(|s| s.get("q3"));
        md.push_str("## Q3 — Phoneme-to-grapheme seq2seq\n\n");
        if q3["config"]["synthetic"] == Value::Bool(true) {
            md.push_str("Data: **generated quick-run corpus, not the homework's**: published figures below are not comparable.\n\n");
        }
        md.push_str("| run | metric | ours (test) | published (seed, range) | difference |");
        md.push_str(if seeds.is_some() {
            " over seeds: mean ± std |\n|---|---|---|---|---|---|\n"
        } else {
            "\n|---|---|---|---|---|\n"
        });
        let r3 = reference.get("q3");
        for (run, key, metrics) in [
            ("(a) no attention", "no_attention", &["cer", "wer"][..]),
            ("(b) attention", "attention", &["cer", "wer"][..]),
            (
                "(c) attention + nucleus p = 0.8",
                "nucleus",
                &["cer", "wer", "wer_at_3"][..],
            ),
        ] {
            for m in metrics {
                let ours = &q3[key]["test"][m];
                let (published, mut diff) =
                    beside(ours, r3.and_then(|q| q.get(key)).and_then(|v| v.get(*m)));
                if q3["config"]["synthetic"] == Value::Bool(true) {
                    diff = "n/a (quick data)".into();
                }
                let _ = write!(
                    md,
                    "| {run} | {} | {} | {published} | {diff} |",
                    m.to_uppercase().replace("_AT_", "@"),
                    f4(ours)
                );
                if let Some(s) = seeds {
                    let _ = write!(md, " {} |", pm(&s[key][*m]));
                }
                md.push('\n');
            }
        }
        md.push_str("\n| model | parameters | best epoch | best validation CER | training s | greedy test CER / WER | beam test CER / WER |\n|---|---|---|---|---|---|---|\n");
        for key in ["no_attention", "attention"] {
            let r = &q3[key];
            let beam: Vec<String> = r["beam"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| {
                    format!(
                        "width {}: {} / {}",
                        b["width"],
                        f4(&b["test"]["cer"]),
                        f4(&b["test"]["wer"])
                    )
                })
                .collect();
            let _ = writeln!(
                md,
                "| {key} | {} | {} | {} | {:.1} | {} / {} | {} |",
                thousands(&r["params"]),
                r["best_epoch"],
                f4(&r["best_val_cer"]),
                r["train_seconds"].as_f64().unwrap_or(f64::NAN),
                f4(&r["test"]["cer"]),
                f4(&r["test"]["wer"]),
                beam.join("; ")
            );
        }
        md.push_str("\nExamples whose three nucleus samples differ (gold: samples):\n\n");
        for ex in q3["nucleus"]["differing_sample"]
            .as_array()
            .into_iter()
            .flatten()
            .take(10)
        {
            let _ = writeln!(
                md,
                "- {}: {}",
                ex[0].as_str().unwrap_or(""),
                ex[1]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        md.push('\n');
        figure(
            &mut md,
            out,
            "q3/val_cer_no_attention.png",
            "validation CER, no attention",
        );
        figure(
            &mut md,
            out,
            "q3/val_cer_attention.png",
            "validation CER, attention",
        );
    }
    if let Some(s) = summary.get("seeds") {
        let _ = writeln!(
            md,
            "## Spread over seeds\n\nEvery training stage ran with seeds {}; tables above give mean ± sample standard deviation, the bands below ±1 standard deviation per epoch.\n",
            s["seeds"]
        );
        for f in s["figures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            figure(&mut md, out, f, "mean ± std over seeds");
        }
    }
    artifacts::write_atomic(out.join("REPORT.md"), md.as_bytes())?;
    let page = html::render(&md, out, "Homework 2 reproduced in Rust");
    artifacts::write_atomic(out.join("report.html"), page.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_dates_and_peaks_read_well() {
        assert_eq!(thousands(&Value::from(5_340_742)), "5,340,742");
        assert_eq!(thousands(&Value::from(755)), "755");
        assert_eq!(thousands(&Value::from(-1000)), "-1,000");
        let summary = serde_json::json!({"a": {"peak_rss_mib": 200.0}, "b": [{"peak_rss_mib": 480.5}], "peak_rss_mib": 100.0});
        assert_eq!(peak_mib(&summary), Some(480.5));
    }
}

//! Runs `cargo xtask reproduce --quick --jobs 2` as a newcomer would, into a temporary folder, and
//! checks the report, the merged summary and the figures; a second run must reuse every stage.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn reproduce(out: &Path) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new(env!("CARGO"))
        .current_dir(&root)
        // --jobs 2: Q2's sweep and Q3's trainings run as child processes side by side.
        .args(["xtask", "reproduce", "--quick", "--jobs", "2", "--out"])
        .arg(out)
        .output()
        .expect("cargo runs");
    let log = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "reproduce --quick failed:\n{log}");
    log
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn quick_reproduce_writes_the_whole_report_and_reuses_stages() {
    let out = std::env::temp_dir().join(format!("reproduce-quick-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    reproduce(&out);

    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["quick"], true);
    for stage in ["q1", "q2", "q3"] {
        assert!(summary[stage].is_object(), "summary.json lacks {stage}");
    }
    // Q1: the maths holds (the same checks as the full run).
    let q1 = &summary["q1"];
    assert!(q1["grad_max_rel_err"].as_f64().unwrap() < 1e-6);
    assert!(q1["hessian_max_rel_err"].as_f64().unwrap() < 1e-6);
    assert!(q1["hessian_min_eigenvalue"].as_f64().unwrap() >= -1e-10);
    assert_eq!(q1["cccp_monotone"], true);
    assert!(q1["attention_max_abs_diff"].as_f64().unwrap() < 1e-6);
    let capacity = q1["retrieval"]["capacity"].as_array().unwrap();
    assert!(capacity.last().unwrap()["modern_success"].as_f64().unwrap() > 0.95);
    // Q2: the sweep and 2.2 ran on the generated images, with the homework's parameter counts.
    let q2 = &summary["q2"];
    assert_eq!(q2["dataset"]["synthetic"], true);
    let runs = q2["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    assert_eq!(runs[0]["params"], 5_340_742);
    assert_eq!(runs[3]["params"], 755_718);
    // Q3: (a), (b), (c) and beam search all scored.
    let q3 = &summary["q3"];
    for path in [
        &["no_attention", "test", "cer"][..],
        &["attention", "test", "wer"],
        &["nucleus", "test", "wer_at_3"],
    ] {
        let v = path.iter().fold(q3, |v, k| &v[*k]).as_f64();
        assert!(
            v.is_some_and(|v| (0.0..=1.5).contains(&v)),
            "q3 {path:?}: {v:?}"
        );
    }

    let report = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    for section in [
        "Quick run — not the homework numbers",
        "| run fact | value |",
        "## Exact mode",
        "## Q1 — Modern Hopfield networks",
        "### Numerical checks",
        "## Q2 — CNN image classification",
        "Best learning rate for model 2.1",
        "## Q3 — Phoneme-to-grapheme seq2seq",
        "(c) attention + nucleus p = 0.8",
        "WER@3",
    ] {
        assert!(report.contains(section), "REPORT.md lacks {section:?}");
    }
    let figures: Vec<&str> = report
        .lines()
        .filter_map(|l| l.strip_prefix("![")?.split_once("](")?.1.strip_suffix(')'))
        .collect();
    assert!(figures.len() >= 11, "only {} figures", figures.len());
    for f in &figures {
        let len = out.join(f).metadata().map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "figure {f} missing or empty");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(
        html.matches("data:image/png;base64,").count(),
        figures.len()
    );
    assert!(!html.contains("missing figure"));
    assert!(html.contains("<math"), "the maths is MathML");

    // The page in a real browser, at a laptop's and a phone's width: every figure loads, the
    // maths is drawn, nothing overflows (the command fails otherwise), and a screenshot.
    let shots = out.join("shots");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let browser = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args(["xtask", "screenshot", "--out"])
        .arg(&out)
        .arg("--to")
        .arg(&shots)
        .output()
        .expect("cargo runs");
    let log = String::from_utf8_lossy(&browser.stderr);
    assert!(browser.status.success(), "screenshot failed:\n{log}");
    for view in ["laptop (1366×900)", "phone (390×844)"] {
        let line = log.lines().find(|l| l.starts_with(view)).unwrap_or("");
        assert!(
            line.contains(&format!("{} figures, 0 broken", figures.len()))
                && line.ends_with("overflow 0 px"),
            "{view}: {line}\n{log}"
        );
    }
    for name in ["report-laptop.png", "report-phone.png"] {
        let png = std::fs::read(shots.join(name)).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{name}");
    }

    // Second run: same inputs, so nothing is retrained.
    let log = reproduce(&out);
    for stage in ["q1", "q2", "q3"] {
        assert!(
            log.contains(&format!("== {stage}: reused")),
            "{stage} not reused:\n{log}"
        );
    }
    std::fs::remove_dir_all(out).unwrap();
}

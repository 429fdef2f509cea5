//! `p2g train` killed (SIGKILL, through strace) at every rename, unlink and write it makes
//! in its output folder, in turn, then run again: each time the result must be the
//! uninterrupted run's — the same checkpoint bytes, CSV rows and outcome — with nothing
//! left behind.

use std::path::Path;
use std::process::Command;

fn p2g_train(data: &Path, out: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_p2g"));
    cmd.args([
        "train",
        "--use-attn",
        "--epochs",
        "3",
        "--hidden-size",
        "32",
    ])
    .args(["--batch-size", "32", "--data"])
    .arg(data)
    .arg("--checkpoint")
    .arg(out.join("m.safetensors"))
    .arg("--outcome")
    .arg(out.join("outcome.json"))
    .env("OMP_NUM_THREADS", "1");
    cmd
}

/// Which of the results differ (none: empty).
fn differences(a: &Results, b: &Results) -> Vec<&'static str> {
    let mut d = Vec::new();
    if a.0 != b.0 {
        d.push("checkpoint bytes");
    }
    if a.1 != b.1 {
        d.push("CSV rows");
    }
    if a.2 != b.2 {
        d.push("outcome");
    }
    d
}

type Results = (Vec<u8>, Vec<String>, serde_json::Value);

/// What must not depend on interruptions: checkpoint bytes, CSV rows without their timing
/// columns, and the outcome without timings, memory, place and the resume history.
fn results(out: &Path) -> Results {
    let ckpt = std::fs::read(out.join("m.safetensors")).unwrap();
    let rows = std::fs::read_to_string(out.join("m_epochs.csv"))
        .unwrap()
        .lines()
        .map(|l| l.split(',').take(6).collect::<Vec<_>>().join(","))
        .collect();
    let mut outcome: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("outcome.json")).unwrap()).unwrap();
    let o = outcome.as_object_mut().unwrap();
    for k in [
        "train_seconds",
        "peak_rss_mib",
        "resumed_after_epochs",
        "checkpoint",
    ] {
        o.remove(k);
    }
    for row in o["epochs"].as_array_mut().unwrap() {
        let r = row.as_object_mut().unwrap();
        r.remove("train_seconds");
        r.remove("val_decode_seconds");
    }
    (ckpt, rows, outcome)
}

#[test]
fn killed_anywhere_the_rerun_ends_as_the_uninterrupted_run() {
    let dir = std::env::temp_dir().join(format!("p2g-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    seq2seq::synthetic::write_quick_corpus(&data, 3, [200, 40, 40]).unwrap();

    let reference = dir.join("reference");
    assert!(p2g_train(&data, &reference)
        .output()
        .unwrap()
        .status
        .success());
    let want = results(&reference);

    let dry = dir.join("dry");
    let points = faults::essential(faults::kill_points(&p2g_train(&data, &dry), &dry));
    assert_eq!(
        differences(&results(&dry), &want),
        [""; 0],
        "strace itself changes nothing"
    );
    let count = |s: &str| points.iter().filter(|p| p.syscall == s).count();
    assert!(
        count("rename") >= 10 && count("unlink") >= 2 && count("write") >= 10,
        "{points:?}"
    );

    let [renames, unlinks, writes] = faults::kill_and_rerun(
        &points,
        &dir,
        |out| p2g_train(&data, out),
        |point, out, _| {
            assert_eq!(
                differences(&results(out), &want),
                [""; 0],
                "{point:?}: the results differ from the uninterrupted run's"
            );
            assert_eq!(
                faults::names_in(out),
                [
                    "m.lock",
                    "m.run.json",
                    "m.safetensors",
                    "m_epochs.csv",
                    "outcome.json"
                ],
                "{point:?}: resume files left"
            );
        },
    );
    eprintln!(
        "p2g train: {} kill points survived ({renames} renames, {unlinks} unlinks, {writes} writes)",
        points.len()
    );
    std::fs::remove_dir_all(dir).unwrap();
}

//! An interrupted `p2g train` (killed mid-training) resumes after its last finished epoch
//! and ends exactly where the uninterrupted run does (`faults::resume::check`); its outcome
//! records the interruption, and a finished run is reused.

use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn killed_training_resumes_after_the_last_finished_epoch() {
    let dir = std::env::temp_dir().join(format!("p2g-resume-{}", std::process::id()));
    let data = dir.join("data");
    seq2seq::synthetic::write_quick_corpus(&data, 5, [400, 60, 60]).unwrap();
    let p2g_train = |out: &Path| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_p2g"));
        cmd.args(["train", "--use-attn", "--epochs", "4", "--data"])
            .arg(&data)
            .arg("--checkpoint")
            .arg(out.join("m.safetensors"))
            .arg("--outcome")
            .arg(out.join("outcome.json"))
            .env("OMP_NUM_THREADS", "1")
            .stdout(Stdio::null());
        cmd
    };
    let files = faults::resume::Files {
        stem: "m",
        csv: "m_epochs.csv",
        weights: "m.safetensors",
        // The columns before the timings.
        columns: 6,
        epochs: 4,
    };
    let resumed = faults::resume::check(p2g_train, &dir, &files);
    let outcome: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(resumed.dir.join("outcome.json")).unwrap())
            .unwrap();
    assert_eq!(
        outcome["resumed_after_epochs"],
        serde_json::json!([resumed.done])
    );
    assert_eq!(outcome["epochs"].as_array().unwrap().len(), 4);

    // Run again: the finished run is reused, not redone.
    let out = p2g_train(&resumed.dir).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already trained"));
    std::fs::remove_dir_all(dir).unwrap();
}

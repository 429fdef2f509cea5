//! An interrupted `p2g train` (killed mid-training) resumes after its last finished epoch
//! and ends exactly where the uninterrupted run does.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn p2g_train(data: &Path, out: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_p2g"));
    cmd.args(["train", "--use-attn", "--n-epochs", "4", "--data-dir"])
        .arg(data)
        .arg("--checkpoint")
        .arg(out.join("m.safetensors"))
        .arg("--outcome")
        .arg(out.join("outcome.json"))
        .env("OMP_NUM_THREADS", "1")
        .stdout(Stdio::null());
    cmd
}

/// The CSV rows without the timing columns.
fn rows(csv: &Path) -> Vec<String> {
    std::fs::read_to_string(csv)
        .unwrap()
        .lines()
        .map(|l| l.split(',').take(6).collect::<Vec<_>>().join(","))
        .collect()
}

#[test]
fn killed_training_resumes_after_the_last_finished_epoch() {
    let dir = std::env::temp_dir().join(format!("p2g-resume-{}", std::process::id()));
    let data = dir.join("data");
    seq2seq::synthetic::write_quick_corpus(&data, 5, [400, 60, 60]).unwrap();
    let (whole, broken) = (dir.join("whole"), dir.join("broken"));
    for d in [&whole, &broken] {
        std::fs::create_dir_all(d).unwrap();
    }

    assert!(p2g_train(&data, &whole)
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success());
    assert!(
        !whole.join("m.resume.json").exists(),
        "a finished run leaves no resume point"
    );

    let mut child = p2g_train(&data, &broken)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !broken.join("m.resume.json").exists() {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "no resume point written"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The manifest is the commit: the CSV may not be rewritten yet when the kill lands.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(broken.join("m.resume.json")).unwrap())
            .unwrap();
    let done = manifest["epoch"].as_u64().unwrap() as usize;
    assert!((1..4).contains(&done), "{done} epochs before the kill");

    let out = p2g_train(&data, &broken).output().unwrap();
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains(&format!("resuming after epoch {done}")),
        "{log}"
    );
    let (a, b) = (
        rows(&whole.join("m_epochs.csv")),
        rows(&broken.join("m_epochs.csv")),
    );
    assert_eq!(b.len(), 5, "header and four epochs");
    assert_eq!(a, b, "every epoch is the uninterrupted run's, bit for bit");
    assert_eq!(
        std::fs::read(whole.join("m.safetensors")).unwrap(),
        std::fs::read(broken.join("m.safetensors")).unwrap(),
        "the same best checkpoint"
    );
    let outcome: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(broken.join("outcome.json")).unwrap())
            .unwrap();
    assert_eq!(outcome["resumed_after_epochs"], serde_json::json!([done]));
    assert_eq!(outcome["epochs"].as_array().unwrap().len(), 4);
    assert!(!broken.join("m.resume.json").exists());

    // Run again: the finished run is reused, not redone.
    let out = p2g_train(&data, &broken).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already trained"));
    std::fs::remove_dir_all(dir).unwrap();
}

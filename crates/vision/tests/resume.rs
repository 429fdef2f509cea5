//! An interrupted `cnn` run (killed mid-training) resumes after its last finished epoch and
//! ends exactly where the uninterrupted run does.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn cnn(npz: &Path, out: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cnn"));
    cmd.args(["--epochs", "4", "--learning-rate", "0.05", "--data-path"])
        .arg(npz)
        .arg("--out")
        .arg(out)
        .env("OMP_NUM_THREADS", "1")
        .stdout(Stdio::null());
    cmd
}

/// The CSV rows without the wall-time column.
fn rows(csv: &Path) -> Vec<String> {
    std::fs::read_to_string(csv)
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').map_or(l, |(head, _)| head).to_string())
        .collect()
}

#[test]
fn killed_run_resumes_after_the_last_finished_epoch() {
    let dir = std::env::temp_dir().join(format!("vision-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let npz = dir.join("quick.npz");
    vision::synthetic::write_quick_npz(&npz, 5, [240, 60, 60]).unwrap();
    let (whole, broken) = (dir.join("whole"), dir.join("broken"));

    let status = cnn(&npz, &whole).stderr(Stdio::null()).status().unwrap();
    assert!(status.success());
    assert!(
        !whole.join("cnn.resume.json").exists(),
        "a finished run leaves no resume point"
    );

    // Kill the second run as soon as its first resume point appears.
    let mut child = cnn(&npz, &broken).stderr(Stdio::null()).spawn().unwrap();
    let t = Instant::now();
    while !broken.join("cnn.resume.json").exists() {
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
        serde_json::from_str(&std::fs::read_to_string(broken.join("cnn.resume.json")).unwrap())
            .unwrap();
    let done = manifest["epoch"].as_u64().unwrap() as usize;
    assert!((1..4).contains(&done), "{done} epochs before the kill");

    let out = cnn(&npz, &broken).output().unwrap();
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains(&format!("resuming after epoch {done}")),
        "{log}"
    );
    let (a, b) = (
        rows(&whole.join("cnn_epochs.csv")),
        rows(&broken.join("cnn_epochs.csv")),
    );
    assert_eq!(b.len(), 5, "header and four epochs");
    assert_eq!(a, b, "every epoch is the uninterrupted run's, bit for bit");
    assert_eq!(
        std::fs::read(whole.join("cnn.safetensors")).unwrap(),
        std::fs::read(broken.join("cnn.safetensors")).unwrap(),
        "the same final weights"
    );
    assert!(!broken.join("cnn.resume.json").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

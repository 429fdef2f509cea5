//! An interrupted `cnn` run (killed mid-training) resumes after its last finished epoch and
//! ends exactly where the uninterrupted run does (`faults::resume::check`).

use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn killed_run_resumes_after_the_last_finished_epoch() {
    let dir = std::env::temp_dir().join(format!("vision-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let npz = dir.join("quick.npz");
    vision::synthetic::write_quick_npz(&npz, 5, [240, 60, 60]).unwrap();
    let cnn = |out: &Path| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cnn"));
        cmd.args(["--epochs", "4", "--learning-rate", "0.05", "--data"])
            .arg(&npz)
            .arg("--out")
            .arg(out)
            .env("OMP_NUM_THREADS", "1")
            .stdout(Stdio::null());
        cmd
    };
    let files = faults::resume::Files {
        stem: "cnn",
        csv: "cnn_epochs.csv",
        weights: "cnn.safetensors",
        // Every column but the wall time.
        columns: 5,
        epochs: 4,
    };
    faults::resume::check(cnn, &dir, &files);
    std::fs::remove_dir_all(dir).unwrap();
}

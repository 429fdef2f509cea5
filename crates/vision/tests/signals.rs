//! `cnn reproduce --jobs 2` sent SIGTERM while its learning-rate sweep runs as child
//! processes: it stops them, waits for them and exits with 143, leaving no process and no
//! held lock; the same command then continues the sweep and ends as the uninterrupted stage.

use std::path::Path;
use std::process::{Command, Stdio};

use faults::signals;

fn reproduce(npz: &Path, out: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cnn"));
    cmd.args(["reproduce", "--jobs", "2", "--epochs", "4", "--data"])
        .arg(npz)
        .arg("--out")
        .arg(out)
        .env("OMP_NUM_THREADS", "1")
        .stdout(Stdio::null());
    cmd
}

const SWEEP: [&str; 3] = ["model2_1_lr0.1", "model2_1_lr0.01", "model2_1_lr0.001"];

#[test]
fn sigterm_stops_the_sweep_and_the_rerun_continues_it() {
    let dir = std::env::temp_dir().join(format!("cnn-sigterm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let npz = dir.join("tiny.npz");
    vision::synthetic::write_quick_npz(&npz, 5, [64, 16, 16]).unwrap();

    let whole = dir.join("whole");
    assert!(reproduce(&npz, &whole).status().unwrap().success());
    let mut stems: Vec<String> = SWEEP.iter().map(|s| s.to_string()).collect();
    // 2.2 at the rate the sweep chose.
    stems.extend(
        std::fs::read_dir(&whole)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|n| n.strip_suffix("_epochs.csv").map(str::to_string))
            .filter(|n| n.starts_with("model2_2")),
    );
    assert_eq!(stems.len(), 4, "{stems:?}");
    let stems: Vec<&str> = stems.iter().map(String::as_str).collect();
    let want = signals::trainings(&whole, &stems, 5);

    let stopped = dir.join("stopped");
    std::fs::create_dir_all(&stopped).unwrap();
    // Stopped once two sweep runs have each committed an epoch.
    signals::stop_and_rerun(|| reproduce(&npz, &stopped), &stopped, &stopped, &SWEEP, 2);
    assert_eq!(
        signals::trainings(&stopped, &stems, 5),
        want,
        "every epoch and the weights are the uninterrupted run's"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

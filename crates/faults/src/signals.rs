//! The stop check every parent of training processes passes: sent SIGTERM (as `kill`,
//! systemd and cluster schedulers stop a job) once its children are at work, it must stop
//! them, wait for them and exit with 143; then no child is left running, no lock is held,
//! and the rerun continues where they stopped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Sends SIGTERM to `child` once `ready()` holds, and waits for it; panics if it ends first
/// or `ready` does not hold within two minutes.
pub fn terminate_when(mut child: Child, ready: impl Fn() -> bool) -> ExitStatus {
    let t = Instant::now();
    while !ready() {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the children never got to work"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be stopped"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -TERM failed");
    child.wait().unwrap()
}

/// The lock files under `dir` (recursively: `*.lock`, `.lock`) that some process holds.
pub fn held_locks(dir: &Path) -> Vec<PathBuf> {
    let mut held = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return held;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            held.extend(held_locks(&p));
        } else if p.extension().is_some_and(|x| x == "lock") || e.file_name() == ".lock" {
            let free = std::fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .is_ok_and(|f| f.try_lock().is_ok());
            if !free {
                held.push(p);
            }
        }
    }
    held
}

/// Asserts what a parent stopped by SIGTERM must leave: exit code 143 (128 + 15), no process
/// still working on `dir`, no lock held under it.
pub fn assert_stopped_cleanly(status: ExitStatus, dir: &Path, stderr: &str) {
    assert_eq!(status.code(), Some(143), "{status:?}: {stderr}");
    assert!(
        stderr.contains("stopped by SIGTERM"),
        "the parent says why it stopped: {stderr}"
    );
    let marker = dir.display().to_string();
    let left = crate::processes_mentioning(&marker);
    assert!(left.is_empty(), "children outlived their parent: {left:?}");
    let held = held_locks(dir);
    assert!(held.is_empty(), "locks still held: {held:?}");
}

/// What must not depend on interruptions, per training of a stage folder: its CSV rows
/// (the leading `columns`, before the timings) and its published weights' bytes.
pub fn trainings(dir: &Path, stems: &[&str], columns: usize) -> Vec<(Vec<String>, Vec<u8>)> {
    stems
        .iter()
        .map(|stem| {
            let csv = dir.join(format!("{stem}_epochs.csv"));
            let rows = std::fs::read_to_string(&csv)
                .unwrap_or_else(|e| panic!("{}: {e}", csv.display()))
                .lines()
                .map(|l| l.split(',').take(columns).collect::<Vec<_>>().join(","))
                .collect();
            let weights = dir.join(format!("{stem}.safetensors"));
            let bytes =
                std::fs::read(&weights).unwrap_or_else(|e| panic!("{}: {e}", weights.display()));
            (rows, bytes)
        })
        .collect()
}

/// The stop check of a parent writing into `out` whose trainings keep their files in `dir`
/// (`<t>.resume.json`, `<t>.log`): runs `command()`, sends it SIGTERM once `ready` of the
/// `trainings` have committed an epoch, asserts it stopped cleanly, runs it again, and
/// asserts that the rerun succeeded and each training it interrupted resumed after its last
/// epoch. The caller then compares the results with an uninterrupted run's.
pub fn stop_and_rerun(
    command: impl Fn() -> Command,
    out: &Path,
    dir: &Path,
    trainings: &[&str],
    ready: usize,
) {
    let resume_point = |t: &str| dir.join(format!("{t}.resume.json"));
    let log = out.with_extension("log");
    let child = command()
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let status = terminate_when(child, || {
        trainings
            .iter()
            .filter(|t| resume_point(t).exists())
            .count()
            >= ready
    });
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_stopped_cleanly(status, out, &stderr);
    // (A training may have finished in the moment before the signal.)
    let unfinished: Vec<&str> = trainings
        .iter()
        .copied()
        .filter(|t| resume_point(t).exists())
        .collect();
    assert!(
        !unfinished.is_empty(),
        "every training finished before the signal"
    );
    let rerun = command().stderr(Stdio::piped()).output().unwrap();
    assert!(
        rerun.status.success(),
        "the rerun failed: {}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    for t in unfinished {
        let log = std::fs::read_to_string(dir.join(format!("{t}.log"))).unwrap();
        assert!(log.contains("resuming after epoch"), "{t}: {log}");
    }
}

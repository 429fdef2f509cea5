//! The resume check every training binary passes: killed (a plain `SIGKILL`) as soon as its
//! first resume point is committed, rerun, it continues after that epoch and ends with the
//! uninterrupted run's per-epoch rows and weights, bit for bit.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A training binary's files in its output folder.
pub struct Files<'a> {
    /// Stem of the resume point (`<stem>.resume.json`).
    pub stem: &'a str,
    /// The per-epoch CSV.
    pub csv: &'a str,
    /// The published weights.
    pub weights: &'a str,
    /// Leading columns of a CSV row compared (the rest are timings).
    pub columns: usize,
    /// Epochs the run trains.
    pub epochs: usize,
}

/// What [`check`] saw.
pub struct Resumed {
    /// The folder of the interrupted and resumed run.
    pub dir: PathBuf,
    /// Epochs finished before the kill.
    pub done: usize,
}

fn rows(csv: &Path, columns: usize) -> Vec<String> {
    std::fs::read_to_string(csv)
        .unwrap_or_else(|e| panic!("{}: {e}", csv.display()))
        .lines()
        .map(|l| l.split(',').take(columns).collect::<Vec<_>>().join(","))
        .collect()
}

/// Kills `child` (SIGKILL) as soon as `path` exists; panics if it ends first or `path` does
/// not appear within two minutes.
pub fn kill_once_exists(mut child: Child, path: &Path) {
    let t = Instant::now();
    while !path.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "{} never appeared",
            path.display()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Runs `command(out)` whole into `dir/whole`, then into `dir/broken` killed once its first
/// resume point is committed, then again there; panics unless the resumed run says where it
/// resumed and ends exactly as the whole one.
pub fn check(command: impl Fn(&Path) -> Command, dir: &Path, files: &Files) -> Resumed {
    let (whole, broken) = (dir.join("whole"), dir.join("broken"));
    for d in [&whole, &broken] {
        std::fs::create_dir_all(d).unwrap();
    }
    let resume_point = |d: &Path| d.join(format!("{}.resume.json", files.stem));
    let status = command(&whole).stderr(Stdio::null()).status().unwrap();
    assert!(status.success(), "the uninterrupted run failed");
    assert!(
        !resume_point(&whole).exists(),
        "a finished run leaves no resume point"
    );

    let child = command(&broken).stderr(Stdio::null()).spawn().unwrap();
    kill_once_exists(child, &resume_point(&broken));
    // The manifest is the commit: the CSV may not be rewritten yet when the kill lands.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(resume_point(&broken)).unwrap()).unwrap();
    let done = manifest["epoch"].as_u64().expect("the manifest's epoch") as usize;
    assert!(
        (1..files.epochs).contains(&done),
        "{done} epochs before the kill"
    );

    let out = command(&broken).output().unwrap();
    assert!(out.status.success(), "the resumed run failed");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains(&format!("resuming after epoch {done}")),
        "{log}"
    );
    let (a, b) = (
        rows(&whole.join(files.csv), files.columns),
        rows(&broken.join(files.csv), files.columns),
    );
    assert_eq!(b.len(), files.epochs + 1, "the header and every epoch");
    assert_eq!(a, b, "every epoch is the uninterrupted run's, bit for bit");
    assert_eq!(
        std::fs::read(whole.join(files.weights)).unwrap(),
        std::fs::read(broken.join(files.weights)).unwrap(),
        "the same weights"
    );
    assert!(!resume_point(&broken).exists(), "the resume point is gone");
    Resumed { dir: broken, done }
}

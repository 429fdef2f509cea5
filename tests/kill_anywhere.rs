//! `cargo xtask reproduce --quick --only q1` killed (SIGKILL, through strace) at every
//! rename and unlink, and at the first and last write of each file, that the xtask makes in
//! its output folder; then the same for the stage binary `q1` it runs. Each time the rerun
//! must end as an uninterrupted run does, with nothing left behind. Killing only the xtask
//! takes its stage down too (`PR_SET_PDEATHSIG`), and the rerun continues it. SIGTERM to the
//! xtask stops the whole tree cleanly, down to Q3's trainings. Two runs into one folder at
//! once: one of them is refused with one clear sentence.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Builds the xtask and the release stage binaries it runs (`cargo xtask build`, as the
/// xtask builds them), so that no kill lands in a build.
fn build() {
    for args in [&["build", "-q", "-p", "xtask"][..], &["xtask", "build"]] {
        let ok = Command::new(env!("CARGO"))
            .current_dir(root())
            .args(args)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cargo {args:?} failed");
    }
}

fn xtask(out: &Path) -> Command {
    let mut c = Command::new(target().join("debug/xtask"));
    c.current_dir(root())
        .args(["reproduce", "--quick", "--only", "q1", "--out"])
        .arg(out)
        .env("OMP_NUM_THREADS", "1");
    c
}

fn q1(out: &Path) -> Command {
    let mut c = Command::new(target().join("release/q1"));
    c.args(["--quick", "--seed", "42", "--out"])
        .arg(out)
        .env("OMP_NUM_THREADS", "1");
    c
}

/// A stage folder's results: summary.json without its timings, and every figure's bytes.
fn q1_results(dir: &Path) -> (Value, Vec<(String, Vec<u8>)>) {
    let mut summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    summary.as_object_mut().unwrap().remove("seconds");
    let mut figures: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.ends_with(".png") || n.ends_with(".svg")
        })
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    figures.sort();
    (summary, figures)
}

fn assert_whole(out: &Path, want: &(Value, Vec<(String, Vec<u8>)>), what: &str) {
    let got = q1_results(&out.join("q1"));
    assert!(got.0 == want.0, "{what}: q1/summary.json differs");
    assert!(got.1 == want.1, "{what}: the figures differ");
    for f in ["summary.json", "REPORT.md", "report.html", "q1/stage.json"] {
        assert!(out.join(f).exists(), "{what}: {f} missing");
    }
    assert!(
        !out.join("q1/.pending-fingerprint").exists(),
        "{what}: stage left pending"
    );
}

#[test]
fn xtask_and_stage_killed_anywhere_end_as_an_uninterrupted_run() {
    build();
    let dir = std::env::temp_dir().join(format!("xtask-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let reference = dir.join("reference");
    assert!(xtask(&reference).output().unwrap().status.success());
    let want = q1_results(&reference.join("q1"));

    // The xtask's own kill points (its stage is stopped with it, and continued by the rerun).
    let dry = dir.join("dry");
    let points = faults::essential(faults::kill_points(&xtask(&dry), &dry));
    assert!(
        points.iter().filter(|p| p.syscall == "rename").count() >= 5,
        "{points:?}"
    );
    faults::kill_and_rerun(&points, &dir.join("xtask"), xtask, |point, out, _| {
        assert_whole(out, &want, &format!("{point:?}"));
    });
    let xtask_points = points.len();

    // The stage binary's kill points, the stage run alone as the xtask runs it.
    let dry = dir.join("q1-dry");
    let points = faults::essential(faults::kill_points(&q1(&dry), &dry));
    assert!(
        points.iter().filter(|p| p.syscall == "rename").count() >= 10,
        "{points:?}"
    );
    faults::kill_and_rerun(&points, &dir.join("q1"), q1, |point, out, _| {
        let got = q1_results(out);
        assert!(
            got == want,
            "{point:?}: q1's results differ from the uninterrupted run's"
        );
    });
    eprintln!(
        "xtask reproduce --quick --only q1: {xtask_points} kill points of the xtask and {} of q1 survived",
        points.len()
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn two_runs_into_one_folder_one_is_refused() {
    build();
    let out = std::env::temp_dir().join(format!("xtask-twice-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let start = || {
        xtask(&out)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let refused: Vec<String> = [&a, &b]
        .iter()
        .filter(|o| !o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .collect();
    // Both may succeed when one finished before the other started; never both fail, and
    // a refusal says why in one sentence.
    assert!(refused.len() < 2, "both failed: {refused:?}");
    for r in &refused {
        assert!(r.contains("another process is writing"), "{r}");
    }
    let again = xtask(&out).output().unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("== q1: reused"));
    std::fs::remove_dir_all(out).unwrap();
}

/// Only the xtask is killed (SIGKILL, no chance to pass anything on), while its stage runs:
/// the stage dies with it (`PR_SET_PDEATHSIG`) instead of running on unsupervised, and the
/// rerun continues the stage and records its results.
#[test]
fn a_stage_whose_xtask_is_killed_outright_stops_and_the_rerun_continues_it() {
    build();
    let out = std::env::temp_dir().join(format!("xtask-orphan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let child = xtask(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once its stage has started (the stage holds its folder's lock).
    faults::resume::kill_once_exists(child, &out.join("q1/.lock"));
    // The stage ends within moments, not after finishing its work.
    faults::wait_for_others(&out.display().to_string(), Duration::from_secs(10));
    let rerun = xtask(&out).output().unwrap();
    let log = String::from_utf8_lossy(&rerun.stderr);
    assert!(rerun.status.success(), "{log}");
    assert!(out.join("q1/stage.json").exists());
    assert!(!out.join("q1/.pending-fingerprint").exists());
    std::fs::remove_dir_all(out).unwrap();
}

/// SIGTERM to `cargo xtask reproduce` while Q3's two trainings run, three processes below
/// it (xtask → `p2g reproduce` → `p2g train` ×2): the whole tree stops and is waited for,
/// the xtask exits with 143 leaving no process and no held lock, and the same command then
/// continues the trainings and ends as the uninterrupted run.
#[test]
fn sigterm_to_the_xtask_stops_the_whole_tree_and_the_rerun_continues_it() {
    build();
    let dir = std::env::temp_dir().join(format!("xtask-sigterm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let q3 = |out: &Path| {
        let mut c = Command::new(target().join("debug/xtask"));
        c.current_dir(root())
            .args([
                "reproduce",
                "--quick",
                "--only",
                "q3",
                "--jobs",
                "2",
                "--out",
            ])
            .arg(out)
            .env("OMP_NUM_THREADS", "1")
            .stdout(std::process::Stdio::null());
        c
    };
    const TRAININGS: [&str; 2] = ["no_attention", "attention"];
    let whole = dir.join("whole");
    assert!(q3(&whole).status().unwrap().success());
    let want = faults::signals::trainings(&whole.join("q3"), &TRAININGS, 6);

    let stopped = dir.join("stopped");
    std::fs::create_dir_all(&stopped).unwrap();
    faults::signals::stop_and_rerun(
        || q3(&stopped),
        &stopped,
        &stopped.join("q3"),
        &TRAININGS,
        2,
    );
    assert_eq!(
        faults::signals::trainings(&stopped.join("q3"), &TRAININGS, 6),
        want,
        "every epoch and the weights are the uninterrupted run's"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

//! The Slurm executor against a real one-node cluster (`tests/slurm/one-node.sh`, which
//! `cargo xtask test` starts): the same results as the local executor, and a task cancelled
//! mid-training (`scancel`) submitted again, continuing after its last finished epoch.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Fails the test, saying how to start the cluster, when no Slurm answers.
fn require_cluster() {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    assert!(
        up,
        "no Slurm cluster answers (SLURM_CONF={:?}): start the test cluster with `bash tests/slurm/one-node.sh` (`cargo xtask test` does)",
        std::env::var("SLURM_CONF").ok()
    );
}

/// `cargo xtask reproduce --quick` with `flags`, one libtorch thread per training (so that
/// both executors compute the same bits).
fn reproduce(flags: &[&str], out: &Path) -> Command {
    let mut c = Command::new(env!("CARGO"));
    c.current_dir(root())
        .args(["xtask", "reproduce", "--quick", "--jobs", "4"])
        .args(flags)
        .arg("--out")
        .arg(out)
        .env("OMP_NUM_THREADS", "1")
        .stdout(Stdio::null());
    c
}

fn run(flags: &[&str], out: &Path) -> (Output, f64) {
    let t = Instant::now();
    let o = reproduce(flags, out).output().unwrap();
    assert!(
        o.status.success(),
        "reproduce {flags:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    (o, t.elapsed().as_secs_f64())
}

/// A stage summary without what depends on the run rather than the results: timings,
/// memory, resumptions and paths (the keys of Q2's runs hold their data's path).
fn results(path: &Path) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.retain(|k, _| {
                    ![
                        "second",
                        "rss",
                        "mib",
                        "wall",
                        "resumed",
                        "places",
                        "data_dir",
                        "file",
                        "npz",
                        "key",
                        "checkpoint",
                    ]
                    .iter()
                    .any(|t| k.contains(t))
                });
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    strip(&mut v);
    v
}

/// Where two JSON values first differ (`q2/runs[1]/test_accuracy: 0.5 / 0.6`), if they do.
fn first_difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.keys()
                .chain(y.keys())
                .find_map(|k| match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => first_difference(p, q, &format!("{at}/{k}")),
                    _ => Some(format!("{at}/{k}: present on one side only")),
                })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, &format!("{at}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{at}: {a} / {b}")),
    }
}

#[test]
fn the_slurm_executor_gives_the_local_executors_results() {
    require_cluster();
    let dir = std::env::temp_dir().join(format!("slurm-same-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // Built first, so that neither wall time below includes a build.
    let built = Command::new(env!("CARGO"))
        .current_dir(root())
        .args(["xtask", "build"])
        .status()
        .unwrap();
    assert!(built.success());
    let (_, local) = run(&["--seeds", "2"], &dir.join("local"));
    let (o, slurm) = run(&["--seeds", "2", "--executor", "slurm"], &dir.join("slurm"));
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(
        log.contains("== slurm job "),
        "the trainings went to Slurm:\n{log}"
    );
    for stage in ["q1", "q2", "q3", "q2-seed43", "q3-seed43"] {
        let (a, b) = (
            results(&dir.join("local").join(stage).join("summary.json")),
            results(&dir.join("slurm").join(stage).join("summary.json")),
        );
        if let Some(at) = first_difference(&a, &b, stage) {
            panic!("the executors' results differ at {at}");
        }
    }
    // Q1 ran as a job of its own.
    let q1 = std::fs::read_to_string(dir.join("slurm/q1/q1.log")).unwrap();
    assert!(
        q1.contains("== slurm job ") && q1.contains("Q1 checks"),
        "{q1}"
    );
    // Every training says where it ran: its log, and the report's table of places.
    let q3 = std::fs::read_to_string(dir.join("slurm/q3/attention.log")).unwrap();
    assert!(q3.contains("== slurm job ") && q3.contains(" on "), "{q3}");
    let report = std::fs::read_to_string(dir.join("slurm/REPORT.md")).unwrap();
    let row = report
        .lines()
        .find(|l| l.starts_with("| q3 (b) |"))
        .unwrap_or_else(|| panic!("no place of q3 (b) in the report:\n{report}"));
    assert!(row.contains(", slurm job "), "{row}");
    let local_report = std::fs::read_to_string(dir.join("local/REPORT.md")).unwrap();
    assert!(
        !local_report.contains("| training | ran on |"),
        "a local run lists no places"
    );
    eprintln!(
        "reproduce --quick --seeds 2: local {local:.1} s, slurm {slurm:.1} s ({:.2}×)",
        slurm / local
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_submission_slurm_refuses_fails_with_slurms_reason_in_one_sentence() {
    require_cluster();
    let out = std::env::temp_dir().join(format!("slurm-refused-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let o = reproduce(
        &[
            "--only",
            "q1",
            "--executor",
            "slurm",
            "--slurm-arg=--partition=no-such-partition",
        ],
        &out,
    )
    .output()
    .unwrap();
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{said}");
    let line = said
        .lines()
        .find(|l| l.contains("Slurm refused the submission"))
        .unwrap_or_else(|| panic!("no refusal said:\n{said}"));
    assert!(line.to_lowercase().contains("partition"), "{line}");
    std::fs::remove_dir_all(out).unwrap();
}

/// Polls until Slurm no longer lists job `id`.
fn wait_for_job(id: &str, limit: Duration) {
    let t = Instant::now();
    loop {
        let q = Command::new("squeue")
            .args(["-h", "-j", id, "-o", "%i"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&q.stdout).trim().is_empty() {
            return;
        }
        assert!(
            t.elapsed() < limit,
            "slurm job {id} still queued after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn no_wait_submits_the_whole_run_as_a_job_and_returns_at_once() {
    require_cluster();
    let dir = std::env::temp_dir().join(format!("slurm-no-wait-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = dir.join("slurm");
    let flags = ["--only", "q1,q3", "--executor", "slurm", "--no-wait"];
    let (o, _) = run(&flags, &out);
    let said = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !out.join("q3/summary.json").exists(),
        "returned before the run did"
    );
    let id = said
        .split("== submitted: slurm job ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no job id said:\n{said}"))
        .to_string();
    // A second submission into the same folder is refused while the first is queued.
    let again = reproduce(&flags, &out).output().unwrap();
    let why = String::from_utf8_lossy(&again.stderr);
    assert!(
        !again.status.success()
            && why.contains(&format!("already being reproduced by slurm job {id}")),
        "{why}"
    );
    wait_for_job(&id, Duration::from_secs(900));
    let log = std::fs::read_to_string(out.join("reproduce.log")).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join("reproduce.status"))
            .unwrap()
            .trim(),
        "0",
        "{log}"
    );
    // Q1 and Q3's trainings went to Slurm from the job, and it wrote the report.
    assert!(log.matches("== slurm job ").count() >= 3, "{log}");
    assert!(out.join("REPORT.md").exists(), "{log}");
    run(&["--only", "q1,q3"], &dir.join("local"));
    for stage in ["q1", "q3"] {
        let (a, b) = (
            results(&dir.join("local").join(stage).join("summary.json")),
            results(&out.join(stage).join("summary.json")),
        );
        if let Some(at) = first_difference(&a, &b, stage) {
            panic!("the --no-wait run's results differ at {at}");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_cancelled_task_is_submitted_again_and_continues_after_its_last_epoch() {
    require_cluster();
    let dir = std::env::temp_dir().join(format!("slurm-cancel-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    const TRAININGS: [&str; 2] = ["no_attention", "attention"];
    let (_, _) = run(&["--only", "q3"], &dir.join("whole"));
    let want = faults::signals::trainings(&dir.join("whole/q3"), &TRAININGS, 6);

    let out = dir.join("cancelled");
    let log = dir.join("xtask.log");
    let mut child = reproduce(&["--only", "q3", "--executor", "slurm"], &out)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // (b), task 1 of the array, once it has committed an epoch.
    let t = Instant::now();
    while !out.join("q3/attention.resume.json").exists() {
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "(b) never committed an epoch"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the cancel"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let queue = Command::new("squeue")
        .args(["-h", "-r", "-o", "%i %K %j"])
        .output()
        .unwrap();
    let queue = String::from_utf8_lossy(&queue.stdout).into_owned();
    let task = queue
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?, w.next()?, w.next()?))
        })
        .find(|(_, k, name)| *k == "1" && name.starts_with("hw2-"))
        .map(|(id, _, _)| id.to_string())
        .unwrap_or_else(|| panic!("(b)'s task is not in the queue:\n{queue}"));
    assert!(Command::new("scancel")
        .arg(&task)
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("submitting it again"), "{stderr}");
    let b = std::fs::read_to_string(out.join("q3/attention.log")).unwrap();
    assert!(b.contains("resuming after epoch"), "{b}");
    assert_eq!(
        faults::signals::trainings(&out.join("q3"), &TRAININGS, 6),
        want,
        "every epoch and the weights are the uninterrupted run's"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

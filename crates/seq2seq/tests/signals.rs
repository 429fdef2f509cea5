//! `p2g reproduce --jobs 2` sent SIGTERM while its two trainings run: it stops them, waits
//! for them and exits with 143, leaving no process and no held lock; the same command then
//! continues both after their last finished epoch and ends as the uninterrupted stage.

use std::path::Path;
use std::process::{Command, Stdio};

use faults::signals;

fn reproduce(data: &Path, out: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_p2g"));
    cmd.args([
        "reproduce",
        "--jobs",
        "2",
        "--epochs",
        "3",
        "--beam-widths",
        "2",
    ])
    .arg("--data")
    .arg(data)
    .arg("--out")
    .arg(out)
    // One thread per training however the share changes: the runs' bits do not depend
    // on when the other finishes.
    .env("OMP_NUM_THREADS", "1")
    .stdout(Stdio::null());
    cmd
}

const TRAININGS: [&str; 2] = ["no_attention", "attention"];

#[test]
fn sigterm_stops_the_stage_and_its_trainings_and_the_rerun_continues_them() {
    let dir = std::env::temp_dir().join(format!("p2g-sigterm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    seq2seq::synthetic::write_quick_corpus(&data, 4, [300, 50, 50]).unwrap();

    let whole = dir.join("whole");
    assert!(reproduce(&data, &whole).status().unwrap().success());
    let want = signals::trainings(&whole, &TRAININGS, 6);

    let stopped = dir.join("stopped");
    std::fs::create_dir_all(&stopped).unwrap();
    // Stopped once both trainings have committed an epoch and are at work on the next.
    signals::stop_and_rerun(
        || reproduce(&data, &stopped),
        &stopped,
        &stopped,
        &TRAININGS,
        2,
    );
    assert_eq!(
        signals::trainings(&stopped, &TRAININGS, 6),
        want,
        "every epoch and the weights are the uninterrupted run's"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

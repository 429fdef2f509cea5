//! `cnn` killed (SIGKILL, through strace) at every rename and unlink it makes in its output
//! folder and at the first and last write of each file, in turn, then run again: each time
//! the result must be the uninterrupted run's — the same final weights, CSV rows and test
//! accuracy — with nothing left behind.

use std::path::Path;
use std::process::Command;

fn cnn(npz: &Path, out: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cnn"));
    cmd.args(["--epochs", "3", "--learning-rate", "0.05", "--data"])
        .arg(npz)
        .arg("--out")
        .arg(out)
        .env("OMP_NUM_THREADS", "1");
    cmd
}

/// Final weights, CSV rows without the seconds column, and the printed test accuracy.
fn results(out: &Path, stdout: &[u8]) -> (Vec<u8>, Vec<String>, String) {
    let weights = std::fs::read(out.join("cnn.safetensors")).unwrap();
    let rows = std::fs::read_to_string(out.join("cnn_epochs.csv"))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').map_or(l, |(head, _)| head).to_string())
        .collect();
    let test = String::from_utf8_lossy(stdout)
        .lines()
        .find(|l| l.starts_with("Final Test acc"))
        .unwrap_or("no test line")
        .to_string();
    (weights, rows, test)
}

fn same(
    a: &(Vec<u8>, Vec<String>, String),
    b: &(Vec<u8>, Vec<String>, String),
) -> Vec<&'static str> {
    let mut d = Vec::new();
    if a.0 != b.0 {
        d.push("weights");
    }
    if a.1 != b.1 {
        d.push("CSV rows");
    }
    if a.2 != b.2 {
        d.push("test accuracy");
    }
    d
}

#[test]
fn killed_anywhere_the_rerun_ends_as_the_uninterrupted_run() {
    let dir = std::env::temp_dir().join(format!("cnn-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let npz = dir.join("tiny.npz");
    vision::synthetic::write_quick_npz(&npz, 7, [96, 16, 16]).unwrap();

    let reference = dir.join("reference");
    let out = cnn(&npz, &reference).output().unwrap();
    assert!(out.status.success());
    let want = results(&reference, &out.stdout);

    let dry = dir.join("dry");
    let points = faults::essential(faults::kill_points(&cnn(&npz, &dry), &dry));
    let count = |s: &str| points.iter().filter(|p| p.syscall == s).count();
    assert!(count("rename") >= 9 && count("unlink") >= 2, "{points:?}");

    let [renames, unlinks, writes] = faults::kill_and_rerun(
        &points,
        &dir,
        |out| cnn(&npz, out),
        |point, out, rerun| {
            assert_eq!(
                same(&results(out, &rerun.stdout), &want),
                [""; 0],
                "{point:?}: the results differ from the uninterrupted run's"
            );
            assert_eq!(
                faults::names_in(out),
                [
                    "cnn.lock",
                    "cnn.run.json",
                    "cnn.safetensors",
                    "cnn_epochs.csv"
                ],
                "{point:?}: resume files left"
            );
        },
    );
    eprintln!(
        "cnn: {} kill points survived ({renames} renames, {unlinks} unlinks, {writes} writes)",
        points.len()
    );
    std::fs::remove_dir_all(dir).unwrap();
}

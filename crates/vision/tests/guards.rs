//! What `cnn` refuses, and how: bad flags before any data is read (exit 2, naming the flag),
//! an unwritable output folder before training, and a diverging run stopped at its first
//! non-finite loss (exit 1, naming the epoch and batch), all with one-line errors.

use std::path::Path;
use std::process::{Command, Output};

fn cnn(args: &[&str], npz: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnn"))
        .args(args)
        .arg("--data")
        .arg(npz)
        .arg("--out")
        .arg(out)
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap()
}

#[test]
fn bad_flags_unwritable_folders_and_divergence_are_refused_clearly() {
    let dir = std::env::temp_dir().join(format!("cnn-guards-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let npz = dir.join("tiny.npz");
    vision::synthetic::write_quick_npz(&npz, 7, [48, 16, 16]).unwrap();

    for (flag, value) in [
        ("--batch-size", "0"),
        ("--dropout", "2"),
        ("--learning-rate", "-1"),
        ("--learning-rate", "inf"),
        ("--epochs", "0"),
        ("--l2-decay", "nan"),
        // Beyond float32, the weights' type: libtorch refuses to apply them.
        ("--learning-rate", "1e308"),
        ("--l2-decay", "1e308"),
    ] {
        let o = cnn(
            &[&format!("{flag}={value}")],
            &dir.join("missing.npz"),
            &dir,
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(
            err.contains(flag) && err.contains(value),
            "{flag} {value}: {err}"
        );
    }

    let o = cnn(&["--epochs", "1"], &npz, Path::new("/proc/cnn-out"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("/proc/cnn-out"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");

    let out = dir.join("diverged");
    let o = cnn(&["--epochs", "2", "--learning-rate", "1000"], &npz, &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let last = err.trim_end().lines().last().unwrap_or("");
    assert!(
        last.starts_with("error: training diverged: in epoch 1, the loss of batch "),
        "{last}"
    );
    assert!(
        !out.join("cnn.safetensors").exists(),
        "no checkpoint of a diverged epoch"
    );
    // Huge factors that float32 still holds: the weights overflow, and the run stops as it
    // does on a non-finite loss.
    for args in [["--learning-rate", "1e30"], ["--l2-decay", "1e30"]] {
        let out = dir.join(format!("huge{}", args[0]));
        let o = cnn(&[&["--epochs", "1"][..], &args[..]].concat(), &npz, &out);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        let last = err.trim_end().lines().last().unwrap_or("");
        assert!(
            last.starts_with("error: training diverged: in epoch 1"),
            "{args:?}: {last}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

//! What `p2g` refuses, and how: bad flags before any data is read (exit 2, naming the
//! flag), unwritable outputs before training (exit 1, one line naming the path), and a
//! checkpoint of another vocabulary.

use std::path::Path;
use std::process::{Command, Output};

fn p2g(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_p2g"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap()
}

#[test]
fn bad_flags_and_unwritable_outputs_are_refused_clearly() {
    let dir = std::env::temp_dir().join(format!("p2g-guards-{}", std::process::id()));
    let data = dir.join("data");
    seq2seq::synthetic::write_quick_corpus(&data, 1, [60, 20, 20]).unwrap();

    for (cmd, flag, value) in [
        ("train", "--batch-size", "0"),
        ("train", "--dropout", "2"),
        ("train", "--hidden-size", "0"),
        ("train", "--n-epochs", "0"),
        ("train", "--lr", "inf"),
        ("test", "--topp", "0"),
        ("test", "--k", "0"),
        ("test", "--beam", "0"),
    ] {
        let o = p2g(&[cmd, &format!("{flag}={value}")], &dir.join("missing"));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(
            err.contains(flag) && err.contains(value),
            "{flag} {value}: {err}"
        );
    }

    // The shared names are accepted beside the homework's (`--epochs` for `--n-epochs`, …),
    // and checked alike.
    for alias in ["--epochs=0", "--learning-rate=0"] {
        let o = p2g(&["train", alias], &dir.join("missing"));
        assert_eq!(
            o.status.code(),
            Some(2),
            "{alias}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    for (flag, path) in [
        ("--outcome", "/proc/p2g/outcome.json"),
        ("--checkpoint", "/proc/p2g/m.safetensors"),
    ] {
        let t = std::time::Instant::now();
        let o = p2g(&["train", "--n-epochs", "1", flag, path], &data);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        let line = err.lines().find(|l| l.starts_with("error: ")).unwrap_or("");
        assert!(line.contains("/proc/p2g"), "{flag}: {err}");
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains("Epoch: [1/1]"),
            "trained first"
        );
        assert!(t.elapsed().as_secs() < 30);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

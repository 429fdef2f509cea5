//! What `p2g` refuses, and how: bad flags before any data is read (exit 2, naming the
//! flag), unwritable outputs before training (exit 1, one line naming the path), and a
//! checkpoint of another vocabulary.

use std::path::Path;
use std::process::{Command, Output};

fn p2g(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_p2g"))
        .args(args)
        .arg("--data")
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
        ("train", "--epochs", "0"),
        ("train", "--learning-rate", "inf"),
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

    // The homework's spellings and our earlier ones are aliases, checked alike.
    for alias in [
        "--n_epochs=0",
        "--n-epochs=0",
        "--lr=0",
        "--learning_rate=0",
    ] {
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
        let o = p2g(&["train", "--epochs", "1", flag, path], &data);
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

#[test]
fn sizes_beyond_reason_and_folders_as_files_are_refused_before_training() {
    let dir = std::env::temp_dir().join(format!("p2g-bounds-{}", std::process::id()));
    let data = dir.join("data");
    seq2seq::synthetic::write_quick_corpus(&data, 1, [60, 20, 20]).unwrap();
    let folder = dir.join("a-folder");
    std::fs::create_dir_all(&folder).unwrap();
    let folder = folder.to_str().unwrap();
    let ckpt = dir.join("m.safetensors");
    let ckpt = ckpt.to_str().unwrap();
    for (args, code, expected) in [
        (
            vec!["train", "--hidden-size", "1000000"],
            2,
            "must be even, from 2 to 65536",
        ),
        (vec!["train", "--hidden-size", "7"], 2, "must be even"),
        (
            vec!["train", "--learning-rate", "1e308"],
            2,
            "the largest float32",
        ),
        (vec!["train", "--hidden-size", "65536"], 1, "needs about"),
        (
            vec![
                "test",
                "--beam",
                "18446744073709551615",
                "--checkpoint",
                ckpt,
            ],
            1,
            "--beam: a beam of 18446744073709551615 is wider than the target vocabulary",
        ),
        (
            vec!["train", "--epochs", "1", "--outcome", folder],
            1,
            "a-folder is a folder",
        ),
        (
            vec!["train", "--epochs", "1", "--force", "--checkpoint", folder],
            1,
            "a-folder is a folder",
        ),
    ] {
        let o = p2g(&args, &data);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains("Epoch: [1/"),
            "{args:?}: trained first"
        );
    }
    // Nothing was written beside the folder given as a checkpoint.
    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["a-folder", "data"]);
    std::fs::remove_dir_all(dir).unwrap();
}

//! `cargo xtask` tells its outcomes apart by exit code, each with a one-line error: a bad
//! flag 2, a stage skipped for want of its data 3 (the others still ran and the report was
//! written).

use std::process::Command;

#[test]
fn a_bad_flag_exits_2_and_a_skipped_stage_3() {
    let xtask = env!("CARGO_BIN_EXE_xtask");
    let o = Command::new(xtask)
        .args(["reproduce", "--only", "q4"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let dir = std::env::temp_dir().join(format!("xtask-skip-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let o = Command::new(xtask)
        .args(["reproduce", "--only", "q2", "--data"])
        .arg(dir.join("no-data"))
        .arg("--out")
        .arg(dir.join("out"))
        .env("CARGO_NET_OFFLINE", "true")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    let last = err.lines().last().unwrap_or("");
    assert_eq!(last, "error: stages skipped: q2 (see the reasons above)");
    assert!(
        err.contains("q2: SKIPPED") && err.contains("intel_landscapes.v2.npz"),
        "{err}"
    );
    assert!(
        dir.join("out/REPORT.md").exists(),
        "the report is still written"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

//! Runs the `q1` binary as the report pipeline does and checks its summary.

use std::path::PathBuf;
use std::process::Command;

/// Builds `bin` with the workspace's feature set (the one `cargo test --workspace` already
/// compiled, so this is a cache hit) and returns its path.
fn workspace_binary(bin: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new(env!("CARGO"))
        .current_dir(&root)
        .args(["build", "--quiet", "--workspace", "--bin", bin])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building {bin} failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    target.join("debug").join(bin)
}

#[test]
fn q1_quick_writes_summary_and_figures() {
    let out = std::env::temp_dir().join(format!("q1-pipeline-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let status = Command::new(workspace_binary("q1"))
        .args(["--quick", "--out"])
        .arg(&out)
        .status()
        .expect("q1 runs");
    assert!(status.success());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert!(summary["grad_max_rel_err"].as_f64().unwrap() < 1e-6);
    assert!(summary["hessian_max_rel_err"].as_f64().unwrap() < 1e-6);
    assert!(summary["hessian_min_eigenvalue"].as_f64().unwrap() >= -1e-10);
    assert_eq!(summary["cccp_monotone"], true);
    assert!(summary["attention_max_abs_diff"].as_f64().unwrap() < 1e-6);
    let capacity = summary["retrieval"]["capacity"].as_array().unwrap();
    assert!(capacity.last().unwrap()["modern_success"].as_f64().unwrap() > 0.95);
    for fig in summary["figures"].as_array().unwrap() {
        let path = out.join(fig.as_str().unwrap());
        assert!(
            path.metadata().map(|m| m.len() > 1000).unwrap_or(false),
            "{path:?} missing or empty"
        );
    }
    std::fs::remove_dir_all(out).unwrap();
}

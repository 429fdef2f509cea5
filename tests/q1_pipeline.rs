//! Runs the `q1` binary as the report pipeline does and checks its summary.

use std::process::Command;

#[test]
fn q1_quick_writes_summary_and_figures() {
    let out = std::env::temp_dir().join(format!("q1-pipeline-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let status = Command::new(env!("CARGO"))
        .args([
            "run", "--quiet", "-p", "hopfield", "--bin", "q1", "--", "--quick", "--out",
        ])
        .arg(&out)
        .status()
        .expect("cargo runs");
    assert!(status.success());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert!(summary["grad_max_rel_err"].as_f64().unwrap() < 1e-6);
    assert!(summary["hessian_max_rel_err"].as_f64().unwrap() < 1e-6);
    assert!(summary["hessian_min_eigenvalue"].as_f64().unwrap() >= -1e-10);
    assert_eq!(summary["cccp_monotone"], true);
    assert!(summary["attention_max_abs_diff"].as_f64().unwrap() < 1e-6);
    assert!(!summary["retrieval"]["capacity"]
        .as_array()
        .unwrap()
        .is_empty());
    for fig in summary["figures"].as_array().unwrap() {
        let path = out.join(fig.as_str().unwrap());
        assert!(
            path.metadata().map(|m| m.len() > 1000).unwrap_or(false),
            "{path:?} missing or empty"
        );
    }
    std::fs::remove_dir_all(out).unwrap();
}

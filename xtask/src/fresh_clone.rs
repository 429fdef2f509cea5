//! `cargo xtask fresh-clone`: the rule "the tests pass on a fresh machine", checked.
//!
//! Clones the committed HEAD into an empty temporary folder — so there is no `../shared`
//! beside it, no `data/`, no reports — and, with downloads forbidden
//! (`CARGO_NET_OFFLINE=true`) and the fixture variables unset:
//! 1. `cargo xtask fixtures` must fail with one sentence naming the missing file;
//! 2. `cargo test --workspace --no-fail-fast` must build, and every test must pass except
//!    those that need the fixtures, each of which must fail saying how to get them; no test
//!    may be ignored.
//!
//! libtorch is the one thing the clone borrows (`LIBTORCH`): it comes from PyPI, which a fresh
//! machine reaches, and reinstalling it would only cost time. The clone builds into its own
//! target folder, `target/fresh-clone` of this checkout (kept between runs): cargo names a
//! workspace's artifacts by their path relative to the workspace, so a shared folder would
//! let the clone's test binaries stand in for this checkout's.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

use crate::libtorch::Libtorch;

/// What a test that needs the fixtures says when they are absent (`datasets::local`): a file
/// `cargo xtask fixtures` fetches, or a reference run made with the homework's code.
const FIXTURE_SENTENCES: [&str; 3] = [
    "run `cargo xtask fixtures` to fetch it",
    "make it with the homework's code",
    "make it with the homework's workplace script",
];

pub fn run(root: &Path, torch: &Libtorch) -> Result<()> {
    let base = std::env::temp_dir().join(format!("hw2-fresh-clone-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base)?;
    let clone = base.join("repo");
    let status = Command::new("git")
        .args(["clone", "--quiet", "--no-hardlinks"])
        .arg(root)
        .arg(&clone)
        .status()
        .context("running git clone")?;
    ensure!(status.success(), "git clone of {} failed", root.display());
    ensure!(
        !clone.join("../shared").exists(),
        "the clone has a ../shared beside it"
    );
    eprintln!(
        "== fresh clone of HEAD in {} (no ../shared, no data/, downloads off)",
        clone.display()
    );
    let target = crate::target_dir(root).join("fresh-clone");
    let cargo = |args: &[&str]| {
        let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        c.current_dir(&clone)
            .args(args)
            .env("LIBTORCH", &torch.dir)
            .env("CARGO_TARGET_DIR", &target)
            .env("CARGO_NET_OFFLINE", "true")
            .env("OMP_NUM_THREADS", "1")
            .env_remove(datasets::local::P2G_ENV)
            .env_remove(datasets::local::CHECKPOINTS_ENV);
        c
    };

    // 1. No way to get the fixtures: one sentence that names the file.
    let out = cargo(&["xtask", "fixtures"])
        .env_remove("RUST_BACKTRACE")
        .output()
        .context("running cargo xtask fixtures")?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success(),
        "cargo xtask fixtures succeeded without ../shared and offline:\n{err}"
    );
    let Some(line) = err
        .lines()
        .find(|l| l.starts_with("error: ") && l.contains("data/p2g/train.tsv"))
    else {
        bail!(
            "cargo xtask fixtures failed without a one-line error naming the missing file:\n{err}"
        );
    };
    ensure!(
        line.contains("by hand"),
        "the error does not say how to get the file: {line}"
    );
    eprintln!("== fixtures, offline: refused as it should:\n   {line}");

    // 2. The suite: everything passes but the tests that need the fixtures, which say so.
    eprintln!("== cargo test --workspace --no-fail-fast in the clone (a full build) ...");
    let out = cargo(&["test", "--workspace", "--no-fail-fast"])
        .output()
        .context("running cargo test in the clone")?;
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(base.join("test.log"), &text)?;
    let log = base.join("test.log");
    let verdict = judge(&text).with_context(|| format!("full output: {}", log.display()))?;
    eprintln!(
        "== fresh clone: {} tests passed; {} need the fixtures and said so:",
        verdict.passed,
        verdict.needs_fixtures.len()
    );
    for t in &verdict.needs_fixtures {
        eprintln!("   {t}");
    }
    let _ = std::fs::remove_dir_all(&base);
    Ok(())
}

/// What a `cargo test --no-fail-fast` output says.
#[derive(Debug)]
struct Verdict {
    passed: usize,
    needs_fixtures: Vec<String>,
}

/// Checks a `cargo test` output: it compiled, nothing was ignored, and every failed test
/// failed for want of the fixtures.
fn judge(text: &str) -> Result<Verdict> {
    ensure!(
        !text.contains("error[E") && !text.contains("could not compile"),
        "the clone does not build"
    );
    let mut passed = 0;
    let mut results = 0;
    for line in text.lines().filter(|l| l.starts_with("test result:")) {
        results += 1;
        let count = |what: &str| -> usize {
            line.split(';')
                .find_map(|part| part.trim().strip_suffix(what))
                .and_then(|n| n.trim().rsplit(' ').next()?.parse().ok())
                .unwrap_or(0)
        };
        passed += count("passed");
        ensure!(count("ignored") == 0, "a test was ignored: {line}");
    }
    ensure!(results > 0 && passed > 0, "no test ran");
    let failed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("test ")?.strip_suffix(" ... FAILED"))
        .collect();
    let mut needs_fixtures = Vec::new();
    for name in failed {
        let header = format!("---- {name} stdout ----");
        let Some(at) = text.find(&header) else {
            bail!("test {name} failed without a message");
        };
        let body = &text[at + header.len()..];
        let end = body
            .find("\n---- ")
            .into_iter()
            .chain(body.find("\nfailures:"))
            .min()
            .unwrap_or(body.len());
        let body = &body[..end];
        if !FIXTURE_SENTENCES.iter().any(|s| body.contains(s)) {
            bail!(
                "test {name} failed on a fresh clone for another reason than the fixtures:{body}"
            );
        }
        needs_fixtures.push(name.to_string());
    }
    Ok(Verdict {
        passed,
        needs_fixtures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "running 2 tests
test a ... ok
test needs_data ... FAILED

failures:

---- needs_data stdout ----
thread 'needs_data' panicked at tests/common/mod.rs:15:
the Q3 data (train.tsv) is not in data/p2g nor set by P2G_DIR: run `cargo xtask fixtures` to fetch it (cargo xtask test does that first)

failures:
    needs_data

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.1s
";

    #[test]
    fn fixture_failures_pass_and_anything_else_fails() {
        let v = judge(OUTPUT).unwrap();
        assert_eq!(
            (v.passed, v.needs_fixtures.as_slice()),
            (1, &["needs_data".to_string()][..])
        );

        let other = OUTPUT.replace(FIXTURE_SENTENCES[0], "assertion failed");
        let err = format!("{:#}", judge(&other).unwrap_err());
        assert!(
            err.contains("needs_data") && err.contains("another reason"),
            "{err}"
        );

        let ignored = OUTPUT.replace("0 ignored", "1 ignored");
        assert!(judge(&ignored).is_err(), "an ignored test is a silent skip");
        assert!(judge("error[E0425]: cannot find value").is_err());
    }
}

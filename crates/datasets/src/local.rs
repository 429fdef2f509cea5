//! Where the test suite and the benches find the files they need on this machine: an
//! environment variable, else the repository's `data/` (where `cargo xtask fixtures`, run
//! by `cargo xtask test`, puts them), else the workplace's `shared/` folder beside the
//! repository. A file found nowhere is an error of one sentence that says how to get it.

use std::path::{Path, PathBuf};

use crate::RemoteFile;

/// The repository root (this crate lives in `crates/datasets`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The variable naming the folder of the Q3 TSV files.
pub const P2G_ENV: &str = "P2G_DIR";
/// The variable naming the folder of the seed checkpoints.
pub const CHECKPOINTS_ENV: &str = "SEED_CHECKPOINTS";

/// The repository's own copies (`data/p2g`, `data/checkpoints`).
pub fn data_dir() -> PathBuf {
    workspace_root().join("data")
}

/// The first folder holding every one of `files`: `$env`, else `data/<sub>`, else
/// `../shared/<shared_sub>`.
fn find(
    env: &str,
    sub: &str,
    shared_sub: &str,
    files: &[RemoteFile],
    what: &str,
) -> Result<PathBuf, String> {
    let has_all = |dir: &Path| files.iter().all(|f| dir.join(f.name).is_file());
    if let Some(dir) = std::env::var_os(env).map(PathBuf::from) {
        return if has_all(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "{env}={} lacks {what} ({}); point it at a folder that holds them, or unset it",
                dir.display(),
                names(files)
            ))
        };
    }
    let candidates = [
        data_dir().join(sub),
        workspace_root().join("../shared").join(shared_sub),
    ];
    candidates.iter().find(|d| has_all(d)).cloned().ok_or_else(|| {
        format!(
            "{what} ({}) is not in {} nor set by {env}: run `cargo xtask fixtures` to fetch it (cargo xtask test does that first)",
            names(files),
            data_dir().join(sub).display()
        )
    })
}

fn names(files: &[RemoteFile]) -> String {
    files.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
}

/// The variable naming the folder of the homework code's reference runs.
pub const REFERENCE_ENV: &str = "HW2_REFERENCE";

/// A file of the reference runs of the homework's own PyTorch code (`<run>/<file>`, e.g.
/// `q3-attn/init.safetensors`): `$HW2_REFERENCE`, else `data/reference`, else the
/// workplace's `../shared/reference`. They are made by running the homework's code, not
/// downloaded; the error says how to make them.
pub fn reference_file(run: &str, file: &str) -> Result<PathBuf, String> {
    let candidates: Vec<PathBuf> = match std::env::var_os(REFERENCE_ENV) {
        Some(dir) => vec![PathBuf::from(dir)],
        None => vec![
            data_dir().join("reference"),
            workspace_root().join("../shared/reference"),
        ],
    };
    candidates
        .iter()
        .map(|d| d.join(run).join(file))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "the homework code's reference run {run}/{file} is not in {} nor set by {REFERENCE_ENV}: make it with the homework's code (tools/make-reference.sh of the workplace's shared/reference, see its README)",
                data_dir().join("reference").display()
            )
        })
}

/// The variable naming the Fashion-MNIST substitute for Q2 (`fashion6.npz`).
pub const FASHION6_ENV: &str = "FASHION6_NPZ";

/// The Fashion-MNIST substitute in the Intel file's layout: `$FASHION6_NPZ`, else
/// `data/fashion6.npz` (what `cargo xtask fixtures` builds where the workplace's
/// `shared/data/make-fashion6.sh` is at hand).
pub fn fashion6() -> Result<PathBuf, String> {
    let path = std::env::var_os(FASHION6_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir().join("fashion6.npz"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "the Fashion-MNIST substitute {} is missing and {FASHION6_ENV} is not set: make it with the homework's workplace script (shared/data/make-fashion6.sh {}), which `cargo xtask fixtures` runs when it is at hand",
            path.display(),
            path.display()
        ))
    }
}

/// The folder of the homework's Q3 TSV files.
pub fn p2g_dir() -> Result<PathBuf, String> {
    find(P2G_ENV, "p2g", "data/p2g", &crate::P2G, "the Q3 data")
}

/// The folder of the seed report's trained weights (`seed-attn.pt`, `seed-no-attn.pt`).
pub fn checkpoints_dir() -> Result<PathBuf, String> {
    find(
        CHECKPOINTS_ENV,
        "checkpoints",
        "checkpoints",
        &crate::SEED_CHECKPOINTS,
        "the seed report's Q3 weights",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_variable_is_named_in_one_sentence() {
        std::env::set_var(P2G_ENV, "/nonexistent/p2g");
        let err = p2g_dir().unwrap_err();
        std::env::remove_var(P2G_ENV);
        assert!(
            err.contains(
                "P2G_DIR=/nonexistent/p2g lacks the Q3 data (train.tsv, valid.tsv, test.tsv)"
            ),
            "{err}"
        );
        assert_eq!(err.matches(". ").count(), 0, "one sentence: {err}");
    }
}

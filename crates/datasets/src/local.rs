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

/// The CPU kind the committed reference losses (`crates/*/tests/data/<run>-losses.txt`,
/// copies of shared/reference's `losses.txt`) were made on: the project's AMD EPYC machines.
pub const REFERENCE_CPU: &str = "AMD EPYC";

/// This machine's CPU model name (`/proc/cpuinfo`), or "unknown".
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The homework's training losses of one reference run (`train %.9g` lines, in order) and
/// whether they may be compared bit for bit here.
#[derive(Debug)]
pub struct ReferenceLosses {
    /// Every training loss, float32.
    pub values: Vec<f32>,
    /// True when they were made on a CPU of this machine's kind: convolution and matrix
    /// kernels round differently across CPUs, so only then are float32 losses equal.
    pub same_cpu: bool,
    /// Where they come from and, when `same_cpu` is false, why; for the test's output.
    pub source: String,
}

/// The training losses of `run`: `$HW2_REFERENCE/<run>/losses.txt` when that variable is
/// set (a reference made on this machine, as shared/reference's README says), else the
/// committed copy `committed`, made on [`REFERENCE_CPU`].
pub fn reference_losses(run: &str, committed: &Path) -> Result<ReferenceLosses, String> {
    let own =
        std::env::var_os(REFERENCE_ENV).map(|d| PathBuf::from(d).join(run).join("losses.txt"));
    let (path, same_cpu, source) = match own {
        Some(p) => {
            let source = format!("{} (made on this machine)", p.display());
            (p, true, source)
        }
        None => {
            let here = cpu_model();
            let same = here.starts_with(REFERENCE_CPU);
            let source = if same {
                format!(
                    "{} (made on an {REFERENCE_CPU}, as is this machine)",
                    committed.display()
                )
            } else {
                format!(
                    "{} was made on an {REFERENCE_CPU}, this CPU is {here}: its kernels round differently, so losses are compared to a relative tolerance, not bit for bit (for that, make a reference here with shared/reference's tools/make-reference.sh and set {REFERENCE_ENV})",
                    committed.display()
                )
            };
            (committed.to_path_buf(), same, source)
        }
    };
    Ok(ReferenceLosses {
        values: train_losses(&path)?,
        same_cpu,
        source,
    })
}

/// The `train %.9g` lines of a `losses.txt`, in order, as float32.
fn train_losses(path: &Path) -> Result<Vec<f32>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut values = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(v) = line.strip_prefix("train ") {
            let v: f64 = v
                .trim()
                .parse()
                .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?;
            values.push(v as f32);
        }
    }
    Ok(values)
}

impl ReferenceLosses {
    /// [`ReferenceLosses::check`] for a test: panics with its error, else prints which
    /// comparison was made and the largest relative difference.
    pub fn assert_matches(&self, run: &str, ours: &[f64], close: usize, rel: f64) {
        let worst = self
            .check(run, ours, close, rel)
            .unwrap_or_else(|e| panic!("{e}"));
        eprintln!(
            "{run}: {} losses, largest relative difference {worst:.1e}; {}",
            ours.len(),
            self.source
        );
    }

    /// Checks `ours` against the reference: bit for bit on the reference's CPU kind, else
    /// the first `close` losses to `rel` relative (elsewhere a trajectory may drift: batch
    /// norm at batch 8 amplifies a last-bit difference). Returns the largest relative
    /// difference seen over all of `ours`; an error names the first batch that fails.
    pub fn check(&self, run: &str, ours: &[f64], close: usize, rel: f64) -> Result<f64, String> {
        if ours.len() > self.values.len() {
            return Err(format!(
                "{run}: {} losses to check, the reference has {}",
                ours.len(),
                self.values.len()
            ));
        }
        let mut worst: f64 = 0.0;
        for (i, (&a, &b)) in ours.iter().zip(&self.values).enumerate() {
            let d = ((a as f32 - b) / b).abs() as f64;
            worst = worst.max(d);
            if self.same_cpu && a as f32 != b {
                // `%.9g` identifies a float32: equal digits, equal value.
                return Err(format!(
                    "{run}: batch {} ({a} against {b}), from {}",
                    i + 1,
                    self.source
                ));
            }
            if !self.same_cpu && i < close && d > rel {
                return Err(format!(
                    "{run}: batch {} ({a} against {b}, {d:.1e} relative > {rel:.0e}); {}",
                    i + 1,
                    self.source
                ));
            }
        }
        Ok(worst)
    }
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

    fn losses(values: &[f32], same_cpu: bool) -> ReferenceLosses {
        ReferenceLosses {
            values: values.to_vec(),
            same_cpu,
            source: "test".into(),
        }
    }

    #[test]
    fn same_cpu_demands_equal_float32() {
        let r = losses(&[1.0, 2.0], true);
        assert_eq!(r.check("r", &[1.0, 2.0], 0, 0.0), Ok(0.0));
        let err = r.check("r", &[1.0, 2.000001], 0, 1.0).unwrap_err();
        assert!(err.contains("batch 2"), "{err}");
    }

    #[test]
    fn another_cpu_allows_a_relative_tolerance_on_the_first_losses() {
        let r = losses(&[1.0, 2.0, 3.0], false);
        assert!(r.check("r", &[1.0000001, 2.0, 3.3], 2, 1e-6).is_ok());
        let err = r.check("r", &[1.0, 2.1, 3.0], 2, 1e-6).unwrap_err();
        assert!(err.contains("batch 2") && err.contains("relative"), "{err}");
        assert!(
            r.check("r", &[1.0; 4], 2, 1.0).is_err(),
            "more than the reference"
        );
    }

    #[test]
    fn reads_train_lines_only() {
        let dir = std::env::temp_dir().join(format!("reflosses-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("l.txt");
        std::fs::write(&f, "train 1.5\neval 9\ntrain 2.25\n").unwrap();
        assert_eq!(train_losses(&f).unwrap(), [1.5, 2.25]);
        std::fs::write(&f, "train x\n").unwrap();
        let err = train_losses(&f).unwrap_err();
        assert!(err.contains("line 1"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

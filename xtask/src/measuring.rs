//! What `cargo xtask bench` and `cargo xtask growth` share: the options naming what to time
//! and the homework's code to time beside it, the crates' bench binaries, the CPU's name.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};

use crate::libtorch::Libtorch;

/// Options both measures take.
#[derive(clap::Args)]
pub struct Common {
    /// What to time (q2, q3).
    #[arg(long, value_delimiter = ',', default_value = "q2,q3", value_parser = ["q2", "q3"])]
    pub only: Vec<String>,
    /// A folder outside the repository holding the homework's code as published
    /// (`hw2-q2/{hw2-q2.py,utils.py}`, `hw2-q3/{hw2-q3.py,models.py,data.py}`): times it too.
    #[arg(long, requires = "python")]
    pub homework: Option<PathBuf>,
    /// A Python with torch 2.11.0, numpy and matplotlib, to run the homework's code.
    #[arg(long, requires = "homework")]
    pub python: Option<PathBuf>,
    /// Q2's npz (the Fashion-MNIST substitute or the Intel file).
    #[arg(long, default_value = "data/fashion6.npz")]
    pub npz: PathBuf,
    /// Folder with the Q3 TSV files.
    #[arg(long, default_value = "data/p2g")]
    pub p2g: PathBuf,
}

impl Common {
    /// Whether `question` (q2, q3) is to be timed.
    pub fn times(&self, question: &str) -> bool {
        self.only.iter().any(|q| q == question)
    }
}

/// The homework's code, checked, and the Python to run it with.
pub struct HomeworkCode {
    /// Its folder (canonical, outside the repository).
    pub dir: PathBuf,
    /// The user's Python.
    pub python: PathBuf,
}

/// The homework's folder (checked to hold its files and to lie outside the repository) and
/// the Python to run it with, when given.
pub fn homework(root: &Path, args: &Common) -> Result<Option<HomeworkCode>> {
    Ok(match (&args.homework, &args.python) {
        (Some(dir), Some(py)) => {
            for f in [
                "hw2-q2/hw2-q2.py",
                "hw2-q2/utils.py",
                "hw2-q3/hw2-q3.py",
                "hw2-q3/models.py",
                "hw2-q3/data.py",
            ] {
                ensure!(dir.join(f).is_file(), "--homework {}: no {f} (write the homework's files there, outside the repository)", dir.display());
            }
            ensure!(
                !dir.canonicalize()?.starts_with(root.canonicalize()?),
                "--homework {} lies inside the repository: keep the homework's code outside it",
                dir.display()
            );
            Some(HomeworkCode {
                dir: dir.canonicalize()?,
                python: py.clone(),
            })
        }
        _ => None,
    })
}

/// The CPU's model name.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// What `cargo bench -p <krate> --bench train_step -- <mode>` printed; an error with its
/// output when it fails.
pub fn crate_bench(torch: &Libtorch, root: &Path, krate: &str, mode: &str) -> Result<String> {
    let out = crate::libtorch::cargo_command(torch)
        .current_dir(root)
        .args([
            "bench",
            "-q",
            "-p",
            krate,
            "--bench",
            "train_step",
            "--",
            mode,
        ])
        .output()
        .with_context(|| format!("running {krate}'s bench"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "{krate}'s bench failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(text)
}

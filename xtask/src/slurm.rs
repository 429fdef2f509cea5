//! The one-node Slurm cluster the tests submit to (`tests/slurm/one-node.sh`): started by
//! `cargo xtask test` and `fresh-clone`, with Debian's `slurm-wlm` and `munge` installed
//! first where this is root with apt-get.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::{ensure_debian_tool, succeeds};

/// Where the test cluster keeps its configuration and state.
const DIR: &str = "/tmp/hw2-slurm";

/// Starts the test cluster if it is not up; returns its `SLURM_CONF`.
pub fn ensure_cluster(root: &Path) -> Result<PathBuf> {
    for (package, program) in [("munge", "munged"), ("slurm-wlm", "slurmctld")] {
        ensure_debian_tool(package, "the Slurm executor's tests", || {
            succeeds("sh", &["-c", &format!("command -v {program}")])
        })?;
    }
    let out = std::process::Command::new("bash")
        .arg(root.join("tests/slurm/one-node.sh"))
        .arg(DIR)
        .output()
        .context("running tests/slurm/one-node.sh")?;
    if !out.status.success() {
        bail!(
            "the one-node Slurm cluster for the tests did not start: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let conf = PathBuf::from(DIR).join("slurm.conf");
    eprintln!("Slurm test cluster up (SLURM_CONF={})", conf.display());
    Ok(conf)
}

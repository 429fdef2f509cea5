//! Where independent trainings run, chosen once for the whole process tree: child processes
//! on this machine, a few at a time with their share of the cores ([`local`]), or the tasks
//! of a Slurm job array ([`slurm`]) when the environment asks for it
//! (`cargo xtask reproduce --executor slurm`).
//!
//! No libtorch here: the xtask submits Q1 through the same executor. The training loop's end
//! of the core hand-over (`ThreadShare`) is in `torchkit::jobs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

pub mod local;
pub mod slurm;

/// One child process: what to run and where its output goes.
pub struct Job {
    /// Name for logs and errors.
    pub name: String,
    /// The command (its stdout and stderr are appended to `log`).
    pub command: Command,
    /// Log file; appended to, so a resumed run's log follows the interrupted one's.
    pub log: PathBuf,
}

impl Job {
    /// A job that runs `exe` (its arguments added by [`Job::arg`] and [`Job::args`]),
    /// logging to `log`.
    pub fn new(name: impl Into<String>, exe: &Path, log: PathBuf) -> Self {
        Self {
            name: name.into(),
            command: Command::new(exe),
            log,
        }
    }

    /// Adds a positional argument (a subcommand).
    pub fn arg(mut self, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.arg(value);
        self
    }

    /// Adds arguments (a child's typed options, `cli::to_args`).
    pub fn args<S: AsRef<std::ffi::OsStr>>(mut self, values: impl IntoIterator<Item = S>) -> Self {
        self.command.args(values);
        self
    }

    /// The value the command passes for `flag` (`--device cuda` gives `cuda`), if any.
    pub fn flag_value(&self, flag: &str) -> Option<String> {
        let args: Vec<_> = self.command.get_args().collect();
        let at = args.iter().position(|a| *a == flag)?;
        args.get(at + 1).map(|v| v.to_string_lossy().into_owned())
    }
}

/// libtorch threads per child when `parallel` run at once: this process's cores (its own
/// `OMP_NUM_THREADS` when set, else the machine's) shared out, at least one each.
pub fn threads_per_job(parallel: usize) -> usize {
    let machine = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cores = std::env::var("OMP_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .map_or(machine, |n| n.min(machine));
    (cores / parallel.max(1)).max(1)
}

/// Where this process runs, for the record: the host, and the Slurm job (array task) when
/// Slurm started it (`node7, slurm job 812_1`).
pub fn place() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this machine".into());
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (
        var("SLURM_ARRAY_JOB_ID"),
        var("SLURM_ARRAY_TASK_ID"),
        var("SLURM_JOB_ID"),
    ) {
        (Some(array), Some(task), _) => format!("{host}, slurm job {array}_{task}"),
        (_, _, Some(job)) => format!("{host}, slurm job {job}"),
        _ => host,
    }
}

/// The environment variable naming a child's thread-share file.
pub const THREADS_FILE_ENV: &str = "TORCHKIT_THREADS_FILE";

/// Runs every job and returns when all have finished: as one Slurm job array where the
/// environment chooses Slurm ([`slurm::Slurm::from_env`]), else here, at most `parallel` at a
/// time ([`local::run_all`]). A failed job is an error naming its log, raised once the others
/// have finished. SIGTERM, SIGINT or SIGHUP to this process stops every job and waits for
/// them ([`supervise`]): the error is then [`supervise::Interrupted`], and the jobs resume
/// from their last epoch when run again.
pub fn run_all(jobs: Vec<Job>, parallel: usize) -> Result<()> {
    match slurm::Slurm::from_env()? {
        Some(slurm) => slurm.run_all(&jobs),
        None => local::run_all(jobs, parallel),
    }
}

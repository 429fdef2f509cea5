//! Independent trainings as child processes, a few at a time, each with its share of the
//! cores. Training steps are dominated by small ops that scale poorly over threads, so two
//! single-threaded runs side by side finish sooner than the same two runs one after the
//! other with two threads each.
//!
//! When a job ends and none is waiting, the cores it frees go to the jobs still running: the
//! runner writes each child's new share to the file named by [`THREADS_FILE_ENV`], and a
//! training loop that calls [`ThreadShare::poll`] takes it up between steps.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

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
    /// A job that runs `exe` (its arguments added by [`Job::arg`], [`Job::flag`] and
    /// [`Job::switch`]), logging to `log`.
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

    /// Adds `--name value`.
    pub fn flag(mut self, name: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.arg(name).arg(value);
        self
    }

    /// Adds `--name` when `on`.
    pub fn switch(mut self, name: &str, on: bool) -> Self {
        if on {
            self.command.arg(name);
        }
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

/// A running child.
struct Running {
    name: String,
    log: PathBuf,
    threads_file: PathBuf,
    child: Child,
}

fn start(mut job: Job, threads: usize) -> Result<Running> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&job.log)
        .with_context(|| format!("opening {}", job.log.display()))?;
    let threads_file = job.log.with_extension("threads");
    artifacts::write_atomic(&threads_file, threads.to_string().as_bytes())?;
    eprintln!("== {}: started (log: {})", job.name, job.log.display());
    let child = supervise::spawn(
        job.command
            .env("OMP_NUM_THREADS", threads.to_string())
            .env(THREADS_FILE_ENV, &threads_file)
            .stdout(log.try_clone()?)
            .stderr(log),
    )
    .with_context(|| format!("starting {}", job.name))?;
    Ok(Running {
        name: job.name,
        log: job.log,
        threads_file,
        child,
    })
}

/// Runs every job, at most `parallel` at a time (in order), each child with
/// [`threads_per_job`] libtorch threads — or, where the environment chooses Slurm, as one
/// Slurm job array ([`crate::slurm`]); returns when all have finished. A failed job is an
/// error naming its log, raised once the others have finished. SIGTERM, SIGINT or SIGHUP
/// to this process stops every child and waits for them ([`supervise`]): the error is then
/// [`supervise::Interrupted`], and the jobs resume from their last epoch when run again.
pub fn run_all(jobs: Vec<Job>, parallel: usize) -> Result<()> {
    // The executor is the environment's choice, made once for the whole process tree.
    if let Some(slurm) = crate::slurm::Slurm::from_env()? {
        return slurm.run_all(&jobs);
    }
    let supervision = supervise::Supervision::begin();
    let parallel = parallel.max(1);
    let threads = threads_per_job(parallel.min(jobs.len().max(1)));
    let mut queue = jobs.into_iter();
    // (`vec::IntoIter` knows how many jobs are still queued.)
    let mut running: Vec<Running> = Vec::new();
    let mut failed = Vec::new();
    loop {
        if let Some(signal) = supervision.received() {
            let mut children: Vec<&mut Child> = running.iter_mut().map(|r| &mut r.child).collect();
            supervise::stop(&mut children, signal);
            for r in &running {
                let _ = std::fs::remove_file(&r.threads_file);
                eprintln!(
                    "== {}: stopped ({})",
                    r.name,
                    supervise::signal_name(signal)
                );
            }
            return Err(supervise::Interrupted { signal }.into());
        }
        while running.len() < parallel {
            match queue.next() {
                Some(job) => running.push(start(job, threads)?),
                None => break,
            }
        }
        if running.is_empty() {
            break;
        }
        // Wait for whichever finishes first, or for a signal.
        let done = loop {
            if let Some(i) = running
                .iter_mut()
                .position(|r| r.child.try_wait().ok().flatten().is_some())
            {
                break Some(i);
            }
            if supervision.received().is_some() {
                break None;
            }
            std::thread::sleep(supervise::poll_interval());
        };
        let Some(done) = done else {
            continue;
        };
        let mut r = running.swap_remove(done);
        let status = r.child.wait()?;
        let _ = std::fs::remove_file(&r.threads_file);
        if status.success() {
            eprintln!("== {}: finished", r.name);
        } else {
            failed.push(format!(
                "{} failed ({status}); see {}",
                r.name,
                r.log.display()
            ));
        }
        // Nothing waits for the freed cores: hand them to the jobs still running.
        if queue.len() == 0 && !running.is_empty() {
            let share = threads_per_job(running.len());
            for other in &running {
                artifacts::write_atomic(&other.threads_file, share.to_string().as_bytes())?;
            }
        }
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("; "));
    }
    Ok(())
}

/// A training loop's end of the hand-over: polls the file the runner names in
/// [`THREADS_FILE_ENV`] (at most once a second) and switches libtorch to the share it holds.
#[derive(Debug)]
pub struct ThreadShare {
    file: Option<PathBuf>,
    threads: usize,
    checked: Instant,
}

impl ThreadShare {
    /// Follows the file named in the environment, if any (set by [`run_all`]).
    pub fn from_env() -> Self {
        Self::following(
            std::env::var_os(THREADS_FILE_ENV)
                .map(PathBuf::from)
                .as_deref(),
        )
    }

    /// Follows `file` (nothing to follow: `poll` does nothing).
    pub fn following(file: Option<&Path>) -> Self {
        Self {
            file: file.map(Path::to_path_buf),
            threads: tch::get_num_threads().max(1) as usize,
            checked: Instant::now(),
        }
    }

    /// Adopts a new share if the runner wrote one; returns the thread count now in use.
    pub fn poll(&mut self) -> usize {
        let Some(file) = &self.file else {
            return self.threads;
        };
        if self.checked.elapsed() < Duration::from_secs(1) {
            return self.threads;
        }
        self.checked = Instant::now();
        let share = std::fs::read_to_string(file)
            .ok()
            .and_then(|t| t.trim().parse::<usize>().ok())
            .filter(|&n| n > 0);
        if let Some(n) = share.filter(|&n| n != self.threads) {
            tch::set_num_threads(n as i32);
            eprintln!("now using {n} libtorch threads (another job finished)");
            self.threads = n;
        }
        self.threads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, log: &std::path::Path) -> Job {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        Job {
            name: script.to_string(),
            command,
            log: log.to_path_buf(),
        }
    }

    #[test]
    fn freed_cores_go_to_the_jobs_still_running() {
        let dir = std::env::temp_dir().join(format!("jobs-share-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let want = threads_per_job(1);
        // The long job waits for the short one to end, then for its share to be rewritten.
        let long = format!(
            "cat $TORCHKIT_THREADS_FILE; while [ ! -e {d}/short-done ]; do sleep 0.05; done; \
             for i in $(seq 100); do [ \"$(cat $TORCHKIT_THREADS_FILE)\" = {want} ] && echo now {want} && exit 0; sleep 0.05; done; exit 1",
            d = dir.display()
        );
        let short = format!("sleep 0.3; touch {}/short-done", dir.display());
        run_all(
            vec![
                sh(&long, &dir.join("long.log")),
                sh(&short, &dir.join("short.log")),
            ],
            2,
        )
        .unwrap();
        let log = std::fs::read_to_string(dir.join("long.log")).unwrap();
        assert_eq!(log, format!("{}now {want}\n", threads_per_job(2)));
        assert!(
            !dir.join("long.threads").exists(),
            "share files are removed"
        );
        // The child's side: a share written to the file is adopted on the next poll.
        let file = dir.join("share");
        std::fs::write(&file, "1").unwrap();
        let mut share = ThreadShare::following(Some(&file));
        share.checked -= Duration::from_secs(2);
        assert_eq!(share.poll(), 1);
        assert_eq!(tch::get_num_threads(), 1);
        assert_eq!(
            ThreadShare::following(None).poll(),
            tch::get_num_threads() as usize
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn runs_everything_and_reports_failures_with_their_log() {
        let dir = std::env::temp_dir().join(format!("jobs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let jobs = (0..3)
            .map(|i| {
                sh(
                    &format!(
                        "echo threads=$OMP_NUM_THREADS; echo {i} > {}/{i}",
                        dir.display()
                    ),
                    &dir.join(format!("{i}.log")),
                )
            })
            .collect();
        run_all(jobs, 2).unwrap();
        for i in 0..3 {
            assert!(dir.join(i.to_string()).exists());
            let log = std::fs::read_to_string(dir.join(format!("{i}.log"))).unwrap();
            assert_eq!(log.trim(), format!("threads={}", threads_per_job(2)));
        }
        let err = run_all(
            vec![
                sh("exit 3", &dir.join("bad.log")),
                sh("true", &dir.join("ok.log")),
            ],
            2,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("exit 3 failed") && err.contains("bad.log"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}

//! Independent trainings as child processes, a few at a time, each with its share of the
//! cores. Training steps are dominated by small ops that scale poorly over threads, so two
//! single-threaded runs side by side finish sooner than the same two runs one after the
//! other with two threads each.

use std::path::PathBuf;
use std::process::{Child, Command};

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

/// libtorch threads per child when `parallel` run at once on this machine.
pub fn threads_per_job(parallel: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / parallel.max(1)).max(1)
}

fn start(mut job: Job, threads: usize) -> Result<(String, PathBuf, Child)> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&job.log)
        .with_context(|| format!("opening {}", job.log.display()))?;
    eprintln!("== {}: started (log: {})", job.name, job.log.display());
    let child = job
        .command
        .env("OMP_NUM_THREADS", threads.to_string())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", job.name))?;
    Ok((job.name, job.log, child))
}

/// Runs every job, at most `parallel` at a time (in order), each child with
/// [`threads_per_job`] libtorch threads; returns when all have finished. A failed job is an
/// error naming its log, raised once the others have finished.
pub fn run_all(jobs: Vec<Job>, parallel: usize) -> Result<()> {
    let parallel = parallel.max(1);
    let threads = threads_per_job(parallel.min(jobs.len().max(1)));
    let mut queue = jobs.into_iter();
    let mut running: Vec<(String, PathBuf, Child)> = Vec::new();
    let mut failed = Vec::new();
    loop {
        while running.len() < parallel {
            match queue.next() {
                Some(job) => running.push(start(job, threads)?),
                None => break,
            }
        }
        if running.is_empty() {
            break;
        }
        // Wait for whichever finishes first.
        let done = loop {
            if let Some(i) = running
                .iter_mut()
                .position(|(_, _, c)| c.try_wait().ok().flatten().is_some())
            {
                break i;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
        let (name, log, mut child) = running.swap_remove(done);
        let status = child.wait()?;
        if status.success() {
            eprintln!("== {name}: finished");
        } else {
            failed.push(format!("{name} failed ({status}); see {}", log.display()));
        }
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("; "));
    }
    Ok(())
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

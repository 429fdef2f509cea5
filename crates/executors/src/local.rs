//! The local executor: the jobs as child processes, a few at a time, each with its share of
//! the cores. Training steps are dominated by small ops that scale poorly over threads, so two
//! single-threaded runs side by side finish sooner than the same two runs one after the
//! other with two threads each.
//!
//! When a job ends and none is waiting, the cores it frees go to the jobs still running: the
//! runner writes each child's new share to the file named by [`THREADS_FILE_ENV`], which a
//! training loop polls between steps.

use std::path::PathBuf;
use std::process::Child;

use anyhow::{bail, Context, Result};

use crate::{threads_per_job, Job, THREADS_FILE_ENV};

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

/// Runs every job here, at most `parallel` at a time (in order), each child with
/// [`threads_per_job`] libtorch threads; returns when all have finished.
pub fn run_all(jobs: Vec<Job>, parallel: usize) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

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

//! The Slurm executor: the jobs of [`crate::run_all`] submitted as one Slurm job array
//! instead of run here, for clusters (`cargo xtask reproduce --executor slurm`).
//!
//! Chosen once, from the environment the xtask gives the stage process ([`Slurm::from_env`]).
//! Each task runs one job's command in its working directory with its environment, appends
//! to its log as a local job does, and writes its exit code to `<log>.status` on the shared
//! filesystem the cluster must have. The waiting parent polls `squeue` and those files: a task
//! that failed, or vanished without a status (`scancel`, node loss, time limit), is submitted
//! again up to `retries` times and continues from its last epoch's resume point; a finished
//! training is never rerun (its own process reuses it). A signal to the parent cancels the
//! array (`scancel`: Slurm sends the tasks SIGTERM) and waits for it to leave the queue.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::Job;

/// `slurm` selects this executor.
pub const EXECUTOR_ENV: &str = "HW2_EXECUTOR";
/// Extra `sbatch` options, separated by U+001F (so that they may hold spaces).
pub const ARGS_ENV: &str = "HW2_SLURM_ARGS";
/// Resubmissions allowed per task.
pub const RETRIES_ENV: &str = "HW2_SLURM_RETRIES";
/// CPUs per task (each training's libtorch threads).
pub const CPUS_ENV: &str = "HW2_SLURM_CPUS";
/// Memory per task, MiB.
pub const MEM_ENV: &str = "HW2_SLURM_MEM_MIB";

/// Measured peaks: a Q3 training 300–480 MiB, a Q2 one 310–390 MB; four times the larger.
pub const DEFAULT_MEM_MIB: u64 = 2048;

/// How the trainings go to Slurm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slurm {
    /// Passed to `sbatch` as they are (`--partition=…`).
    pub extra_args: Vec<String>,
    /// Resubmissions per task.
    pub retries: usize,
    /// `--cpus-per-task`, and each task's libtorch threads.
    pub cpus_per_task: usize,
    /// `--mem`, MiB.
    pub mem_mib: u64,
}

impl Slurm {
    /// The executor the environment asks for: `Some` when [`EXECUTOR_ENV`] is `slurm`.
    pub fn from_env() -> Result<Option<Self>> {
        match std::env::var(EXECUTOR_ENV).as_deref() {
            Err(_) | Ok("") | Ok("local") => return Ok(None),
            Ok("slurm") => {}
            Ok(other) => bail!("{EXECUTOR_ENV}={other}: the executors are local and slurm"),
        }
        let number = |var: &str, default: u64| -> Result<u64> {
            match std::env::var(var) {
                Ok(v) => v
                    .parse()
                    .with_context(|| format!("{var}={v} is not a whole number")),
                Err(_) => Ok(default),
            }
        };
        Ok(Some(Self {
            extra_args: std::env::var(ARGS_ENV)
                .map(|v| {
                    v.split('\u{1f}')
                        .filter(|a| !a.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            retries: number(RETRIES_ENV, 2)? as usize,
            cpus_per_task: number(CPUS_ENV, 1)?.max(1) as usize,
            mem_mib: number(MEM_ENV, DEFAULT_MEM_MIB)?,
        }))
    }

    /// Runs every job as a task of a Slurm job array and waits for all; resubmits failed or
    /// vanished tasks up to `retries` times. A task still failing is an error naming its log.
    pub fn run_all(&self, jobs: &[Job]) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let supervision = supervise::Supervision::begin();
        for job in jobs.iter() {
            let _ = std::fs::remove_file(status_file(&job.log));
        }
        let mut attempts = vec![0usize; jobs.len()];
        let mut todo: Vec<usize> = (0..jobs.len()).collect();
        let mut failed = Vec::new();
        while !todo.is_empty() {
            let script = self.write_script(jobs, &todo)?;
            let gpu = todo
                .iter()
                .any(|&j| jobs[j].flag_value("--device").as_deref() == Some("cuda"));
            let id = self.submit(&script, todo.len(), gpu, &jobs[todo[0]].name)?;
            eprintln!(
                "== slurm job {id}: {} task(s): {}",
                todo.len(),
                todo.iter()
                    .map(|&j| jobs[j].name.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            let ends = wait(&supervision, &id, jobs, &todo)?;
            let _ = std::fs::remove_file(&script);
            let mut again = Vec::new();
            for (j, end) in todo.iter().copied().zip(ends) {
                let why = match end {
                    End::Exit(0) => {
                        eprintln!("== {}: finished (slurm job {id})", jobs[j].name);
                        continue;
                    }
                    End::Exit(rc) => format!("exited with {rc}"),
                    End::Vanished => {
                        "left the queue without finishing (cancelled, node lost or out of time)"
                            .to_string()
                    }
                };
                if attempts[j] < self.retries {
                    attempts[j] += 1;
                    eprintln!(
                        "== {}: {why}; submitting it again ({} of {} retries), to continue from its last epoch",
                        jobs[j].name, attempts[j], self.retries
                    );
                    again.push(j);
                } else {
                    failed.push(format!(
                        "{} {why} (slurm job {id}); see {}",
                        jobs[j].name,
                        jobs[j].log.display()
                    ));
                }
            }
            todo = again;
        }
        if !failed.is_empty() {
            bail!("{}", failed.join("; "));
        }
        Ok(())
    }

    /// Submits `job` as a one-task array and returns its job id at once, without waiting: for
    /// a job that outlives this process (`reproduce --no-wait` hands the whole run to one).
    /// Its exit code lands in `<log>.status` as every task's does; see [`in_queue`].
    pub fn submit_detached(&self, job: &Job) -> Result<String> {
        let _ = std::fs::remove_file(status_file(&job.log));
        let script = self.write_script(std::slice::from_ref(job), &[0])?;
        // sbatch keeps its own copy of the script.
        let id = self.submit(&script, 1, false, &job.name);
        let _ = std::fs::remove_file(&script);
        id
    }

    /// The array's script: task `k` runs job `todo[k]`.
    fn write_script(&self, jobs: &[Job], todo: &[usize]) -> Result<PathBuf> {
        let mut s = String::from(
            "#!/bin/bash\n# Written by torchkit::slurm: array task k runs the k-th job below.\nrc=99\ncase \"$SLURM_ARRAY_TASK_ID\" in\n",
        );
        for (k, &j) in todo.iter().enumerate() {
            let job = &jobs[j];
            let cmd = &job.command;
            let dir = match cmd.get_current_dir() {
                Some(d) => d.to_path_buf(),
                None => std::env::current_dir()?,
            };
            let mut env = vec![format!("OMP_NUM_THREADS={}", self.cpus_per_task)];
            for (k, v) in cmd.get_envs() {
                let k = k.to_string_lossy();
                if k == "OMP_NUM_THREADS" || k == crate::THREADS_FILE_ENV {
                    continue;
                }
                if let Some(v) = v {
                    env.push(format!("{k}={}", v.to_string_lossy()));
                }
            }
            let mut words: Vec<String> = env.iter().map(|e| quote(e)).collect();
            words.push(quote(&cmd.get_program().to_string_lossy()));
            words.extend(cmd.get_args().map(|a| quote(&a.to_string_lossy())));
            let status = status_file(&job.log);
            s.push_str(&format!(
                "{k}) cd {} && echo \"== slurm job $SLURM_JOB_ID task {k} on $(hostname)\" >> {log} && env {} >> {log} 2>&1; rc=$?\n   printf '%s\\n' \"$rc\" > {tmp} && mv {tmp} {status} ;;\n",
                quote(&dir.to_string_lossy()),
                words.join(" "),
                log = quote(&job.log.to_string_lossy()),
                tmp = quote(&format!("{}.tmp", status.display())),
                status = quote(&status.to_string_lossy()),
            ));
        }
        s.push_str("esac\nexit \"$rc\"\n");
        let first = &jobs[todo[0]].log;
        let path = first.with_file_name(format!(".slurm-{}-{}.sh", std::process::id(), todo.len()));
        artifacts::write_atomic(&path, s.as_bytes())?;
        Ok(path)
    }

    /// `sbatch`; returns the job id, or Slurm's refusal in one sentence.
    fn submit(&self, script: &Path, tasks: usize, gpu: bool, name: &str) -> Result<String> {
        let mut cmd = Command::new("sbatch");
        cmd.arg("--parsable")
            .arg(format!("--array=0-{}", tasks - 1))
            .arg(format!("--job-name=hw2-{}", short_name(name)))
            .arg(format!("--cpus-per-task={}", self.cpus_per_task))
            .arg(format!("--mem={}M", self.mem_mib))
            .arg("--output=/dev/null")
            .arg("--kill-on-invalid-dep=yes");
        if gpu {
            cmd.arg("--gres=gpu:1");
        }
        cmd.args(&self.extra_args).arg(script);
        let out = cmd
            .output()
            .context("running sbatch (is Slurm installed here, and SLURM_CONF set?)")?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            bail!(
                "Slurm refused the submission: {}",
                err.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let id = text.trim().split(';').next().unwrap_or("").to_string();
        anyhow::ensure!(
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
            "sbatch printed no job id: {text:?}"
        );
        Ok(id)
    }
}

/// How often the waiting parent asks `squeue`, and looks for status files.
const QUEUE_EVERY: Duration = Duration::from_secs(2);
const STATUS_EVERY: Duration = Duration::from_millis(200);

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Its command's exit code.
    Exit(i32),
    /// It left the queue without a status.
    Vanished,
}

/// Whether Slurm still lists job `id` (pending, running or ending).
pub fn in_queue(id: &str) -> Result<bool> {
    Ok(!queued(id)?.is_empty())
}

/// Where the task that logs to `log` writes its exit code.
pub fn status_file(log: &Path) -> PathBuf {
    log.with_extension("status")
}

/// A job name fit for Slurm's job name (letters, digits, dashes).
fn short_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect()
}

/// Single-quoted for bash.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The array's tasks still in the queue: task index → state (`PENDING`, `RUNNING`, …).
fn queued(id: &str) -> Result<BTreeMap<usize, String>> {
    let out = Command::new("squeue")
        .args(["-h", "-r", "-j", id, "-o", "%K %T"])
        .output()
        .context("running squeue")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        // A finished job is forgotten after a while: no longer "in the queue".
        if err.contains("Invalid job id") {
            return Ok(BTreeMap::new());
        }
        bail!("squeue failed: {}", err.trim());
    }
    Ok(text
        .lines()
        .filter_map(|l| {
            let (task, state) = l.trim().split_once(' ')?;
            Some((task.parse().ok()?, state.to_string()))
        })
        .collect())
}

/// Waits for every task of job `id` (task `k` is job `todo[k]`); shows the counts as they
/// change. A signal cancels the array and waits for it to leave the queue.
fn wait(
    supervision: &supervise::Supervision,
    id: &str,
    jobs: &[Job],
    todo: &[usize],
) -> Result<Vec<End>> {
    let mut ends: Vec<Option<End>> = vec![None; todo.len()];
    let mut gone_since: Vec<Option<Instant>> = vec![None; todo.len()];
    let mut shown = String::new();
    let mut failures = 0;
    let mut queue = BTreeMap::new();
    let mut asked: Option<Instant> = None;
    loop {
        if let Some(signal) = supervision.received() {
            let _ = Command::new("scancel").arg(id).status();
            let t = Instant::now();
            while queued(id).is_ok_and(|q| !q.is_empty()) && t.elapsed() < Duration::from_secs(120)
            {
                std::thread::sleep(Duration::from_millis(500));
            }
            eprintln!(
                "== slurm job {id}: cancelled ({})",
                supervise::signal_name(signal)
            );
            return Err(supervise::Interrupted { signal }.into());
        }
        // The queue is asked every couple of seconds (clusters frown on busier polling); a
        // task's end shows sooner, in its status file.
        if asked.is_none_or(|t| t.elapsed() >= QUEUE_EVERY) {
            match queued(id) {
                Ok(q) => {
                    failures = 0;
                    queue = q;
                    asked = Some(Instant::now());
                }
                Err(e) => {
                    failures += 1;
                    if failures > 30 {
                        return Err(e.context(format!("watching slurm job {id}")));
                    }
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            }
        }
        for (k, &j) in todo.iter().enumerate() {
            if ends[k].is_some() {
                continue;
            }
            if let Ok(text) = std::fs::read_to_string(status_file(&jobs[j].log)) {
                ends[k] = Some(End::Exit(text.trim().parse().unwrap_or(-1)));
            } else if queue.contains_key(&k) {
                gone_since[k] = None;
            } else {
                // Out of the queue without a status: give a shared filesystem a moment.
                let since = *gone_since[k].get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_secs(5) {
                    ends[k] = Some(End::Vanished);
                }
            }
        }
        let count = |state: &str| queue.values().filter(|s| s.as_str() == state).count();
        let done = ends.iter().filter(|e| **e == Some(End::Exit(0))).count();
        let now = format!(
            "{} pending, {} running, {done} done, {} failed",
            count("PENDING"),
            count("RUNNING"),
            ends.iter().flatten().count() - done
        );
        if now != shown {
            eprintln!("== slurm job {id}: {now}");
            shown = now;
        }
        if ends.iter().all(Option::is_some) {
            return Ok(ends.into_iter().flatten().collect());
        }
        std::thread::sleep(STATUS_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_any_text() {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("printf '%s' {}", quote("it's a $HOME `x` \"y\"")))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "it's a $HOME `x` \"y\""
        );
        assert_eq!(
            short_name("Q2 model 2.1, learning rate 0.1"),
            "Q2-model-2-1--learning-rate-0-1"
        );
    }
}

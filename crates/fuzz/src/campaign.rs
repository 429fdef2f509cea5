//! One campaign: a reader's seed file, `count` mutants of it, and the reader binary run over
//! them in child processes under an address-space cap.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::mutate::Mutator;
use crate::resume::FORCE_FAILED;
use crate::{seeds, Reader};

/// Mutants a child process reads before the next starts (a crash loses only the rest).
const BATCH: usize = 200;
/// What `read-untrusted` prints for a line break inside an error.
pub const LINE_BREAK: &str = "\u{23ce}";
/// The longest refusal that still reads as one sentence.
const MAX_MESSAGE: usize = 600;

/// What a campaign found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Mutants read.
    pub mutants: usize,
    /// Of those, read without error (the mutation left them valid).
    pub accepted: usize,
    /// Refused with an error.
    pub refused: usize,
    /// What broke the rules.
    pub failures: Vec<Failure>,
}

/// A mutant that broke a rule: crashed the reader, or was refused badly.
#[derive(Debug)]
pub struct Failure {
    /// The mutant (kept on disk for reproducing).
    pub file: PathBuf,
    /// The mutation that made it.
    pub mutation: String,
    /// What went wrong.
    pub what: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.file.display(),
            self.mutation,
            self.what
        )
    }
}

/// Limits of a campaign.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Address space a reader may take beyond the warmed-up process, in MiB.
    pub slack_mib: u64,
    /// And per byte of the largest file of its batch.
    pub per_byte: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            slack_mib: 256,
            per_byte: 32,
        }
    }
}

/// Writes the seed of `reader` into `work` and returns its path.
pub fn seed(reader: Reader, exe: &Path, work: &Path) -> Result<PathBuf> {
    let path = work.join(format!("seed.{}", reader.extension()));
    match reader {
        Reader::Pt => seeds::write_pt(&path)?,
        Reader::Safetensors => seeds::write_safetensors(&path)?,
        Reader::Npz => seeds::write_npz(&path)?,
        Reader::Tsv => seeds::write_tsv(&path)?,
        Reader::Resume => {
            let status = Command::new(exe)
                .args(["resume", "--make-resume"])
                .arg(&path)
                .env("OMP_NUM_THREADS", "1")
                .stderr(Stdio::null())
                .status()
                .context("running read-untrusted --make-resume")?;
            anyhow::ensure!(status.success(), "making the resume point failed");
        }
    }
    Ok(path)
}

/// Mutates `seed` `count` times (from `rng_seed`) into `work` and reads every mutant with
/// `exe` (the `read-untrusted` binary).
pub fn run(
    reader: Reader,
    seed: &Path,
    exe: &Path,
    work: &Path,
    count: usize,
    rng_seed: u64,
    limits: Limits,
) -> Result<Outcome> {
    let mut mutator = Mutator::new(rng_seed);
    let mut mutants = Vec::with_capacity(count);
    for i in 0..count {
        let path = work.join(format!("m{i}.{}", reader.extension()));
        let how = if reader == Reader::Resume {
            mutate_run(&mut mutator, seed, &path)?
        } else {
            let (bytes, how) = mutator.mutant(&std::fs::read(seed)?);
            std::fs::write(&path, bytes)?;
            how
        };
        mutants.push((path, how));
    }
    let mut outcome = Outcome::default();
    let mut at = 0;
    while at < mutants.len() {
        let batch = &mutants[at..(at + BATCH).min(mutants.len())];
        let (results, crash) = read_batch(reader, exe, batch, limits)?;
        for ((file, how), result) in batch.iter().zip(&results) {
            outcome.mutants += 1;
            match result {
                Ok(()) => outcome.accepted += 1,
                Err(message) => {
                    outcome.refused += 1;
                    if let Some(why) = bad_refusal(reader, file, message) {
                        outcome.failures.push(Failure {
                            file: file.clone(),
                            mutation: how.clone(),
                            what: why,
                        });
                    }
                }
            }
        }
        at += results.len();
        if let Some(what) = crash {
            let (file, how) = &mutants[at];
            outcome.mutants += 1;
            outcome.failures.push(Failure {
                file: file.clone(),
                mutation: how.clone(),
                what,
            });
            at += 1;
        }
    }
    // Mutants that passed the rules go; the failing ones stay for reproducing.
    for (file, _) in &mutants {
        if !outcome.failures.iter().any(|f| &f.file == file) {
            let _ = std::fs::remove_dir_all(file).or_else(|_| std::fs::remove_file(file));
        }
    }
    Ok(outcome)
}

/// Why a refusal breaks the rules (one sentence naming the file), if it does.
fn bad_refusal(reader: Reader, file: &Path, message: &str) -> Option<String> {
    let name = file.display().to_string();
    if message.contains(FORCE_FAILED) {
        return Some(format!("--force did not start afresh: {message}"));
    }
    if !message.contains(&name) {
        return Some(format!(
            "the error does not name the {}: {message}",
            if reader == Reader::Resume {
                "run's files"
            } else {
                "file"
            }
        ));
    }
    if message.contains(LINE_BREAK) {
        return Some(format!("the error spans several lines: {message}"));
    }
    if message.chars().count() > MAX_MESSAGE {
        return Some(format!(
            "the error is {} characters long: {}…",
            message.chars().count(),
            message.chars().take(200).collect::<String>()
        ));
    }
    None
}

/// Copies a run folder's files into a new folder `to`; returns their names, sorted.
pub fn copy_run(from: &Path, to: &Path) -> Result<Vec<String>> {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to)?;
    let mut names: Vec<String> = artifacts::files_in(from)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    names.sort();
    for name in &names {
        std::fs::copy(from.join(name), to.join(name))?;
    }
    Ok(names)
}

/// A copy of the seed run folder with one of its files mutated or deleted.
fn mutate_run(mutator: &mut Mutator, seed: &Path, dir: &Path) -> Result<String> {
    let names = copy_run(seed, dir)?;
    // The manifest half the time: it names everything else.
    let target = if mutator.pick(2) == 0 {
        "toy.resume.json".to_string()
    } else {
        names[mutator.pick(names.len())].clone()
    };
    if mutator.pick(12) == 0 {
        std::fs::remove_file(dir.join(&target))?;
        return Ok(format!("{target} deleted"));
    }
    let (bytes, how) = mutator.mutant(&std::fs::read(dir.join(&target))?);
    std::fs::write(dir.join(&target), bytes)?;
    Ok(format!("{target}: {how}"))
}

/// Reads a batch in one child: the results of the files it got through, and, if it died,
/// how (the next file is the one it died on).
#[allow(clippy::type_complexity)]
fn read_batch(
    reader: Reader,
    exe: &Path,
    batch: &[(PathBuf, String)],
    limits: Limits,
) -> Result<(Vec<std::result::Result<(), String>>, Option<String>)> {
    let mut child = Command::new(exe)
        .arg(reader.name())
        .args(batch.iter().map(|(p, _)| p))
        .arg("--slack-mib")
        .arg(limits.slack_mib.to_string())
        .arg("--per-byte")
        .arg(limits.per_byte.to_string())
        .env("OMP_NUM_THREADS", "1")
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let mut stderr = child.stderr.take().expect("piped");
    let err_thread = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        text
    });
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut stdout)?;
    let status = child.wait()?;
    let stderr = String::from_utf8_lossy(&err_thread.join().unwrap_or_default()).into_owned();
    let mut results = Vec::new();
    let mut lines = stdout.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(_file) = line.strip_prefix("start\t") else {
            bail!("read-untrusted printed {line:?} where a file should start");
        };
        match lines.next() {
            Some("ok") => results.push(Ok(())),
            Some(l) if l.starts_with("err\t") => results.push(Err(l[4..].to_string())),
            Some(other) => bail!("read-untrusted printed {other:?} after a start"),
            None => break,
        }
    }
    if status.success() && results.len() == batch.len() {
        return Ok((results, None));
    }
    let tail: String = {
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(4)..].join(" | ")
    };
    let how = {
        use std::os::unix::process::ExitStatusExt;
        match status.signal() {
            Some(libc::SIGABRT) => "aborted (SIGABRT)".to_string(),
            Some(libc::SIGSEGV) => "crashed (SIGSEGV: a stack overflow?)".to_string(),
            Some(libc::SIGKILL) => "killed (SIGKILL: out of memory?)".to_string(),
            Some(s) => format!("killed by signal {s}"),
            None if status.code() == Some(101) => "panicked".to_string(),
            None => format!("exited with {status}"),
        }
    };
    if results.len() >= batch.len() {
        bail!("read-untrusted {how} after reading every file: {tail}");
    }
    Ok((results, Some(format!("the reader {how}: {tail}"))))
}

//! Per-epoch CSV logs (rewritten atomically after every epoch) and progress bars.

use std::path::{Path, PathBuf};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// A CSV file with one row per epoch; after each [`EpochLog::push`] the whole file is
/// rewritten atomically, so an interrupted run leaves a complete log of the finished epochs.
#[derive(Debug)]
pub struct EpochLog<R> {
    path: PathBuf,
    rows: Vec<R>,
}

impl<R: Serialize> EpochLog<R> {
    /// A log that will be written to `path`.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            rows: Vec::new(),
        }
    }

    /// A log that continues `rows` (the epochs a resumed run already finished).
    pub fn resume(path: impl AsRef<Path>, rows: Vec<R>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            rows,
        }
    }

    /// Appends a row and rewrites the file.
    pub fn push(&mut self, row: R) -> Result<()> {
        self.rows.push(row);
        self.rewrite()
    }

    /// Writes the file from the rows held (a resumed run's log, made whole again).
    pub fn rewrite(&mut self) -> Result<()> {
        artifacts::write_csv(&self.path, &self.rows)
    }

    /// The rows so far.
    pub fn rows(&self) -> &[R] {
        &self.rows
    }
}

/// A progress bar over the batches of one epoch (hidden when stderr is not a terminal).
pub fn epoch_bar(batches: u64, epoch: usize, epochs: usize) -> ProgressBar {
    let bar = ProgressBar::new(batches);
    bar.set_style(
        ProgressStyle::with_template(
            "epoch {prefix} [{bar:30}] {pos}/{len} batches, {elapsed} < {eta} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar
}

/// Peak resident memory of this process so far, in MiB (Linux `VmHWM`; `None` elsewhere).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Row {
        epoch: usize,
        loss: f64,
    }

    #[test]
    fn log_is_complete_after_every_push() {
        let path = std::env::temp_dir().join(format!("runlog-{}.csv", std::process::id()));
        let mut log = EpochLog::new(&path);
        log.push(Row {
            epoch: 1,
            loss: 0.5,
        })
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "epoch,loss\n1,0.5\n"
        );
        log.push(Row {
            epoch: 2,
            loss: 0.25,
        })
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "epoch,loss\n1,0.5\n2,0.25\n"
        );
        assert_eq!(log.rows().len(), 2);
        std::fs::remove_file(path).unwrap();
    }
}

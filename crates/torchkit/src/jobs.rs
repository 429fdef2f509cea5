//! The training loop's end of the executors' core hand-over ([`ThreadShare`]); the jobs and
//! their executors themselves are the `executors` crate's, re-exported here.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use executors::{place, run_all, threads_per_job, Job, THREADS_FILE_ENV};

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

    #[test]
    fn a_share_written_to_the_file_is_adopted_on_the_next_poll() {
        let dir = std::env::temp_dir().join(format!("jobs-share-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
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
}

//! One writer at a time: an exclusive lock on a file (`flock`, released by the kernel when
//! the process dies, so a kill never leaves a stale lock), and the clean-up of temporary
//! files a killed writer left, which is safe only while holding the lock of what they
//! belong to.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// An exclusive lock, held until dropped. The lock file itself stays (empty): removing it
/// while another process waits to open it would let two processes hold "the" lock.
#[derive(Debug)]
pub struct Lock {
    _file: File,
    path: PathBuf,
}

impl Lock {
    /// Takes `path` (created, with its folder, if missing) for this process, or fails at
    /// once with a sentence naming `what` and the lock file.
    pub fn acquire(path: impl AsRef<Path>, what: &str) -> Result<Self> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)
                .with_context(|| format!("creating folder {}", dir.display()))?;
        }
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| {
                format!(
                    "opening the lock {} (is the folder writable?)",
                    path.display()
                )
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Self {
                _file: file,
                path: path.to_path_buf(),
            }),
            Err(fs::TryLockError::WouldBlock) => bail!(
                "another process is writing {what} (it holds {}); wait for it to finish, or write elsewhere",
                path.display()
            ),
            Err(fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Whether `name` is a temporary sibling made by this crate (`name.<pid>-<random>.tmp` or
/// `stem.<pid>-<random>.tmp.ext`; before the random part, `name.<pid>.tmp`) of a file whose
/// name or stem is `base`.
fn is_temp_of(name: &str, base: &str) -> bool {
    name.strip_prefix(base)
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.split_once(".tmp"))
        .is_some_and(|(tag, after)| {
            is_temp_tag(tag) && (after.is_empty() || after.starts_with('.'))
        })
}

/// `<pid>` or `<pid>-<random alphanumerics>`: what stands between the name and `.tmp`.
pub fn is_temp_tag(tag: &str) -> bool {
    let (pid, random) = tag.split_once('-').unwrap_or((tag, "x"));
    !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && !random.is_empty()
        && random.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The folder a path lives in (`.` for a bare name).
pub fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// The entries of `dir` as (name, path); none when it cannot be read.
pub fn files_in(dir: &Path) -> Vec<(String, PathBuf)> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| {
                let e = e.ok()?;
                Some((e.file_name().to_string_lossy().into_owned(), e.path()))
            })
            .collect()
        })
        .unwrap_or_default()
}

/// Removes the temporary siblings of the given final files that a killed writer left.
/// Call it only while holding the lock that covers those files.
pub fn remove_stale_temps(finals: &[&Path]) {
    for path in finals {
        let (Some(name), Some(stem)) = (path.file_name(), path.file_stem()) else {
            continue;
        };
        let (name, stem) = (name.to_string_lossy(), stem.to_string_lossy());
        for (entry, p) in files_in(folder_of(path)) {
            if is_temp_of(&entry, &name) || is_temp_of(&entry, &stem) {
                let _ = fs::remove_file(p);
            }
        }
    }
}

/// Removes every temporary file of this crate's making in `dir` (not below it). Call it only
/// while holding the lock that covers the whole folder.
pub fn remove_stale_temps_in(dir: &Path) -> usize {
    let mut removed = 0;
    for (entry, p) in files_in(dir) {
        let temp = entry
            .match_indices('.')
            .any(|(i, _)| i > 0 && is_temp_of(&entry, &entry[..i]));
        if temp && p.is_file() && fs::remove_file(&p).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let dir = std::env::temp_dir().join(format!("lock-{}", std::process::id()));
        let path = dir.join("run.lock");
        let held = Lock::acquire(&path, "the run").unwrap();
        let err = Lock::acquire(&path, "the run").unwrap_err().to_string();
        assert!(
            err.contains("another process is writing the run") && err.contains("run.lock"),
            "{err}"
        );
        drop(held);
        Lock::acquire(&path, "the run").unwrap();
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn stale_temporaries_are_recognised_and_nothing_else() {
        assert!(is_temp_of("m.safetensors.123.tmp", "m.safetensors"));
        assert!(is_temp_of("m.123.tmp.safetensors", "m"));
        assert!(is_temp_of("m.safetensors.123-aZ09xy.tmp", "m.safetensors"));
        assert!(is_temp_of("m.123-aZ09xy.tmp.safetensors", "m"));
        assert!(!is_temp_of("m.123-.tmp", "m") && !is_temp_of("m.-ab.tmp", "m"));
        assert!(!is_temp_of("m.run.json", "m"));
        assert!(!is_temp_of("m.state-1.safetensors", "m"));
        assert!(!is_temp_of("m.tmp", "m"));
        let dir = std::env::temp_dir().join(format!("temps-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        for name in [
            "summary.json.42.tmp",
            "fig.42.tmp.png",
            "summary.json",
            "notes.tmp",
        ] {
            fs::write(dir.join(name), b"").unwrap();
        }
        assert_eq!(remove_stale_temps_in(&dir), 2);
        let mut left: Vec<String> = files_in(&dir).into_iter().map(|e| e.0).collect();
        left.sort();
        assert_eq!(left, ["notes.tmp", "summary.json"]);
        fs::remove_dir_all(dir).unwrap();
    }
}

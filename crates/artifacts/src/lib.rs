//! Writing results so that nothing is ever half-written.
//!
//! Every file goes to a temporary sibling first and is renamed into place, so a reader (or a
//! resumed run) sees either the old complete file or the new complete file, never a torn one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

/// The temporary sibling used while writing `path` (`name.tmp` in the same folder, so the
/// final rename never crosses file systems).
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

/// Writes `bytes` to `path` atomically, creating parent folders; fsyncs before renaming.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("creating folder {}", dir.display()))?;
    }
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

/// Serialises `value` as pretty JSON (with a trailing newline) and writes it atomically.
pub fn write_json<T: Serialize + ?Sized>(path: impl AsRef<Path>, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("serialising JSON")?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Runs `write` against a temporary sibling of `path`, then renames it into place; for
/// writers that insist on a path of their own (image encoders, checkpoint savers).
/// The temporary keeps `path`'s extension, since some writers choose the format by it.
pub fn with_temp_file<F>(path: impl AsRef<Path>, write: F) -> Result<()>
where
    F: FnOnce(&Path) -> Result<()>,
{
    let path = path.as_ref();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("creating folder {}", dir.display()))?;
    }
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let mut name = format!("{stem}.{}.tmp", std::process::id());
    if let Some(ext) = path.extension() {
        name.push('.');
        name.push_str(&ext.to_string_lossy());
    }
    let tmp = path.with_file_name(name);
    let result = write(&tmp).and_then(|()| {
        fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("artifacts-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn json_round_trip_and_no_temp_left() {
        let d = dir("json");
        let path = d.join("nested/summary.json");
        write_json(&path, &serde_json::json!({"cer": 0.2041})).unwrap();
        let back: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back["cer"], 0.2041);
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1, "temporary file left behind");
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn failed_writer_keeps_the_old_file() {
        let d = dir("fail");
        let path = d.join("model.safetensors");
        write_atomic(&path, b"old").unwrap();
        let err = with_temp_file(&path, |tmp| {
            assert!(tmp.to_string_lossy().ends_with(".safetensors"));
            fs::write(tmp, b"partial")?;
            anyhow::bail!("disk full")
        })
        .unwrap_err();
        assert!(err.to_string().contains("disk full"));
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(
            fs::read_dir(&d).unwrap().count(),
            1,
            "temporary file left behind"
        );
        fs::remove_dir_all(d).unwrap();
    }
}

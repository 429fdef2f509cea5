//! Writing results so that nothing is ever half-written.
//!
//! Every file goes to a temporary sibling first and is renamed into place, so a reader (or a
//! resumed run) sees either the old complete file or the new complete file, never a torn one.
//! [`Lock`] keeps a second writer out, and [`remove_stale_temps`] clears what a killed one
//! left.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
mod lock;

pub use lock::{files_in, folder_of, is_temp_tag, remove_stale_temps, remove_stale_temps_in, Lock};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A new, empty temporary sibling of `path` (`name.<pid>-<random>.tmp` in the same folder,
/// so the final rename never crosses file systems and no two writers share one), with
/// `suffix` after `.tmp` (some writers choose the format by the extension). It is created
/// exclusively (`O_CREAT | O_EXCL`: a file or link planted under that name is never
/// followed) with the permissions `File::create` gives, and removed when dropped unless
/// persisted.
fn temp_sibling(path: &Path, base: &str, suffix: &str) -> Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    let dir = folder_of(path);
    fs::create_dir_all(dir).with_context(|| format!("creating folder {}", dir.display()))?;
    tempfile::Builder::new()
        .prefix(&format!("{base}.{}-", std::process::id()))
        .suffix(&format!(".tmp{suffix}"))
        .rand_bytes(6)
        .permissions(fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(|| format!("{} cannot be written", path.display()))
}

/// Refuses a path that names a folder: it could never be renamed into.
fn not_a_folder(path: &Path) -> Result<()> {
    if path.is_dir() {
        anyhow::bail!(
            "{} is a folder; give the path of a file to write",
            path.display()
        );
    }
    Ok(())
}

/// How every binary of the workspace ends: success, or the error's whole chain on one line
/// (`error: what failed: why`) on stderr and exit code 1; stopped by a signal while waiting
/// on children ([`supervise::Interrupted`]), 128 + the signal's number, as a shell reports a
/// process the signal ended. (Bad flags exit with 2, from the argument parser.)
pub fn exit_code(result: Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            match e.downcast_ref::<supervise::Interrupted>() {
                Some(stop) => std::process::ExitCode::from(stop.exit_code()),
                None => std::process::ExitCode::FAILURE,
            }
        }
    }
}

/// Checks, before any long work, that `path` can be written: it is no folder, and its
/// folder exists (created if need be) and takes a temporary sibling. The error names the
/// path.
pub fn check_writable(path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    not_a_folder(path)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    temp_sibling(path, &name, "")?
        .close()
        .with_context(|| format!("{} cannot be written", path.display()))
}

/// Writes `bytes` to `path` atomically, creating parent folders; fsyncs before renaming.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    not_a_folder(path)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut tmp = temp_sibling(path, &name, "")?;
    (|| {
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        rename_into(tmp, path)
    })()
    .with_context(|| format!("writing {}", path.display()))
}

/// Renames the temporary into place (removing it if that fails): with `rename(2)`, the
/// one call the kill-anywhere tests stop at (tempfile's `persist` uses `renameat2`).
fn rename_into(tmp: tempfile::NamedTempFile, path: &Path) -> std::io::Result<()> {
    let tmp = tmp.into_temp_path();
    fs::rename(&tmp, path)?;
    // Renamed: nothing is left at the temporary name to remove.
    let _ = tmp.keep();
    Ok(())
}

/// Serialises `value` as pretty JSON (with a trailing newline) and writes it atomically.
pub fn write_json<T: Serialize + ?Sized>(path: impl AsRef<Path>, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("serialising JSON")?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Serialises `rows` as CSV (a header from the first row's field names) and writes it
/// atomically. The csv crate writes floats in their shortest round-trip form, and parsing
/// them back (`csv::Reader::deserialize`) is correctly rounded.
pub fn write_csv<R: Serialize>(path: impl AsRef<Path>, rows: &[R]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).context("serialising a CSV row")?;
    }
    let bytes = w.into_inner().context("serialising CSV")?;
    write_atomic(path, &bytes)
}

/// Hex SHA-256 of a file (what identifies a dataset or a checkpoint).
pub fn sha256_file(path: impl AsRef<Path>) -> Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let path = path.as_ref();
    let mut f = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Hex SHA-256 of bytes.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(bytes))
}

/// Reads a JSON file written by [`write_json`]; errors name the file (and serde's line and
/// column). Every f64 comes back bit for bit: the workspace builds serde_json with
/// `float_roundtrip` (its default parser is off by one ulp for about a fifth of all f64s).
/// Non-finite floats have no JSON form (serde_json writes `null`), so they do not round-trip;
/// the training loops stop at the first non-finite loss instead of recording one.
pub fn read_json<T: DeserializeOwned>(path: impl AsRef<Path>) -> Result<T> {
    let path = path.as_ref();
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Runs `write` against a temporary sibling of `path`, then renames it into place; for
/// writers that insist on a path of their own (image encoders, checkpoint savers).
/// The temporary keeps `path`'s extension, since some writers choose the format by it.
pub fn with_temp_file<F>(path: impl AsRef<Path>, write: F) -> Result<()>
where
    F: FnOnce(&Path) -> Result<()>,
{
    let path = path.as_ref();
    not_a_folder(path)?;
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    // The writer reopens the file by its name: the name is unguessable and the file ours.
    let tmp = temp_sibling(path, &stem, &ext)?;
    write(tmp.path())?;
    rename_into(tmp, path).with_context(|| format!("renaming into {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
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

    /// Random f64 bit patterns (every exponent, subnormals included), values in [1, 2) like
    /// training losses, and the edge cases, all finite.
    pub(crate) fn awkward_f64s(n: usize) -> Vec<f64> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut v = vec![
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            f64::from_bits(1),
            -f64::from_bits(1),
            f64::from_bits(0x000f_ffff_ffff_ffff),
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            1.332_394_973_436_991_3,
            0.1 + 0.2,
            1e300,
            1e-300,
        ];
        while v.len() < n {
            let x = match v.len() % 3 {
                0 => f64::from_bits(rng.random::<u64>()),
                1 => rng.random_range(1.0..2.0),
                _ => f64::from_bits(rng.random_range(0..0x0010_0000_0000_0000u64)), // subnormal
            };
            if x.is_finite() {
                v.push(x);
            }
        }
        v
    }

    #[test]
    fn every_finite_f64_reads_back_bit_for_bit() {
        let d = dir("f64");
        let path = d.join("values.json");
        let values = awkward_f64s(100_000);
        #[derive(Serialize, serde::Deserialize)]
        struct Row {
            x: f64,
            pair: (f64, Option<f64>),
        }
        let rows: Vec<Row> = values
            .iter()
            .map(|&x| Row {
                x,
                pair: (-x, Some(x)),
            })
            .collect();
        write_json(&path, &rows).unwrap();
        let back: Vec<Row> = read_json(&path).unwrap();
        let wrong: Vec<(f64, f64)> = rows
            .iter()
            .zip(&back)
            .flat_map(|(a, b)| {
                [
                    (a.x, b.x),
                    (a.pair.0, b.pair.0),
                    (a.pair.1.unwrap(), b.pair.1.unwrap()),
                ]
            })
            .filter(|(x, y)| x.to_bits() != y.to_bits())
            .collect();
        assert!(
            wrong.is_empty(),
            "{} of {} values changed, e.g. {:?}",
            wrong.len(),
            3 * rows.len(),
            &wrong[..wrong.len().min(3)]
        );
        // Through an untyped value too (the report reads summaries that way).
        let value: serde_json::Value = read_json(&path).unwrap();
        for (a, v) in rows.iter().zip(value.as_array().unwrap()) {
            assert_eq!(v["x"].as_f64().unwrap().to_bits(), a.x.to_bits());
        }
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn every_finite_f64_reads_back_from_csv_and_toml() {
        #[derive(Serialize, serde::Deserialize)]
        struct Row {
            epoch: usize,
            loss: f64,
        }
        let values = awkward_f64s(100_000);
        let rows: Vec<Row> = values
            .iter()
            .enumerate()
            .map(|(epoch, &loss)| Row { epoch, loss })
            .collect();
        let d = dir("csv");
        let path = d.join("epochs.csv");
        write_csv(&path, &rows).unwrap();
        let back: Vec<Row> = csv::Reader::from_path(&path)
            .unwrap()
            .deserialize()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(back.len(), rows.len());
        for (a, b) in rows.iter().zip(&back) {
            assert_eq!(a.loss.to_bits(), b.loss.to_bits(), "CSV: {:e}", a.loss);
        }
        // TOML: the xtask reads `assets/reference.toml`.
        #[derive(Serialize, serde::Deserialize)]
        struct Table {
            values: Vec<f64>,
        }
        let text = toml::to_string(&Table {
            values: values.clone(),
        })
        .unwrap();
        let back: Table = toml::from_str(&text).unwrap();
        for (a, b) in values.iter().zip(&back.values) {
            assert_eq!(a.to_bits(), b.to_bits(), "TOML: {a:e}");
        }
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn read_json_names_the_file() {
        let d = dir("bad");
        let path = d.join("outcome.json");
        write_atomic(&path, b"{\"epoch\": 1,\n oops}").unwrap();
        let err = format!("{:#}", read_json::<serde_json::Value>(&path).unwrap_err());
        assert!(
            err.contains("outcome.json") && err.contains("line 2"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            read_json::<serde_json::Value>(d.join("none.json")).unwrap_err()
        );
        assert!(err.contains("none.json"), "{err}");
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_link_planted_at_a_guessable_temporary_name_is_never_followed() {
        let d = dir("link");
        fs::create_dir_all(&d).unwrap();
        let victim = d.join("victim");
        fs::write(&victim, b"precious").unwrap();
        let pid = std::process::id();
        for name in [
            format!("cnn.safetensors.{pid}.tmp"),
            format!("cnn.{pid}.tmp.safetensors"),
            format!("out.json.{pid}.tmp"),
        ] {
            std::os::unix::fs::symlink(&victim, d.join(name)).unwrap();
        }
        check_writable(d.join("cnn.safetensors")).unwrap();
        with_temp_file(d.join("cnn.safetensors"), |tmp| {
            fs::write(tmp, b"weights").map_err(Into::into)
        })
        .unwrap();
        write_atomic(d.join("out.json"), b"{}").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(fs::read(d.join("cnn.safetensors")).unwrap(), b"weights");
        // Final files get the permissions File::create gives (the umask's), not 0600.
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(d.join("out.json"))
            .unwrap()
            .permissions()
            .mode();
        let plain = {
            let p = d.join("plain");
            fs::File::create(&p).unwrap();
            fs::metadata(p).unwrap().permissions().mode()
        };
        assert_eq!(mode, plain);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_folder_is_refused_as_a_file_to_write() {
        let d = dir("folder");
        fs::create_dir_all(d.join("outcome.json")).unwrap();
        for err in [
            check_writable(d.join("outcome.json")).unwrap_err(),
            write_atomic(d.join("outcome.json"), b"{}").unwrap_err(),
        ] {
            let err = format!("{err:#}");
            assert!(err.contains("outcome.json is a folder"), "{err}");
        }
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

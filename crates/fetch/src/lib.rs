//! Downloading datasets so that a finished file is always a verified one.
//!
//! * Bytes go to `<dest>.part`; an interrupted transfer is resumed from there with an HTTP
//!   `Range` request (a server that ignores it makes us start over).
//! * The finished `.part` is checked against the expected size and SHA-256, then renamed
//!   onto `dest`. On a mismatch the `.part` is deleted and any old `dest` is left untouched.
//! * [`google_drive`] follows Drive's "can't scan this file for viruses" page, whose form
//!   carries the real download URL.

mod drive;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub use drive::{confirm_url, google_drive, DRIVE_URL};

/// What a downloaded file must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Size in bytes, when known.
    pub size: Option<u64>,
}

pub use artifacts::{sha256_bytes, sha256_file};

/// Whether `path` exists and matches `expected`.
pub fn is_valid(path: &Path, expected: &Expected) -> Result<bool> {
    if !path.exists() {
        return Ok(false);
    }
    if let Some(size) = expected.size {
        if fs::metadata(path)?.len() != size {
            return Ok(false);
        }
    }
    Ok(sha256_file(path)? == expected.sha256)
}

/// `dest` with `.part` appended.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

/// Outcome of [`download`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched {
    /// `dest` was already there and valid; nothing was transferred.
    AlreadyValid,
    /// Downloaded (bytes transferred this time, resumed from this offset).
    Downloaded {
        /// Bytes received in this call.
        bytes: u64,
        /// Offset the transfer resumed from (0 for a fresh one).
        resumed_from: u64,
    },
}

/// How many times an interrupted transfer is resumed before giving up.
pub const ATTEMPTS: usize = 4;

/// Downloads `url` to `dest` unless it is already valid; resumes interrupted transfers;
/// verifies size and SHA-256 before the rename. `log` receives one-line progress notes.
pub fn download(
    url: &str,
    dest: &Path,
    expected: &Expected,
    log: &mut dyn FnMut(&str),
) -> Result<Fetched> {
    if is_valid(dest, expected)? {
        return Ok(Fetched::AlreadyValid);
    }
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let part = part_path(dest);
    let kept = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    if expected.size.is_some_and(|s| kept > s) {
        // More bytes than the file has: not a prefix of it, and every Range request for
        // what follows would be refused (416). Start over.
        log(&format!(
            "{} holds {kept} bytes, more than the file's {}: starting over",
            part.display(),
            expected.size.unwrap_or(0)
        ));
        fs::remove_file(&part)?;
    }
    let start = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let mut received = 0;
    let mut last_err = None;
    for attempt in 1..=ATTEMPTS {
        match transfer(url, &part, expected.size) {
            Ok(n) => {
                received += n;
                last_err = None;
                break;
            }
            Err(e) => {
                let have = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
                log(&format!(
                    "transfer interrupted at {have} bytes (attempt {attempt}/{ATTEMPTS}): {e:#}"
                ));
                last_err = Some(e);
            }
        }
    }
    if let Some(e) = last_err {
        return Err(e.context(format!(
            "downloading {url} (partial data kept in {} for the next try)",
            part.display()
        )));
    }
    let size = fs::metadata(&part)?.len();
    let sha = sha256_file(&part)?;
    let size_ok = expected.size.is_none_or(|s| s == size);
    if !size_ok || sha != expected.sha256 {
        fs::remove_file(&part)?;
        bail!(
            "{url} gave {size} bytes with SHA-256 {sha}, expected {} bytes with {}: the download was discarded{}",
            expected.size.map_or("any number of".into(), |s| s.to_string()),
            expected.sha256,
            if dest.exists() { " and the existing file kept" } else { "" }
        );
    }
    fs::rename(&part, dest).with_context(|| format!("moving {} into place", part.display()))?;
    Ok(Fetched::Downloaded {
        bytes: received,
        resumed_from: start,
    })
}

/// One HTTP request, appending to `part` from its current length; returns bytes received.
fn transfer(url: &str, part: &Path, total: Option<u64>) -> Result<u64> {
    let have = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    if total == Some(have) && have > 0 {
        return Ok(0);
    }
    let mut req = ureq::get(url);
    if have > 0 {
        req = req.set("Range", &format!("bytes={have}-"));
    }
    let resp = match req.call() {
        // The kept bytes reach past the end of the file: they are not its prefix.
        Err(ureq::Error::Status(416, _)) => {
            fs::remove_file(part)?;
            bail!("the server has no bytes past the {have} kept (416): the partial file was dropped, the next try starts over");
        }
        other => other.map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?,
    };
    let append = have > 0 && resp.status() == 206;
    let mut file = if append {
        OpenOptions::new().append(true).open(part)?
    } else {
        File::create(part)?
    };
    let expected_len: Option<u64> = resp.header("Content-Length").and_then(|v| v.parse().ok());
    let mut reader = resp.into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = reader.read(&mut buf).context("reading the response body")?;
        if k == 0 {
            break;
        }
        file.write_all(&buf[..k])?;
        n += k as u64;
    }
    file.sync_all()?;
    if let Some(len) = expected_len {
        if n < len {
            bail!("connection closed after {n} of {len} bytes");
        }
    }
    Ok(n)
}

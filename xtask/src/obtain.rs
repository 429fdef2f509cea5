//! Getting the files of `datasets` onto this machine: a verified copy already in place, else
//! the workplace's `shared/` copy beside the repository, else a verified download.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use datasets::RemoteFile;
use fetch::Expected;

fn expected(f: &RemoteFile) -> Expected {
    Expected {
        sha256: f.sha256.to_string(),
        size: Some(f.size),
    }
}

/// Whether downloads are off: cargo's own switch, `CARGO_NET_OFFLINE=true`.
fn offline() -> bool {
    std::env::var("CARGO_NET_OFFLINE").is_ok_and(|v| v == "true" || v == "1")
}

/// Makes `dest` a verified copy of `f`: kept when already valid, else copied from `local`
/// (a copy of the workplace's, when it exists and is valid), else downloaded. A `dest`
/// with other content is an error (it is never overwritten). Errors are one sentence that
/// names the file and how to get it by hand.
pub fn obtain(f: &RemoteFile, dest: &Path, local: Option<&Path>) -> Result<()> {
    let want = expected(f);
    if dest.exists() {
        if fetch::is_valid(dest, &want)? {
            return Ok(());
        }
        bail!(
            "{} is not the expected {} (SHA-256 {}, {} bytes): move it away to let it be fetched again",
            dest.display(),
            f.name,
            f.sha256,
            f.size
        );
    }
    if let Some(src) = local.filter(|p| fetch::is_valid(p, &want).unwrap_or(false)) {
        eprintln!("Copying {} -> {}", src.display(), dest.display());
        let bytes = std::fs::read(src).with_context(|| format!("reading {}", src.display()))?;
        return artifacts::write_atomic(dest, &bytes);
    }
    let by_hand = format!(
        "download {} by hand to {} ({} bytes, SHA-256 {})",
        f.url,
        dest.display(),
        f.size,
        f.sha256
    );
    if offline() {
        bail!(
            "{} is missing and CARGO_NET_OFFLINE forbids downloading it: {by_hand}",
            dest.display()
        );
    }
    eprintln!("Downloading {} -> {}", f.url, dest.display());
    fetch::download(f.url, dest, &want, &mut |m| eprintln!("  {m}"))
        .map(|_| ())
        .with_context(|| format!("{} could not be downloaded: {by_hand}", f.name))
}

/// The workplace's copy of a file, beside the repository: `../shared/<sub>/<name>`.
fn shared(root: &Path, sub: &str, name: &str) -> PathBuf {
    root.join("..").join("shared").join(sub).join(name)
}

/// Makes sure `data_dir/p2g/` holds the three verified TSV files.
pub fn ensure_p2g(root: &Path, data_dir: &Path) -> Result<PathBuf> {
    let dir = data_dir.join("p2g");
    for f in &datasets::P2G {
        let local = shared(root, "data/p2g", f.name);
        obtain(f, &dir.join(f.name), Some(&local))
            .with_context(|| format!("getting the Q3 data file {}", f.name))?;
    }
    Ok(dir)
}

/// What the test suite reads besides the repository: the Q3 data (`data/p2g`) and the seed
/// report's trained weights (`data/checkpoints`). Returns the environment the tests find
/// them through (`datasets::local`).
pub fn ensure_fixtures(root: &Path) -> Result<Vec<(&'static str, PathBuf)>> {
    let data = root.join("data");
    let p2g = ensure_p2g(root, &data)?;
    let checkpoints = data.join("checkpoints");
    for f in &datasets::SEED_CHECKPOINTS {
        let local = shared(root, "checkpoints", f.name);
        obtain(f, &checkpoints.join(f.name), Some(&local))
            .with_context(|| format!("getting the seed report's weights {}", f.name))?;
    }
    let mut env = vec![
        (datasets::local::P2G_ENV, p2g),
        (datasets::local::CHECKPOINTS_ENV, checkpoints),
    ];
    if let Some(npz) = fashion6(root)? {
        env.push((datasets::local::FASHION6_ENV, npz));
    }
    Ok(env)
}

/// The Fashion-MNIST substitute (`data/fashion6.npz`) that the exactness tests of Q2 read,
/// built by the workplace's `shared/data/make-fashion6.sh` when that is at hand (Debian's
/// Fashion-MNIST package and PyPI's numpy and pillow; deterministic, checked by SHA-256).
/// Without the script there is nothing to build it with: the tests that need it say so.
fn fashion6(root: &Path) -> Result<Option<PathBuf>> {
    let dest = root.join("data").join("fashion6.npz");
    let sha = datasets::FASHION6_SHA256;
    if dest.is_file() && artifacts::sha256_file(&dest)? == sha {
        return Ok(Some(dest));
    }
    let script = root.join("../shared/data/make-fashion6.sh");
    if !script.is_file() {
        eprintln!(
            "note: {} is not there to build {}; the Q2 exactness tests will say so",
            script.display(),
            dest.display()
        );
        return Ok(None);
    }
    eprintln!("Building {} with {} ...", dest.display(), script.display());
    let ok = std::process::Command::new("bash")
        .arg(&script)
        .arg(&dest)
        .status()
        .with_context(|| format!("running {}", script.display()))?
        .success();
    anyhow::ensure!(
        ok && artifacts::sha256_file(&dest)? == sha,
        "{} did not build {} with SHA-256 {sha}: run it by hand to see why",
        script.display(),
        dest.display()
    );
    Ok(Some(dest))
}

/// The npz for Q2: `npz` when given (any file of the same layout), else
/// `data_dir/intel_landscapes.v2.npz`, downloaded from Google Drive when missing.
pub fn ensure_intel(data_dir: &Path, npz: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = npz {
        anyhow::ensure!(path.is_file(), "--npz {}: no such file", path.display());
        return Ok(path.to_path_buf());
    }
    let intel = &datasets::INTEL;
    let dest = data_dir.join(intel.name);
    let want = expected(intel);
    let by_hand = format!(
        "download https://drive.google.com/uc?export=download&id={} by hand to {} ({} bytes, SHA-256 {}), or pass --npz FILE",
        intel.url,
        dest.display(),
        intel.size,
        intel.sha256
    );
    if dest.exists() {
        if fetch::is_valid(&dest, &want)? {
            return Ok(dest);
        }
        bail!("{} is not the homework's file: {by_hand}", dest.display());
    }
    if offline() {
        bail!(
            "{} is missing and CARGO_NET_OFFLINE forbids downloading it: {by_hand}",
            dest.display()
        );
    }
    eprintln!("Fetching {} from Google Drive (117 MB) ...", intel.name);
    fetch::google_drive(fetch::DRIVE_URL, intel.url, &dest, &want, &mut |m| {
        eprintln!("  {m}")
    })
    .with_context(|| format!("the Intel data could not be downloaded: {by_hand}"))?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_copy_is_verified_then_used_and_a_wrong_file_is_never_overwritten() {
        let dir = std::env::temp_dir().join(format!("xtask-obtain-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let body = b"phoneme\tgrapheme\n";
        let sha = fetch::sha256_bytes(body);
        let f = RemoteFile {
            name: "x.tsv",
            url: "http://127.0.0.1:9/x.tsv",
            sha256: Box::leak(sha.into_boxed_str()),
            size: body.len() as u64,
        };
        let local = dir.join("shared.tsv");
        std::fs::write(&local, body).unwrap();
        let dest = dir.join("data/x.tsv");
        obtain(&f, &dest, Some(&local)).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), body);
        obtain(&f, &dest, None).unwrap(); // already valid: nothing to do

        std::fs::write(&dest, b"other").unwrap();
        let err = format!("{:#}", obtain(&f, &dest, Some(&local)).unwrap_err());
        assert!(err.contains("move it away"), "{err}");
        assert_eq!(std::fs::read(&dest).unwrap(), b"other");

        // No valid local copy and no server: one sentence saying how to get it by hand.
        std::fs::remove_file(&dest).unwrap();
        std::fs::write(&local, b"corrupt").unwrap();
        let err = format!("{:#}", obtain(&f, &dest, Some(&local)).unwrap_err());
        assert!(err.contains("by hand to") && err.contains("x.tsv"), "{err}");
        assert!(!dest.exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}

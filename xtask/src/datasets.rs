//! The homework's data files: where they come from and what they must hash to.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fetch::Expected;

/// A file of a dataset, with its public URL and checksum.
pub struct RemoteFile {
    /// File name inside the dataset folder.
    pub name: &'static str,
    /// Where to download it.
    pub url: &'static str,
    /// Lower-case hex SHA-256.
    pub sha256: &'static str,
    /// Size in bytes.
    pub size: u64,
}

const P2G_BASE: &str = "https://raw.githubusercontent.com/Miguel-Miranda019/AP-2-2024-2025/100c03107e33d688cf1368ff34b48f6f73106c88/hw2-q3/data";

/// Q3: the phoneme-to-grapheme TSV files (public copies of the course data).
pub const P2G: [RemoteFile; 3] = [
    RemoteFile {
        name: "train.tsv",
        url: "train.tsv",
        sha256: "c8bae375a8abe7274a6823444c37ce64e78b3520bd652d82a20d40506a5bb1a2",
        size: 266_320,
    },
    RemoteFile {
        name: "valid.tsv",
        url: "valid.tsv",
        sha256: "3f69895ebb1ea3dc06de43bb81dd00bb1078817207a2d83f378544e5b57fe8c6",
        size: 26_320,
    },
    RemoteFile {
        name: "test.tsv",
        url: "test.tsv",
        sha256: "d62cc3dbfc876cec843ee32f6d2b6ec5da1fde7b84e7a512706245e85c168fae",
        size: 26_566,
    },
];

/// Makes sure `data_dir/p2g/` holds the three verified TSV files, downloading what is
/// missing. A file present with the wrong content is an error (it is never overwritten).
pub fn ensure_p2g(data_dir: &Path) -> Result<PathBuf> {
    let dir = data_dir.join("p2g");
    for f in &P2G {
        let dest = dir.join(f.name);
        let expected = Expected {
            sha256: f.sha256.to_string(),
            size: Some(f.size),
        };
        if dest.exists() {
            if !fetch::is_valid(&dest, &expected)? {
                anyhow::bail!(
                    "{} is not the homework's {} (expected SHA-256 {}, {} bytes): move it away to let it be downloaded again",
                    dest.display(), f.name, f.sha256, f.size
                );
            }
            continue;
        }
        let url = format!("{P2G_BASE}/{}", f.url);
        eprintln!("Downloading {url} -> {}", dest.display());
        fetch::download(&url, &dest, &expected, &mut |m| eprintln!("  {m}")).with_context(
            || {
                format!(
                    "fetching the Q3 data file {}; or copy it by hand to {}",
                    f.name,
                    dest.display()
                )
            },
        )?;
    }
    Ok(dir)
}

/// Q2: the Intel landscapes npz on Google Drive.
pub const INTEL: RemoteFile = RemoteFile {
    name: "intel_landscapes.v2.npz",
    url: "1Ds7hPKMuorR7Ad38ww0_DYIwM9Km_cgc",
    sha256: "44f2b728076124139b99d5de4b55de80d94a886059bedd0f993eecc0f380778c",
    size: 117_876_826,
};

/// The npz for Q2: `npz` when given (any file of the same layout), else
/// `data_dir/intel_landscapes.v2.npz`, downloaded from Google Drive when missing.
pub fn ensure_intel(data_dir: &Path, npz: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = npz {
        anyhow::ensure!(path.exists(), "--npz {}: no such file", path.display());
        return Ok(path.to_path_buf());
    }
    let dest = data_dir.join(INTEL.name);
    let expected = Expected {
        sha256: INTEL.sha256.to_string(),
        size: Some(INTEL.size),
    };
    let by_hand = format!(
        "download https://drive.google.com/uc?export=download&id={} by hand to {} ({} bytes, SHA-256 {}), or pass --npz FILE",
        INTEL.url,
        dest.display(),
        INTEL.size,
        INTEL.sha256
    );
    if dest.exists() && !fetch::is_valid(&dest, &expected)? {
        anyhow::bail!("{} is not the homework's file: {by_hand}", dest.display());
    }
    eprintln!("Fetching {} from Google Drive (117 MB) ...", INTEL.name);
    fetch::google_drive(fetch::DRIVE_URL, INTEL.url, &dest, &expected, &mut |m| {
        eprintln!("  {m}")
    })
    .with_context(|| format!("the Intel data could not be downloaded: {by_hand}"))?;
    Ok(dest)
}

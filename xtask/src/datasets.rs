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

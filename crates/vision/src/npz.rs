//! NumPy `.npz` archives written by `np.savez`: the zip archive is read by the `zip` crate,
//! each `.npy` header by [`crate::npy`]; this module adds the dtypes the homework files use
//! (little-endian `u1`, `i8`, `f4`, `f8` in C order) and errors that name the file, the array
//! and what is wrong.
//!
//! Each array's data is read straight into its own buffer (no element-by-element decoding,
//! no second copy), and its CRC-32 is checked on the way.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use zip::result::ZipError;

use crate::npy::Header;

/// Element type of an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// `|u1`.
    U8,
    /// `<i8`.
    I64,
    /// `<f4`.
    F32,
    /// `<f8`.
    F64,
}

impl Dtype {
    fn parse(descr: &str) -> Option<Self> {
        match descr {
            "|u1" | "<u1" => Some(Dtype::U8),
            "<i8" => Some(Dtype::I64),
            "<f4" => Some(Dtype::F32),
            "<f8" => Some(Dtype::F64),
            _ => None,
        }
    }

    /// NumPy's name for it.
    fn descr(self) -> &'static str {
        match self {
            Dtype::U8 => "|u1",
            Dtype::I64 => "<i8",
            Dtype::F32 => "<f4",
            Dtype::F64 => "<f8",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::U8 => 1,
            Dtype::F32 => 4,
            Dtype::I64 | Dtype::F64 => 8,
        }
    }
}

/// One array: raw little-endian bytes, its dtype and shape.
#[derive(Debug, Clone)]
pub struct Array {
    /// Element type.
    pub dtype: Dtype,
    /// Shape (C order).
    pub shape: Vec<usize>,
    /// `shape.product() * dtype.size()` bytes.
    pub data: Vec<u8>,
}

/// An open archive.
pub struct Npz {
    path: PathBuf,
    /// The file's size: no array can hold more (the archive stores, never compresses).
    len: u64,
    archive: zip::ZipArchive<BufReader<File>>,
}

impl Npz {
    /// Opens an archive and reads its central directory.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if path.is_dir() {
            bail!("{} is a folder, not an npz file", path.display());
        }
        let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let len = file.metadata()?.len();
        let archive = zip::ZipArchive::new(BufReader::new(file))
            .map_err(|e| anyhow!("{}: not a zip/npz file, or truncated ({e})", path.display()))?;
        Ok(Self { path, len, archive })
    }

    /// Names of the arrays in the archive.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .archive
            .file_names()
            .map(|n| n.trim_end_matches(".npy"))
            .collect();
        v.sort();
        v
    }

    /// Reads one array; errors name the key and what is wrong.
    pub fn read(&mut self, key: &str) -> Result<Array> {
        let where_ = format!("{}: array '{key}'", self.path.display());
        let names = self.names().join(", ");
        let mut entry = match self.archive.by_name(&format!("{key}.npy")) {
            Ok(entry) => entry,
            Err(ZipError::FileNotFound) => bail!(
                "{}: no array '{key}' (it has: {names})",
                self.path.display()
            ),
            Err(ZipError::UnsupportedArchive(what)) => {
                bail!("{where_}: {what}; save with np.savez, not np.savez_compressed")
            }
            Err(e) => bail!("{where_}: {e}"),
        };
        let size = entry.size();
        let (npy, header_len) =
            Header::read(&mut entry).map_err(|e| anyhow!("{where_}: not a .npy array ({e:#})"))?;
        let descr = npy.descr.clone();
        let dtype = Dtype::parse(&descr).ok_or_else(|| {
            anyhow!(
                "{where_}: dtype {:?} not supported (need uint8, int64, float32 or float64)",
                descr.chars().take(40).collect::<String>()
            )
        })?;
        if npy.fortran_order && npy.shape.len() > 1 {
            bail!("{where_}: Fortran-ordered arrays are not supported");
        }
        let shape: Vec<usize> = npy.shape.iter().map(|&d| d as usize).collect();
        // Checked: a crafted shape's product overflows, and only the file bounds what is real.
        let bytes = shape
            .iter()
            .try_fold(dtype.size(), |b, &d| b.checked_mul(d))
            .ok_or_else(|| {
                anyhow!("{where_}: shape {shape:?} of {descr} multiplies past 2^64 bytes")
            })?;
        let held = size.saturating_sub(header_len as u64);
        if bytes as u64 != held {
            bail!("{where_}: header promises {bytes} bytes of data but the entry holds {held}");
        }
        if held > self.len {
            bail!(
                "{where_}: the entry claims {held} bytes of data, more than the file's {}",
                self.len
            );
        }
        let mut data = vec![0u8; bytes];
        entry
            .read_exact(&mut data)
            .with_context(|| format!("{where_}: truncated data ({bytes} bytes expected)"))?;
        // The zip reader checks the entry's CRC-32 when it reaches the end.
        let mut end = [0u8; 1];
        entry
            .read(&mut end)
            .with_context(|| format!("{where_}: corrupt data"))?;
        Ok(Array { dtype, shape, data })
    }
}

/// Writes an uncompressed `.npz`, as `np.savez` does (for tests and generated data).
pub fn write_npz(path: &Path, arrays: &[(&str, &Array)]) -> Result<()> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    // A fixed time stamp: the same arrays give the same bytes (and SHA-256), so that a
    // generated set written again is the same data to the runs that hash it.
    let options = zip::write::FileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    for (name, a) in arrays {
        zip.start_file(format!("{name}.npy"), options)?;
        let header = Header {
            descr: a.dtype.descr().to_string(),
            fortran_order: false,
            shape: a.shape.iter().map(|&d| d as u64).collect(),
        };
        zip.write_all(&header.to_bytes())?;
        zip.write_all(&a.data)?;
    }
    let bytes = zip.finish()?.into_inner();
    artifacts::write_atomic(path, &bytes)
}

//! NumPy `.npz` archives written by `np.savez` (a zip of `.npy` files, stored uncompressed).
//!
//! Only what the homework files need: stored (not deflated) entries, `.npy` format versions
//! 1–3, little-endian `u1`, `i8`, `f4`, `f8` arrays in C order. Each array is read straight
//! from the file into its own buffer, so no more than one extra copy of the data is held.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

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

/// An open archive: the entries' names and where their data start.
pub struct Npz {
    path: PathBuf,
    file: File,
    entries: HashMap<String, (u64, u64)>, // name (without .npy) -> (data offset, size)
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"))
}

impl Npz {
    /// Opens an archive and reads its central directory.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if path.is_dir() {
            bail!("{} is a folder, not an npz file", path.display());
        }
        let mut file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let len = file.metadata()?.len();
        let tail_len = len.min(65_557);
        let mut tail = vec![0u8; tail_len as usize];
        file.seek(SeekFrom::Start(len - tail_len))
            .and_then(|_| file.read_exact(&mut tail))
            .with_context(|| format!("reading {}", path.display()))?;
        let eocd = (0..tail.len().saturating_sub(21))
            .rev()
            .find(|&i| tail[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
            .ok_or_else(|| {
                anyhow!(
                    "{}: not a zip/npz file, or truncated (no end-of-archive record)",
                    path.display()
                )
            })?;
        let count = u16_at(&tail, eocd + 10) as usize;
        let cd_size = u32_at(&tail, eocd + 12) as u64;
        let cd_offset = u32_at(&tail, eocd + 16) as u64;
        if cd_offset + cd_size > len {
            bail!(
                "{}: truncated (central directory past the end of the file)",
                path.display()
            );
        }
        file.seek(SeekFrom::Start(cd_offset))?;
        let mut cd = vec![0u8; cd_size as usize];
        file.read_exact(&mut cd)?;
        let mut entries = HashMap::new();
        let mut i = 0;
        for _ in 0..count {
            if cd.len() < i + 46 || cd[i..i + 4] != [0x50, 0x4b, 0x01, 0x02] {
                bail!("{}: corrupt central directory", path.display());
            }
            let method = u16_at(&cd, i + 10);
            let mut size = u32_at(&cd, i + 20) as u64;
            let name_len = u16_at(&cd, i + 28) as usize;
            let extra_len = u16_at(&cd, i + 30) as usize;
            let comment_len = u16_at(&cd, i + 32) as usize;
            let mut local = u32_at(&cd, i + 42) as u64;
            let name = String::from_utf8_lossy(&cd[i + 46..i + 46 + name_len]).to_string();
            // ZIP64: sizes/offsets of 0xFFFFFFFF live in the extra field.
            let extra = &cd[i + 46 + name_len..i + 46 + name_len + extra_len];
            let mut j = 0;
            while j + 4 <= extra.len() {
                let (id, n) = (u16_at(extra, j), u16_at(extra, j + 2) as usize);
                if id == 1 {
                    let mut k = j + 4;
                    let mut next = || {
                        let v = u64::from_le_bytes(extra[k..k + 8].try_into().expect("8 bytes"));
                        k += 8;
                        v
                    };
                    if u32_at(&cd, i + 24) == u32::MAX {
                        let _uncompressed = next();
                    }
                    if size == u32::MAX as u64 {
                        size = next();
                    }
                    if local == u32::MAX as u64 {
                        local = next();
                    }
                }
                j += 4 + n;
            }
            if method != 0 {
                bail!("{}: entry {name} is compressed (method {method}); save with np.savez, not np.savez_compressed", path.display());
            }
            // Local header: fixed 30 bytes + its own name and extra lengths.
            let mut lh = [0u8; 30];
            file.seek(SeekFrom::Start(local))?;
            file.read_exact(&mut lh)
                .with_context(|| format!("{}: truncated before entry {name}", path.display()))?;
            let data = local + 30 + u16_at(&lh, 26) as u64 + u16_at(&lh, 28) as u64;
            entries.insert(name.trim_end_matches(".npy").to_string(), (data, size));
            i += 46 + name_len + extra_len + comment_len;
        }
        Ok(Self {
            path,
            file,
            entries,
        })
    }

    /// Names of the arrays in the archive.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.entries.keys().map(String::as_str).collect();
        v.sort();
        v
    }

    /// Reads one array; errors name the key and what is wrong.
    pub fn read(&mut self, key: &str) -> Result<Array> {
        let &(offset, size) = self.entries.get(key).ok_or_else(|| {
            anyhow!(
                "{}: no array '{key}' (it has: {})",
                self.path.display(),
                self.names().join(", ")
            )
        })?;
        let where_ = format!("{}: array '{key}'", self.path.display());
        self.file.seek(SeekFrom::Start(offset))?;
        let mut head = [0u8; 12];
        self.file
            .read_exact(&mut head)
            .with_context(|| format!("{where_}: truncated"))?;
        if &head[..6] != b"\x93NUMPY" {
            bail!("{where_}: not a .npy array");
        }
        let (header_len, prefix) = match head[6] {
            1 => (u16_at(&head, 8) as usize, 10),
            2 | 3 => (u32_at(&head, 8) as usize, 12),
            v => bail!("{where_}: unsupported .npy version {v}"),
        };
        self.file.seek(SeekFrom::Start(offset + prefix as u64))?;
        let mut header = vec![0u8; header_len];
        self.file
            .read_exact(&mut header)
            .with_context(|| format!("{where_}: truncated header"))?;
        let header = String::from_utf8_lossy(&header).to_string();
        let field = |name: &str| -> Option<String> {
            let start = header.find(&format!("'{name}':"))? + name.len() + 3;
            Some(header[start..].trim_start().to_string())
        };
        let descr = field("descr")
            .and_then(|s| s.split('\'').nth(1).map(String::from))
            .unwrap_or_default();
        let dtype = Dtype::parse(&descr).ok_or_else(|| {
            anyhow!(
                "{where_}: dtype {descr:?} not supported (need uint8, int64, float32 or float64)"
            )
        })?;
        if field("fortran_order").is_some_and(|s| s.starts_with("True")) {
            bail!("{where_}: Fortran-ordered arrays are not supported");
        }
        let shape_text =
            field("shape").ok_or_else(|| anyhow!("{where_}: header without a shape"))?;
        let inner = &shape_text[1..shape_text
            .find(')')
            .ok_or_else(|| anyhow!("{where_}: bad shape"))?];
        let shape: Vec<usize> = inner
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse())
            .collect::<Result<_, _>>()
            .map_err(|_| anyhow!("{where_}: bad shape {inner:?}"))?;
        let bytes = shape.iter().product::<usize>() * dtype.size();
        if (prefix + header_len + bytes) as u64 > size {
            bail!(
                "{where_}: header promises {bytes} bytes of data but the entry holds {}",
                size - (prefix + header_len) as u64
            );
        }
        let mut data = vec![0u8; bytes];
        self.file
            .read_exact(&mut data)
            .with_context(|| format!("{where_}: truncated data ({bytes} bytes expected)"))?;
        Ok(Array { dtype, shape, data })
    }
}

/// Writes a minimal uncompressed `.npz` (for tests and fixtures).
pub fn write_npz(path: &Path, arrays: &[(&str, &Array)]) -> Result<()> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, a) in arrays {
        let descr = match a.dtype {
            Dtype::U8 => "|u1",
            Dtype::I64 => "<i8",
            Dtype::F32 => "<f4",
            Dtype::F64 => "<f8",
        };
        let shape = match a.shape.len() {
            1 => format!("({},)", a.shape[0]),
            _ => format!(
                "({})",
                a.shape
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut npy = b"\x93NUMPY\x01\x00".to_vec();
        npy.extend((header.len() as u16).to_le_bytes());
        npy.extend(header.as_bytes());
        npy.extend(&a.data);
        let fname = format!("{name}.npy");
        let offset = out.len() as u32;
        let le32 = |v: u32| v.to_le_bytes();
        let mut local = vec![0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        local.extend(le32(0)); // crc (not checked by our reader)
        local.extend(le32(npy.len() as u32));
        local.extend(le32(npy.len() as u32));
        local.extend((fname.len() as u16).to_le_bytes());
        local.extend(0u16.to_le_bytes());
        out.extend(local);
        out.extend(fname.as_bytes());
        out.extend(&npy);
        let mut c = vec![0x50, 0x4b, 0x01, 0x02, 20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        c.extend(le32(0));
        c.extend(le32(npy.len() as u32));
        c.extend(le32(npy.len() as u32));
        c.extend((fname.len() as u16).to_le_bytes());
        c.extend([0u8; 12]);
        c.extend(le32(offset));
        c.extend(fname.as_bytes());
        central.extend(c);
    }
    let cd_offset = out.len() as u32;
    let cd_len = central.len() as u32;
    out.extend(central);
    out.extend([0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0]);
    out.extend((arrays.len() as u16).to_le_bytes());
    out.extend((arrays.len() as u16).to_le_bytes());
    out.extend(cd_len.to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    artifacts::write_atomic(path, &out)
}

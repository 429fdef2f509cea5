//! The homework's image splits: images (N, 3, 48, 48), labels (N).

use std::path::Path;

use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

use crate::npz::{Array, Dtype, Npz};

/// Number of classes (buildings, forest, glacier, mountain, sea, street).
pub const CLASSES: i64 = 6;
/// Side of an image.
pub const SIDE: i64 = 48;
const PIXELS: usize = 48 * 48 * 3;

/// How the stored pixels become the (3, 48, 48) model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// The skeleton's: flatten each image in C order, ÷256, view the 6,912 values as
    /// (3, 48, 48). With images stored (48, 48, 3) this scrambles channels, and every
    /// published number was produced that way.
    #[default]
    Skeleton,
    /// Read the stored (48, 48, 3) pixels as such and move channels first (÷256 as well).
    ChannelsLast,
}

/// One split: images (N, 3, 48, 48) and labels (N) int64.
///
/// Pixels stay as stored: a uint8 file keeps uint8 (a quarter of float32's memory: 87 MB
/// instead of 349 for the Intel training split) and becomes float32 ÷ 256 a batch at a time —
/// the same values the skeleton's `X / 256` gives, as every uint8 ÷ 256 is exact.
#[derive(Debug)]
pub struct Split {
    /// (N, 3, 48, 48), uint8 as stored or float32 already ÷ 256.
    pixels: Tensor,
    /// Class ids in 0..6.
    pub labels: Tensor,
}

impl Split {
    /// A split of `images` (N, 3, 48, 48), uint8 (scaled ÷ 256 when read) or float32
    /// (model inputs as they are), and `labels` (N) int64.
    pub fn new(images: Tensor, labels: Tensor) -> Split {
        debug_assert!(matches!(images.kind(), Kind::Uint8 | Kind::Float));
        Split {
            pixels: images,
            labels,
        }
    }

    /// The split on `device` (shares the tensors when they are there already).
    pub fn to_device(&self, device: Device) -> Split {
        Split {
            pixels: self.pixels.to_device(device),
            labels: self.labels.to_device(device),
        }
    }

    /// Model inputs (float32) of the examples `rows` (int64 indices).
    pub fn images_at(&self, rows: &Tensor) -> Tensor {
        inputs(self.pixels.index_select(0, rows))
    }

    /// Model inputs (float32) of examples `start..start + len`.
    pub fn images_in(&self, start: i64, len: i64) -> Tensor {
        inputs(self.pixels.narrow(0, start, len))
    }

    /// Every model input (float32), in one tensor.
    pub fn images(&self) -> Tensor {
        inputs(self.pixels.shallow_clone())
    }

    /// Where the split lives.
    pub fn device(&self) -> Device {
        self.pixels.device()
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.size()[0] as usize
    }

    /// True when the split has no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Model inputs (float32) from stored pixels: uint8 ÷ 256, float32 as it is.
fn inputs(pixels: Tensor) -> Tensor {
    if pixels.kind() == Kind::Uint8 {
        pixels.to_kind(Kind::Float) / 256.0
    } else {
        pixels
    }
}

/// The three splits.
#[derive(Debug)]
pub struct Dataset {
    /// 12,630 images on the Intel file.
    pub train: Split,
    /// 1,404.
    pub val: Split,
    /// 3,000.
    pub test: Split,
    /// SHA-256 of the file.
    pub sha256: String,
}

fn images(a: Array, key: &str, layout: Layout) -> Result<Tensor> {
    let ok_shape = (a.shape.len() == 4 && a.shape[1..] == [48, 48, 3])
        || (a.shape.len() == 2 && a.shape[1] == PIXELS);
    if !ok_shape {
        bail!(
            "array '{key}' has shape {:?}; expected (N, 48, 48, 3) or (N, 6912)",
            a.shape
        );
    }
    let n = a.shape[0] as i64;
    let kind = match a.dtype {
        Dtype::U8 => Kind::Uint8,
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::I64 => bail!("array '{key}' holds int64; expected uint8 or float pixels"),
    };
    if n == 0 {
        bail!("array '{key}' holds no images");
    }
    let raw = Tensor::from_data_size(&a.data, &[n, PIXELS as i64], kind);
    drop(a);
    if kind != Kind::Uint8 && !bool::try_from(raw.isfinite().all())? {
        bail!("array '{key}' holds NaN or infinite pixels");
    }
    // uint8 stays uint8 (÷ 256 per batch, see `Split`); other types become float32 ÷ 256
    // now, as the skeleton does (`X / 256`, not 255).
    let pixels = if kind == Kind::Uint8 {
        raw
    } else {
        raw.to_kind(Kind::Float) / 256.0
    };
    Ok(match layout {
        Layout::Skeleton => pixels.view([n, 3, SIDE, SIDE]),
        Layout::ChannelsLast => pixels
            .view([n, SIDE, SIDE, 3])
            .permute([0, 3, 1, 2])
            .contiguous(),
    })
}

fn labels(a: Array, key: &str, n: usize) -> Result<Tensor> {
    if a.dtype != Dtype::I64 && a.dtype != Dtype::U8 {
        bail!(
            "array '{key}' has dtype {:?}; expected int64 labels",
            a.dtype
        );
    }
    if a.shape != [n] {
        bail!(
            "array '{key}' has shape {:?}; expected ({n},) to match its images",
            a.shape
        );
    }
    let kind = if a.dtype == Dtype::I64 {
        Kind::Int64
    } else {
        Kind::Uint8
    };
    let t = Tensor::from_data_size(&a.data, &[n as i64], kind).to_kind(Kind::Int64);
    let (lo, hi) = (t.min().int64_value(&[]), t.max().int64_value(&[]));
    if lo < 0 || hi >= CLASSES {
        bail!(
            "array '{key}' has labels in {lo}..={hi}; expected 0..={}",
            CLASSES - 1
        );
    }
    Ok(t)
}

impl Dataset {
    /// Reads `train_*`, `val_*`, `test_*` images and labels from an npz file.
    pub fn load(path: impl AsRef<Path>, layout: Layout) -> Result<Self> {
        let path = path.as_ref();
        let mut npz = Npz::open(path)?;
        let mut dtype = None;
        let mut split = |name: &str| -> Result<Split> {
            let (ik, lk) = (format!("{name}_images"), format!("{name}_labels"));
            let img = npz.read(&ik)?;
            // The skeleton scales every split alike: mixed pixel types are a broken file.
            match dtype {
                None => dtype = Some(img.dtype),
                Some(d) if d != img.dtype => bail!(
                    "{}: array '{ik}' holds {:?} pixels but the train split holds {d:?}",
                    path.display(),
                    img.dtype
                ),
                Some(_) => {}
            }
            let n = img.shape[0];
            let images =
                images(img, &ik, layout).map_err(|e| e.context(path.display().to_string()))?;
            let labels = labels(npz.read(&lk)?, &lk, n)
                .map_err(|e| e.context(path.display().to_string()))?;
            Ok(Split::new(images, labels))
        };
        Ok(Self {
            train: split("train")?,
            val: split("val")?,
            test: split("test")?,
            sha256: artifacts::sha256_file(path)?,
        })
    }
}

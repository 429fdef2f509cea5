//! A generated image set in the Intel file's layout, for `--quick` runs: six classes of
//! 48×48 RGB patterns (horizontal, vertical and diagonal stripes, a disc, a square, a
//! checkerboard) with random colours, frequencies, positions and pixel noise. Small, free
//! of licences and learnable in a few epochs — never a stand-in for the homework's numbers.

use std::path::Path;

use anyhow::Result;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::dataset::{CLASSES, SIDE};
use crate::npz::{write_npz, Array, Dtype};

/// Examples per split (train, validation, test) of the quick-run set.
pub const QUICK_SIZES: [usize; 3] = [600, 150, 150];

/// Names of the classes, in label order.
pub const CLASS_NAMES: [&str; CLASSES as usize] = [
    "horizontal stripes",
    "vertical stripes",
    "diagonal stripes",
    "disc",
    "square",
    "checkerboard",
];

/// Whether pixel (x, y) is in the foreground of a `class` pattern with parameters `p`.
fn foreground(class: usize, x: f64, y: f64, p: &[f64; 4]) -> bool {
    let [period, phase, cx, cy] = *p;
    let stripe = |v: f64| ((v + phase) / period).floor() as i64 % 2 == 0;
    let r = 6.0 + period; // size of the disc / square, 9–18 px
    match class {
        0 => stripe(y),
        1 => stripe(x),
        2 => stripe((x + y) / std::f64::consts::SQRT_2),
        3 => (x - cx).hypot(y - cy) < r,
        4 => (x - cx).abs() < r * 0.8 && (y - cy).abs() < r * 0.8,
        _ => stripe(x) ^ stripe(y),
    }
}

fn image(class: usize, rng: &mut StdRng, pixels: &mut Vec<u8>) {
    let side = SIDE as usize;
    let p = [
        rng.random_range(3.0..12.0),
        rng.random_range(0.0..12.0),
        rng.random_range(16.0..32.0),
        rng.random_range(16.0..32.0),
    ];
    // A bright and a dark colour, either way round: the shape always stands out.
    let bright = [0; 3].map(|_| rng.random_range(150.0..255.0f64));
    let dark = [0; 3].map(|_| rng.random_range(0.0..100.0f64));
    let (fg, bg) = if rng.random_bool(0.5) {
        (bright, dark)
    } else {
        (dark, bright)
    };
    for y in 0..side {
        for x in 0..side {
            let c = if foreground(class, x as f64, y as f64, &p) {
                fg
            } else {
                bg
            };
            for v in c {
                let noisy = v + rng.random_range(-30.0..30.0);
                pixels.push(noisy.clamp(0.0, 255.0) as u8);
            }
        }
    }
}

/// Writes `path`: an npz with the Intel file's keys, dtypes and (N, 48, 48, 3) layout,
/// `sizes` examples per split, classes balanced and shuffled, drawn from `seed`.
pub fn write_quick_npz(path: &Path, seed: u64, sizes: [usize; 3]) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut arrays = Vec::new();
    for (split, n) in ["train", "val", "test"].into_iter().zip(sizes) {
        let mut labels: Vec<i64> = (0..n as i64).map(|i| i % CLASSES).collect();
        // Fisher–Yates, so batches are not sorted by class even before shuffling.
        for i in (1..labels.len()).rev() {
            labels.swap(i, rng.random_range(0..=i));
        }
        let mut pixels = Vec::with_capacity(n * (SIDE * SIDE * 3) as usize);
        for &l in &labels {
            image(l as usize, &mut rng, &mut pixels);
        }
        let side = SIDE as usize;
        arrays.push((
            format!("{split}_images"),
            Array {
                dtype: Dtype::U8,
                shape: vec![n, side, side, 3],
                data: pixels,
            },
        ));
        arrays.push((
            format!("{split}_labels"),
            Array {
                dtype: Dtype::I64,
                shape: vec![n],
                data: labels.iter().flat_map(|l| l.to_le_bytes()).collect(),
            },
        ));
    }
    let named: Vec<(&str, &Array)> = arrays.iter().map(|(k, a)| (k.as_str(), a)).collect();
    write_npz(path, &named)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{Dataset, Layout};

    #[test]
    fn quick_set_loads_balanced_and_is_reproducible() {
        let dir = std::env::temp_dir().join(format!("quick-npz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.npz"), dir.join("b.npz"));
        write_quick_npz(&a, 7, [60, 12, 12]).unwrap();
        write_quick_npz(&b, 7, [60, 12, 12]).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let d = Dataset::load(&a, Layout::Skeleton).unwrap();
        assert_eq!([d.train.len(), d.val.len(), d.test.len()], [60, 12, 12]);
        let counts = d.train.labels.bincount::<tch::Tensor>(None, CLASSES);
        assert_eq!(Vec::<i64>::try_from(counts).unwrap(), vec![10; 6]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

//! Retrieval experiments after Ramsauer et al. (2020), "Hopfield Networks is All You Need".
//!
//! * [`beta_sweep`]: one update from noisy and half-masked queries of random ±1 patterns,
//!   over β — large β retrieves the stored pattern in one step, small β returns metastable
//!   averages of many patterns (measured by the effective number of patterns averaged).
//! * [`capacity`]: success rate vs number of stored patterns, classic vs modern.
//! * [`image_retrieval`]: half-masked 32×32 images (generated, smooth and correlated).

use ndarray::{s, Array1, Array2, Axis};
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
pub use summaries::q1::{BetaPoint, CapacityPoint, Corruption, ImagePoint};

use crate::classic::ClassicHopfield;
use crate::energy::entropy;
use crate::Memory;

fn random_signs(rng: &mut StdRng, n: usize, d: usize) -> Array2<f64> {
    Array2::from_shape_simple_fn((n, d), || if rng.random_bool(0.5) { 1.0 } else { -1.0 })
}

fn corrupt(rng: &mut StdRng, x: &Array1<f64>, how: Corruption) -> Array1<f64> {
    let mut q = x.clone();
    let d = q.len();
    match how {
        Corruption::Flip(frac) => {
            for i in sample(rng, d, (frac * d as f64).round() as usize) {
                q[i] = -q[i];
            }
        }
        Corruption::MaskHalf => q.slice_mut(s![d / 2..]).fill(0.0),
    }
    q
}

fn signs(v: &Array1<f64>) -> Array1<f64> {
    v.mapv(|x| if x >= 0.0 { 1.0 } else { -1.0 })
}

/// Sweeps β over `betas` for N random ±1 patterns of dimension D, with `queries` queries per
/// point, for 25%-flipped and half-masked queries.
pub fn beta_sweep(seed: u64, n: usize, d: usize, queries: usize, betas: &[f64]) -> Vec<BetaPoint> {
    let mut rng = StdRng::seed_from_u64(seed);
    let x = random_signs(&mut rng, n, d);
    let mut out = Vec::new();
    for how in [Corruption::Flip(0.25), Corruption::MaskHalf] {
        let targets: Vec<usize> = (0..queries).map(|_| rng.random_range(0..n)).collect();
        let qs: Vec<Array1<f64>> = targets
            .iter()
            .map(|&t| corrupt(&mut rng, &x.row(t).to_owned(), how))
            .collect();
        for &beta in betas {
            let memory = Memory::new(x.clone(), beta);
            let (mut wrong_bits, mut exact, mut eff) = (0usize, 0usize, 0.0);
            for (&t, q) in targets.iter().zip(&qs) {
                let got = signs(&memory.update(q.view()));
                let diff = got.iter().zip(x.row(t)).filter(|(a, b)| a != b).count();
                wrong_bits += diff;
                exact += usize::from(diff == 0);
                eff += entropy(memory.probabilities(q.view()).view()).exp();
            }
            out.push(BetaPoint {
                beta,
                corruption: how,
                bit_error: wrong_bits as f64 / (queries * d) as f64,
                exact_retrieval: exact as f64 / queries as f64,
                effective_patterns: eff / queries as f64,
            });
        }
    }
    out
}

/// Capacity of classic vs modern Hopfield networks: D-dimensional ±1 patterns, queries with
/// 10% of the components flipped, modern β given.
pub fn capacity(
    seed: u64,
    d: usize,
    sizes: &[usize],
    queries: usize,
    beta: f64,
) -> Vec<CapacityPoint> {
    let mut rng = StdRng::seed_from_u64(seed);
    sizes
        .iter()
        .map(|&n| {
            let x = random_signs(&mut rng, n, d);
            let classic = ClassicHopfield::new(&x);
            let modern = Memory::new(x.clone(), beta);
            let (mut c_ok, mut m_ok) = (0, 0);
            for _ in 0..queries {
                let t = x.row(rng.random_range(0..n)).to_owned();
                let q = corrupt(&mut rng, &t, Corruption::Flip(0.1));
                c_ok += usize::from(classic.retrieve(q.view(), 50) == t);
                m_ok += usize::from(signs(&modern.update(q.view())) == t);
            }
            CapacityPoint {
                patterns: n,
                classic_success: c_ok as f64 / queries as f64,
                modern_success: m_ok as f64 / queries as f64,
            }
        })
        .collect()
}

/// `n` smooth 32×32 grey images (rows of the result, D = 1024), each a sum of 3–6 random
/// Gaussian blobs. Neighbouring pixels and different images share structure, so they are
/// correlated like natural images, unlike random ±1 patterns.
///
/// Each half (top, bottom) is standardised to mean 0 and variance 1 on its own: then, by
/// Cauchy–Schwarz, a query showing only the top half has its largest dot product with its
/// own image. Without this, retrieval by dot product favours whichever image has the
/// largest visible norm — true of the network, but not what the experiment is about.
pub fn blob_images(rng: &mut StdRng, n: usize) -> Array2<f64> {
    const SIDE: usize = 32;
    const HALF: usize = SIDE * SIDE / 2;
    let mut out = Array2::zeros((n, SIDE * SIDE));
    for mut img in out.axis_iter_mut(Axis(0)) {
        for _ in 0..rng.random_range(3..=6) {
            let (cy, cx) = (rng.random_range(0.0..32.0), rng.random_range(0.0..32.0));
            let sigma: f64 = rng.random_range(2.0..7.0);
            let amp = rng.random_range(-1.0..1.0);
            for (i, px) in img.iter_mut().enumerate() {
                let (y, x) = ((i / SIDE) as f64, (i % SIDE) as f64);
                *px += amp * (-((y - cy).powi(2) + (x - cx).powi(2)) / (2.0 * sigma * sigma)).exp();
            }
        }
        for range in [s![..HALF], s![HALF..]] {
            let mut half = img.slice_mut(range);
            let mean = half.mean().unwrap_or(0.0);
            half -= mean;
            let sd = (half.dot(&half) / HALF as f64).sqrt();
            half /= sd.max(1e-12);
        }
    }
    out
}

/// Result of [`image_retrieval`]: the sweep, and images for a figure.
#[derive(Debug, Clone)]
pub struct ImageRetrieval {
    /// Number of stored images.
    pub stored: usize,
    /// One point per β.
    pub sweep: Vec<ImagePoint>,
    /// For the figure: rows = original, masked query, then one row per `show_betas`.
    pub gallery: Vec<Vec<Array1<f64>>>,
    /// The β of each retrieved row in the gallery.
    pub gallery_betas: Vec<f64>,
}

/// Stores `n` blob images, queries each of the first `queries` with its lower half masked.
pub fn image_retrieval(
    seed: u64,
    n: usize,
    queries: usize,
    betas: &[f64],
    show_betas: &[f64],
    show: usize,
) -> ImageRetrieval {
    let mut rng = StdRng::seed_from_u64(seed);
    let x = blob_images(&mut rng, n);
    let qs: Vec<Array1<f64>> = (0..queries)
        .map(|i| corrupt(&mut rng, &x.row(i).to_owned(), Corruption::MaskHalf))
        .collect();
    let sweep = betas
        .iter()
        .map(|&beta| {
            let memory = Memory::new(x.clone(), beta);
            let (mut err, mut correct, mut eff) = (0.0, 0usize, 0.0);
            for (i, q) in qs.iter().enumerate() {
                let xi = memory.update(q.view());
                let target = x.row(i);
                err += (&xi - &target).dot(&(&xi - &target)).sqrt() / target.dot(&target).sqrt();
                let nearest = x
                    .rows()
                    .into_iter()
                    .map(|r| (&xi - &r).mapv(|v| v * v).sum())
                    .enumerate()
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|(j, _)| j);
                correct += usize::from(nearest == Some(i));
                eff += entropy(memory.probabilities(q.view()).view()).exp();
            }
            let k = queries as f64;
            ImagePoint {
                beta,
                relative_error: err / k,
                nearest_correct: correct as f64 / k,
                effective_patterns: eff / k,
            }
        })
        .collect();
    let mut gallery = vec![
        (0..show).map(|i| x.row(i).to_owned()).collect::<Vec<_>>(),
        qs[..show].to_vec(),
    ];
    for &beta in show_betas {
        let memory = Memory::new(x.clone(), beta);
        gallery.push(qs[..show].iter().map(|q| memory.update(q.view())).collect());
    }
    ImageRetrieval {
        stored: n,
        sweep,
        gallery,
        gallery_betas: show_betas.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_beta_retrieves_small_beta_averages() {
        let pts = beta_sweep(1, 32, 64, 40, &[0.001, 1.0]);
        let get = |beta: f64, c: Corruption| {
            pts.iter()
                .find(|p| p.beta == beta && p.corruption == c)
                .unwrap()
                .clone()
        };
        for c in [Corruption::Flip(0.25), Corruption::MaskHalf] {
            let (small, large) = (get(0.001, c), get(1.0, c));
            assert_eq!(
                large.exact_retrieval, 1.0,
                "{c:?}: one-step retrieval at β = 1"
            );
            assert!(large.effective_patterns < 1.01);
            assert!(
                small.effective_patterns > 30.0,
                "β → 0 averages all 32 patterns"
            );
            assert!(small.bit_error > 0.2);
        }
    }

    #[test]
    fn modern_capacity_far_exceeds_classic() {
        let pts = capacity(2, 64, &[4, 64, 512], 30, 1.0);
        assert!(pts[0].classic_success > 0.8, "{pts:?}");
        assert!(
            pts[1].classic_success < 0.2,
            "64 patterns ≫ 0.138·64: {pts:?}"
        );
        assert!(pts.iter().all(|p| p.modern_success == 1.0), "{pts:?}");
    }

    #[test]
    fn masked_images_come_back_at_large_beta() {
        let r = image_retrieval(3, 24, 8, &[1e-4, 1.0], &[1.0], 2);
        assert_eq!(r.sweep[1].nearest_correct, 1.0, "{:?}", r.sweep);
        assert!(r.sweep[1].relative_error < 0.05, "{:?}", r.sweep);
        assert!(
            r.sweep[0].relative_error > 0.5,
            "β → 0 gives the mean image"
        );
        assert_eq!(r.gallery.len(), 3);
    }
}

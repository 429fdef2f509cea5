//! Log-sum-exp, softmax and the energy's pieces as free functions of `z = Xq`.

use ndarray::{Array1, ArrayView1};

/// `lse(β, z) = β⁻¹ log Σᵢ exp(β zᵢ)`, computed stably by factoring out `max z`.
pub fn lse(beta: f64, z: ArrayView1<f64>) -> f64 {
    let m = z.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    if !m.is_finite() {
        return m;
    }
    m + z.mapv(|v| (beta * (v - m)).exp()).sum().ln() / beta
}

/// `softmax(β z)`, stable for any β and z.
pub fn softmax(beta: f64, z: ArrayView1<f64>) -> Array1<f64> {
    let m = z.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let mut e = z.mapv(|v| (beta * (v - m)).exp());
    let s = e.sum();
    e /= s;
    e
}

/// Shannon entropy (nats) of a probability vector; `exp` of it is the effective number of
/// patterns an update averages over (1 = a single pattern, N = the global average).
pub fn entropy(p: ArrayView1<f64>) -> f64 {
    -p.iter()
        .filter(|&&v| v > 0.0)
        .map(|&v| v * v.ln())
        .sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn lse_is_stable_for_huge_arguments() {
        let z = array![1000.0, 1000.0];
        let v = lse(1.0, z.view());
        assert!((v - (1000.0 + 2f64.ln())).abs() < 1e-12, "{v}");
        let naive = z.mapv(f64::exp).sum().ln();
        assert!(naive.is_infinite(), "the naive formula overflows here");
    }

    #[test]
    fn lse_tends_to_max_for_large_beta() {
        let z = array![0.3, -1.0, 0.7];
        assert!((lse(1e6, z.view()) - 0.7).abs() < 1e-5);
    }

    #[test]
    fn softmax_sums_to_one_and_orders() {
        let p = softmax(2.0, array![1.0, 2.0, 3.0].view());
        assert!((p.sum() - 1.0).abs() < 1e-15);
        assert!(p[0] < p[1] && p[1] < p[2]);
        let e = entropy(softmax(0.0, array![5.0, -5.0, 1.0, 2.0].view()).view());
        assert!((e - 4f64.ln()).abs() < 1e-12, "β = 0 is uniform");
    }
}

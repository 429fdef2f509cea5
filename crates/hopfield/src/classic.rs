//! The classic binary Hopfield network, for contrast with the modern one.

use ndarray::{Array1, Array2, ArrayView1};

/// Binary Hopfield network with Hebbian weights `W = XᵀX` and update `q ← sign(W q)`.
///
/// The diagonal of `W` (self-connections, each equal to N for ±1 patterns) is zeroed, as
/// is usual: with it every state is nearly a fixed point once N is large, and the classic
/// capacity of about 0.138·D patterns refers to the network without it.
#[derive(Debug, Clone)]
pub struct ClassicHopfield {
    weights: Array2<f64>,
}

impl ClassicHopfield {
    /// Stores ±1 patterns (rows of `patterns`).
    pub fn new(patterns: &Array2<f64>) -> Self {
        let mut weights = patterns.t().dot(patterns);
        weights.diag_mut().fill(0.0);
        Self { weights }
    }

    /// The weight matrix `W`.
    pub fn weights(&self) -> &Array2<f64> {
        &self.weights
    }

    /// One synchronous step `sign(W q)` (with sign(0) = +1).
    pub fn update(&self, q: ArrayView1<f64>) -> Array1<f64> {
        self.weights
            .dot(&q)
            .mapv(|v| if v >= 0.0 { 1.0 } else { -1.0 })
    }

    /// Steps until a fixed point or `max_steps`; returns the final state.
    pub fn retrieve(&self, q0: ArrayView1<f64>, max_steps: usize) -> Array1<f64> {
        let mut q = q0.to_owned();
        for _ in 0..max_steps {
            let next = self.update(q.view());
            if next == q {
                break;
            }
            q = next;
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn stores_and_corrects_a_single_flip() {
        let x = array![
            [1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0],
            [1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0]
        ];
        let net = ClassicHopfield::new(&x);
        for p in x.rows() {
            assert_eq!(net.update(p), p, "stored patterns are fixed points");
        }
        let mut noisy = x.row(0).to_owned();
        noisy[2] = -1.0;
        assert_eq!(net.retrieve(noisy.view(), 10), x.row(0));
    }
}

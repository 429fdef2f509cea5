//! The Hopfield update of a batch of queries is cross-attention.
//!
//! With `K = V = X` (i.e. `W_K = W_V = I`) and scale β, single-head attention
//! `softmax(β Q Kᵀ) V` updates every row of `Q` by one CCCP step; β = 1/√D is the
//! transformer's scaling.

use ndarray::{Array2, Axis};

use crate::energy::softmax;
use crate::Memory;

/// `softmax(scale · Q Kᵀ) V`, softmax over each row (Q: n×d, K: N×d, V: N×d_v).
pub fn attention(q: &Array2<f64>, k: &Array2<f64>, v: &Array2<f64>, scale: f64) -> Array2<f64> {
    let scores = q.dot(&k.t());
    let mut weights = scores.clone();
    for (mut row, s) in weights
        .axis_iter_mut(Axis(0))
        .zip(scores.axis_iter(Axis(0)))
    {
        row.assign(&softmax(scale, s));
    }
    weights.dot(v)
}

impl Memory {
    /// Updates each row of `queries` (n×D) by one step: `softmax(β Q Xᵀ) X`.
    pub fn update_batch(&self, queries: &Array2<f64>) -> Array2<f64> {
        attention(queries, self.patterns(), self.patterns(), self.beta())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn batch_rows_equal_single_updates() {
        let x = array![[1.0, 0.5, -0.2], [0.3, -0.7, 0.9]];
        let m = Memory::new(x, 1.0 / 3f64.sqrt());
        let q = array![[0.1, 0.2, 0.3], [-1.0, 0.0, 2.0], [0.5, 0.5, 0.5]];
        let batch = m.update_batch(&q);
        for (i, row) in q.rows().into_iter().enumerate() {
            let single = m.update(row);
            assert!((&batch.row(i) - &single).iter().all(|d| d.abs() < 1e-15));
        }
    }
}

//! The update rule on libtorch tensors, batched and under autograd: what a Hopfield layer
//! computes (Ramsauer et al., "Hopfield Networks is All You Need"). [`update`] is
//! [`Memory::update`](crate::Memory::update) for every state pattern of a batch at once,
//! with stored patterns that may be padding (masked out, as absent patterns); the Q3 model's
//! Hopfield attention head (`seq2seq::model::HopfieldAttention`) is built on it.

use tch::Tensor;

/// `softmax(β ξ Xᵀ)`: for state patterns `xi` (B, T, D) and stored patterns `patterns`
/// (B, S, D), the probabilities (B, T, S) of each stored pattern; `real` (B, S), when given,
/// is true at the patterns that exist (the others get probability 0). `beta` is a scalar
/// tensor, so that it can be learned.
pub fn probabilities(
    xi: &Tensor,
    patterns: &Tensor,
    beta: &Tensor,
    real: Option<&Tensor>,
) -> Tensor {
    let scores = xi.matmul(&patterns.transpose(1, 2)) * beta;
    let scores = match real {
        Some(real) => scores.masked_fill(&real.logical_not().unsqueeze(1), f64::NEG_INFINITY),
        None => scores,
    };
    scores.softmax(-1, scores.kind())
}

/// One CCCP step of every state pattern: `ξ ← Xᵀ softmax(β X ξ)`, i.e.
/// `softmax(β ξ Xᵀ) X` row by row. Returns the new states (B, T, D) and the probabilities
/// (B, T, S) they were made with.
pub fn update(
    xi: &Tensor,
    patterns: &Tensor,
    beta: &Tensor,
    real: Option<&Tensor>,
) -> (Tensor, Tensor) {
    let p = probabilities(xi, patterns, beta, real);
    (p.bmm(patterns), p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{array2, randn, tensor2};
    use crate::Memory;
    use ndarray::{s, Array2};
    use rand::SeedableRng;
    use tch::Kind;

    /// Every row of the batched tensor update equals `Memory::update` of that row against
    /// that batch element's real patterns alone.
    #[test]
    fn batched_masked_update_is_the_memorys_update_row_by_row() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (b, t, s, d) = (3usize, 4usize, 6usize, 5usize);
        let lengths = [6usize, 2, 4];
        let beta = 0.8;
        let states: Vec<Array2<f64>> = (0..b).map(|_| randn(&mut rng, t, d, 1.0)).collect();
        let stored: Vec<Array2<f64>> = (0..b).map(|_| randn(&mut rng, s, d, 1.0)).collect();
        let stack =
            |a: &[Array2<f64>]| Tensor::stack(&a.iter().map(tensor2).collect::<Vec<_>>(), 0);
        let (xi, x) = (stack(&states), stack(&stored));
        let real = Tensor::arange(s as i64, (Kind::Int64, tch::Device::Cpu))
            .unsqueeze(0)
            .lt_tensor(&Tensor::from_slice(&lengths.map(|l| l as i64)).unsqueeze(1));
        let (next, p) = update(&xi, &x, &Tensor::from(beta), Some(&real));
        for e in 0..b {
            let memory = Memory::new(stored[e].slice(s![..lengths[e], ..]).to_owned(), beta);
            let got = array2(&next.get(e as i64));
            for r in 0..t {
                let want = memory.update(states[e].row(r));
                for (a, w) in got.row(r).iter().zip(&want) {
                    assert!((a - w).abs() < 1e-10, "batch {e} row {r}: {a} against {w}");
                }
            }
            let padded = p
                .get(e as i64)
                .narrow(1, lengths[e] as i64, (s - lengths[e]) as i64);
            assert_eq!(padded.abs().sum(Kind::Double).double_value(&[]), 0.0);
        }
    }
}

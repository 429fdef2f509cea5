//! All randomness of a training run comes from libtorch's global CPU generator.
//!
//! Initialisation (`uniform_`, `normal_`), dropout masks, shuffling (`randperm`) and
//! sampling (`multinomial`) all draw from it, as in the PyTorch homework code; seeding it
//! once with [`seed`] makes a run repeatable, and keeps the sequence of draws comparable with
//! PyTorch's (`torch.manual_seed`).

use tch::{Device, Kind, Tensor};

/// Seeds libtorch's generators (CPU and, where present, CUDA) like `torch.manual_seed`.
pub fn seed(seed: u64) {
    tch::manual_seed(seed as i64);
}

/// A random permutation of `0..n` drawn from libtorch's generator (the order in which a
/// shuffled loader visits the examples).
pub fn permutation(n: usize) -> Vec<i64> {
    Vec::<i64>::try_from(Tensor::randperm(n as i64, (Kind::Int64, Device::Cpu)))
        .expect("randperm gives int64")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_permutation() {
        seed(42);
        let a = permutation(100);
        seed(42);
        let b = permutation(100);
        assert_eq!(a, b);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<i64>>());
        assert_ne!(a, permutation(100), "the generator moves on");
    }
}

//! A linear layer for a training batch of a few rows: the same function as `nn::Linear`,
//! with the forward product taken the other way round (`linear.cpp`), where MKL's kernels
//! for 8 rows are fast. Model 2.1's `fc1` (4608 → 1024) is about a seventh of its step.

use tch::{nn, Tensor};
use torch_sys::C_tensor;

extern "C" {
    fn vision_few_rows_linear(
        x: *const C_tensor,
        w: *const C_tensor,
        b: *const C_tensor,
        out: torchkit::shim::Out,
        err: *mut std::ffi::c_char,
        cap: usize,
    ) -> std::ffi::c_int;
}

/// Rows up to which [`linear`] takes the node: a training batch (8), not an evaluation chunk.
pub const FEW_ROWS: i64 = 32;

/// `x · Wᵀ + b` for `layer`; float32 CPU inputs of at most [`FEW_ROWS`] rows take the node,
/// anything else `nn::Linear` itself. Its sums run in another order than libtorch's linear,
/// so the values differ in the last bits: exact mode keeps `nn::Linear`.
pub fn linear(x: &Tensor, layer: &nn::Linear) -> Tensor {
    let rows = x.size();
    if rows.len() != 2 || rows[0] > FEW_ROWS || !torchkit::shim::cpu_float(&[x, &layer.ws]) {
        return x.apply(layer);
    }
    let none = Tensor::new();
    // SAFETY: tch's tensors are `at::Tensor*` (an undefined bias stands for none); the node
    // reads them and on success hands over a new tensor that `from_ptr` owns.
    torchkit::shim::call("few-rows linear", |out, err, cap| unsafe {
        vision_few_rows_linear(
            x.as_ptr(),
            layer.ws.as_ptr(),
            layer.bs.as_ref().unwrap_or(&none).as_ptr(),
            out,
            err,
            cap,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn the_node_computes_nn_linear_and_its_gradients() {
        tch::manual_seed(11);
        let vs = nn::VarStore::new(Device::Cpu);
        let layer = nn::linear(vs.root(), 96, 40, Default::default());
        let x = Tensor::randn([8, 96], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let g = Tensor::randn([8, 40], (Kind::Float, Device::Cpu));
        let wrt = [&x, &layer.ws, layer.bs.as_ref().unwrap()];
        let ours = linear(&x, &layer);
        let theirs = x.apply(&layer);
        assert!((&ours - &theirs).abs().max().double_value(&[]) < 1e-5);
        let ga = Tensor::run_backward(&[(&ours * &g).sum(Kind::Float)], &wrt, false, false);
        let gb = Tensor::run_backward(&[(&theirs * &g).sum(Kind::Float)], &wrt, false, false);
        for (a, b) in ga.iter().zip(&gb) {
            assert!(b.abs().max().double_value(&[]) > 1e-3, "not trivially zero");
            assert!((a - b).abs().max().double_value(&[]) < 1e-5);
        }
        // Only the input's gradient, as the fused SGD step asks for it.
        let only_x = Tensor::run_backward(
            &[(linear(&x, &layer) * &g).sum(Kind::Float)],
            &[&x],
            false,
            false,
        );
        assert!((&only_x[0] - &gb[0]).abs().max().double_value(&[]) < 1e-5);
        // A larger batch goes to nn::Linear: the same bits.
        let big = Tensor::randn([64, 96], (Kind::Float, Device::Cpu));
        assert!(linear(&big, &layer).equal(&big.apply(&layer)));
    }
}

//! A linear layer for a training batch of a few rows: the same function as `nn::Linear`
//! ([`linear_slow`], its twin), with the forward product taken the other way round
//! (`linear.cpp`), where MKL's kernels for 8 rows are fast. Model 2.1's `fc1` (4608 → 1024)
//! is about a seventh of its step.
//!
//! [`sgd_linear`] is the same node that also takes SGD's step for its weight inside its
//! backward pass (`W ← W·(1 − lr·wd) − lr·gᵀx`), so that the 19 MB gradient of 2.1's `fc1` is
//! never written: the fast backend's SGD for layers of at least [`SgdStep::MIN_WEIGHTS`]
//! weights (`crate::kernels::Backend::optimizer`). Its twin is [`linear_slow`] followed by
//! libtorch's SGD step.

use tch::{nn, Tensor};
use torch_sys::C_tensor;

extern "C" {
    fn vision_few_rows_linear(
        x: *const C_tensor,
        w: *const C_tensor,
        b: *const C_tensor,
        lr: f64,
        wd: f64,
        out: torchkit::shim::Out,
        err: *mut std::ffi::c_char,
        cap: usize,
    ) -> std::ffi::c_int;
}

/// Rows up to which the node is faster than libtorch's linear: a training batch (8), an
/// evaluation chunk (32).
pub const FEW_ROWS: i64 = 32;

/// SGD's step (libtorch's: no momentum, L2 weight decay added to the gradient) taken by
/// [`sgd_linear`]'s backward pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdStep {
    /// Learning rate.
    pub lr: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
}

impl SgdStep {
    /// The weights from which updating inside the backward pass pays (2.1's `fc1`: 4.7M;
    /// for 2.2's 131k libtorch's SGD is as fast).
    pub const MIN_WEIGHTS: usize = 1_000_000;
}

/// `x · Wᵀ + b` for `layer` (`x`: float32 (B, F), B up to [`FEW_ROWS`] for speed). Its sums
/// run in another order than libtorch's linear, so the values differ in the last bits: the
/// reference backend keeps `nn::Linear`.
pub fn linear(x: &Tensor, layer: &nn::Linear) -> Tensor {
    node(x, layer, None)
}

/// The twin of [`linear`]: libtorch's linear layer.
pub fn linear_slow(x: &Tensor, layer: &nn::Linear) -> Tensor {
    x.apply(layer)
}

/// [`linear`], whose backward pass also takes `step` on the layer's weight in place and
/// leaves the weight without a gradient (the optimiser then skips it).
pub fn sgd_linear(x: &Tensor, layer: &nn::Linear, step: SgdStep) -> Tensor {
    node(x, layer, Some(step))
}

fn node(x: &Tensor, layer: &nn::Linear, step: Option<SgdStep>) -> Tensor {
    let none = Tensor::new();
    let (lr, wd) = step.map_or((-1.0, 0.0), |s| (s.lr, s.weight_decay));
    // SAFETY: tch's tensors are `at::Tensor*` (an undefined bias stands for none); the node
    // reads them and on success hands over a new tensor that `from_ptr` owns.
    torchkit::shim::call("few-rows linear", |out, err, cap| unsafe {
        vision_few_rows_linear(
            x.as_ptr(),
            layer.ws.as_ptr(),
            layer.bs.as_ref().unwrap_or(&none).as_ptr(),
            lr,
            wd,
            out,
            err,
            cap,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::OptimizerConfig;
    use tch::{Device, Kind};

    #[test]
    fn linear_equals_its_slow_twin_in_values_and_gradients() {
        tch::manual_seed(11);
        let vs = nn::VarStore::new(Device::Cpu);
        let layer = nn::linear(vs.root(), 96, 40, Default::default());
        let x = Tensor::randn([8, 96], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let g = Tensor::randn([8, 40], (Kind::Float, Device::Cpu));
        let wrt = [&x, &layer.ws, layer.bs.as_ref().unwrap()];
        let ours = linear(&x, &layer);
        let theirs = linear_slow(&x, &layer);
        assert!((&ours - &theirs).abs().max().double_value(&[]) < 1e-5);
        let ga = Tensor::run_backward(&[(&ours * &g).sum(Kind::Float)], &wrt, false, false);
        let gb = Tensor::run_backward(&[(&theirs * &g).sum(Kind::Float)], &wrt, false, false);
        for (a, b) in ga.iter().zip(&gb) {
            assert!(b.abs().max().double_value(&[]) > 1e-3, "not trivially zero");
            assert!((a - b).abs().max().double_value(&[]) < 1e-5);
        }
        // Only the input's gradient.
        let only_x = Tensor::run_backward(
            &[(linear(&x, &layer) * &g).sum(Kind::Float)],
            &[&x],
            false,
            false,
        );
        assert!((&only_x[0] - &gb[0]).abs().max().double_value(&[]) < 1e-5);
    }

    /// Backward through [`sgd_linear`] leaves the layer as libtorch's SGD step leaves it
    /// (within 1e-6: the update's product runs in another order), the input's and the bias's
    /// gradients those of the twin, and no gradient on the weight.
    #[test]
    fn sgd_linear_is_its_twin_then_libtorchs_sgd_step() {
        for wd in [0.0, 0.01] {
            tch::manual_seed(5);
            let vs_a = nn::VarStore::new(Device::Cpu);
            let a = nn::linear(vs_a.root(), 96, 40, Default::default());
            let mut vs_b = nn::VarStore::new(Device::Cpu);
            let b = nn::linear(vs_b.root(), 96, 40, Default::default());
            vs_b.copy(&vs_a).unwrap();
            let x = Tensor::randn([8, 96], (Kind::Float, Device::Cpu));
            let g = Tensor::randn([8, 40], (Kind::Float, Device::Cpu));
            let step = SgdStep {
                lr: 0.1,
                weight_decay: wd,
            };
            let sgd = |vs: &nn::VarStore| {
                nn::Sgd {
                    wd,
                    ..Default::default()
                }
                .build(vs, step.lr)
                .unwrap()
            };
            // Ours: the node, then SGD on what has a gradient (the bias).
            let (mut sgd_a, mut sgd) = (sgd(&vs_a), sgd(&vs_b));
            for _ in 0..2 {
                let xa = x.copy().set_requires_grad(true);
                let xb = x.copy().set_requires_grad(true);
                sgd_a.zero_grad();
                (sgd_linear(&xa, &a, step) * &g).sum(Kind::Float).backward();
                sgd.zero_grad();
                (linear_slow(&xb, &b) * &g).sum(Kind::Float).backward();
                assert!(!a.ws.grad().defined(), "the weight has no gradient");
                let dx = (xa.grad() - xb.grad()).abs().max().double_value(&[]);
                let db = (a.bs.as_ref().unwrap().grad() - b.bs.as_ref().unwrap().grad())
                    .abs()
                    .max()
                    .double_value(&[]);
                assert!(dx < 1e-5 && db < 1e-5, "dx {dx}, db {db}");
                sgd_a.step();
                sgd.step();
                let dw = (&a.ws - &b.ws).abs().max().double_value(&[]);
                assert!(dw < 1e-6, "wd {wd}: weights differ by {dw}");
                let bias = |l: &nn::Linear| l.bs.as_ref().unwrap().shallow_clone();
                assert!(bias(&a).equal(&bias(&b)), "the bias takes libtorch's step");
            }
        }
    }
}

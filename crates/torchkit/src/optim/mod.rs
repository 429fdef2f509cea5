//! Optimisers behind one interface, the homework's `optimizer.zero_grad()` and
//! `optimizer.step()`, with the state a resume point saves.
//!
//! * [`Adam`]: PyTorch's update rule and a state that can be saved and restored (tch's
//!   optimisers keep theirs in C++, out of reach); op by op ([`Adam::new`], PyTorch's to
//!   the bit) or in one pass per parameter ([`Adam::one_pass`], [`crate::fast::adam`]).
//! * [`Sgd`]: libtorch's SGD (no momentum, as the homework), which keeps no state.
//!
//! A fast backend may take part of an optimiser's step inside the backward pass (vision's
//! linear node updates its weight there); the optimiser then finds that parameter without a
//! gradient and skips it, as PyTorch's optimisers do.

use std::collections::HashMap;

use anyhow::Result;
use tch::nn::{self, OptimizerConfig, VarStore};
use tch::Tensor;

pub mod adam;

pub use adam::Adam;

/// What a training step asks of its optimiser.
pub trait Optimizer {
    /// Clears every parameter's gradient.
    fn zero_grad(&mut self);
    /// Updates every parameter that has a gradient.
    fn step(&mut self);
    /// The state as named tensors, for a resume point (none for a stateless rule).
    fn state(&self) -> Vec<(String, Tensor)>;
    /// Restores what [`Optimizer::state`] saved; a state from a file is untrusted, so every
    /// tensor is checked before any is copied.
    fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()>;
}

/// libtorch's SGD over a store's trainable variables: `d = g + wd·p`, `p ← p − lr·d`.
pub struct Sgd(nn::Optimizer);

impl Sgd {
    /// SGD with learning rate `lr` and L2 weight decay `weight_decay`, no momentum.
    pub fn new(vs: &VarStore, lr: f64, weight_decay: f64) -> Result<Self> {
        let sgd = nn::Sgd {
            wd: weight_decay,
            ..Default::default()
        };
        Ok(Self(sgd.build(vs, lr)?))
    }
}

impl Optimizer for Sgd {
    fn zero_grad(&mut self) {
        self.0.zero_grad();
    }

    fn step(&mut self) {
        self.0.step();
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    fn load_state(&mut self, _: &HashMap<String, Tensor>) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::Module;
    use tch::{Device, Kind};

    /// Our SGD behind the interface is libtorch's, bit for bit, weight decay included, and
    /// skips a parameter left without a gradient.
    #[test]
    fn sgd_is_libtorchs_and_skips_a_parameter_without_gradient() {
        let vs_a = VarStore::new(Device::Cpu);
        let lin_a = nn::linear(vs_a.root() / "lin", 5, 3, Default::default());
        let mut vs_b = VarStore::new(Device::Cpu);
        let lin_b = nn::linear(vs_b.root() / "lin", 5, 3, Default::default());
        vs_b.copy(&vs_a).unwrap();
        let x = Tensor::randn([16, 5], (Kind::Float, Device::Cpu));
        let y = Tensor::randn([16, 3], (Kind::Float, Device::Cpu));
        let mut ours: Box<dyn Optimizer> = Box::new(Sgd::new(&vs_a, 0.1, 0.01).unwrap());
        let mut theirs = nn::Sgd {
            wd: 0.01,
            ..Default::default()
        }
        .build(&vs_b, 0.1)
        .unwrap();
        for _ in 0..3 {
            ours.zero_grad();
            lin_a
                .forward(&x)
                .mse_loss(&y, tch::Reduction::Mean)
                .backward();
            ours.step();
            theirs.backward_step(&lin_b.forward(&x).mse_loss(&y, tch::Reduction::Mean));
        }
        assert!(
            lin_a.ws.equal(&lin_b.ws)
                && lin_a.bs.as_ref().unwrap().equal(lin_b.bs.as_ref().unwrap())
        );
        assert!(ours.state().is_empty());
        // The weight without a gradient (a backward that updated it itself) stays put.
        let before = lin_a.ws.copy();
        ours.zero_grad();
        let loss = (x.matmul(&lin_a.ws.detach().tr()) + lin_a.bs.as_ref().unwrap())
            .mse_loss(&y, tch::Reduction::Mean);
        loss.backward();
        ours.step();
        assert!(lin_a.ws.equal(&before), "no gradient, no update");
        assert!(
            !lin_a.bs.as_ref().unwrap().equal(lin_b.bs.as_ref().unwrap()),
            "the bias moved"
        );
    }
}

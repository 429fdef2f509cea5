//! Adam with PyTorch's update rule and a state that can be saved and restored, so that an
//! interrupted training run resumes where it stopped (tch's optimisers keep their state in
//! C++, out of reach).
//!
//! The update follows `torch.optim.Adam`'s single-tensor implementation (the one PyTorch uses
//! for CPU tensors): `m ← lerp(m, g, 1−β1)`, `v ← β2·v + (1−β2)·g²`,
//! `p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)`, with L2 weight decay added to `g`.

use std::collections::HashMap;

use anyhow::{bail, Result};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use super::Optimizer;
use crate::fast::adam::Constants;

/// Adam over the trainable variables of a store.
pub struct Adam {
    params: Vec<(String, Tensor)>,
    exp_avg: Vec<Tensor>,
    exp_avg_sq: Vec<Tensor>,
    step: i64,
    /// Learning rate.
    pub lr: f64,
    /// (β1, β2) = (0.9, 0.999).
    pub betas: (f64, f64),
    /// ε = 1e-8.
    pub eps: f64,
    /// L2 penalty added to the gradient (0).
    pub weight_decay: f64,
    /// Each parameter's update: PyTorch's tensor ops ([`update_slow`], to the bit) or one
    /// pass over its memory ([`crate::fast::adam::update`]), chosen at construction.
    update: fn(&Tensor, &Tensor, &Tensor, &Tensor, &Step),
}

impl Adam {
    /// PyTorch's Adam, op by op: its defaults with learning rate `lr`; parameters in name
    /// order.
    pub fn new(vs: &VarStore, lr: f64, weight_decay: f64) -> Self {
        Self::with_update(vs, lr, weight_decay, update_slow)
    }

    /// The same rule, each dense float32 CPU parameter updated in one pass
    /// ([`crate::fast::adam::update`]; other tensors take PyTorch's ops): for the fast
    /// backends.
    pub fn one_pass(vs: &VarStore, lr: f64, weight_decay: f64) -> Self {
        Self::with_update(vs, lr, weight_decay, |p, g, m, v, h| {
            let one_pass =
                Constants::new(h.betas, h.step_size, h.bias2_sqrt, h.eps, h.weight_decay);
            if !crate::fast::adam::update(p, g, m, v, &one_pass) {
                update_slow(p, g, m, v, h)
            }
        })
    }

    fn with_update(
        vs: &VarStore,
        lr: f64,
        weight_decay: f64,
        update: fn(&Tensor, &Tensor, &Tensor, &Tensor, &Step),
    ) -> Self {
        let mut params: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let zeros = |params: &[(String, Tensor)]| -> Vec<Tensor> {
            params.iter().map(|(_, p)| p.zeros_like()).collect()
        };
        Self {
            exp_avg: zeros(&params),
            exp_avg_sq: zeros(&params),
            params,
            step: 0,
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay,
            update,
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> i64 {
        self.step
    }

    /// Clears the gradients, back-propagates `loss` and updates every parameter.
    pub fn backward_step(&mut self, loss: &Tensor) {
        self.zero_grad();
        loss.backward();
        self.step();
    }
}

impl Optimizer for Adam {
    fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
    }

    /// One Adam step from every parameter's gradient.
    fn step(&mut self) {
        self.step += 1;
        let (b1, b2) = self.betas;
        // As Python computes them: `beta ** step` and `bias_correction2 ** 0.5` are libm's
        // pow (powi and sqrt can differ in the last bit, and so the homework's numbers).
        let t = self.step as f64;
        let bias1 = 1.0 - b1.powf(t);
        let bias2_sqrt = (1.0 - b2.powf(t)).powf(0.5);
        let step_size = self.lr / bias1;
        let constants = Step {
            betas: (b1, b2),
            step_size,
            bias2_sqrt,
            eps: self.eps,
            weight_decay: self.weight_decay,
        };
        tch::no_grad(|| {
            for (((_, p), m), v) in self
                .params
                .iter_mut()
                .zip(&mut self.exp_avg)
                .zip(&mut self.exp_avg_sq)
            {
                let g = p.grad();
                if g.defined() {
                    (self.update)(p, &g, m, v, &constants);
                }
            }
        });
    }

    /// The state as named tensors (`adam.exp_avg.<param>`, `adam.exp_avg_sq.<param>`,
    /// `adam.step`), for a resume checkpoint.
    fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("adam.step".to_string(), Tensor::from_slice(&[self.step]))];
        for (((name, _), m), v) in self.params.iter().zip(&self.exp_avg).zip(&self.exp_avg_sq) {
            out.push((format!("adam.exp_avg.{name}"), m.shallow_clone()));
            out.push((format!("adam.exp_avg_sq.{name}"), v.shallow_clone()));
        }
        out
    }

    /// Restores a state written by [`Adam::state`]; every tensor must be present with the
    /// parameter's shape, checked before any is copied (a state from a file is untrusted).
    fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        let step = match state.get("adam.step") {
            Some(t) if t.numel() == 1 && !t.is_floating_point() => t.reshape([1]).int64_value(&[0]),
            Some(_) => bail!("optimiser state 'adam.step' is not one integer"),
            None => bail!("optimiser state lacks 'adam.step'"),
        };
        for (name, p) in &self.params {
            for key in ["exp_avg", "exp_avg_sq"] {
                let full = format!("adam.{key}.{name}");
                match state.get(&full) {
                    Some(t) if t.size() == p.size() => {}
                    Some(t) => bail!(
                        "optimiser state '{full}' has shape {:?}, the parameter {:?}",
                        t.size(),
                        p.size()
                    ),
                    None => bail!("optimiser state lacks '{full}'"),
                }
            }
        }
        self.step = step;
        tch::no_grad(|| {
            for (((name, p), m), v) in self
                .params
                .iter()
                .zip(&mut self.exp_avg)
                .zip(&mut self.exp_avg_sq)
            {
                for (key, dst) in [("exp_avg", &mut *m), ("exp_avg_sq", &mut *v)] {
                    let t = &state[&format!("adam.{key}.{name}")];
                    dst.copy_(&t.to_kind(Kind::Float).to_device(p.device()));
                }
            }
        });
        Ok(())
    }
}

/// One step's constants, in double precision as PyTorch's scalars are.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// (β1, β2).
    pub betas: (f64, f64),
    /// lr / (1 − β1ᵗ).
    pub step_size: f64,
    /// √(1 − β2ᵗ).
    pub bias2_sqrt: f64,
    /// ε.
    pub eps: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
}

/// One parameter's update as `torch.optim.Adam`'s single-tensor implementation writes it, op
/// by op: PyTorch's to the bit.
pub fn update_slow(p: &Tensor, g: &Tensor, m: &Tensor, v: &Tensor, s: &Step) {
    let (b1, b2) = s.betas;
    let mut g = g.shallow_clone();
    if s.weight_decay != 0.0 {
        g = &g + p * s.weight_decay;
    }
    let _ = m.shallow_clone().lerp_(&g, 1.0 - b1);
    let _ = v
        .shallow_clone()
        .g_mul_scalar_(b2)
        .addcmul_(&(&g * (1.0 - b2)), &g);
    let denom = (v.sqrt() / s.bias2_sqrt).g_add_scalar_(s.eps);
    let _ = p.shallow_clone().addcdiv_(&(m * -s.step_size), &denom);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{self, Module, OptimizerConfig};
    use tch::Device;

    /// A linear layer and data. Comparisons copy weights between stores instead of
    /// re-seeding: other tests draw from the global generator in parallel threads.
    fn problem() -> (VarStore, nn::Linear, Tensor, Tensor) {
        let vs = VarStore::new(Device::Cpu);
        let lin = nn::linear(vs.root() / "lin", 5, 3, Default::default());
        let x = Tensor::randn([16, 5], (Kind::Float, Device::Cpu));
        let y = Tensor::randn([16, 3], (Kind::Float, Device::Cpu));
        (vs, lin, x, y)
    }

    #[test]
    fn matches_libtorch_adam() {
        for one_pass in [false, true] {
            matches_libtorch_adam_when(one_pass);
        }
    }

    fn matches_libtorch_adam_when(one_pass: bool) {
        let (vs_a, lin_a, x, y) = problem();
        let (mut vs_b, lin_b, _, _) = problem();
        vs_b.copy(&vs_a).unwrap();
        let start = vs_a.variables()["lin.weight"].copy();
        let mut ours = if one_pass {
            Adam::one_pass(&vs_a, 0.01, 0.0)
        } else {
            Adam::new(&vs_a, 0.01, 0.0)
        };
        let mut theirs = nn::Adam::default().build(&vs_b, 0.01).unwrap();
        for _ in 0..50 {
            ours.backward_step(&lin_a.forward(&x).mse_loss(&y, tch::Reduction::Mean));
            theirs.backward_step(&lin_b.forward(&x).mse_loss(&y, tch::Reduction::Mean));
        }
        let (a, b) = (vs_a.variables(), vs_b.variables());
        for (name, t) in &a {
            let diff = (t - &b[name]).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "one pass {one_pass}, {name}: {diff}");
        }
        assert!(
            (&a["lin.weight"] - &start).abs().max().double_value(&[]) > 1e-2,
            "the weights moved"
        );
    }

    /// The one-pass update is the tensor ops' update to float rounding, weight decay
    /// included, takes channels-last parameters too, and leaves a parameter that is not
    /// dense, or laid out unlike its gradient, to the tensor ops.
    #[test]
    fn one_pass_update_is_the_tensor_ops_update() {
        use crate::fast::adam::update;
        let (vs_a, lin_a, x, y) = problem();
        let (mut vs_b, lin_b, _, _) = problem();
        vs_b.copy(&vs_a).unwrap();
        let mut ops = Adam::new(&vs_a, 0.01, 0.05);
        let mut fused = Adam::one_pass(&vs_b, 0.01, 0.05);
        for _ in 0..50 {
            ops.backward_step(&lin_a.forward(&x).mse_loss(&y, tch::Reduction::Mean));
            fused.backward_step(&lin_b.forward(&x).mse_loss(&y, tch::Reduction::Mean));
        }
        let (a, b) = (vs_a.variables(), vs_b.variables());
        for (name, t) in &a {
            let diff = (t - &b[name]).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "{name}: {diff}");
        }
        let p = Tensor::ones([3, 2], (Kind::Float, tch::Device::Cpu)).tr();
        let g = p.ones_like();
        let h = Constants::new((0.9, 0.999), 0.1, 1.0, 1e-8, 0.0);
        assert!(!update(&p, &g, &p.zeros_like(), &p.zeros_like(), &h));
        assert!(p.equal(&p.ones_like()), "left untouched");
        let dense = p.contiguous();
        let (m, v) = (dense.zeros_like(), dense.zeros_like());
        assert!(update(&dense, &g.contiguous(), &m, &v, &h));
        // m = 0.1, v = 0.001: p = 1 − 0.1 · 0.1 / √0.001.
        let want = 1.0 - 0.1 * 0.1 / 0.001f64.sqrt();
        let got = dense.double_value(&[0, 0]);
        assert!((got - want).abs() < 1e-6, "{got} against {want}");
        // A channels-last convolution weight with its like-laid-out gradient and moments is
        // updated in place, in memory order; a gradient laid out otherwise is not.
        let nhwc = |t: Tensor| t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]);
        let w = nhwc(Tensor::ones([4, 3, 2, 2], (Kind::Float, tch::Device::Cpu)));
        let gw = nhwc(Tensor::ones([4, 3, 2, 2], (Kind::Float, tch::Device::Cpu)));
        let moments = || (w.zeros_like(), w.zeros_like());
        let (m, v) = moments();
        assert!(!update(&w, &gw.contiguous(), &m, &v, &h), "mixed layouts");
        assert!(w.equal(&w.ones_like()), "left untouched");
        let (m, v) = moments();
        assert!(update(&w, &gw, &m, &v, &h), "channels-last");
        let all = w.flatten(0, -1);
        let (lo, hi) = (all.min().double_value(&[]), all.max().double_value(&[]));
        assert!(
            (lo - want).abs() < 1e-6 && (hi - want).abs() < 1e-6,
            "{lo}..{hi}"
        );
    }

    #[test]
    fn saved_state_resumes_exactly() {
        let (vs_a, lin_a, x, y) = problem();
        let mut a = Adam::new(&vs_a, 0.01, 1e-4);
        let loss = |l: &nn::Linear| l.forward(&x).mse_loss(&y, tch::Reduction::Mean);
        for _ in 0..5 {
            a.backward_step(&loss(&lin_a));
        }
        // A second model and optimiser restored from the first's weights and state.
        let (mut vs_b, lin_b, _, _) = problem();
        tch::no_grad(|| vs_b.copy(&vs_a)).unwrap();
        let mut b = Adam::new(&vs_b, 0.01, 1e-4);
        let state: HashMap<String, Tensor> =
            a.state().into_iter().map(|(k, t)| (k, t.copy())).collect();
        b.load_state(&state).unwrap();
        assert_eq!(b.steps(), 5);
        for _ in 0..5 {
            a.backward_step(&loss(&lin_a));
            b.backward_step(&loss(&lin_b));
        }
        for (name, t) in vs_a.variables() {
            assert!(t.equal(&vs_b.variables()[&name]), "{name} differs");
        }
        let mut broken = state;
        broken.remove("adam.exp_avg.lin.bias");
        assert!(b.load_state(&broken).is_err());
    }
}

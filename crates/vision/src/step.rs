//! One optimisation step per batch (forward, backward, update), and the first losses of a
//! fresh run that `tests/exact.rs` compares with the homework's code.

use std::collections::HashMap;

use anyhow::Result;
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Tensor};

use crate::config::{Optimizer, TrainConfig};
use crate::dataset::Dataset;
use crate::model::{Cnn, CnnConfig};

/// The skeleton's first `n` training losses of a fresh run (seeded by the caller), in exact
/// mode: what `tests/exact.rs` compares with a run of the homework's own code.
pub fn first_losses(model: &CnnConfig, config: &TrainConfig, data: &Dataset, n: usize) -> Vec<f64> {
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Cnn::new(&vs.root(), model);
    let mut stepper = Stepper::new(&vs, &net, config);
    let order = torchkit::rng::loader_order(data.train.len());
    order
        .chunks(config.batch_size)
        .take(n)
        .map(|chunk| {
            let idx = Tensor::from_slice(chunk);
            stepper
                .step(
                    &net,
                    &data.train.images_at(&idx),
                    &data.train.labels.index_select(0, &idx),
                )
                .double_value(&[])
        })
        .collect()
}

/// One optimisation step per batch: forward, backward, update.
///
/// SGD (no momentum, as the homework) on model 2.1 takes a fused path: autograd computes
/// every gradient except that of `fc1.weight` (4.7M of its 5.3M weights), which is
/// updated in place as `W ← W − lr·gᵀx` by one `addmm_` from the layer's input `x` and output
/// gradient `g` — the SGD update without writing and re-reading a 19 MB gradient every batch,
/// about 10% of a step (`cargo bench -p vision --bench train_step`). Where that layer is small
/// (2.2) libtorch's SGD is faster. SGD keeps no state; Adam is `torchkit::optim::Adam`,
/// whose state a resume point saves.
pub struct Stepper(Update);

/// The update rule a [`Stepper`] applies.
enum Update {
    /// SGD with `fc1.weight` updated in place from its input and output gradient.
    FusedSgd {
        lr: f64,
        weight_decay: f64,
        /// Trainable parameters other than `fc1.weight`.
        others: Vec<Tensor>,
        fc1_weight: Tensor,
    },
    /// libtorch's SGD, where the fused path does not pay.
    Sgd(nn::Optimizer),
    Adam(torchkit::optim::Adam),
}

impl Stepper {
    /// A stepper for `net`'s parameters in `vs`.
    pub fn new(vs: &nn::VarStore, net: &Cnn, config: &TrainConfig) -> Self {
        let (lr, weight_decay) = (config.learning_rate, config.l2_decay);
        let fc1_weight = net.fc1_weight().shallow_clone();
        let fused = net.backend().fused_optimizers();
        Self(if config.optimizer == Optimizer::Adam {
            Update::Adam(torchkit::optim::Adam::new(vs, lr, weight_decay).fused(fused))
        } else if !fused || fc1_weight.numel() < 1_000_000 {
            // The fused update pays for a large first layer only (2.1: 4.7M weights, 2.2: 131k).
            Update::Sgd(
                nn::Sgd {
                    wd: weight_decay,
                    ..Default::default()
                }
                .build(vs, lr)
                .expect("SGD over the store's variables"),
            )
        } else {
            let others = vs
                .trainable_variables()
                .into_iter()
                .filter(|t| t.data_ptr() != fc1_weight.data_ptr())
                .collect();
            Update::FusedSgd {
                lr,
                weight_decay,
                others,
                fc1_weight,
            }
        })
    }

    /// Trains on one batch; returns the batch's mean loss (detached, still on the device).
    pub fn step(&mut self, net: &Cnn, images: &Tensor, labels: &Tensor) -> Tensor {
        let nll = |out: &Tensor| out.g_nll_loss::<Tensor>(labels, None, tch::Reduction::Mean, -100);
        match &mut self.0 {
            Update::Adam(adam) => {
                let loss = nll(&net.forward_t(images, true));
                adam.backward_step(&loss);
                loss.detach()
            }
            Update::Sgd(sgd) => {
                let loss = nll(&net.forward_t(images, true));
                sgd.backward_step(&loss);
                loss.detach()
            }
            Update::FusedSgd {
                lr,
                weight_decay,
                others,
                fc1_weight,
            } => {
                let (lr, wd) = (*lr, *weight_decay);
                let (out, fc1) = net.forward_parts(images, true);
                let loss = nll(&out);
                let mut inputs: Vec<&Tensor> = vec![&fc1.pre_activation];
                inputs.extend(others.iter());
                let grads = Tensor::run_backward(&[&loss], &inputs, false, false);
                tch::no_grad(|| {
                    // libtorch's SGD: d = g + wd·p, p += −lr·d, each one fused multiply-add
                    // (`add_` with alpha, which tch does not bind; `addcmul_` by a 0-dim
                    // factor rounds the same and, unlike p − g·lr, makes no temporary).
                    let neg_lr = Tensor::from(-lr as f32);
                    let wd_t = Tensor::from(wd as f32);
                    for (p, g) in others.iter_mut().zip(&grads[1..]) {
                        if wd == 0.0 {
                            let _ = p.addcmul_(g, &neg_lr);
                        } else {
                            let d = g.addcmul(p, &wd_t);
                            let _ = p.addcmul_(&d, &neg_lr);
                        }
                    }
                    if wd != 0.0 {
                        let _ = fc1_weight.g_mul_scalar_(1.0 - lr * wd);
                    }
                    // W (1024 × F) += (−lr·g)ᵀ (1024 × B) · x (B × F)
                    let _ = fc1_weight.addmm_(&(grads[0].tr() * -lr), &fc1.input);
                });
                loss.detach()
            }
        }
    }

    /// The optimiser's state a resume point saves: our Adam's moments (SGD keeps none).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        match &self.0 {
            Update::Adam(a) => a.state(),
            _ => Vec::new(),
        }
    }

    /// Restores what [`Stepper::state`] saved.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        match &mut self.0 {
            Update::Adam(a) => a.load_state(state),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    /// Model 2.1 without dropout, so that nothing in a step draws from libtorch's global
    /// generator, which the crate's other tests use from other threads.
    fn model(vs: &nn::VarStore) -> Cnn {
        Cnn::new(
            &vs.root(),
            &CnnConfig {
                dropout: 0.0,
                ..CnnConfig::model_2_1()
            },
        )
    }

    #[test]
    fn fused_sgd_step_is_libtorchs_sgd_step() {
        for wd in [0.0, 0.01] {
            let vs_a = nn::VarStore::new(Device::Cpu);
            let net_a = model(&vs_a);
            // The same starting weights, copied rather than re-drawn.
            let mut vs_b = nn::VarStore::new(Device::Cpu);
            let net_b = model(&vs_b);
            vs_b.copy(&vs_a).unwrap();
            let start = vs_a.variables()["fc1.weight"].copy();
            let x = Tensor::rand([8, 6912], (Kind::Float, Device::Cpu));
            let y = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 5, 0, 1]);
            let config = TrainConfig {
                learning_rate: 0.1,
                l2_decay: wd,
                ..TrainConfig::default()
            };
            let mut ours = Stepper::new(&vs_a, &net_a, &config);
            let mut sgd = nn::Sgd {
                wd,
                ..Default::default()
            }
            .build(&vs_b, 0.1)
            .unwrap();
            for step in 0..3 {
                let loss_a = ours.step(&net_a, &x, &y);
                let loss_b = net_b.forward_t(&x, true).g_nll_loss::<Tensor>(
                    &y,
                    None,
                    tch::Reduction::Mean,
                    -100,
                );
                sgd.backward_step(&loss_b);
                assert!((loss_a - loss_b).abs().double_value(&[]) < 1e-5);
                if step == 0 {
                    // From the same weights, every parameter but fc1's weight (a product in
                    // another order) takes libtorch's update bit for bit.
                    let (a, b) = (vs_a.variables(), vs_b.variables());
                    for (name, t) in a.iter().filter(|(name, _)| *name != "fc1.weight") {
                        assert!(t.equal(&b[name]), "{name} (wd {wd}) after one step");
                    }
                }
            }
            let (a, b) = (vs_a.variables(), vs_b.variables());
            for (name, t) in &a {
                let diff = (t - &b[name]).abs().max().double_value(&[]);
                assert!(diff < 1e-5, "{name} (wd {wd}): {diff}");
            }
            let moved = (&a["fc1.weight"] - &start).abs().max().double_value(&[]);
            assert!(moved > 1e-6, "fc1 was updated");
        }
    }
}

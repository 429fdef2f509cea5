//! The skeleton's `train_batch`, the model and optimiser a training builds, and the first
//! losses of a fresh run that `tests/exact.rs` compares with the homework's code.

use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};
use torchkit::optim::Optimizer;

use crate::config::TrainConfig;
use crate::dataset::Dataset;
use crate::kernels::Backend;
use crate::model::{Cnn, CnnConfig};

/// The skeleton's `train_batch`: one optimisation step on a batch; returns its mean loss
/// (detached, still on the device: the epoch reads every loss back at once).
///
/// What runs underneath is the model's backend's (`crate::kernels`): the fast one may take
/// SGD's step for a large layer inside `backward` (`crate::fast::linear::sgd_linear`).
pub fn train_batch(x: &Tensor, y: &Tensor, model: &Cnn, optimizer: &mut dyn Optimizer) -> Tensor {
    optimizer.zero_grad();
    let out = model.forward_t(x, true);
    let loss = out.g_nll_loss::<Tensor>(y, None, tch::Reduction::Mean, -100);
    loss.backward();
    optimizer.step();
    loss.detach()
}

/// A fresh model of `model` and its optimiser for training with `config` on `device`: the
/// backend resolved for that device and optimiser ([`Backend::training`]), the parameters
/// drawn on the CPU and moved, as the skeleton's `CNN(...).to(device)`.
pub fn for_training(
    model: &CnnConfig,
    config: &TrainConfig,
    device: Device,
) -> (nn::VarStore, Cnn, Box<dyn Optimizer>) {
    let backend = Backend::training(model.kernels, model.maxpool, device, config);
    let (vs, net) =
        torchkit::layers::on_cpu_then_to(device, |root| Cnn::with_backend(root, model, backend));
    let optimizer = backend.optimizer(&vs, config);
    (vs, net, optimizer)
}

/// The skeleton's first `n` training losses of a fresh run (seeded by the caller), in exact
/// mode: what `tests/exact.rs` compares with a run of the homework's own code.
pub fn first_losses(model: &CnnConfig, config: &TrainConfig, data: &Dataset, n: usize) -> Vec<f64> {
    let (_vs, net, mut optimizer) = for_training(model, config, Device::Cpu);
    let order = torchkit::rng::loader_order(data.train.len());
    order
        .chunks(config.batch_size)
        .take(n)
        .map(|chunk| {
            let idx = Tensor::from_slice(chunk);
            train_batch(
                &data.train.images_at(&idx),
                &data.train.labels.index_select(0, &idx),
                &net,
                optimizer.as_mut(),
            )
            .double_value(&[])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::OptimizerConfig;
    use tch::Kind;

    /// Model 2.1 without dropout, so that nothing in a step draws from libtorch's global
    /// generator, which the crate's other tests use from other threads.
    fn config() -> CnnConfig {
        CnnConfig {
            dropout: 0.0,
            ..CnnConfig::model_2_1()
        }
    }

    /// The fast backend's SGD (its step for `fc1`'s weight taken inside the layer's backward
    /// node) trains model 2.1 as libtorch's SGD on the same function does.
    #[test]
    fn the_fast_sgd_step_is_libtorchs_sgd_step() {
        for wd in [0.0, 0.01] {
            let train = TrainConfig {
                learning_rate: 0.1,
                l2_decay: wd,
                ..TrainConfig::default()
            };
            let (vs_a, net_a, mut ours) = for_training(&config(), &train, Device::Cpu);
            let described = net_a.backend().describe();
            assert!(described.ends_with("backward on"), "{described}");
            // The same starting weights, copied rather than re-drawn, on the same ops but
            // for the optimiser: libtorch's SGD on every parameter.
            let mut vs_b = nn::VarStore::new(Device::Cpu);
            let net_b = Cnn::new(&vs_b.root(), &config());
            vs_b.copy(&vs_a).unwrap();
            let start = vs_a.variables()["fc1.weight"].copy();
            let x = Tensor::rand([8, 6912], (Kind::Float, Device::Cpu));
            let y = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 5, 0, 1]);
            let mut sgd = nn::Sgd {
                wd,
                ..Default::default()
            }
            .build(&vs_b, 0.1)
            .unwrap();
            for _ in 0..3 {
                let loss_a = train_batch(&x, &y, &net_a, ours.as_mut());
                let loss_b = net_b.forward_t(&x, true).g_nll_loss::<Tensor>(
                    &y,
                    None,
                    tch::Reduction::Mean,
                    -100,
                );
                sgd.backward_step(&loss_b);
                assert!((loss_a - loss_b).abs().double_value(&[]) < 1e-5);
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

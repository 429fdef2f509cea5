//! Training as the homework skeleton does it, with the figures it logs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};
use torchkit::trainer::{self, Epoch, Learner, Verdict};

use crate::dataset::{Dataset, Split, CLASSES};
use crate::model::{Cnn, CnnConfig};
pub use summaries::q2::EpochRow;

/// Optimiser choice (`--optimizer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// Plain SGD: no momentum.
    Sgd,
    /// Adam with PyTorch's defaults.
    Adam,
}

/// Training options (the skeleton's defaults).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TrainConfig {
    /// Epochs (40).
    pub epochs: usize,
    /// Batch size (8), shuffled every epoch.
    pub batch_size: usize,
    /// Learning rate.
    pub learning_rate: f64,
    /// L2 weight decay (0).
    pub l2_decay: f64,
    /// SGD or Adam.
    pub optimizer: Optimizer,
    /// Examples per forward pass when evaluating.
    pub eval_chunk: usize,
    /// The seed the caller seeded libtorch with.
    pub seed: u64,
    /// Follow the skeleton's code op for op and draw for draw: its DataLoader's draws,
    /// libtorch's SGD on every parameter (no fused update), the dev split in one forward
    /// pass, float32 loss means. The model must run on NCHW memory.
    pub exact: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 40,
            batch_size: 8,
            learning_rate: 0.01,
            l2_decay: 0.0,
            optimizer: Optimizer::Sgd,
            eval_chunk: 1000,
            seed: 42,
            exact: false,
        }
    }
}

/// Loss and accuracy of a split in eval mode.
pub fn evaluate(net: &Cnn, split: &Split, chunk: usize) -> (f64, f64, Vec<i64>) {
    tch::no_grad(|| {
        let n = split.len() as i64;
        let (mut loss_sum, mut preds) = (0.0, Vec::with_capacity(n as usize));
        // A split left on the CPU while the model is on a GPU travels chunk by chunk.
        let device = net.device();
        let mut start = 0;
        while start < n {
            let len = (chunk as i64).min(n - start);
            let x = split.images.narrow(0, start, len).to_device(device);
            let out = net.forward_t(&x, false);
            let y = split.labels.narrow(0, start, len).to_device(device);
            loss_sum += out
                .g_nll_loss::<Tensor>(&y, None, tch::Reduction::Sum, -100)
                .double_value(&[]);
            preds.extend(Vec::<i64>::try_from(out.argmax(-1, false)).expect("int64"));
            start += len;
        }
        let labels = Vec::<i64>::try_from(&split.labels).expect("int64");
        (
            loss_sum / n as f64,
            metrics::accuracy(&preds, &labels),
            preds,
        )
    })
}

/// The skeleton's `evaluate`: the whole split in one forward pass in eval mode, the mean
/// NLL as one float32 reduction, the accuracy, and the predictions.
pub fn evaluate_whole(net: &Cnn, split: &Split) -> (f64, f64, Vec<i64>) {
    tch::no_grad(|| {
        let device = net.device();
        let scores = net.forward_t(&split.images.to_device(device), false);
        let labels = split.labels.to_device(device);
        let loss = scores
            .g_nll_loss::<Tensor>(&labels, None, tch::Reduction::Mean, -100)
            .double_value(&[]);
        let preds = scores.argmax(-1, false);
        let correct = preds.eq_tensor(&labels).sum(Kind::Int64).int64_value(&[]);
        let preds = Vec::<i64>::try_from(preds.to_device(Device::Cpu)).expect("int64");
        (loss, correct as f64 / split.len() as f64, preds)
    })
}

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
                    &data.train.images.index_select(0, &idx),
                    &data.train.labels.index_select(0, &idx),
                )
                .double_value(&[])
        })
        .collect()
}

/// A trained model and what training measured.
pub struct Trained {
    /// Parameters (and BN buffers).
    pub vs: nn::VarStore,
    /// The network.
    pub net: Cnn,
    /// Per-epoch figures.
    pub epochs: Vec<EpochRow>,
    /// The epochs after which the run was interrupted and (exactly) resumed.
    pub resumed_after_epochs: Vec<usize>,
    /// Training seconds, over every process that worked on the run.
    pub seconds: f64,
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
        Self(if config.optimizer == Optimizer::Adam {
            Update::Adam(torchkit::optim::Adam::new(vs, lr, weight_decay))
        } else if config.exact || fc1_weight.numel() < 1_000_000 {
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
                    for (p, g) in others.iter_mut().zip(&grads[1..]) {
                        if wd == 0.0 {
                            let _ = p.g_sub_(&(g * lr));
                        } else {
                            let _ = p.g_sub_(&((g + &*p * wd) * lr));
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

    /// Our Adam, when that is the update: its state is what a resume point saves and restores.
    fn adam(&mut self) -> Option<&mut torchkit::optim::Adam> {
        match &mut self.0 {
            Update::Adam(a) => Some(a),
            _ => None,
        }
    }
}

/// The running loss sums the skeleton's "Training loss" (the mean over every batch so
/// far) needs; in exact mode every loss, as the skeleton takes a float32 mean of them all.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LossSums {
    total: f64,
    count: usize,
    #[serde(default)]
    all: Vec<f32>,
}

/// Where a run writes: the checkpoint of the final weights and the per-epoch CSV (its
/// resume files go beside the checkpoint).
#[derive(Debug, Clone)]
pub struct RunFiles {
    /// The final weights (safetensors), published after every epoch.
    pub checkpoint: PathBuf,
    /// The per-epoch CSV.
    pub log_csv: PathBuf,
    /// Replace a finished run or a checkpoint of other options instead of refusing.
    pub replace: bool,
}

/// The skeleton's epoch: shuffled batches of SGD (or Adam) steps, then the dev split.
struct Skeleton<'a> {
    vs: nn::VarStore,
    net: Cnn,
    stepper: Stepper,
    train: Split,
    dev: Split,
    config: &'a TrainConfig,
}

impl Learner for Skeleton<'_> {
    type Row = EpochRow;
    type Carry = LossSums;

    fn var_store(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    fn optimizer_state(&self) -> Vec<(String, Tensor)> {
        match &self.stepper.0 {
            Update::Adam(a) => a.state(),
            _ => Vec::new(),
        }
    }

    fn load_optimizer_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        match self.stepper.adam() {
            Some(a) => a.load_state(state),
            None => Ok(()),
        }
    }

    fn epoch(&mut self, sums: &mut LossSums, ctx: &mut Epoch) -> Result<Verdict<EpochRow>> {
        let t = Instant::now();
        println!("\nTraining epoch {}", ctx.number);
        let n = self.train.len();
        let device = self.train.images.device();
        // Drawn as the skeleton's DataLoader draws it, in both modes (it costs nothing, and
        // the batches are the skeleton's).
        let order = Tensor::from_slice(&torchkit::rng::loader_order(n)).to_device(device);
        let size = self.config.batch_size;
        let batches = n.div_ceil(size);
        ctx.batches(batches);
        // Losses stay on the device and are summed once per epoch: no per-batch host sync.
        let mut losses = Vec::with_capacity(batches);
        for b in 0..batches {
            let idx = order.narrow(0, (b * size) as i64, size.min(n - b * size) as i64);
            losses.push(self.stepper.step(
                &self.net,
                &self.train.images.index_select(0, &idx),
                &self.train.labels.index_select(0, &idx),
            ));
            ctx.batch_done(None);
        }
        let epoch_losses = Vec::<f64>::try_from(Tensor::stack(&losses, 0).to_kind(Kind::Double))?;
        for (b, &l) in epoch_losses.iter().enumerate() {
            ctx.check_finite(&format!("batch {} of {batches}", b + 1), l)?;
        }
        let epoch_sum: f64 = epoch_losses.iter().sum();
        sums.total += epoch_sum;
        sums.count += epoch_losses.len();
        let (cumulative, (val_loss, val_accuracy)) = if self.config.exact {
            // `torch.tensor(train_losses).mean()`: a float32 mean of every loss so far.
            sums.all.extend(epoch_losses.iter().map(|&l| l as f32));
            let mean = Tensor::from_slice(&sums.all)
                .mean(Kind::Float)
                .double_value(&[]);
            let (loss, acc, _) = evaluate_whole(&self.net, &self.dev);
            (mean, (loss, acc))
        } else {
            let (loss, acc, _) = evaluate(&self.net, &self.dev, self.config.eval_chunk);
            (sums.total / sums.count as f64, (loss, acc))
        };
        ctx.check_finite("the validation loss", val_loss)?;
        let row = EpochRow {
            epoch: ctx.number,
            train_loss_cumulative: cumulative,
            train_loss_epoch: epoch_sum / epoch_losses.len() as f64,
            val_loss,
            val_accuracy,
            seconds: t.elapsed().as_secs_f64(),
        };
        println!("Training loss: {:.4}", row.train_loss_cumulative);
        println!("Valid loss: {:.4}", row.val_loss);
        println!("Valid acc: {:.4}", row.val_accuracy);
        eprintln!("epoch {}: {:.1} s", ctx.number, row.seconds);
        Ok(Verdict { row, keep: true })
    }

    fn save_checkpoint(&self, path: &Path) -> Result<()> {
        torchkit::checkpoint::save(&self.vs, &[], path)
    }

    fn load_checkpoint(&mut self, path: &Path) -> Result<()> {
        torchkit::checkpoint::load(&mut self.vs, &[], path)
    }
}

/// Trains a fresh model (seeded by the caller through `torchkit::rng::seed`), evaluating
/// the dev split after every epoch and printing the skeleton's lines; the final weights are
/// the checkpoint. An interrupted run continues after its last finished epoch exactly; a
/// finished one is reused (see `torchkit::trainer`).
pub fn train(
    model: &CnnConfig,
    config: &TrainConfig,
    data: &Dataset,
    files: &RunFiles,
    device: Device,
) -> Result<Trained> {
    // Drawn on the CPU and moved, as the skeleton's `CNN(...).to(device)`.
    let (vs, net) = torchkit::init::on_cpu_then_to(device, |root| Cnn::new(root, model));
    let stepper = Stepper::new(&vs, &net, config);
    let run = trainer::Run {
        stem: files.checkpoint.with_extension(""),
        checkpoint: files.checkpoint.clone(),
        log_csv: files.log_csv.clone(),
        options: format!("{config:?} {model:?}"),
        data_sha256: data.sha256.clone(),
        epochs: config.epochs,
        replace: files.replace,
        device,
        extra_outputs: Vec::new(),
        fixed_threads: config.exact,
    };
    // Both splits move to the device once, not once per epoch.
    let mut skeleton = Skeleton {
        vs,
        net,
        stepper,
        train: data.train.to_device(device),
        dev: data.val.to_device(device),
        config,
    };
    let fitted = trainer::fit(&mut skeleton, &run, LossSums::default())?;
    Ok(Trained {
        vs: skeleton.vs,
        net: skeleton.net,
        epochs: fitted.rows,
        resumed_after_epochs: fitted.resumed_after_epochs,
        seconds: fitted.seconds,
    })
}

/// Confusion matrix of predictions on a split.
pub fn confusion(preds: &[i64], split: &Split) -> metrics::ConfusionMatrix {
    let labels = Vec::<i64>::try_from(&split.labels).expect("int64");
    metrics::ConfusionMatrix::new(CLASSES as usize, preds, &labels)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            for _ in 0..3 {
                let loss_a = ours.step(&net_a, &x, &y);
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

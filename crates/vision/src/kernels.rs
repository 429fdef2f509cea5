//! The CNN's backend, chosen once when the model is built. The model (`model.rs`) reads as
//! the skeleton's `ConvBlock` and `CNN`, op for op; where it says "convolve", "the block's
//! tail" (batch norm, max-pool, ReLU, dropout), "a linear layer" or "dropout", the
//! [`Backend`] picks the ops, from a choice made here and never asked again:
//!
//! * [`Kernels::Reference`] — the skeleton's ops under autograd on NCHW memory, with
//!   PyTorch's dropout draws: what `--exact` runs, the homework's printed digits.
//! * [`Kernels::Fast`] — channels-last memory (oneDNN's fast layout on the CPU), fast
//!   dropout draws ([`torchkit::fast::dropout`], the same distribution), one-pass Adam, and,
//!   where they apply, the pieces of [`crate::fast`]: the fused block tail, the few-rows
//!   linear, and SGD's step for a large layer taken inside its backward node. Whether a
//!   piece applies (device, dtype, layout, pooling, optimiser, layer size) is decided in
//!   [`Backend::new`] / [`Backend::training`] and said by [`Backend::describe`].
//!
//! The backend also builds the training's optimiser ([`Backend::optimizer`]), so that the
//! step reads as the skeleton's `train_batch`: `zero_grad → forward → loss → backward →
//! step`, whatever runs underneath.

use serde::Serialize;
use tch::nn;
use tch::{Device, Kind, Tensor};
use torchkit::optim::{Adam, Sgd};

use crate::config::{Optimizer, TrainConfig};
use crate::fast::linear::SgdStep;
use crate::fast::{linear, norm_pool};

/// Which ops run the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Kernels {
    /// The skeleton's ops, NCHW, PyTorch's dropout draws (`--exact`).
    Reference,
    /// Fast ops: channels-last memory unless `--nchw`, and the fused kernels where they apply
    /// (`fused: false` keeps libtorch's ops, for benches).
    Fast {
        /// Channels-last (NHWC) memory for the blocks.
        channels_last: bool,
        /// The fused block tail and the few-rows linear.
        fused: bool,
    },
}

impl Kernels {
    /// The backend a run's options ask for: the reference ops for `--exact`, else the fast
    /// ones (on NCHW memory with `--nchw`).
    pub fn for_run(exact: bool, nchw: bool) -> Self {
        if exact {
            Kernels::Reference
        } else {
            Kernels::Fast {
                channels_last: !nchw,
                fused: true,
            }
        }
    }
}

/// The backend resolved for one model on one device: each piece's choice, made once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backend {
    /// The blocks compute on channels-last memory.
    channels_last: bool,
    /// Dropout masks drawn as PyTorch's CPU dropout draws them; the validation split in one
    /// forward pass; Adam op by op (the reference).
    pytorch_draws: bool,
    /// The block tail is [`norm_pool`]'s fused node (which adds the convolution's bias).
    fused_tail: bool,
    /// Linear layers of up to [`linear::FEW_ROWS`] rows go through [`linear::linear`].
    fast_linear: bool,
    /// SGD's step for layers of at least [`SgdStep::MIN_WEIGHTS`] weights, taken inside
    /// their backward node ([`linear::sgd_linear`]).
    sgd_in_backward: Option<SgdStep>,
}

impl Backend {
    /// The backend `kernels` gives a model with (or without) max-pooling on `device`, for
    /// forward passes. The fused pieces are float32 CPU code; the fused tail also needs
    /// channels-last memory and max-pooling (it pools).
    pub fn new(kernels: Kernels, maxpool: bool, device: Device) -> Self {
        match kernels {
            Kernels::Reference => Backend {
                channels_last: false,
                pytorch_draws: true,
                fused_tail: false,
                fast_linear: false,
                sgd_in_backward: None,
            },
            Kernels::Fast {
                channels_last,
                fused,
            } => {
                let cpu = fused && device == Device::Cpu;
                Backend {
                    channels_last,
                    pytorch_draws: false,
                    fused_tail: cpu && channels_last && maxpool,
                    fast_linear: cpu,
                    sgd_in_backward: None,
                }
            }
        }
    }

    /// The backend for training with `config`: [`Backend::new`]'s, and with SGD on the fast
    /// linear, SGD's step for a large layer inside its backward node.
    pub fn training(kernels: Kernels, maxpool: bool, device: Device, config: &TrainConfig) -> Self {
        let backend = Self::new(kernels, maxpool, device);
        Backend {
            sgd_in_backward: (backend.fast_linear && config.optimizer == Optimizer::Sgd).then_some(
                SgdStep {
                    lr: config.learning_rate,
                    weight_decay: config.l2_decay,
                },
            ),
            ..backend
        }
    }

    /// The optimiser `config` names for the parameters in `vs`: libtorch's SGD (which skips
    /// a weight this backend's linear node updates itself), or Adam, op by op for the
    /// reference and in one pass per parameter otherwise.
    pub fn optimizer(
        &self,
        vs: &nn::VarStore,
        config: &TrainConfig,
    ) -> Box<dyn torchkit::optim::Optimizer> {
        let (lr, wd) = (config.learning_rate, config.l2_decay);
        match config.optimizer {
            Optimizer::Sgd => {
                debug_assert!(self
                    .sgd_in_backward
                    .is_none_or(|s| s.lr == lr && s.weight_decay == wd));
                Box::new(Sgd::new(vs, lr, wd).expect("SGD over the store's variables"))
            }
            Optimizer::Adam if self.pytorch_draws => Box::new(Adam::new(vs, lr, wd)),
            Optimizer::Adam => Box::new(Adam::one_pass(vs, lr, wd)),
        }
    }

    /// Whether training keeps one thread count throughout (the reference's digits depend on
    /// it; the fast backend may take the cores other trainings free).
    pub fn fixed_threads(&self) -> bool {
        self.pytorch_draws
    }

    /// Whether a split is evaluated as the skeleton does, in one forward pass (the
    /// reference), rather than in bounded chunks (`crate::evaluate::evaluate`).
    pub fn evaluates_whole_splits(&self) -> bool {
        self.pytorch_draws
    }

    /// What runs, in words (for logs and tests).
    pub fn describe(&self) -> String {
        if self.pytorch_draws {
            return "reference ops (NCHW, PyTorch's dropout draws)".into();
        }
        let on = |b: bool| if b { "on" } else { "off" };
        format!(
            "fast ops: {} memory, fast dropout draws, one-pass Adam, fused block tail {}, few-rows linear (≤ {} rows) {}, SGD inside large layers' backward {}",
            if self.channels_last {
                "channels-last"
            } else {
                "NCHW"
            },
            on(self.fused_tail),
            linear::FEW_ROWS,
            on(self.fast_linear),
            on(self.sgd_in_backward.is_some()),
        )
    }

    /// The network's input (N, 3, H, W) in the blocks' memory layout.
    pub fn input(&self, x: Tensor) -> Tensor {
        if self.channels_last {
            channels_last(&x)
        } else {
            x
        }
    }

    /// A convolution weight in the layout the blocks compute in: otherwise every step would
    /// convert it twice and its gradient back (about 0.09 ms of a 2.2 step). The same values.
    pub fn place_weight(&self, weight: &mut Tensor) {
        if self.channels_last {
            tch::no_grad(|| weight.set_data(&channels_last(weight)));
        }
    }

    /// The block's 3×3 convolution (stride 1, padding 1); the fused tail adds the bias.
    pub fn conv(&self, x: &Tensor, weight: &Tensor, bias: &Tensor) -> Tensor {
        let bias = (!self.fused_tail).then_some(bias);
        x.conv2d(weight, bias, [1, 1], [1, 1], [1, 1], 1)
    }

    /// The block after its convolution: batch norm, max-pool, ReLU, dropout.
    pub fn block_tail(&self, x: &Tensor, tail: &Tail, train: bool) -> Tensor {
        if self.fused_tail {
            let noise = (train && tail.dropout > 0.0 && tail.dropout < 1.0)
                .then(|| norm_pool::dropout_noise(x, tail.dropout));
            return norm_pool::norm_pool(x, Some(tail.bias), tail.bn, train, noise.as_ref());
        }
        block_tail_slow(x, tail, train, self)
    }

    /// A linear layer (`train`: in a training step). The few-rows node takes inputs of up to
    /// [`linear::FEW_ROWS`] rows (a training batch, an evaluation chunk), where it is the
    /// faster product; a training step's large layers take SGD's step inside it.
    pub fn linear(&self, x: &Tensor, layer: &nn::Linear, train: bool) -> Tensor {
        let rows = x.size()[0];
        if !(self.fast_linear && x.kind() == Kind::Float && rows <= linear::FEW_ROWS) {
            return linear::linear_slow(x, layer);
        }
        match self.sgd_in_backward {
            Some(step) if train && layer.ws.numel() >= SgdStep::MIN_WEIGHTS => {
                linear::sgd_linear(x, layer, step)
            }
            _ => linear::linear(x, layer),
        }
    }

    /// Element-wise dropout with probability `p` (training only).
    pub fn dropout(&self, x: &Tensor, p: f64, train: bool) -> Tensor {
        if self.pytorch_draws {
            torchkit::rng::dropout(x, p, train)
        } else {
            torchkit::fast::dropout(x, p, train)
        }
    }
}

/// What a block's tail needs besides its input.
pub struct Tail<'a> {
    /// The convolution's bias (already added unless the tail is fused).
    pub bias: &'a Tensor,
    /// Batch norm (model 2.2).
    pub bn: Option<&'a nn::BatchNorm>,
    /// 2×2 max-pooling.
    pub maxpool: bool,
    /// Dropout probability.
    pub dropout: f64,
}

/// The block tail from libtorch's ops, as the skeleton writes it (the reference twin of
/// the fused node).
pub fn block_tail_slow(x: &Tensor, tail: &Tail, train: bool, backend: &Backend) -> Tensor {
    let mut x = match tail.bn {
        Some(bn) => x.apply_t(bn, train),
        None => x.shallow_clone(),
    };
    // Max-pooling before the ReLU: the same numbers forward and backward (max and ReLU
    // commute, and both route a gradient to the same element), on a quarter of the data.
    if tail.maxpool {
        x = x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
    }
    backend.dropout(&x.relu(), tail.dropout, train)
}

/// `t` (N, C, H, W) with channels-last (NHWC) strides: kernels follow a tensor's layout.
fn channels_last(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_piece_is_chosen_once_from_the_run_and_the_device() {
        let reference = Backend::new(Kernels::for_run(true, false), true, Device::Cpu);
        assert_eq!(
            reference.describe(),
            "reference ops (NCHW, PyTorch's dropout draws)"
        );
        let fast = Backend::new(Kernels::for_run(false, false), true, Device::Cpu);
        assert!(fast.fused_tail && fast.channels_last && fast.fast_linear);
        assert!(
            fast.sgd_in_backward.is_none(),
            "no optimiser for forward passes"
        );
        // The fused tail pools, and runs on the CPU on channels-last memory only.
        for (kernels, maxpool, device) in [
            (Kernels::for_run(false, true), true, Device::Cpu),
            (Kernels::for_run(false, false), false, Device::Cpu),
            (Kernels::for_run(false, false), true, Device::Cuda(0)),
        ] {
            let b = Backend::new(kernels, maxpool, device);
            assert!(!b.fused_tail, "{kernels:?} {maxpool} {device:?}");
            assert!(b.describe().contains("fused block tail off"));
        }
        // SGD inside the backward node: the fast CPU backend training with SGD only.
        let sgd = TrainConfig::default();
        let adam = TrainConfig {
            optimizer: Optimizer::Adam,
            ..TrainConfig::default()
        };
        let trains = |kernels, device, config| {
            Backend::training(kernels, true, device, config).sgd_in_backward
        };
        let fast_kernels = Kernels::for_run(false, false);
        assert_eq!(
            trains(fast_kernels, Device::Cpu, &sgd),
            Some(SgdStep {
                lr: 0.01,
                weight_decay: 0.0
            })
        );
        assert_eq!(trains(fast_kernels, Device::Cpu, &adam), None);
        assert_eq!(trains(fast_kernels, Device::Cuda(0), &sgd), None);
        assert_eq!(trains(Kernels::Reference, Device::Cpu, &sgd), None);
        assert!(Backend::training(fast_kernels, true, Device::Cpu, &sgd)
            .describe()
            .ends_with("SGD inside large layers' backward on"));
    }
}

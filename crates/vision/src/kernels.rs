//! The CNN's backend, chosen once when the model is built. The model (`model.rs`) reads as
//! the skeleton's `ConvBlock` and `CNN`, op for op; where it says "convolve", "the block's
//! tail" (batch norm, max-pool, ReLU, dropout), "a linear layer" or "dropout", the
//! [`Backend`] picks the ops, from a choice made here and never asked again:
//!
//! * [`Kernels::Reference`] — the skeleton's ops under autograd on NCHW memory, with
//!   PyTorch's dropout draws: what `--exact` runs, the homework's printed digits.
//! * [`Kernels::Fast`] — channels-last memory (oneDNN's fast layout on the CPU), fast
//!   dropout draws ([`torchkit::rng::fast_dropout`], the same distribution), and, where they
//!   apply, the fused block tail ([`crate::norm_pool`], twin of [`block_tail_slow`]) and the
//!   few-rows linear ([`crate::linear`]). Whether a fused piece applies (device, layout,
//!   pooling) is decided in [`Backend::new`] and said by [`Backend::describe`].

use serde::Serialize;
use tch::nn;
use tch::{Device, Tensor};

use crate::{linear, norm_pool};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    /// The blocks compute on channels-last memory.
    channels_last: bool,
    /// Dropout masks drawn as PyTorch's CPU dropout draws them.
    pytorch_draws: bool,
    /// The block tail is [`norm_pool`]'s fused node (which adds the convolution's bias).
    fused_tail: bool,
    /// Linear layers of a training batch go through [`linear::linear`].
    fast_linear: bool,
}

impl Backend {
    /// The backend `kernels` gives a model with (or without) max-pooling on `device`. The
    /// fused tail needs channels-last float32 on the CPU and max-pooling (it pools).
    pub fn new(kernels: Kernels, maxpool: bool, device: Device) -> Self {
        match kernels {
            Kernels::Reference => Backend {
                channels_last: false,
                pytorch_draws: true,
                fused_tail: false,
                fast_linear: false,
            },
            Kernels::Fast {
                channels_last,
                fused,
            } => Backend {
                channels_last,
                pytorch_draws: false,
                fused_tail: fused && channels_last && maxpool && device == Device::Cpu,
                fast_linear: fused,
            },
        }
    }

    /// Whether these are the reference ops (`--exact`): evaluation then follows the skeleton
    /// too (`crate::evaluate::evaluate`).
    pub fn is_reference(&self) -> bool {
        self.pytorch_draws
    }

    /// Whether the optimisers may take their fused forms (`crate::step`: SGD fused into a
    /// large first linear layer, Adam in one pass): the fast ops' other rounding. The
    /// reference keeps libtorch's SGD and Adam op by op.
    pub fn fused_optimizers(&self) -> bool {
        !self.pytorch_draws
    }

    /// What runs, in words (for logs and tests).
    pub fn describe(&self) -> String {
        if self.pytorch_draws {
            return "reference ops (NCHW, PyTorch's dropout draws)".into();
        }
        format!(
            "fast ops: {} memory, fast dropout draws, fused block tail {}, few-rows linear {}",
            if self.channels_last {
                "channels-last"
            } else {
                "NCHW"
            },
            if self.fused_tail { "on" } else { "off" },
            if self.fast_linear { "on" } else { "off" },
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

    /// A linear layer.
    pub fn linear(&self, x: &Tensor, layer: &nn::Linear) -> Tensor {
        if self.fast_linear {
            linear::linear(x, layer)
        } else {
            x.apply(layer)
        }
    }

    /// Element-wise dropout with probability `p` (training only).
    pub fn dropout(&self, x: &Tensor, p: f64, train: bool) -> Tensor {
        if self.pytorch_draws {
            torchkit::rng::dropout(x, p, train)
        } else {
            torchkit::rng::fast_dropout(x, p, train)
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
    }
}

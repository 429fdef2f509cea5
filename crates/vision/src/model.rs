//! The homework's CNNs: three `ConvBlock`s (32, 64, 128 channels) and an MLP head.
//!
//! * 2.1 (`batch_norm = false`): flatten (128·6·6) → 1024 → ReLU → dropout → 512 → ReLU → 6.
//! * 2.2 (`batch_norm = true`): BN2d in every block, global average pooling (128) → 1024 →
//!   ReLU → BN1d → dropout → 512 → ReLU → 6.
//!
//! Outputs are log-probabilities. Parameters are created in PyTorch's module order with
//! PyTorch's initialisation (`torchkit::layers`).

use serde::Serialize;
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

use crate::dataset::{CLASSES, SIDE};
use crate::kernels::{Backend, Kernels, Tail};

/// The skeleton's switches, and the backend that runs them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CnnConfig {
    /// Dropout probability (0.1), element-wise.
    pub dropout: f64,
    /// 2×2 max-pooling in every block (on by default; `--no-maxpool` turns it off).
    pub maxpool: bool,
    /// Model 2.2: batch norm in the blocks and the MLP, and global average pooling.
    pub batch_norm: bool,
    /// Which ops run the model ([`crate::kernels`]): the reference ops for `--exact`, else
    /// the fast ones.
    pub kernels: Kernels,
}

impl CnnConfig {
    /// Model 2.1.
    pub fn model_2_1() -> Self {
        Self {
            dropout: 0.1,
            maxpool: true,
            batch_norm: false,
            kernels: Kernels::for_run(false, false),
        }
    }

    /// Model 2.2.
    pub fn model_2_2() -> Self {
        Self {
            batch_norm: true,
            ..Self::model_2_1()
        }
    }
}

/// Conv 3×3 (stride 1, padding 1) → optional BN2d → ReLU → optional max-pool 2×2 → dropout.
#[derive(Debug)]
pub struct ConvBlock {
    weight: Tensor,
    bias: Tensor,
    bnorm: Option<nn::BatchNorm>,
    maxpool: bool,
    dropout: f64,
    backend: Backend,
}

impl ConvBlock {
    /// A block from `input` to `output` channels under `path` (`conv`, `bnorm`), run by
    /// `backend`.
    pub fn new(
        path: &nn::Path,
        input: i64,
        output: i64,
        config: &CnnConfig,
        backend: Backend,
    ) -> Self {
        let (mut weight, bias) = torchkit::layers::conv2d(&(path / "conv"), input, output, 3);
        backend.place_weight(&mut weight);
        let bnorm = config
            .batch_norm
            .then(|| torchkit::layers::batch_norm2d(&(path / "bnorm"), output));
        Self {
            weight,
            bias,
            bnorm,
            maxpool: config.maxpool,
            dropout: config.dropout,
            backend,
        }
    }
}

impl ModuleT for ConvBlock {
    /// The skeleton's `conv → bnorm → relu → maxpool → dropout`: the convolution, then the
    /// block's tail as the backend computes it (libtorch's ops, `kernels::block_tail_slow`,
    /// or one fused node).
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let x = self.backend.conv(xs, &self.weight, &self.bias);
        let tail = Tail {
            bias: &self.bias,
            bn: self.bnorm.as_ref(),
            maxpool: self.maxpool,
            dropout: self.dropout,
        };
        self.backend.block_tail(&x, &tail, train)
    }
}

/// The whole network.
#[derive(Debug)]
pub struct Cnn {
    conv_blocks: Vec<ConvBlock>,
    fc1: nn::Linear,
    fc2: nn::Linear,
    fc_out: nn::Linear,
    bnorm: Option<nn::BatchNorm>,
    config: CnnConfig,
    backend: Backend,
}

impl Cnn {
    /// Creates the parameters under `root` with the homework's state_dict names and in its
    /// construction order: `conv_blocks.{0,1,2}.{conv,bnorm}`, then `fc1`, `fc2`, `fc_out`
    /// and `bnorm`; run by the backend `config.kernels` gives on `root`'s device.
    pub fn new(root: &nn::Path, config: &CnnConfig) -> Self {
        Self::with_backend(
            root,
            config,
            Backend::new(config.kernels, config.maxpool, root.device()),
        )
    }

    /// [`Cnn::new`] run by `backend` (a training's, [`Backend::training`], or one for the
    /// device the model will move to).
    pub fn with_backend(root: &nn::Path, config: &CnnConfig, backend: Backend) -> Self {
        let channels = [3, 32, 64, 128];
        let conv_blocks = (0..3)
            .map(|i| {
                ConvBlock::new(
                    &(root / "conv_blocks" / i),
                    channels[i],
                    channels[i + 1],
                    config,
                    backend,
                )
            })
            .collect();
        let side = if config.maxpool { SIDE / 8 } else { SIDE };
        let in_features = if config.batch_norm {
            128
        } else {
            128 * side * side
        };
        let fc1 = torchkit::layers::linear(&(root / "fc1"), in_features, 1024, true);
        let fc2 = torchkit::layers::linear(&(root / "fc2"), 1024, 512, true);
        let fc_out = torchkit::layers::linear(&(root / "fc_out"), 512, CLASSES, true);
        let bnorm = config
            .batch_norm
            .then(|| torchkit::layers::batch_norm1d(&(root / "bnorm"), 1024));
        Self {
            conv_blocks,
            fc1,
            fc2,
            fc_out,
            bnorm,
            config: *config,
            backend,
        }
    }

    /// The backend that runs it.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Where the parameters live.
    pub fn device(&self) -> Device {
        self.fc_out.ws.device()
    }
}

impl ModuleT for Cnn {
    /// `xs`: (B, 3, 48, 48) (or (B, 6912), reshaped as the skeleton does); returns (B, 6)
    /// log-probabilities.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = self.backend.input(xs.view([-1, 3, SIDE, SIDE]));
        for conv in &self.conv_blocks {
            x = conv.forward_t(&x, train);
        }
        // Global average pooling (2.2), else the last block's output flattened.
        x = if self.config.batch_norm {
            x.mean_dim([2i64, 3].as_slice(), false, x.kind())
        } else {
            x.flatten(1, -1)
        };
        x = self.backend.linear(&x, &self.fc1, train).relu();
        if let Some(bnorm) = &self.bnorm {
            x = x.apply_t(bnorm, train);
        }
        x = self.backend.dropout(&x, self.config.dropout, train);
        x = self.backend.linear(&x, &self.fc2, train).relu();
        x = x.apply(&self.fc_out);
        x.log_softmax(1, x.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn build(config: CnnConfig) -> (nn::VarStore, Cnn) {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Cnn::new(&vs.root(), &config);
        (vs, net)
    }

    #[test]
    fn parameter_counts_match_the_homework() {
        assert_eq!(
            torchkit::layers::trainable_parameters(&build(CnnConfig::model_2_1()).0),
            5_340_742
        );
        assert_eq!(
            torchkit::layers::trainable_parameters(&build(CnnConfig::model_2_2()).0),
            755_718
        );
        // Running statistics are buffers: in the store, not trainable.
        let (vs, _) = build(CnnConfig::model_2_2());
        assert!(vs.variables().contains_key("bnorm.running_var"));
    }

    #[test]
    fn shapes_through_every_layer() {
        let (_, net) = build(CnnConfig::model_2_1());
        let mut x = Tensor::rand([2, 3, 48, 48], (Kind::Float, Device::Cpu));
        for (b, side) in net.conv_blocks.iter().zip([24, 12, 6]) {
            x = b.forward_t(&x, false);
            assert_eq!(x.size()[2..], [side, side]);
        }
        assert_eq!(x.size(), [2, 128, 6, 6]);
        let out = net.forward_t(&Tensor::rand([2, 6912], (Kind::Float, Device::Cpu)), false);
        assert_eq!(out.size(), [2, 6]);
        let sums = out.exp().sum_dim_intlist(-1, false, Kind::Float);
        assert!(
            (sums - 1.0).abs().max().double_value(&[]) < 1e-5,
            "log-softmax rows"
        );
        let (_, no_pool) = build(CnnConfig {
            maxpool: false,
            ..CnnConfig::model_2_2()
        });
        assert_eq!(
            no_pool
                .forward_t(
                    &Tensor::rand([2, 3, 48, 48], (Kind::Float, Device::Cpu)),
                    false
                )
                .size(),
            [2, 6]
        );
    }

    /// Every backend computes the same function on the same weights: the reference ops,
    /// NCHW and channels-last memory, with and without the fused kernels.
    #[test]
    fn every_backend_computes_the_same_function() {
        for base in [CnnConfig::model_2_1(), CnnConfig::model_2_2()] {
            tch::manual_seed(3);
            let (vs, fast) = build(base);
            let x = Tensor::rand([4, 6912], (Kind::Float, Device::Cpu));
            let want = fast.forward_t(&x, false);
            for kernels in [
                Kernels::Reference,
                Kernels::Fast {
                    channels_last: false,
                    fused: true,
                },
                Kernels::Fast {
                    channels_last: true,
                    fused: false,
                },
            ] {
                let (other_vs, other) = build(CnnConfig { kernels, ..base });
                tch::no_grad(|| {
                    let mine = vs.variables();
                    for (name, t) in other_vs.variables() {
                        t.shallow_clone().copy_(&mine[&name]);
                    }
                });
                let diff = (other.forward_t(&x, false) - &want)
                    .abs()
                    .max()
                    .double_value(&[]);
                assert!(diff < 1e-5, "{kernels:?}: {diff}");
            }
        }
    }

    #[test]
    fn batch_norm_uses_batch_stats_in_training_and_running_stats_in_eval() {
        tch::manual_seed(0);
        let (vs, net) = build(CnnConfig {
            dropout: 0.0,
            ..CnnConfig::model_2_2()
        });
        let x = Tensor::rand([16, 3, 48, 48], (Kind::Float, Device::Cpu)) * 3.0 + 1.0;
        let before = vs.variables()["conv_blocks.0.bnorm.running_mean"].copy();
        let eval1 = net.forward_t(&x, false);
        assert!(
            vs.variables()["conv_blocks.0.bnorm.running_mean"].equal(&before),
            "eval leaves running stats"
        );
        let train = net.forward_t(&x, true);
        let after = vs.variables()["conv_blocks.0.bnorm.running_mean"].copy();
        assert!(!after.equal(&before), "training updates running stats");
        assert!(
            (&train - &eval1).abs().max().double_value(&[]) > 1e-4,
            "batch vs running statistics differ"
        );
        // In eval mode a single example gives the same output alone as inside the batch.
        let one = net.forward_t(&x.narrow(0, 3, 1), false);
        assert!(
            (one - net.forward_t(&x, false).narrow(0, 3, 1))
                .abs()
                .max()
                .double_value(&[])
                < 1e-5
        );
    }
}

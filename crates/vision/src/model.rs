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
use crate::{linear, norm_pool};

/// The skeleton's switches.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CnnConfig {
    /// Dropout probability (0.1), element-wise.
    pub dropout: f64,
    /// 2×2 max-pooling in every block (on by default; `--no-maxpool` turns it off).
    pub maxpool: bool,
    /// Model 2.2: batch norm in the blocks and the MLP, and global average pooling.
    pub batch_norm: bool,
    /// Run the convolutional blocks on channels-last (NHWC) memory. Same maths and
    /// parameter layout; oneDNN's convolutions and the max-pool kernels are much faster on
    /// it on CPU (`cargo bench -p vision --bench train_step`). Off reproduces PyTorch's
    /// default NCHW kernels bit for bit.
    pub channels_last_memory: bool,
    /// Draw dropout masks as PyTorch's CPU dropout does (`--exact`), instead of
    /// [`torchkit::rng::fast_dropout`]'s stream: the same distribution, several times cheaper.
    pub pytorch_draws: bool,
    /// The fast modes' own kernels: each block's batch norm, max-pool, ReLU and dropout mask
    /// as one node ([`crate::norm_pool`]) where it applies (channels-last float32 on the CPU,
    /// max-pooling on, fast draws), and the MLP's linear layers by [`crate::linear`] for
    /// training batches. The same function, its sums in another order: off in exact mode.
    pub fused_kernels: bool,
}

impl CnnConfig {
    /// Model 2.1.
    pub fn model_2_1() -> Self {
        Self {
            dropout: 0.1,
            maxpool: true,
            batch_norm: false,
            channels_last_memory: true,
            pytorch_draws: false,
            fused_kernels: true,
        }
    }

    /// Model 2.2.
    pub fn model_2_2() -> Self {
        Self {
            dropout: 0.1,
            maxpool: true,
            batch_norm: true,
            channels_last_memory: true,
            pytorch_draws: false,
            fused_kernels: true,
        }
    }
}

fn dropout(x: &Tensor, p: f64, train: bool, pytorch_draws: bool) -> Tensor {
    if pytorch_draws {
        torchkit::rng::dropout(x, p, train)
    } else {
        torchkit::rng::fast_dropout(x, p, train)
    }
}

/// `t` (N, C, H, W) with channels-last (NHWC) strides: kernels follow a tensor's layout.
fn channels_last(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// Conv 3×3 (stride 1, padding 1) → optional BN2d → ReLU → optional max-pool 2×2 → dropout.
#[derive(Debug)]
pub struct ConvBlock {
    weight: Tensor,
    bias: Tensor,
    bn: Option<nn::BatchNorm>,
    maxpool: bool,
    dropout: f64,
    pytorch_draws: bool,
    fused_kernels: bool,
}

impl ConvBlock {
    /// A block from `input` to `output` channels under `path` (`conv`, `bn`).
    pub fn new(path: &nn::Path, input: i64, output: i64, config: &CnnConfig) -> Self {
        let (mut weight, bias) = torchkit::layers::conv2d(&(path / "conv"), input, output, 3);
        if config.channels_last_memory {
            // The layout oneDNN computes in: otherwise every step converts the weight twice
            // and its gradient back (and autograd copies that gradient again to match the
            // parameter), about 0.09 ms of a 2.2 step. The same values.
            tch::no_grad(|| weight.set_data(&channels_last(&weight)));
        }
        let bn = config
            .batch_norm
            .then(|| torchkit::layers::batch_norm2d(&(path / "bnorm"), output));
        Self {
            weight,
            bias,
            bn,
            maxpool: config.maxpool,
            dropout: config.dropout,
            pytorch_draws: config.pytorch_draws,
            fused_kernels: config.fused_kernels,
        }
    }
}

impl ModuleT for ConvBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        // The fused node adds the bias itself (see `norm_pool`), so the convolution then
        // runs without one; where the node turns out not to apply, the bias is added here.
        let fused = self.fused_kernels && self.maxpool && !self.pytorch_draws;
        let bias = (!fused).then_some(&self.bias);
        let x = xs.conv2d(&self.weight, bias, [1, 1], [1, 1], [1, 1], 1);
        if fused && norm_pool::applies(&x) {
            let noise = (train && self.dropout > 0.0 && self.dropout < 1.0)
                .then(|| norm_pool::dropout_noise(&x, self.dropout));
            return norm_pool::norm_pool(
                &x,
                Some(&self.bias),
                self.bn.as_ref(),
                train,
                noise.as_ref(),
            );
        }
        let x = if fused {
            x + self.bias.view([1, -1, 1, 1])
        } else {
            x
        };
        let mut x = match &self.bn {
            Some(bn) => x.apply_t(bn, train),
            None => x,
        };
        // Max-pooling before the ReLU: the same numbers forward and backward (max and ReLU
        // commute, and both route a gradient to the same element), on a quarter of the data.
        if self.maxpool {
            x = x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
        }
        x = x.relu();
        dropout(&x, self.dropout, train, self.pytorch_draws)
    }
}

/// The whole network.
#[derive(Debug)]
pub struct Cnn {
    blocks: Vec<ConvBlock>,
    fc1: nn::Linear,
    bn: Option<nn::BatchNorm>,
    fc2: nn::Linear,
    out: nn::Linear,
    config: CnnConfig,
}

impl Cnn {
    /// Creates the parameters under `root` with the homework's state_dict names and in its
    /// construction order: `conv_blocks.{0,1,2}.{conv,bnorm}`, then `fc1`, `fc2`, `fc_out`
    /// and `bnorm`.
    pub fn new(root: &nn::Path, config: &CnnConfig) -> Self {
        let channels = [3, 32, 64, 128];
        let blocks = (0..3)
            .map(|i| {
                ConvBlock::new(
                    &(root / "conv_blocks" / i),
                    channels[i],
                    channels[i + 1],
                    config,
                )
            })
            .collect();
        let side = if config.maxpool { SIDE / 8 } else { SIDE };
        let features = if config.batch_norm {
            128
        } else {
            128 * side * side
        };
        let fc1 = torchkit::layers::linear(&(root / "fc1"), features, 1024, true);
        let fc2 = torchkit::layers::linear(&(root / "fc2"), 1024, 512, true);
        let out = torchkit::layers::linear(&(root / "fc_out"), 512, CLASSES, true);
        let bn = config
            .batch_norm
            .then(|| torchkit::layers::batch_norm1d(&(root / "bnorm"), 1024));
        Self {
            blocks,
            fc1,
            bn,
            fc2,
            out,
            config: *config,
        }
    }

    /// Where the parameters live.
    pub fn device(&self) -> Device {
        self.out.ws.device()
    }
}

/// The first MLP layer's input and pre-activation output, kept by [`Cnn::forward_parts`] so
/// that a training step can update that layer's weight without materialising its gradient.
pub struct Fc1Parts {
    /// Input of `fc1`, (B, features).
    pub input: Tensor,
    /// `fc1` output before the ReLU, (B, 1024).
    pub pre_activation: Tensor,
}

impl Cnn {
    /// `fc1`'s weight (1024 × features): 4.7M of 2.1's 5.3M parameters.
    pub fn fc1_weight(&self) -> &Tensor {
        &self.fc1.ws
    }

    /// The forward pass, also returning `fc1`'s input and pre-activation.
    pub fn forward_parts(&self, xs: &Tensor, train: bool) -> (Tensor, Fc1Parts) {
        let mut x = xs.view([-1, 3, SIDE, SIDE]);
        if self.config.channels_last_memory {
            x = channels_last(&x);
        }
        for b in &self.blocks {
            x = b.forward_t(&x, train);
        }
        let input = if self.config.batch_norm {
            x.mean_dim([2i64, 3].as_slice(), false, x.kind())
        } else {
            x.flatten(1, -1)
        };
        let fc = |x: &Tensor, layer: &nn::Linear| {
            if self.config.fused_kernels && !self.config.pytorch_draws {
                linear::linear(x, layer)
            } else {
                x.apply(layer)
            }
        };
        let pre_activation = fc(&input, &self.fc1);
        let mut x = pre_activation.relu();
        if let Some(bn) = &self.bn {
            x = x.apply_t(bn, train);
        }
        x = dropout(&x, self.config.dropout, train, self.config.pytorch_draws);
        x = fc(&x, &self.fc2).relu().apply(&self.out);
        let out = x.log_softmax(-1, x.kind());
        (
            out,
            Fc1Parts {
                input,
                pre_activation,
            },
        )
    }
}

impl ModuleT for Cnn {
    /// `xs`: (B, 3, 48, 48) (or (B, 6912), viewed as the skeleton does); returns (B, 6)
    /// log-probabilities.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_parts(xs, train).0
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
        for (b, side) in net.blocks.iter().zip([24, 12, 6]) {
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

    #[test]
    fn channels_last_memory_computes_the_same_function() {
        for base in [CnnConfig::model_2_1(), CnnConfig::model_2_2()] {
            tch::manual_seed(3);
            let (vs, nhwc) = build(base);
            let nchw = Cnn {
                config: CnnConfig {
                    channels_last_memory: false,
                    ..base
                },
                ..Cnn::new(&vs.root().sub("copy"), &base)
            };
            // `nchw` reuses the blocks/MLP of a second store; copy `nhwc`'s weights into it.
            tch::no_grad(|| {
                let vars = vs.variables();
                for (name, t) in &vars {
                    if let Some(src) = name.strip_prefix("copy.") {
                        t.shallow_clone().copy_(&vars[src]);
                    }
                }
            });
            let x = Tensor::rand([4, 6912], (Kind::Float, Device::Cpu));
            let (a, b) = (nhwc.forward_t(&x, false), nchw.forward_t(&x, false));
            let diff = (a - b).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "{diff}");
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

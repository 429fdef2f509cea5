//! Parameters created in PyTorch's order, names and initialisation.
//!
//! | module | PyTorch initialisation |
//! |---|---|
//! | `Linear`, `Conv2d` | weight kaiming-uniform with a = √5, i.e. U(±1/√fan_in); bias U(±1/√fan_in) |
//! | `LSTM` | every weight and bias U(±1/√hidden) |
//! | `Embedding` | N(0, 1), the padding row zeroed |
//! | `BatchNorm` | weight 1, bias 0; running mean 0, running var 1 (buffers) |

use tch::nn::{self, Init};
use tch::Tensor;

fn uniform(bound: f64) -> Init {
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// A `nn.Linear(in, out, bias)` under `path` (`weight` is out×in, `bias` is out).
pub fn linear(path: &nn::Path, input: i64, output: i64, bias: bool) -> nn::Linear {
    let bound = 1.0 / (input as f64).sqrt();
    let ws = path.var("weight", &[output, input], uniform(bound));
    let bs = bias.then(|| path.var("bias", &[output], uniform(bound)));
    nn::Linear { ws, bs }
}

/// The (weight, bias) of a `nn.Conv2d(in, out, kernel)` under `path`; weight is
/// out×in×k×k. Apply them with `Tensor::conv2d` and the layer's stride and padding.
pub fn conv2d(path: &nn::Path, input: i64, output: i64, kernel: i64) -> (Tensor, Tensor) {
    let bound = 1.0 / ((input * kernel * kernel) as f64).sqrt();
    let ws = path.var("weight", &[output, input, kernel, kernel], uniform(bound));
    let bs = path.var("bias", &[output], uniform(bound));
    (ws, bs)
}

/// A `nn.Embedding(n, dim, padding_idx)`'s weight under `path`: N(0, 1), padding row zero.
pub fn embedding(path: &nn::Path, n: i64, dim: i64, padding_idx: Option<i64>) -> Tensor {
    let ws = path.var(
        "weight",
        &[n, dim],
        Init::Randn {
            mean: 0.0,
            stdev: 1.0,
        },
    );
    if let Some(pad) = padding_idx {
        let _ = tch::no_grad(|| ws.get(pad).zero_());
    }
    ws
}

/// The flat weights of a one-layer `nn.LSTM(input, hidden, bidirectional)` under `path`, in
/// PyTorch's order and names: `weight_ih_l0` (4H×in), `weight_hh_l0` (4H×H), `bias_ih_l0`,
/// `bias_hh_l0`, then the same with `_reverse`. Gates are stacked i, f, g, o as in PyTorch,
/// which is also the order libtorch's `lstm` op expects.
pub fn lstm(path: &nn::Path, input: i64, hidden: i64, bidirectional: bool) -> Vec<Tensor> {
    let init = uniform(1.0 / (hidden as f64).sqrt());
    let suffixes: &[&str] = if bidirectional {
        &["", "_reverse"]
    } else {
        &[""]
    };
    let mut params = Vec::new();
    for sfx in suffixes {
        params.push(path.var(&format!("weight_ih_l0{sfx}"), &[4 * hidden, input], init));
        params.push(path.var(&format!("weight_hh_l0{sfx}"), &[4 * hidden, hidden], init));
        params.push(path.var(&format!("bias_ih_l0{sfx}"), &[4 * hidden], init));
        params.push(path.var(&format!("bias_hh_l0{sfx}"), &[4 * hidden], init));
    }
    params
}

/// PyTorch's BatchNorm defaults: weight 1, bias 0, momentum 0.1, eps 1e-5; running mean and
/// variance are buffers (not trainable) named `running_mean` / `running_var`.
pub fn batch_norm_config() -> nn::BatchNormConfig {
    nn::BatchNormConfig {
        ws_init: Init::Const(1.0),
        bs_init: Init::Const(0.0),
        momentum: 0.1,
        eps: 1e-5,
        ..Default::default()
    }
}

/// A `nn.BatchNorm2d(dim)` under `path`.
pub fn batch_norm2d(path: &nn::Path, dim: i64) -> nn::BatchNorm {
    nn::batch_norm2d(path, dim, batch_norm_config())
}

/// A `nn.BatchNorm1d(dim)` under `path`.
pub fn batch_norm1d(path: &nn::Path, dim: i64) -> nn::BatchNorm {
    nn::batch_norm1d(path, dim, batch_norm_config())
}

/// Draws (and discards) what PyTorch's `nn.Linear(input, output)` weight init would draw, for
/// a weight that is then replaced by a tied one — keeps the generator's sequence aligned with
/// PyTorch's module construction.
pub fn skip_linear_weight(input: i64, output: i64, device: tch::Device) {
    let bound = 1.0 / (input as f64).sqrt();
    let _ = Tensor::zeros([output, input], (tch::Kind::Float, device)).uniform_(-bound, bound);
}

/// Number of trainable scalars in a VarStore.
pub fn trainable_parameters(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(Tensor::numel)
        .sum::<usize>() as i64
}

/// Builds a model as the homework does on a GPU: its parameters created (and drawn) on the
/// CPU, from the CPU generator, then moved to `device` (`Model(...).to(device)`), so that a
/// seed gives the same initial weights on every device.
pub fn on_cpu_then_to<T>(
    device: tch::Device,
    build: impl FnOnce(&nn::Path) -> T,
) -> (nn::VarStore, T) {
    let mut vs = nn::VarStore::new(tch::Device::Cpu);
    let model = build(&vs.root());
    if device != tch::Device::Cpu {
        vs.set_device(device);
    }
    (vs, model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn names_shapes_and_bounds_follow_pytorch() {
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let lin = linear(&(&root / "fc"), 100, 7, true);
        assert!(lin.ws.abs().max().double_value(&[]) <= 0.1);
        let params = lstm(&(&root / "lstm"), 16, 8, true);
        assert_eq!(params.len(), 8);
        assert!(params
            .iter()
            .all(|p| p.abs().max().double_value(&[]) <= 1.0 / 8f64.sqrt()));
        let emb = embedding(&(&root / "emb"), 5, 4, Some(0));
        assert_eq!(
            emb.get(0).abs().sum(tch::Kind::Float).double_value(&[]),
            0.0
        );
        assert!(emb.get(1).abs().sum(tch::Kind::Float).double_value(&[]) > 0.0);
        let mut names: Vec<String> = vs.variables().into_keys().collect();
        names.sort();
        assert_eq!(
            names,
            [
                "emb.weight",
                "fc.bias",
                "fc.weight",
                "lstm.bias_hh_l0",
                "lstm.bias_hh_l0_reverse",
                "lstm.bias_ih_l0",
                "lstm.bias_ih_l0_reverse",
                "lstm.weight_hh_l0",
                "lstm.weight_hh_l0_reverse",
                "lstm.weight_ih_l0",
                "lstm.weight_ih_l0_reverse",
            ]
        );
        assert_eq!(
            trainable_parameters(&vs),
            7 * 100 + 7 + 2 * (32 * 16 + 32 * 8 + 64) + 20
        );
    }
}

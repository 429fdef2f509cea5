//! The tail of a convolutional block — the convolution's bias, batch norm (model 2.2), 2×2
//! max-pool, ReLU and the dropout mask — as one autograd node with a fused CPU kernel
//! (`norm_pool.cpp`), for channels-last float32 inputs. Its twin is
//! [`crate::kernels::block_tail_slow`], libtorch's ops.
//!
//! As libtorch ops these are four kernels each way; the batch norm's backward alone was the
//! slowest op of a 2.2 step. The node reads the convolution's output twice forward (its
//! statistics, then the pooled output) and, with batch statistics, once backward; for the
//! backward pass it keeps where each maximum was (or that no gradient flows there) and, with
//! batch norm, the maxima's raw values: a quarter of the input each. The bias is a
//! per-channel constant forward and a sum the node takes anyway backward, where oneDNN's
//! bias gradient cost 0.26 ms of a 2.2 step (the convolution then runs without one). Under
//! batch statistics the bias cancels out and its gradient is exactly 0 (libtorch's sums give
//! rounding noise around it). Without batch norm
//! (2.1) its values and gradients are the ops' bit for bit; with it, its sums run in another
//! order (per image in double, added in image order, so the same bits on any thread count),
//! so they differ from the ops' in the last bits: exact mode keeps the ops.

use tch::{nn, Device, Kind, Tensor};
use torch_sys::C_tensor;

extern "C" {
    fn vision_norm_pool(
        x: *const C_tensor,
        bias: *const C_tensor,
        gamma: *const C_tensor,
        beta: *const C_tensor,
        running_mean: *const C_tensor,
        running_var: *const C_tensor,
        noise: *const C_tensor,
        batch_stats: std::ffi::c_int,
        momentum: f64,
        eps: f64,
        out: torchkit::shim::Out,
        err: *mut std::ffi::c_char,
        cap: usize,
    ) -> std::ffi::c_int;
}

/// Whether [`norm_pool`] takes `x` (N, C, H, W): float32 on the CPU, channels-last memory
/// (what the fast modes' convolutions make), H and W even.
pub fn applies(x: &Tensor) -> bool {
    let size = x.size();
    torchkit::shim::cpu_float(&[x])
        && size.len() == 4
        && size[2] % 2 == 0
        && size[3] % 2 == 0
        && x.permute([0, 2, 3, 1]).is_contiguous()
}

/// The dropout multiplier [`norm_pool`] applies to its output of `x` (see
/// [`torchkit::fast::dropout_noise`]): (N, C, H/2, W/2) in channels-last memory, drawn as
/// [`torchkit::fast::dropout`] draws it on that output, so that both paths drop the same
/// elements of a seeded run.
pub fn dropout_noise(x: &Tensor, p: f64) -> Tensor {
    let (n, c, h, w) = x.size4().expect("(N, C, H, W)");
    let nhwc = Tensor::empty([n, h / 2, w / 2, c], (Kind::Float, Device::Cpu));
    torchkit::fast::dropout_noise(nhwc.permute([0, 3, 1, 2]), p)
}

/// `relu(max_pool_2×2(bn(x + bias))) · noise`, differentiable in `x`, `bias` and the batch
/// norm's weight and bias. `bias`: the convolution's (C), or `None`. `bn`: normalised with
/// the batch's statistics when `train` (updating the running ones as PyTorch does), else with
/// the running ones; `None`: no batch norm. `noise`: a multiplier from [`dropout_noise`], or
/// `None`. `x` must satisfy [`applies`].
pub fn norm_pool(
    x: &Tensor,
    bias: Option<&Tensor>,
    bn: Option<&nn::BatchNorm>,
    train: bool,
    noise: Option<&Tensor>,
) -> Tensor {
    assert!(
        applies(x),
        "norm_pool: a channels-last float32 CPU (N, C, H, W), H and W even"
    );
    let none = Tensor::new();
    let (gamma, beta, mean, var) = match bn {
        Some(bn) => (
            bn.ws.as_ref().unwrap_or(&none),
            bn.bs.as_ref().unwrap_or(&none),
            &bn.running_mean,
            &bn.running_var,
        ),
        None => (&none, &none, &none, &none),
    };
    let config = torchkit::layers::batch_norm_config();
    // SAFETY: tch's tensors are `at::Tensor*` (undefined ones stand for what is absent); the
    // kernel reads them, updates the running statistics in place as libtorch's batch norm
    // does, and on success hands over a new tensor that `from_ptr` owns.
    torchkit::shim::call("pooled batch norm", |out, err, cap| unsafe {
        vision_norm_pool(
            x.as_ptr(),
            bias.unwrap_or(&none).as_ptr(),
            gamma.as_ptr(),
            beta.as_ptr(),
            mean.as_ptr(),
            var.as_ptr(),
            noise.unwrap_or(&none).as_ptr(),
            std::ffi::c_int::from(train),
            config.momentum,
            config.eps,
            out,
            err,
            cap,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// The same function from libtorch's ops (`kernels::block_tail_slow`'s, with the
    /// dropout multiplier given rather than drawn, so that both sides use the same one).
    fn unfused(
        x: &Tensor,
        bias: &Tensor,
        bn: Option<&nn::BatchNorm>,
        train: bool,
        noise: Option<&Tensor>,
    ) -> Tensor {
        let x = x + bias.view([1, -1, 1, 1]);
        let mut x = match bn {
            Some(bn) => x.apply_t(bn, train),
            None => x,
        };
        x = x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false).relu();
        match noise {
            Some(noise) => x * noise,
            None => x,
        }
    }

    /// A channels-last (N, C, H, W) input with ties and negative values.
    fn input(n: i64, c: i64, side: i64) -> Tensor {
        let count = n * c * side * side;
        let values: Vec<f32> = (0..count)
            .map(|i| ((i * 7919 % 1013) as f32 / 101.3 - 4.0).round() / 2.0 + (i % 5) as f32)
            .collect();
        Tensor::from_slice(&values)
            .view([n, side, side, c])
            .permute([0, 3, 1, 2])
    }

    fn batch_norm(vs: &nn::VarStore, c: i64) -> nn::BatchNorm {
        let bn = torchkit::layers::batch_norm2d(&vs.root(), c);
        tch::no_grad(|| {
            let k = Tensor::arange(c, (Kind::Float, Device::Cpu));
            let set = |t: &Tensor, v: Tensor| t.shallow_clone().copy_(&v);
            set(bn.ws.as_ref().unwrap(), k.sin() * 0.5 + 1.0);
            set(bn.bs.as_ref().unwrap(), k.cos() * 0.3);
            set(&bn.running_mean, k.cos() * 0.2);
            set(&bn.running_var, k.sin().abs() + 0.5);
        });
        bn
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    /// Values, input and bias gradients, γ/β gradients and running statistics of the fused
    /// node against the ops, with and without batch norm, training and evaluating, with and
    /// without a dropout mask, at two sizes.
    #[rstest]
    fn fused_node_computes_the_ops_function(
        #[values(false, true)] with_bn: bool,
        #[values(false, true)] train: bool,
        #[values(false, true)] with_noise: bool,
        #[values((2, 8, 6), (3, 32, 12))] (n, c, side): (i64, i64, i64),
    ) {
        let x = input(n, c, side).set_requires_grad(true);
        // A bias as the convolution's, small against the inputs' ±4 (ties stay ties).
        let bias = (Tensor::arange(c, (Kind::Float, Device::Cpu)) * 0.37)
            .sin()
            .set_requires_grad(true);
        let (vs_a, vs_b) = (
            nn::VarStore::new(Device::Cpu),
            nn::VarStore::new(Device::Cpu),
        );
        let (bn_a, bn_b) = (batch_norm(&vs_a, c), batch_norm(&vs_b, c));
        let (bn_a, bn_b) = if with_bn {
            (Some(&bn_a), Some(&bn_b))
        } else {
            (None, None)
        };
        tch::manual_seed(5);
        let noise = with_noise.then(|| dropout_noise(&x, 0.25));
        let ours = norm_pool(&x, Some(&bias), bn_a, train, noise.as_ref());
        let theirs = unfused(&x, &bias, bn_b, train, noise.as_ref());
        assert_eq!(ours.size(), [n, c, side / 2, side / 2]);
        // Without batch norm nothing is summed: the same bits.
        let tolerance = if with_bn { 2e-5 } else { 0.0 };
        assert!(max_diff(&ours, &theirs) <= tolerance, "values");
        // A gradient that weighs every output differently.
        let dy = Tensor::arange(ours.numel() as i64, (Kind::Float, Device::Cpu))
            .view(ours.size().as_slice())
            .sin();
        let grads = |out: &Tensor, bn: Option<&nn::BatchNorm>| {
            let mut wrt = vec![&x, &bias];
            if let Some(bn) = bn {
                wrt.extend([bn.ws.as_ref().unwrap(), bn.bs.as_ref().unwrap()]);
            }
            Tensor::run_backward(&[(out * &dy).sum(Kind::Float)], &wrt, false, false)
        };
        let (ga, gb) = (grads(&ours, bn_a), grads(&theirs, bn_b));
        let scale = gb[0].abs().max().double_value(&[]).max(1.0);
        assert!(
            gb[0].abs().max().double_value(&[]) > 1e-3,
            "the gradient is not trivially zero"
        );
        assert!(max_diff(&ga[0], &gb[0]) <= tolerance * scale, "dx");
        // The bias's gradient, a sum of dx over each channel in both: 0 under batch
        // statistics (the ops' sums leave rounding noise), Σ γ/σ·g otherwise; so the bound
        // scales with the largest channel's Σ|dx|.
        let channel_sums = gb[0]
            .abs()
            .sum_dim_intlist([0i64, 2, 3].as_slice(), false, Kind::Float);
        let s = channel_sums.max().double_value(&[]);
        assert!(max_diff(&ga[1], &gb[1]) <= 1e-5 * s, "dbias");
        assert_eq!(
            gb[1].abs().max().double_value(&[]) > 1e-3,
            !(with_bn && train),
            "the bias's gradient vanishes under batch statistics only"
        );
        if with_bn {
            for (i, name) in [(2, "dγ"), (3, "dβ")] {
                let s = gb[i].abs().max().double_value(&[]).max(1.0);
                assert!(max_diff(&ga[i], &gb[i]) <= 1e-5 * s, "{name}");
            }
            let (a, b) = (bn_a.unwrap(), bn_b.unwrap());
            // The running mean against x + bias's mean in double: libtorch's float sums are
            // off by up to 2e-6 here, ours by about 1e-8.
            let start = Tensor::arange(c, (Kind::Float, Device::Cpu)).cos() * 0.2;
            let expected = if train {
                let batch = (x.to_kind(Kind::Double)
                    + bias.to_kind(Kind::Double).view([1, -1, 1, 1]))
                .mean_dim([0i64, 2, 3].as_slice(), false, Kind::Double);
                batch * 0.1 + &start * 0.9
            } else {
                start.to_kind(Kind::Double)
            };
            let ours = a.running_mean.to_kind(Kind::Double);
            assert!(max_diff(&ours, &expected) <= 1e-6, "running mean");
            assert!(
                max_diff(&a.running_mean, &b.running_mean) <= 1e-5,
                "running mean against the ops"
            );
            assert!(
                max_diff(&a.running_var, &b.running_var) <= 1e-5,
                "running var"
            );
            assert_eq!(
                max_diff(&a.running_mean, &start) > 1e-3,
                train,
                "updated in training only"
            );
        }
    }

    /// The kernels split rows and images between threads (`at::parallel_for`, compiled with
    /// OpenMP) and add per-image sums in image order: every output and gradient must be the
    /// same bits on one thread as on three. The suite runs with `OMP_NUM_THREADS=1`, so this
    /// test raises the count for its own thread.
    #[rstest]
    fn same_bits_on_any_thread_count(#[values(false, true)] with_bn: bool) {
        // 96 output rows of 768 floats: several of the kernels' 21-row tasks.
        let (n, c, side) = (4, 32, 48);
        let x = (input(n, c, side) * 0.37).set_requires_grad(true);
        let bias = Tensor::arange(c, (Kind::Float, Device::Cpu))
            .sin()
            .set_requires_grad(true);
        // One mask for both runs (the draws are not what this test is about).
        let noise = dropout_noise(&x, 0.25);
        let run = |threads: i32| {
            let before = tch::get_num_threads();
            tch::set_num_threads(threads);
            let vs = nn::VarStore::new(Device::Cpu);
            let bn = batch_norm(&vs, c);
            let bn = with_bn.then_some(&bn);
            let out = norm_pool(&x, Some(&bias), bn, true, Some(&noise));
            let dy = Tensor::arange(out.numel() as i64, (Kind::Float, Device::Cpu))
                .view(out.size().as_slice())
                .cos();
            let mut wrt = vec![&x, &bias];
            if let Some(bn) = bn {
                wrt.extend([bn.ws.as_ref().unwrap(), bn.bs.as_ref().unwrap()]);
            }
            let mut all =
                Tensor::run_backward(&[(&out * &dy).sum(Kind::Float)], &wrt, false, false);
            all.push(out.detach());
            if let Some(bn) = bn {
                all.extend([bn.running_mean.copy(), bn.running_var.copy()]);
            }
            tch::set_num_threads(before);
            all
        };
        let (one, three) = (run(1), run(3));
        assert_eq!(one.len(), three.len());
        for (i, (a, b)) in one.iter().zip(&three).enumerate() {
            assert!(
                a.equal(b),
                "tensor {i} differs between one and three threads"
            );
        }
    }

    #[test]
    fn applies_to_channels_last_even_inputs_only() {
        assert!(applies(&input(2, 4, 6)));
        assert!(!applies(&input(2, 4, 6).contiguous()), "NCHW");
        assert!(!applies(&input(2, 4, 5)), "odd side");
        assert!(!applies(&input(2, 4, 6).to_kind(Kind::Double)), "float64");
    }
}

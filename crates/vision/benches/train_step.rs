//! Seconds per training batch (batch 8) and per op, for models 2.1 and 2.2.
//!
//! `cargo bench -p vision --bench train_step` — the figure behind the "epoch ≤ 0.9× PyTorch"
//! target (1,579 batches per epoch plus dev evaluation). `-- --layers`: each convolution's
//! share of the sgemm rate, forward and backward, in both memory layouts, and where the rest
//! of a training step and an epoch goes, with each block's tail as libtorch's ops and as
//! `vision::fast::norm_pool`'s fused node (`-- --tail`: only that table). `-- --growth`: seconds of one epoch of model 2.2's
//! training steps (batch 8, channels-last) with ¼, ½, 1 and 2× the 12,630 training images;
//! one `growth q2 size <x> <images> <seconds>` line each, which `cargo xtask growth`
//! reads.

use std::time::Instant;

use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};
use vision::model::{Cnn, CnnConfig};
use vision::train::{train_batch, TrainConfig};

/// A model of `config` built for training with the skeleton's SGD, as `vision::train` builds
/// it, and its optimiser.
fn for_training(config: &CnnConfig) -> (nn::VarStore, Cnn, Box<dyn torchkit::optim::Optimizer>) {
    vision::train::for_training(config, &TrainConfig::default(), Device::Cpu)
}

fn time<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    for _ in 0..5 {
        f();
    }
    let t = Instant::now();
    for _ in 0..reps {
        f();
    }
    t.elapsed().as_secs_f64() / reps as f64 * 1e3
}

/// This machine's float32 GEMM rate (2048², the best of a few), for the FLOP floor of an
/// epoch; `-- --sgemm` prints only this (`cargo xtask bench` reads it).
fn sgemm() -> f64 {
    let n = 2048;
    let a = Tensor::rand([n, n], (Kind::Float, Device::Cpu));
    let b = Tensor::rand([n, n], (Kind::Float, Device::Cpu));
    let ms = time(5, || {
        let _ = a.mm(&b);
    });
    let gflops = 2.0 * (n as f64).powi(3) / (ms / 1e3) / 1e9;
    println!(
        "sgemm 2048²: {gflops:.1} GFLOP/s, threads {}",
        tch::get_num_threads()
    );
    gflops
}

/// Per convolution (batch 8): forward and backward time, GFLOP/s and the fraction of the
/// sgemm rate, NCHW and channels-last; then the other ops of a step, the whole step, and
/// the dev evaluation, as shares of an epoch.
fn layers(sgemm_gflops: f64) {
    let batch = 8i64;
    println!("\n| convolution (batch 8) | layout | forward ms | GFLOP/s | of sgemm | backward ms | GFLOP/s | of sgemm |");
    println!("|---|---|---|---|---|---|---|---|");
    // NCHW; channels-last; channels-last without the bias, which the fused node adds.
    let mut conv_ms = [0.0f64; 3];
    for (i, (cin, cout, side)) in [(3i64, 32i64, 48i64), (32, 64, 24), (64, 128, 12)]
        .into_iter()
        .enumerate()
    {
        let flops = 2.0 * (batch * side * side * cout * cin * 9) as f64;
        for (l, (nhwc, with_bias)) in [(false, true), (true, true), (true, false)]
            .into_iter()
            .enumerate()
        {
            let memory = |t: Tensor| {
                if nhwc {
                    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
                } else {
                    t
                }
            };
            // The first layer's input needs no gradient, as in training.
            let x = memory(Tensor::rand(
                [batch, cin, side, side],
                (Kind::Float, Device::Cpu),
            ))
            .set_requires_grad(i > 0);
            let w = memory(Tensor::rand([cout, cin, 3, 3], (Kind::Float, Device::Cpu)))
                .set_requires_grad(true);
            let bias = Tensor::zeros([cout], (Kind::Float, Device::Cpu)).set_requires_grad(true);
            let bias = with_bias.then_some(&bias);
            let fwd = time(50, || {
                let _ = tch::no_grad(|| x.conv2d(&w, bias, [1, 1], [1, 1], [1, 1], 1));
            });
            let both = time(50, || {
                let y = x.conv2d(&w, bias, [1, 1], [1, 1], [1, 1], 1);
                y.sum(Kind::Float).backward();
            });
            let bwd = (both - fwd).max(1e-6);
            // Backward: the weight gradient, and the input gradient but for the first layer.
            let bwd_flops = flops * if i > 0 { 2.0 } else { 1.0 };
            let rate = |f: f64, ms: f64| f / (ms / 1e3) / 1e9;
            conv_ms[l] += both;
            println!(
                "| {cin}→{cout} at {side}×{side} | {} | {fwd:.3} | {:.0} | {:.0}% | {bwd:.3} | {:.0} | {:.0}% |",
                match (nhwc, with_bias) {
                    (false, _) => "NCHW",
                    (true, true) => "channels-last",
                    (true, false) => "channels-last, no bias",
                },
                rate(flops, fwd),
                100.0 * rate(flops, fwd) / sgemm_gflops,
                rate(bwd_flops, bwd),
                100.0 * rate(bwd_flops, bwd) / sgemm_gflops,
            );
        }
    }
    println!(
        "\nconvolutions, forward + backward, per step: {:.2} ms NCHW, {:.2} ms channels-last, \
         {:.2} ms channels-last without the bias (the fused kernels add it)",
        conv_ms[0], conv_ms[1], conv_ms[2]
    );
    let x = Tensor::rand([batch, 3, 48, 48], (Kind::Float, Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 5, 0, 1]);
    let dev = vision::dataset::Split::new(
        Tensor::rand([2_100, 3, 48, 48], (Kind::Float, Device::Cpu)),
        Tensor::randint(6, [2_100], (Kind::Int64, Device::Cpu)),
    );
    println!("\n| model | layout | step ms | of which convolutions | the rest (pooling, dropout, batch norm, head, loss, update) | epoch: 1,579 steps | dev evaluation (2,100 images) |");
    println!("|---|---|---|---|---|---|---|");
    for (name, config) in [
        ("2.1", CnnConfig::model_2_1()),
        ("2.2", CnnConfig::model_2_2()),
    ] {
        // The layouts, and on channels-last libtorch's ops or the fused kernels (block tails,
        // few-rows linear layers).
        for (l, (nhwc, fused)) in [(false, false), (true, false), (true, true)]
            .into_iter()
            .enumerate()
        {
            let config = CnnConfig {
                kernels: vision::kernels::Kernels::Fast {
                    channels_last: nhwc,
                    fused,
                },
                ..config
            };
            let (_vs, net, mut optimizer) = for_training(&config);
            let step = time(100, || {
                let _ = train_batch(&x, &y, &net, optimizer.as_mut());
            });
            // As the training loop evaluates: in chunks of `TrainConfig::eval_chunk`.
            let eval = time(3, || {
                let _ = vision::train::evaluate(&net, &dev, TrainConfig::default().eval_chunk);
            });
            println!(
                "| {name} | {} | {step:.2} | {:.2} ({:.0}%) | {:.2} ({:.0}%) | {:.1} s | {:.2} s |",
                match (nhwc, fused) {
                    (false, _) => "NCHW",
                    (true, false) => "channels-last, ops",
                    (true, true) => "channels-last, fused kernels",
                },
                conv_ms[l],
                100.0 * conv_ms[l] / step,
                (step - conv_ms[l]).max(0.0),
                100.0 * (step - conv_ms[l]).max(0.0) / step,
                step * 1579.0 / 1e3,
                eval / 1e3,
            );
        }
    }
}

fn main() {
    tch::manual_seed(0);
    let gflops = sgemm();
    if std::env::args().any(|a| a == "--sgemm") {
        return;
    }
    if std::env::args().any(|a| a == "--growth") {
        growth();
        return;
    }
    if std::env::args().any(|a| a == "--tail") {
        block_tails();
        return;
    }
    if std::env::args().any(|a| a == "--layers") {
        layers(gflops);
        rest_of_step();
        return;
    }
    println!("threads: {}", tch::get_num_threads());
    let x = Tensor::rand([8, 3, 48, 48], (Kind::Float, Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 1, 2, 3, 4, 5, 0, 1]);
    let models = [
        ("2.1", CnnConfig::model_2_1()),
        ("2.2", CnnConfig::model_2_2()),
    ];
    for (name, config) in models.into_iter().flat_map(|(name, c)| {
        [true, false].map(|nhwc| {
            let tag = format!("{name} {}", if nhwc { "NHWC" } else { "NCHW" });
            (
                tag,
                CnnConfig {
                    kernels: vision::kernels::Kernels::Fast {
                        channels_last: nhwc,
                        fused: true,
                    },
                    ..c
                },
            )
        })
    }) {
        let (_, net, mut optimizer) = for_training(&config);
        let vs_plain = nn::VarStore::new(Device::Cpu);
        let net_plain = Cnn::new(&vs_plain.root(), &config);
        let mut opt = nn::Sgd::default().build(&vs_plain, 0.01).unwrap();
        let fwd = time(200, || {
            let _ = net_plain.forward_t(&x, true);
        });
        let step = time(200, || {
            let loss = net_plain.forward_t(&x, true).g_nll_loss::<Tensor>(
                &y,
                None,
                tch::Reduction::Mean,
                -100,
            );
            opt.backward_step(&loss);
        });
        let fused = time(200, || {
            let _ = train_batch(&x, &y, &net, optimizer.as_mut());
        });
        println!(
            "model {name}: forward {fwd:.2} ms, train step {step:.2} ms (libtorch SGD), {fused:.2} ms (vision::train::train_batch: SGD inside fc1's backward for 2.1) → {:.1} s per 1,579 batches",
            fused * 1579.0 / 1e3
        );
    }
    // As the training loop does it: a shuffled batch sliced from the whole split each step.
    let data = Tensor::rand([12_630, 6912], (Kind::Float, Device::Cpu));
    let labels = Tensor::randint(6, [12_630], (Kind::Int64, Device::Cpu));
    for (name, config) in [
        ("2.1", CnnConfig::model_2_1()),
        ("2.2", CnnConfig::model_2_2()),
    ] {
        let (_vs, net, mut optimizer) = for_training(&config);
        let order = Tensor::randperm(12_630, (Kind::Int64, Device::Cpu));
        let mut b = 0;
        let ms = time(400, || {
            let idx = order.narrow(0, (b % 1578) * 8, 8);
            b += 1;
            let (x, y) = (data.index_select(0, &idx), labels.index_select(0, &idx));
            let _ = train_batch(&x, &y, &net, optimizer.as_mut());
        });
        println!("model {name}, shuffled batches from the split: {ms:.2} ms per step");
    }
    let a = Tensor::rand([8, 32, 48, 48], (Kind::Float, Device::Cpu));
    println!(
        "max_pool2d (8,32,48,48): {:.3} ms",
        time(200, || {
            let _ = a.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
        })
    );
    println!(
        "relu (8,32,48,48): {:.3} ms",
        time(200, || {
            let _ = a.relu();
        })
    );
    println!(
        "dropout (8,32,24,24): {:.3} ms",
        time(200, || {
            let _ = a
                .narrow(2, 0, 24)
                .narrow(3, 0, 24)
                .contiguous()
                .dropout(0.1, true);
        })
    );
    let w = Tensor::rand([64, 32, 3, 3], (Kind::Float, Device::Cpu));
    let b = Tensor::rand([24 * 24 * 8 * 32], (Kind::Float, Device::Cpu)).view([8, 32, 24, 24]);
    println!(
        "conv 32→64 (8,32,24,24): {:.3} ms",
        time(200, || {
            let _ = b.conv2d(&w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
        })
    );
}

/// One epoch of model 2.2's training steps per training-set size (random pixels: the cost of
/// a step does not depend on their values).
fn growth() {
    let full = 12_630.0;
    let (_vs, net, mut optimizer) = for_training(&CnnConfig::model_2_2());
    for factor in [0.25, 0.5, 1.0, 2.0] {
        let n = (full * factor) as i64;
        let data = Tensor::rand([n, 6912], (Kind::Float, Device::Cpu));
        let labels = Tensor::randint(6, [n], (Kind::Int64, Device::Cpu));
        let order = Tensor::randperm(n, (Kind::Int64, Device::Cpu));
        let t = Instant::now();
        for b in 0..(n + 7) / 8 {
            let idx = order.narrow(0, b * 8, 8.min(n - b * 8));
            let (x, y) = (data.index_select(0, &idx), labels.index_select(0, &idx));
            let _ = train_batch(&x, &y, &net, optimizer.as_mut());
        }
        println!(
            "growth q2 size {factor} {n} {:.3}",
            t.elapsed().as_secs_f64()
        );
    }
}

/// Forward and backward milliseconds of `f` on a fresh leaf of `shape` (channels-last when
/// 4-D and `nhwc`).
fn op_ms(shape: &[i64], nhwc: bool, f: impl Fn(&Tensor) -> Tensor) -> (f64, f64) {
    let mut x = Tensor::randn(shape, (Kind::Float, Device::Cpu));
    if nhwc && shape.len() == 4 {
        x = x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]);
    }
    let x = x.set_requires_grad(true);
    let fwd = time(200, || {
        let _ = f(&x);
    });
    // A dense gradient in the output's own layout, as in the network (a plain sum's is a
    // broadcast scalar, which sends batch norm and max-pool down slow paths); the multiply
    // that makes it adds one small element-wise pass to the backward figures.
    let g = tch::no_grad(|| f(&x)).rand_like();
    let both = time(200, || {
        let y = f(&x);
        let _ = Tensor::run_backward(&[(&y * &g).sum(Kind::Float)], &[&x], false, false);
    });
    (fwd, (both - fwd).max(0.0))
}

/// Where a 2.2 training step's time outside the convolutions goes (batch 8, channels-last):
/// each other op's forward and backward, as the model runs them.
fn rest_of_step() {
    let bn = |c: i64| {
        let vs = nn::VarStore::new(Device::Cpu);
        let m = nn::batch_norm2d(vs.root(), c, Default::default());
        (vs, m)
    };
    println!("\n| op of 2.2 (batch 8, channels-last) | forward ms | backward ms |");
    println!("|---|---|---|");
    let mut total = (0.0, 0.0);
    let mut row = |name: String, (f, b): (f64, f64)| {
        total.0 += f;
        total.1 += b;
        println!("| {name} | {f:.3} | {b:.3} |");
    };
    for (c, side) in [(32i64, 48i64), (64, 24), (128, 12)] {
        let shape = [8, c, side, side];
        let (_vs, m) = bn(c);
        row(
            format!("batch norm {c}×{side}²"),
            op_ms(&shape, true, |x| x.apply_t(&m, true)),
        );
        row(
            format!("max-pool {c}×{side}²"),
            op_ms(&shape, true, |x| {
                x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)
            }),
        );
        let half = [8, c, side / 2, side / 2];
        row(
            format!("ReLU {c}×{}²", side / 2),
            op_ms(&half, true, |x| x.relu()),
        );
        row(
            format!("dropout {c}×{}²", side / 2),
            op_ms(&half, true, |x| torchkit::fast::dropout(x, 0.1, true)),
        );
    }
    row(
        "global average pool".into(),
        op_ms(&[8, 128, 6, 6], true, |x| {
            x.mean_dim([2i64, 3].as_slice(), false, x.kind())
        }),
    );
    let vs = nn::VarStore::new(Device::Cpu);
    let (fc1, fc2, out) = (
        nn::linear(&vs.root() / "a", 128, 1024, Default::default()),
        nn::linear(&vs.root() / "b", 1024, 512, Default::default()),
        nn::linear(&vs.root() / "c", 512, 6, Default::default()),
    );
    let bn1 = nn::batch_norm1d(&vs.root() / "d", 1024, Default::default());
    row(
        "head: fc1, ReLU, BN1d, dropout, fc2, ReLU, fc_out, log-softmax".into(),
        op_ms(&[8, 128], false, |x| {
            let h = torchkit::fast::dropout(&x.apply(&fc1).relu().apply_t(&bn1, true), 0.1, true);
            h.apply(&fc2)
                .relu()
                .apply(&out)
                .log_softmax(-1, Kind::Float)
        }),
    );
    println!("| all of these | {:.3} | {:.3} |", total.0, total.1);
    block_tails();
    let (f, b) = op_ms(&[8, 32, 24, 24], true, |x| {
        torchkit::rng::dropout(x, 0.1, true)
    });
    println!("(`--exact` draws dropout masks as PyTorch does: 32×24² then takes {f:.3} ms forward, {b:.3} ms backward)");
    // The update: plain SGD over 2.2's parameters, as libtorch's SGD does it.
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = Cnn::new(&vs.root(), &CnnConfig::model_2_2());
    let mut params = vs.trainable_variables();
    let grads: Vec<Tensor> = params.iter().map(|p| p.randn_like()).collect();
    let sgd = time(200, || {
        tch::no_grad(|| {
            for (p, g) in params.iter_mut().zip(&grads) {
                let _ = p.g_sub_(&(g * 0.01));
            }
        })
    });
    println!("SGD update of 2.2's {} tensors: {sgd:.3} ms", params.len());
    let train = vision::dataset::Split::new(
        Tensor::randint(256, [12_630, 3, 48, 48], (Kind::Uint8, Device::Cpu)),
        Tensor::randint(6, [12_630], (Kind::Int64, Device::Cpu)),
    );
    let order = Tensor::randperm(12_630, (Kind::Int64, Device::Cpu));
    let mut b = 0;
    let assemble = time(400, || {
        let idx = order.narrow(0, (b % 1578) * 8, 8);
        b += 1;
        let _ = train.images_at(&idx);
    });
    println!("batch assembly (8 of 12,630 uint8 images → float32): {assemble:.3} ms");
}

/// The fused node (`vision::fast::norm_pool`) in place of each block's batch norm, max-pool, ReLU
/// and dropout, against libtorch's four ops; `-- --tail` prints only this.
fn block_tails() {
    println!("\n| a block's tail (batch 8, channels-last) | fused node: forward ms | backward ms | libtorch's ops: forward ms | backward ms |");
    println!("|---|---|---|---|---|");
    for with_bn in [true, false] {
        for (c, side) in [(32i64, 48i64), (64, 24), (128, 12)] {
            let shape = [8, c, side, side];
            let vs = nn::VarStore::new(Device::Cpu);
            let m = nn::batch_norm2d(vs.root(), c, Default::default());
            let bn = with_bn.then_some(&m);
            let (f, b) = op_ms(&shape, true, |x| {
                let noise = vision::fast::norm_pool::dropout_noise(x, 0.1);
                vision::fast::norm_pool::norm_pool(x, None, bn, true, Some(&noise))
            });
            let (of, ob) = op_ms(&shape, true, |x| {
                let y = match bn {
                    Some(m) => x.apply_t(m, true),
                    None => x.shallow_clone(),
                };
                let y = y.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false).relu();
                torchkit::fast::dropout(&y, 0.1, true)
            });
            println!(
                "| {} max-pool, ReLU, dropout, {c}×{side}² | {f:.3} | {b:.3} | {of:.3} | {ob:.3} |",
                if with_bn { "batch norm," } else { "(2.1)" }
            );
        }
    }
}

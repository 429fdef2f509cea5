//! Seconds per training batch (batch 8) and per op, for models 2.1 and 2.2.
//!
//! `cargo bench -p vision --bench train_step` — the figure behind the "epoch ≤ 0.9× PyTorch"
//! target (1,579 batches per epoch plus dev evaluation).

use std::time::Instant;

use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};
use vision::model::{Cnn, CnnConfig};
use vision::train::{Stepper, TrainConfig};

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
fn sgemm() {
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
}

fn main() {
    tch::manual_seed(0);
    sgemm();
    if std::env::args().any(|a| a == "--sgemm") {
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
                    channels_last_memory: nhwc,
                    ..c
                },
            )
        })
    }) {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Cnn::new(&vs.root(), &config);
        let mut opt = nn::Sgd::default().build(&vs, 0.01).unwrap();
        let mut stepper = Stepper::new(&vs, &net, &TrainConfig::default());
        let fwd = time(200, || {
            let _ = net.forward_t(&x, true);
        });
        let step = time(200, || {
            let loss =
                net.forward_t(&x, true)
                    .g_nll_loss::<Tensor>(&y, None, tch::Reduction::Mean, -100);
            opt.backward_step(&loss);
        });
        let fused = time(200, || {
            let _ = stepper.step(&net, &x, &y);
        });
        println!(
            "model {name}: forward {fwd:.2} ms, train step {step:.2} ms (libtorch SGD), {fused:.2} ms (vision::train::Stepper: fused for 2.1) → {:.1} s per 1,579 batches",
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
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Cnn::new(&vs.root(), &config);
        let mut stepper = Stepper::new(&vs, &net, &TrainConfig::default());
        let order = Tensor::randperm(12_630, (Kind::Int64, Device::Cpu));
        let mut b = 0;
        let ms = time(400, || {
            let idx = order.narrow(0, (b % 1578) * 8, 8);
            b += 1;
            let _ = stepper.step(
                &net,
                &data.index_select(0, &idx),
                &labels.index_select(0, &idx),
            );
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

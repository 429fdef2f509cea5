//! Milliseconds per training batch (batch 64) of models (a) and (b) in the fast mode, split
//! into forward, backward and the (fused) Adam step, and the batched greedy decoding of 1,000
//! validation words.
//!
//! `cargo bench -p seq2seq --bench train_step [-- DATA_DIR]` — the figures behind the Q3 speed
//! target. DATA_DIR holds `{train,valid,test}.tsv` (default: the homework's, where
//! `datasets::local` finds it — `cargo xtask fixtures` puts it in `data/p2g` — else a
//! generated corpus of the same size, and it says so).
//!
//! `-- --growth`: seconds of one training epoch of (b) (training batches only: the validation
//! decoding does not depend on the training set) with ¼, ½, 1 and 2× the training set (a
//! seeded sample, or the set repeated), and with hidden sizes 64, 128 and 256; one
//! `growth q3 <size|hidden> <x> <examples> <seconds>` line each, which `cargo xtask
//! growth` reads.

use std::path::PathBuf;
use std::time::Instant;

use seq2seq::batch::batches;
use seq2seq::corpus::Corpus;
use seq2seq::decode::Strategy;
use seq2seq::evaluate::predict;
use seq2seq::kernels::Kernels;
use seq2seq::model::Model;
use tch::Device;
use torchkit::optim::{Adam, Optimizer};

fn main() -> anyhow::Result<()> {
    let arg = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let dir = match arg
        .map(PathBuf::from)
        .ok_or(())
        .or(datasets::local::p2g_dir())
    {
        Ok(d) => d,
        Err(why) => {
            println!("{why}; timing a generated corpus of the same size instead");
            let dir = std::env::temp_dir().join("p2g-bench-corpus");
            seq2seq::synthetic::write_quick_corpus(&dir, 0, [10_000, 1_000, 1_000])?;
            dir
        }
    };
    println!(
        "data: {}, threads: {}",
        dir.display(),
        tch::get_num_threads()
    );
    let corpus = Corpus::read(&dir)?;
    if std::env::args().any(|a| a == "--growth") {
        return growth(&corpus);
    }
    let order: Vec<i64> = (0..corpus.train.len() as i64).collect();
    let n = 150;
    for attention in [false, true] {
        tch::manual_seed(0);
        let model = Model::new(&corpus.model_config(128, 0.3, attention), Device::Cpu);
        let mut opt = Adam::one_pass(&model.vs, 0.003, 0.0);
        let list: Vec<_> = batches(&corpus.train, &order, 64, Device::Cpu)
            .take(n + 5)
            .collect();
        let (mut fwd, mut bwd, mut step) = (0.0, 0.0, 0.0);
        for (i, batch) in list.iter().enumerate() {
            let t0 = Instant::now();
            let loss = Kernels::Fast.loss(&model.net, batch, true);
            let t1 = Instant::now();
            opt.zero_grad();
            loss.backward();
            let t2 = Instant::now();
            opt.step();
            let t3 = Instant::now();
            if i >= 5 {
                fwd += (t1 - t0).as_secs_f64();
                bwd += (t2 - t1).as_secs_f64();
                step += (t3 - t2).as_secs_f64();
            }
        }
        let ms = |s: f64| s / n as f64 * 1e3;
        let total = ms(fwd + bwd + step);
        println!(
            "{}: forward {:.2} ms, backward {:.2} ms, Adam {:.2} ms → {total:.2} ms per batch, {:.1} s per epoch of {} batches",
            if attention { "(b) attention" } else { "(a) no attention" },
            ms(fwd),
            ms(bwd),
            ms(step),
            total * corpus.train.len().div_ceil(64) as f64 / 1e3,
            corpus.train.len().div_ceil(64),
        );
        let t = Instant::now();
        let reps = 3;
        for _ in 0..reps {
            let _ = tch::no_grad(|| {
                predict(
                    &model.net,
                    &corpus.valid,
                    &corpus.vocabs.tgt,
                    Strategy::Greedy,
                    50,
                    500,
                    Device::Cpu,
                )
            });
        }
        println!(
            "    greedy decoding of {} validation words: {:.3} s",
            corpus.valid.len(),
            t.elapsed().as_secs_f64() / reps as f64
        );
    }
    Ok(())
}

/// Seconds of one epoch of training batches of (b) with hidden size `hidden` on `train`.
fn epoch_seconds(corpus: &Corpus, train: &[seq2seq::batch::Encoded], hidden: i64) -> f64 {
    tch::manual_seed(0);
    let model = Model::new(&corpus.model_config(hidden, 0.3, true), Device::Cpu);
    let mut opt = Adam::one_pass(&model.vs, 0.003, 0.0);
    let order = torchkit::rng::loader_order(train.len());
    let t = Instant::now();
    for batch in batches(train, &order, 64, Device::Cpu) {
        let loss = Kernels::Fast.loss(&model.net, &batch, true);
        opt.zero_grad();
        loss.backward();
        opt.step();
    }
    t.elapsed().as_secs_f64()
}

/// The training set scaled to `factor` of its size: a seeded sample below 1, repeats above.
fn scaled(train: &[seq2seq::batch::Encoded], factor: f64) -> Vec<seq2seq::batch::Encoded> {
    let n = (train.len() as f64 * factor).round() as usize;
    let order = torchkit::rng::loader_order(train.len());
    (0..n)
        .map(|i| train[order[i % train.len()] as usize].clone())
        .collect()
}

fn growth(corpus: &Corpus) -> anyhow::Result<()> {
    // A warm-up epoch, so that the first measured one does not pay for first-touch memory.
    let _ = epoch_seconds(corpus, &scaled(&corpus.train, 0.25), 128);
    for factor in [0.25, 0.5, 1.0, 2.0] {
        let train = scaled(&corpus.train, factor);
        let s = epoch_seconds(corpus, &train, 128);
        println!("growth q3 size {factor} {} {s:.3}", train.len());
    }
    for hidden in [64, 128, 256] {
        let s = epoch_seconds(corpus, &corpus.train, hidden);
        println!("growth q3 hidden {hidden} {} {s:.3}", corpus.train.len());
    }
    Ok(())
}

//! The homework's training loop: teacher forcing, Adam, cross-entropy ignoring PAD, greedy
//! validation CER after every epoch, and the checkpoint with the lowest validation CER.
//! The epochs themselves — resume points, locking, the CSV, publishing the checkpoint —
//! are `torchkit::trainer`'s; this file is the homework's maths.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};
use torchkit::optim::{Adam, Optimizer};
use torchkit::trainer::{self, Epoch, Learner, Verdict};

use crate::batch::{batches, Batch};
pub use crate::config::{RunFiles, TrainConfig, TrainData};
use crate::decode::Strategy;
use crate::evaluate::score;
use crate::kernels::Kernels;
use crate::model::Model;
pub use crate::outcome::{EpochRow, TrainOutcome};

/// The best validation CER so far (none before the first epoch).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Best {
    cer: Option<f64>,
}

/// The homework's epoch: shuffle, teacher-forced Adam steps, greedy validation decoding.
pub(crate) struct Homework<'a> {
    model: &'a mut Model,
    kernels: Kernels,
    opt: Adam,
    data: &'a TrainData<'a>,
    config: &'a TrainConfig,
    device: Device,
}

impl<'a> Homework<'a> {
    /// A fresh run of `model` with the homework's Adam.
    pub(crate) fn new(
        model: &'a mut Model,
        data: &'a TrainData<'a>,
        config: &'a TrainConfig,
        device: Device,
    ) -> Self {
        let kernels = Kernels::for_run(config.exact);
        Self {
            opt: kernels.adam(&model.vs, config.lr),
            kernels,
            model,
            data,
            config,
            device,
        }
    }

    /// The epoch's order of the training examples, drawn as the homework's DataLoader
    /// draws it (in both modes: it costs nothing, and the batches are the homework's).
    pub(crate) fn order(&self) -> Vec<i64> {
        torchkit::rng::loader_order(self.data.train.len())
    }

    /// One optimisation step on `batch`; returns its loss (before the step).
    pub(crate) fn step(&mut self, batch: &Batch) -> f64 {
        self.opt.zero_grad();
        let loss = self.kernels.loss(&self.model.net, batch, true);
        let value = loss.value.double_value(&[]);
        loss.backward();
        self.opt.step();
        value
    }
}

impl Learner for Homework<'_> {
    type Row = EpochRow;
    type Carry = Best;

    fn var_store(&mut self) -> &mut tch::nn::VarStore {
        &mut self.model.vs
    }

    fn optimizer_state(&self) -> Vec<(String, Tensor)> {
        self.opt.state()
    }

    fn load_optimizer_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        self.opt.load_state(state)
    }

    fn epoch(&mut self, best: &mut Best, ctx: &mut Epoch) -> Result<Verdict<EpochRow>> {
        let (config, data) = (self.config, self.data);
        let t = Instant::now();
        let order = self.order();
        let losses = ctx.train_batches(
            batches(data.train, &order, config.batch_size, self.device),
            |batch| Ok(self.step(&batch)),
        )?;
        let last = losses.last().copied().unwrap_or(f64::NAN);
        let train_seconds = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let preds = self.kernels.predict(
            &self.model.net,
            data.valid,
            data.tgt_vocab,
            Strategy::Greedy,
            config.max_len,
            config.eval_batch_size,
            self.device,
        )?;
        let s = score(&preds, data.valid_gold);
        println!("Epoch: [{}/{}], Loss: {last:.4}", ctx.number, ctx.of);
        println!("Validation error rate: {:.4}", s.cer);
        let keep = best.cer.is_none_or(|b| s.cer < b);
        if keep {
            best.cer = Some(s.cer);
            println!("New best error rate found: {:.4}", s.cer);
        }
        Ok(Verdict {
            row: EpochRow {
                epoch: ctx.number,
                train_loss: losses.iter().sum::<f64>() / losses.len().max(1) as f64,
                last_batch_loss: last,
                val_cer: s.cer,
                val_wer: s.wer,
                best: keep,
                train_seconds,
                val_decode_seconds: t.elapsed().as_secs_f64(),
            },
            keep,
        })
    }

    fn save_checkpoint(&self, path: &Path) -> Result<()> {
        self.model.save(path)
    }

    fn load_checkpoint(&mut self, path: &Path) -> Result<()> {
        self.model.load(path)
    }
}

/// Trains `model` in place, keeping the checkpoint of the lowest validation CER and the
/// per-epoch CSV; prints the homework's lines. An interrupted run continues after its last
/// finished epoch exactly; a finished one is reused (see `torchkit::trainer`).
pub fn train(
    model: &mut Model,
    data: &TrainData,
    config: &TrainConfig,
    files: &RunFiles,
    device: Device,
) -> Result<TrainOutcome> {
    let options = format!("{config:?} {:?}", model.net.config);
    let mut homework = Homework::new(model, data, config, device);
    let run = trainer::Run {
        stem: files.checkpoint.with_extension(""),
        checkpoint: files.checkpoint.clone(),
        log_csv: files.log_csv.clone(),
        options,
        data_sha256: data.sha256.to_string(),
        epochs: config.epochs,
        replace: files.replace,
        device,
        extra_outputs: files.outcome.iter().cloned().collect(),
        fixed_threads: homework.kernels.fixed_threads(),
    };
    eprintln!("{}", homework.kernels.describe(device));
    let fitted = trainer::fit(&mut homework, &run, Best::default())?;
    let best_val_cer = fitted.carry.cer.unwrap_or(f64::NAN);
    println!("Best validation error rate: {best_val_cer:.4}");
    Ok(TrainOutcome {
        epochs: fitted.rows,
        best_epoch: fitted.best_epoch,
        best_val_cer,
        train_seconds: fitted.seconds,
        checkpoint: files.checkpoint.clone(),
        params: homework.model.parameters(),
        peak_rss_mib: torchkit::runlog::peak_rss_mib(),
        resumed_after_epochs: fitted.resumed_after_epochs,
        places: fitted.places,
        config: config.clone(),
    })
}

/// The loss of each of the first `n` training batches of a fresh run (seeded by the
/// caller), as the homework's `criterion` returns them: what `tests/exact.rs` compares with
/// a run of the homework's own code.
pub fn first_losses(
    model: &mut Model,
    data: &TrainData,
    config: &TrainConfig,
    device: Device,
    n: usize,
) -> Result<Vec<f64>> {
    let mut homework = Homework::new(model, data, config, device);
    let order = homework.order();
    let mut losses = Vec::with_capacity(n);
    for batch in batches(data.train, &order, config.batch_size, device).take(n) {
        losses.push(homework.step(&batch));
    }
    Ok(losses)
}

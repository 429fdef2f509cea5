//! The homework's training loop: teacher forcing, Adam, cross-entropy ignoring PAD, greedy
//! validation CER after every epoch, and the checkpoint with the lowest validation CER.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use tch::Device;
use torchkit::optim::Adam;
use torchkit::resume::Resume;

use crate::batch::{batches, Encoded};
use crate::decode::Strategy;
use crate::evaluate::{predict, score};
use crate::model::Model;
use crate::vocab::Vocab;

/// Training hyper-parameters (the homework's defaults).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct TrainConfig {
    /// Adam learning rate (0.003).
    pub lr: f64,
    /// Epochs (20).
    pub epochs: usize,
    /// Examples per batch (64), shuffled every epoch.
    pub batch_size: usize,
    /// Longest decoded output (50).
    pub max_len: usize,
    /// Decoder rows at once when decoding (validation and test): bounds memory.
    pub eval_batch_size: usize,
    /// The seed the caller seeded libtorch with (a resumed run reseeds from it).
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            lr: 0.003,
            epochs: 20,
            batch_size: 64,
            max_len: 50,
            eval_batch_size: 1000,
            seed: 42,
        }
    }
}

/// One line of the per-epoch CSV log.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct EpochRow {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Loss of the epoch's last batch (what the homework prints).
    pub last_batch_loss: f64,
    /// Greedy validation CER.
    pub val_cer: f64,
    /// Greedy validation WER (exact match).
    pub val_wer: f64,
    /// Whether this epoch's weights became the best checkpoint.
    pub best: bool,
    /// Seconds spent on training batches.
    pub train_seconds: f64,
    /// Seconds spent decoding the validation set.
    pub val_decode_seconds: f64,
}

/// What a training run produced.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TrainOutcome {
    /// Per-epoch rows.
    pub epochs: Vec<EpochRow>,
    /// Epoch of the best checkpoint (1-based).
    pub best_epoch: usize,
    /// Its validation CER.
    pub best_val_cer: f64,
    /// Wall time of the whole run, validation decoding included.
    pub train_seconds: f64,
    /// Where the best checkpoint is.
    pub checkpoint: PathBuf,
    /// Trainable parameters.
    pub params: i64,
    /// Peak resident memory of the training process, MiB.
    pub peak_rss_mib: Option<f64>,
    /// Set when the run was interrupted and resumed after this epoch (see
    /// `torchkit::resume`: later epochs drew other random numbers than an unbroken run).
    pub resumed_after_epoch: Option<usize>,
    /// The options it ran with (a finished run is reused only under the same ones).
    pub config: TrainConfig,
}

/// What a resume point keeps besides the tensors.
#[derive(Serialize, serde::Deserialize)]
struct Progress {
    rows: Vec<EpochRow>,
    best_cer: f64,
    best_epoch: usize,
    seconds: f64,
    resumed_after_epoch: Option<usize>,
}

/// The data a run needs.
pub struct TrainData<'a> {
    /// Encoded training examples.
    pub train: &'a [Encoded],
    /// Encoded validation examples.
    pub valid: &'a [Encoded],
    /// Raw validation spellings.
    pub valid_gold: &'a [String],
    /// Target vocabulary, to turn ids into strings.
    pub tgt_vocab: &'a Vocab,
}

/// Trains `model` in place; writes the best checkpoint to `checkpoint` and the per-epoch log
/// to `log_csv` (both atomically, after every epoch). Prints the homework's lines.
///
/// After every epoch a resume point is saved next to `checkpoint`; a run restarted with the
/// same configuration continues after the last finished epoch, and a finished run removes it.
pub fn train(
    model: &mut Model,
    data: &TrainData,
    config: &TrainConfig,
    checkpoint: &Path,
    log_csv: &Path,
    device: Device,
) -> Result<TrainOutcome> {
    let start = Instant::now();
    let mut opt = Adam::new(&model.vs, config.lr, 0.0);
    let resume = Resume::new(
        checkpoint.with_extension(""),
        format!("{config:?} {:?}", model.net.config),
        config.seed,
    );
    let mut progress = Progress {
        rows: Vec::new(),
        best_cer: f64::INFINITY,
        best_epoch: 0,
        seconds: 0.0,
        resumed_after_epoch: None,
    };
    if let Some(r) = resume.load::<Progress>(&mut model.vs)? {
        opt.load_state(&r.optimizer)?;
        progress = r.progress;
        progress.resumed_after_epoch = Some(r.epoch);
    }
    let first_epoch = progress.rows.len() + 1;
    let mut log = torchkit::runlog::EpochLog::resume(log_csv, std::mem::take(&mut progress.rows));
    let (mut best_cer, mut best_epoch) = (progress.best_cer, progress.best_epoch);
    let n_batches = data.train.len().div_ceil(config.batch_size) as u64;
    // Run beside another training by `torchkit::jobs`: take over its cores when it ends.
    let mut share = torchkit::jobs::ThreadShare::from_env();
    for epoch in first_epoch..=config.epochs {
        let t = Instant::now();
        let order = torchkit::rng::permutation(data.train.len());
        let bar = torchkit::runlog::epoch_bar(n_batches, epoch, config.epochs);
        let (mut sum, mut count, mut last) = (0.0, 0usize, 0.0);
        for batch in batches(data.train, &order, config.batch_size, device) {
            share.poll();
            let loss = model.net.loss(&batch, true);
            last = loss.value.double_value(&[]);
            opt.zero_grad();
            loss.backward();
            opt.step();
            sum += last;
            count += 1;
            bar.inc(1);
            bar.set_message(format!("loss {:.4}", sum / count as f64));
        }
        bar.finish_and_clear();
        let train_seconds = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let preds = predict(
            &model.net,
            data.valid,
            data.tgt_vocab,
            Strategy::Greedy,
            config.max_len,
            config.eval_batch_size,
            device,
        );
        let s = score(&preds, data.valid_gold);
        let val_decode_seconds = t.elapsed().as_secs_f64();
        println!("Epoch: [{epoch}/{}], Loss: {last:.4}", config.epochs);
        println!("Validation error rate: {:.4}", s.cer);
        let best = s.cer < best_cer;
        if best {
            best_cer = s.cer;
            best_epoch = epoch;
            println!("New best error rate found: {best_cer:.4}");
            model.save(checkpoint)?;
        }
        log.push(EpochRow {
            epoch,
            train_loss: sum / count.max(1) as f64,
            last_batch_loss: last,
            val_cer: s.cer,
            val_wer: s.wer,
            best,
            train_seconds,
            val_decode_seconds,
        })?;
        let p = Progress {
            rows: log.rows().to_vec(),
            best_cer,
            best_epoch,
            seconds: progress.seconds + start.elapsed().as_secs_f64(),
            resumed_after_epoch: progress.resumed_after_epoch,
        };
        resume.save(epoch, &model.vs, opt.state(), &p)?;
    }
    resume.finish()?;
    println!("Best validation error rate: {best_cer:.4}");
    Ok(TrainOutcome {
        epochs: log.rows().to_vec(),
        best_epoch,
        best_val_cer: best_cer,
        train_seconds: progress.seconds + start.elapsed().as_secs_f64(),
        checkpoint: checkpoint.to_path_buf(),
        params: model.parameters(),
        peak_rss_mib: torchkit::runlog::peak_rss_mib(),
        resumed_after_epoch: progress.resumed_after_epoch,
        config: config.clone(),
    })
}

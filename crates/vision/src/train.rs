//! Training as the homework skeleton does it, with the figures it logs.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};
use torchkit::resume::Resume;

use crate::dataset::{Split, CLASSES};
use crate::model::{Cnn, CnnConfig};

/// Optimiser choice (`--optimizer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// Plain SGD: no momentum.
    Sgd,
    /// Adam with PyTorch's defaults.
    Adam,
}

/// Training options (the skeleton's defaults).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TrainConfig {
    /// Epochs (40).
    pub epochs: usize,
    /// Batch size (8), shuffled every epoch.
    pub batch_size: usize,
    /// Learning rate.
    pub learning_rate: f64,
    /// L2 weight decay (0).
    pub l2_decay: f64,
    /// SGD or Adam.
    pub optimizer: Optimizer,
    /// Examples per forward pass when evaluating.
    pub eval_chunk: usize,
    /// The seed the caller seeded libtorch with (a resumed run reseeds from it).
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 40,
            batch_size: 8,
            learning_rate: 0.01,
            l2_decay: 0.0,
            optimizer: Optimizer::Sgd,
            eval_chunk: 1000,
            seed: 42,
        }
    }
}

/// One epoch's figures (a line of the CSV log).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRow {
    /// 1-based.
    pub epoch: usize,
    /// Mean of all batch losses since training started — the skeleton's "Training loss".
    pub train_loss_cumulative: f64,
    /// Mean of this epoch's batch losses.
    pub train_loss_epoch: f64,
    /// Dev loss (eval mode).
    pub val_loss: f64,
    /// Dev accuracy (eval mode).
    pub val_accuracy: f64,
    /// Seconds for the epoch, dev evaluation included.
    pub seconds: f64,
}

/// Loss and accuracy of a split in eval mode.
pub fn evaluate(net: &Cnn, split: &Split, chunk: usize) -> (f64, f64, Vec<i64>) {
    tch::no_grad(|| {
        let n = split.len() as i64;
        let (mut loss_sum, mut preds) = (0.0, Vec::with_capacity(n as usize));
        let mut start = 0;
        while start < n {
            let len = (chunk as i64).min(n - start);
            let out = net.forward_t(&split.images.narrow(0, start, len), false);
            let y = split.labels.narrow(0, start, len);
            loss_sum += out
                .g_nll_loss::<Tensor>(&y, None, tch::Reduction::Sum, -100)
                .double_value(&[]);
            preds.extend(Vec::<i64>::try_from(out.argmax(-1, false)).expect("int64"));
            start += len;
        }
        let labels = Vec::<i64>::try_from(&split.labels).expect("int64");
        (
            loss_sum / n as f64,
            metrics::accuracy(&preds, &labels),
            preds,
        )
    })
}

/// A trained model and what training measured.
pub struct Trained {
    /// Parameters (and BN buffers).
    pub vs: nn::VarStore,
    /// The network.
    pub net: Cnn,
    /// Per-epoch figures.
    pub epochs: Vec<EpochRow>,
    /// Set when the run was interrupted and resumed after this epoch.
    pub resumed_after_epoch: Option<usize>,
}

/// SGD is libtorch's (stateless without momentum, and it clears gradients to none, which
/// matters for 2.1's 4.7M-weight layer); Adam is ours, whose state can be saved.
enum Opt {
    Sgd(nn::Optimizer),
    Adam(torchkit::optim::Adam),
}

impl Opt {
    fn backward_step(&mut self, loss: &Tensor) {
        match self {
            Opt::Sgd(o) => o.backward_step(loss),
            Opt::Adam(o) => o.backward_step(loss),
        }
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        match self {
            Opt::Sgd(_) => Vec::new(),
            Opt::Adam(o) => o.state(),
        }
    }
}

/// What a resume point keeps besides the tensors.
#[derive(Serialize, Deserialize)]
struct Progress {
    rows: Vec<EpochRow>,
    loss_total: f64,
    loss_count: usize,
    resumed_after_epoch: Option<usize>,
}

/// Trains a fresh model (seeded by the caller through `torchkit::rng::seed`), evaluating
/// the dev split after every epoch, logging to `log_csv` and printing the skeleton's lines.
///
/// After every epoch a resume point is saved beside `log_csv`; a run restarted with the
/// same configuration continues after the last finished epoch (`torchkit::resume`).
pub fn train(
    model: &CnnConfig,
    config: &TrainConfig,
    train: &Split,
    dev: &Split,
    log_csv: &Path,
    device: Device,
) -> Result<Trained> {
    let mut vs = nn::VarStore::new(device);
    let net = Cnn::new(&vs.root(), model);
    let mut opt = match config.optimizer {
        Optimizer::Sgd => Opt::Sgd(
            nn::Sgd {
                momentum: 0.0,
                dampening: 0.0,
                wd: config.l2_decay,
                nesterov: false,
            }
            .build(&vs, config.learning_rate)?,
        ),
        Optimizer::Adam => Opt::Adam(torchkit::optim::Adam::new(
            &vs,
            config.learning_rate,
            config.l2_decay,
        )),
    };
    let stem = log_csv.with_file_name(
        log_csv
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .trim_end_matches("_epochs"),
    );
    let resume = Resume::new(&stem, format!("{config:?} {model:?}"), config.seed);
    let mut progress = Progress {
        rows: Vec::new(),
        loss_total: 0.0,
        loss_count: 0,
        resumed_after_epoch: None,
    };
    if let Some(r) = resume.load::<Progress>(&mut vs)? {
        if let Opt::Adam(a) = &mut opt {
            a.load_state(&r.optimizer)?;
        }
        progress = r.progress;
        progress.resumed_after_epoch = Some(r.epoch);
    }
    let first_epoch = progress.rows.len() + 1;
    let mut log = torchkit::runlog::EpochLog::resume(log_csv, std::mem::take(&mut progress.rows));
    let (images, labels) = (
        train.images.to_device(device),
        train.labels.to_device(device),
    );
    let n = train.len();
    let (mut total, mut count) = (progress.loss_total, progress.loss_count);
    for epoch in first_epoch..=config.epochs {
        let t = Instant::now();
        println!("\nTraining epoch {epoch}");
        let order = Tensor::from_slice(&torchkit::rng::permutation(n)).to_device(device);
        let batches = n.div_ceil(config.batch_size);
        let bar = torchkit::runlog::epoch_bar(batches as u64, epoch, config.epochs);
        // Losses stay on the device and are summed once per epoch: no per-batch host sync.
        let mut losses = Vec::with_capacity(batches);
        for b in 0..batches {
            let idx = order.narrow(
                0,
                (b * config.batch_size) as i64,
                (config.batch_size.min(n - b * config.batch_size)) as i64,
            );
            let out = net.forward_t(&images.index_select(0, &idx), true);
            let loss = out.g_nll_loss::<Tensor>(
                &labels.index_select(0, &idx),
                None,
                tch::Reduction::Mean,
                -100,
            );
            opt.backward_step(&loss);
            losses.push(loss.detach());
            if b % 100 == 0 {
                bar.set_position(b as u64);
            }
        }
        bar.finish_and_clear();
        let epoch_losses =
            Vec::<f64>::try_from(Tensor::stack(&losses, 0).to_kind(Kind::Double)).expect("f64");
        let epoch_sum: f64 = epoch_losses.iter().sum();
        total += epoch_sum;
        count += epoch_losses.len();
        let (val_loss, val_accuracy, _) = evaluate(&net, dev, config.eval_chunk);
        let row = EpochRow {
            epoch,
            train_loss_cumulative: total / count as f64,
            train_loss_epoch: epoch_sum / epoch_losses.len() as f64,
            val_loss,
            val_accuracy,
            seconds: t.elapsed().as_secs_f64(),
        };
        println!("Training loss: {:.4}", row.train_loss_cumulative);
        println!("Valid loss: {:.4}", row.val_loss);
        println!("Valid acc: {:.4}", row.val_accuracy);
        eprintln!("epoch {epoch}: {:.1} s", row.seconds);
        log.push(row)?;
        let p = Progress {
            rows: log.rows().to_vec(),
            loss_total: total,
            loss_count: count,
            resumed_after_epoch: progress.resumed_after_epoch,
        };
        resume.save(epoch, &vs, opt.state(), &p)?;
    }
    resume.finish()?;
    Ok(Trained {
        vs,
        net,
        epochs: log.rows().to_vec(),
        resumed_after_epoch: progress.resumed_after_epoch,
    })
}

/// Confusion matrix of predictions on a split.
pub fn confusion(preds: &[i64], split: &Split) -> metrics::ConfusionMatrix {
    let labels = Vec::<i64>::try_from(&split.labels).expect("int64");
    metrics::ConfusionMatrix::new(CLASSES as usize, preds, &labels)
}

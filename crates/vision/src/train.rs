//! Training as the homework skeleton does it, with the figures it logs.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use tch::nn;
use tch::{Device, Kind, Tensor};
use torchkit::trainer::{self, Epoch, Learner, Verdict};

pub use crate::config::{Optimizer, RunFiles, TrainConfig};
use crate::dataset::{Dataset, Split};
pub use crate::evaluate::{confusion, evaluate};
use crate::model::{Cnn, CnnConfig};
pub use crate::step::{first_losses, for_training, train_batch};
pub use summaries::q2::EpochRow;

/// A trained model and what training measured.
pub struct Trained {
    /// Parameters (and BN buffers).
    pub vs: nn::VarStore,
    /// The network.
    pub net: Cnn,
    /// Per-epoch figures.
    pub epochs: Vec<EpochRow>,
    /// The epochs after which the run was interrupted and (exactly) resumed.
    pub resumed_after_epochs: Vec<usize>,
    /// Where the processes that trained it ran.
    pub places: Vec<String>,
    /// Training seconds, over every process that worked on the run.
    pub seconds: f64,
}

/// The running loss sums the skeleton's "Training loss" (the mean over every batch so
/// far) needs: every loss, as the skeleton takes a float32 mean of them all.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LossSums {
    total: f64,
    count: usize,
    #[serde(default)]
    all: Vec<f32>,
}

/// The skeleton's epoch: shuffled batches of SGD (or Adam) steps, then the validation split.
struct Skeleton<'a> {
    vs: nn::VarStore,
    net: Cnn,
    optimizer: Box<dyn torchkit::optim::Optimizer>,
    train: Split,
    val: Split,
    config: &'a TrainConfig,
}

impl Learner for Skeleton<'_> {
    type Row = EpochRow;
    type Carry = LossSums;

    fn var_store(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    fn optimizer_state(&self) -> Vec<(String, Tensor)> {
        self.optimizer.state()
    }

    fn load_optimizer_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        self.optimizer.load_state(state)
    }

    fn epoch(&mut self, sums: &mut LossSums, ctx: &mut Epoch) -> Result<Verdict<EpochRow>> {
        let t = Instant::now();
        println!("\nTraining epoch {}", ctx.number);
        let n = self.train.len();
        let device = self.train.device();
        // Drawn as the skeleton's DataLoader draws it, in both modes (it costs nothing, and
        // the batches are the skeleton's).
        let order = Tensor::from_slice(&torchkit::rng::loader_order(n)).to_device(device);
        let size = self.config.batch_size;
        // Losses stay on the device and are read once per epoch: no per-batch host sync.
        let (optimizer, net, train) = (&mut self.optimizer, &self.net, &self.train);
        let epoch_losses = ctx.train_batches_on_device(0..n.div_ceil(size), |b| {
            let idx = order.narrow(0, (b * size) as i64, size.min(n - b * size) as i64);
            let (x, y) = (train.images_at(&idx), train.labels.index_select(0, &idx));
            train_batch(&x, &y, net, optimizer.as_mut())
        })?;
        let epoch_sum: f64 = epoch_losses.iter().sum();
        sums.total += epoch_sum;
        sums.count += epoch_losses.len();
        sums.all.extend(epoch_losses.iter().map(|&l| l as f32));
        let cumulative = if sums.all.len() == sums.count {
            // `torch.tensor(train_losses).mean()`: a float32 mean of every loss so far.
            Tensor::from_slice(&sums.all)
                .mean(Kind::Float)
                .double_value(&[])
        } else {
            // A resume point written before every loss was kept.
            sums.total / sums.count as f64
        };
        let (val_loss, val_accuracy, _) = evaluate(&self.net, &self.val, self.config.eval_chunk);
        ctx.check_finite("the validation loss", val_loss)?;
        let row = EpochRow {
            epoch: ctx.number,
            train_loss_cumulative: cumulative,
            train_loss_epoch: epoch_sum / epoch_losses.len() as f64,
            val_loss,
            val_accuracy,
            seconds: t.elapsed().as_secs_f64(),
        };
        println!("Training loss: {:.4}", row.train_loss_cumulative);
        println!("Valid loss: {:.4}", row.val_loss);
        println!("Valid acc: {:.4}", row.val_accuracy);
        eprintln!("epoch {}: {:.1} s", ctx.number, row.seconds);
        Ok(Verdict { row, keep: true })
    }

    fn save_checkpoint(&self, path: &Path) -> Result<()> {
        torchkit::checkpoint::save(&self.vs, &[], path)
    }

    fn load_checkpoint(&mut self, path: &Path) -> Result<()> {
        torchkit::checkpoint::load(&mut self.vs, &[], path)
    }
}

/// Trains a fresh model (seeded by the caller through `torchkit::rng::seed`), evaluating
/// the validation split after every epoch and printing the skeleton's lines; the final weights are
/// the checkpoint. An interrupted run continues after its last finished epoch exactly; a
/// finished one is reused (see `torchkit::trainer`).
pub fn train(
    model: &CnnConfig,
    config: &TrainConfig,
    data: &Dataset,
    files: &RunFiles,
    device: Device,
) -> Result<Trained> {
    let (vs, net, optimizer) = for_training(model, config, device);
    eprintln!("backend: {}", net.backend().describe());
    let run = trainer::Run {
        stem: files.checkpoint.with_extension(""),
        checkpoint: files.checkpoint.clone(),
        log_csv: files.log_csv.clone(),
        options: format!("{config:?} {model:?}"),
        data_sha256: data.sha256.clone(),
        epochs: config.epochs,
        replace: files.replace,
        device,
        extra_outputs: Vec::new(),
        fixed_threads: net.backend().fixed_threads(),
    };
    // Both splits move to the device once, not once per epoch.
    let mut skeleton = Skeleton {
        vs,
        net,
        optimizer,
        train: data.train.to_device(device),
        val: data.val.to_device(device),
        config,
    };
    let fitted = trainer::fit(&mut skeleton, &run, LossSums::default())?;
    Ok(Trained {
        vs: skeleton.vs,
        net: skeleton.net,
        epochs: fitted.rows,
        resumed_after_epochs: fitted.resumed_after_epochs,
        places: fitted.places,
        seconds: fitted.seconds,
    })
}

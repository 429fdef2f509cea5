//! A toy training (a linear layer under Adam, a shuffled batch order) whose resume point the
//! `resume` campaign damages: the rerun must resume, or refuse in one sentence naming the
//! broken file; and the rerun with `--force` must then succeed.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, VarStore};
use tch::{Device, Kind, Tensor};
use torchkit::optim::Optimizer;
use torchkit::trainer::{fit, Epoch, Learner, Run, Verdict};

/// What `--force` failing to start afresh is reported as (never expected).
pub const FORCE_FAILED: &str = "FORCE FAILED";

#[derive(Clone, Serialize, Deserialize)]
struct Row {
    epoch: usize,
    loss: f64,
}

struct Toy {
    vs: VarStore,
    layer: nn::Linear,
    adam: torchkit::optim::Adam,
    x: Tensor,
    y: Tensor,
    stop_at: Option<usize>,
}

impl Toy {
    fn new(stop_at: Option<usize>) -> Self {
        torchkit::rng::seed(3);
        let vs = VarStore::new(Device::Cpu);
        let layer = nn::linear(vs.root() / "layer", 4, 3, Default::default());
        let adam = torchkit::optim::Adam::new(&vs, 0.01, 0.0);
        let x = Tensor::randn([32, 4], (Kind::Float, Device::Cpu));
        let y = Tensor::randn([32, 3], (Kind::Float, Device::Cpu));
        Self {
            vs,
            layer,
            adam,
            x,
            y,
            stop_at,
        }
    }
}

impl Learner for Toy {
    type Row = Row;
    type Carry = Vec<f64>;

    fn var_store(&mut self) -> &mut VarStore {
        &mut self.vs
    }

    fn optimizer_state(&self) -> Vec<(String, Tensor)> {
        self.adam.state()
    }

    fn load_optimizer_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        self.adam.load_state(state)
    }

    fn epoch(&mut self, losses: &mut Vec<f64>, ctx: &mut Epoch) -> Result<Verdict<Row>> {
        if self.stop_at == Some(ctx.number) {
            return Err(anyhow!("stopped before epoch {}", ctx.number));
        }
        let order = Tensor::randperm(32, (Kind::Int64, Device::Cpu));
        let mut loss = 0.0;
        for b in 0..4 {
            let idx = order.narrow(0, 8 * b, 8);
            let out = self.layer.forward(&self.x.index_select(0, &idx));
            let l = out.mse_loss(&self.y.index_select(0, &idx), tch::Reduction::Mean);
            self.adam.zero_grad();
            l.backward();
            self.adam.step();
            loss = l.double_value(&[]);
            ctx.check_finite("a batch", loss)?;
        }
        let keep = losses.iter().all(|&l| loss < l);
        losses.push(loss);
        Ok(Verdict {
            row: Row {
                epoch: ctx.number,
                loss,
            },
            keep,
        })
    }

    fn save_checkpoint(&self, path: &Path) -> Result<()> {
        torchkit::checkpoint::save(&self.vs, &[], path)
    }

    fn load_checkpoint(&mut self, path: &Path) -> Result<()> {
        torchkit::checkpoint::load(&mut self.vs, &[], path)
    }
}

fn run(dir: &Path, replace: bool) -> Run {
    Run {
        stem: dir.join("toy"),
        checkpoint: dir.join("toy.safetensors"),
        log_csv: dir.join("toy_epochs.csv"),
        options: "toy".into(),
        data_sha256: "0".repeat(64),
        epochs: 3,
        replace,
        device: Device::Cpu,
        extra_outputs: Vec::new(),
        fixed_threads: true,
    }
}

/// Writes the resume point of a toy training stopped after two of its three epochs.
pub fn make(dir: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let err = fit(&mut Toy::new(Some(3)), &run(dir, false), Vec::new())
        .err()
        .ok_or_else(|| anyhow!("the toy training did not stop"))?;
    anyhow::ensure!(
        err.to_string().contains("stopped before epoch 3"),
        "the toy training failed: {err:#}"
    );
    Ok(())
}

/// Reruns the training in `dir`: resumed, or refused; refused, it must succeed with
/// `--force` (else the error carries [`FORCE_FAILED`]).
pub fn resume(dir: &Path) -> Result<()> {
    match fit(&mut Toy::new(None), &run(dir, false), Vec::new()) {
        Ok(_) => Ok(()),
        Err(e) => match fit(&mut Toy::new(None), &run(dir, true), Vec::new()) {
            Ok(_) => Err(e),
            Err(forced) => Err(anyhow!("{FORCE_FAILED}: {forced:#} (after: {e:#})")),
        },
    }
}

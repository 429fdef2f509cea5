//! The epoch loop's contract with a toy learner: outputs after every epoch, exact resume
//! (generator included), a finished run reused and one of other options refused, a foreign
//! checkpoint left alone, one writer at a time, and a diverging epoch stopping the run with
//! nothing of it saved. The model crates' own tests check their learners on top of this.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};
use torchkit::rng::exclusive;
use torchkit::trainer::{fit, Epoch, Learner, Run, Verdict};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Row {
    epoch: usize,
    weight: f64,
    draw: f64,
}

/// Adds the epoch number to one weight and records a draw from libtorch's generator; keeps
/// odd epochs; the epoch `nan_at` reports a NaN loss, the epoch `inf_at` makes the weight
/// infinite (with a finite loss).
struct Toy {
    vs: VarStore,
    nan_at: Option<usize>,
    inf_at: Option<usize>,
}

impl Toy {
    fn new() -> Self {
        let vs = VarStore::new(Device::Cpu);
        let _ = vs.root().zeros("w", &[1]);
        Self {
            vs,
            nan_at: None,
            inf_at: None,
        }
    }
    fn weight(&self) -> f64 {
        self.vs.variables()["w"].double_value(&[0])
    }
}

impl Learner for Toy {
    type Row = Row;
    type Carry = Vec<usize>;

    fn var_store(&mut self) -> &mut VarStore {
        &mut self.vs
    }

    fn epoch(&mut self, seen: &mut Vec<usize>, ctx: &mut Epoch) -> Result<Verdict<Row>> {
        let draw = Tensor::rand([1], (Kind::Double, Device::Cpu)).double_value(&[0]);
        // Two batches through the trainer's batch loop; the second's loss is NaN at `nan_at`.
        let nan = self.nan_at == Some(ctx.number);
        let losses = ctx.train_batches(0..2usize, |b| {
            Ok(if nan && b == 1 { f64::NAN } else { 1.0 })
        })?;
        assert_eq!(losses, [1.0, 1.0]);
        let step = if self.inf_at == Some(ctx.number) {
            f64::INFINITY
        } else {
            ctx.number as f64
        };
        tch::no_grad(|| {
            let mut w = self.vs.variables()["w"].shallow_clone();
            let _ = w.g_add_scalar_(step);
        });
        seen.push(ctx.number);
        Ok(Verdict {
            row: Row {
                epoch: ctx.number,
                weight: self.weight(),
                draw,
            },
            keep: ctx.number % 2 == 1,
        })
    }

    fn save_checkpoint(&self, path: &Path) -> Result<()> {
        torchkit::checkpoint::save(&self.vs, &[], path)
    }

    fn load_checkpoint(&mut self, path: &Path) -> Result<()> {
        torchkit::checkpoint::load(&mut self.vs, &[], path)
    }
}

fn run(dir: &Path, epochs: usize, options: &str) -> Run {
    Run {
        stem: dir.join("toy"),
        checkpoint: dir.join("toy.safetensors"),
        log_csv: dir.join("toy_epochs.csv"),
        options: options.into(),
        data_sha256: "d".repeat(64),
        epochs,
        replace: false,
        device: Device::Cpu,
        extra_outputs: Vec::new(),
        fixed_threads: false,
    }
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("trainer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn checkpoint_weight(path: &Path) -> f64 {
    let mut toy = Toy::new();
    toy.load_checkpoint(path).unwrap();
    toy.weight()
}

#[test]
fn a_run_resumed_after_a_stop_ends_as_an_unbroken_one() {
    let _g = exclusive();
    let whole = dir("whole");
    torchkit::rng::seed(5);
    let full = fit(&mut Toy::new(), &run(&whole, 4, "a"), Vec::new()).unwrap();
    assert_eq!(full.rows.len(), 4);
    assert_eq!(full.best_epoch, 3, "odd epochs are kept");
    assert_eq!(
        checkpoint_weight(&whole.join("toy.safetensors")),
        6.0,
        "1+2+3"
    );
    assert_eq!(
        std::fs::read_to_string(whole.join("toy_epochs.csv"))
            .unwrap()
            .lines()
            .count(),
        5
    );

    // Stopped by divergence in epoch 3: epochs 1 and 2 are committed, nothing of epoch 3.
    let broken = dir("broken");
    torchkit::rng::seed(5);
    let mut toy = Toy::new();
    toy.nan_at = Some(3);
    let err = fit(&mut toy, &run(&broken, 4, "a"), Vec::new()).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("in epoch 3, the loss of batch 2 of 2 is NaN")
            && msg.contains("after epoch 2 is kept"),
        "{msg}"
    );
    assert_eq!(
        checkpoint_weight(&broken.join("toy.safetensors")),
        1.0,
        "epoch 1, the kept one"
    );
    assert!(broken.join("toy.resume.json").exists());

    // The rerun (in a process whose generator has moved on) continues exactly.
    torchkit::rng::seed(999);
    let _ = Tensor::rand([17], (Kind::Float, Device::Cpu));
    let resumed = fit(&mut Toy::new(), &run(&broken, 4, "a"), Vec::new()).unwrap();
    assert_eq!(
        resumed.rows, full.rows,
        "the same weights and the same draws"
    );
    assert_eq!(resumed.carry, [1, 2, 3, 4]);
    assert_eq!(resumed.resumed_after_epochs, [2]);
    assert_eq!(
        std::fs::read(whole.join("toy.safetensors")).unwrap(),
        std::fs::read(broken.join("toy.safetensors")).unwrap()
    );
    assert!(!broken.join("toy.resume.json").exists());
    assert!(std::fs::read_dir(&broken).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains(".state-")));

    // Finished: reused as it is, with its weights loaded.
    let mut again = Toy::new();
    let reused = fit(&mut again, &run(&broken, 4, "a"), Vec::new()).unwrap();
    assert!(reused.reused);
    assert_eq!(again.weight(), 6.0);
    // Other options: refused, unless replaced.
    let err = fit(&mut Toy::new(), &run(&broken, 4, "b"), Vec::new()).unwrap_err();
    assert!(
        format!("{err:#}").contains("options were `a`, now `b`"),
        "{err:#}"
    );
    let replaced = fit(
        &mut Toy::new(),
        &Run {
            replace: true,
            ..run(&broken, 2, "b")
        },
        Vec::new(),
    )
    .unwrap();
    assert!(!replaced.reused && replaced.rows.len() == 2);
    for d in [whole, broken] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn foreign_files_and_a_second_writer_are_refused() {
    let _g = exclusive();
    let d = dir("foreign");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("toy.safetensors"), b"someone's weights").unwrap();
    let err = fit(&mut Toy::new(), &run(&d, 1, "a"), Vec::new()).unwrap_err();
    assert!(
        format!("{err:#}").contains("no record says which run wrote it"),
        "{err:#}"
    );
    assert_eq!(
        std::fs::read(d.join("toy.safetensors")).unwrap(),
        b"someone's weights"
    );

    std::fs::remove_file(d.join("toy.safetensors")).unwrap();
    let held = artifacts::Lock::acquire(d.join("toy.lock"), "test").unwrap();
    let err = fit(&mut Toy::new(), &run(&d, 1, "a"), Vec::new()).unwrap_err();
    assert!(
        format!("{err:#}").contains("another process is writing"),
        "{err:#}"
    );
    drop(held);
    fit(&mut Toy::new(), &run(&d, 1, "a"), Vec::new()).unwrap();
    std::fs::remove_dir_all(d).unwrap();
}

/// A run stopped by divergence in epoch 3 of 4: epochs 1 and 2 committed (state 2, and
/// state 1 as the kept one).
fn stopped_run(d: &Path) {
    torchkit::rng::seed(5);
    let mut toy = Toy::new();
    toy.nan_at = Some(3);
    fit(&mut toy, &run(d, 4, "a"), Vec::new()).unwrap_err();
    assert!(d.join("toy.resume.json").exists() && d.join("toy.state-2.safetensors").exists());
}

#[test]
fn a_broken_resume_point_is_named_and_force_starts_afresh() {
    let _g = exclusive();
    let whole = dir("unbroken");
    torchkit::rng::seed(5);
    let full = fit(&mut Toy::new(), &run(&whole, 4, "a"), Vec::new()).unwrap();
    // (what, what the error names, how the resume point is broken)
    type Breakage = (&'static str, &'static str, fn(&Path));
    let breakages: [Breakage; 6] = [
        ("truncated state", "toy.state-2.safetensors", |d| {
            let p = d.join("toy.state-2.safetensors");
            let b = std::fs::read(&p).unwrap();
            std::fs::write(&p, &b[..b.len() / 2]).unwrap();
        }),
        ("deleted state", "toy.state-2.safetensors", |d| {
            std::fs::remove_file(d.join("toy.state-2.safetensors")).unwrap();
        }),
        ("garbled manifest", "toy.resume.json", |d| {
            let p = d.join("toy.resume.json");
            let t = std::fs::read_to_string(&p).unwrap();
            std::fs::write(&p, t.replace("\"epoch\"", "\"epoch\" oops")).unwrap();
        }),
        ("a state elsewhere", "not one of this run's", |d| {
            let p = d.join("toy.resume.json");
            let t = std::fs::read_to_string(&p).unwrap();
            std::fs::write(
                &p,
                t.replace("toy.state-2.safetensors", "../toy.state-2.safetensors"),
            )
            .unwrap();
        }),
        (
            "a state of another shape, under a manifest without checksums",
            "lacks 'w' with shape [1]",
            |d| {
                let named = [(
                    "model.w".to_string(),
                    Tensor::zeros([3], (Kind::Float, Device::Cpu)),
                )];
                Tensor::write_safetensors(&named, d.join("toy.state-1.safetensors")).unwrap();
                let p = d.join("toy.resume.json");
                let mut m: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
                m.as_object_mut().unwrap().remove("sha256");
                std::fs::write(&p, m.to_string()).unwrap();
            },
        ),
        (
            "a state damaged in place",
            "is not the file its manifest recorded",
            |d| {
                // Its last byte: part of a value, which would still parse (and resume wrongly).
                let p = d.join("toy.state-2.safetensors");
                let mut b = std::fs::read(&p).unwrap();
                *b.last_mut().unwrap() ^= 0x40;
                std::fs::write(&p, b).unwrap();
            },
        ),
    ];
    for (what, named, break_it) in breakages {
        let d = dir("broken-resume");
        stopped_run(&d);
        break_it(&d);
        // Without --force: one sentence naming the broken file and the way out.
        let err = format!(
            "{:#}",
            fit(&mut Toy::new(), &run(&d, 4, "a"), Vec::new()).unwrap_err()
        );
        assert!(
            err.contains(named) && err.contains("pass --force to start afresh"),
            "{what}: {err}"
        );
        // With --force: a fresh run, as if the resume point had never been.
        torchkit::rng::seed(5);
        let mut toy = Toy::new();
        let forced = fit(
            &mut toy,
            &Run {
                replace: true,
                ..run(&d, 4, "a")
            },
            Vec::new(),
        )
        .unwrap_or_else(|e| panic!("{what}: {e:#}"));
        assert_eq!(forced.rows, full.rows, "{what}");
        assert!(forced.resumed_after_epochs.is_empty(), "{what}");
        assert_eq!(
            std::fs::read(whole.join("toy.safetensors")).unwrap(),
            std::fs::read(d.join("toy.safetensors")).unwrap(),
            "{what}"
        );
        std::fs::remove_dir_all(d).unwrap();
    }
    // A garbled record of a finished run: named, and replaced with --force.
    std::fs::write(whole.join("toy.run.json"), b"{ not json").unwrap();
    let err = format!(
        "{:#}",
        fit(&mut Toy::new(), &run(&whole, 4, "a"), Vec::new()).unwrap_err()
    );
    assert!(
        err.contains("toy.run.json") && err.contains("pass --force"),
        "{err}"
    );
    torchkit::rng::seed(5);
    let again = fit(
        &mut Toy::new(),
        &Run {
            replace: true,
            ..run(&whole, 4, "a")
        },
        Vec::new(),
    )
    .unwrap();
    assert_eq!(again.rows, full.rows);
    std::fs::remove_dir_all(whole).unwrap();
}

#[test]
fn non_finite_weights_stop_the_run_like_a_non_finite_loss() {
    let _g = exclusive();
    let d = dir("inf");
    let mut toy = Toy::new();
    toy.inf_at = Some(2);
    let err = format!(
        "{:#}",
        fit(&mut toy, &run(&d, 3, "a"), Vec::new()).unwrap_err()
    );
    assert!(
        err.contains("in epoch 2, the weight 'w' holds NaN or infinite values")
            && err.contains("after epoch 1 is kept"),
        "{err}"
    );
    assert_eq!(checkpoint_weight(&d.join("toy.safetensors")), 1.0);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn an_output_that_is_a_folder_fails_before_any_epoch_or_lock() {
    let _g = exclusive();
    let d = dir("folder-out");
    std::fs::create_dir_all(d.join("toy.safetensors")).unwrap();
    let err = format!(
        "{:#}",
        fit(
            &mut Toy::new(),
            &Run {
                replace: true,
                ..run(&d, 2, "a")
            },
            Vec::new()
        )
        .unwrap_err()
    );
    assert!(err.contains("toy.safetensors is a folder"), "{err}");
    let mut left: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["toy.safetensors"], "nothing written beside it");
    std::fs::remove_dir_all(d).unwrap();
}

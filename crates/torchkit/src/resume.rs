//! Resume points: after every epoch a run saves its weights (buffers included), its
//! optimiser state and its progress (the caller's serialisable bookkeeping: epoch rows,
//! running sums, best so far), atomically. Restarted with the same configuration, the run
//! continues after the last saved epoch; a finished run removes its resume point.
//!
//! libtorch's generator state is out of tch's reach, so a resumed run reseeds the generator
//! from (seed, epoch): it stays deterministic, but from the resumed epoch on it draws other
//! dropout masks and shuffles than an uninterrupted run would. Callers record
//! `resumed_after_epoch` so reports say so.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::Tensor;

/// Where one run keeps its resume point: `<stem>.resume.json` and
/// `<stem>.resume-<epoch>.safetensors`.
#[derive(Debug, Clone)]
pub struct Resume {
    stem: PathBuf,
    key: String,
    seed: u64,
}

/// What was saved after an epoch.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest<P> {
    /// Epochs finished.
    epoch: usize,
    /// The configuration the run was started with.
    key: String,
    /// Tensor file of this epoch.
    tensors: String,
    progress: P,
}

/// A restored run: the epoch it finished, the optimiser state and the caller's progress.
pub struct Restored<P> {
    /// Epochs already finished (training continues with `epoch + 1`).
    pub epoch: usize,
    /// Optimiser tensors (empty for stateless optimisers).
    pub optimizer: HashMap<String, Tensor>,
    /// The caller's progress.
    pub progress: P,
}

impl Resume {
    /// A resume point for the run whose outputs start with `stem` (e.g. `out/attention`),
    /// started with configuration `key` (any text that changes when the run would) and `seed`.
    pub fn new(stem: impl AsRef<Path>, key: impl Into<String>, seed: u64) -> Self {
        Self {
            stem: stem.as_ref().to_path_buf(),
            key: key.into(),
            seed,
        }
    }

    fn manifest_path(&self) -> PathBuf {
        let mut name = self.stem.file_name().unwrap_or_default().to_os_string();
        name.push(".resume.json");
        self.stem.with_file_name(name)
    }

    fn tensors_name(&self, epoch: usize) -> String {
        format!(
            "{}.resume-{epoch}.safetensors",
            self.stem.file_name().unwrap_or_default().to_string_lossy()
        )
    }

    /// Saves the state after `epoch`: tensors first, then the manifest that points at them
    /// (so a crash in between leaves the previous point intact), then drops the old tensors.
    pub fn save<P: Serialize>(
        &self,
        epoch: usize,
        vs: &VarStore,
        optimizer: Vec<(String, Tensor)>,
        progress: &P,
    ) -> Result<()> {
        let mut named: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .map(|(k, v)| (format!("model.{k}"), v.to_device(tch::Device::Cpu)))
            .collect();
        named.extend(
            optimizer
                .into_iter()
                .map(|(k, v)| (format!("optimizer.{k}"), v.to_device(tch::Device::Cpu))),
        );
        let tensors = self.tensors_name(epoch);
        let path = self.stem.with_file_name(&tensors);
        artifacts::with_temp_file(&path, |tmp| {
            Tensor::write_safetensors(&named, tmp).map_err(anyhow::Error::from)
        })
        .with_context(|| format!("saving resume point {}", path.display()))?;
        let previous = self.manifest::<serde_json::Value>().ok().flatten();
        artifacts::write_json(
            self.manifest_path(),
            &Manifest {
                epoch,
                key: self.key.clone(),
                tensors,
                progress,
            },
        )?;
        if let Some(old) = previous.filter(|m| m.epoch != epoch) {
            let _ = std::fs::remove_file(self.stem.with_file_name(old.tensors));
        }
        Ok(())
    }

    fn manifest<P: DeserializeOwned>(&self) -> Result<Option<Manifest<P>>> {
        let path = self.manifest_path();
        if !path.exists() {
            return Ok(None);
        }
        let m = artifacts::read_json(&path).context("reading a resume point")?;
        Ok(Some(m))
    }

    /// Restores the last saved epoch into `vs` and reseeds the generator, or returns `None`
    /// when there is no resume point. A point saved under another configuration is an error.
    pub fn load<P: DeserializeOwned>(&self, vs: &mut VarStore) -> Result<Option<Restored<P>>> {
        let Some(m) = self.manifest::<P>()? else {
            return Ok(None);
        };
        let manifest = self.manifest_path();
        if m.key != self.key {
            bail!(
                "{} was saved by a run with another configuration; delete it (and its .safetensors) to start afresh",
                manifest.display()
            );
        }
        let path = self.stem.with_file_name(&m.tensors);
        let file: HashMap<String, Tensor> = Tensor::read_safetensors(&path)
            .with_context(|| format!("reading resume point {}", path.display()))?
            .into_iter()
            .collect();
        tch::no_grad(|| -> Result<()> {
            for (name, mut var) in vs.variables() {
                match file.get(&format!("model.{name}")) {
                    Some(t) if t.size() == var.size() => {
                        var.copy_(&t.to_device(var.device()));
                    }
                    _ => bail!(
                        "resume point {} lacks '{name}' with shape {:?}",
                        path.display(),
                        var.size()
                    ),
                }
            }
            Ok(())
        })?;
        let optimizer = file
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("optimizer.")?.to_string(), v)))
            .collect();
        crate::rng::seed(resumed_seed(self.seed, m.epoch));
        eprintln!(
            "resuming after epoch {} from {} (the generator is reseeded: later draws differ from an uninterrupted run)",
            m.epoch,
            manifest.display()
        );
        Ok(Some(Restored {
            epoch: m.epoch,
            optimizer,
            progress: m.progress,
        }))
    }

    /// Removes the resume point (the run finished).
    pub fn finish(&self) -> Result<()> {
        if let Some(m) = self.manifest::<serde_json::Value>()? {
            let _ = std::fs::remove_file(self.stem.with_file_name(m.tensors));
            std::fs::remove_file(self.manifest_path())?;
        }
        Ok(())
    }
}

/// The seed a run resumed after `epoch` continues with.
pub fn resumed_seed(seed: u64, epoch: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ epoch as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn;
    use tch::Device;

    #[test]
    fn saves_restores_and_refuses_another_configuration() {
        let dir = std::env::temp_dir().join(format!("resume-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let stem = dir.join("run");
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = vs.root().randn("w", &[3, 4], 0.0, 1.0);
        let r = Resume::new(&stem, "config A", 7);
        let opt = || vec![("step".to_string(), Tensor::from_slice(&[5i64]))];
        r.save(1, &vs, opt(), &vec![0.5f64]).unwrap();
        r.save(2, &vs, opt(), &vec![0.5f64, 0.25]).unwrap();
        assert!(
            !dir.join("run.resume-1.safetensors").exists(),
            "old tensors dropped"
        );

        let mut other = nn::VarStore::new(Device::Cpu);
        let _ = other.root().zeros("w", &[3, 4]);
        let restored = r.load::<Vec<f64>>(&mut other).unwrap().unwrap();
        assert_eq!(restored.epoch, 2);
        assert_eq!(restored.progress, vec![0.5, 0.25]);
        assert_eq!(restored.optimizer["step"].int64_value(&[0]), 5);
        assert!(other.variables()["w"].equal(&vs.variables()["w"]));

        let err = Resume::new(&stem, "config B", 7)
            .load::<Vec<f64>>(&mut other)
            .err()
            .unwrap();
        assert!(err.to_string().contains("another configuration"), "{err}");
        let mut wrong = nn::VarStore::new(Device::Cpu);
        let _ = wrong.root().zeros("w", &[2, 2]);
        assert!(r.load::<Vec<f64>>(&mut wrong).is_err(), "shape mismatch");

        r.finish().unwrap();
        assert!(r.load::<Vec<f64>>(&mut other).unwrap().is_none());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing left");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

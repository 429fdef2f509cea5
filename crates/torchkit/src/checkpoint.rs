//! Safetensors checkpoints under PyTorch `state_dict` names.
//!
//! A VarStore's variable names are already PyTorch's (`encoder.lstm.weight_ih_l0`), so a
//! checkpoint is the store's tensors plus any **aliases** — names under which PyTorch also
//! stores a tied tensor (`generator.weight` = `decoder.embedding.weight`). Loading is strict:
//! every variable must be in the file with the right shape, type and finite values, and
//! nothing unknown may be in it. A PyTorch `.pt` state_dict (`torch.save`) loads the same way.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use tch::nn::VarStore;
use tch::Tensor;

/// A tied tensor stored twice: `(alias, variable)`.
pub type Alias<'a> = (&'a str, &'a str);

/// Text a checkpoint carries besides its tensors: what the weights need to be used
/// correctly, such as a vocabulary. It is stored as one JSON entry of safetensors'
/// `__metadata__` ([`METADATA_KEY`]), in key order, so that the same weights and metadata
/// always give the same bytes (the format's own map is written in hash order).
pub type Metadata = std::collections::BTreeMap<String, String>;

/// The `__metadata__` entry that holds [`Metadata`].
pub const METADATA_KEY: &str = "hw2-rs";

/// A tensor's bytes for the safetensors writer.
struct Bytes {
    dtype: safetensors::Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl safetensors::View for &Bytes {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn bytes_of(t: &Tensor) -> Result<Bytes> {
    use safetensors::Dtype as D;
    use tch::Kind as K;
    let dtype = match t.kind() {
        K::Float => D::F32,
        K::Double => D::F64,
        K::Half => D::F16,
        K::BFloat16 => D::BF16,
        K::Int64 => D::I64,
        K::Int => D::I32,
        K::Int16 => D::I16,
        K::Int8 => D::I8,
        K::Uint8 => D::U8,
        K::Bool => D::BOOL,
        other => bail!("no safetensors type for {other:?}"),
    };
    let t = t.to_device(tch::Device::Cpu).contiguous();
    let numel = t.numel();
    let mut data = vec![0u8; numel * t.kind().elt_size_in_bytes()];
    t.f_copy_data_u8(&mut data, numel)?;
    Ok(Bytes {
        dtype,
        shape: t.size().iter().map(|&n| n as usize).collect(),
        data,
    })
}

/// Writes named tensors and metadata as safetensors at `path`, atomically.
pub fn write(named: &[(String, Tensor)], metadata: &Metadata, path: &Path) -> Result<()> {
    let bytes: Vec<(String, Bytes)> = named
        .iter()
        .map(|(k, t)| Ok((k.clone(), bytes_of(t)?)))
        .collect::<Result<_>>()?;
    let info: Option<HashMap<String, String>> = if metadata.is_empty() {
        None
    } else {
        Some(HashMap::from([(
            METADATA_KEY.to_string(),
            serde_json::to_string(metadata)?,
        )]))
    };
    artifacts::with_temp_file(path, |tmp| {
        safetensors::tensor::serialize_to_file(
            bytes.iter().map(|(k, b)| (k.as_str(), b)),
            &info,
            tmp,
        )
        .map_err(|e| anyhow::anyhow!("{e:?}"))
    })
    .with_context(|| format!("saving checkpoint {}", path.display()))
}

/// The metadata of a safetensors checkpoint (empty for one without, or a PyTorch `.pt`).
pub fn metadata(path: impl AsRef<Path>) -> Result<Metadata> {
    let path = path.as_ref();
    if crate::pytorch::is_pytorch_file(path) {
        return Ok(Metadata::new());
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .with_context(|| format!("reading the header of {}", path.display()))?;
    match header.metadata().as_ref().and_then(|m| m.get(METADATA_KEY)) {
        Some(json) => serde_json::from_str(json)
            .with_context(|| format!("{}: unreadable {METADATA_KEY} metadata", path.display())),
        None => Ok(Metadata::new()),
    }
}

/// Writes every variable of `vs` (and the aliases) to `path` as safetensors, atomically.
pub fn save(vs: &VarStore, aliases: &[Alias], path: impl AsRef<Path>) -> Result<()> {
    save_with(vs, aliases, &Metadata::new(), path)
}

/// [`save`] with metadata.
pub fn save_with(
    vs: &VarStore,
    aliases: &[Alias],
    metadata: &Metadata,
    path: impl AsRef<Path>,
) -> Result<()> {
    let vars = vs.variables();
    let mut named: Vec<(String, Tensor)> = vars
        .iter()
        .map(|(k, v)| (k.clone(), v.to_device(tch::Device::Cpu)))
        .collect();
    for (alias, target) in aliases {
        let t = vars
            .get(*target)
            .with_context(|| format!("alias {alias} names unknown variable {target}"))?;
        named.push((alias.to_string(), t.to_device(tch::Device::Cpu)));
    }
    named.sort_by(|a, b| a.0.cmp(&b.0));
    write(&named, metadata, path.as_ref())
}

/// The named tensors of a checkpoint: safetensors, or a PyTorch `.pt` state_dict (told
/// apart by content, not by the file name).
pub fn read(path: impl AsRef<Path>) -> Result<Vec<(String, Tensor)>> {
    let path = path.as_ref();
    if crate::pytorch::is_pytorch_file(path) {
        return crate::pytorch::read_state_dict(path);
    }
    Tensor::read_safetensors(path).with_context(|| {
        format!(
            "reading checkpoint {} (neither safetensors nor a PyTorch .pt file?)",
            path.display()
        )
    })
}

/// Loads `path` (safetensors or PyTorch `.pt`) into `vs`: every variable must be present
/// with its shape and type, and finite; aliases, when present, must equal their variable;
/// any other tensor in the file is an error.
pub fn load(vs: &mut VarStore, aliases: &[Alias], path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let file: HashMap<String, Tensor> = read(path)?.into_iter().collect();
    let vars = vs.variables();
    for (name, var) in &vars {
        let Some(t) = file.get(name) else {
            bail!("checkpoint {} has no tensor '{name}' (was it saved by a model with the same options, e.g. --use-attn?)", path.display());
        };
        if t.size() != var.size() {
            bail!(
                "checkpoint {}: '{name}' has shape {:?}, the model expects {:?}",
                path.display(),
                t.size(),
                var.size()
            );
        }
        if t.kind() != var.kind() {
            bail!(
                "checkpoint {}: '{name}' is {:?}, the model expects {:?}",
                path.display(),
                t.kind(),
                var.kind()
            );
        }
        if t.is_floating_point() && !bool::try_from(t.isfinite().all()).unwrap_or(false) {
            bail!(
                "checkpoint {}: '{name}' holds NaN or infinite values (saved from a diverged run?)",
                path.display()
            );
        }
    }
    for (alias, target) in aliases {
        if let Some(t) = file.get(*alias) {
            let same = t.size() == file[*target].size() && t.equal(&file[*target]);
            if !same {
                bail!(
                    "checkpoint {}: '{alias}' must equal '{target}' (tied weights) but differs",
                    path.display()
                );
            }
        }
    }
    let unknown: Vec<&String> = file
        .keys()
        .filter(|k| !vars.contains_key(*k) && !aliases.iter().any(|(a, _)| a == k))
        .collect();
    if !unknown.is_empty() {
        bail!("checkpoint {} has tensors the model does not: {unknown:?} (was it saved with different options?)", path.display());
    }
    tch::no_grad(|| {
        for (name, mut var) in vars {
            var.copy_(&file[&name]);
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device, Kind};

    fn store() -> VarStore {
        let vs = VarStore::new(Device::Cpu);
        let root = vs.root();
        let _ = crate::layers::linear(&(&root / "a"), 3, 2, true);
        let _ = crate::layers::embedding(&(&root / "emb"), 4, 3, Some(0));
        vs
    }

    fn tmp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "torchkit-{name}-{}.safetensors",
            std::process::id()
        ))
    }

    #[test]
    fn round_trip_with_alias() {
        let path = tmp("rt");
        let vs = store();
        let meta = Metadata::from([("vocab".to_string(), "[\"a\",\"ə\"]".to_string())]);
        save_with(&vs, &[("gen.weight", "emb.weight")], &meta, &path).unwrap();
        assert_eq!(metadata(&path).unwrap(), meta);
        let names: Vec<String> = Tensor::read_safetensors(&path)
            .unwrap()
            .into_iter()
            .map(|x| x.0)
            .collect();
        assert_eq!(names.len(), 4);
        let mut other = store();
        load(&mut other, &[("gen.weight", "emb.weight")], &path).unwrap();
        for (k, v) in vs.variables() {
            assert!(v.equal(&other.variables()[&k]), "{k} differs after load");
        }
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn non_finite_weights_are_refused() {
        let path = tmp("nan");
        let vs = store();
        tch::no_grad(|| {
            let mut bias = vs.variables()["a.bias"].shallow_clone();
            let _ = bias.fill_(f64::NAN);
        });
        save(&vs, &[], &path).unwrap();
        assert!(metadata(&path).unwrap().is_empty());
        let err = load(&mut store(), &[], &path).unwrap_err().to_string();
        assert!(err.contains("'a.bias' holds NaN"), "{err}");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn strict_errors_name_the_tensor() {
        let path = tmp("strict");
        let small = VarStore::new(Device::Cpu);
        let _ = crate::layers::linear(&(&small.root() / "a"), 3, 2, true);
        save(&small, &[], &path).unwrap();
        let mut vs = store();
        let err = load(&mut vs, &[], &path).unwrap_err().to_string();
        assert!(err.contains("no tensor 'emb.weight'"), "{err}");

        let wrong = VarStore::new(Device::Cpu);
        let _ = crate::layers::linear(&(&wrong.root() / "a"), 5, 2, true);
        let _ = crate::layers::embedding(&(&wrong.root() / "emb"), 4, 3, Some(0));
        save(&wrong, &[], &path).unwrap();
        let err = load(&mut vs, &[], &path).unwrap_err().to_string();
        assert!(err.contains("'a.weight' has shape [2, 5]"), "{err}");

        let extra = store();
        let _ = extra.root().var("extra", &[1], nn::Init::Const(0.0));
        save(&extra, &[], &path).unwrap();
        let err = load(&mut vs, &[], &path).unwrap_err().to_string();
        assert!(err.contains("\"extra\""), "{err}");

        let tied = store();
        save(&tied, &[("gen.weight", "emb.weight")], &path).unwrap();
        let mut entries = Tensor::read_safetensors(&path).unwrap();
        for (name, t) in &mut entries {
            if name == "gen.weight" {
                *t = t.ones_like().to_kind(Kind::Float);
            }
        }
        Tensor::write_safetensors(&entries, &path).unwrap();
        let err = load(&mut vs, &[("gen.weight", "emb.weight")], &path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tied weights"), "{err}");
        std::fs::remove_file(path).unwrap();
    }
}

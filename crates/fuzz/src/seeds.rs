//! The real files each campaign mutates, made here so that a fresh clone has them: a
//! checkpoint of a small seq2seq model as `torch.save` lays it out and as safetensors, a
//! small npz of the Intel layout, a TSV of the homework's format, and a training's resume
//! point (written by the reader binary, which trains for it).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use anyhow::Result;
use seq2seq::model::{Model, ModelConfig};
use tch::{Device, Kind, Tensor};

/// The model every checkpoint seed holds (and the reader loads into).
pub fn model_config() -> ModelConfig {
    ModelConfig {
        src_vocab: 12,
        tgt_vocab: 10,
        hidden: 8,
        dropout: 0.3,
        attention: true,
        hopfield: None,
    }
}

/// A freshly initialised model of [`model_config`], from a fixed seed.
pub fn model() -> Model {
    torchkit::rng::seed(7);
    Model::new(&model_config(), Device::Cpu)
}

/// Writes the model's state_dict as `torch.save(model.state_dict(), path)` does (pickle
/// protocol 2 in `archive/data.pkl`, one storage per parameter under `archive/data/`, the
/// tied generator weight sharing the embedding's storage), so that the `.pt` reader meets
/// the layout it meets in the wild.
pub fn write_pt(path: &Path) -> Result<()> {
    let m = model();
    let mut vars: Vec<(String, Tensor)> = m.vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let mut keys: HashMap<String, usize> = HashMap::new();
    let mut named = Vec::new();
    for (name, t) in &vars {
        let key = keys.len();
        keys.insert(name.clone(), key);
        named.push((name.clone(), key, t.shallow_clone()));
    }
    let tied = keys["decoder.embedding.weight"];
    named.push((
        "generator.weight".into(),
        tied,
        vars.iter()
            .find(|v| v.0 == "decoder.embedding.weight")
            .map(|v| v.1.shallow_clone())
            .expect("the decoder embedding"),
    ));
    let pickle = state_dict_pickle(&named);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", stored)?;
    zip.write_all(&pickle)?;
    zip.start_file("archive/byteorder", stored)?;
    zip.write_all(b"little")?;
    for (name, t) in &vars {
        let key = keys[name];
        zip.start_file(format!("archive/data/{key}"), stored)?;
        let flat = t.to_kind(Kind::Float).flatten(0, -1);
        let values = Vec::<f32>::try_from(&flat)?;
        for v in values {
            zip.write_all(&v.to_le_bytes())?;
        }
    }
    zip.start_file("archive/version", stored)?;
    zip.write_all(b"3\n")?;
    let bytes = zip.finish()?.into_inner();
    artifacts::write_atomic(path, &bytes)
}

/// The pickle `torch.save` writes for an `OrderedDict` of float tensors: `(name, storage
/// key, tensor)`, memoising the globals it recalls as Python's pickler does.
fn state_dict_pickle(named: &[(String, usize, Tensor)]) -> Vec<u8> {
    let mut p = Pickle::default();
    p.out.extend([0x80, 2]);
    p.global("collections", "OrderedDict");
    p.out.push(b')');
    p.out.push(b'R');
    p.put();
    p.out.push(b'(');
    for (name, key, t) in named {
        p.string(name);
        p.global("torch._utils", "_rebuild_tensor_v2");
        p.out.push(b'(');
        p.out.push(b'(');
        p.string("storage");
        p.global("torch", "FloatStorage");
        p.string(&key.to_string());
        p.string("cpu");
        p.int(t.numel() as i64);
        p.out.push(b't');
        p.put();
        p.out.push(b'Q');
        p.int(0);
        p.tuple(&t.size());
        p.tuple(&t.stride());
        p.out.push(0x89);
        p.global("collections", "OrderedDict");
        p.out.push(b')');
        p.out.push(b'R');
        p.put();
        p.out.push(b't');
        p.put();
        p.out.push(b'R');
        p.put();
    }
    p.out.push(b'u');
    p.out.push(b'}');
    p.put();
    p.string("_metadata");
    p.out.push(b'}');
    p.put();
    p.out.push(b's');
    p.out.push(b'b');
    p.out.push(b'.');
    p.out
}

#[derive(Default)]
struct Pickle {
    out: Vec<u8>,
    memo: usize,
    globals: HashMap<String, usize>,
}

impl Pickle {
    fn put(&mut self) {
        if self.memo < 256 {
            self.out.extend([b'q', self.memo as u8]);
        } else {
            self.out.push(b'r');
            self.out.extend((self.memo as u32).to_le_bytes());
        }
        self.memo += 1;
    }
    fn get(&mut self, at: usize) {
        if at < 256 {
            self.out.extend([b'h', at as u8]);
        } else {
            self.out.push(b'j');
            self.out.extend((at as u32).to_le_bytes());
        }
    }
    fn global(&mut self, module: &str, name: &str) {
        let full = format!("{module}\n{name}\n");
        if let Some(&at) = self.globals.get(&full) {
            return self.get(at);
        }
        self.out.push(b'c');
        self.out.extend(full.as_bytes());
        self.globals.insert(full, self.memo);
        self.put();
    }
    fn string(&mut self, s: &str) {
        self.out.push(b'X');
        self.out.extend((s.len() as u32).to_le_bytes());
        self.out.extend(s.as_bytes());
        self.put();
    }
    fn int(&mut self, v: i64) {
        match v {
            0..=0xff => self.out.extend([b'K', v as u8]),
            0x100..=0xffff => {
                self.out.push(b'M');
                self.out.extend((v as u16).to_le_bytes());
            }
            _ => {
                self.out.push(b'J');
                self.out.extend((v as i32).to_le_bytes());
            }
        }
    }
    fn tuple(&mut self, values: &[i64]) {
        if values.is_empty() {
            self.out.push(b')');
            return;
        }
        if values.len() > 3 {
            self.out.push(b'(');
        }
        for &v in values {
            self.int(v);
        }
        self.out.push(match values.len() {
            1 => 0x85,
            2 => 0x86,
            3 => 0x87,
            _ => b't',
        });
        self.put();
    }
}

/// Writes the model as the project's safetensors checkpoint.
pub fn write_safetensors(path: &Path) -> Result<()> {
    model().save(path)
}

/// Writes a small npz of the Intel layout (6 training, 3 validation, 3 test images).
pub fn write_npz(path: &Path) -> Result<()> {
    vision::synthetic::write_quick_npz(path, 3, [6, 3, 3])
}

/// Writes a TSV of the homework's format: real-looking IPA lines, then generated words.
pub fn write_tsv(path: &Path) -> Result<()> {
    let dir = path.with_extension("corpus");
    seq2seq::synthetic::write_quick_corpus(&dir, 5, [40, 5, 5])?;
    let mut text = String::from("t͡ʃ æ p l ə t\tchaplet\nn aɪ iː v\tnaïve\næ d ə n aɪ\tAdonai\n");
    text.push_str(&std::fs::read_to_string(dir.join("train.tsv"))?);
    std::fs::remove_dir_all(&dir)?;
    artifacts::write_atomic(path, text.as_bytes())
}

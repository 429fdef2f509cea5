//! The homework's three splits encoded with the training vocabularies, with the raw gold
//! spellings kept for scoring.

use std::path::Path;

use anyhow::Result;

use crate::batch::{encode, Encoded, Vocabs};
use crate::data::Splits;
use crate::model::{Model, ModelConfig};
use crate::train::TrainData;

/// Encoded splits, vocabularies and gold strings.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// Vocabularies built from `train.tsv`.
    pub vocabs: Vocabs,
    /// Encoded training examples.
    pub train: Vec<Encoded>,
    /// Encoded validation examples.
    pub valid: Vec<Encoded>,
    /// Encoded test examples.
    pub test: Vec<Encoded>,
    /// Raw validation spellings.
    pub valid_gold: Vec<String>,
    /// Raw test spellings.
    pub test_gold: Vec<String>,
    /// SHA-256 of what training depends on: `train.tsv` and `valid.tsv`.
    pub sha256: String,
}

impl Corpus {
    /// Reads `dir/{train,valid,test}.tsv` and encodes them.
    pub fn read(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let splits = Splits::read(dir)?;
        let sha256 = artifacts::sha256_bytes(
            format!(
                "{} {}",
                artifacts::sha256_file(dir.join("train.tsv"))?,
                artifacts::sha256_file(dir.join("valid.tsv"))?
            )
            .as_bytes(),
        );
        let vocabs = Vocabs::from_train(&splits.train);
        Ok(Self {
            train: encode(&splits.train, &vocabs),
            valid: encode(&splits.valid, &vocabs),
            test: encode(&splits.test, &vocabs),
            valid_gold: splits.valid.iter().map(|e| e.tgt.clone()).collect(),
            test_gold: splits.test.iter().map(|e| e.tgt.clone()).collect(),
            vocabs,
            sha256,
        })
    }

    /// What the training loop needs.
    pub fn train_data(&self) -> TrainData<'_> {
        TrainData {
            train: &self.train,
            valid: &self.valid,
            valid_gold: &self.valid_gold,
            tgt_vocab: &self.vocabs.tgt,
            sha256: &self.sha256,
        }
    }

    /// A fresh model for this data (sized to its vocabularies, which its checkpoints
    /// carry): draws its initial weights from libtorch's generator.
    pub fn model(&self, hidden: i64, dropout: f64, attention: bool, device: tch::Device) -> Model {
        self.model_of(&self.model_config(hidden, dropout, attention), device)
    }

    /// A fresh model of `config` (sized to these vocabularies) for this data.
    pub fn model_of(&self, config: &ModelConfig, device: tch::Device) -> Model {
        Model::new(config, device).with_vocabs(&self.vocabs)
    }

    /// A model configuration sized to the vocabularies.
    pub fn model_config(&self, hidden: i64, dropout: f64, attention: bool) -> ModelConfig {
        ModelConfig {
            src_vocab: self.vocabs.src.len() as i64,
            tgt_vocab: self.vocabs.tgt.len() as i64,
            hidden,
            dropout,
            attention,
            hopfield: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_of_another_vocabulary_is_refused() {
        let dir = std::env::temp_dir().join(format!("corpus-vocab-{}", std::process::id()));
        crate::synthetic::write_quick_corpus(&dir.join("a"), 1, [200, 20, 20]).unwrap();
        // The same lines with the training file's halves swapped: the same symbols in
        // another first-occurrence order, so other ids.
        let b = dir.join("b");
        std::fs::create_dir_all(&b).unwrap();
        for f in ["valid.tsv", "test.tsv"] {
            std::fs::copy(dir.join("a").join(f), b.join(f)).unwrap();
        }
        let train = std::fs::read_to_string(dir.join("a/train.tsv")).unwrap();
        let lines: Vec<&str> = train.lines().collect();
        let (first, second) = lines.split_at(lines.len() / 2);
        std::fs::write(b.join("train.tsv"), [second, first].concat().join("\n")).unwrap();

        let (a, b) = (
            Corpus::read(dir.join("a")).unwrap(),
            Corpus::read(&b).unwrap(),
        );
        assert_eq!(a.vocabs.src.len(), b.vocabs.src.len());
        assert_ne!(a.vocabs.src, b.vocabs.src);
        let path = dir.join("a.safetensors");
        a.model(16, 0.0, false, tch::Device::Cpu)
            .save(&path)
            .unwrap();
        a.model(16, 0.0, false, tch::Device::Cpu)
            .load(&path)
            .unwrap();
        let err = b
            .model(16, 0.0, false, tch::Device::Cpu)
            .load(&path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("another source vocabulary"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

//! The homework's three splits encoded with the training vocabularies, with the raw gold
//! spellings kept for scoring.

use std::path::Path;

use anyhow::Result;

use crate::batch::{encode, Encoded, Vocabs};
use crate::data::Splits;
use crate::model::ModelConfig;
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

    /// A model configuration sized to the vocabularies.
    pub fn model_config(&self, hidden: i64, dropout: f64, attention: bool) -> ModelConfig {
        ModelConfig {
            src_vocab: self.vocabs.src.len() as i64,
            tgt_vocab: self.vocabs.tgt.len() as i64,
            hidden,
            dropout,
            attention,
        }
    }
}

//! `assets/reference.toml` as types: the published figures (seed report and range) and what
//! the homework's own code prints on this machine kind. A misspelt key is an error naming
//! the file, not a silent "–" in the report.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    /// Q2's published test accuracies.
    pub q2: Q2,
    /// Q3's published test figures.
    pub q3: Q3,
    /// The homework's code on this machine kind, which `--exact` reproduces.
    pub exact: Exact,
}

/// A published figure: the seed report's value and the range over implementations.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Published {
    /// The seed report's value.
    pub seed: f64,
    /// The range over independent implementations.
    pub range: [f64; 2],
}

/// Q2: by `model@learning rate` (`2.1@0.01`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Q2 {
    /// The runs.
    pub runs: BTreeMap<String, Q2Run>,
}

/// One Q2 run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Q2Run {
    /// Test accuracy.
    pub test_accuracy: Published,
}

/// Q3 (a), (b), (c).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Q3 {
    /// (a).
    pub no_attention: Greedy,
    /// (b).
    pub attention: Greedy,
    /// (c).
    pub nucleus: Nucleus,
}

/// Greedy test figures.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Greedy {
    /// CER.
    pub cer: Published,
    /// WER.
    pub wer: Published,
}

/// Nucleus sampling test figures.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nucleus {
    /// CER of one sample.
    pub cer: Published,
    /// WER of one sample.
    pub wer: Published,
    /// WER@3.
    pub wer_at_3: Published,
}

/// `[exact]`: the homework's code on this machine kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exact {
    /// Q3.
    pub q3: ExactQ3,
}

/// Q3 as the homework's code prints it here.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExactQ3 {
    /// (a).
    pub no_attention: ExactModel,
    /// (b).
    pub attention: ExactModel,
    /// (c).
    pub nucleus: ExactNucleus,
}

/// One trained model's printed figures.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExactModel {
    /// Best validation CER.
    pub best_val_cer: f64,
    /// Test CER.
    pub cer: f64,
    /// Test WER.
    pub wer: f64,
}

/// Nucleus sampling's printed figures.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExactNucleus {
    /// Test CER.
    pub cer: f64,
    /// Test WER.
    pub wer: f64,
    /// WER@3.
    pub wer_at_3: f64,
}

impl Reference {
    /// Reads `assets/reference.toml` under `root`.
    pub fn read(root: &Path) -> Result<Self> {
        let path = root.join("assets/reference.toml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{} is malformed", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_reference_reads() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let r = Reference::read(root).unwrap();
        assert_eq!(r.q2.runs["2.2@0.01"].test_accuracy.seed, 0.7623);
        assert_eq!(r.q3.nucleus.wer_at_3.range, [0.63, 0.67]);
        assert_eq!(r.exact.q3.attention.cer, 0.2068);
        let typo = toml::from_str::<Reference>(
            &std::fs::read_to_string(root.join("assets/reference.toml"))
                .unwrap()
                .replace("wer_at_3 = { seed", "wer_at3 = { seed"),
        );
        assert!(typo.is_err());
    }
}

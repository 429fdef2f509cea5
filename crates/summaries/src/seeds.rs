//! Statistics over repeated seeds (`cargo xtask reproduce --seeds N`): the headline figures'
//! mean and sample standard deviation, and the band figures.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Mean, sample standard deviation (0 for one value) and the values themselves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub std: f64,
    /// One value per seed.
    pub values: Vec<f64>,
}

impl Stat {
    /// The statistic of `values` (NaN mean for none).
    pub fn of(values: &[f64]) -> Self {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = if values.len() > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Self {
            mean,
            std: var.sqrt(),
            values: values.to_vec(),
        }
    }
}

/// The `seeds` section of the merged summary.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Seeds {
    /// The seeds of the training stages.
    pub seeds: Vec<u64>,
    /// Band figures, relative to the output folder.
    pub figures: Vec<String>,
    /// Q2 over seeds, if it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q2: Option<Q2Seeds>,
    /// Q3 over seeds, if it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q3: Option<Q3Seeds>,
}

/// Q2 over seeds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Q2Seeds {
    /// By `model@learning rate` (the best rate, hence 2.2's, may differ between seeds).
    pub runs: BTreeMap<String, RunStats>,
    /// The best learning rate of each seed.
    pub best_learning_rate: Vec<f64>,
}

/// One Q2 run over seeds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunStats {
    /// Test accuracy of the final weights.
    pub test_accuracy: Stat,
    /// Best validation accuracy.
    pub best_val_accuracy: Stat,
}

/// Q3 over seeds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Q3Seeds {
    /// (a).
    pub no_attention: ModelStats,
    /// (b).
    pub attention: ModelStats,
    /// (c).
    pub nucleus: NucleusStats,
    /// Each Hopfield-head model (by retrievals per step) that every seed trained.
    #[serde(default)]
    pub hopfield: Vec<(usize, ModelStats)>,
}

/// One Q3 model over seeds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelStats {
    /// Greedy test CER.
    pub cer: Stat,
    /// Greedy test WER.
    pub wer: Stat,
    /// Best validation CER.
    pub best_val_cer: Stat,
}

/// Nucleus sampling over seeds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NucleusStats {
    /// CER of the first sample.
    pub cer: Stat,
    /// WER of the first sample.
    pub wer: Stat,
    /// WER@3.
    pub wer_at_3: Stat,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_standard_deviation() {
        let s = Stat::of(&[1.0, 2.0, 3.0, 4.0]);
        assert!((s.mean - 2.5).abs() < 1e-12);
        assert!((s.std - 1.290_994_448_735_805_6).abs() < 1e-12);
        assert_eq!(Stat::of(&[0.7]).std, 0.0);
        assert_eq!(Stat::of(&[0.7]).values, [0.7]);
    }
}

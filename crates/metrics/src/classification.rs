//! Accuracy and confusion matrices for classifiers.

use serde::Serialize;

/// Fraction of predictions equal to their label; 0 for an empty set.
/// Panics if the two slices differ in length.
pub fn accuracy(preds: &[i64], labels: &[i64]) -> f64 {
    assert_eq!(preds.len(), labels.len(), "accuracy: length mismatch");
    if labels.is_empty() {
        return 0.0;
    }
    let right = preds.iter().zip(labels).filter(|(p, l)| p == l).count();
    right as f64 / labels.len() as f64
}

/// Counts of (true class, predicted class) pairs; rows are true classes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ConfusionMatrix {
    /// `counts[t][p]`: examples of true class `t` predicted as `p`.
    pub counts: Vec<Vec<u64>>,
}

impl ConfusionMatrix {
    /// Builds the matrix for `n_classes` classes. Panics on a class id out of range or on
    /// slices of different lengths.
    pub fn new(n_classes: usize, preds: &[i64], labels: &[i64]) -> Self {
        assert_eq!(
            preds.len(),
            labels.len(),
            "confusion matrix: length mismatch"
        );
        let mut counts = vec![vec![0u64; n_classes]; n_classes];
        for (&p, &t) in preds.iter().zip(labels) {
            let (p, t) = (class_index(p, n_classes), class_index(t, n_classes));
            counts[t][p] += 1;
        }
        Self { counts }
    }

    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.counts.len()
    }

    /// Total number of examples.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Trace / total; 0 when empty.
    pub fn accuracy(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        let right: u64 = (0..self.n_classes()).map(|i| self.counts[i][i]).sum();
        right as f64 / total as f64
    }

    /// Per-class recall (diagonal / row sum); `None` for a class with no examples.
    pub fn recall(&self) -> Vec<Option<f64>> {
        self.counts
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let n: u64 = row.iter().sum();
                (n > 0).then(|| row[i] as f64 / n as f64)
            })
            .collect()
    }
}

fn class_index(c: i64, n: usize) -> usize {
    usize::try_from(c)
        .ok()
        .filter(|&c| c < n)
        .unwrap_or_else(|| panic!("class id {c} out of range 0..{n}"))
}

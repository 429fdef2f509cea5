//! `reports/bench/latest.json`, what `cargo xtask bench` measured (ours beside the
//! homework's own code, side by side on one machine), as the report reads it.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Where the bench and the growth measure write, under the repository.
pub const DIR: &str = "reports/bench";

/// One comparison: seconds of ours and of the homework's code, per round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measure {
    /// What was timed.
    pub what: String,
    /// The unit of the figures ("s per epoch", "s").
    pub unit: String,
    /// Ours, one figure per round.
    pub ours: Vec<f64>,
    /// The homework's, one figure per round (empty when not run).
    pub theirs: Vec<f64>,
    /// What the figures cannot go below on this machine, when known (Q2: the multiply-adds at
    /// the sgemm rate).
    pub floor: Option<f64>,
    /// The commands, ours then theirs.
    pub commands: Vec<String>,
    /// UTC time it was measured.
    #[serde(default)]
    pub date: String,
}

/// `reports/bench/latest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bench {
    /// UTC time of the bench.
    pub date: String,
    /// The CPU, its cores and libtorch's threads.
    pub machine: String,
    /// sgemm (2048², float32) on this machine, GFLOP/s.
    pub sgemm_gflops: f64,
    /// The comparisons.
    pub measures: Vec<Measure>,
}

/// min, median, max.
pub fn spread(v: &[f64]) -> Option<(f64, f64, f64)> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(f64::total_cmp);
    let mid = if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    };
    Some((s[0], mid, s[s.len() - 1]))
}

/// The ratios ours/theirs of the rounds (paired).
pub fn ratios(m: &Measure) -> Vec<f64> {
    m.ours.iter().zip(&m.theirs).map(|(a, b)| a / b).collect()
}

/// The latest bench run in the repository at `root`, if any.
pub fn latest(root: &Path) -> Option<Bench> {
    artifacts::read_json(root.join(DIR).join("latest.json")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_and_ratios() {
        assert_eq!(spread(&[3.0, 1.0, 2.0]), Some((1.0, 2.0, 3.0)));
        assert_eq!(spread(&[4.0, 1.0]), Some((1.0, 2.5, 4.0)));
        assert_eq!(spread(&[f64::NAN]), None);
        assert_eq!(spread(&[]), None);
        let m = Measure {
            what: "x".into(),
            unit: "s".into(),
            ours: vec![10.0, 12.0],
            theirs: vec![20.0, 20.0],
            floor: Some(5.0),
            commands: Vec::new(),
            date: String::new(),
        };
        assert_eq!(ratios(&m), [0.5, 0.6]);
    }
}

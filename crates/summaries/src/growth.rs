//! `reports/bench/growth.json`, how an epoch's cost grows with the training set and Q3's
//! hidden size (`cargo xtask growth`), as the report reads it.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Whose code ran the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// This repository's.
    #[default]
    Ours,
    /// The homework's PyTorch code.
    Homework,
}

impl Side {
    /// How the report and the figure name it.
    pub fn label(self) -> &'static str {
        match self {
            Side::Ours => "ours",
            Side::Homework => "the homework's code",
        }
    }
}

/// One measured epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Whose code (measures before the homework's side existed are ours).
    #[serde(default)]
    pub side: Side,
    /// q2 or q3.
    pub question: String,
    /// `size` (x = multiple of the training set) or `hidden` (x = hidden size).
    pub axis: String,
    /// The multiple or the hidden size.
    pub x: f64,
    /// Training examples in the epoch.
    pub examples: usize,
    /// Seconds of the epoch's training steps.
    pub seconds: f64,
}

/// `reports/bench/growth.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Growth {
    /// UTC time.
    pub date: String,
    /// The CPU.
    pub machine: String,
    /// Every point.
    pub points: Vec<Point>,
}

impl Growth {
    /// The points of one side and question along one axis, by x.
    pub fn series(&self, side: Side, question: &str, axis: &str) -> Vec<(f64, f64)> {
        let mut v: Vec<(f64, f64)> = self
            .points
            .iter()
            .filter(|p| p.side == side && p.question == question && p.axis == axis)
            .map(|p| (p.x, p.seconds))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    }

    /// Each size's seconds per training example against the full set's, for the sizes off a
    /// straight line through the origin by more than `tolerance` (0.15: 15%).
    pub fn bends(&self, side: Side, question: &str, tolerance: f64) -> Vec<(f64, f64)> {
        let pts: Vec<&Point> = self
            .points
            .iter()
            .filter(|p| p.side == side && p.question == question && p.axis == "size")
            .collect();
        let Some(full) = pts.iter().find(|p| p.x == 1.0) else {
            return Vec::new();
        };
        let unit = full.seconds / full.examples as f64;
        pts.iter()
            .map(|p| (p.x, p.seconds / p.examples as f64 / unit))
            .filter(|(_, r)| (r - 1.0).abs() > tolerance)
            .collect()
    }
}

/// The latest growth measure in the repository at `root`, if any.
pub fn latest(root: &Path) -> Option<Growth> {
    artifacts::read_json(root.join(crate::bench::DIR).join("growth.json")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_and_bends_keep_the_sides_apart() {
        let point = |side, x: f64, examples, seconds| Point {
            side,
            question: "q2".into(),
            axis: "size".into(),
            x,
            examples,
            seconds,
        };
        let g = Growth {
            date: String::new(),
            machine: String::new(),
            points: vec![
                point(Side::Ours, 0.25, 3157, 5.0),
                point(Side::Ours, 1.0, 12630, 19.0),
                point(Side::Ours, 2.0, 25260, 38.5),
                point(Side::Homework, 0.25, 3157, 4.0),
                point(Side::Homework, 1.0, 12630, 30.0),
            ],
        };
        assert_eq!(g.series(Side::Ours, "q2", "size").len(), 3);
        assert_eq!(
            g.series(Side::Homework, "q2", "size"),
            vec![(0.25, 4.0), (1.0, 30.0)]
        );
        // 5.0 s for a quarter is 1.05× the full set's cost per example: within 15%.
        assert!(g.bends(Side::Ours, "q2", 0.15).is_empty());
        let bends = g.bends(Side::Ours, "q2", 0.01);
        assert_eq!(bends.len(), 2);
        assert!((bends[0].1 - 5.0 / 3157.0 / (19.0 / 12630.0)).abs() < 1e-12);
        // The homework's quarter: 4.0 s against 7.5 on a straight line.
        let theirs = g.bends(Side::Homework, "q2", 0.15);
        assert_eq!(theirs.len(), 1);
        assert!((theirs[0].1 - 4.0 / 3157.0 / (30.0 / 12630.0)).abs() < 1e-12);
    }

    /// A growth.json written before the homework's side existed reads as ours.
    #[test]
    fn older_files_read_as_ours() {
        let old = r#"{"date":"d","machine":"m","points":[{"question":"q3","axis":"size","x":1.0,"examples":10,"seconds":2.0}]}"#;
        let g: Growth = serde_json::from_str(old).unwrap();
        assert_eq!(g.points[0].side, Side::Ours);
    }
}

//! `cargo xtask bench --growth`: how an epoch's cost grows with the training set (¼, ½, 1
//! and 2×, Q2 and Q3) and with Q3's hidden size (64, 128, 256), from the crates' benches.
//! It should be a straight line through the origin; [`Growth::bends`] says where it is not.
//! The result goes to `reports/bench/growth.json` and `growth.{png,svg}`, which the report's
//! speed section shows.

use std::path::Path;

use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};

use crate::libtorch::Libtorch;

/// One measured epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
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

/// Reads the `growth …` lines a bench printed.
pub fn parse(text: &str) -> Vec<Point> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                ["growth", q, axis, x, n, s] => Some(Point {
                    question: q.to_string(),
                    axis: axis.to_string(),
                    x: x.parse().ok()?,
                    examples: n.parse().ok()?,
                    seconds: s.parse().ok()?,
                }),
                _ => None,
            }
        })
        .collect()
}

impl Growth {
    /// The points of one question along one axis, by x.
    pub fn series(&self, question: &str, axis: &str) -> Vec<(f64, f64)> {
        let mut v: Vec<(f64, f64)> = self
            .points
            .iter()
            .filter(|p| p.question == question && p.axis == axis)
            .map(|p| (p.x, p.seconds))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    }

    /// Each size's seconds per training example against the full set's, for the sizes off a
    /// straight line through the origin by more than `tolerance` (0.15: 15%).
    pub fn bends(&self, question: &str, tolerance: f64) -> Vec<(f64, f64)> {
        let pts: Vec<&Point> = self
            .points
            .iter()
            .filter(|p| p.question == question && p.axis == "size")
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

fn bench(torch: &Libtorch, root: &Path, krate: &str) -> Result<Vec<Point>> {
    eprintln!("== {krate}: one epoch per training-set size");
    let text = crate::bench::crate_bench(torch, root, krate, "--growth")?;
    let points = parse(&text);
    ensure!(
        !points.is_empty(),
        "{krate}'s bench printed no growth line:\n{text}"
    );
    for p in &points {
        eprintln!(
            "   {} {} {}: {} examples, {:.1} s",
            p.question, p.axis, p.x, p.examples, p.seconds
        );
    }
    Ok(points)
}

/// Runs both benches, writes `reports/bench/growth.{json,png,svg}` and prints the bends.
pub fn run(root: &Path, torch: &Libtorch, machine: String) -> Result<()> {
    let mut points = bench(torch, root, "vision")?;
    points.extend(bench(torch, root, "seq2seq")?);
    let growth = Growth {
        date: crate::clock::stamp(),
        machine,
        points,
    };
    let dir = root.join("reports/bench");
    std::fs::create_dir_all(&dir)?;
    artifacts::write_json(dir.join("growth.json"), &growth)?;
    figure(&growth, &dir.join("growth"))?;
    for q in ["q2", "q3"] {
        let bends = growth.bends(q, 0.15);
        if bends.is_empty() {
            eprintln!(
                "{q}: a straight line (every size within 15% of the full set's cost per example)"
            );
        }
        for (x, r) in bends {
            eprintln!("{q}: at {x}× the set, {r:.2}× the full set's cost per example");
        }
    }
    eprintln!("Wrote {}", dir.join("growth.json").display());
    Ok(())
}

/// Seconds per epoch against the training-set multiple (Q2, Q3) and against Q3's hidden size.
pub fn figure(growth: &Growth, stem: &Path) -> Result<()> {
    use plot::{LineChart, Series};
    let mut size = LineChart::new("Seconds per training epoch against the training-set size")
        .x_label("multiple of the homework's training set")
        .y_label("seconds (training steps)");
    for (q, name) in [("q2", "Q2 model 2.2, batch 8"), ("q3", "Q3 (b), batch 64")] {
        let pts = growth.series(q, "size");
        if !pts.is_empty() {
            size = size.series(Series::new(name, pts));
        }
    }
    size.save(stem)?;
    let hidden = growth.series("q3", "hidden");
    if !hidden.is_empty() {
        LineChart::new("Q3 (b): seconds per training epoch against the hidden size")
            .x_label("hidden size")
            .y_label("seconds (training steps)")
            .series(Series::new("Q3 (b), the whole training set", hidden))
            .save(stem.with_file_name("growth_hidden"))?;
    }
    Ok(())
}

/// The latest growth measure, if one was run here.
pub fn latest(root: &Path) -> Option<Growth> {
    artifacts::read_json(root.join("reports/bench/growth.json")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_and_bends_found() {
        let points = parse(
            "sgemm 2048²: 170 GFLOP/s\ngrowth q2 size 0.25 3157 5.0\ngrowth q2 size 1 12630 19.0\ngrowth q2 size 2 25260 38.5\ngrowth q3 hidden 64 8000 2.0\nnoise",
        );
        assert_eq!(points.len(), 4);
        assert_eq!(points[3].axis, "hidden");
        let g = Growth {
            date: String::new(),
            machine: String::new(),
            points,
        };
        assert_eq!(g.series("q2", "size").len(), 3);
        // 5.0 s for a quarter is 1.05× the full set's cost per example: within 15%.
        assert!(g.bends("q2", 0.15).is_empty());
        let bends = g.bends("q2", 0.01);
        assert_eq!(bends.len(), 2);
        assert!((bends[0].1 - 5.0 / 3157.0 / (19.0 / 12630.0)).abs() < 1e-12);
    }
}

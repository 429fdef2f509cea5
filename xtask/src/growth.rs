//! `cargo xtask bench --growth`: how an epoch's cost grows with the training set (¼, ½, 1
//! and 2×, Q2 and Q3) and with Q3's hidden size (64, 128, 256), from the crates' benches
//! and, given the homework's code (`--homework DIR --python PY`), from the same epochs of
//! its own models and training steps (`homework_growth.py`, which imports them from DIR).
//! It should be a straight line through the origin; [`Growth::bends`] says where it is not.
//! The result goes to `reports/bench/growth.json` and `growth.{png,svg}`, which the report's
//! speed section shows.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use serde::{Deserialize, Serialize};

use crate::libtorch::Libtorch;

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

/// The homework's side: its models and training steps timed by this script, run with the
/// user's Python against the user's copy of the homework (never copied here).
const HOMEWORK_SCRIPT: &str = include_str!("homework_growth.py");

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

/// Reads the `growth …` lines a bench of `side` printed.
pub fn parse(text: &str, side: Side) -> Vec<Point> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                ["growth", q, axis, x, n, s] => Some(Point {
                    side,
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

fn bench(torch: &Libtorch, root: &Path, krate: &str) -> Result<Vec<Point>> {
    eprintln!("== {krate}: one epoch per training-set size");
    let text = crate::bench::crate_bench(torch, root, krate, "--growth")?;
    let points = parse(&text, Side::Ours);
    ensure!(
        !points.is_empty(),
        "{krate}'s bench printed no growth line:\n{text}"
    );
    show(&points);
    Ok(points)
}

fn show(points: &[Point]) {
    for p in points {
        eprintln!(
            "   {} {} {}: {} examples, {:.1} s",
            p.question, p.axis, p.x, p.examples, p.seconds
        );
    }
}

/// Where the homework's side reads its code and data.
pub struct Homework<'a> {
    /// The folder with `hw2-q2/` and `hw2-q3/` (checked by the bench).
    pub dir: &'a Path,
    /// A Python with torch 2.11.0 and numpy.
    pub python: &'a Path,
    /// Q2's npz.
    pub npz: PathBuf,
    /// The folder with Q3's `train.tsv`.
    pub p2g: PathBuf,
}

/// The same epochs of the homework's models and training steps.
fn homework(h: &Homework, work: &Path) -> Result<Vec<Point>> {
    eprintln!("== the homework's code: one epoch per training-set size and hidden size");
    std::fs::create_dir_all(work)?;
    let script = work.join("homework_growth.py");
    std::fs::write(&script, HOMEWORK_SCRIPT)?;
    let out = std::process::Command::new(h.python)
        .arg(&script)
        .arg("--homework")
        .arg(h.dir)
        .arg("--npz")
        .arg(&h.npz)
        .arg("--p2g")
        .arg(&h.p2g)
        .current_dir(work)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", h.python.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "the homework's side failed ({}): {}\n{text}",
        out.status,
        script.display()
    );
    let points = parse(&text, Side::Homework);
    ensure!(
        !points.is_empty(),
        "the homework's side printed no growth line:\n{text}"
    );
    show(&points);
    Ok(points)
}

/// Runs both benches (and the homework's side, when given), writes
/// `reports/bench/growth.{json,png,svg}` and prints the bends.
pub fn run(root: &Path, torch: &Libtorch, machine: String, hw: Option<Homework>) -> Result<()> {
    let mut points = bench(torch, root, "vision")?;
    points.extend(bench(torch, root, "seq2seq")?);
    if let Some(h) = &hw {
        let work = std::env::temp_dir().join(format!("hw2-growth-{}", std::process::id()));
        let theirs = homework(h, &work);
        let _ = std::fs::remove_dir_all(&work);
        points.extend(theirs?);
    }
    let growth = Growth {
        date: crate::clock::stamp(),
        machine,
        points,
    };
    let dir = root.join("reports/bench");
    std::fs::create_dir_all(&dir)?;
    artifacts::write_json(dir.join("growth.json"), &growth)?;
    figure(&growth, &dir.join("growth"))?;
    for side in [Side::Ours, Side::Homework] {
        for q in ["q2", "q3"] {
            if growth.series(side, q, "size").is_empty() {
                continue;
            }
            let who = side.label();
            let bends = growth.bends(side, q, 0.15);
            if bends.is_empty() {
                eprintln!(
                    "{q}, {who}: a straight line (every size within 15% of the full set's cost per example)"
                );
            }
            for (x, r) in bends {
                eprintln!("{q}, {who}: at {x}× the set, {r:.2}× the full set's cost per example");
            }
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
    let mut hidden = LineChart::new("Q3 (b): seconds per training epoch against the hidden size")
        .x_label("hidden size")
        .y_label("seconds (training steps)");
    let mut any_hidden = false;
    for side in [Side::Ours, Side::Homework] {
        for (q, name) in [("q2", "Q2 model 2.2, batch 8"), ("q3", "Q3 (b), batch 64")] {
            let pts = growth.series(side, q, "size");
            if !pts.is_empty() {
                size = size.series(Series::new(format!("{name}, {}", side.label()), pts));
            }
        }
        let pts = growth.series(side, "q3", "hidden");
        if !pts.is_empty() {
            any_hidden = true;
            let name = format!("Q3 (b), the whole training set, {}", side.label());
            hidden = hidden.series(Series::new(name, pts));
        }
    }
    size.save(stem)?;
    if any_hidden {
        hidden.save(stem.with_file_name("growth_hidden"))?;
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
        let mut points = parse(
            "sgemm 2048²: 170 GFLOP/s\ngrowth q2 size 0.25 3157 5.0\ngrowth q2 size 1 12630 19.0\ngrowth q2 size 2 25260 38.5\ngrowth q3 hidden 64 8000 2.0\nnoise",
            Side::Ours,
        );
        assert_eq!(points.len(), 4);
        assert_eq!(points[3].axis, "hidden");
        // The homework's side: the same lines, another side; kept apart in series and bends.
        points.extend(parse(
            "growth q2 size 0.25 3157 4.0\ngrowth q2 size 1 12630 30.0",
            Side::Homework,
        ));
        let g = Growth {
            date: String::new(),
            machine: String::new(),
            points,
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

//! `cargo xtask growth`: how an epoch's cost grows with the training set (¼, ½, 1
//! and 2×, Q2 and Q3) and with Q3's hidden size (64, 128, 256), from the crates' benches
//! and, given the homework's code (`--homework DIR --python PY`), from the same epochs of
//! its own models and training steps (`homework_growth.py`, which imports them from DIR).
//! It should be a straight line through the origin; `Growth::bends` says where it is not.
//! The result goes to `reports/bench/growth.json` and `growth.{png,svg}`, which the report's
//! speed section shows.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use summaries::growth::{Growth, Point, Side};

use crate::libtorch::Libtorch;
use crate::measuring::{cpu_model, crate_bench, homework, Common, HomeworkCode};

/// Options of `cargo xtask growth`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    common: Common,
}

/// The homework's side: its models and training steps timed by this script, run with the
/// user's Python against the user's copy of the homework (never copied here).
const HOMEWORK_SCRIPT: &str = include_str!("homework_growth.py");

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

fn bench(torch: &Libtorch, root: &Path, krate: &str) -> Result<Vec<Point>> {
    eprintln!("== {krate}: one epoch per training-set size");
    let text = crate_bench(torch, root, krate, "--growth")?;
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
struct Homework<'a> {
    code: &'a HomeworkCode,
    npz: PathBuf,
    p2g: PathBuf,
    only: String,
}

/// The same epochs of the homework's models and training steps.
fn homework_side(h: &Homework, work: &Path) -> Result<Vec<Point>> {
    eprintln!("== the homework's code: one epoch per training-set size and hidden size");
    std::fs::create_dir_all(work)?;
    let script = work.join("homework_growth.py");
    std::fs::write(&script, HOMEWORK_SCRIPT)?;
    let out = std::process::Command::new(&h.code.python)
        .arg(&script)
        .arg("--homework")
        .arg(&h.code.dir)
        .arg("--npz")
        .arg(&h.npz)
        .arg("--p2g")
        .arg(&h.p2g)
        .arg("--only")
        .arg(&h.only)
        .current_dir(work)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", h.code.python.display()))?;
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

/// Runs the crates' benches of the questions asked for (and the homework's side, when
/// given), writes `reports/bench/growth.{json,png,svg}` and prints the bends.
pub fn run(root: &Path, torch: &Libtorch, args: &Args) -> Result<()> {
    let common = &args.common;
    let code = homework(root, common)?;
    let hw = match &code {
        Some(code) => {
            let (npz, p2g) = (root.join(&common.npz), root.join(&common.p2g));
            ensure!(npz.is_file() || !common.times("q2"), "--npz {}: no such file (build the substitute with the workplace's make-fashion6.sh, or pass the Intel file)", npz.display());
            ensure!(
                p2g.join("train.tsv").is_file() || !common.times("q3"),
                "--p2g {}: no train.tsv (`cargo xtask fixtures` puts the homework's TSVs in data/p2g)",
                p2g.display()
            );
            Some(Homework {
                code,
                npz,
                p2g,
                only: common.only.join(","),
            })
        }
        None => None,
    };
    let mut points = Vec::new();
    for (question, krate) in [("q2", "vision"), ("q3", "seq2seq")] {
        if common.times(question) {
            points.extend(bench(torch, root, krate)?);
        }
    }
    if let Some(h) = &hw {
        let work = std::env::temp_dir().join(format!("hw2-growth-{}", std::process::id()));
        let theirs = homework_side(h, &work);
        let _ = std::fs::remove_dir_all(&work);
        points.extend(theirs?);
    }
    let machine = cpu_model();
    let growth = Growth {
        date: crate::clock::stamp(),
        machine,
        points,
    };
    let dir = root.join(summaries::bench::DIR);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_lines_are_read_and_the_rest_skipped() {
        let points = parse(
            "sgemm 2048²: 170 GFLOP/s\ngrowth q2 size 0.25 3157 5.0\ngrowth q2 size 1 12630 19.0\ngrowth q2 size x 1 1\ngrowth q3 hidden 64 8000 2.0\nnoise",
            Side::Homework,
        );
        assert_eq!(points.len(), 3);
        assert_eq!(points[2].axis, "hidden");
        assert_eq!(points[2].x, 64.0);
        assert!(points.iter().all(|p| p.side == Side::Homework));
    }
}

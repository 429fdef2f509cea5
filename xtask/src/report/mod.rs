//! `OUT/REPORT.md` and `OUT/report.html`: every stage's numbers beside the homework's
//! published ones, with figures. One module per part, each reading the stages' typed
//! summaries (the `summaries` crate): [`facts`] (what ran, where), [`exactness`], [`speed`],
//! [`q1`], [`q2`], [`q3`], and [`seeds`] (mean ± std over repeated runs).

mod exactness;
mod facts;
mod hopfield;
pub mod html;
mod q1;
mod q2;
mod q3;
mod reference;
pub mod seeds;
mod speed;

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use summaries::seeds::Stat;

pub use facts::{stage_dir_name, RunFacts, StageRecord};
use reference::{Published, Reference};

/// "0.5543 (0.49–0.57)" and our difference to the seed figure, with ✓ when inside the range.
fn beside(ours: Option<f64>, published: Option<&Published>) -> (String, String) {
    let Some(p) = published else {
        return ("–".into(), "".into());
    };
    let [lo, hi] = p.range;
    let text = format!("{:.4} ({lo:.2}–{hi:.2})", p.seed);
    let diff = ours.map_or(String::new(), |o| {
        let inside = (lo..=hi).contains(&((o * 100.0).round() / 100.0));
        format!("{:+.4}{}", o - p.seed, if inside { " ✓" } else { "" })
    });
    (text, diff)
}

/// References a figure (`q2/model2_1_train_loss.png`) from `OUT/figures/`, copying it (and
/// its SVG twin) there, so `REPORT.md` with `figures/` is the whole report.
fn figure(md: &mut String, out: &Path, path: &str, caption: &str) {
    let target = if path.starts_with("figures/") {
        path.to_string()
    } else {
        let name = path.replace('/', "_");
        copy_figure(&out.join(path), out, &name);
        format!("figures/{name}")
    };
    let _ = writeln!(md, "![{caption}]({target})\n");
}

/// Copies the figure `source` (`….png`, and its SVG twin if any) to `OUT/figures/<name>`;
/// the PNG's path relative to OUT when it was there.
fn copy_figure(source: &Path, out: &Path, name: &str) -> Option<String> {
    let mut png = None;
    for ext in ["png", "svg"] {
        let to = Path::new("figures").join(name).with_extension(ext);
        if let Ok(bytes) = std::fs::read(source.with_extension(ext)) {
            if artifacts::write_atomic(out.join(&to), &bytes).is_ok() && ext == "png" {
                png = Some(to.display().to_string());
            }
        }
    }
    png
}

/// Reads the summaries of the stages that finished in `out` (`<stage>/summary.json`),
/// refusing one of another format version.
pub fn stage_summaries(out: &Path, stages: &[&str], quick: bool) -> Result<summaries::Run> {
    let mut run = summaries::Run {
        version: summaries::VERSION,
        quick,
        ..summaries::Run::default()
    };
    for stage in stages {
        let dir = out.join(stage);
        if !dir.join("summary.json").exists() {
            continue;
        }
        match summaries::Stage::read(stage, &dir)? {
            summaries::Stage::Q1(s) => run.q1 = Some(*s),
            summaries::Stage::Q2(s) => run.q2 = Some(*s),
            summaries::Stage::Q3(s) => run.q3 = Some(*s),
        }
    }
    Ok(run)
}

/// "5,340,742" from an integer.
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// "0.6900 ± 0.0123 (n=3)" from a statistic over seeds.
fn plus_minus(stat: Option<&Stat>) -> String {
    stat.map_or("–".into(), |s| {
        format!("{:.4} ± {:.4} (n={})", s.mean, s.std, s.values.len())
    })
}

/// Writes `OUT/REPORT.md` and `OUT/report.html` from the stages' summaries and
/// `assets/reference.toml`.
pub fn write(root: &Path, out: &Path, run: &summaries::Run, facts: &RunFacts) -> Result<()> {
    let reference = Reference::read(root)?;
    let mut md = String::new();
    facts::write(&mut md, out, facts);
    exactness::write(&mut md, run, &reference);
    speed::write(&mut md, root, out);
    let seeds = run.seeds.as_ref();
    if let Some(q1) = &run.q1 {
        q1::write(&mut md, out, q1);
    }
    if let Some(q2) = &run.q2 {
        q2::write(
            &mut md,
            out,
            q2,
            seeds.and_then(|s| s.q2.as_ref()),
            &reference,
        );
    }
    if let Some(q3) = &run.q3 {
        q3::write(
            &mut md,
            out,
            q3,
            seeds.and_then(|s| s.q3.as_ref()),
            &reference,
        );
        hopfield::write(&mut md, out, q3, seeds.and_then(|s| s.q3.as_ref()));
    }
    if let Some(s) = seeds {
        let _ = writeln!(
            md,
            "## Spread over seeds\n\nEvery training stage ran with seeds {:?}; tables above give mean ± sample standard deviation, the bands below ±1 standard deviation per epoch.\n",
            s.seeds
        );
        for f in &s.figures {
            figure(&mut md, out, f, "mean ± std over seeds");
        }
    }
    artifacts::write_atomic(out.join("REPORT.md"), md.as_bytes())?;
    let page = html::render(&md, out, "Homework 2 reproduced in Rust");
    artifacts::write_atomic(out.join("report.html"), page.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(5_340_742), "5,340,742");
        assert_eq!(thousands(755), "755");
        assert_eq!(thousands(-1000), "-1,000");
        let p = Published {
            seed: 0.69,
            range: [0.68, 0.71],
        };
        assert_eq!(
            beside(Some(0.7012), Some(&p)),
            ("0.6900 (0.68–0.71)".into(), "+0.0112 ✓".into())
        );
        assert_eq!(beside(Some(0.75), Some(&p)).1, "+0.0600");
        assert_eq!(
            plus_minus(Some(&Stat::of(&[0.5, 0.7]))),
            "0.6000 ± 0.1414 (n=2)"
        );
    }
}

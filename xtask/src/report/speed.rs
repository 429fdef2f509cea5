//! The report's speed section: the latest `cargo xtask bench` (ours beside the homework's own
//! code, timed side by side on one machine), with its date and machine — never figures
//! measured elsewhere.

use std::fmt::Write;
use std::path::Path;

use summaries::bench::{ratios, spread};

/// Appends the section to `md`; figures go to `OUT/figures/`.
pub fn write(md: &mut String, root: &Path, out: &Path) {
    md.push_str("## Speed against the homework's code\n\n");
    side_by_side(md, root);
    growth(md, root, out);
}

/// How an epoch's cost grows (`cargo xtask growth`), if measured here.
fn growth(md: &mut String, root: &Path, out: &Path) {
    let Some(g) = summaries::growth::latest(root) else {
        return;
    };
    use summaries::growth::Side;
    let sides: Vec<Side> = [Side::Ours, Side::Homework]
        .into_iter()
        .filter(|&s| g.points.iter().any(|p| p.side == s))
        .collect();
    let whose = sides
        .iter()
        .map(|s| s.label())
        .collect::<Vec<_>>()
        .join(" and ");
    let _ = writeln!(
        md,
        "How an epoch's cost grows (`cargo xtask growth`, {} on {}; training steps only, {whose}): it should be a straight line through the origin.\n",
        crate::clock::readable(&g.date),
        g.machine
    );
    for side in sides {
        for q in ["q2", "q3"] {
            if g.series(side, q, "size").is_empty() {
                continue;
            }
            let bends = g.bends(side, q, 0.15);
            let (q, who) = (q.to_uppercase(), side.label());
            if bends.is_empty() {
                let _ = writeln!(
                    md,
                    "- {q}, {who}: a straight line — every size within 15% of the full set's cost per example."
                );
            }
            for (x, r) in bends {
                let _ = writeln!(
                    md,
                    "- {q}, {who}: at {x}× the training set, {r:.2}× the full set's cost per example."
                );
            }
        }
    }
    md.push('\n');
    for (name, caption) in [
        ("growth", "seconds per epoch against the training-set size"),
        (
            "growth_hidden",
            "Q3 seconds per epoch against the hidden size",
        ),
    ] {
        let source = root.join("reports/bench").join(name);
        if let Some(to) = super::copy_figure(&source, out, &format!("bench_{name}")) {
            let _ = writeln!(md, "![{caption}]({to})\n");
        }
    }
}

/// The latest side-by-side bench.
fn side_by_side(md: &mut String, root: &Path) {
    let Some(bench) = summaries::bench::latest(root) else {
        md.push_str("No side-by-side bench on record here: `cargo xtask bench --homework DIR --python PY` times our Q2 epochs and Q3 stage beside the homework's own code on this machine (these machines differ from one session to the next, so only a side-by-side ratio means anything).\n\n");
        return;
    };
    let _ = writeln!(
        md,
        "The latest `cargo xtask bench`, {} on {} (sgemm {:.0} GFLOP/s); ours and the homework's code alternated, figures are medians (min–max) over the rounds:\n",
        crate::clock::readable(&bench.date),
        bench.machine,
        bench.sgemm_gflops
    );
    md.push_str("| what | ours | the homework's code | ratio | floor | measured |\n|---|---|---|---|---|---|\n");
    let cell = |v: &[f64], unit: &str| match spread(v) {
        Some((lo, mid, hi)) => format!("{mid:.1} {unit} ({lo:.1}–{hi:.1})"),
        None => "not run".into(),
    };
    for m in &bench.measures {
        let ratio = spread(&ratios(m)).map_or("–".into(), |(lo, mid, hi)| {
            format!("**{mid:.2}×** ({lo:.2}–{hi:.2})")
        });
        let floor = m.floor.map_or("–".into(), |f| format!("{f:.1} {}", m.unit));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {ratio} | {floor} | {} |",
            m.what,
            cell(&m.ours, &m.unit),
            cell(&m.theirs, &m.unit),
            if m.date.is_empty() {
                "–".to_string()
            } else {
                crate::clock::readable(&m.date)
            }
        );
    }
    md.push('\n');
}

#[cfg(test)]
mod tests {
    use summaries::growth::{Growth, Point, Side};

    /// Both sides measured: the section names both and gives each its verdict.
    #[test]
    fn growth_names_both_sides_and_their_bends() {
        let root = std::env::temp_dir().join(format!("speed-growth-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("reports/bench")).unwrap();
        let point = |side, x: f64, seconds| Point {
            side,
            question: "q2".into(),
            axis: "size".into(),
            x,
            examples: (12_630.0 * x) as usize,
            seconds,
        };
        let g = Growth {
            date: "20261202T181045Z".into(),
            machine: "a CPU".into(),
            points: vec![
                point(Side::Ours, 0.25, 3.1),
                point(Side::Ours, 1.0, 12.6),
                point(Side::Homework, 0.25, 9.0),
                point(Side::Homework, 1.0, 21.4),
            ],
        };
        artifacts::write_json(root.join("reports/bench/growth.json"), &g).unwrap();
        let mut md = String::new();
        super::growth(&mut md, &root, &root.join("out"));
        let _ = std::fs::remove_dir_all(&root);
        assert!(md.contains("ours and the homework's code"), "{md}");
        assert!(md.contains("- Q2, ours: a straight line"), "{md}");
        assert!(
            md.contains("- Q2, the homework's code: at 0.25× the training set, 1.68×"),
            "{md}"
        );
    }
}

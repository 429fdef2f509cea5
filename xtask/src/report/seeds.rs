//! `--seeds N`: mean ± standard deviation of every headline figure over the seeds' stage
//! runs, and per-epoch band plots.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use plot::{LineChart, Series};
use summaries::q2::Q2Summary;
use summaries::q3::{ModelReport, Q3Summary};
use summaries::seeds::{ModelStats, NucleusStats, Q2Seeds, Q3Seeds, RunStats, Seeds, Stat};

use super::StageRecord;

/// Per-epoch mean and (epoch, mean − std, mean + std) band over equally long curves.
fn band(curves: &[Vec<f64>]) -> (Vec<f64>, Vec<(f64, f64, f64)>) {
    let len = curves.iter().map(Vec::len).min().unwrap_or(0);
    (0..len)
        .map(|e| {
            let s = Stat::of(&curves.iter().map(|c| c[e]).collect::<Vec<_>>());
            (s.mean, ((e + 1) as f64, s.mean - s.std, s.mean + s.std))
        })
        .unzip()
}

/// Every seed's summary of `stage` in `table`.
fn summaries_of<T: serde::de::DeserializeOwned>(
    out: &Path,
    table: &[StageRecord],
    stage: &str,
) -> Result<Vec<T>> {
    table
        .iter()
        .filter(|r| r.stage == stage)
        .map(|r| summaries::read(out.join(&r.dir).join("summary.json")))
        .collect()
}

/// Reads every seed's summary of the stages in `table`, writes the band figures into
/// `OUT/figures/` and returns the `seeds` section of `summary.json`.
pub fn aggregate(out: &Path, table: &[StageRecord], quick: bool) -> Result<Seeds> {
    let figures_dir = out.join("figures");
    std::fs::create_dir_all(&figures_dir)?;
    let note = if quick { " (quick run)" } else { "" };
    let mut section = Seeds::default();

    let q2: Vec<Q2Summary> = summaries_of(out, table, "q2")?;
    if !q2.is_empty() {
        // Runs are keyed by model@lr: the best rate, hence 2.2's, may differ between seeds.
        let mut values: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
        let mut curves: Vec<(String, Vec<Vec<f64>>)> = Vec::new();
        for s in &q2 {
            for r in &s.runs {
                let key = format!("{}@{}", r.model, r.learning_rate);
                let acc: Vec<f64> = r.per_epoch.iter().map(|e| e.val_accuracy).collect();
                match curves.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, c)) => c.push(acc),
                    None => curves.push((key.clone(), vec![acc])),
                }
                let (test, best) = values.entry(key).or_default();
                test.push(r.test_accuracy);
                best.push(r.best_val_accuracy);
            }
        }
        let mut chart = LineChart::new(format!(
            "Q2 validation accuracy, mean ± std over seeds{note}"
        ))
        .x_label("epoch")
        .y_label("validation accuracy");
        for (key, c) in &curves {
            let (mean, b) = band(c);
            chart = chart.series(
                Series::over_epochs(format!("{key} ({} seeds)", c.len()), &mean).with_band(b),
            );
        }
        chart.save(figures_dir.join("seeds_q2_val_accuracy"))?;
        section
            .figures
            .push("figures/seeds_q2_val_accuracy.png".to_string());
        section.q2 = Some(Q2Seeds {
            runs: values
                .into_iter()
                .map(|(k, (test, best))| {
                    let stats = RunStats {
                        test_accuracy: Stat::of(&test),
                        best_val_accuracy: Stat::of(&best),
                    };
                    (k, stats)
                })
                .collect(),
            best_learning_rate: q2.iter().map(|s| s.best_learning_rate).collect(),
        });
    }

    let q3: Vec<Q3Summary> = summaries_of(out, table, "q3")?;
    if !q3.is_empty() {
        let stat = |f: fn(&Q3Summary) -> f64| Stat::of(&q3.iter().map(f).collect::<Vec<_>>());
        section.q3 = Some(Q3Seeds {
            no_attention: ModelStats {
                cer: stat(|s| s.no_attention.test.cer),
                wer: stat(|s| s.no_attention.test.wer),
                best_val_cer: stat(|s| s.no_attention.best_val_cer),
            },
            attention: ModelStats {
                cer: stat(|s| s.attention.test.cer),
                wer: stat(|s| s.attention.test.wer),
                best_val_cer: stat(|s| s.attention.best_val_cer),
            },
            nucleus: NucleusStats {
                cer: stat(|s| s.nucleus.test.cer),
                wer: stat(|s| s.nucleus.test.wer),
                wer_at_3: stat(|s| s.nucleus.test.wer_at_3),
            },
            hopfield: hopfield_runs(&q3)
                .into_iter()
                .map(|(steps, runs)| {
                    let of = |f: fn(&ModelReport) -> f64| {
                        Stat::of(&runs.iter().map(|r| f(r)).collect::<Vec<_>>())
                    };
                    let stats = ModelStats {
                        cer: of(|r| r.test.cer),
                        wer: of(|r| r.test.wer),
                        best_val_cer: of(|r| r.best_val_cer),
                    };
                    (steps, stats)
                })
                .collect(),
        });
        let mut chart = LineChart::new(format!("Q3 validation CER, mean ± std over seeds{note}"))
            .x_label("epoch")
            .y_label("validation CER");
        for (label, curve) in [
            (
                "(a) no attention",
                (|s: &Q3Summary| s.no_attention.val_cer.clone()) as fn(&Q3Summary) -> Vec<f64>,
            ),
            ("(b) attention", |s: &Q3Summary| s.attention.val_cer.clone()),
        ] {
            let (mean, b) = band(&q3.iter().map(curve).collect::<Vec<_>>());
            chart = chart.series(Series::over_epochs(label, &mean).with_band(b));
        }
        for (steps, runs) in hopfield_runs(&q3) {
            let curves: Vec<Vec<f64>> = runs.iter().map(|r| r.val_cer.clone()).collect();
            let (mean, b) = band(&curves);
            let label = format!(
                "Hopfield, {steps} step{}",
                if steps == 1 { "" } else { "s" }
            );
            chart = chart.series(Series::over_epochs(label, &mean).with_band(b));
        }
        chart.save(figures_dir.join("seeds_q3_val_cer"))?;
        section
            .figures
            .push("figures/seeds_q3_val_cer.png".to_string());
    }
    let mut seeds: Vec<u64> = table
        .iter()
        .filter(|r| r.stage != "q1")
        .map(|r| r.seed)
        .collect();
    seeds.sort_unstable();
    seeds.dedup();
    section.seeds = seeds;
    Ok(section)
}

/// The Hopfield-head models every seed's Q3 trained, by retrievals per step, with each
/// seed's report.
fn hopfield_runs(q3: &[Q3Summary]) -> Vec<(usize, Vec<&ModelReport>)> {
    let Some(first) = q3.first() else {
        return Vec::new();
    };
    first
        .hopfield
        .iter()
        .filter_map(|h| {
            let runs: Vec<&ModelReport> = q3
                .iter()
                .filter_map(|s| s.hopfield.iter().find(|o| o.steps == h.steps))
                .map(|o| &o.report)
                .collect();
            (runs.len() == q3.len()).then_some((h.steps, runs))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_follow_the_shortest_curve() {
        let (mean, b) = band(&[vec![1.0, 2.0, 3.0], vec![3.0, 4.0]]);
        assert_eq!(mean, vec![2.0, 3.0]);
        assert_eq!(b[0].0, 1.0);
        assert!((b[1].2 - b[1].1 - 2.0 * std::f64::consts::SQRT_2).abs() < 1e-12);
    }
}

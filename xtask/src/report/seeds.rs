//! `--seeds N`: mean ± standard deviation of every headline figure over the seeds' stage
//! runs, and per-epoch band plots.

use std::path::Path;

use anyhow::Result;
use plot::{LineChart, Series};
use serde_json::{json, Map, Value};

use super::StageRecord;

/// Mean and sample standard deviation (0 for one value).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

fn stat(values: &[f64]) -> Value {
    let (mean, std) = mean_std(values);
    json!({ "mean": mean, "std": std, "values": values })
}

/// Per-epoch mean and (epoch, mean − std, mean + std) band over equally long curves.
fn band(curves: &[Vec<f64>]) -> (Vec<f64>, Vec<(f64, f64, f64)>) {
    let len = curves.iter().map(Vec::len).min().unwrap_or(0);
    (0..len)
        .map(|e| {
            let (m, s) = mean_std(&curves.iter().map(|c| c[e]).collect::<Vec<_>>());
            (m, ((e + 1) as f64, m - s, m + s))
        })
        .unzip()
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .collect()
}

/// Reads every seed's summary of the stages in `table`, writes the band figures into
/// `OUT/figures/` and returns the `seeds` section of `summary.json`.
pub fn aggregate(out: &Path, table: &[StageRecord], quick: bool) -> Result<Value> {
    let figures_dir = out.join("figures");
    std::fs::create_dir_all(&figures_dir)?;
    let note = if quick { " (quick run)" } else { "" };
    let summaries = |stage: &str| -> Result<Vec<(u64, Value)>> {
        table
            .iter()
            .filter(|r| r.stage == stage)
            .map(|r| {
                let summary = artifacts::read_json(out.join(&r.dir).join("summary.json"))?;
                Ok((r.seed, summary))
            })
            .collect()
    };
    let mut section = Map::new();
    let mut figures = Vec::new();

    let q2 = summaries("q2")?;
    if !q2.is_empty() {
        // Runs are keyed by model@lr: the best rate, hence 2.2's, may differ between seeds.
        let mut runs: Map<String, Value> = Map::new();
        let mut curves: Vec<(String, Vec<Vec<f64>>)> = Vec::new();
        for (_, s) in &q2 {
            for r in s["runs"].as_array().into_iter().flatten() {
                let key = format!(
                    "{}@{}",
                    r["model"].as_str().unwrap_or(""),
                    r["learning_rate"]
                );
                let acc: Vec<f64> = r["per_epoch"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["val_accuracy"].as_f64())
                    .collect();
                match curves.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, c)) => c.push(acc),
                    None => curves.push((key.clone(), vec![acc])),
                }
                let entry = runs
                    .entry(key)
                    .or_insert_with(|| json!({"test_accuracy": [], "best_val_accuracy": []}));
                for field in ["test_accuracy", "best_val_accuracy"] {
                    entry[field]
                        .as_array_mut()
                        .expect("array")
                        .push(r[field].clone());
                }
            }
        }
        for v in runs.values_mut() {
            for field in ["test_accuracy", "best_val_accuracy"] {
                v[field] = stat(&numbers(&v[field]));
            }
        }
        let best_lr: Vec<Value> = q2
            .iter()
            .map(|(_, s)| s["best_learning_rate"].clone())
            .collect();
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
        figures.push("figures/seeds_q2_val_accuracy.png".to_string());
        section.insert(
            "q2".into(),
            json!({ "runs": runs, "best_learning_rate": best_lr }),
        );
    }

    let q3 = summaries("q3")?;
    if !q3.is_empty() {
        let pick = |path: &[&str]| -> Value {
            let values: Vec<f64> = q3
                .iter()
                .filter_map(|(_, s)| path.iter().fold(s, |v, k| &v[*k]).as_f64())
                .collect();
            stat(&values)
        };
        let mut q = Map::new();
        for model in ["no_attention", "attention"] {
            q.insert(
                model.into(),
                json!({
                    "cer": pick(&[model, "test", "cer"]),
                    "wer": pick(&[model, "test", "wer"]),
                    "best_val_cer": pick(&[model, "best_val_cer"]),
                }),
            );
        }
        q.insert(
            "nucleus".into(),
            json!({
                "cer": pick(&["nucleus", "test", "cer"]),
                "wer": pick(&["nucleus", "test", "wer"]),
                "wer_at_3": pick(&["nucleus", "test", "wer_at_3"]),
            }),
        );
        let mut chart = LineChart::new(format!("Q3 validation CER, mean ± std over seeds{note}"))
            .x_label("epoch")
            .y_label("validation CER");
        for (model, label) in [
            ("no_attention", "(a) no attention"),
            ("attention", "(b) attention"),
        ] {
            let c: Vec<Vec<f64>> = q3
                .iter()
                .map(|(_, s)| numbers(&s[model]["val_cer"]))
                .collect();
            let (mean, b) = band(&c);
            chart = chart.series(Series::over_epochs(label, &mean).with_band(b));
        }
        chart.save(figures_dir.join("seeds_q3_val_cer"))?;
        figures.push("figures/seeds_q3_val_cer.png".to_string());
        section.insert("q3".into(), Value::Object(q));
    }
    let seeds: Vec<u64> = {
        let mut s: Vec<u64> = table
            .iter()
            .filter(|r| r.stage != "q1")
            .map(|r| r.seed)
            .collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    section.insert("seeds".into(), json!(seeds));
    section.insert("figures".into(), json!(figures));
    Ok(Value::Object(section))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_standard_deviation() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0, 4.0]);
        assert!((m - 2.5).abs() < 1e-12);
        assert!((s - 1.290_994_448_735_805_6).abs() < 1e-12);
        assert_eq!(mean_std(&[0.7]), (0.7, 0.0));
    }

    #[test]
    fn bands_follow_the_shortest_curve() {
        let (mean, b) = band(&[vec![1.0, 2.0, 3.0], vec![3.0, 4.0]]);
        assert_eq!(mean, vec![2.0, 3.0]);
        assert_eq!(b[0].0, 1.0);
        assert!((b[1].2 - b[1].1 - 2.0 * std::f64::consts::SQRT_2).abs() < 1e-12);
    }
}

//! Q1 meets Q3: what the trained attention heads retrieve. For Bahdanau's head and each
//! Hopfield head: the effective number of source positions per decoder step (exp of the
//! attention's entropy, Q1's measure of metastable states), then the first Hopfield model
//! again with its β scaled and its retrievals changed at test time — Q1's result that a
//! large β retrieves single patterns and a small one averages them — and the attention maps
//! of a few words. Figures and [`Retrieval`] for the summary.

use std::path::Path;

use anyhow::Result;
use plot::{Heatmap, HeatmapGrid, LineChart, Series};
use summaries::q3::{HeadPoint, Retrieval};
use tch::{Device, Tensor};

use crate::alignment::{effective_positions, greedy_map};
use crate::corpus::Corpus;
use crate::decode::Strategy;
use crate::evaluate::{predict, score};
use crate::model::{Attention, Model};

/// What the study needs of the stage's options.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Longest decoded output.
    pub max_len: usize,
    /// Decoder rows at once.
    pub rows: usize,
    /// The data is the generated quick-run corpus.
    pub synthetic: bool,
}

/// Words of the maps when the test set has them: a silent `gh`, the digraphs `ph` and `sh`.
const MAP_WORDS: &[&str] = &["sighted", "phoneme", "slashed"];
/// β over the trained β, and retrievals per step, of the sweep.
const BETA_SCALES: &[f64] = &[0.25, 0.5, 1.0, 2.0, 4.0, 8.0];
const SWEEP_STEPS: &[usize] = &[1, 3];
/// Decoder steps drawn: those at least this many test words reach.
const MIN_WORDS: usize = 20;

/// Runs the study on the trained `bahdanau` model and `hopfield` models, each with its
/// label (the first Hopfield model is swept, and put back as trained); writes its figures
/// into `out` and returns the summary's part and the figure files.
pub fn study(
    p: &Corpus,
    c: Settings,
    bahdanau: (String, &Model),
    hopfield: &mut [(String, Model)],
    out: &Path,
    device: Device,
) -> Result<(Retrieval, Vec<String>)> {
    let greedy = |model: &Model| {
        let rows = c.rows;
        predict(
            &model.net,
            &p.test,
            &p.vocabs.tgt,
            Strategy::Greedy,
            c.max_len,
            rows,
            device,
        )
    };
    let point = |label: String, model: &Model, beta_scale: f64, steps: usize| -> HeadPoint {
        let effective =
            effective_positions(&model.net, &p.test, 256, device).expect("an attending model");
        let preds = greedy(model);
        HeadPoint {
            label,
            beta_scale,
            steps,
            effective,
            test: score(&preds, &p.test_gold),
        }
    };
    let mut trained = vec![point(bahdanau.0.clone(), bahdanau.1, 1.0, 1)];
    for (label, model) in hopfield.iter() {
        let (_, steps) = hopfield_setting(model).expect("a Hopfield head");
        trained.push(point(label.clone(), model, 1.0, steps));
    }
    let mut sweep = Vec::new();
    if let Some((_, model)) = hopfield.first_mut() {
        let (beta, steps) = hopfield_setting(model).expect("a Hopfield head");
        for &n in SWEEP_STEPS {
            for &scale in BETA_SCALES {
                set_hopfield(model, beta * scale, n, device);
                let label = format!("β × {scale}, {n} step{}", if n == 1 { "" } else { "s" });
                let at = point(label, model, scale, n);
                eprintln!(
                    "  {}: effective positions {:.2}, test CER {:.4}",
                    at.label, at.effective.mean, at.test.cer
                );
                sweep.push(at);
            }
        }
        set_hopfield(model, beta, steps, device);
    }

    // The maps: the chosen words the test set has, then the first short word (b) misspells.
    let (_, first_hopfield) = &hopfield[0];
    let mut words: Vec<usize> = MAP_WORDS
        .iter()
        .filter_map(|w| p.test_gold.iter().position(|g| g == w))
        .collect();
    if words.is_empty() {
        words.extend(0..3.min(p.test.len()));
    }
    let spelled_by_b = greedy(bahdanau.1);
    if let Some(miss) = (0..p.test.len())
        .find(|&i| spelled_by_b[i] != p.test_gold[i] && p.test_gold[i].chars().count() <= 10)
    {
        words.push(miss);
    }
    let mut panels = Vec::new();
    for &i in &words {
        for (label, model) in [
            (bahdanau.0.clone(), bahdanau.1),
            (hopfield[0].0.clone(), first_hopfield),
        ] {
            let map = greedy_map(&model.net, &p.test[i], &p.vocabs, c.max_len, device)
                .expect("an attending model");
            let eos = p.vocabs.tgt.token(crate::vocab::EOS);
            let spelled: String = map
                .graphemes
                .iter()
                .filter(|g| g.as_str() != eos)
                .map(String::as_str)
                .collect();
            panels.push(Heatmap {
                title: format!("{} → {spelled}\n{label}", p.test_gold[i]),
                rows: map.graphemes,
                columns: map.phonemes,
                values: map.weights,
            });
        }
    }
    let note = if c.synthetic {
        " (generated quick-run data)"
    } else {
        ""
    };
    let mut figures = Vec::new();
    HeatmapGrid {
        title: format!(
            "Attention while spelling greedily: graphemes (rows) over phonemes (columns){note}"
        ),
        panels,
        per_row: 2,
    }
    .save(out.join("attention_maps"))?;
    figures.extend([
        "attention_maps.png".to_string(),
        "attention_maps.svg".to_string(),
    ]);

    let mut chart = LineChart::new(format!("Effective source positions per decoder step{note}"))
        .x_label("decoder step")
        .y_label("exp(entropy of the attention)");
    for h in &trained {
        let points: Vec<(f64, f64)> = h
            .effective
            .per_step
            .iter()
            .zip(&h.effective.words_per_step)
            .enumerate()
            .take_while(|(_, (_, &n))| n >= MIN_WORDS)
            .map(|(t, (&e, _))| ((t + 1) as f64, e))
            .collect();
        chart = chart.series(Series::new(h.label.clone(), points));
    }
    chart.save(out.join("effective_positions"))?;
    figures.extend([
        "effective_positions.png".to_string(),
        "effective_positions.svg".to_string(),
    ]);

    if !sweep.is_empty() {
        let mut chart = LineChart::new(format!(
            "{}: effective positions as β changes{note}",
            hopfield[0].0
        ))
        .x_label("log2(β / trained β)")
        .y_label("mean effective source positions");
        for &n in SWEEP_STEPS {
            let points = sweep
                .iter()
                .filter(|h| h.steps == n)
                .map(|h| (h.beta_scale.log2(), h.effective.mean))
                .collect();
            let name = format!("{n} retrieval{} per step", if n == 1 { "" } else { "s" });
            chart = chart.series(Series::new(name, points));
        }
        chart.save(out.join("hopfield_beta"))?;
        figures.extend([
            "hopfield_beta.png".to_string(),
            "hopfield_beta.svg".to_string(),
        ]);
    }

    let mean_source_length =
        p.test.iter().map(|e| e.src.len() as f64).sum::<f64>() / p.test.len().max(1) as f64;
    Ok((
        Retrieval {
            mean_source_length,
            trained,
            sweep,
            map_words: words.iter().map(|&i| p.test_gold[i].clone()).collect(),
        },
        figures,
    ))
}

/// The Hopfield head's β and retrievals per step.
fn hopfield_setting(model: &Model) -> Option<(f64, usize)> {
    match &model.net.decoder.attn {
        Some(Attention::Hopfield(h)) => Some((h.beta.double_value(&[]), h.steps)),
        _ => None,
    }
}

/// Sets the Hopfield head's β (a constant from now on) and its retrievals per step.
fn set_hopfield(model: &mut Model, beta: f64, steps: usize, device: Device) {
    if let Some(Attention::Hopfield(h)) = &mut model.net.decoder.attn {
        h.beta = Tensor::from(beta as f32).to_device(device);
        h.steps = steps.max(1);
    }
}

//! The report's "Q1 meets Q3" section: the Hopfield attention head beside no attention and
//! Bahdanau's, the attention maps, and what the heads retrieve in Q1's terms.

use std::fmt::Write as _;
use std::path::Path;

use summaries::q3::{ModelReport, Q3Summary};
use summaries::seeds::Q3Seeds;

use super::{figure, plus_minus, thousands};

/// Appends the section to `md` (nothing when the Q3 stage trained no Hopfield head).
pub fn write(md: &mut String, out: &Path, q3: &Q3Summary, seeds: Option<&Q3Seeds>) {
    let Some(retrieval) = &q3.retrieval else {
        return;
    };
    md.push_str("## Q1 meets Q3 — a Hopfield attention head\n\n");
    md.push_str("Q1 shows that one update of a modern Hopfield network, `ξ ← Xᵀ softmax(β X ξ)` (the stored patterns the rows of X), is cross-attention. Here that update is the decoder's attention head (`p2g train --attn hopfield`): the decoder state, projected by `W_q`, is the state pattern; the encoder outputs, projected by `W_k`, are the stored patterns; the last retrieval's probabilities read the values `W_v h`; β = 1/√H. With more steps the state is updated towards a fixed point before the values are read. Everything else is (b)'s model, trained with the same seed, data and epochs.\n\n");
    if q3.config.synthetic {
        md.push_str("Data: **generated quick-run corpus, not the homework's**.\n\n");
    }
    md.push_str("| model | parameters | greedy test CER | WER | beam test CER | best validation CER | s / epoch | peak training memory |");
    md.push_str(if seeds.is_some() {
        " test CER over seeds |\n|---|---|---|---|---|---|---|---|---|\n"
    } else {
        "\n|---|---|---|---|---|---|---|---|\n"
    });
    let epochs = q3.config.epochs.max(1) as f64;
    let mut rows: Vec<(String, &ModelReport, String)> = vec![
        (
            "(a) no attention".into(),
            &q3.no_attention,
            plus_minus(seeds.map(|s| &s.no_attention.cer)),
        ),
        (
            "(b) Bahdanau attention".into(),
            &q3.attention,
            plus_minus(seeds.map(|s| &s.attention.cer)),
        ),
    ];
    for h in &q3.hopfield {
        let stat = seeds.and_then(|s| s.hopfield.iter().find(|(n, _)| *n == h.steps));
        rows.push((
            format!(
                "Hopfield, {} step{}",
                h.steps,
                if h.steps == 1 { "" } else { "s" }
            ),
            &h.report,
            plus_minus(stat.map(|(_, m)| &m.cer)),
        ));
    }
    for (name, r, over_seeds) in rows {
        let beam = r.beam.first().map_or("–".into(), |b| {
            format!("{:.4} (width {})", b.test.cer, b.width)
        });
        let memory = r.peak_rss_mib.map_or("–".into(), |m| format!("{m:.0} MiB"));
        let _ = write!(
            md,
            "| {name} | {} | {:.4} | {:.4} | {beam} | {:.4} | {:.2} | {memory} |",
            thousands(r.params),
            r.test.cer,
            r.test.wer,
            r.best_val_cer,
            r.train_seconds / epochs,
        );
        if seeds.is_some() {
            let _ = write!(md, " {over_seeds} |");
        }
        md.push('\n');
    }
    if let Some(h1) = q3.hopfield.iter().find(|h| h.steps == 1) {
        let (b, h) = (&q3.attention, &h1.report);
        let _ = writeln!(
            md,
            "\nHopfield (1 step) against Bahdanau, same seed: test CER {:+.4} ({}), seconds per epoch × {:.2} (target ≤ 1.2).\n",
            h.test.cer - b.test.cer,
            if (h.test.cer - b.test.cer).abs() <= 0.01 {
                "within the 0.01 target"
            } else if h.test.cer < b.test.cer {
                "better than Bahdanau's by more than 0.01"
            } else {
                "worse than Bahdanau's by more than the 0.01 target"
            },
            h.train_seconds / b.train_seconds.max(1e-9),
        );
    }
    md.push_str("### Attention maps\n\nGreedy spellings of test words (a silent *gh*, the digraphs *ph* and *sh*, and the first short word (b) misspells), each grapheme's attention over the phonemes:\n\n");
    figure(
        md,
        out,
        "q3/attention_maps.png",
        "attention maps, Bahdanau and Hopfield",
    );
    md.push_str("### What the heads retrieve\n\n");
    let _ = writeln!(
        md,
        "Q1's retrieval experiments measure how many stored patterns an update averages by the exponential of the softmax's entropy: 1 when a single pattern is retrieved, N when all N are averaged (a metastable state), and large β pushes towards the first. The same measure over the test set, at each decoder step under teacher forcing (test words have {:.1} phonemes on average):\n",
        retrieval.mean_source_length
    );
    md.push_str("| head | β over the trained β | retrievals per step | effective source positions | greedy test CER |\n|---|---|---|---|---|\n");
    for p in retrieval.trained.iter().chain(&retrieval.sweep) {
        let _ = writeln!(
            md,
            "| {} | × {} | {} | {:.2} | {:.4} |",
            p.label, p.beta_scale, p.steps, p.effective.mean, p.test.cer
        );
    }
    md.push('\n');
    let one: Vec<_> = retrieval.sweep.iter().filter(|p| p.steps == 1).collect();
    let (low, high, best) = (
        one.iter()
            .min_by(|a, b| a.beta_scale.total_cmp(&b.beta_scale)),
        one.iter()
            .max_by(|a, b| a.beta_scale.total_cmp(&b.beta_scale)),
        one.iter().min_by(|a, b| a.test.cer.total_cmp(&b.test.cer)),
    );
    if let (Some(low), Some(high), Some(best)) = (low, high, best) {
        let _ = writeln!(
            md,
            "Scaling the trained head's β at test time moves it along Q1's axis: at β × {} it spreads over {:.2} positions, at β × {} over {:.2} — towards the single pattern that Q1's large-β updates retrieve. Its best test CER in this sweep is at β × {} ({:.4}).\n",
            low.beta_scale, low.effective.mean, high.beta_scale, high.effective.mean, best.beta_scale, best.test.cer
        );
    }
    let at = |steps: usize| {
        retrieval
            .sweep
            .iter()
            .find(|p| p.steps == steps && p.beta_scale == 1.0)
    };
    if let (Some(one), Some(three)) = (at(1), at(3)) {
        let _ = writeln!(
            md,
            "Iterating the update on the trained 1-step head (3 retrievals instead of 1, same β) changes its effective positions from {:.2} to {:.2} and its test CER from {:.4} to {:.4}: each further step moves the state towards a fixed point of Q1's update.",
            one.effective.mean, three.effective.mean, one.test.cer, three.test.cer
        );
    }
    md.push('\n');
    figure(
        md,
        out,
        "q3/effective_positions.png",
        "effective source positions per decoder step",
    );
    figure(
        md,
        out,
        "q3/hopfield_beta.png",
        "effective source positions as β changes",
    );
}

//! The report's Q3 section: (a), (b) and (c) beside the published test figures, each
//! model's training and beam search, examples of differing nucleus samples, and the
//! validation curves.

use std::fmt::Write as _;
use std::path::Path;

use summaries::q3::Q3Summary;
use summaries::seeds::{Q3Seeds, Stat};

use super::reference::{Published, Reference};
use super::{beside, figure, plus_minus, thousands};

/// Appends the section to `md`.
pub fn write(
    md: &mut String,
    out: &Path,
    q3: &Q3Summary,
    seeds: Option<&Q3Seeds>,
    reference: &Reference,
) {
    md.push_str("## Q3 — Phoneme-to-grapheme seq2seq\n\n");
    let synthetic = q3.config.synthetic;
    if synthetic {
        md.push_str("Data: **generated quick-run corpus, not the homework's**: published figures below are not comparable.\n\n");
    }
    md.push_str("| run | metric | ours (test) | published (seed, range) | difference |");
    md.push_str(if seeds.is_some() {
        " over seeds: mean ± std |\n|---|---|---|---|---|---|\n"
    } else {
        "\n|---|---|---|---|---|\n"
    });
    let p = &reference.q3;
    let (a, b, c) = (&q3.no_attention.test, &q3.attention.test, &q3.nucleus.test);
    let stats = |f: fn(&Q3Seeds) -> &Stat| seeds.map(f);
    let rows: [(&str, &str, f64, &Published, Option<&Stat>); 7] = [
        (
            "(a) no attention",
            "CER",
            a.cer,
            &p.no_attention.cer,
            stats(|s| &s.no_attention.cer),
        ),
        (
            "(a) no attention",
            "WER",
            a.wer,
            &p.no_attention.wer,
            stats(|s| &s.no_attention.wer),
        ),
        (
            "(b) attention",
            "CER",
            b.cer,
            &p.attention.cer,
            stats(|s| &s.attention.cer),
        ),
        (
            "(b) attention",
            "WER",
            b.wer,
            &p.attention.wer,
            stats(|s| &s.attention.wer),
        ),
        (
            "(c) attention + nucleus p = 0.8",
            "CER",
            c.cer,
            &p.nucleus.cer,
            stats(|s| &s.nucleus.cer),
        ),
        (
            "(c) attention + nucleus p = 0.8",
            "WER",
            c.wer,
            &p.nucleus.wer,
            stats(|s| &s.nucleus.wer),
        ),
        (
            "(c) attention + nucleus p = 0.8",
            "WER@3",
            c.wer_at_3,
            &p.nucleus.wer_at_3,
            stats(|s| &s.nucleus.wer_at_3),
        ),
    ];
    for (run, metric, ours, published, stat) in rows {
        let (published, mut diff) = beside(Some(ours), Some(published));
        if synthetic {
            diff = "n/a (quick data)".into();
        }
        let _ = write!(
            md,
            "| {run} | {metric} | {ours:.4} | {published} | {diff} |"
        );
        if seeds.is_some() {
            let _ = write!(md, " {} |", plus_minus(stat));
        }
        md.push('\n');
    }
    md.push_str("\n| model | parameters | best epoch | best validation CER | training s | greedy test CER / WER | beam test CER / WER |\n|---|---|---|---|---|---|---|\n");
    for (name, r) in [
        ("no_attention", &q3.no_attention),
        ("attention", &q3.attention),
    ] {
        let beam: Vec<String> = r
            .beam
            .iter()
            .map(|b| format!("width {}: {:.4} / {:.4}", b.width, b.test.cer, b.test.wer))
            .collect();
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {:.4} | {:.1} | {:.4} / {:.4} | {} |",
            thousands(r.params),
            r.best_epoch,
            r.best_val_cer,
            r.train_seconds,
            r.test.cer,
            r.test.wer,
            beam.join("; ")
        );
    }
    md.push_str("\nExamples whose three nucleus samples differ (gold: samples):\n\n");
    for (gold, samples) in q3.nucleus.differing_sample.iter().take(10) {
        let _ = writeln!(md, "- {gold}: {}", samples.join(", "));
    }
    md.push('\n');
    figure(
        md,
        out,
        "q3/val_cer_no_attention.png",
        "validation CER, no attention",
    );
    figure(
        md,
        out,
        "q3/val_cer_attention.png",
        "validation CER, attention",
    );
}

//! Decoding whole splits and scoring them as the homework does.

use serde::Serialize;
pub use summaries::q3::Scores;
use tch::Device;

use crate::batch::{batches, Encoded};
use crate::decode::{decode, Strategy};
use crate::model::Seq2Seq;
use crate::vocab::Vocab;

/// Decodes every example (in order, `rows` decoder rows at a time — a beam of width K
/// uses K rows per example) and returns the strings as the homework prints them (SOS/EOS
/// dropped, PAD/UNK literal).
pub fn predict(
    model: &Seq2Seq,
    data: &[Encoded],
    tgt_vocab: &Vocab,
    strategy: Strategy,
    max_len: usize,
    rows: usize,
    device: Device,
) -> Vec<String> {
    let order: Vec<i64> = (0..data.len() as i64).collect();
    let batch_size = match strategy {
        Strategy::Beam { width } => (rows / width.max(1)).max(1),
        _ => rows.max(1),
    };
    batches(data, &order, batch_size, device)
        .flat_map(|batch| decode(model, &batch, strategy, max_len))
        .map(|ids| tgt_vocab.decode(&ids))
        .collect()
}

/// Scores predictions against raw gold strings.
pub fn score<P: AsRef<str>, G: AsRef<str>>(preds: &[P], golds: &[G]) -> Scores {
    Scores {
        cer: metrics::cer(preds, golds),
        wer: metrics::exact_match_wer(preds, golds),
    }
}

/// WER@k with `k` independent sample sets, and the examples whose samples differ.
#[derive(Debug, Clone, Serialize)]
pub struct WerAtK {
    /// k.
    pub k: usize,
    /// Fraction of examples none of whose k samples is exact.
    pub wer_at_k: f64,
    /// (gold, distinct samples) for the examples whose samples are not all equal.
    pub differing: Vec<(String, Vec<String>)>,
}

/// Computes WER@k from k sample sets (each a full pass over the split).
pub fn wer_at_k(sample_sets: &[Vec<String>], golds: &[String]) -> WerAtK {
    let k = sample_sets.len();
    let per_example: Vec<Vec<String>> = (0..golds.len())
        .map(|i| sample_sets.iter().map(|s| s[i].clone()).collect())
        .collect();
    let wer_at_k = metrics::wer_at_k(&per_example, golds, k).expect("every example has k samples");
    let differing = per_example
        .iter()
        .zip(golds)
        .filter_map(|(samples, gold)| {
            let mut distinct: Vec<String> = Vec::new();
            for s in samples {
                if !distinct.contains(s) {
                    distinct.push(s.clone());
                }
            }
            (distinct.len() > 1).then(|| (gold.clone(), distinct))
        })
        .collect();
    WerAtK {
        k,
        wer_at_k,
        differing,
    }
}

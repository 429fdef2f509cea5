//! Error rates over a corpus of predictions and gold references.

use crate::edit::{char_levenshtein, levenshtein};

fn check_lengths(preds: usize, golds: usize) {
    assert_eq!(
        preds, golds,
        "metrics: {preds} predictions but {golds} gold references; they must pair up"
    );
}

/// Character error rate as the homework defines it: Σ edit distance / Σ gold length, over
/// Unicode scalar values, micro-averaged over the corpus (not a mean of per-word rates).
///
/// Returns 0 for an empty corpus, and `f64::INFINITY` when the gold side has no characters
/// but some prediction does. Panics if the two slices differ in length.
pub fn cer<P: AsRef<str>, G: AsRef<str>>(preds: &[P], golds: &[G]) -> f64 {
    check_lengths(preds.len(), golds.len());
    let mut dist = 0usize;
    let mut total = 0usize;
    for (p, g) in preds.iter().zip(golds) {
        dist += char_levenshtein(p.as_ref(), g.as_ref());
        total += g.as_ref().chars().count();
    }
    ratio(dist, total)
}

/// The homework's "WER": the fraction of examples whose prediction is not exactly the gold
/// string. (Each example is a single word, so this is a sentence-level error rate.)
///
/// Returns 0 for an empty corpus. Panics if the two slices differ in length.
pub fn exact_match_wer<P: AsRef<str>, G: AsRef<str>>(preds: &[P], golds: &[G]) -> f64 {
    check_lengths(preds.len(), golds.len());
    let wrong = preds
        .iter()
        .zip(golds)
        .filter(|(p, g)| p.as_ref() != g.as_ref())
        .count();
    ratio(wrong, golds.len())
}

/// Standard word error rate: Σ word-level edit distance / Σ reference words, words being
/// whitespace-separated (as `jiwer.wer` computes it over a list of sentences).
///
/// Returns 0 for an empty corpus, and `f64::INFINITY` when the references have no words but
/// some hypothesis does. Panics if the two slices differ in length.
pub fn word_error_rate<P: AsRef<str>, G: AsRef<str>>(hyps: &[P], refs: &[G]) -> f64 {
    check_lengths(hyps.len(), refs.len());
    let mut dist = 0usize;
    let mut total = 0usize;
    for (h, r) in hyps.iter().zip(refs) {
        let h: Vec<&str> = h.as_ref().split_whitespace().collect();
        let r: Vec<&str> = r.as_ref().split_whitespace().collect();
        dist += levenshtein(&h, &r);
        total += r.len();
    }
    ratio(dist, total)
}

/// An example had fewer samples than WER@k asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WerAtKError {
    /// Index of the offending example.
    pub example: usize,
    /// How many samples it has.
    pub samples: usize,
    /// The `k` that was asked for.
    pub k: usize,
}

impl std::fmt::Display for WerAtKError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WER@{}: example {} has only {} samples; draw at least {} per example",
            self.k, self.example, self.samples, self.k
        )
    }
}

impl std::error::Error for WerAtKError {}

/// WER@k: the fraction of examples for which none of the first `k` samples equals the gold.
///
/// Every example must have at least `k` samples; otherwise the rate would silently mean
/// something else, so it is an error. Panics if the two slices differ in length.
pub fn wer_at_k<S: AsRef<str>, G: AsRef<str>>(
    samples: &[Vec<S>],
    golds: &[G],
    k: usize,
) -> Result<f64, WerAtKError> {
    check_lengths(samples.len(), golds.len());
    let mut missed = 0;
    for (i, (set, gold)) in samples.iter().zip(golds).enumerate() {
        if set.len() < k {
            return Err(WerAtKError {
                example: i,
                samples: set.len(),
                k,
            });
        }
        if !set[..k].iter().any(|s| s.as_ref() == gold.as_ref()) {
            missed += 1;
        }
    }
    Ok(ratio(missed, golds.len()))
}

fn ratio(num: usize, den: usize) -> f64 {
    match (num, den) {
        (0, 0) => 0.0,
        (_, 0) => f64::INFINITY,
        _ => num as f64 / den as f64,
    }
}

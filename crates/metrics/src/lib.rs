//! Evaluation metrics for the homework, in pure Rust.
//!
//! * [`levenshtein`]: edit distance over any token sequence.
//! * [`cer`]: character error rate as the homework computes it (micro-averaged).
//! * [`exact_match_wer`]: the homework's "WER" — the fraction of words not predicted exactly.
//! * [`word_error_rate`]: the standard word-level WER (what `jiwer.wer` computes).
//! * [`wer_at_k`]: the fraction of examples none of whose `k` samples is exact.
//! * [`accuracy`], [`ConfusionMatrix`]: for classification.
//!
//! ```
//! let preds = ["chaplet", "naive"];
//! let golds = ["chaplet", "naïve"];
//! assert_eq!(metrics::cer(&preds, &golds), 1.0 / 12.0);
//! assert_eq!(metrics::exact_match_wer(&preds, &golds), 0.5);
//! ```

mod classification;
mod edit;
mod rates;

pub use classification::{accuracy, ConfusionMatrix};
pub use edit::{char_levenshtein, levenshtein};
pub use rates::{cer, exact_match_wer, wer_at_k, word_error_rate, WerAtKError};

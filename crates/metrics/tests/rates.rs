//! Hand-checked tables for every metric.

use metrics::*;
use rstest::rstest;

#[rstest]
#[case::both_empty("", "", 0)]
#[case::empty_pred("", "abc", 3)]
#[case::empty_gold("abc", "", 3)]
#[case::identical("chaplet", "chaplet", 0)]
#[case::one_substitution("kitten", "sitten", 1)]
#[case::classic("kitten", "sitting", 3)]
#[case::insertion("cat", "cart", 1)]
#[case::deletion("cart", "cat", 1)]
#[case::transposition_is_two("ab", "ba", 2)]
#[case::accent_is_one_scalar("naive", "naïve", 1)]
#[case::accent_vs_decomposed("naïve", "nai\u{308}ve", 2)]
#[case::non_latin("ʃæp", "tʃæp", 1)]
fn char_distance(#[case] a: &str, #[case] b: &str, #[case] expected: usize) {
    assert_eq!(char_levenshtein(a, b), expected);
    assert_eq!(
        char_levenshtein(b, a),
        expected,
        "distance must be symmetric"
    );
}

#[rstest]
#[case::multi_code_point_tokens(&["t͡ʃ", "æ", "p"], &["t͡ʃ", "æ", "p"], 0)]
#[case::token_not_chars(&["t͡ʃ", "æ"], &["ʃ", "æ"], 1)]
#[case::long_vowel(&["iː", "l̩"], &["i", "l̩"], 1)]
#[case::insert_token(&["a"], &["a", "iː"], 1)]
fn token_distance(#[case] a: &[&str], #[case] b: &[&str], #[case] expected: usize) {
    assert_eq!(levenshtein(a, b), expected);
}

#[rstest]
#[case::perfect(&["abc", "de"], &["abc", "de"], 0.0)]
// 1 substitution + 1 deletion over 5 gold chars: micro-average, not the mean of 1/3 and 1/2.
#[case::micro_average(&["abd", "d"], &["abc", "de"], 2.0 / 5.0)]
#[case::accented(&["naive"], &["naïve"], 1.0 / 5.0)]
#[case::empty_prediction(&[""], &["word"], 1.0)]
#[case::longer_than_gold(&["abcd"], &["a"], 3.0)]
#[case::empty_corpus(&[], &[], 0.0)]
#[case::empty_gold_but_output(&["x"], &[""], f64::INFINITY)]
fn character_error_rate(#[case] preds: &[&str], #[case] golds: &[&str], #[case] expected: f64) {
    assert_eq!(cer(preds, golds), expected);
}

#[rstest]
#[case::all_right(&["a", "b"], &["a", "b"], 0.0)]
#[case::half(&["a", "x"], &["a", "b"], 0.5)]
#[case::case_matters(&["Bronx"], &["bronx"], 1.0)]
#[case::accent_matters(&["naive", "café"], &["naïve", "café"], 0.5)]
fn homework_wer(#[case] preds: &[&str], #[case] golds: &[&str], #[case] expected: f64) {
    assert_eq!(exact_match_wer(preds, golds), expected);
}

#[rstest]
#[case::perfect(&["the cat sat"], &["the cat sat"], 0.0)]
#[case::one_sub(&["the cat sat"], &["the hat sat"], 1.0 / 3.0)]
#[case::insertion(&["the big cat"], &["the cat"], 1.0 / 2.0)]
#[case::deletion(&["the"], &["the cat"], 1.0 / 2.0)]
// Micro-averaged over references: (1 + 0) / (2 + 3).
#[case::corpus(&["a x", "c d e"], &["a b", "c d e"], 1.0 / 5.0)]
#[case::whitespace_insensitive(&["  a   b "], &["a b"], 0.0)]
fn standard_wer(#[case] hyps: &[&str], #[case] refs: &[&str], #[case] expected: f64) {
    assert_eq!(word_error_rate(hyps, refs), expected);
}

#[test]
fn homework_wer_differs_from_standard_wer_on_sentences() {
    // One wrong word in a four-word sentence: the whole example is wrong for the homework's
    // definition, a quarter wrong for the standard one.
    let hyps = ["a b c x"];
    let refs = ["a b c d"];
    assert_eq!(exact_match_wer(&hyps, &refs), 1.0);
    assert_eq!(word_error_rate(&hyps, &refs), 0.25);
}

#[rstest]
#[case::one_hit_suffices(vec![vec!["x", "y", "gold"]], 3, 0.0)]
#[case::hit_outside_first_k(vec![vec!["x", "y", "gold"]], 2, 1.0)]
#[case::none_right(vec![vec!["x", "y", "z"], vec!["b", "b", "b"]], 3, 0.5)]
#[case::k_zero_counts_all_wrong(vec![vec!["gold"], vec!["b"]], 0, 1.0)]
fn wer_at_k_table(#[case] samples: Vec<Vec<&str>>, #[case] k: usize, #[case] expected: f64) {
    let golds: Vec<&str> = vec!["gold", "b"][..samples.len()].to_vec();
    assert_eq!(wer_at_k(&samples, &golds, k).unwrap(), expected);
}

#[test]
fn wer_at_k_rejects_too_few_samples() {
    let samples = vec![vec!["a", "b", "c"], vec!["a", "b"]];
    let err = wer_at_k(&samples, &["a", "b"], 3).unwrap_err();
    assert_eq!(
        err,
        WerAtKError {
            example: 1,
            samples: 2,
            k: 3
        }
    );
    assert!(err.to_string().contains("example 1 has only 2 samples"));
}

#[test]
#[should_panic(expected = "2 predictions but 1 gold")]
fn mismatched_lengths_panic() {
    cer(&["a", "b"], &["a"]);
}

#[rstest]
#[case::all(&[0, 1, 2], &[0, 1, 2], 1.0)]
#[case::third(&[0, 0, 0], &[0, 1, 2], 1.0 / 3.0)]
#[case::empty(&[], &[], 0.0)]
fn accuracy_table(#[case] preds: &[i64], #[case] labels: &[i64], #[case] expected: f64) {
    assert_eq!(accuracy(preds, labels), expected);
}

#[test]
fn confusion_matrix_counts_rows_as_truth() {
    let labels = [0, 0, 1, 2, 2, 2];
    let preds = [0, 1, 1, 2, 0, 2];
    let m = ConfusionMatrix::new(3, &preds, &labels);
    assert_eq!(m.counts, vec![vec![1, 1, 0], vec![0, 1, 0], vec![1, 0, 2]]);
    assert_eq!(m.total(), 6);
    assert_eq!(m.accuracy(), accuracy(&preds, &labels));
    assert_eq!(m.recall(), vec![Some(0.5), Some(1.0), Some(2.0 / 3.0)]);
    let empty_class = ConfusionMatrix::new(4, &preds, &labels);
    assert_eq!(empty_class.recall()[3], None);
}

#[test]
#[should_panic(expected = "class id 7 out of range 0..3")]
fn confusion_matrix_rejects_bad_class() {
    ConfusionMatrix::new(3, &[7], &[0]);
}

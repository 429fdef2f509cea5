//! Levenshtein (edit) distance.

/// Minimum number of insertions, deletions and substitutions turning `a` into `b`.
///
/// Works over any comparable tokens: `char`s for CER, `&str` words for WER, or multi-code-point
/// IPA symbols. Runs in O(|a|·|b|) time and O(min(|a|, |b|)) memory.
pub fn levenshtein<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    // Keep the shorter sequence along the row to minimise the buffer.
    let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    if short.is_empty() {
        return long.len();
    }
    let mut row: Vec<usize> = (0..=short.len()).collect();
    for (i, x) in long.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, y) in short.iter().enumerate() {
            let sub = diag + usize::from(x != y);
            diag = row[j + 1];
            row[j + 1] = sub.min(diag + 1).min(row[j] + 1);
        }
    }
    row[short.len()]
}

/// Levenshtein distance between two strings over Unicode scalar values (`char`s).
///
/// "naïve" in NFC is 5 scalars, so `char_levenshtein("naive", "naïve") == 1`.
pub fn char_levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    levenshtein(&a, &b)
}

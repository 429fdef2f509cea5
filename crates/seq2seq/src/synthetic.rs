//! A generated phoneme-to-grapheme corpus for `--quick` runs: made-up words spelled from
//! English-like syllables and "pronounced" by a small rule table, with the ambiguities that
//! make the real task hard (`f` ← f/ph, `k` ← k/c/ck, `s` ← s/ss/c, `iː` ← ee/ea, ...).
//! Same TSV format as the homework files; free of licences; never the homework's numbers.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Lines per split (train, valid, test) of the quick-run corpus.
pub const QUICK_SIZES: [usize; 3] = [2000, 200, 200];

/// (spelling, phonemes) of syllable onsets.
const ONSETS: &[(&str, &str)] = &[
    ("", ""),
    ("b", "b"),
    ("ch", "t͡ʃ"),
    ("d", "d"),
    ("f", "f"),
    ("ph", "f"),
    ("g", "ɡ"),
    ("h", "h"),
    ("j", "d͡ʒ"),
    ("k", "k"),
    ("c", "k"),
    ("l", "l"),
    ("m", "m"),
    ("n", "n"),
    ("p", "p"),
    ("r", "ɹ"),
    ("s", "s"),
    ("sh", "ʃ"),
    ("t", "t"),
    ("th", "θ"),
    ("v", "v"),
    ("w", "w"),
    ("wh", "w"),
    ("bl", "b l"),
    ("st", "s t"),
    ("tr", "t ɹ"),
    ("gr", "ɡ ɹ"),
    ("pl", "p l"),
];

/// (spelling, phonemes) of syllable nuclei.
const VOWELS: &[(&str, &str)] = &[
    ("a", "æ"),
    ("e", "ɛ"),
    ("i", "ɪ"),
    ("o", "ɒ"),
    ("u", "ʌ"),
    ("ee", "iː"),
    ("ea", "iː"),
    ("oo", "uː"),
    ("ai", "eɪ"),
    ("ou", "aʊ"),
    ("oi", "ɔɪ"),
    ("ar", "ɑː"),
    ("er", "ɝ"),
    ("ir", "ɝ"),
    ("or", "ɔː"),
];

/// (spelling, phonemes) of syllable codas.
const CODAS: &[(&str, &str)] = &[
    ("", ""),
    ("n", "n"),
    ("t", "t"),
    ("st", "s t"),
    ("ck", "k"),
    ("ng", "ŋ"),
    ("nd", "n d"),
    ("m", "m"),
    ("l", "l"),
    ("ss", "s"),
    ("x", "k s"),
    ("sh", "ʃ"),
];

/// One made-up word: (phonemes separated by spaces, spelling).
fn word(rng: &mut StdRng) -> (String, String) {
    let (mut spelling, mut phonemes) = (String::new(), Vec::new());
    for _ in 0..rng.random_range(1..=3) {
        let (os, op) = ONSETS[rng.random_range(0..ONSETS.len())];
        let (vs, vp) = VOWELS[rng.random_range(0..VOWELS.len())];
        let (cs, cp) = CODAS[rng.random_range(0..CODAS.len())];
        // "c" before e/i is soft, as in English spelling.
        let op = if os == "c" && (vs.starts_with('e') || vs.starts_with('i')) {
            "s"
        } else {
            op
        };
        spelling.push_str(os);
        spelling.push_str(vs);
        spelling.push_str(cs);
        phonemes.extend([op, vp, cp].into_iter().filter(|p| !p.is_empty()));
    }
    (phonemes.join(" "), spelling)
}

/// Writes `train.tsv`, `valid.tsv` and `test.tsv` into `dir`: `sizes` distinct words per
/// split (no word in two splits), drawn from `seed`.
pub fn write_quick_corpus(dir: &Path, seed: u64, sizes: [usize; 3]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seen = HashSet::new();
    for (name, n) in ["train.tsv", "valid.tsv", "test.tsv"]
        .into_iter()
        .zip(sizes)
    {
        let mut text = String::new();
        let mut written = 0;
        while written < n {
            let (phonemes, spelling) = word(&mut rng);
            if seen.insert(spelling.clone()) {
                let _ = writeln!(text, "{phonemes}\t{spelling}");
                written += 1;
            }
        }
        artifacts::write_atomic(dir.join(name), text.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Corpus;

    #[test]
    fn quick_corpus_reads_like_the_homework_files_and_is_reproducible() {
        let base = std::env::temp_dir().join(format!("quick-p2g-{}", std::process::id()));
        let (a, b) = (base.join("a"), base.join("b"));
        write_quick_corpus(&a, 1, [300, 30, 30]).unwrap();
        write_quick_corpus(&b, 1, [300, 30, 30]).unwrap();
        for f in ["train.tsv", "valid.tsv", "test.tsv"] {
            assert_eq!(
                std::fs::read(a.join(f)).unwrap(),
                std::fs::read(b.join(f)).unwrap()
            );
        }
        let corpus = Corpus::read(&a).unwrap();
        let (src, tgt) = (corpus.vocabs.src.len(), corpus.vocabs.tgt.len());
        // 4 specials plus the rule tables' symbols.
        assert!(src > 20 && tgt > 20, "{src} {tgt}");
        std::fs::remove_dir_all(base).unwrap();
    }
}

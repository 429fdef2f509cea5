//! Reading the homework's TSV files: `IPA phonemes separated by spaces<TAB>spelling`.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// One example: source phoneme tokens and the target spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// Whitespace-separated IPA tokens (a token may be several code points, e.g. `t͡ʃ`).
    pub src: Vec<String>,
    /// The spelling, as written in the file (scored raw, never UNK-mapped).
    pub tgt: String,
}

impl Example {
    /// The target's tokens: its characters (Unicode scalar values).
    pub fn tgt_chars(&self) -> impl Iterator<Item = String> + '_ {
        self.tgt.chars().map(String::from)
    }
}

/// The most phoneme tokens, and the most spelling characters, a line may hold. The
/// homework's longest word has 39 and 49; the model decodes at most 50 characters. Longer
/// lines are refused: one 1 MB line would make a batch of gigabytes.
pub const MAX_SYMBOLS: usize = 200;

/// Parses TSV text; `name` is used in error messages (`name:line: what is wrong`).
pub fn parse_tsv(bytes: &[u8], name: &str) -> Result<Vec<Example>> {
    let mut out = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_no = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.is_empty() {
            continue;
        }
        let line = std::str::from_utf8(raw).map_err(|e| {
            anyhow::anyhow!(
                "{name}:{line_no}: invalid UTF-8 at byte {}",
                e.valid_up_to()
            )
        })?;
        let Some((src, tgt)) = line.split_once('\t') else {
            bail!("{name}:{line_no}: no TAB between the phonemes and the spelling: {line:?}");
        };
        if tgt.contains('\t') {
            bail!("{name}:{line_no}: more than one TAB: {line:?}");
        }
        let src: Vec<String> = src.split_whitespace().map(String::from).collect();
        if src.is_empty() {
            bail!("{name}:{line_no}: empty phoneme side: {line:?}");
        }
        if tgt.trim().is_empty() {
            bail!("{name}:{line_no}: empty spelling: {line:?}");
        }
        let chars = tgt.chars().count();
        if src.len() > MAX_SYMBOLS || chars > MAX_SYMBOLS {
            bail!(
                "{name}:{line_no}: {} phoneme tokens and {chars} spelling characters; at most {MAX_SYMBOLS} of each are accepted",
                src.len()
            );
        }
        out.push(Example {
            src,
            tgt: tgt.to_string(),
        });
    }
    if out.is_empty() {
        bail!("{name}: no examples");
    }
    Ok(out)
}

/// Reads a TSV file.
pub fn read_tsv(path: impl AsRef<Path>) -> Result<Vec<Example>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse_tsv(&bytes, &path.display().to_string())
}

/// The three splits of the homework data.
#[derive(Debug, Clone)]
pub struct Splits {
    /// `train.tsv` (10,000 lines).
    pub train: Vec<Example>,
    /// `valid.tsv` (1,000 lines).
    pub valid: Vec<Example>,
    /// `test.tsv` (1,000 lines).
    pub test: Vec<Example>,
}

impl Splits {
    /// Reads `dir/{train,valid,test}.tsv`.
    pub fn read(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        Ok(Self {
            train: read_tsv(dir.join("train.tsv"))?,
            valid: read_tsv(dir.join("valid.tsv"))?,
            test: read_tsv(dir.join("test.tsv"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn parses_multi_code_point_tokens_and_keeps_the_spelling_raw() {
        let ex = parse_tsv(
            "t͡ʃ æ p l ə t\tchaplet\nn aɪ iː v\tnaïve\r\n\n".as_bytes(),
            "x.tsv",
        )
        .unwrap();
        assert_eq!(ex.len(), 2);
        assert_eq!(ex[0].src, ["t͡ʃ", "æ", "p", "l", "ə", "t"]);
        assert_eq!(ex[1].tgt, "naïve");
        assert_eq!(ex[1].tgt_chars().count(), 5);
    }

    #[rstest]
    #[case::no_tab(b"a b c\n".to_vec(), "x.tsv:1: no TAB")]
    #[case::two_tabs(b"a\tb\tc\n".to_vec(), "x.tsv:1: more than one TAB")]
    #[case::empty_src(b"a\tb\n \tword\n".to_vec(), "x.tsv:2: empty phoneme side")]
    #[case::empty_tgt(b"a\tb\nb c\t\n".to_vec(), "x.tsv:2: empty spelling")]
    #[case::bad_utf8(b"a\tb\nc\td\n\xff\te\n".to_vec(), "x.tsv:3: invalid UTF-8")]
    #[case::empty_file(b"\n".to_vec(), "x.tsv: no examples")]
    #[case::huge_line([b"a\tb\n".to_vec(), b"x ".repeat(1 << 19), b"\tword\n".to_vec()].concat(), "x.tsv:2: 524288 phoneme tokens and 4 spelling characters")]
    #[case::long_word([b"a\t".to_vec(), vec![b'w'; 201], b"\n".to_vec()].concat(), "x.tsv:1: 1 phoneme tokens and 201 spelling characters; at most 200")]
    fn bad_lines_name_file_and_line(#[case] bytes: Vec<u8>, #[case] expected: &str) {
        let err = parse_tsv(&bytes, "x.tsv").unwrap_err().to_string();
        assert!(err.starts_with(expected), "{err}");
    }
}

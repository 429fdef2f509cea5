//! Vocabularies: four specials, then tokens in first-occurrence order in the training file.

use std::collections::HashMap;

/// Padding id.
pub const PAD: i64 = 0;
/// Start-of-sequence id.
pub const SOS: i64 = 1;
/// End-of-sequence id.
pub const EOS: i64 = 2;
/// Unknown-token id.
pub const UNK: i64 = 3;
const SPECIALS: [&str; 4] = ["PAD", "SOS", "EOS", "UNK"];

/// A token ↔ id map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocab {
    tokens: Vec<String>,
    index: HashMap<String, i64>,
}

impl Vocab {
    /// Builds a vocabulary from token sequences, in order of first occurrence.
    pub fn build<I, S, T>(sequences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let mut v = Self {
            tokens: Vec::new(),
            index: HashMap::new(),
        };
        for s in SPECIALS {
            v.insert(s);
        }
        for seq in sequences {
            for tok in seq {
                v.insert(tok.as_ref());
            }
        }
        v
    }

    fn insert(&mut self, tok: &str) {
        if !self.index.contains_key(tok) {
            self.index.insert(tok.to_string(), self.tokens.len() as i64);
            self.tokens.push(tok.to_string());
        }
    }

    /// Number of entries, specials included.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Never true: the specials are always there.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The id of a token, or [`UNK`].
    pub fn id(&self, tok: &str) -> i64 {
        self.index.get(tok).copied().unwrap_or(UNK)
    }

    /// Every token, in id order.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The token of an id.
    pub fn token(&self, id: i64) -> &str {
        &self.tokens[id as usize]
    }

    /// Ids of a sequence of tokens (unknown ones → UNK).
    pub fn encode<T: AsRef<str>>(&self, toks: impl IntoIterator<Item = T>) -> Vec<i64> {
        toks.into_iter().map(|t| self.id(t.as_ref())).collect()
    }

    /// A generated id sequence as the homework prints it: SOS and EOS dropped, PAD and UNK
    /// kept as the literal text `PAD` / `UNK`, other tokens concatenated.
    pub fn decode(&self, ids: &[i64]) -> String {
        ids.iter()
            .filter(|&&i| i != SOS && i != EOS)
            .map(|&i| self.token(i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_occurrence_order_after_specials() {
        let v = Vocab::build([vec!["b", "a"], vec!["a", "c"]]);
        assert_eq!(v.len(), 7);
        assert_eq!((v.id("b"), v.id("a"), v.id("c")), (4, 5, 6));
        assert_eq!(v.id("zz"), UNK);
        assert_eq!(v.encode(["c", "q"]), vec![6, UNK]);
        assert_eq!(v.decode(&[SOS, 4, UNK, 5, PAD, EOS]), "bUNKaPAD");
    }
}

//! The header of a `.npy` array: `\x93NUMPY`, a version, the header's length, then a Python
//! dict literal such as `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 48), }`.
//!
//! Read strictly, by hand: the files come from outside, and the `npyz` crate's reader
//! multiplies the shape unchecked (a panic in debug builds, a wrapped count in release) and
//! allocates whatever length a v2 header declares. This reader accepts only what an array
//! of plain numbers needs, caps the header at NumPy's own default (`max_header_size`,
//! 10,000 bytes) and leaves the shape's byte count to the caller, checked.

use std::io::Read;

use anyhow::{bail, ensure, Context, Result};

/// What the header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The dtype's descr, e.g. `<f4`.
    pub descr: String,
    /// Column-major data.
    pub fortran_order: bool,
    /// Dimensions.
    pub shape: Vec<u64>,
}

/// NumPy's default `max_header_size`: longer headers are refused unread.
pub const MAX_HEADER: usize = 10_000;

const MAGIC: &[u8] = b"\x93NUMPY";

impl Header {
    /// Reads a header from the start of a `.npy` stream; returns it and its length in bytes.
    pub fn read(r: &mut impl Read) -> Result<(Header, usize)> {
        let mut lead = [0u8; 8];
        r.read_exact(&mut lead)
            .context("shorter than a .npy header")?;
        ensure!(&lead[..6] == MAGIC, "no \\x93NUMPY magic at its start");
        let (len, prefix) = match lead[6] {
            1 => {
                let mut n = [0u8; 2];
                r.read_exact(&mut n).context("shorter than a .npy header")?;
                (u16::from_le_bytes(n) as usize, 10)
            }
            2 | 3 => {
                let mut n = [0u8; 4];
                r.read_exact(&mut n).context("shorter than a .npy header")?;
                (u32::from_le_bytes(n) as usize, 12)
            }
            v => bail!(".npy format version {v} (1, 2 and 3 are read)"),
        };
        ensure!(
            len <= MAX_HEADER,
            "a header of {len} bytes (NumPy itself refuses more than {MAX_HEADER})"
        );
        let mut text = vec![0u8; len];
        r.read_exact(&mut text).context("the header is cut short")?;
        let text = std::str::from_utf8(&text).context("the header is not UTF-8")?;
        Ok((Header::parse(text)?, prefix + len))
    }

    /// Parses the dict literal.
    pub fn parse(text: &str) -> Result<Header> {
        let mut p = Parser {
            s: text.trim_end(),
            at: 0,
        };
        let (mut descr, mut fortran, mut shape) = (None, None, None);
        p.expect('{')?;
        while !p.eat('}') {
            let key = p.string()?;
            p.expect(':')?;
            match key.as_str() {
                "descr" if descr.is_none() => {
                    if p.peek() != Some('\'') && p.peek() != Some('"') {
                        bail!("dtype is not a plain number (a structured dtype?)");
                    }
                    descr = Some(p.string()?)
                }
                "fortran_order" if fortran.is_none() => fortran = Some(p.boolean()?),
                "shape" if shape.is_none() => shape = Some(p.tuple()?),
                other => bail!("unexpected or repeated key {} in the header", brief(other)),
            }
            if !p.eat(',') {
                p.expect('}')?;
                break;
            }
        }
        ensure!(p.rest().is_empty(), "text after the header's dict");
        Ok(Header {
            descr: descr.context("the header has no 'descr'")?,
            fortran_order: fortran.context("the header has no 'fortran_order'")?,
            shape: shape.context("the header has no 'shape'")?,
        })
    }

    /// The header as NumPy writes it (version 1.0), padded so that the data starts at a
    /// multiple of 64 bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let dims: Vec<String> = self.shape.iter().map(u64::to_string).collect();
        let shape = match dims.len() {
            1 => format!("({},)", dims[0]),
            _ => format!("({})", dims.join(", ")),
        };
        let order = if self.fortran_order { "True" } else { "False" };
        let mut dict = format!(
            "{{'descr': '{}', 'fortran_order': {order}, 'shape': {shape}, }}",
            self.descr
        );
        let total = (10 + dict.len() + 1).div_ceil(64) * 64;
        while 10 + dict.len() + 1 < total {
            dict.push(' ');
        }
        dict.push('\n');
        let mut out = MAGIC.to_vec();
        out.extend([1, 0]);
        out.extend((dict.len() as u16).to_le_bytes());
        out.extend(dict.as_bytes());
        out
    }
}

/// At most 40 characters of `text`, quoted with escapes (a header may hold newlines and
/// control characters), for error messages.
fn brief(text: &str) -> String {
    format!("{:?}", text.chars().take(40).collect::<String>())
}

struct Parser<'a> {
    s: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.at..]
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start().len();
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_space();
        self.rest().chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.at += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<()> {
        ensure!(
            self.eat(c),
            "header: expected '{c}' at byte {}, found {}",
            self.at,
            brief(self.rest())
        );
        Ok(())
    }

    fn string(&mut self) -> Result<String> {
        let quote = match self.peek() {
            Some(q @ ('\'' | '"')) => q,
            _ => bail!("header: expected a quoted string at byte {}", self.at),
        };
        self.at += 1;
        let end = self
            .rest()
            .find(quote)
            .with_context(|| format!("header: a string at byte {} never ends", self.at))?;
        let s = self.rest()[..end].to_string();
        self.at += end + 1;
        Ok(s)
    }

    fn boolean(&mut self) -> Result<bool> {
        self.skip_space();
        for (word, value) in [("True", true), ("False", false)] {
            if self.rest().starts_with(word) {
                self.at += word.len();
                return Ok(value);
            }
        }
        bail!("header: 'fortran_order' is not True or False")
    }

    fn tuple(&mut self) -> Result<Vec<u64>> {
        self.expect('(')?;
        let mut dims = Vec::new();
        while !self.eat(')') {
            self.skip_space();
            let digits = self.rest().len()
                - self
                    .rest()
                    .trim_start_matches(|c: char| c.is_ascii_digit())
                    .len();
            ensure!(
                digits > 0,
                "header: the shape holds {}, not a size",
                brief(self.rest())
            );
            let n = self.rest()[..digits].parse::<u64>().with_context(|| {
                format!(
                    "header: the size {} does not fit 64 bits",
                    brief(&self.rest()[..digits])
                )
            })?;
            self.at += digits;
            self.eat('L'); // Python 2's long integers
            dims.push(n);
            ensure!(
                dims.len() <= 32,
                "header: a shape of more than 32 dimensions"
            );
            if !self.eat(',') {
                self.expect(')')?;
                break;
            }
        }
        Ok(dims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_numpy_writes_and_writes_what_numpy_reads() {
        for (text, shape) in [
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 48), }",
                vec![3, 48],
            ),
            (
                "{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }",
                vec![5],
            ),
            (
                "{'shape': (), 'fortran_order': True, 'descr': '<i8'}",
                vec![],
            ),
            (
                "{'descr':'<f8','fortran_order':False,'shape':(2L, 3L)}",
                vec![2, 3],
            ),
        ] {
            let h = Header::parse(text).unwrap();
            assert_eq!(h.shape, shape, "{text}");
            let bytes = h.to_bytes();
            assert_eq!(bytes.len() % 64, 0);
            let (back, len) = Header::read(&mut bytes.as_slice()).unwrap();
            assert_eq!((back, len), (h, bytes.len()));
        }
        // NumPy's own bytes for np.zeros((2, 3), np.float32).
        let numpy = b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }                                                          \n";
        assert_eq!(
            Header::read(&mut numpy.as_slice()).unwrap().0.to_bytes(),
            numpy
        );
    }

    #[test]
    fn refuses_what_no_array_of_numbers_has() {
        for (text, expected) in [
            (
                "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}",
                "structured",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",
                "not a size",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}",
                "does not fit 64 bits",
            ),
            ("{'descr': '<f4', 'fortran_order': False}", "no 'shape'"),
            ("{'descr': '<f4', 'descr': '<f4'", "repeated key \"descr\""),
            (
                "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}",
                "not True or False",
            ),
            ("{'descr': '<f4", "never ends"),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': ((((1,),),),)}",
                "not a size",
            ),
        ] {
            let err = format!("{:#}", Header::parse(text).unwrap_err());
            assert!(err.contains(expected), "{text}: {err}");
        }
        let mut long = b"\x93NUMPY\x02\x00".to_vec();
        long.extend(u32::MAX.to_le_bytes());
        let err = Header::read(&mut long.as_slice()).unwrap_err().to_string();
        assert!(err.contains("a header of 4294967295 bytes"), "{err}");
    }
}

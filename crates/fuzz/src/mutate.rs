//! Mutations of a real file, as a fuzzer makes them: bit flips, byte changes, truncations,
//! chunks deleted or repeated, integer fields set to the values that break size arithmetic
//! (0, −1, 2^31, 2^62, ...), numbers in text set to the same, and nesting thousands deep.
//! Inside a zip archive (`.pt`, `.npz`), an entry is mutated and the archive written again
//! with correct checksums, so that the reader gets past the container to what it holds.

use std::io::{Read, Write};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The integers that break size arithmetic, as little-endian values of any width.
const INTERESTING: [u64; 12] = [
    0,
    1,
    0x7f,
    0xff,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 62,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
];

/// The same as text, for headers, JSON and TSV.
const INTERESTING_TEXT: [&str; 9] = [
    "0",
    "-1",
    "1",
    "2147483648",
    "4294967296",
    "4611686018427387904",
    "18446744073709551616",
    "99999999999999999999999999999",
    "1e308",
];

/// A source of mutants, reproducible from its seed.
pub struct Mutator {
    rng: StdRng,
}

impl Mutator {
    /// A mutator drawing from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// One to three mutations of `seed`; for a zip archive, half the time inside one of its
    /// entries. Returns the mutant and what was done, for the report.
    pub fn mutant(&mut self, seed: &[u8]) -> (Vec<u8>, String) {
        if seed.starts_with(b"PK\x03\x04") {
            match self.rng.random_range(0..4) {
                0 | 1 => {
                    if let Some(m) = self.inside_zip(seed) {
                        return m;
                    }
                }
                2 => {
                    if let Some(m) = self.zip_field(seed) {
                        return m;
                    }
                }
                _ => {}
            }
        }
        self.mutate(seed, false)
    }

    /// One to three generic mutations; for a pickle, half of them pickle-aware.
    fn mutate(&mut self, seed: &[u8], pickle: bool) -> (Vec<u8>, String) {
        let mut bytes = seed.to_vec();
        let mut done = Vec::new();
        for _ in 0..self.rng.random_range(1..=3) {
            done.push(if pickle && self.rng.random_bool(0.5) {
                self.pickle(&mut bytes)
            } else {
                self.once(&mut bytes)
            });
        }
        (bytes, done.join(", "))
    }

    /// Mutations a fuzzer with a pickle dictionary makes: an integer argument widened to
    /// eight bytes of an awkward value (sizes, strides, offsets), a memo copied into itself,
    /// values nested deep, a global swapped for one that runs code.
    fn pickle(&mut self, b: &mut Vec<u8>) -> String {
        // After the PROTO opcode: what is spliced there runs first.
        let start = if b.starts_with(&[0x80]) {
            2.min(b.len())
        } else {
            0
        };
        match self.rng.random_range(0..5) {
            0 | 1 => {
                let ks: Vec<usize> = (0..b.len().saturating_sub(1))
                    .filter(|&i| b[i] == b'K')
                    .collect();
                if ks.is_empty() {
                    return self.once(b);
                }
                let at = ks[self.rng.random_range(0..ks.len())];
                let values = [
                    -1i64,
                    i64::MIN,
                    i64::MAX,
                    1 << 62,
                    1 << 32,
                    1 << 31,
                    -(1 << 31),
                ];
                let v = values[self.rng.random_range(0..values.len())];
                let mut long = vec![0x8a, 8];
                long.extend(v.to_le_bytes());
                b.splice(at..at + 2, long);
                format!("integer at {at} widened to {v}")
            }
            2 => {
                let n = self.rng.random_range(20..60);
                let mut snippet = b"]q\xf0".to_vec();
                for _ in 0..n {
                    snippet.extend(b"(h\xf0h\xf0h\xf0eq\xf0");
                }
                b.splice(start..start, snippet);
                format!("a memo copied into itself {n} times, at {start}")
            }
            3 => {
                let n = self.rng.random_range(1_000..100_000);
                let mut snippet = vec![b']'; n];
                snippet.extend(std::iter::repeat_n(b'a', n - 1));
                b.splice(start..start, snippet);
                format!("lists nested {n} deep, at {start}")
            }
            _ => {
                let evil = b"cos\nsystem\nX\x04\x00\x00\x00true\x85R".to_vec();
                b.splice(start..start, evil);
                format!("os.system called at {start}")
            }
        }
    }

    /// A size, length or offset field of a zip header set to an awkward value, or a
    /// central-directory size moved into a zip64 field of 2^62 or so.
    fn zip_field(&mut self, seed: &[u8]) -> Option<(Vec<u8>, String)> {
        let mut b = seed.to_vec();
        let records: Vec<(usize, bool)> = b
            .windows(4)
            .enumerate()
            .filter_map(|(i, w)| match w {
                b"PK\x01\x02" => Some((i, true)),
                b"PK\x03\x04" => Some((i, false)),
                _ => None,
            })
            .collect();
        let &(at, central) = records.get(self.rng.random_range(0..records.len().max(1)))?;
        let v = INTERESTING[self.rng.random_range(0..INTERESTING.len())];
        if central && self.rng.random_bool(0.3) && at + 46 <= b.len() {
            let name_len = u16::from_le_bytes([b[at + 28], b[at + 29]]) as usize;
            let extra_at = at + 46 + name_len;
            if extra_at > b.len() {
                return None;
            }
            b[at + 24..at + 28].copy_from_slice(&u32::MAX.to_le_bytes());
            let old_extra = u16::from_le_bytes([b[at + 30], b[at + 31]]);
            b[at + 30..at + 32].copy_from_slice(&(old_extra + 12).to_le_bytes());
            let mut extra = vec![1, 0, 8, 0];
            let big =
                [1u64 << 62, u64::MAX, 1 << 40, 0x8000_0000_0000_0000][self.rng.random_range(0..4)];
            extra.extend(big.to_le_bytes());
            b.splice(extra_at..extra_at, extra);
            if let Some(eocd) = b.windows(4).rposition(|w| w == b"PK\x05\x06") {
                if eocd + 16 <= b.len() {
                    let size = u32::from_le_bytes(b[eocd + 12..eocd + 16].try_into().ok()?) + 12;
                    b[eocd + 12..eocd + 16].copy_from_slice(&size.to_le_bytes());
                }
            }
            return Some((b, format!("central record at {at}: zip64 size {big:#x}")));
        }
        let fields: &[(usize, usize)] = if central {
            &[(20, 4), (24, 4), (28, 2), (30, 2), (42, 4), (10, 2)]
        } else {
            &[(18, 4), (22, 4), (26, 2), (28, 2), (8, 2)]
        };
        let (off, width) = fields[self.rng.random_range(0..fields.len())];
        let end = (at + off + width).min(b.len());
        let start = (at + off).min(end);
        b[start..end].copy_from_slice(&v.to_le_bytes()[..end - start]);
        Some((
            b,
            format!(
                "{} record at {at}: field +{off} set to {v:#x}",
                if central { "central" } else { "local" }
            ),
        ))
    }

    fn once(&mut self, b: &mut Vec<u8>) -> String {
        if b.is_empty() {
            b.push(self.rng.random());
            return "a byte into an empty file".into();
        }
        let at = self.rng.random_range(0..b.len());
        match self.rng.random_range(0..9) {
            0 => {
                let bit = self.rng.random_range(0..8);
                b[at] ^= 1 << bit;
                format!("bit {bit} of byte {at} flipped")
            }
            1 => {
                let v: u8 = self.rng.random();
                b[at] = v;
                format!("byte {at} set to {v:#04x}")
            }
            2 => {
                b.truncate(at);
                format!("cut at byte {at}")
            }
            3 => {
                let n = self.rng.random_range(1..=64.min(b.len() - at));
                b.drain(at..at + n);
                format!("{n} bytes at {at} deleted")
            }
            4 => {
                let n = self.rng.random_range(1..=256.min(b.len() - at));
                let chunk = b[at..at + n].to_vec();
                let times = self.rng.random_range(1..=64);
                for _ in 0..times {
                    b.splice(at..at, chunk.iter().copied());
                }
                format!("{n} bytes at {at} repeated {times} times")
            }
            5 | 6 => {
                let width = [1, 2, 4, 8][self.rng.random_range(0..4)];
                let v = INTERESTING[self.rng.random_range(0..INTERESTING.len())];
                let end = (at + width).min(b.len());
                let le = v.to_le_bytes();
                b[at..end].copy_from_slice(&le[..end - at]);
                format!("{width}-byte field at {at} set to {v:#x}")
            }
            7 => self.text_number(b),
            _ => {
                // Nesting thousands deep, in whatever grammar the byte at `at` opens.
                let open = [b'[', b'(', b'{', b']', b'(', 0x5d][self.rng.random_range(0..6)];
                let n = self.rng.random_range(100..20_000);
                b.splice(at..at, std::iter::repeat_n(open, n));
                format!("{n} × {:?} at {at}", open as char)
            }
        }
    }

    /// Replaces a run of digits with an interesting number (falls back to a bit flip).
    fn text_number(&mut self, b: &mut Vec<u8>) -> String {
        let runs: Vec<(usize, usize)> = {
            let mut runs = Vec::new();
            let mut i = 0;
            while i < b.len() {
                if b[i].is_ascii_digit() {
                    let start = i;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                    runs.push((start, i));
                }
                i += 1;
            }
            runs
        };
        if runs.is_empty() {
            let at = self.rng.random_range(0..b.len());
            b[at] ^= 1;
            return format!("bit 0 of byte {at} flipped");
        }
        let (start, end) = runs[self.rng.random_range(0..runs.len())];
        let v = INTERESTING_TEXT[self.rng.random_range(0..INTERESTING_TEXT.len())];
        b.splice(start..end, v.bytes());
        format!("number at {start} set to {v}")
    }

    /// An entry of the archive mutated, the archive written again (stored, checksums right).
    fn inside_zip(&mut self, seed: &[u8]) -> Option<(Vec<u8>, String)> {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(seed)).ok()?;
        let mut entries = Vec::new();
        for i in 0..zip.len() {
            let mut f = zip.by_index(i).ok()?;
            let mut data = Vec::new();
            f.read_to_end(&mut data).ok()?;
            entries.push((f.name().to_string(), data));
        }
        if entries.is_empty() {
            return None;
        }
        let which = self.rng.random_range(0..entries.len());
        let (name, data) = &entries[which];
        let (mutated, how) = self.mutate(data, name.ends_with(".pkl"));
        let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let stored =
            zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for (i, (n, d)) in entries.iter().enumerate() {
            out.start_file(n, stored).ok()?;
            out.write_all(if i == which { &mutated } else { d }).ok()?;
        }
        let bytes = out.finish().ok()?.into_inner();
        Some((bytes, format!("entry {name}: {how}")))
    }

    /// A random choice among `n`.
    pub fn pick(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutants_differ_and_are_reproducible_from_the_seed() {
        let seed = b"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 48), }".to_vec();
        let run = |from: u64| {
            let mut m = Mutator::new(from);
            (0..50).map(|_| m.mutant(&seed)).collect::<Vec<_>>()
        };
        let a = run(9);
        assert_eq!(a, run(9));
        assert_ne!(a, run(10));
        assert!(a.iter().filter(|(m, _)| *m != seed).count() >= 45);
        assert!(a.iter().any(|(_, how)| how.contains("number at")));
    }
}

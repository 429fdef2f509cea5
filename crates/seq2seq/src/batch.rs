//! Examples encoded as ids, and padded batches of them.

use tch::{Device, Kind, Tensor};

use crate::data::Example;
use crate::vocab::{Vocab, EOS, PAD, SOS};

/// Both vocabularies of a task, built from the training split.
#[derive(Debug, Clone)]
pub struct Vocabs {
    /// Phoneme tokens (107 entries on the homework data).
    pub src: Vocab,
    /// Spelling characters (93 entries on the homework data).
    pub tgt: Vocab,
}

impl Vocabs {
    /// Builds both vocabularies from training examples.
    pub fn from_train(train: &[Example]) -> Self {
        Self {
            src: Vocab::build(train.iter().map(|e| e.src.iter())),
            tgt: Vocab::build(train.iter().map(|e| e.tgt_chars())),
        }
    }
}

/// One example as ids: source tokens, and `SOS target EOS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Source ids (no specials).
    pub src: Vec<i64>,
    /// Target ids framed by SOS and EOS.
    pub tgt: Vec<i64>,
}

/// Encodes examples with the vocabularies (unknown symbols → UNK).
pub fn encode(examples: &[Example], vocabs: &Vocabs) -> Vec<Encoded> {
    examples
        .iter()
        .map(|e| {
            let mut tgt = vec![SOS];
            tgt.extend(vocabs.tgt.encode(e.tgt_chars()));
            tgt.push(EOS);
            Encoded {
                src: vocabs.src.encode(&e.src),
                tgt,
            }
        })
        .collect()
}

/// A padded batch.
#[derive(Debug)]
pub struct Batch {
    /// Source ids, (B, max source length), padded with PAD.
    pub src: Tensor,
    /// Source lengths, (B), int64 on the CPU (packing wants them there).
    pub src_lengths: Tensor,
    /// Target ids with SOS/EOS, (B, max target length + 2), padded with PAD.
    pub tgt: Tensor,
}

fn pad(rows: &[&[i64]], device: Device) -> Tensor {
    let width = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut flat = vec![PAD; rows.len() * width];
    for (i, r) in rows.iter().enumerate() {
        flat[i * width..i * width + r.len()].copy_from_slice(r);
    }
    Tensor::from_slice(&flat)
        .view([rows.len() as i64, width as i64])
        .to_device(device)
}

impl Batch {
    /// Pads the given examples into one batch on `device`.
    pub fn new(items: &[&Encoded], device: Device) -> Self {
        let src: Vec<&[i64]> = items.iter().map(|e| e.src.as_slice()).collect();
        let tgt: Vec<&[i64]> = items.iter().map(|e| e.tgt.as_slice()).collect();
        let lengths: Vec<i64> = src.iter().map(|s| s.len() as i64).collect();
        Self {
            src: pad(&src, device),
            src_lengths: Tensor::from_slice(&lengths),
            tgt: pad(&tgt, device),
        }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.src.size()[0] as usize
    }

    /// True for a batch of no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `src != PAD`, (B, max source length): where attention may look.
    pub fn src_mask(&self) -> Tensor {
        source_mask(&self.src_lengths, self.src.device())
    }
}

/// `(B, max length)` boolean mask, true at positions `< length`.
pub fn source_mask(lengths: &Tensor, device: Device) -> Tensor {
    let max = lengths.max().int64_value(&[]);
    Tensor::arange(max, (Kind::Int64, device))
        .unsqueeze(0)
        .lt_tensor(&lengths.to_device(device).unsqueeze(1))
}

/// Splits `order` (example indices) into consecutive batches of `size`.
pub fn batches<'a>(
    data: &'a [Encoded],
    order: &'a [i64],
    size: usize,
    device: Device,
) -> impl ExactSizeIterator<Item = Batch> + 'a {
    order.chunks(size).map(move |chunk| {
        let items: Vec<&Encoded> = chunk.iter().map(|&i| &data[i as usize]).collect();
        Batch::new(&items, device)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_frames_and_masks() {
        let ex = crate::data::parse_tsv("a b c\txy\nb\tz\n".as_bytes(), "t").unwrap();
        let vocabs = Vocabs::from_train(&ex);
        let enc = encode(&ex, &vocabs);
        assert_eq!(enc[0].tgt, vec![SOS, 4, 5, EOS]);
        let b = Batch::new(&[&enc[0], &enc[1]], Device::Cpu);
        assert_eq!(b.src.size(), [2, 3]);
        assert_eq!(
            Vec::<i64>::try_from(b.src.get(1)).unwrap(),
            vec![5, PAD, PAD]
        );
        assert_eq!(Vec::<i64>::try_from(&b.src_lengths).unwrap(), vec![3, 1]);
        assert_eq!(
            Vec::<i64>::try_from(b.tgt.get(1)).unwrap(),
            vec![SOS, 6, EOS, PAD]
        );
        let mask = Vec::<bool>::try_from(b.src_mask().view([-1])).unwrap();
        assert_eq!(mask, vec![true, true, true, true, false, false]);
    }
}

//! The homework's `generate(model, data_iter, max_len, p)` and `nucleus_sampling(logits,
//! p)` (its `hw2-q3.py`): each word decoded alone (a batch of one) with the readable model,
//! greedily or by nucleus sampling, op for op. What `--exact` decodes with; the fast
//! backend's twin is [`crate::decode`], which decodes whole batches.

use tch::{Device, Tensor};

use crate::batch::{Batch, Encoded};
use crate::model::Seq2Seq;
use crate::vocab::{Vocab, EOS, SOS};

/// The homework's `nucleus_sampling(logits, p)`: softmax, sort, cumulative sum, the shifted
/// `<= p` mask, compaction, renormalisation, `multinomial`. Returns the token id (1).
pub fn nucleus_sampling(logits: &Tensor, p: f64) -> Tensor {
    let probabilities = logits.softmax(-1, logits.kind());
    let (sorted_probs, sorted_indices) = probabilities.sort(-1, true);
    let cumulative_probs = sorted_probs.cumsum(-1, sorted_probs.kind());
    let mask = cumulative_probs.le(p);
    let n = mask.size()[0];
    // mask[1:] = mask[:-1].clone(); mask[0] = True
    let shifted = mask.narrow(0, 0, n - 1).copy();
    mask.narrow(0, 1, n - 1).copy_(&shifted);
    let _ = mask.get(0).fill_(1);
    let filtered_probs = sorted_probs.masked_select(&mask);
    let filtered_indices = sorted_indices.masked_select(&mask);
    let filtered_probs = &filtered_probs / filtered_probs.sum(filtered_probs.kind());
    let next = filtered_probs.multinomial(1, false);
    filtered_indices.index_select(0, &next)
}

/// The homework's `generate`: each example alone, greedy (`p` = None) or nucleus sampling,
/// up to `max_len` tokens. Returns the spellings as the homework prints them. (The one
/// draw its DataLoader makes is the caller's: see [`crate::kernels::Kernels::predict`].)
pub fn generate(
    net: &Seq2Seq,
    examples: &[Encoded],
    vocab: &Vocab,
    p: Option<f64>,
    max_len: usize,
    device: Device,
) -> Vec<String> {
    tch::no_grad(|| {
        examples
            .iter()
            .map(|e| {
                let batch = Batch::new(&[e], device);
                let (src, src_lengths) = (&batch.src, &batch.src_lengths);
                let (encoder_outputs, mut dec_state) = net.encoder.forward(src, src_lengths, false);
                let mut prev = Tensor::from_slice(&[SOS]).view([1, 1]).to_device(device);
                let mut ids = vec![SOS];
                for _ in 0..max_len {
                    let (output, state) =
                        net.decoder
                            .forward(&prev, dec_state, &encoder_outputs, src_lengths, false);
                    dec_state = state;
                    let logits = net.generator(&output.view([-1]));
                    let next = match p {
                        None => logits.argmax(-1, true),
                        Some(p) => nucleus_sampling(&logits, p),
                    };
                    let id = next.int64_value(&[0]);
                    ids.push(id);
                    prev = next.view([1, 1]);
                    if id == EOS {
                        break;
                    }
                }
                vocab.decode(&ids)
            })
            .collect()
    })
}

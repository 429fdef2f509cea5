//! What a trained attention head attends to, read from the readable model: the map of one
//! word's greedy spelling over its phonemes, and, over a split, the effective number of
//! source positions each decoder step draws on — `exp` of the attention's entropy, the
//! measure Q1 uses for metastable states: 1 when one pattern is retrieved, the number of
//! positions when all are averaged.

use serde::{Deserialize, Serialize};
pub use summaries::q3::EffectivePositions;
use tch::{Device, Kind, Tensor};

use crate::batch::{batches, Batch, Encoded, Vocabs};
use crate::model::Seq2Seq;
use crate::vocab::{EOS, SOS};

/// One word's attention while the model spells it greedily.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttentionMap {
    /// The source phonemes (columns).
    pub phonemes: Vec<String>,
    /// The spelled graphemes, EOS included when produced (rows).
    pub graphemes: Vec<String>,
    /// Row by row, the weights over the phonemes (each row sums to 1).
    pub weights: Vec<Vec<f64>>,
}

/// Spells `example` greedily (up to `max_len` tokens) with the readable decoder, one step at
/// a time, keeping each step's attention. None when the model has no attention.
pub fn greedy_map(
    net: &Seq2Seq,
    example: &Encoded,
    vocabs: &Vocabs,
    max_len: usize,
    device: Device,
) -> Option<AttentionMap> {
    net.decoder.attn.as_ref()?;
    tch::no_grad(|| {
        let batch = Batch::new(&[example], device);
        let (src, lengths) = (&batch.src, &batch.src_lengths);
        let (encoder_outputs, mut state) = net.encoder.forward(src, lengths, false);
        let mut prev = Tensor::from_slice(&[SOS]).view([1, 1]).to_device(device);
        let (mut graphemes, mut weights) = (Vec::new(), Vec::new());
        for _ in 0..max_len {
            let (output, next_state, alignment) =
                net.decoder
                    .forward_with_alignments(&prev, state, &encoder_outputs, lengths, false);
            state = next_state;
            let alignment = alignment.expect("an attending decoder");
            weights.push(
                Vec::<f64>::try_from(alignment.view([-1]).to_kind(Kind::Double))
                    .expect("f64 weights"),
            );
            let next = net.generator(&output.view([-1])).argmax(-1, true);
            let id = next.int64_value(&[0]);
            graphemes.push(vocabs.tgt.token(id).to_string());
            prev = next.view([1, 1]);
            if id == EOS {
                break;
            }
        }
        Some(AttentionMap {
            phonemes: example
                .src
                .iter()
                .map(|&id| vocabs.src.token(id).to_string())
                .collect(),
            graphemes,
            weights,
        })
    })
}

/// The mean effective number of attended source positions, `exp(−Σ α log α)`, at each
/// decoder step of the gold spellings (teacher forcing, dropout off), over the words long
/// enough to have that step; and over all steps of all words. None without attention.
pub fn effective_positions(
    net: &Seq2Seq,
    examples: &[Encoded],
    batch_size: usize,
    device: Device,
) -> Option<EffectivePositions> {
    net.decoder.attn.as_ref()?;
    let order: Vec<i64> = (0..examples.len() as i64).collect();
    let (mut sums, mut counts) = (Vec::<f64>::new(), Vec::<f64>::new());
    tch::no_grad(|| {
        for batch in batches(examples, &order, batch_size, device) {
            let (encoder_outputs, state) =
                net.encoder.forward(&batch.src, &batch.src_lengths, false);
            let t = batch.tgt.size()[1];
            let input = batch.tgt.narrow(1, 0, t - 1);
            let (_, _, alignment) = net.decoder.forward_with_alignments(
                &input,
                state,
                &encoder_outputs,
                &batch.src_lengths,
                false,
            );
            let alignment = alignment
                .expect("an attending decoder")
                .to_kind(Kind::Double);
            // 0·log 0 = 0 at padded sources.
            let plogp = &alignment * alignment.clamp_min(1e-300).log();
            let effective = (-plogp.sum_dim_intlist(-1, false, Kind::Double)).exp();
            // Steps whose input is a real token (SOS or a gold letter), i.e. before EOS.
            let real = batch.tgt.narrow(1, 1, t - 1).ne(crate::vocab::PAD);
            let real = real.to_kind(Kind::Double);
            let step_sums =
                Vec::<f64>::try_from((&effective * &real).sum_dim_intlist(0, false, Kind::Double))
                    .expect("f64");
            let step_counts =
                Vec::<f64>::try_from(real.sum_dim_intlist(0, false, Kind::Double)).expect("f64");
            if sums.len() < step_sums.len() {
                sums.resize(step_sums.len(), 0.0);
                counts.resize(step_sums.len(), 0.0);
            }
            for (i, (s, c)) in step_sums.iter().zip(&step_counts).enumerate() {
                sums[i] += s;
                counts[i] += c;
            }
        }
    });
    let total: f64 = sums.iter().sum::<f64>() / counts.iter().sum::<f64>().max(1.0);
    Some(EffectivePositions {
        per_step: sums
            .iter()
            .zip(&counts)
            .take_while(|(_, &c)| c > 0.0)
            .map(|(s, c)| s / c)
            .collect(),
        words_per_step: counts.iter().map(|&c| c as usize).collect(),
        mean: total,
    })
}

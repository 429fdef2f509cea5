//! Batched decoding: greedy, nucleus (top-p) sampling and beam search.
//!
//! Every strategy decodes a whole batch of source sequences at once; rows that have produced
//! EOS leave the batch (greedy, nucleus) or stop growing (beam), and the loop ends when all
//! rows are finished or after `max_len` steps.

use serde::Serialize;
use tch::{Kind, Tensor};

use crate::batch::Batch;
use crate::fast::decoder::step;
use crate::fast::loss::{encode, generate};
use crate::model::Seq2Seq;
use crate::vocab::{EOS, PAD, SOS};

/// Refuses a beam wider than the target vocabulary (of `vocab` symbols, specials
/// included): its first step has no more hypotheses than symbols, and a width of 2^64
/// would allocate without end.
pub fn check_beam_width(width: usize, vocab: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=vocab).contains(&width),
        "a beam of {width} is wider than the target vocabulary's {vocab} symbols; choose from 1 to {vocab}"
    );
    Ok(())
}

/// How to choose each next token.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Strategy {
    /// The most likely token.
    Greedy,
    /// Sample from the smallest set of most likely tokens whose mass is ≥ p.
    Nucleus {
        /// The mass threshold.
        p: f64,
    },
    /// Beam search of the given width (log-probability, no length penalty).
    Beam {
        /// Number of hypotheses kept per example.
        width: usize,
    },
}

/// The kept-and-renormalised distribution of nucleus sampling for probabilities `probs`
/// (…, V), with the homework's cut: tokens sorted by probability are kept while the
/// cumulative mass *before* them is `<= p` (its `mask[1:] = (cumsum <= p)[:-1]`), so the
/// most likely token always stays and the one that crosses p too — ties at p included.
pub fn nucleus_filter(probs: &Tensor, p: f64) -> Tensor {
    let (sorted, order) = probs.sort(-1, true);
    let cum = sorted.cumsum(-1, sorted.kind());
    let v = cum.size()[cum.dim() - 1];
    let within = cum.le(p);
    let keep = Tensor::cat(
        &[
            within.narrow(-1, 0, 1).ones_like(),
            within.narrow(-1, 0, v - 1),
        ],
        -1,
    );
    let kept = sorted.where_self(&keep, &sorted.zeros_like());
    let kept = &kept / kept.sum_dim_intlist(-1, true, kept.kind());
    kept.zeros_like().scatter(-1, &order, &kept)
}

/// Decodes a batch; returns per example the generated ids (EOS included when produced; no
/// SOS, no padding).
pub fn decode(model: &Seq2Seq, batch: &Batch, strategy: Strategy, max_len: usize) -> Vec<Vec<i64>> {
    tch::no_grad(|| match strategy {
        Strategy::Greedy => step_decode(model, batch, max_len, |logits| logits.argmax(-1, false)),
        Strategy::Nucleus { p } => step_decode(model, batch, max_len, |logits| {
            let probs = logits.softmax(-1, Kind::Float);
            nucleus_filter(&probs, p)
                .multinomial(1, false)
                .squeeze_dim(-1)
        }),
        Strategy::Beam { width } => beam(model, batch, width.max(1), max_len),
    })
}

/// Greedy or sampled decoding. Rows leave the batch once they produce EOS, so later steps
/// only compute the words still being spelled (most words are short; a few run long).
fn step_decode(
    model: &Seq2Seq,
    batch: &Batch,
    max_len: usize,
    choose: impl Fn(&Tensor) -> Tensor,
) -> Vec<Vec<i64>> {
    let device = batch.src.device();
    let b = batch.len();
    let (mut memory, (mut h, mut c), _) = encode(model, &batch.src, &batch.src_lengths, false);
    let mut prev = Tensor::full([b as i64, 1], SOS, (Kind::Int64, device));
    // Batch rows still decoding, in order; `out[r]` collects row r's tokens.
    let mut active: Vec<i64> = (0..b as i64).collect();
    let mut out: Vec<Vec<i64>> = vec![Vec::new(); b];
    for _ in 0..max_len {
        let (dec, (h2, c2)) = step(&model.decoder, &prev, (&h, &c), &memory, false);
        let next = choose(&generate(model, &dec.squeeze_dim(1)));
        let ids = Vec::<i64>::try_from(next.to_device(tch::Device::Cpu)).expect("int64 ids");
        let mut keep = Vec::with_capacity(active.len());
        for (k, (&row, &id)) in active.iter().zip(&ids).enumerate() {
            out[row as usize].push(id);
            if id != EOS {
                keep.push(k as i64);
            }
        }
        if keep.is_empty() {
            break;
        }
        if keep.len() == active.len() {
            (h, c) = (h2, c2);
            prev = next.unsqueeze(1);
        } else {
            let idx = Tensor::from_slice(&keep).to_device(device);
            memory = memory.select(&idx);
            (h, c) = (h2.index_select(1, &idx), c2.index_select(1, &idx));
            prev = next.index_select(0, &idx).unsqueeze(1);
            active = keep.iter().map(|&k| active[k as usize]).collect();
        }
    }
    out
}

/// Batched beam search: B·K decoder rows, bookkeeping of hypotheses on the host.
fn beam(model: &Seq2Seq, batch: &Batch, k: usize, max_len: usize) -> Vec<Vec<i64>> {
    let device = batch.src.device();
    let b = batch.len();
    let (memory, (h, c), _) = encode(model, &batch.src, &batch.src_lengths, false);
    // Repeat every example K times: row r = example r / K, beam r % K.
    let rep = Tensor::arange(b as i64, (Kind::Int64, device))
        .repeat_interleave_self_int(k as i64, 0, None);
    let memory = memory.select(&rep);
    let (mut h, mut c) = (h.index_select(1, &rep), c.index_select(1, &rep));
    // Only beam 0 is live at the start, so the first step does not pick K copies of one token.
    let mut scores: Vec<f64> = (0..b * k)
        .map(|r| if r % k == 0 { 0.0 } else { f64::NEG_INFINITY })
        .collect();
    let mut hyps: Vec<Vec<i64>> = vec![Vec::new(); b * k];
    let mut finished: Vec<Vec<(f64, Vec<i64>)>> = vec![Vec::new(); b];
    let mut done = vec![false; b];
    let mut prev = Tensor::full([(b * k) as i64, 1], SOS, (Kind::Int64, device));
    let v = model.config.tgt_vocab as usize;
    for _ in 0..max_len {
        let (out, (h2, c2)) = step(&model.decoder, &prev, (&h, &c), &memory, false);
        let logp = generate(model, &out.squeeze_dim(1)).log_softmax(-1, Kind::Float);
        let total = logp
            + Tensor::from_slice(&scores)
                .to_kind(Kind::Float)
                .to_device(device)
                .unsqueeze(1);
        // Best 2K continuations per example: enough to refill K beams after some end in EOS.
        let (top_v, top_i) =
            total
                .view([b as i64, (k * v) as i64])
                .topk((2 * k) as i64, -1, true, true);
        let top_v = Vec::<f64>::try_from(top_v.to_kind(Kind::Double).view([-1])).expect("f64");
        let top_i = Vec::<i64>::try_from(top_i.view([-1])).expect("i64");
        let mut src_rows = Vec::with_capacity(b * k);
        let mut next_tokens = Vec::with_capacity(b * k);
        let mut new_scores = Vec::with_capacity(b * k);
        let mut new_hyps = Vec::with_capacity(b * k);
        for e in 0..b {
            let mut live = 0;
            for j in 0..2 * k {
                let (score, idx) = (top_v[e * 2 * k + j], top_i[e * 2 * k + j] as usize);
                let (beam, tok) = (idx / v, (idx % v) as i64);
                let row = e * k + beam;
                if done[e] || !score.is_finite() {
                    break;
                }
                let mut hyp = hyps[row].clone();
                hyp.push(tok);
                if tok == EOS {
                    finished[e].push((score, hyp));
                } else if live < k {
                    src_rows.push(row as i64);
                    next_tokens.push(tok);
                    new_scores.push(score);
                    new_hyps.push(hyp);
                    live += 1;
                }
                if live == k {
                    break;
                }
            }
            // Pad the example's rows (finished examples, or too few live candidates).
            while live < k {
                src_rows.push((e * k) as i64);
                next_tokens.push(PAD);
                new_scores.push(f64::NEG_INFINITY);
                new_hyps.push(Vec::new());
                live += 1;
            }
            // Scores only fall as hypotheses grow: once the best finished one beats every
            // live one (or K have finished), the example is done.
            let best_done = finished[e]
                .iter()
                .map(|f| f.0)
                .fold(f64::NEG_INFINITY, f64::max);
            let best_live = new_scores[e * k..]
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max);
            if finished[e].len() >= k || (best_done >= best_live && !finished[e].is_empty()) {
                done[e] = true;
            }
        }
        if done.iter().all(|&d| d) {
            break;
        }
        let idx = Tensor::from_slice(&src_rows).to_device(device);
        h = h2.index_select(1, &idx);
        c = c2.index_select(1, &idx);
        prev = Tensor::from_slice(&next_tokens)
            .to_device(device)
            .unsqueeze(1);
        scores = new_scores;
        hyps = new_hyps;
    }
    (0..b)
        .map(|e| {
            let best_finished = finished[e].iter().max_by(|a, b| a.0.total_cmp(&b.0));
            match best_finished {
                Some((_, hyp)) => hyp.clone(),
                None => (0..k)
                    .map(|j| (scores[e * k + j], &hyps[e * k + j]))
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, h)| h.clone())
                    .unwrap_or_default(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nucleus_keeps_the_homeworks_prefix() {
        let probs = Tensor::from_slice(&[0.1f32, 0.5, 0.15, 0.25]).view([1, 4]);
        let kept = |p: f64| Vec::<f32>::try_from(nucleus_filter(&probs, p).view([-1])).unwrap();
        // Sorted: 0.5, 0.25, 0.15, 0.1 → cumulative 0.5, 0.75, 0.9, 1.0.
        assert_eq!(
            kept(0.4),
            vec![0.0, 1.0, 0.0, 0.0],
            "0.5 crosses p = 0.4 alone"
        );
        // A tie: the mass before 0.25 is exactly p, and the homework's `<= p` keeps it.
        let k = kept(0.5);
        assert!(
            (k[1] - 2.0 / 3.0).abs() < 1e-6 && (k[3] - 1.0 / 3.0).abs() < 1e-6,
            "the homework keeps the token after a cumulative mass of exactly p: {k:?}"
        );
        let k = kept(0.6);
        assert!(
            (k[1] - 2.0 / 3.0).abs() < 1e-6
                && (k[3] - 1.0 / 3.0).abs() < 1e-6
                && k[0] == 0.0
                && k[2] == 0.0
        );
        let k = kept(0.8);
        assert!(
            k[0] == 0.0 && k[2] > 0.0,
            "the token crossing p is kept: {k:?}"
        );
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(kept(1e-9), vec![0.0, 1.0, 0.0, 0.0], "p → 0 is greedy");
    }
}

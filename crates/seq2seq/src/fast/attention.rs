//! [`BahdanauAttention::forward`] for training and batched decoding: the keys `W_h h_i`
//! computed once per source batch, the additive scores of real (query, source) pairs only
//! through the fused node of [`crate::fast::additive`], and, for the training loss, the
//! attention of the scored query rows alone ([`attend_rows`]).

use tch::nn::Module;
use tch::{Kind, Tensor};

use crate::model::BahdanauAttention;

use crate::fast::additive::{additive_scores, attention_context};

/// `W_h h_i` for every source position, (B, S, H): computed once per source batch and
/// reused at every decoding step.
pub fn keys(attn: &BahdanauAttention, encoder_outputs: &Tensor) -> Tensor {
    attn.w_h.forward(encoder_outputs)
}

/// Attends from `query` (B, T, H) over `encoder_outputs` (B, S, H) whose `keys` are given;
/// `mask` (B, S) is true at real positions. Returns the output and the weights (B, T, S).
///
/// `query_mask` (B, T), when given, is true at the query positions whose output is used.
/// Only those are computed: `W_s`, `W_out` and above all the additive scores — the
/// (·, H) tanh that dominates the cost — for (real query, real source) pairs, about a
/// quarter of a padded training batch. Outputs at the other positions are zero (their
/// weights uniform), so nothing there can turn into NaN in the backward pass.
pub fn attend(
    attn: &BahdanauAttention,
    query: &Tensor,
    encoder_outputs: &Tensor,
    keys: &Tensor,
    mask: &Tensor,
    query_mask: Option<&Tensor>,
) -> (Tensor, Tensor) {
    let (b, t, h) = query.size3().expect("query is (B, T, H)");
    let s = keys.size()[1];
    let flat = query.reshape([-1, h]);
    let src = mask.unsqueeze(1);
    // The query rows computed (flat b·T + t), and each flat position's place among them.
    let (rows, slot, pairs) = match query_mask {
        Some(m) => {
            let m_flat = m.reshape([-1]);
            let slot = m_flat.cumsum(0, Kind::Int64) - 1;
            let rows = m_flat.nonzero().squeeze_dim(1);
            (Some(rows), Some(slot), m.unsqueeze(2).logical_and(&src))
        }
        None => (None, None, src.expand([b, t, s], false)),
    };
    let q = match &rows {
        Some(r) => attn.w_s.forward(&flat.index_select(0, r)),
        None => attn.w_s.forward(&flat),
    };
    let idx = pairs.nonzero();
    let (bi, ti, si) = (idx.select(1, 0), idx.select(1, 1), idx.select(1, 2));
    let at = &bi * t + &ti;
    let at = match &slot {
        Some(sl) => sl.index_select(0, &at),
        None => at,
    };
    let e = additive_scores(
        &q,
        &keys.reshape([-1, h]),
        &attn.v.ws,
        &at,
        &(&bi * s + &si),
    );
    // Padded sources get −∞ (weight 0); skipped queries a finite row (uniform weights).
    let base = Tensor::full([b, t, s], f64::NEG_INFINITY, (e.kind(), e.device()));
    let base = match query_mask {
        Some(m) => base.masked_fill(&m.logical_not().unsqueeze(2), 0.0),
        None => base,
    };
    let scores = base.masked_scatter(&pairs, &e);
    let weights = scores.softmax(-1, scores.kind());
    let context = weights.bmm(encoder_outputs);
    let both = Tensor::cat(&[&context, query], -1).reshape([-1, 2 * h]);
    let out = match &rows {
        Some(r) => {
            let o = both.index_select(0, r).apply(&attn.w_out).tanh();
            Tensor::zeros([b * t, h], (o.kind(), o.device())).index_copy(0, r, &o)
        }
        None => both.apply(&attn.w_out).tanh(),
    };
    (out.view([b, t, h]), weights)
}

/// The attention output of query rows only: `query` (R, H) are decoder outputs, row `r`
/// belonging to batch row `batch[r]` (int64, R), whose real sources are the first
/// `lengths[b]` (int64, B) of `encoder_outputs` and `keys` (B, S, H). Returns (R, H) —
/// [`attend`]'s output at those positions, without making the (B, T, S)
/// scores or the outputs of unused positions: the training loss needs nothing else.
pub fn attend_rows(
    attn: &BahdanauAttention,
    query: &Tensor,
    encoder_outputs: &Tensor,
    keys: &Tensor,
    batch: &Tensor,
    lengths: &Tensor,
) -> Tensor {
    let q = attn.w_s.forward(query);
    let context = attention_context(&q, keys, encoder_outputs, &attn.v.ws, batch, lengths);
    Tensor::cat(&[&context, query], -1)
        .apply(&attn.w_out)
        .tanh()
}

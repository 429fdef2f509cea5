//! Bahdanau (additive) attention with masking, no biases.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use crate::additive::{additive_scores, attention_context};

/// `e_ti = vᵀ tanh(W_s s_t + W_h h_i)`, softmax over unmasked source positions,
/// `c_t = Σ α_ti h_i`, output `tanh(W_out [c_t; s_t])`.
#[derive(Debug)]
pub struct Attention {
    pub(crate) w_s: nn::Linear,
    pub(crate) w_h: nn::Linear,
    pub(crate) v: nn::Linear,
    pub(crate) w_out: nn::Linear,
}

impl Attention {
    /// `W_h`, `W_s` (H×H), `v` (1×H), `W_out` (H×2H), created (and so drawn) in the
    /// homework's order.
    pub fn new(path: &nn::Path, hidden: i64) -> Self {
        let w_h = torchkit::layers::linear(&(path / "W_h"), hidden, hidden, false);
        let w_s = torchkit::layers::linear(&(path / "W_s"), hidden, hidden, false);
        Self {
            w_s,
            w_h,
            v: torchkit::layers::linear(&(path / "v"), hidden, 1, false),
            w_out: torchkit::layers::linear(&(path / "W_out"), 2 * hidden, hidden, false),
        }
    }

    /// `W_h h_i` for every source position, (B, S, H): computed once per source batch and
    /// reused at every decoding step.
    pub fn keys(&self, encoder_outputs: &Tensor) -> Tensor {
        self.w_h.forward(encoder_outputs)
    }

    /// Attends from `query` (B, T, H) over `encoder_outputs` (B, S, H) whose `keys` are given;
    /// `mask` (B, S) is true at real positions. Returns the output and the weights (B, T, S).
    ///
    /// `query_mask` (B, T), when given, is true at the query positions whose output is used.
    /// Only those are computed: `W_s`, `W_out` and above all the additive scores — the
    /// (·, H) tanh that dominates the cost — for (real query, real source) pairs, about a
    /// quarter of a padded training batch. Outputs at the other positions are zero (their
    /// weights uniform), so nothing there can turn into NaN in the backward pass.
    pub fn forward(
        &self,
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
            Some(r) => self.w_s.forward(&flat.index_select(0, r)),
            None => self.w_s.forward(&flat),
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
            &self.v.ws,
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
                let o = both.index_select(0, r).apply(&self.w_out).tanh();
                Tensor::zeros([b * t, h], (o.kind(), o.device())).index_copy(0, r, &o)
            }
            None => both.apply(&self.w_out).tanh(),
        };
        (out.view([b, t, h]), weights)
    }

    /// The attention output of query rows only: `query` (R, H) are decoder outputs, row `r`
    /// belonging to batch row `batch[r]` (int64, R), whose real sources are the first
    /// `lengths[b]` (int64, B) of `encoder_outputs` and `keys` (B, S, H). Returns (R, H) —
    /// [`Attention::forward`]'s output at those positions, without making the (B, T, S)
    /// scores or the outputs of unused positions: the training loss needs nothing else.
    pub fn forward_rows(
        &self,
        query: &Tensor,
        encoder_outputs: &Tensor,
        keys: &Tensor,
        batch: &Tensor,
        lengths: &Tensor,
    ) -> Tensor {
        let q = self.w_s.forward(query);
        let context = attention_context(&q, keys, encoder_outputs, &self.v.ws, batch, lengths);
        Tensor::cat(&[&context, query], -1)
            .apply(&self.w_out)
            .tanh()
    }
}

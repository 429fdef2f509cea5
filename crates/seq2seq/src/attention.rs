//! Bahdanau (additive) attention with masking, no biases.

use tch::nn::{self, Module};
use tch::Tensor;

/// `e_ti = vᵀ tanh(W_s s_t + W_h h_i)`, softmax over unmasked source positions,
/// `c_t = Σ α_ti h_i`, output `tanh(W_out [c_t; s_t])`.
#[derive(Debug)]
pub struct Attention {
    w_s: nn::Linear,
    w_h: nn::Linear,
    v: nn::Linear,
    w_out: nn::Linear,
}

impl Attention {
    /// `W_s`, `W_h` (H×H), `v` (1×H), `W_out` (H×2H), created in the homework's order.
    pub fn new(path: &nn::Path, hidden: i64) -> Self {
        Self {
            w_s: torchkit::init::linear(&(path / "W_s"), hidden, hidden, false),
            w_h: torchkit::init::linear(&(path / "W_h"), hidden, hidden, false),
            v: torchkit::init::linear(&(path / "v"), hidden, 1, false),
            w_out: torchkit::init::linear(&(path / "W_out"), 2 * hidden, hidden, false),
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
    /// `query_mask` (B, T), when given, is true at the query positions whose output is used:
    /// the additive scores — the (·, H) tanh that dominates the cost — are computed only for
    /// (real query, real source) pairs, about a quarter of a padded training batch. Outputs at
    /// the other query positions are finite but meaningless (they attend uniformly).
    pub fn forward(
        &self,
        query: &Tensor,
        encoder_outputs: &Tensor,
        keys: &Tensor,
        mask: &Tensor,
        query_mask: Option<&Tensor>,
    ) -> (Tensor, Tensor) {
        let q = self.w_s.forward(query);
        let (b, t, h) = q.size3().expect("query is (B, T, H)");
        let s = keys.size()[1];
        let src = mask.unsqueeze(1);
        let pairs = match query_mask {
            Some(m) => m.unsqueeze(2).logical_and(&src),
            None => src.expand([b, t, s], false),
        };
        let idx = pairs.nonzero();
        let (bi, ti, si) = (idx.select(1, 0), idx.select(1, 1), idx.select(1, 2));
        let q_rows = q.reshape([-1, h]).index_select(0, &(&bi * t + &ti));
        let k_rows = keys.reshape([-1, h]).index_select(0, &(&bi * s + &si));
        let e = (q_rows + k_rows).tanh().apply(&self.v).reshape([-1]);
        // Padded sources get −∞ (weight 0); padded queries a finite row, so no NaN reaches
        // the backward pass through their (ignored) outputs.
        let base = Tensor::full([b, t, s], f64::NEG_INFINITY, (e.kind(), e.device()));
        let base = match query_mask {
            Some(m) => base.masked_fill(&m.logical_not().unsqueeze(2), 0.0),
            None => base,
        };
        let scores = base.masked_scatter(&pairs, &e);
        let weights = scores.softmax(-1, scores.kind());
        let context = weights.bmm(encoder_outputs);
        let out = Tensor::cat(&[&context, query], -1)
            .apply(&self.w_out)
            .tanh();
        (out, weights)
    }
}

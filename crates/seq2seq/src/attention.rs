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
    pub fn forward(
        &self,
        query: &Tensor,
        encoder_outputs: &Tensor,
        keys: &Tensor,
        mask: &Tensor,
    ) -> (Tensor, Tensor) {
        let scores = (self.w_s.forward(query).unsqueeze(2) + keys.unsqueeze(1))
            .tanh()
            .apply(&self.v)
            .squeeze_dim(-1);
        let scores = scores.masked_fill(&mask.logical_not().unsqueeze(1), f64::NEG_INFINITY);
        let weights = scores.softmax(-1, scores.kind());
        let context = weights.bmm(encoder_outputs);
        let out = Tensor::cat(&[&context, query], -1)
            .apply(&self.w_out)
            .tanh();
        (out, weights)
    }
}

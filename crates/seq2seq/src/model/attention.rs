//! `BahdanauAttention` of the homework's `models.py`: `score(h_i, s_j) = vᵀ tanh(W_h h_i +
//! W_s s_j)`, masked softmax over the real source positions, context, and
//! `tanh(W_out [context; query])`.

use tch::{nn, Kind, Tensor};

/// Additive attention without biases.
#[derive(Debug)]
pub struct BahdanauAttention {
    /// `W_h` (H × H): the encoder outputs' projection.
    pub w_h: nn::Linear,
    /// `W_s` (H × H): the decoder state's projection.
    pub w_s: nn::Linear,
    /// `v` (1 × H): the scoring vector.
    pub v: nn::Linear,
    /// `W_out` (H × 2H): context and query combined.
    pub w_out: nn::Linear,
}

impl BahdanauAttention {
    /// `W_h`, `W_s`, `v`, `W_out`, created (and so drawn) in the homework's order.
    pub fn new(path: &nn::Path, hidden: i64) -> Self {
        let w_h = torchkit::layers::linear(&(path / "W_h"), hidden, hidden, false);
        let w_s = torchkit::layers::linear(&(path / "W_s"), hidden, hidden, false);
        let v = torchkit::layers::linear(&(path / "v"), hidden, 1, false);
        let w_out = torchkit::layers::linear(&(path / "W_out"), 2 * hidden, hidden, false);
        Self { w_h, w_s, v, w_out }
    }

    /// `query` (B, T, H) over `encoder_outputs` (B, S, H) whose first `src_lengths[b]`
    /// positions are real; returns the attended vectors (B, T, H) and the alignment
    /// (B, T, S) — the homework returns the first; the report's attention maps draw the
    /// second.
    pub fn forward(
        &self,
        query: &Tensor,
        encoder_outputs: &Tensor,
        src_lengths: &Tensor,
    ) -> (Tensor, Tensor) {
        let tgt_len = query.size()[1];
        let src_len = encoder_outputs.size()[1];
        let query_expanded = query.unsqueeze(2).expand([-1, -1, src_len, -1], false);
        let encoder_expanded = encoder_outputs
            .unsqueeze(1)
            .expand([-1, tgt_len, -1, -1], false);
        let score = (query_expanded.apply(&self.w_s) + encoder_expanded.apply(&self.w_h))
            .tanh()
            .apply(&self.v)
            .squeeze_dim(-1);
        let mask = sequence_mask(src_lengths).unsqueeze(1);
        let score = score.masked_fill(&mask.logical_not(), f64::NEG_INFINITY);
        let alignment = score.softmax(-1, score.kind());
        let context = alignment.bmm(encoder_outputs);
        let attn_out = Tensor::cat(&[&context, query], -1)
            .apply(&self.w_out)
            .tanh();
        (attn_out, alignment)
    }
}

/// The homework's `sequence_mask`: (B, max length), true at real positions.
pub fn sequence_mask(lengths: &Tensor) -> Tensor {
    let batch = lengths.numel() as i64;
    let max_len = lengths.max().int64_value(&[]);
    Tensor::arange(max_len, (Kind::Int64, lengths.device()))
        .unsqueeze(0)
        .repeat([batch, 1])
        .lt_tensor(&lengths.unsqueeze(1))
}

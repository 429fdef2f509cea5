//! A Hopfield-layer attention head (Ramsauer et al., "Hopfield Networks is All You Need"),
//! beside Bahdanau's: the decoder's output is the state pattern, the encoder's outputs the
//! stored patterns, seen through learned projections. `ξ = W_q s`, `K = W_k h`, `V = W_v h`;
//! `steps − 1` updates `ξ ← softmax(β ξ Kᵀ) K` of Q1's rule ([`hopfield::tensor::update`])
//! move the state towards a fixed point, and the last retrieval `α = softmax(β ξ Kᵀ)` reads
//! the values: `context = α V`. As Bahdanau's head, the output is `tanh(W_out [context; s])`.
//! Padding is masked as there. β = 1/√H unless learned.

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use super::attention::sequence_mask;

/// The head's options.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HopfieldConfig {
    /// Retrievals per decoder step (≥ 1): 1 is one update, i.e. attention.
    pub steps: usize,
    /// β a parameter (`decoder.attn.beta`, starting at 1/√H) instead of the constant 1/√H.
    pub learn_beta: bool,
}

impl Default for HopfieldConfig {
    fn default() -> Self {
        Self {
            steps: 1,
            learn_beta: false,
        }
    }
}

/// The Hopfield attention head, with PyTorch state_dict names `W_q`, `W_k`, `W_v`, `W_out`
/// (and `beta` when learned).
#[derive(Debug)]
pub struct HopfieldAttention {
    /// `W_q` (H × H): the state pattern's projection.
    pub w_q: nn::Linear,
    /// `W_k` (H × H): the stored patterns' projection.
    pub w_k: nn::Linear,
    /// `W_v` (H × H): the values' projection.
    pub w_v: nn::Linear,
    /// `W_out` (H × 2H): context and query combined.
    pub w_out: nn::Linear,
    /// β, a scalar (a parameter when learned).
    pub beta: Tensor,
    /// Retrievals per decoder step.
    pub steps: usize,
}

impl HopfieldAttention {
    /// `W_q`, `W_k`, `W_v`, `W_out` (and `beta`), in that order.
    pub fn new(path: &nn::Path, hidden: i64, config: &HopfieldConfig) -> Self {
        let w_q = torchkit::layers::linear(&(path / "W_q"), hidden, hidden, false);
        let w_k = torchkit::layers::linear(&(path / "W_k"), hidden, hidden, false);
        let w_v = torchkit::layers::linear(&(path / "W_v"), hidden, hidden, false);
        let w_out = torchkit::layers::linear(&(path / "W_out"), 2 * hidden, hidden, false);
        let start = 1.0 / (hidden as f64).sqrt();
        let beta = if config.learn_beta {
            path.var("beta", &[], nn::Init::Const(start))
        } else {
            Tensor::from(start as f32).to_device(path.device())
        };
        Self {
            w_q,
            w_k,
            w_v,
            w_out,
            beta,
            steps: config.steps.max(1),
        }
    }

    /// `query` (B, T, H) over `encoder_outputs` (B, S, H) whose first `src_lengths[b]`
    /// positions are real; returns the attended vectors (B, T, H) and the last retrieval's
    /// probabilities (B, T, S).
    pub fn forward(
        &self,
        query: &Tensor,
        encoder_outputs: &Tensor,
        src_lengths: &Tensor,
    ) -> (Tensor, Tensor) {
        let (keys, values) = self.keys_values(encoder_outputs);
        // The encoder's outputs are as long as its longest source, as Bahdanau's mask is.
        let real = sequence_mask(src_lengths);
        self.retrieve(query, &keys, &values, &real)
    }

    /// The stored patterns `K = W_k h` and the values `V = W_v h` (B, S, H): once per source
    /// batch.
    pub fn keys_values(&self, encoder_outputs: &Tensor) -> (Tensor, Tensor) {
        (
            encoder_outputs.apply(&self.w_k),
            encoder_outputs.apply(&self.w_v),
        )
    }

    /// The retrieval itself from `query` (B, T, H), given `keys` and `values` (B, S, H) and
    /// `real` (B, S), true at real source positions: the attended vectors and the last
    /// retrieval's probabilities.
    pub fn retrieve(
        &self,
        query: &Tensor,
        keys: &Tensor,
        values: &Tensor,
        real: &Tensor,
    ) -> (Tensor, Tensor) {
        let mut xi = query.apply(&self.w_q);
        for _ in 1..self.steps {
            xi = hopfield::tensor::update(&xi, keys, &self.beta, Some(real)).0;
        }
        let alignment = hopfield::tensor::probabilities(&xi, keys, &self.beta, Some(real));
        let context = alignment.bmm(values);
        let out = Tensor::cat(&[&context, query], -1)
            .apply(&self.w_out)
            .tanh();
        (out, alignment)
    }
}

//! The decoder's attention head: the homework's Bahdanau attention, or a Hopfield layer.

use tch::{nn, Tensor};

use super::attention::BahdanauAttention;
use super::hopfield::{HopfieldAttention, HopfieldConfig};

/// `decoder.attn`.
#[derive(Debug)]
pub enum Attention {
    /// `BahdanauAttention` (the homework's).
    Bahdanau(BahdanauAttention),
    /// A Hopfield layer built on Q1's update rule.
    Hopfield(HopfieldAttention),
}

impl Attention {
    /// Bahdanau's head, or the Hopfield layer `hopfield` describes.
    pub fn new(path: &nn::Path, hidden: i64, hopfield: Option<&HopfieldConfig>) -> Self {
        match hopfield {
            None => Self::Bahdanau(BahdanauAttention::new(path, hidden)),
            Some(c) => Self::Hopfield(HopfieldAttention::new(path, hidden, c)),
        }
    }

    /// `self.attn(output, encoder_outputs, src_lengths)`: the attended vectors, and the
    /// weights (B, T, S) over the source positions.
    pub fn forward(
        &self,
        query: &Tensor,
        encoder_outputs: &Tensor,
        src_lengths: &Tensor,
    ) -> (Tensor, Tensor) {
        match self {
            Self::Bahdanau(a) => a.forward(query, encoder_outputs, src_lengths),
            Self::Hopfield(h) => h.forward(query, encoder_outputs, src_lengths),
        }
    }
}

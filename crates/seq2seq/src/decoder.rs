//! The decoder: embedding → dropout → LSTM → optional attention → dropout.

use tch::{nn, Tensor};

use crate::attention::Attention;
use crate::vocab::PAD;

/// One-layer LSTM decoder (no input feeding: the attention output is not fed back).
#[derive(Debug)]
pub struct Decoder {
    /// `decoder.embedding.weight` (vocab × H), also the generator's tied weight.
    pub embedding: Tensor,
    lstm: Vec<Tensor>,
    attn: Option<Attention>,
    dropout: f64,
}

/// What the decoder needs from the encoder, prepared once per source batch.
#[derive(Debug)]
pub struct Memory {
    /// Encoder outputs (B, S, H).
    pub outputs: Tensor,
    /// `W_h` applied to them (attention only).
    pub keys: Option<Tensor>,
    /// (B, S), true at real source positions.
    pub mask: Tensor,
}

impl Decoder {
    /// Creates the parameters under `path` in PyTorch's construction order: the attention
    /// (built before the decoder in the homework), then `embedding` and `lstm`.
    pub fn new(path: &nn::Path, vocab: i64, hidden: i64, dropout: f64, attention: bool) -> Self {
        let attn = attention.then(|| Attention::new(&(path / "attn"), hidden));
        let embedding = torchkit::init::embedding(&(path / "embedding"), vocab, hidden, Some(PAD));
        let lstm = torchkit::init::lstm(&(path / "lstm"), hidden, hidden, false);
        Self {
            embedding,
            lstm,
            attn,
            dropout,
        }
    }

    /// Whether the decoder attends.
    pub fn has_attention(&self) -> bool {
        self.attn.is_some()
    }

    /// Prepares the encoder side for attention.
    pub fn memory(&self, outputs: Tensor, mask: Tensor) -> Memory {
        let keys = self.attn.as_ref().map(|a| a.keys(&outputs));
        Memory {
            outputs,
            keys,
            mask,
        }
    }

    /// Runs the decoder over `tgt` (B, T) from `state` = (h, c), each (1, B, H). Returns the
    /// outputs (B, T, H) and the new state.
    pub fn forward_t(
        &self,
        tgt: &Tensor,
        state: (&Tensor, &Tensor),
        memory: &Memory,
        train: bool,
    ) -> (Tensor, (Tensor, Tensor)) {
        let emb =
            Tensor::embedding(&self.embedding, tgt, PAD, false, false).dropout(self.dropout, train);
        let (out, h, c) = emb.lstm(
            &[state.0, state.1],
            &self.lstm.iter().collect::<Vec<_>>(),
            true,
            1,
            0.0,
            train,
            false,
            true,
        );
        let out = match (&self.attn, &memory.keys) {
            (Some(attn), Some(keys)) => attn.forward(&out, &memory.outputs, keys, &memory.mask).0,
            _ => out,
        };
        (out.dropout(self.dropout, train), (h, c))
    }
}

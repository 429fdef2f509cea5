//! `Decoder` of the homework's `models.py`: embedding → dropout → one LSTM step at a time,
//! each step's output through the attention (if any) and dropout.

use tch::{nn, Tensor};

use super::head::Attention;
use super::hopfield::HopfieldConfig;
use crate::vocab::PAD;

/// One-layer LSTM decoder (no input feeding: the attention output is not fed back).
#[derive(Debug)]
pub struct Decoder {
    /// `decoder.embedding.weight` (vocab × H), also the generator's tied weight.
    pub embedding: Tensor,
    /// `decoder.lstm`'s four tensors in PyTorch's order.
    pub lstm: Vec<Tensor>,
    /// `decoder.attn`, when the model has attention.
    pub attn: Option<Attention>,
    /// `nn.Dropout`'s probability.
    pub dropout: f64,
}

impl Decoder {
    /// Creates the parameters under `path` in PyTorch's construction order: the attention
    /// (built before the decoder in the homework), then `embedding` and `lstm`.
    pub fn new(
        path: &nn::Path,
        hidden_size: i64,
        tgt_vocab_size: i64,
        attention: bool,
        hopfield: Option<&HopfieldConfig>,
        dropout: f64,
    ) -> Self {
        let attn = attention.then(|| Attention::new(&(path / "attn"), hidden_size, hopfield));
        let embedding = torchkit::layers::embedding(
            &(path / "embedding"),
            tgt_vocab_size,
            hidden_size,
            Some(PAD),
        );
        let lstm = torchkit::layers::lstm(&(path / "lstm"), hidden_size, hidden_size, false);
        Self {
            embedding,
            lstm,
            attn,
            dropout,
        }
    }

    /// Runs over `tgt` (B, T) from `dec_state` = (h, c) — the encoder's (2, B, H/2) final
    /// states or the decoder's own (1, B, H) — attending over `encoder_outputs` (B, S, H)
    /// with `src_lengths`. Returns `outputs` (B, T, H) and the new `dec_state`.
    pub fn forward(
        &self,
        tgt: &Tensor,
        dec_state: (Tensor, Tensor),
        encoder_outputs: &Tensor,
        src_lengths: &Tensor,
        train: bool,
    ) -> (Tensor, (Tensor, Tensor)) {
        let (outputs, dec_state, _) =
            self.forward_with_alignments(tgt, dec_state, encoder_outputs, src_lengths, train);
        (outputs, dec_state)
    }

    /// [`Decoder::forward`], and the attention weights (B, T, S) of every step when the
    /// decoder attends: what the report's attention maps and retrieval figures read.
    pub fn forward_with_alignments(
        &self,
        tgt: &Tensor,
        dec_state: (Tensor, Tensor),
        encoder_outputs: &Tensor,
        src_lengths: &Tensor,
        train: bool,
    ) -> (Tensor, (Tensor, Tensor), Option<Tensor>) {
        let (mut h, mut c) = dec_state;
        if h.size()[0] == 2 {
            (h, c) = (reshape_state(&h), reshape_state(&c));
        }
        let embedded = Tensor::embedding(&self.embedding, tgt, PAD, false, false);
        let embedded = embedded.dropout(self.dropout, train);

        let params: Vec<&Tensor> = self.lstm.iter().collect();
        let (mut outputs, mut alignments) = (Vec::new(), Vec::new());
        for t in 0..tgt.size()[1] {
            let input_t = embedded.select(1, t).unsqueeze(1);
            let (mut output, h_t, c_t) =
                input_t.lstm(&[&h, &c], &params, true, 1, 0.0, train, false, true);
            (h, c) = (h_t, c_t);
            if let Some(attn) = &self.attn {
                let (attended, alignment) = attn.forward(&output, encoder_outputs, src_lengths);
                output = attended;
                alignments.push(alignment);
            }
            outputs.push(output.dropout(self.dropout, train));
        }
        let alignments = (!alignments.is_empty()).then(|| Tensor::cat(&alignments, 1));
        (Tensor::cat(&outputs, 1), (h, c), alignments)
    }
}

/// The homework's `reshape_state` for one tensor: `torch.cat([state[:-1], state[1:]],
/// dim=2)`, the bidirectional final states (2, B, H/2) as one (1, B, H), forward first.
pub fn reshape_state(state: &Tensor) -> Tensor {
    let n = state.size()[0];
    Tensor::cat(&[state.narrow(0, 0, n - 1), state.narrow(0, 1, n - 1)], 2)
}

//! The encoder: embedding → dropout → packed bidirectional LSTM → dropout.

use tch::{nn, Tensor};

use crate::lstm::{packed_bilstm, Tape};
use crate::vocab::PAD;
use torchkit::rng::fast_dropout as dropout;

/// Bidirectional one-layer LSTM encoder over packed sequences.
#[derive(Debug)]
pub struct Encoder {
    pub(crate) embedding: Tensor,
    pub(crate) lstm: Vec<Tensor>,
    pub(crate) dropout: f64,
}

/// The encoder's outputs.
#[derive(Debug)]
pub struct EncoderOutput {
    /// (B, max length, 2·hidden/2): forward and backward outputs concatenated; zero at padding.
    pub outputs: Tensor,
    /// Final hidden states, (2, B, hidden/2): forward then backward.
    pub h: Tensor,
    /// Final cell states, (2, B, hidden/2).
    pub c: Tensor,
    /// The LSTM's backward pass, when training with gradients (see [`crate::lstm`]).
    pub tape: Option<Tape>,
}

impl Encoder {
    /// `encoder.embedding` (vocab × hidden) and `encoder.lstm` (hidden → hidden/2 per direction).
    pub fn new(path: &nn::Path, vocab: i64, hidden: i64, dropout: f64) -> Self {
        let embedding =
            torchkit::layers::embedding(&(path / "embedding"), vocab, hidden, Some(PAD));
        let lstm = torchkit::layers::lstm(&(path / "lstm"), hidden, hidden / 2, true);
        Self {
            embedding,
            lstm,
            dropout,
        }
    }

    /// Encodes `src` (B, T) with `lengths` (B, int64, CPU). With gradients on, the result
    /// carries the LSTM's [`Tape`]: call its `backward` after the loss's. Like PyTorch's
    /// `pack_padded_sequence(enforce_sorted=False)`, the batch is sorted by length for
    /// packing and every output — the final states too — is put back in the input order, so
    /// padding never reaches the states and extra padding columns change nothing.
    pub fn forward_t(&self, src: &Tensor, lengths: &Tensor, train: bool) -> EncoderOutput {
        let emb = dropout(
            &Tensor::embedding(&self.embedding, src, PAD, false, false),
            self.dropout,
            train,
        );
        let (sorted_lengths, order) = lengths.sort(0, true);
        let restore = order.argsort(0, false);
        let device = src.device();
        let (order_d, restore_d) = (order.to_device(device), restore.to_device(device));
        let (data, batch_sizes) = emb
            .index_select(0, &order_d)
            .internal_pack_padded_sequence(&sorted_lengths, true);
        let sizes = Vec::<i64>::try_from(&batch_sizes).expect("int64 batch sizes");
        let lstm = packed_bilstm(&data, &sizes, &self.lstm);
        let (out, h, c) = (lstm.output, lstm.h, lstm.c);
        let max_len = sorted_lengths.max().int64_value(&[]);
        let (padded, _) =
            Tensor::internal_pad_packed_sequence(&out, &batch_sizes, true, 0.0, max_len);
        EncoderOutput {
            outputs: dropout(&padded.index_select(0, &restore_d), self.dropout, train),
            h: h.index_select(1, &restore_d),
            c: c.index_select(1, &restore_d),
            tape: lstm.tape,
        }
    }
}

/// The state bridge: (2, B, H) forward/backward finals → (1, B, 2H), forward first.
pub fn bridge(state: &Tensor) -> Tensor {
    Tensor::cat(&[state.get(0), state.get(1)], -1).unsqueeze(0)
}

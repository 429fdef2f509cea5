//! `Encoder` of the homework's `models.py`: embedding → dropout → packed bidirectional LSTM
//! → unpacked → dropout.

use tch::{nn, Kind, Tensor};

use crate::vocab::PAD;

/// Bidirectional one-layer LSTM encoder (hidden/2 units per direction).
#[derive(Debug)]
pub struct Encoder {
    /// `encoder.embedding.weight` (vocab × H).
    pub embedding: Tensor,
    /// `encoder.lstm`'s eight tensors in PyTorch's order (`weight_ih_l0`, `weight_hh_l0`,
    /// `bias_ih_l0`, `bias_hh_l0`, then the `_reverse` four).
    pub lstm: Vec<Tensor>,
    /// `nn.Dropout`'s probability.
    pub dropout: f64,
}

impl Encoder {
    /// `embedding` (vocab × hidden) and `lstm` (hidden → hidden/2 per direction).
    pub fn new(path: &nn::Path, src_vocab_size: i64, hidden_size: i64, dropout: f64) -> Self {
        let embedding = torchkit::layers::embedding(
            &(path / "embedding"),
            src_vocab_size,
            hidden_size,
            Some(PAD),
        );
        let lstm = torchkit::layers::lstm(&(path / "lstm"), hidden_size, hidden_size / 2, true);
        Self {
            embedding,
            lstm,
            dropout,
        }
    }

    /// `src` (B, S) with `lengths` (B, int64); returns `enc_output` (B, max length, H) and
    /// `final_hidden` = (h, c), each (2, B, H/2), in the input's row order.
    pub fn forward(
        &self,
        src: &Tensor,
        lengths: &Tensor,
        train: bool,
    ) -> (Tensor, (Tensor, Tensor)) {
        let embedded = Tensor::embedding(&self.embedding, src, PAD, false, false);
        let embedded = embedded.dropout(self.dropout, train);

        // pack(embedded, lengths, batch_first=True, enforce_sorted=False)
        let (sorted_lengths, sorted_indices) = lengths.sort(0, true);
        let sorted_indices = sorted_indices.to_device(src.device());
        let (data, batch_sizes) = embedded
            .index_select(0, &sorted_indices)
            .internal_pack_padded_sequence(&sorted_lengths, true);
        let unsorted_indices = invert_permutation(&sorted_indices);

        // self.lstm(packed_embedded), from zero states
        let zeros = Tensor::zeros(
            [2, src.size()[0], self.lstm[1].size()[1]],
            (data.kind(), data.device()),
        );
        let params: Vec<&Tensor> = self.lstm.iter().collect();
        let (packed_output, h, c) = Tensor::lstm_data(
            &data,
            &batch_sizes,
            &[&zeros, &zeros],
            &params,
            true,
            1,
            0.0,
            train,
            true,
        );
        let final_hidden = (
            h.index_select(1, &unsorted_indices),
            c.index_select(1, &unsorted_indices),
        );

        // unpack(packed_output, batch_first=True)
        let max_len = batch_sizes.size()[0];
        let (enc_output, _) =
            Tensor::internal_pad_packed_sequence(&packed_output, &batch_sizes, true, 0.0, max_len);
        let enc_output = enc_output.index_select(0, &unsorted_indices);
        let enc_output = enc_output.dropout(self.dropout, train);
        (enc_output, final_hidden)
    }
}

/// PyTorch's `invert_permutation`: arange scattered into the sorted positions.
fn invert_permutation(permutation: &Tensor) -> Tensor {
    let n = permutation.numel() as i64;
    permutation.empty_like().scatter(
        0,
        permutation,
        &Tensor::arange(n, (Kind::Int64, permutation.device())),
    )
}

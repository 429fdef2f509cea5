//! The encoder's forward pass for training and batched decoding: the same function as
//! [`Encoder::forward`] (its reference twin), with the LSTM packed by one row gather and
//! run by [`packed_bilstm`], whose backward pass is hand-written.

use tch::Tensor;

use crate::fast::lstm::{packed_bilstm, Tape};
use crate::model::Encoder;
use crate::vocab::PAD;
use torchkit::fast::dropout;

/// The encoder's outputs.
#[derive(Debug)]
pub struct EncoderOutput {
    /// (B, max length, 2·hidden/2): forward and backward outputs concatenated; zero at padding.
    pub outputs: Tensor,
    /// Final hidden states, (2, B, hidden/2): forward then backward.
    pub h: Tensor,
    /// Final cell states, (2, B, hidden/2).
    pub c: Tensor,
    /// The LSTM's backward pass, when training with gradients (see [`crate::fast::lstm`]).
    pub tape: Option<Tape>,
}

/// [`Encoder::forward`] packed by one row gather and run by [`packed_bilstm`]: `src` (B, T)
/// with `lengths` (B, int64, CPU). With gradients on, the result carries the LSTM's
/// [`Tape`]: call its `backward` after the loss's. Like PyTorch's
/// `pack_padded_sequence(enforce_sorted=False)`, the batch is sorted by length for packing
/// and every output — the final states too — is put back in the input order, so padding
/// never reaches the states and extra padding columns change nothing.
pub fn encode(encoder: &Encoder, src: &Tensor, lengths: &Tensor, train: bool) -> EncoderOutput {
    let emb = dropout(
        &Tensor::embedding(&encoder.embedding, src, PAD, false, false),
        encoder.dropout,
        train,
    );
    let (sorted_lengths, order) = lengths.sort(0, true);
    let restore = order.argsort(0, false);
    let device = src.device();
    let restore_d = restore.to_device(device);
    let sorted = Vec::<i64>::try_from(&sorted_lengths).expect("int64 lengths");
    let order = Vec::<i64>::try_from(&order).expect("int64 order");
    // As libtorch's packing does (the corpus reader refuses empty sources already).
    assert!(
        sorted.last().is_some_and(|&l| l > 0),
        "encoder: every source needs at least one token"
    );
    // Rows per step of the packed layout, as `pack_padded_sequence` makes it.
    let sizes: Vec<i64> = (0..sorted.first().copied().unwrap_or(0))
        .map(|t| sorted.iter().filter(|&&l| l > t).count() as i64)
        .collect();
    // Packed by one row gather from the embeddings (whose backward is one index_add),
    // rather than a sorting gather and then libtorch's step-by-step packing.
    let (_, width, hidden) = emb.size3().expect("(B, T, H)");
    let rows = Tensor::from_slice(&packed_rows(&sizes, &order, width)).to_device(device);
    let data = emb.reshape([-1, hidden]).index_select(0, &rows);
    let lstm = packed_bilstm(&data, &sizes, &encoder.lstm);
    let (out, h, c) = (lstm.output, lstm.h, lstm.c);
    EncoderOutput {
        outputs: dropout(&unpack(&out, &sizes, &order), encoder.dropout, train),
        h: h.index_select(1, &restore_d),
        c: c.index_select(1, &restore_d),
        tape: lstm.tape,
    }
}

/// The packed outputs (N, H) — time-major, `sizes[t]` rows at step t, the i-th of them the
/// sorted batch's row i, input row `order[i]` — padded with zeros into (B, T, H) in the
/// input order, by one `index_copy`. libtorch's `_pad_packed_sequence` copies step by step
/// into slices of its output, and autograd undoes each slice copy (`CopySlices`) by
/// cloning the whole gradient; `index_copy`'s backward is one `index_select`. A step of (b)
/// went from 12.15 to 11.63 ms (`cargo bench -p seq2seq --bench train_step`).
fn unpack(packed: &Tensor, sizes: &[i64], order: &[i64]) -> Tensor {
    let (b, t) = (order.len() as i64, sizes.len() as i64);
    let width = packed.size()[1];
    let rows = Tensor::from_slice(&packed_rows(sizes, order, t)).to_device(packed.device());
    Tensor::zeros([b * t, width], (packed.kind(), packed.device()))
        .index_copy(0, &rows, packed)
        .view([b, t, width])
}

/// Where each row of the packed layout (`sizes[t]` rows at step t, the i-th of them input
/// row `order[i]`) sits in a flattened (B, T, H) batch of `t` columns: row·t + step.
fn packed_rows(sizes: &[i64], order: &[i64], t: i64) -> Vec<i64> {
    (0..sizes.len())
        .flat_map(|step| {
            order[..sizes[step] as usize]
                .iter()
                .map(move |&i| i * t + step as i64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// The packing gather against libtorch's `_pack_padded_sequence`, and `unpack` against
    /// its `_pad_packed_sequence` then the restoring `index_select`: the same values, and
    /// the same gradient back to the packed rows.
    #[test]
    fn packing_and_unpacking_are_libtorchs_in_input_order() {
        let lengths = Tensor::from_slice(&[3i64, 5, 1, 4]);
        let (sorted, order) = lengths.sort(0, true);
        let restore = order.argsort(0, false);
        let (b, t, h) = (4, 5, 3);
        let padded = Tensor::randn([b, t, h], (Kind::Float, Device::Cpu));
        let (packed, batch_sizes) = padded
            .index_select(0, &order)
            .internal_pack_padded_sequence(&sorted, true);
        let sizes = Vec::<i64>::try_from(&batch_sizes).unwrap();
        // The encoder's packing gather gives libtorch's packed rows.
        let rows = packed_rows(&sizes, &Vec::<i64>::try_from(&order).unwrap(), t);
        let gathered = padded
            .reshape([-1, h])
            .index_select(0, &Tensor::from_slice(&rows));
        assert!(gathered.equal(&packed));
        let packed = packed.detach().set_requires_grad(true);
        let ours = unpack(&packed, &sizes, &Vec::<i64>::try_from(&order).unwrap());
        let (theirs, _) = Tensor::internal_pad_packed_sequence(&packed, &batch_sizes, true, 0.0, t);
        let theirs = theirs.index_select(0, &restore);
        assert!(ours.equal(&theirs));
        // Zeros past each row's length, the input's values before it.
        assert!(ours.get(2).narrow(0, 1, 4).eq(0.0).all().int64_value(&[]) == 1);
        assert!(ours.get(1).equal(&padded.get(1)));
        let weights = Tensor::randn([b, t, h], (Kind::Float, Device::Cpu));
        let grad = |y: &Tensor| {
            Tensor::run_backward(&[(y * &weights).sum(Kind::Float)], &[&packed], false, false)
                .remove(0)
        };
        assert!(grad(&ours).equal(&grad(&theirs)));
    }
}

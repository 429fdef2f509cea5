//! `--exact`: the homework's PyTorch code, op for op and draw for draw, on the same
//! parameters as the fast path. With the same seed, data and thread count it prints the
//! homework's lines digit for digit (`tests/exact.rs` checks every training loss against a
//! run of the homework's own code).
//!
//! What it does like the homework and the fast path does not:
//! * the `DataLoader`'s draws: two `random_()` from the global generator per training
//!   epoch and a private generator's `randperm` for the order (`torchkit::rng::loader_order`),
//!   one `random_()` per evaluation pass;
//! * the encoder's packed LSTM under autograd (`lstm_data`), not the hand-written backward;
//! * the decoder one step at a time over the whole padded batch, each step's LSTM call,
//!   dense attention over expanded tensors with `-inf` masking, and a dropout draw per step;
//! * the generator on every position and the cross-entropy over all rows, PAD ignored;
//! * decoding one word at a time (batch of one), and nucleus sampling as the homework
//!   writes it (softmax, sort, cumulative sum, the shifted `<= p` mask, compaction,
//!   renormalisation, `multinomial`).
//!
//! Every op is libtorch's own (`Tensor::linear`, `lstm`, `dropout`, `cross_entropy_loss`…),
//! called with the shapes the homework's code gives them.

use tch::{Device, Kind, Tensor};

use crate::attention::Attention;
use crate::batch::{Batch, Encoded};
use crate::model::Seq2Seq;
use crate::vocab::{Vocab, EOS, PAD, SOS};

/// `self.v(tanh(self.W_s(query_expanded) + self.W_h(encoder_expanded)))` and the rest of the
/// homework's `BahdanauAttention.forward`.
fn attend(
    attn: &Attention,
    query: &Tensor,
    encoder_outputs: &Tensor,
    src_lengths: &Tensor,
) -> Tensor {
    let tgt_len = query.size()[1];
    let src_len = encoder_outputs.size()[1];
    let query_expanded = query.unsqueeze(2).expand([-1, -1, src_len, -1], false);
    let encoder_expanded = encoder_outputs
        .unsqueeze(1)
        .expand([-1, tgt_len, -1, -1], false);
    let hidden = (query_expanded.linear::<Tensor>(&attn.w_s.ws, None)
        + encoder_expanded.linear::<Tensor>(&attn.w_h.ws, None))
    .tanh();
    let score = hidden.linear::<Tensor>(&attn.v.ws, None).squeeze_dim(-1);
    let mask = sequence_mask(src_lengths).unsqueeze(1);
    let score = score.masked_fill(&mask.logical_not(), f64::NEG_INFINITY);
    let alignment = score.softmax(-1, score.kind());
    let context = alignment.bmm(encoder_outputs);
    Tensor::cat(&[&context, query], -1)
        .linear::<Tensor>(&attn.w_out.ws, None)
        .tanh()
}

/// `arange(max_len).unsqueeze(0).repeat(B, 1).lt(lengths.unsqueeze(1))`.
fn sequence_mask(lengths: &Tensor) -> Tensor {
    let batch = lengths.numel() as i64;
    let max_len = lengths.max().int64_value(&[]);
    Tensor::arange(max_len, (Kind::Int64, lengths.device()))
        .unsqueeze(0)
        .repeat([batch, 1])
        .lt_tensor(&lengths.unsqueeze(1))
}

/// `torch.cat([state[:-1], state[1:]], dim=2)`: the bidirectional final states as one.
fn reshape_state(state: &Tensor) -> Tensor {
    let n = state.size()[0];
    Tensor::cat(&[state.narrow(0, 0, n - 1), state.narrow(0, 1, n - 1)], 2)
}

/// The homework's `Encoder.forward`: embedding, dropout, `pack_padded_sequence(...,
/// enforce_sorted=False)`, the packed LSTM, `pad_packed_sequence`, dropout. Returns the
/// outputs and the final (h, c) in input order.
fn encode(net: &Seq2Seq, src: &Tensor, lengths: &Tensor, train: bool) -> (Tensor, Tensor, Tensor) {
    let enc = &net.encoder;
    let embedded =
        Tensor::embedding(&enc.embedding, src, PAD, false, false).dropout(enc.dropout, train);
    let (sorted_lengths, sorted_indices) = lengths.sort(0, true);
    let sorted_indices = sorted_indices.to_device(src.device());
    let input = embedded.index_select(0, &sorted_indices);
    let (data, batch_sizes) = input.internal_pack_padded_sequence(&sorted_lengths, true);
    let half = enc.lstm[1].size()[1];
    let max_batch = src.size()[0];
    let zeros = Tensor::zeros([2, max_batch, half], (data.kind(), data.device()));
    let params: Vec<&Tensor> = enc.lstm.iter().collect();
    let (out, h, c) = Tensor::lstm_data(
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
    // invert_permutation: scatter arange into the sorted positions.
    let unsorted_indices = sorted_indices.empty_like().scatter(
        0,
        &sorted_indices,
        &Tensor::arange(
            sorted_indices.numel() as i64,
            (Kind::Int64, sorted_indices.device()),
        ),
    );
    let (h, c) = (
        h.index_select(1, &unsorted_indices),
        c.index_select(1, &unsorted_indices),
    );
    let max_len = batch_sizes.size()[0];
    let (padded, _) = Tensor::internal_pad_packed_sequence(&out, &batch_sizes, true, 0.0, max_len);
    let enc_output = padded
        .index_select(0, &unsorted_indices)
        .dropout(enc.dropout, train);
    (enc_output, h, c)
}

/// The homework's `Decoder.forward` over `tgt` (B, T) from `(h, c)`, one step at a time.
fn decode_steps(
    net: &Seq2Seq,
    tgt: &Tensor,
    state: (Tensor, Tensor),
    encoder_outputs: &Tensor,
    src_lengths: &Tensor,
    train: bool,
) -> (Tensor, (Tensor, Tensor)) {
    let dec = &net.decoder;
    let (mut h, mut c) = state;
    if h.size()[0] == 2 {
        (h, c) = (reshape_state(&h), reshape_state(&c));
    }
    let embedded =
        Tensor::embedding(&dec.embedding, tgt, PAD, false, false).dropout(dec.dropout, train);
    let params: Vec<&Tensor> = dec.lstm.iter().collect();
    let mut outputs = Vec::new();
    for t in 0..tgt.size()[1] {
        let input_t = embedded.select(1, t).unsqueeze(1);
        let (mut output, h1, c1) =
            input_t.lstm(&[&h, &c], &params, true, 1, 0.0, train, false, true);
        (h, c) = (h1, c1);
        if let Some(attn) = &dec.attn {
            output = attend(attn, &output, encoder_outputs, src_lengths);
        }
        outputs.push(output.dropout(dec.dropout, train));
    }
    (Tensor::cat(&outputs, 1), (h, c))
}

/// `generator(output)`: the tied weight and the bias, through `F.linear`.
fn generate(net: &Seq2Seq, output: &Tensor) -> Tensor {
    output.linear(&net.decoder.embedding, Some(&net.generator_bias))
}

/// One training batch as the homework computes its loss: `model(src, src_lengths, tgt)`,
/// then `CrossEntropyLoss(ignore_index=PAD)` over `outputs.reshape(-1, V)` and
/// `tgt[:, 1:].reshape(-1)`. Backward is plain autograd.
pub fn loss(net: &Seq2Seq, batch: &Batch, train: bool) -> Tensor {
    let lengths = batch.src_lengths.shallow_clone();
    let (enc_out, h, c) = encode(net, &batch.src, &lengths, train);
    let t = batch.tgt.size()[1];
    let (output, _) = decode_steps(
        net,
        &batch.tgt.narrow(1, 0, t - 1),
        (h, c),
        &enc_out,
        &lengths,
        train,
    );
    let outputs = generate(net, &output);
    let v = outputs.size()[2];
    outputs.reshape([-1, v]).cross_entropy_loss::<Tensor>(
        &batch.tgt.narrow(1, 1, t - 1).reshape([-1]),
        None,
        tch::Reduction::Mean,
        PAD,
        0.0,
    )
}

/// The homework's `nucleus_sampling(logits, p)`, op for op; returns the token id.
fn nucleus(logits: &Tensor, p: f64) -> Tensor {
    let probabilities = logits.softmax(-1, logits.kind());
    let (sorted_probs, sorted_indices) = probabilities.sort(-1, true);
    let cumulative_probs = sorted_probs.cumsum(-1, sorted_probs.kind());
    let mask = cumulative_probs.le(p);
    let n = mask.size()[0];
    let shifted = mask.narrow(0, 0, n - 1).copy();
    mask.narrow(0, 1, n - 1).copy_(&shifted);
    let _ = mask.get(0).fill_(1);
    let filtered_probs = sorted_probs.masked_select(&mask);
    let filtered_indices = sorted_indices.masked_select(&mask);
    let filtered_probs = &filtered_probs / filtered_probs.sum(filtered_probs.kind());
    let next = filtered_probs.multinomial(1, false);
    filtered_indices.index_select(0, &next)
}

/// The homework's `generate(model, data_iter, max_len, p)`: one DataLoader draw, then each
/// word alone (batch of one), greedy (`p` = None) or nucleus sampling. Returns the spellings
/// as the homework prints them.
pub fn generate_words(
    net: &Seq2Seq,
    examples: &[Encoded],
    vocab: &Vocab,
    p: Option<f64>,
    max_len: usize,
    device: Device,
) -> Vec<String> {
    let _base_seed = torchkit::rng::loader_seed();
    tch::no_grad(|| {
        examples
            .iter()
            .map(|e| {
                let batch = Batch::new(&[e], device);
                let (enc_out, h, c) = encode(net, &batch.src, &batch.src_lengths, false);
                let mut state = (reshape_state(&h), reshape_state(&c));
                let mut prev = Tensor::from_slice(&[SOS]).view([1, 1]).to_device(device);
                let mut ids = vec![SOS];
                for _ in 0..max_len {
                    let (output, next_state) =
                        decode_steps(net, &prev, state, &enc_out, &batch.src_lengths, false);
                    state = next_state;
                    let logits = generate(net, &output.view([-1]));
                    let next = match p {
                        None => logits.argmax(-1, true),
                        Some(p) => nucleus(&logits, p),
                    };
                    let id = next.int64_value(&[0]);
                    ids.push(id);
                    prev = next.view([1, 1]);
                    if id == EOS {
                        break;
                    }
                }
                vocab.decode(&ids)
            })
            .collect()
    })
}

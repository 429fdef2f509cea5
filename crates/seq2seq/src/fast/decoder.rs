//! [`Decoder::forward`] for training and batched decoding. Training runs the teacher-forced
//! decoder over the scored positions only ([`teacher_forced_rows`]: the LSTM packed, with
//! the hand-written backward pass of [`crate::fast::lstm`], the attention of scored rows
//! only); decoding runs libtorch's LSTM over a whole batch one step at a time ([`step`]).

use tch::{Device, Kind, Tensor};

use crate::fast::attention::{attend, attend_rows, keys};
use crate::fast::lstm::{packed_lstm, Tape};
use crate::model::{Attention, Decoder};
use crate::vocab::PAD;
use torchkit::fast::dropout;

/// What the decoder needs from the encoder, prepared once per source batch.
#[derive(Debug)]
pub struct Memory {
    /// Encoder outputs (B, S, H).
    pub outputs: Tensor,
    /// `W_h` applied to them (Bahdanau), or the Hopfield head's stored patterns `W_k h`.
    pub keys: Option<Tensor>,
    /// The Hopfield head's values `W_v h`.
    pub values: Option<Tensor>,
    /// (B, S), true at real source positions.
    pub mask: Tensor,
}

impl Memory {
    /// The memory of the batch rows `rows` (int64 indices, possibly repeated).
    pub fn select(&self, rows: &Tensor) -> Memory {
        Memory {
            outputs: self.outputs.index_select(0, rows),
            keys: self.keys.as_ref().map(|k| k.index_select(0, rows)),
            values: self.values.as_ref().map(|v| v.index_select(0, rows)),
            mask: self.mask.index_select(0, rows),
        }
    }
}

/// Prepares the encoder side for attention.
pub fn memory(decoder: &Decoder, outputs: Tensor, mask: Tensor) -> Memory {
    let (keys, values) = match &decoder.attn {
        Some(Attention::Bahdanau(a)) => (Some(keys(a, &outputs)), None),
        Some(Attention::Hopfield(h)) => {
            let (k, v) = h.keys_values(&outputs);
            (Some(k), Some(v))
        }
        None => (None, None),
    };
    Memory {
        outputs,
        keys,
        values,
        mask,
    }
}

/// Runs the decoder over `tgt` (B, T) from `state` = (h, c), each (1, B, H). Returns the
/// outputs (B, T, H) and the new state (decoding feeds it one step at a time).
pub fn step(
    decoder: &Decoder,
    tgt: &Tensor,
    state: (&Tensor, &Tensor),
    memory: &Memory,
    train: bool,
) -> (Tensor, (Tensor, Tensor)) {
    let emb = embed(decoder, tgt, train);
    let (out, h, c) = emb.lstm(
        &[state.0, state.1],
        &decoder.lstm.iter().collect::<Vec<_>>(),
        true,
        1,
        0.0,
        train,
        false,
        true,
    );
    (attend_outputs(decoder, &out, memory, train), (h, c))
}

/// Teacher forcing over `input` (B, T), where `scored` (B, T) marks the positions whose
/// outputs the loss reads — a prefix of every row: the outputs there, (R, H) in
/// row-major order of `scored` (the order of `scored.reshape([-1]).nonzero()`; `scored`
/// is a prefix of every row): what the training loss needs. The LSTM runs packed — each
/// row for its scored steps only — through [`crate::fast::lstm::packed_lstm`], whose backward
/// pass is the returned [`Tape`] (run it after the loss's backward pass, before the
/// encoder's: it hands the initial state its gradient). The attention makes nothing for
/// other positions ([`attend_rows`]), and dropout draws for these rows only.
pub fn teacher_forced_rows(
    decoder: &Decoder,
    input: &Tensor,
    state: (&Tensor, &Tensor),
    memory: &Memory,
    scored: &Tensor,
    train: bool,
) -> (Tensor, Option<Tape>) {
    let emb = embed(decoder, input, train);
    let (b, t, h) = emb.size3().expect("(B, T, H)");
    let device = emb.device();
    let lengths = Vec::<i64>::try_from(
        scored
            .sum_dim_intlist(1, false, Kind::Int64)
            .to_device(Device::Cpu),
    )
    .expect("int64 lengths");
    let pack = Packing::new(&lengths, t);
    let ids = |v: &[i64]| Tensor::from_slice(v).to_device(device);
    let data = emb.reshape([-1, h]).index_select(0, &ids(&pack.gather));
    let order = ids(&pack.order);
    let init = |s: &Tensor| s.reshape([b, h]).index_select(0, &order);
    let lstm = packed_lstm(
        &data,
        &pack.batch_sizes,
        &decoder.lstm,
        (&init(state.0), &init(state.1)),
    );
    let query = lstm.output.index_select(0, &ids(&pack.rows));
    let batch = ids(&pack.batch);
    let out = match (&decoder.attn, &memory.keys, &memory.values) {
        (Some(Attention::Bahdanau(a)), Some(keys), _) => {
            let lengths = memory.mask.sum_dim_intlist(1, false, Kind::Int64);
            attend_rows(a, &query, &memory.outputs, keys, &batch, &lengths)
        }
        // The Hopfield head has no kernel of its own: its readable retrieval over the padded
        // (B, T) layout (a few small batched products), the scored rows taken back out.
        (Some(Attention::Hopfield(head)), Some(keys), Some(values)) => {
            let flat = scored.reshape([-1]).nonzero().squeeze_dim(1);
            let dense = Tensor::zeros([b * t, h], (query.kind(), device))
                .index_copy(0, &flat, &query)
                .view([b, t, h]);
            let (out, _) = head.retrieve(&dense, keys, values, &memory.mask);
            out.view([b * t, h]).index_select(0, &flat)
        }
        _ => query,
    };
    (dropout(&out, decoder.dropout, train), lstm.tape)
}

fn embed(decoder: &Decoder, tgt: &Tensor, train: bool) -> Tensor {
    dropout(
        &Tensor::embedding(&decoder.embedding, tgt, PAD, false, false),
        decoder.dropout,
        train,
    )
}

/// Attention (if any) on the LSTM outputs, then dropout.
fn attend_outputs(decoder: &Decoder, out: &Tensor, memory: &Memory, train: bool) -> Tensor {
    let out = match (&decoder.attn, &memory.keys, &memory.values) {
        (Some(Attention::Bahdanau(a)), Some(keys), _) => {
            attend(a, out, &memory.outputs, keys, &memory.mask, None).0
        }
        (Some(Attention::Hopfield(h)), Some(keys), Some(values)) => {
            h.retrieve(out, keys, values, &memory.mask).0
        }
        _ => out.shallow_clone(),
    };
    dropout(&out, decoder.dropout, train)
}

/// How a batch's scored prefixes are packed for [`packed_lstm`]: rows longest first.
struct Packing {
    /// Batch rows in packed order.
    order: Vec<i64>,
    /// Rows per step (non-increasing).
    batch_sizes: Vec<i64>,
    /// For every packed row, its flat (b·T + t) position in the batch.
    gather: Vec<i64>,
    /// For every scored position in row-major order, its packed row ...
    rows: Vec<i64>,
    /// ... and its batch row.
    batch: Vec<i64>,
}

impl Packing {
    fn new(lengths: &[i64], t: i64) -> Self {
        let mut order: Vec<i64> = (0..lengths.len() as i64).collect();
        order.sort_by_key(|&r| std::cmp::Reverse(lengths[r as usize]));
        let longest = order.first().map_or(0, |&r| lengths[r as usize]);
        let batch_sizes: Vec<i64> = (0..longest)
            .map(|s| lengths.iter().filter(|&&l| l > s).count() as i64)
            .collect();
        let mut offsets = Vec::with_capacity(batch_sizes.len());
        let mut gather = Vec::new();
        for (s, &n) in batch_sizes.iter().enumerate() {
            offsets.push(gather.len() as i64);
            gather.extend(order[..n as usize].iter().map(|&r| r * t + s as i64));
        }
        let mut place = vec![0i64; lengths.len()];
        for (j, &r) in order.iter().enumerate() {
            place[r as usize] = j as i64;
        }
        let (mut rows, mut batch) = (Vec::new(), Vec::new());
        for (r, &len) in lengths.iter().enumerate() {
            for s in 0..len {
                rows.push(offsets[s as usize] + place[r]);
                batch.push(r as i64);
            }
        }
        Self {
            order,
            batch_sizes,
            gather,
            rows,
            batch,
        }
    }
}

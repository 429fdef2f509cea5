//! [`Seq2Seq::loss`] for training: the encoder and the teacher-forced decoder of this
//! module's siblings, the generator at the scored positions only, and the backward pass in
//! three parts (autograd, then the decoder's and the encoder's hand-written LSTM passes).

use tch::Tensor;

use crate::batch::{source_mask, Batch};
use crate::fast::decoder::{memory, teacher_forced_rows, Memory};
use crate::fast::encoder::encode as encode_source;
use crate::fast::lstm::Tape;
use crate::loss::{Continuation, Loss};
use crate::model::{reshape_state, Seq2Seq};
use crate::vocab::PAD;

/// Encodes a source batch; returns the decoder memory and initial state (h, c), each
/// (1, B, H), and, when training with gradients, the encoder LSTM's backward pass.
pub fn encode(
    net: &Seq2Seq,
    src: &Tensor,
    lengths: &Tensor,
    train: bool,
) -> (Memory, (Tensor, Tensor), Option<Tape>) {
    let enc = encode_source(&net.encoder, src, lengths, train);
    let mask = source_mask(lengths, src.device());
    let state = (reshape_state(&enc.h), reshape_state(&enc.c));
    (memory(&net.decoder, enc.outputs, mask), state, enc.tape)
}

/// [`Seq2Seq::generator`] as one matrix product with the transposed embedding.
pub fn generate(net: &Seq2Seq, outputs: &Tensor) -> Tensor {
    outputs.matmul(&net.decoder.embedding.tr()) + &net.generator_bias
}

/// Mean cross-entropy of `tgt[:, 1:]` ignoring PAD, computed at the scored positions only.
pub fn loss(net: &Seq2Seq, batch: &Batch, train: bool) -> Loss {
    let (memory, (h, c), encoder_tape) = encode(net, &batch.src, &batch.src_lengths, train);
    let t = batch.tgt.size()[1];
    let (input, gold) = (batch.tgt.narrow(1, 0, t - 1), batch.tgt.narrow(1, 1, t - 1));
    let scored = gold.ne(PAD);
    let (out, decoder_tape) =
        teacher_forced_rows(&net.decoder, &input, (&h, &c), &memory, &scored, train);
    let logits = generate(net, &out);
    // The gold tokens in the rows' order (row-major over the scored positions).
    let gold = gold.masked_select(&scored);
    let value = logits.cross_entropy_loss::<Tensor>(&gold, None, tch::Reduction::Mean, PAD, 0.0);
    // The decoder's backward pass first: it delivers the encoder's final states theirs.
    let tapes = decoder_tape.into_iter().chain(encoder_tape);
    Loss::continued(
        value,
        tapes
            .map(|tape| Box::new(move || tape.backward()) as Continuation)
            .collect(),
    )
}

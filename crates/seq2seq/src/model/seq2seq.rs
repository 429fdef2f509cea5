//! `Seq2Seq` of the homework's `models.py`: the encoder, the decoder, and a generator whose
//! weight is the decoder embedding.

use tch::{nn, Tensor};

use super::decoder::Decoder;
use super::encoder::Encoder;
use super::ModelConfig;
use crate::batch::Batch;
use crate::vocab::PAD;

/// Encoder–decoder with a tied generator.
#[derive(Debug)]
pub struct Seq2Seq {
    /// The encoder.
    pub encoder: Encoder,
    /// The decoder.
    pub decoder: Decoder,
    /// `generator.bias`; `generator.weight` is `decoder.embedding.weight`.
    pub generator_bias: Tensor,
    /// The options it was built with.
    pub config: ModelConfig,
}

impl Seq2Seq {
    /// Creates every parameter under `root`, named and initialised as the homework's
    /// `Seq2Seq(Encoder(…), Decoder(…, attn=BahdanauAttention(…)))` — encoder, attention,
    /// decoder, generator, in that order of construction and so of random draws.
    pub fn new(root: &nn::Path, config: &ModelConfig) -> Self {
        let encoder = Encoder::new(
            &(root / "encoder"),
            config.src_vocab,
            config.hidden,
            config.dropout,
        );
        let decoder = Decoder::new(
            &(root / "decoder"),
            config.hidden,
            config.tgt_vocab,
            config.attention,
            config.hopfield.as_ref(),
            config.dropout,
        );
        // nn.Linear draws the generator's own weight before it is tied to the embedding.
        torchkit::layers::skip_linear_weight(config.hidden, config.tgt_vocab, root.device());
        let bound = 1.0 / (config.hidden as f64).sqrt();
        let generator_bias = (root / "generator").var(
            "bias",
            &[config.tgt_vocab],
            nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
        );
        Self {
            encoder,
            decoder,
            generator_bias,
            config: config.clone(),
        }
    }

    /// `self.generator(output)`: logits over the target vocabulary.
    pub fn generator(&self, output: &Tensor) -> Tensor {
        output.linear(&self.decoder.embedding, Some(&self.generator_bias))
    }

    /// The homework's `forward(src, src_lengths, tgt)`: encodes, decodes `tgt[:, :-1]` from
    /// the encoder's final state, returns the logits (B, T−1, V) and the decoder's state.
    pub fn forward(
        &self,
        src: &Tensor,
        src_lengths: &Tensor,
        tgt: &Tensor,
        train: bool,
    ) -> (Tensor, (Tensor, Tensor)) {
        let (encoder_outputs, final_enc_state) = self.encoder.forward(src, src_lengths, train);
        let t = tgt.size()[1];
        let (output, dec_hidden) = self.decoder.forward(
            &tgt.narrow(1, 0, t - 1),
            final_enc_state,
            &encoder_outputs,
            src_lengths,
            train,
        );
        (self.generator(&output), dec_hidden)
    }

    /// The training loop's loss: `criterion(outputs.reshape(-1, V), tgt[:, 1:].reshape(-1))`
    /// with `CrossEntropyLoss(ignore_index=PAD)`.
    pub fn loss(&self, batch: &Batch, train: bool) -> Tensor {
        let (outputs, _) = self.forward(&batch.src, &batch.src_lengths, &batch.tgt, train);
        let t = batch.tgt.size()[1];
        outputs
            .reshape([-1, self.config.tgt_vocab])
            .cross_entropy_loss::<Tensor>(
                &batch.tgt.narrow(1, 1, t - 1).reshape([-1]),
                None,
                tch::Reduction::Mean,
                PAD,
                0.0,
            )
    }
}

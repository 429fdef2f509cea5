//! The whole network: encoder, state bridge, decoder and the tied generator.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use tch::{nn, Device, Tensor};

use crate::batch::{source_mask, Batch, Vocabs};
use crate::decoder::{Decoder, Memory};
use crate::encoder::{bridge, Encoder};
use crate::lstm::Tape;
use crate::vocab::PAD;

/// Sizes and options of the model.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ModelConfig {
    /// Source vocabulary size (107 on the homework data).
    pub src_vocab: i64,
    /// Target vocabulary size (93).
    pub tgt_vocab: i64,
    /// Hidden size H (128): embeddings, decoder LSTM; the encoder uses H/2 per direction.
    pub hidden: i64,
    /// Dropout on embeddings and outputs (0.3).
    pub dropout: f64,
    /// Bahdanau attention on the decoder outputs.
    pub attention: bool,
}

impl ModelConfig {
    /// Trainable parameters of the model this configuration builds (the tied generator
    /// weight counted once), without building it: to refuse a size that cannot fit before
    /// allocating it. Saturates instead of overflowing.
    pub fn parameters(&self) -> i64 {
        let (h, half) = (self.hidden, self.hidden / 2);
        let m = |a: i64, b: i64| a.saturating_mul(b);
        // Each LSTM direction: W_ih, W_hh and two biases.
        let lstm = |input: i64, units: i64| {
            m(4 * units, input)
                .saturating_add(m(4 * units, units))
                .saturating_add(8 * units)
        };
        let encoder = m(self.src_vocab, h).saturating_add(m(2, lstm(h, half)));
        let decoder = m(self.tgt_vocab, h).saturating_add(lstm(h, h));
        // W_s, W_h (H×H), W_out (H×2H) and v.
        let attention = if self.attention {
            m(4, m(h, h)).saturating_add(h)
        } else {
            0
        };
        encoder
            .saturating_add(decoder)
            .saturating_add(attention)
            .saturating_add(self.tgt_vocab)
    }
}

/// The names PyTorch stores the tied generator weight under.
pub const TIED: &[torchkit::checkpoint::Alias<'static>] =
    &[("generator.weight", "decoder.embedding.weight")];

/// Encoder–decoder with a generator whose weight is the decoder embedding.
#[derive(Debug)]
pub struct Seq2Seq {
    /// The encoder.
    pub encoder: Encoder,
    /// The decoder.
    pub decoder: Decoder,
    pub(crate) generator_bias: Tensor,
    /// The options it was built with.
    pub config: ModelConfig,
}

impl Seq2Seq {
    /// Creates every parameter under `root`, named and initialised as the PyTorch homework's
    /// `Seq2Seq` (encoder, attention, decoder, generator — in that order of construction).
    pub fn new(root: &nn::Path, config: &ModelConfig) -> Self {
        let encoder = Encoder::new(
            &(root / "encoder"),
            config.src_vocab,
            config.hidden,
            config.dropout,
        );
        let decoder = Decoder::new(
            &(root / "decoder"),
            config.tgt_vocab,
            config.hidden,
            config.dropout,
            config.attention,
        );
        // PyTorch draws the generator's own weight before tying it to the embedding.
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

    /// Logits over the target vocabulary for decoder outputs (…, H).
    pub fn generate(&self, outputs: &Tensor) -> Tensor {
        outputs.matmul(&self.decoder.embedding.tr()) + &self.generator_bias
    }

    /// Encodes a source batch; returns the decoder memory and initial state (h, c), and,
    /// when training with gradients, the encoder LSTM's backward pass.
    pub fn encode(
        &self,
        src: &Tensor,
        lengths: &Tensor,
        train: bool,
    ) -> (Memory, (Tensor, Tensor), Option<Tape>) {
        let enc = self.encoder.forward_t(src, lengths, train);
        let mask = source_mask(lengths, src.device());
        let state = (bridge(&enc.h), bridge(&enc.c));
        (self.decoder.memory(enc.outputs, mask), state, enc.tape)
    }

    /// Mean cross-entropy of `tgt[:, 1:]` given the logits, ignoring PAD (the generator runs
    /// at the scored positions only).
    pub fn loss(&self, batch: &Batch, train: bool) -> Loss {
        let (memory, (h, c), tape) = self.encode(&batch.src, &batch.src_lengths, train);
        let (input, gold) = shifted(&batch.tgt);
        let scored = gold.ne(PAD);
        let (out, decoder_tape) =
            self.decoder
                .teacher_forced_rows(&input, (&h, &c), &memory, &scored, train);
        let logits = self.generate(&out);
        // The gold tokens in the rows' order (row-major over the scored positions).
        let gold = gold.masked_select(&scored);
        let value =
            logits.cross_entropy_loss::<Tensor>(&gold, None, tch::Reduction::Mean, PAD, 0.0);
        // The decoder's backward pass first: it delivers the encoder's final states theirs.
        Loss {
            value,
            tapes: decoder_tape.into_iter().chain(tape).collect(),
        }
    }
}

/// Teacher forcing's decoder input `tgt[:, :-1]` and gold tokens `tgt[:, 1:]`.
fn shifted(tgt: &Tensor) -> (Tensor, Tensor) {
    let t = tgt.size()[1];
    (tgt.narrow(1, 0, t - 1), tgt.narrow(1, 1, t - 1))
}

/// A training loss and its backward pass, which has three parts: autograd, then the decoder
/// LSTM's hand-written one (which needs the gradients autograd left on its outputs, and
/// gives the encoder's final states theirs), then the encoder LSTM's.
#[derive(Debug)]
pub struct Loss {
    /// The scalar loss.
    pub value: Tensor,
    tapes: Vec<Tape>,
}

impl Loss {
    /// Accumulates the gradient of the loss into every parameter's `.grad`.
    pub fn backward(self) {
        self.value.backward();
        for tape in self.tapes {
            tape.backward();
        }
    }
}

/// A model with its VarStore, for loading, saving and counting.
#[derive(Debug)]
pub struct Model {
    /// The parameters.
    pub vs: nn::VarStore,
    /// The network.
    pub net: Seq2Seq,
    /// The vocabularies its ids mean: saved with its checkpoints, and checked against a
    /// checkpoint's when one is loaded.
    pub vocabs: Option<Vocabs>,
}

/// Checkpoint metadata keys.
const META_MODEL: &str = "p2g.model";
const META_SRC: &str = "p2g.src_vocab";
const META_TGT: &str = "p2g.tgt_vocab";

impl Model {
    /// Creates a freshly initialised model on `device`, drawn on the CPU from libtorch's
    /// generator and moved, as the homework does.
    pub fn new(config: &ModelConfig, device: Device) -> Self {
        let (vs, net) = torchkit::layers::on_cpu_then_to(device, |root| Seq2Seq::new(root, config));
        Self {
            vs,
            net,
            vocabs: None,
        }
    }

    /// The model for these vocabularies (see [`Model::vocabs`]).
    pub fn with_vocabs(mut self, vocabs: &Vocabs) -> Self {
        self.vocabs = Some(vocabs.clone());
        self
    }

    /// Trainable parameters (the tied generator weight counted once).
    pub fn parameters(&self) -> i64 {
        torchkit::layers::trainable_parameters(&self.vs)
    }

    /// Saves a safetensors checkpoint with PyTorch's state_dict names (atomic), carrying
    /// the model options and the vocabularies.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut meta = torchkit::checkpoint::Metadata::new();
        meta.insert(META_MODEL.into(), serde_json::to_string(&self.net.config)?);
        if let Some(v) = &self.vocabs {
            meta.insert(META_SRC.into(), serde_json::to_string(v.src.tokens())?);
            meta.insert(META_TGT.into(), serde_json::to_string(v.tgt.tokens())?);
        }
        torchkit::checkpoint::save_with(&self.vs, TIED, &meta, path)
    }

    /// Loads a checkpoint: safetensors saved by [`Model::save`], or the `.pt` file the
    /// homework's `torch.save(model.state_dict(), …)` writes. A checkpoint whose
    /// vocabularies differ from the model's is refused: its ids would mean other symbols.
    /// One without (the homework's files) loads with a warning.
    pub fn load(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        torchkit::checkpoint::load(&mut self.vs, TIED, path)?;
        let Some(vocabs) = &self.vocabs else {
            return Ok(());
        };
        let meta = torchkit::checkpoint::metadata(path)?;
        for (key, side, vocab) in [
            (META_SRC, "source", &vocabs.src),
            (META_TGT, "target", &vocabs.tgt),
        ] {
            let Some(text) = meta.get(key) else {
                eprintln!(
                    "note: {} carries no vocabulary (a PyTorch file or an older checkpoint); assuming it was trained on this data's",
                    path.display()
                );
                return Ok(());
            };
            let saved: Vec<String> = serde_json::from_str(text)
                .with_context(|| format!("{}: unreadable {key}", path.display()))?;
            if saved != vocab.tokens() {
                let at = saved
                    .iter()
                    .zip(vocab.tokens())
                    .position(|(a, b)| a != b)
                    .unwrap_or(saved.len().min(vocab.len()));
                anyhow::bail!(
                    "{} was trained with another {side} vocabulary than this data's (id {at}: {:?} there, {:?} here; {} vs {} entries): its ids would mean other symbols",
                    path.display(),
                    saved.get(at),
                    vocab.tokens().get(at),
                    saved.len(),
                    vocab.len()
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(attention: bool) -> ModelConfig {
        ModelConfig {
            src_vocab: 107,
            tgt_vocab: 93,
            hidden: 128,
            dropout: 0.3,
            attention,
        }
    }

    #[test]
    fn parameter_counts_match_the_homework() {
        assert_eq!(
            Model::new(&config(false), Device::Cpu).parameters(),
            257_117
        );
        assert_eq!(Model::new(&config(true), Device::Cpu).parameters(), 322_781);
        // The count without building, for every shape.
        for attention in [false, true] {
            for hidden in [2, 8, 128] {
                let c = ModelConfig {
                    hidden,
                    src_vocab: 11,
                    ..config(attention)
                };
                assert_eq!(c.parameters(), Model::new(&c, Device::Cpu).parameters());
            }
        }
    }

    #[test]
    fn names_and_shapes_are_pytorch_state_dict() {
        let m = Model::new(&config(true), Device::Cpu);
        let vars = m.vs.variables();
        let shape = |n: &str| vars.get(n).unwrap_or_else(|| panic!("missing {n}")).size();
        assert_eq!(shape("encoder.embedding.weight"), [107, 128]);
        assert_eq!(shape("encoder.lstm.weight_ih_l0_reverse"), [256, 128]);
        assert_eq!(shape("encoder.lstm.weight_hh_l0"), [256, 64]);
        assert_eq!(shape("decoder.lstm.weight_ih_l0"), [512, 128]);
        assert_eq!(shape("decoder.attn.v.weight"), [1, 128]);
        assert_eq!(shape("decoder.attn.W_out.weight"), [128, 256]);
        assert_eq!(shape("generator.bias"), [93]);
        assert_eq!(
            vars.len(),
            19,
            "generator.weight is tied, not a variable of its own"
        );
    }
}

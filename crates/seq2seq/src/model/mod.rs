//! The homework's `models.py`, class for class: [`BahdanauAttention`], [`Encoder`],
//! [`Decoder`] and [`Seq2Seq`], under autograd with libtorch's own ops, built in the
//! homework's order of construction (and so of random draws). This is the model `--exact`
//! trains; the fast backend ([`crate::fast`]) computes the same functions of the same
//! parameters with other kernels. [`Model`] adds the VarStore, the vocabularies and the
//! checkpoints.

mod attention;
mod decoder;
mod encoder;
mod head;
mod hopfield;
mod seq2seq;

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use tch::{nn, Device};

pub use attention::{sequence_mask, BahdanauAttention};
pub use decoder::{reshape_state, Decoder};
pub use encoder::Encoder;
pub use head::Attention;
pub use hopfield::{HopfieldAttention, HopfieldConfig};
pub use seq2seq::Seq2Seq;

use crate::batch::Vocabs;

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
    /// Attention on the decoder outputs: Bahdanau's, or ...
    pub attention: bool,
    /// ... with this, a Hopfield layer ([`HopfieldAttention`]).
    pub hopfield: Option<HopfieldConfig>,
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
        // Bahdanau: W_s, W_h (H×H), W_out (H×2H) and v; Hopfield: W_q, W_k, W_v, W_out
        // (and β).
        let attention = match (self.attention, &self.hopfield) {
            (false, _) => 0,
            (true, None) => m(4, m(h, h)).saturating_add(h),
            (true, Some(c)) => m(5, m(h, h)).saturating_add(i64::from(c.learn_beta)),
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
        if let Err(e) = torchkit::checkpoint::load(&mut self.vs, TIED, path) {
            // Our checkpoints say what model they hold: name it beside this one.
            let saved = torchkit::checkpoint::metadata(path)
                .ok()
                .and_then(|m| m.get(META_MODEL).cloned());
            let ours = serde_json::to_string(&self.net.config)?;
            return Err(match saved {
                Some(saved) if saved != ours => e.context(format!(
                    "{} holds a model of other options ({saved}) than the one built here ({ours}): pass the options it was trained with (--use-attn, --attn hopfield, --hopfield-steps, --hidden-size …)",
                    path.display()
                )),
                _ => e,
            });
        }
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
            hopfield: None,
        }
    }

    fn hopfield(steps: usize, learn_beta: bool) -> ModelConfig {
        ModelConfig {
            hopfield: Some(HopfieldConfig { steps, learn_beta }),
            ..config(true)
        }
    }

    #[test]
    fn parameter_counts_match_the_homework() {
        assert_eq!(
            Model::new(&config(false), Device::Cpu).parameters(),
            257_117
        );
        assert_eq!(Model::new(&config(true), Device::Cpu).parameters(), 322_781);
        // The Hopfield head: W_q, W_k, W_v (H×H) and W_out (H×2H) in place of Bahdanau's
        // W_h, W_s, W_out and v; β one more when learned.
        assert_eq!(
            Model::new(&hopfield(1, false), Device::Cpu).parameters(),
            322_781 - 128 + 128 * 128
        );
        assert_eq!(
            Model::new(&hopfield(3, true), Device::Cpu).parameters(),
            322_781 - 128 + 128 * 128 + 1
        );
        // The count without building, for every shape.
        for c in [
            config(false),
            config(true),
            hopfield(1, false),
            hopfield(2, true),
        ] {
            for hidden in [2, 8, 128] {
                let c = ModelConfig {
                    hidden,
                    src_vocab: 11,
                    ..c.clone()
                };
                assert_eq!(c.parameters(), Model::new(&c, Device::Cpu).parameters());
            }
        }
    }

    #[test]
    fn a_checkpoint_of_another_head_is_refused_naming_both_models() {
        let dir = std::env::temp_dir().join(format!("p2g-heads-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("h.safetensors");
        Model::new(&hopfield(2, false), Device::Cpu)
            .save(&path)
            .unwrap();
        let err = Model::new(&config(true), Device::Cpu)
            .load(&path)
            .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("\"steps\":2") && msg.contains("\"hopfield\":null"),
            "{msg}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_hopfield_head_has_pytorch_names() {
        let m = Model::new(&hopfield(1, true), Device::Cpu);
        let vars = m.vs.variables();
        for name in ["W_q", "W_k", "W_v"] {
            assert_eq!(
                vars[&format!("decoder.attn.{name}.weight")].size(),
                [128, 128]
            );
        }
        assert_eq!(vars["decoder.attn.W_out.weight"].size(), [128, 256]);
        assert_eq!(vars["decoder.attn.beta"].size(), Vec::<i64>::new());
        assert!((vars["decoder.attn.beta"].double_value(&[]) - 1.0 / 128f64.sqrt()).abs() < 1e-7);
        assert!(!vars.contains_key("decoder.attn.v.weight"));
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

//! Which code computes the model: the readable model itself ([`Kernels::Reference`],
//! what `--exact` runs: the homework's ops and draws) or the fast backend
//! ([`Kernels::Fast`], [`crate::fast`]). Chosen once, when a run starts, from `--exact`;
//! training, validation and the stage ask it, never the flag.

use anyhow::Result;
use tch::nn::VarStore;
use tch::Device;
use torchkit::optim::Adam;

use crate::batch::{Batch, Encoded};
use crate::decode::Strategy;
use crate::evaluate::predict;
use crate::generate::generate;
use crate::loss::Loss;
use crate::model::Seq2Seq;
use crate::vocab::Vocab;

/// The kernels a run computes the model with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// The readable model under autograd: the homework's ops in the homework's order, its
    /// dropout draws, Adam op by op, words decoded one at a time. Same seed, data and
    /// thread count: the homework's printed digits.
    Reference,
    /// The fast backend: packed LSTMs with hand-written backward passes, the attention of
    /// real pairs only, fast dropout, one-pass Adam, batched decoding and beam search.
    Fast,
}

impl Kernels {
    /// `--exact` runs the reference, anything else the fast backend.
    pub fn for_run(exact: bool) -> Self {
        if exact {
            Self::Reference
        } else {
            Self::Fast
        }
    }

    /// Whether training keeps one thread count throughout (the reference's digits depend on
    /// it; the fast kernels may take the cores other trainings free).
    pub fn fixed_threads(self) -> bool {
        self == Self::Reference
    }

    /// What runs, in a line, for the log.
    pub fn describe(self, device: Device) -> String {
        match self {
            Self::Reference => "reference kernels (the homework's ops and draws)".into(),
            Self::Fast if device == Device::Cpu => {
                "fast kernels (fused LSTM cell and additive attention, float32 CPU)".into()
            }
            Self::Fast => format!(
                "fast kernels (packed LSTM and batched decoding; the LSTM cell and the additive attention as libtorch ops on {device:?})"
            ),
        }
    }

    /// The homework's Adam (no weight decay), its update op by op or in one pass.
    pub fn adam(self, vs: &VarStore, lr: f64) -> Adam {
        match self {
            Self::Reference => Adam::new(vs, lr, 0.0),
            Self::Fast => Adam::one_pass(vs, lr, 0.0),
        }
    }

    /// The training loss of `batch`, with its backward pass.
    pub fn loss(self, net: &Seq2Seq, batch: &Batch, train: bool) -> Loss {
        match self {
            Self::Reference => Loss::autograd(net.loss(batch, train)),
            Self::Fast => crate::fast::loss::loss(net, batch, train),
        }
    }

    /// Decodes a split as the homework's `generate` over a `DataLoader` does: one draw of
    /// the loader from the global generator, then every example in order (the fast backend
    /// `rows` decoder rows at a time). Returns the spellings as the homework prints them.
    /// Beam search has no reference form: the homework has none.
    #[allow(clippy::too_many_arguments)]
    pub fn predict(
        self,
        net: &Seq2Seq,
        examples: &[Encoded],
        vocab: &Vocab,
        strategy: Strategy,
        max_len: usize,
        rows: usize,
        device: Device,
    ) -> Result<Vec<String>> {
        let _loader = torchkit::rng::loader_seed();
        Ok(match (self, strategy) {
            (Self::Reference, Strategy::Greedy) => generate(net, examples, vocab, None, max_len, device),
            (Self::Reference, Strategy::Nucleus { p }) => {
                generate(net, examples, vocab, Some(p), max_len, device)
            }
            (Self::Reference, Strategy::Beam { .. }) => anyhow::bail!(
                "beam search has no --exact form: the homework's code has none; drop --exact or --beam"
            ),
            (Self::Fast, _) => predict(net, examples, vocab, strategy, max_len, rows, device),
        })
    }
}

//! Q3 of the homework: phoneme-to-grapheme conversion with a character-level seq2seq model.
//!
//! * [`data`]: the TSV files; [`vocab`]: vocabularies in first-occurrence order;
//!   [`batch`]: encoded, padded batches.
//! * [`model`]: the homework's `models.py` class for class (`Encoder`, `BahdanauAttention`,
//!   `Decoder`, `Seq2Seq`), with PyTorch's parameter names, shapes and initialisation
//!   (257,117 / 322,781 parameters); [`generate`]: its word-by-word decoding.
//! * [`kernels`]: which code computes the model, chosen once — the readable model
//!   (`--exact`) or [`fast`], the same functions with faster kernels, each beside its twin.
//! * [`decode`]: batched greedy, nucleus (top-p) and beam search decoding (fast backend).
//! * [`train`]: the homework's training loop; [`evaluate`]: CER / WER / WER@k.
//! * [`stage`]: the report's Q3 stage — (a) no attention, (b) attention, (c) nucleus, beam.
//! * [`synthetic`]: a generated corpus in the same format, for `--quick` runs.

pub mod alignment;
pub mod batch;
pub mod config;
pub mod corpus;
pub mod data;
pub mod decode;
pub mod evaluate;
pub mod fast;
pub mod generate;
pub mod kernels;
pub mod loss;
pub mod model;
pub mod options;
pub mod outcome;
pub mod retrieval;
pub mod stage;
pub mod synthetic;
pub mod train;
pub mod vocab;

//! Q3 of the homework: phoneme-to-grapheme conversion with a character-level seq2seq model.
//!
//! * [`data`]: the TSV files; [`vocab`]: vocabularies in first-occurrence order;
//!   [`batch`]: encoded, padded batches.
//! * [`encoder`] (its packed BiLSTM with a hand-written backward pass in [`lstm`], whose
//!   element-wise step is [`cell`]),
//!   [`attention`], [`decoder`], [`model`]: the network, with PyTorch's
//!   parameter names, shapes and initialisation (257,117 / 322,781 parameters).
//! * [`decode`]: batched greedy, nucleus (top-p) and beam search decoding.
//! * [`train`]: the homework's training loop; [`evaluate`]: CER / WER / WER@k.
//! * [`stage`]: the report's Q3 stage — (a) no attention, (b) attention, (c) nucleus, beam.
//! * [`synthetic`]: a generated corpus in the same format, for `--quick` runs.

pub mod additive;
pub mod attention;
pub mod batch;
pub mod cell;
pub mod config;
pub mod corpus;
pub mod data;
pub mod decode;
pub mod decoder;
pub mod encoder;
pub mod evaluate;
pub mod exact;
pub mod lstm;
pub mod model;
pub mod options;
pub mod outcome;
pub mod stage;
pub mod synthetic;
pub mod train;
pub mod vocab;

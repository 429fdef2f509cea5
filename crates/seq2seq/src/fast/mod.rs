//! The fast backend: the same functions of the same parameters as the readable model
//! ([`crate::model`]), computed with other kernels. Each piece names its reference twin and
//! has one equivalence test (values and gradients):
//!
//! | piece | what it does faster | reference twin | equivalence test |
//! |---|---|---|---|
//! | [`lstm`] (`packed_bilstm`, `packed_lstm`), [`cell`] | packed LSTM forward without autograd, hand-written backward; the element-wise step as one vector loop | `Tensor::lstm_data` | `lstm::tests::matches_libtorch_packed_lstm_forward_and_backward` (≤ 1e-5) |
//! | [`additive`] (`additive_scores`, `attention_context`, `additive.cpp`) | additive scores and context of real pairs as one node | `additive_scores_slow`, `attention_context_slow` | `additive::tests::*_equals_its_slow_twin_*` (≤ 1e-5) |
//! | [`encoder::encode`] | packing by one row gather, `packed_bilstm`, unpacking by one `index_copy` | [`Encoder::forward`](crate::model::Encoder::forward) | `tests/backends.rs` |
//! | [`decoder::teacher_forced_rows`], [`attention::attend_rows`] | the decoder over scored positions only, packed | [`Decoder::forward`](crate::model::Decoder::forward) | `tests/backends.rs` |
//! | [`loss::loss`] | generator at scored positions only; three-part backward | [`Seq2Seq::loss`](crate::model::Seq2Seq::loss) | `tests/backends.rs` (loss ≤ 1e-5, gradients ≤ 1e-4 relative) |
//! | [`decoder::step`], [`crate::decode`] | a whole batch decoded at once, finished rows leaving it | [`crate::generate`] (one word at a time) | `tests/backends.rs` (same greedy words) |
//! | `torchkit::fast::dropout`, `torchkit::fast::adam` (`Adam::one_pass`) | dropout and Adam in one pass | `torchkit::rng::dropout`, `torchkit::optim::adam::update_slow` | in `torchkit` |
//!
//! The LSTM cell loop and the additive node are float32 CPU code; on other devices these
//! pieces run their twins' libtorch ops, as [`crate::kernels::Kernels::describe`] says.

pub mod additive;
pub mod attention;
pub mod cell;
pub mod decoder;
pub mod encoder;
pub mod loss;
pub mod lstm;

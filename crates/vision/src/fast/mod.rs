//! The fast backend's pieces: the same functions of the same parameters as the skeleton's
//! ops ([`crate::model`] run by [`crate::kernels::Kernels::Reference`]), computed with
//! other kernels. [`crate::kernels::Backend`] chooses each once, where it applies; each
//! names its reference twin and has one equivalence test (values and gradients):
//!
//! | piece | what it does faster | reference twin | equivalence test |
//! |---|---|---|---|
//! | [`norm_pool`] (`norm_pool.cpp`) | a block's bias, batch norm, max-pool, ReLU and dropout mask as one node over channels-last memory | [`crate::kernels::block_tail_slow`] | `norm_pool::tests::fused_node_computes_the_ops_function` (2.1 bit for bit; with batch norm ≤ 1e-5) |
//! | [`linear::linear`] (`linear.cpp`) | a few rows' product the way round MKL is fast | [`linear::linear_slow`] (`nn::Linear`) | `linear::tests::linear_equals_its_slow_twin_in_values_and_gradients` (≤ 1e-5) |
//! | [`linear::sgd_linear`] | SGD's step for a large weight inside the backward node, its gradient never written | [`linear::linear_slow`], then libtorch's SGD | `linear::tests::sgd_linear_is_its_twin_then_libtorchs_sgd_step` (≤ 1e-6); `step::tests::the_fast_sgd_step_is_libtorchs_sgd_step` (model 2.1, ≤ 1e-5) |
//! | `torchkit::fast::dropout`, `torchkit::fast::adam` | dropout and Adam in one pass | `torchkit::rng::dropout`, `torchkit::optim::adam::update_slow` | in `torchkit` |
//!
//! Channels-last memory is not a kernel but a layout (`Backend::input`, `place_weight`):
//! libtorch's convolutions follow it. `crate::model::tests::every_backend_computes_the_same_function`
//! checks every combination on one model.

pub mod linear;
pub mod norm_pool;

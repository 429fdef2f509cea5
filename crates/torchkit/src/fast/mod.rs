//! The fast pieces both model crates use, each beside its reference twin:
//!
//! | piece | what it does faster | reference twin | equivalence test |
//! |---|---|---|---|
//! | [`adam::update`] | Adam's update in one vectorised pass per parameter | [`crate::optim::adam::update_slow`] (PyTorch's ops) | `optim::adam::tests::one_pass_update_is_the_tensor_ops_update` (≤ 1e-5 over 50 steps) |
//! | [`dropout()`], [`dropout_noise`] | dropout masks from four xoshiro streams seeded by one draw | [`crate::rng::dropout`] (PyTorch's draws) | `tests/generator.rs` (distribution, seeding, layouts) |

pub mod adam;
pub mod dropout;

pub use dropout::{dropout, dropout_noise};

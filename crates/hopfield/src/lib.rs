//! Q1 of the homework: modern Hopfield networks, numerically.
//!
//! * [`energy`]: log-sum-exp, the energy `E = E1 + E2` and its convex/concave parts.
//! * [`Memory`]: stored patterns `X` (N×D) with inverse temperature β — gradients,
//!   Hessians, the CCCP update and its iteration ([`Trajectory`]).
//! * [`attention`]: the batched update as cross-attention, `softmax(β Q Xᵀ) X`.
//! * [`tensor`]: the same update on libtorch tensors under autograd, masked, for layers.
//! * [`classic`]: the binary Hopfield network `q ← sign(W q)` for contrast.
//! * [`verify`]: independent checks against libtorch autograd, LAPACK and attention.
//! * [`retrieval`]: the retrieval experiments of Ramsauer et al. (2020).
//!
//! ```
//! use ndarray::array;
//! let x = array![[1.0, 0.0], [0.0, 1.0]];
//! let memory = hopfield::Memory::new(x, 8.0);
//! let q = array![0.9, 0.2];
//! let traj = memory.iterate(&q, 1e-12, 100);
//! assert!(traj.energies.windows(2).all(|e| e[1] <= e[0] + 1e-12));
//! assert!((traj.states.last().unwrap()[0] - 1.0).abs() < 0.01); // retrieved x₁
//! ```

pub mod attention;
pub mod classic;
pub mod energy;
mod memory;
mod pipeline;
pub mod retrieval;
pub mod tensor;
pub mod verify;

pub use memory::{Memory, Trajectory};
pub use pipeline::{run_q1, Q1Config, Q1Summary};

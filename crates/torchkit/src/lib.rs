//! Shared pieces of the libtorch model crates (`seq2seq`, `vision`).
//!
//! * [`rng`]: one place where all randomness comes from — libtorch's global generator,
//!   seeded like `torch.manual_seed`, so runs can later be aligned with PyTorch draw by draw.
//! * [`layers`]: layers whose parameters are created and initialised exactly as PyTorch's modules do.
//! * [`device`]: `auto | cpu | cuda` on the command line.
//! * [`checkpoint`]: safetensors checkpoints with PyTorch state_dict names, written atomically;
//!   PyTorch's own `.pt` state_dicts load too ([`pytorch`]).
//! * [`runlog`]: per-epoch CSV logs and progress bars.
//! * [`optim`]: the optimisers behind one interface (`zero_grad`, `step`, a saveable state):
//!   Adam with PyTorch's update rule, libtorch's SGD.
//! * [`fast`]: one-pass Adam and dropout, each beside its reference twin.
//! * [`trainer`]: the epoch loop every model crate runs — locked, kill-safe, exactly
//!   resumable, divergence-checked; the model crate brings a [`trainer::Learner`].
//! * [`jobs`]: independent trainings as child processes, a few at a time.
//! * [`options`]: command-line value checks shared by the binaries.
//! * [`shim`]: calling the C entry points of the C++ kernels (`kernel_shim.h`'s other side).

pub mod checkpoint;
pub mod device;
pub mod fast;
pub mod jobs;
pub mod layers;
pub mod optim;
pub mod options;
pub mod pytorch;
pub mod rng;
pub mod runlog;
pub mod shim;
pub mod trainer;

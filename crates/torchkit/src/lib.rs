//! Shared pieces of the libtorch model crates (`seq2seq`, `vision`).
//!
//! * [`rng`]: one place where all randomness comes from — libtorch's global generator,
//!   seeded like `torch.manual_seed`, so runs can later be aligned with PyTorch draw by draw.
//! * [`init`]: parameters created and initialised exactly as PyTorch's modules do.
//! * [`device`]: `auto | cpu | cuda` on the command line.
//! * [`checkpoint`]: safetensors checkpoints with PyTorch state_dict names, written atomically;
//!   PyTorch's own `.pt` state_dicts load too ([`pytorch`]).
//! * [`runlog`]: per-epoch CSV logs and progress bars.
//! * [`optim`]: Adam with PyTorch's update rule and a state that can be saved.
//! * [`resume`]: per-epoch resume points, so an interrupted run continues where it stopped.
//! * [`jobs`]: independent trainings as child processes, a few at a time.

pub mod checkpoint;
pub mod device;
pub mod init;
pub mod jobs;
pub mod optim;
pub mod pytorch;
pub mod resume;
pub mod rng;
pub mod runlog;

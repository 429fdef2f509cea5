//! Q2 of the homework: CNN image classification on 48×48 RGB images, 6 classes.
//!
//! * [`npz`]: a reader for NumPy's uncompressed `.npz` (zip of `.npy`) files.
//! * [`npy`]: the `.npy` header, read strictly (the files come from outside).
//! * [`dataset`]: the homework's splits with the skeleton's preprocessing.
//! * [`model`]: `ConvBlock`s and the two heads — 5,340,742 (2.1) and 755,718 (2.2) parameters.
//! * [`kernels`]: the backend chosen once per model — the reference ops (`--exact`) or the
//!   fast ones — and the training's optimiser.
//! * [`fast`]: the fast backend's pieces, each beside its reference twin.
//! * [`step`]: the skeleton's `train_batch`.
//! * [`train`]: SGD/Adam training with the homework's logged figures.
//! * [`stage`]: the report's Q2 stage — the 2.1 learning-rate sweep, then 2.2.
//! * [`synthetic`]: a generated image set in the same layout, for `--quick` runs.

pub mod config;
pub mod dataset;
pub mod evaluate;
pub mod fast;
pub mod kernels;
pub mod model;
pub mod npy;
pub mod npz;
pub mod options;
pub mod stage;
pub mod step;
pub mod synthetic;
pub mod train;

//! Q1's summary: the numerical checks of the Hopfield maths and the retrieval experiments,
//! with the sizes that produced them.

use serde::{Deserialize, Serialize};

/// Sizes of the Q1 stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Q1Config {
    /// Seed for every random draw.
    pub seed: u64,
    /// The numerical checks.
    pub checks: CheckConfig,
    /// Queries per point of each retrieval experiment.
    pub queries: usize,
    /// Largest memory in the capacity experiment (powers of two from 2).
    pub max_patterns: usize,
}

impl Q1Config {
    /// The full stage (about ten seconds in release mode on two cores).
    pub fn full(seed: u64) -> Self {
        Self {
            seed,
            checks: CheckConfig {
                seed,
                ..CheckConfig::default()
            },
            queries: 200,
            max_patterns: 4096,
        }
    }

    /// A reduced stage for tests and `--quick`.
    pub fn quick(seed: u64) -> Self {
        Self {
            seed,
            checks: CheckConfig {
                seed,
                derivative_trials: 10,
                cccp_trials: 100,
                cccp_steps: 20,
            },
            queries: 30,
            max_patterns: 512,
        }
    }
}

/// How many random problems to check, and the seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckConfig {
    /// Seed of the Rust RNG that draws the problems.
    pub seed: u64,
    /// Trials for gradients, Hessians and eigenvalues.
    pub derivative_trials: usize,
    /// Trials for CCCP monotonicity.
    pub cccp_trials: usize,
    /// CCCP steps per trial.
    pub cccp_steps: usize,
}

impl Default for CheckConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            derivative_trials: 50,
            cccp_trials: 500,
            cccp_steps: 30,
        }
    }
}

/// What the checks measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checks {
    /// Max over trials of max|analytic − autograd| / max|autograd| for ∇E and ∇E2.
    pub grad_max_rel_err: f64,
    /// The same for ∇²E and ∇²E2.
    pub hessian_max_rel_err: f64,
    /// Smallest eigenvalue of ∇²(−E2) over all trials (PSD means ≥ −rounding).
    pub hessian_min_eigenvalue: f64,
    /// Random (X, q, β) problems checked for gradients and Hessians.
    pub derivative_trials: usize,
    /// Energy never rose (beyond 1e-12 relative) along any CCCP trajectory.
    pub cccp_monotone: bool,
    /// Largest `E(q_{t+1}) − E(q_t)` seen (≤ 0 up to rounding when monotone).
    pub cccp_max_energy_increase: f64,
    /// Random problems iterated by CCCP.
    pub cccp_trials: usize,
    /// max|ours − libtorch `softmax(QXᵀ/√D)X`| with β = 1/√D.
    pub attention_max_abs_diff: f64,
    /// max|ours − libtorch `scaled_dot_product_attention(Q, X, X)`| with its default scale.
    pub sdpa_max_abs_diff: f64,
}

/// How a query is corrupted from its stored pattern.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Corruption {
    /// Flip this fraction of the ±1 components.
    Flip(f64),
    /// Zero the second half of the components.
    MaskHalf,
}

/// One point of the β sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BetaPoint {
    /// Inverse temperature.
    pub beta: f64,
    /// The corruption of the queries.
    pub corruption: Corruption,
    /// Fraction of components whose sign is wrong after one update.
    pub bit_error: f64,
    /// Fraction of queries whose signs after one update equal the stored pattern exactly.
    pub exact_retrieval: f64,
    /// Mean `exp(entropy(softmax(βXq)))`: 1 = one pattern, N = the global average.
    pub effective_patterns: f64,
}

/// Success rates at one memory size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CapacityPoint {
    /// Number of stored patterns.
    pub patterns: usize,
    /// Fraction of queries the classic network (sign updates to a fixed point) recovers exactly.
    pub classic_success: f64,
    /// Fraction the modern network recovers exactly in one update (signs of the output).
    pub modern_success: f64,
}

/// Image retrieval at one β.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImagePoint {
    /// Inverse temperature.
    pub beta: f64,
    /// Mean ‖ξ − x‖ / ‖x‖ after one update from the half-masked image.
    pub relative_error: f64,
    /// Fraction of queries whose output is nearest (in L2) to the right stored image.
    pub nearest_correct: f64,
    /// Mean effective number of patterns averaged.
    pub effective_patterns: f64,
}

/// Everything Q1 measured; written as `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Q1Summary {
    /// [`crate::VERSION`].
    pub version: u32,
    /// The configuration that produced it.
    pub config: Q1Config,
    /// Numerical checks against libtorch.
    #[serde(flatten)]
    pub checks: Checks,
    /// The retrieval experiments.
    pub retrieval: Retrieval,
    /// Figures written, relative to the output folder.
    pub figures: Vec<String>,
    /// Wall time of the stage.
    pub seconds: f64,
}

/// Results of the retrieval experiments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Retrieval {
    /// Patterns (N) of the β sweep.
    pub beta_sweep_patterns: usize,
    /// Dimension of the β sweep and capacity experiments.
    pub dimension: usize,
    /// One update from 25%-flipped and half-masked queries, over β.
    pub beta_sweep: Vec<BetaPoint>,
    /// β of the modern network in the capacity experiment.
    pub capacity_beta: f64,
    /// Classic vs modern success over N.
    pub capacity: Vec<CapacityPoint>,
    /// Half-masked generated images, over β.
    pub images: ImageSweep,
}

/// The half-masked image experiment (its gallery of images goes to a figure, not here).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageSweep {
    /// Number of stored images.
    pub stored: usize,
    /// One point per β.
    pub sweep: Vec<ImagePoint>,
    /// The β of each retrieved row in the figure's gallery.
    pub gallery_betas: Vec<f64>,
}

//! Independent checks of the analytic results, computed by libtorch (f64, CPU):
//! gradients and Hessians by autograd, eigenvalues by LAPACK (`linalg_eigvalsh`), and the
//! batched update against libtorch's own attention.

use ndarray::{Array1, Array2};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
pub use summaries::q1::{CheckConfig, Checks};
use tch::{Kind, Tensor};

use crate::Memory;

/// Converts an ndarray matrix to an f64 CPU tensor.
pub fn tensor2(a: &Array2<f64>) -> Tensor {
    let a = a.as_standard_layout();
    Tensor::from_slice(a.as_slice().expect("standard layout"))
        .view([a.nrows() as i64, a.ncols() as i64])
}

/// Converts an ndarray vector to an f64 CPU tensor.
pub fn tensor1(a: &Array1<f64>) -> Tensor {
    Tensor::from_slice(&a.to_vec())
}

/// Converts a 2-D f64 tensor back to ndarray.
pub fn array2(t: &Tensor) -> Array2<f64> {
    let (r, c) = t.size2().expect("a 2-D tensor");
    let v: Vec<f64> =
        Vec::try_from(t.to_kind(Kind::Double).contiguous().view([-1])).expect("f64 data");
    Array2::from_shape_vec((r as usize, c as usize), v).expect("shape matches")
}

fn array1(t: &Tensor) -> Array1<f64> {
    Array1::from(Vec::<f64>::try_from(t.to_kind(Kind::Double).contiguous()).expect("f64 data"))
}

/// Random normal matrix.
pub fn randn(rng: &mut StdRng, rows: usize, cols: usize, scale: f64) -> Array2<f64> {
    Array2::from_shape_simple_fn((rows, cols), || {
        scale * rng.sample::<f64, _>(StandardNormal)
    })
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

fn rel_err(ours: &[f64], reference: &[f64]) -> f64 {
    let diff: Vec<f64> = ours.iter().zip(reference).map(|(a, b)| a - b).collect();
    max_abs(&diff) / max_abs(reference).max(1e-300)
}

/// Autograd's ∇ and ∇² at q of E (`full_energy`) or of E2.
fn autograd(memory: &Memory, q: &Array1<f64>, full_energy: bool) -> (Array1<f64>, Array2<f64>) {
    let x = tensor2(memory.patterns());
    let qt = tensor1(q).set_requires_grad(true);
    let beta = memory.beta();
    let e2 = -(x.mv(&qt) * beta).logsumexp([0], false) / beta;
    let e = if full_energy {
        let n = memory.len() as f64;
        &e2 + qt.dot(&qt) * 0.5 + n.ln() / beta + 0.5 * memory.max_norm().powi(2)
    } else {
        e2
    };
    let grad = Tensor::run_backward(&[&e], &[&qt], true, true).remove(0);
    let d = q.len();
    let mut hess = Array2::zeros((d, d));
    for i in 0..d {
        let row = Tensor::run_backward(&[grad.get(i as i64)], &[&qt], true, false).remove(0);
        hess.row_mut(i).assign(&array1(&row));
    }
    (array1(&grad.detach()), hess)
}

/// Runs every check; takes a second or two.
pub fn run(config: &CheckConfig) -> Checks {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let (mut grad_err, mut hess_err, mut min_eig) = (0.0f64, 0.0f64, f64::INFINITY);
    for _ in 0..config.derivative_trials {
        let (n, d) = (rng.random_range(2..=32), rng.random_range(2..=12));
        // Rows of norm ≈ 1 and β ≤ 3 keep softmax away from exact one-hot, where both
        // formulas would only compare rounding noise.
        let memory = Memory::new(
            randn(&mut rng, n, d, 1.0 / (d as f64).sqrt()),
            10f64.powf(rng.random_range(-1.0..0.5)),
        );
        let q = randn(&mut rng, 1, d, 1.0).row(0).to_owned();
        for full in [true, false] {
            let (g, h) = autograd(&memory, &q, full);
            let (ga, ha) = if full {
                (
                    memory.grad_energy(q.view()),
                    memory.hessian_energy(q.view()),
                )
            } else {
                (memory.grad_e2(q.view()), memory.hessian_e2(q.view()))
            };
            grad_err = grad_err.max(rel_err(ga.as_slice().unwrap(), g.as_slice().unwrap()));
            hess_err = hess_err.max(rel_err(ha.as_slice().unwrap(), h.as_slice().unwrap()));
        }
        // PSD of ∇²(−E2), also at a large β where p is nearly one-hot (the hardest case).
        for beta in [memory.beta(), 100.0] {
            let m = Memory::new(memory.patterns().clone(), beta);
            let eig = tensor2(&m.hessian_neg_e2(q.view())).linalg_eigvalsh("L");
            min_eig = min_eig.min(eig.min().double_value(&[]));
        }
    }

    let (mut monotone, mut max_rise) = (true, f64::NEG_INFINITY);
    for _ in 0..config.cccp_trials {
        let (n, d) = (rng.random_range(2..=64), rng.random_range(2..=32));
        let beta = 10f64.powf(rng.random_range(-2.0..2.0));
        let memory = Memory::new(randn(&mut rng, n, d, 1.0), beta);
        let q0 = randn(&mut rng, 1, d, 3.0).row(0).to_owned();
        let traj = memory.iterate(&q0, 0.0, config.cccp_steps);
        for e in traj.energies.windows(2) {
            let rise = e[1] - e[0];
            max_rise = max_rise.max(rise);
            if rise > 1e-12 * e[0].abs().max(1.0) {
                monotone = false;
            }
        }
    }

    let (n, d, queries) = (32, 16, 10);
    let x = randn(&mut rng, n, d, 1.0);
    let q = randn(&mut rng, queries, d, 1.0);
    let ours = Memory::new(x.clone(), 1.0 / (d as f64).sqrt()).update_batch(&q);
    let (xt, qt) = (tensor2(&x), tensor2(&q));
    let manual = (qt.matmul(&xt.tr()) / (d as f64).sqrt())
        .softmax(-1, Kind::Double)
        .matmul(&xt);
    let sdpa = Tensor::scaled_dot_product_attention(
        &qt.unsqueeze(0),
        &xt.unsqueeze(0),
        &xt.unsqueeze(0),
        None::<Tensor>,
        0.0,
        false,
        None,
        false,
    )
    .squeeze_dim(0);
    let diff = |t: &Tensor| max_abs((&ours - &array2(t)).as_slice().unwrap());

    Checks {
        grad_max_rel_err: grad_err,
        hessian_max_rel_err: hess_err,
        hessian_min_eigenvalue: min_eig,
        derivative_trials: config.derivative_trials,
        cccp_monotone: monotone,
        cccp_max_energy_increase: max_rise,
        cccp_trials: config.cccp_trials,
        attention_max_abs_diff: diff(&manual),
        sdpa_max_abs_diff: diff(&sdpa),
    }
}

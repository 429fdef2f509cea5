//! Stored patterns with an inverse temperature: energy, derivatives and the CCCP update.

use ndarray::{Array1, Array2, ArrayView1, Axis};

use crate::energy::{lse, softmax};

/// A modern Hopfield memory: patterns `X ∈ R^{N×D}` (rows `xᵢ`) and inverse temperature β.
#[derive(Debug, Clone)]
pub struct Memory {
    patterns: Array2<f64>,
    beta: f64,
    /// `M = maxᵢ ‖xᵢ‖`, cached.
    max_norm: f64,
}

/// The states and energies visited by [`Memory::iterate`].
#[derive(Debug, Clone)]
pub struct Trajectory {
    /// `q₀, q₁, …`; the last one is the retrieved state.
    pub states: Vec<Array1<f64>>,
    /// `E(q₀), E(q₁), …`, one per state.
    pub energies: Vec<f64>,
    /// Whether the last step moved less than the tolerance.
    pub converged: bool,
}

impl Memory {
    /// Stores `patterns` (N×D, N ≥ 1) with inverse temperature `beta > 0`.
    pub fn new(patterns: Array2<f64>, beta: f64) -> Self {
        assert!(patterns.nrows() > 0, "a memory needs at least one pattern");
        assert!(
            beta > 0.0 && beta.is_finite(),
            "β must be positive, got {beta}"
        );
        let max_norm = patterns
            .rows()
            .into_iter()
            .map(|r| r.dot(&r).sqrt())
            .fold(0.0, f64::max);
        Self {
            patterns,
            beta,
            max_norm,
        }
    }

    /// The stored patterns `X`.
    pub fn patterns(&self) -> &Array2<f64> {
        &self.patterns
    }

    /// Inverse temperature β.
    pub fn beta(&self) -> f64 {
        self.beta
    }

    /// Number of patterns N.
    pub fn len(&self) -> usize {
        self.patterns.nrows()
    }

    /// Always false: a memory holds at least one pattern.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Pattern dimension D.
    pub fn dim(&self) -> usize {
        self.patterns.ncols()
    }

    /// `M = maxᵢ ‖xᵢ‖`.
    pub fn max_norm(&self) -> f64 {
        self.max_norm
    }

    /// `p = softmax(β X q)`: how much each pattern weighs in the update.
    pub fn probabilities(&self, q: ArrayView1<f64>) -> Array1<f64> {
        softmax(self.beta, self.patterns.dot(&q).view())
    }

    /// Convex part `E1(q) = ½ qᵀq + β⁻¹ log N + ½ M²`.
    pub fn e1(&self, q: ArrayView1<f64>) -> f64 {
        0.5 * q.dot(&q) + (self.len() as f64).ln() / self.beta + 0.5 * self.max_norm.powi(2)
    }

    /// Concave part `E2(q) = −lse(β, X q)`.
    pub fn e2(&self, q: ArrayView1<f64>) -> f64 {
        -lse(self.beta, self.patterns.dot(&q).view())
    }

    /// Energy `E(q) = E1(q) + E2(q)`.
    pub fn energy(&self, q: ArrayView1<f64>) -> f64 {
        self.e1(q) + self.e2(q)
    }

    /// `∇E1 = q`.
    pub fn grad_e1(&self, q: ArrayView1<f64>) -> Array1<f64> {
        q.to_owned()
    }

    /// `∇E2 = −Xᵀ softmax(β X q)`.
    pub fn grad_e2(&self, q: ArrayView1<f64>) -> Array1<f64> {
        -self.update(q)
    }

    /// `∇E = q − Xᵀ softmax(β X q)`.
    pub fn grad_energy(&self, q: ArrayView1<f64>) -> Array1<f64> {
        &q - &self.update(q)
    }

    /// `∇²E1 = I` (D×D).
    pub fn hessian_e1(&self) -> Array2<f64> {
        Array2::eye(self.dim())
    }

    /// `∇²(−E2) = β Xᵀ (diag(p) − p pᵀ) X`, positive semidefinite.
    pub fn hessian_neg_e2(&self, q: ArrayView1<f64>) -> Array2<f64> {
        let p = self.probabilities(q);
        // Xᵀ diag(p) X − (Xᵀp)(Xᵀp)ᵀ, without forming the N×N matrix.
        let weighted = &self.patterns * &p.view().insert_axis(Axis(1));
        let mean = self.patterns.t().dot(&p);
        let outer = mean
            .view()
            .insert_axis(Axis(1))
            .dot(&mean.view().insert_axis(Axis(0)));
        (self.patterns.t().dot(&weighted) - outer) * self.beta
    }

    /// `∇²E2 = −∇²(−E2)`, negative semidefinite.
    pub fn hessian_e2(&self, q: ArrayView1<f64>) -> Array2<f64> {
        -self.hessian_neg_e2(q)
    }

    /// `∇²E = I − β Xᵀ (diag(p) − p pᵀ) X`.
    pub fn hessian_energy(&self, q: ArrayView1<f64>) -> Array2<f64> {
        self.hessian_e1() + self.hessian_e2(q)
    }

    /// One CCCP step: `q ← Xᵀ softmax(β X q)`, the minimiser of E1 plus E2 linearised at q.
    pub fn update(&self, q: ArrayView1<f64>) -> Array1<f64> {
        self.patterns.t().dot(&self.probabilities(q))
    }

    /// Applies [`Memory::update`] from `q0` until a step moves less than `tol` (max-norm) or
    /// `max_steps` steps are done; records every state and its energy.
    pub fn iterate(&self, q0: &Array1<f64>, tol: f64, max_steps: usize) -> Trajectory {
        let mut states = vec![q0.clone()];
        let mut energies = vec![self.energy(q0.view())];
        let mut converged = false;
        for _ in 0..max_steps {
            let prev = states.last().expect("never empty");
            let next = self.update(prev.view());
            let step = (&next - prev).fold(0.0f64, |a, &b| a.max(b.abs()));
            energies.push(self.energy(next.view()));
            states.push(next);
            if step < tol {
                converged = true;
                break;
            }
        }
        Trajectory {
            states,
            energies,
            converged,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn memory() -> (Memory, Array1<f64>) {
        let x = array![
            [0.5, -1.0, 0.3],
            [1.2, 0.1, -0.4],
            [-0.3, 0.8, 0.9],
            [0.0, -0.2, 1.1]
        ];
        (Memory::new(x, 1.7), array![0.2, -0.5, 0.8])
    }

    /// Central finite differences of a scalar function: an independent gradient.
    fn fd_grad(f: impl Fn(ArrayView1<f64>) -> f64, q: &Array1<f64>) -> Array1<f64> {
        let h = 1e-5;
        Array1::from_iter((0..q.len()).map(|i| {
            let (mut a, mut b) = (q.clone(), q.clone());
            a[i] += h;
            b[i] -= h;
            (f(a.view()) - f(b.view())) / (2.0 * h)
        }))
    }

    fn max_rel(a: &Array1<f64>, b: &Array1<f64>) -> f64 {
        let d = (a - b).fold(0.0f64, |m, &v| m.max(v.abs()));
        d / b.fold(1e-12f64, |m, &v| m.max(v.abs()))
    }

    #[test]
    fn gradients_match_finite_differences() {
        let (m, q) = memory();
        assert!(max_rel(&m.grad_e1(q.view()), &fd_grad(|q| m.e1(q), &q)) < 1e-8);
        assert!(max_rel(&m.grad_e2(q.view()), &fd_grad(|q| m.e2(q), &q)) < 1e-8);
        assert!(max_rel(&m.grad_energy(q.view()), &fd_grad(|q| m.energy(q), &q)) < 1e-8);
    }

    #[test]
    fn hessian_matches_finite_differences_of_gradient() {
        let (m, q) = memory();
        let h = m.hessian_e2(q.view());
        for i in 0..q.len() {
            let col = fd_grad(|q| m.grad_e2(q)[i], &q);
            assert!(max_rel(&h.row(i).to_owned(), &col) < 1e-7, "row {i}");
        }
        let total = m.hessian_energy(q.view()) - m.hessian_e1();
        assert!((total - h).fold(0.0f64, |a, &b| a.max(b.abs())) < 1e-15);
    }

    #[test]
    fn update_is_the_stationary_point_of_the_linearised_problem() {
        // q_{t+1} minimises E1(q) + ∇E2(q_t)ᵀ q, i.e. q_{t+1} + ∇E2(q_t) = 0.
        let (m, q) = memory();
        let next = m.update(q.view());
        let residual = &next + &m.grad_e2(q.view());
        assert!(residual.iter().all(|r| r.abs() < 1e-15));
    }

    #[test]
    fn energy_is_bounded_below_by_zero() {
        // ½‖q‖² + ½M² ≥ max xᵢᵀq and lse ≤ max + β⁻¹ log N give E ≥ 0.
        let (m, _) = memory();
        for s in [-3.0, -0.5, 0.0, 0.7, 4.0] {
            let q = array![s, 1.0 - s, 0.5 * s];
            assert!(m.energy(q.view()) >= -1e-12);
        }
    }

    #[test]
    fn large_beta_retrieves_the_nearest_pattern_in_one_step() {
        let (m, _) = memory();
        let m = Memory::new(m.patterns().clone(), 50.0);
        let noisy = &m.patterns().row(1) + &array![0.05, -0.1, 0.02];
        let next = m.update(noisy.view());
        assert!((&next - &m.patterns().row(1))
            .iter()
            .all(|d| d.abs() < 1e-6));
    }
}

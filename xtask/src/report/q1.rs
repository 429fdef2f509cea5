//! The report's Q1 section: the derivations, the numerical checks against libtorch and the
//! retrieval figures.

use std::fmt::Write as _;
use std::path::Path;

use summaries::q1::Q1Summary;

use super::figure;

const DERIVATIONS: &str = include_str!("../../../assets/q1_derivations.md");

/// Appends the section to `md`.
pub fn write(md: &mut String, out: &Path, q1: &Q1Summary) {
    md.push_str("## Q1 — Modern Hopfield networks\n\n");
    md.push_str(DERIVATIONS);
    md.push_str(
        "\n### Numerical checks (f64, against libtorch)\n\n| check | result |\n|---|---|\n",
    );
    let c = &q1.checks;
    for (label, value) in [
        (
            "max relative error of ∇E, ∇E2 vs autograd",
            c.grad_max_rel_err,
        ),
        (
            "max relative error of ∇²E, ∇²E2 vs autograd",
            c.hessian_max_rel_err,
        ),
        (
            "smallest eigenvalue of ∇²(−E2) (LAPACK)",
            c.hessian_min_eigenvalue,
        ),
        ("largest energy rise along CCCP", c.cccp_max_energy_increase),
        (
            "max \\|ours − softmax(QXᵀ/√D)X\\|",
            c.attention_max_abs_diff,
        ),
        (
            "max \\|ours − scaled_dot_product_attention\\|",
            c.sdpa_max_abs_diff,
        ),
    ] {
        let _ = writeln!(md, "| {label} | {value:.2e} |");
    }
    let _ = writeln!(
        md,
        "| energy non-increasing along CCCP ({} random problems) | {} |\n",
        c.cccp_trials, c.cccp_monotone
    );
    md.push_str("### Retrieval (Ramsauer et al., 2020)\n\n");
    for (file, caption) in [
        ("q1/cccp_energy.png", "energy along CCCP"),
        ("q1/retrieval_vs_beta.png", "one-step retrieval vs beta"),
        ("q1/effective_patterns.png", "metastable states"),
        ("q1/capacity.png", "capacity, classic vs modern"),
        ("q1/image_retrieval.png", "half-masked images"),
    ] {
        figure(md, out, file, caption);
    }
}

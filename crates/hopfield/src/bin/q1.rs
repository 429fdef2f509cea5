//! `q1`: runs the Q1 checks and retrieval experiments, writing figures and `summary.json`.

use anyhow::Result;
use clap::Parser;

/// Q1 — modern Hopfield networks: numerical checks against libtorch and retrieval experiments.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    stage: cli::stages::Q1Stage,
}

fn main() -> std::process::ExitCode {
    artifacts::exit_code(run(Args::parse()))
}

fn run(Args { stage: args }: Args) -> Result<()> {
    let config = if args.quick {
        hopfield::Q1Config::quick(args.seed)
    } else {
        hopfield::Q1Config::full(args.seed)
    };
    let s = hopfield::run_q1(&config, &args.out)?;
    println!(
        "Q1 checks ({} derivative trials, {} CCCP trials):",
        s.checks.derivative_trials, s.checks.cccp_trials
    );
    println!(
        "  gradient   max rel err vs autograd: {:.2e}",
        s.checks.grad_max_rel_err
    );
    println!(
        "  Hessian    max rel err vs autograd: {:.2e}",
        s.checks.hessian_max_rel_err
    );
    println!(
        "  min eigenvalue of ∇²(−E2):          {:.2e}",
        s.checks.hessian_min_eigenvalue
    );
    println!(
        "  CCCP energy monotone:               {} (max rise {:.2e})",
        s.checks.cccp_monotone, s.checks.cccp_max_energy_increase
    );
    println!(
        "  attention max abs diff:             {:.2e} (SDPA {:.2e})",
        s.checks.attention_max_abs_diff, s.checks.sdpa_max_abs_diff
    );
    let last = s.retrieval.capacity.last().expect("at least one size");
    println!(
        "Capacity at N={}: classic {:.2}, modern {:.2}",
        last.patterns, last.classic_success, last.modern_success
    );
    println!(
        "Wrote {} figures and summary.json to {} in {:.1} s",
        s.figures.len(),
        args.out.display(),
        s.seconds
    );
    Ok(())
}

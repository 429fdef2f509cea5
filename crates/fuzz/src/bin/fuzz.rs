//! `fuzz`: mutation campaigns against the readers of outside files (`cargo xtask fuzz`).
//! Each reader's seed is mutated `--count` times from `--seed` (default: the clock), and
//! every mutant is read by `read-untrusted` (beside this binary) under a memory cap; the
//! mutants that break a rule are kept in `--work` and listed.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use fuzz::campaign::{self, Limits};
use fuzz::Reader;

#[derive(Parser)]
#[command(about = "Mutation campaigns against the readers of outside files.")]
struct Cli {
    /// Readers to fuzz (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Reader>,
    /// Mutants per reader.
    #[arg(long, default_value_t = 20_000)]
    count: usize,
    /// Seed of the mutations (default: from the clock; printed, to reproduce a campaign).
    #[arg(long)]
    seed: Option<u64>,
    /// Where mutants are written; those that break a rule stay there.
    #[arg(long, default_value = "target/fuzz")]
    work: PathBuf,
}

fn main() -> std::process::ExitCode {
    artifacts::exit_code(run(Cli::parse()))
}

fn run(cli: Cli) -> Result<()> {
    let exe = std::env::current_exe()?
        .parent()
        .context("the binary's folder")?
        .join("read-untrusted");
    let seed = cli.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    let readers = if cli.only.is_empty() {
        Reader::ALL.to_vec()
    } else {
        cli.only
    };
    eprintln!(
        "fuzz: seed {seed}, {} mutants per reader (reproduce with --seed {seed})",
        cli.count
    );
    let mut broken = 0;
    for reader in readers {
        let work = cli.work.join(reader.name());
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work)?;
        let t = Instant::now();
        let seed_file = campaign::seed(reader, &exe, &work)?;
        let o = campaign::run(
            reader,
            &seed_file,
            &exe,
            &work,
            cli.count,
            seed,
            Limits::default(),
        )?;
        println!(
            "{:<12} {:>7} mutants: {:>7} accepted, {:>7} refused, {} broke a rule ({:.0} s)",
            reader.name(),
            o.mutants,
            o.accepted,
            o.refused,
            o.failures.len(),
            t.elapsed().as_secs_f64()
        );
        for f in &o.failures {
            println!("  {f}");
        }
        broken += o.failures.len();
    }
    if broken > 0 {
        bail!(
            "{broken} mutants broke a rule (kept under {})",
            cli.work.display()
        );
    }
    Ok(())
}

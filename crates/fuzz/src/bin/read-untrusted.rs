//! `read-untrusted`: reads files with one of the project's readers of outside files, as the
//! fuzz campaigns' child process (`crates/fuzz`). For each file it prints `start<TAB>FILE`,
//! then `ok` or `err<TAB>the error`, so that a crash names the file it crashed on.
//!
//! `--slack-mib M --per-byte K` limits the process's address space, once libtorch is loaded
//! and warmed up, to what it then uses plus M MiB plus K times the largest file: a reader
//! that tries to take more fails to allocate (and, if it does not handle that, aborts).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Parser;
use fuzz::Reader;

#[derive(Parser)]
struct Cli {
    /// Which reader.
    #[arg(value_enum)]
    reader: Reader,
    /// Files (for `resume`: run folders) to read.
    files: Vec<PathBuf>,
    /// Address space allowed beyond the warmed-up process, in MiB.
    #[arg(long, default_value_t = 256)]
    slack_mib: u64,
    /// Address space allowed per byte of the largest file.
    #[arg(long, default_value_t = 32)]
    per_byte: u64,
    /// Instead of reading: write a resume point to this folder (a toy training stopped after
    /// two of its three epochs).
    #[arg(long)]
    make_resume: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(dir) = &cli.make_resume {
        return artifacts::exit_code(fuzz::resume::make(dir));
    }
    fuzz::warm_up(); // libtorch's pools and first allocations, before the limit
    let largest = cli.files.iter().map(|f| size_of(f)).max().unwrap_or(0);
    if let Err(e) = limit_address_space(cli.slack_mib << 20, cli.per_byte.saturating_mul(largest)) {
        eprintln!("error: {e:#}");
        return std::process::ExitCode::FAILURE;
    }
    let mut out = std::io::stdout().lock();
    for file in &cli.files {
        let _ = writeln!(out, "start\t{}", file.display());
        let _ = out.flush();
        let line = match fuzz::read(cli.reader, file) {
            Ok(()) => "ok".to_string(),
            // A line break (which a one-sentence error must not have) becomes a marker the
            // campaign looks for; an escaped `\n` inside a quote is fine.
            Err(e) => format!("err\t{e:#}").replace('\n', fuzz::campaign::LINE_BREAK),
        };
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
    std::process::ExitCode::SUCCESS
}

/// A file's size, or a folder's files' sizes summed.
fn size_of(path: &Path) -> u64 {
    if path.is_dir() {
        artifacts::files_in(path)
            .iter()
            .map(|(_, p)| p.metadata().map_or(0, |m| m.len()))
            .sum()
    } else {
        path.metadata().map_or(0, |m| m.len())
    }
}

/// Caps the address space at what the process maps now plus `extra` bytes.
fn limit_address_space(slack: u64, per_file: u64) -> Result<()> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let Some(kib) = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    else {
        bail!("no VmSize in /proc/self/status");
    };
    let limit = (kib << 10).saturating_add(slack).saturating_add(per_file);
    let rl = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: setrlimit reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_AS, &rl) } != 0 {
        bail!("setrlimit: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

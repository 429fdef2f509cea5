//! `cargo xtask bench`: our speed beside the homework's own PyTorch code, measured side by
//! side on this machine in this session — the only comparison that means anything, since
//! these machines differ from one session to the next.
//!
//! * Q2: seconds per epoch of each model (2.2, and 2.1 at lr 0.01), start-up apart: the
//!   difference between an N-epoch and a 1-epoch process, over N − 1 epochs.
//! * Q3: the whole stage — (a) and (b) trained, the three tests — as a user of each runs it:
//!   ours `p2g reproduce`, the homework's five `hw2-q3.py` commands one after the other.
//!
//! Ours and theirs alternate (A B A B …) so that a machine that drifts over minutes drifts for
//! both; min / median / max are printed. Without the homework's code (`--homework DIR
//! --python PY`), only ours is timed, and the Q2 epoch is set against its floating-point floor
//! (its multiply-adds at the rate this machine's sgemm reaches, measured by the bench). The
//! result goes to `reports/bench/latest.json`, which the report's speed section shows.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{ensure, Context, Result};

use crate::libtorch::Libtorch;
use crate::measuring::{cpu_model, crate_bench, homework, Common, HomeworkCode};
use summaries::bench::{ratios, spread, Bench, Measure};

/// Options of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    common: Common,
    /// Rounds of the alternation (each times ours, then theirs).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    repeat: u64,
    /// Epochs of the longer Q2 process (the shorter runs one).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(2..))]
    q2_epochs: u64,
    /// Epochs of each Q3 training (the homework's 20 by default).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    q3_epochs: u64,
}

/// Wall seconds of a command that must succeed; its output goes to `log`.
fn timed(mut cmd: Command, log: &Path) -> Result<f64> {
    let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    cmd.stdout(file.try_clone()?).stderr(file);
    let what = format!("{cmd:?}");
    let t = Instant::now();
    let status = cmd.status().with_context(|| format!("running {what}"))?;
    let secs = t.elapsed().as_secs_f64();
    ensure!(
        status.success(),
        "{what} failed ({status}); see {}",
        log.display()
    );
    Ok(secs)
}

fn show(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The sgemm rate and the libtorch thread count, from the `sgemm` example of vision's bench.
fn sgemm(torch: &Libtorch, root: &Path) -> Result<(f64, usize)> {
    let text = crate_bench(torch, root, "vision", "--sgemm")?;
    let line = text
        .lines()
        .find(|l| l.starts_with("sgemm"))
        .with_context(|| format!("vision's bench printed no sgemm line:\n{text}"))?;
    // "sgemm 2048²: 166.0 GFLOP/s, threads 2"
    let gflops = line
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .context("unreadable sgemm line")?;
    let threads = line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    Ok((gflops, threads))
}

/// Floating-point operations of one Q2 training epoch of `model` over `images` images:
/// convolutions and linear layers, forward and the two backward products.
pub fn q2_epoch_flops(model: &str, images: f64) -> f64 {
    // (channels in, out, side) of the three 3×3 convolutions.
    let convs = [(3.0, 32.0, 48.0), (32.0, 64.0, 24.0), (64.0, 128.0, 12.0)];
    let conv: f64 = convs.iter().map(|(i, o, s)| s * s * o * i * 9.0).sum();
    let fc_in = if model == "2.1" {
        128.0 * 6.0 * 6.0
    } else {
        128.0
    };
    let fc = fc_in * 1024.0 + 1024.0 * 512.0 + 512.0 * 6.0;
    // Multiply-adds → 2 flops; forward + input gradient + weight gradient → ×3.
    (conv + fc) * 2.0 * 3.0 * images
}

/// Runs the bench and writes `reports/bench/<date>.json` and `latest.json`.
pub fn run(root: &Path, torch: &Libtorch, args: &Args) -> Result<()> {
    let homework = homework(root, &args.common)?;
    eprintln!("== building the release binaries");
    let ok = crate::libtorch::cargo_command(torch)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "vision",
            "-p",
            "seq2seq",
            "--bins",
        ])
        .status()?
        .success();
    ensure!(ok, "building the release binaries failed");
    let bin = crate::target_dir(root).join("release");
    let work = std::env::temp_dir().join(format!("hw2-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let (sgemm_gflops, threads) = sgemm(torch, root)?;
    eprintln!("== sgemm: {sgemm_gflops:.1} GFLOP/s with {threads} threads");
    let mut measures = Vec::new();

    if args.common.times("q2") {
        let npz = root.join(&args.common.npz);
        ensure!(npz.is_file(), "--npz {}: no such file (build the substitute with the workplace's make-fashion6.sh, or pass the Intel file)", npz.display());
        let images = 12_630.0;
        for model in ["2.2", "2.1"] {
            let ours_cmd = |epochs: u64, out: &Path| {
                let mut c = Command::new(bin.join("cnn"));
                c.args([
                    "--epochs",
                    &epochs.to_string(),
                    "--learning-rate",
                    "0.01",
                    "--force",
                    "--data",
                ])
                .arg(&npz)
                .arg("--out")
                .arg(out);
                if model == "2.1" {
                    c.arg("--no-batch-norm");
                }
                c
            };
            let theirs_cmd = |epochs: u64, dir: &Path, py: &Path| {
                let mut c = Command::new(py);
                c.arg(dir.join("hw2-q2/hw2-q2.py"))
                    .args([
                        "-epochs",
                        &epochs.to_string(),
                        "-learning_rate",
                        "0.01",
                        "-data_path",
                    ])
                    .arg(&npz)
                    .current_dir(&work)
                    .env("MPLBACKEND", "Agg");
                if model == "2.1" {
                    c.arg("-no_batch_norm");
                }
                c
            };
            let mut m = Measure {
                what: format!(
                    "Q2 model {model}, one training epoch (lr 0.01, batch 8), start-up apart"
                ),
                unit: "s per epoch".into(),
                ours: Vec::new(),
                theirs: Vec::new(),
                floor: Some(q2_epoch_flops(model, images) / (sgemm_gflops * 1e9)),
                commands: vec![show(&ours_cmd(args.q2_epochs, Path::new("OUT")))],
                date: crate::clock::stamp(),
            };
            if let Some(HomeworkCode { dir, python: py }) = &homework {
                m.commands.push(show(&theirs_cmd(args.q2_epochs, dir, py)));
            }
            let per_epoch = |long: f64, short: f64| (long - short) / (args.q2_epochs - 1) as f64;
            for round in 0..args.repeat {
                eprintln!("== Q2 {model}, round {}: ours", round + 1);
                let out = work.join(format!("q2-{model}"));
                let short = timed(ours_cmd(1, &out), &work.join("ours.log"))?;
                let long = timed(ours_cmd(args.q2_epochs, &out), &work.join("ours.log"))?;
                m.ours.push(per_epoch(long, short));
                if let Some(HomeworkCode { dir, python: py }) = &homework {
                    eprintln!("== Q2 {model}, round {}: the homework's", round + 1);
                    let short = timed(theirs_cmd(1, dir, py), &work.join("theirs.log"))?;
                    let long = timed(
                        theirs_cmd(args.q2_epochs, dir, py),
                        &work.join("theirs.log"),
                    )?;
                    m.theirs.push(per_epoch(long, short));
                }
                eprintln!("   {}", line(&m));
            }
            measures.push(m);
        }
    }

    if args.common.times("q3") {
        let data = root.join(&args.common.p2g);
        ensure!(
            data.join("train.tsv").is_file(),
            "--p2g {}: no train.tsv (`cargo xtask fixtures` puts the homework's in data/p2g)",
            data.display()
        );
        let epochs = args.q3_epochs.to_string();
        let ours_cmd = |out: &Path| {
            let mut c = Command::new(bin.join("p2g"));
            // The homework's work only: no Hopfield-head models.
            c.args(["reproduce", "--no-hopfield", "--epochs", &epochs, "--data"])
                .arg(&data)
                .arg("--out")
                .arg(out);
            c
        };
        let theirs_cmds = |dir: &Path, py: &Path| -> Vec<Command> {
            let script = dir.join("hw2-q3/hw2-q3.py");
            let data = format!("{}/", data.display());
            let run = |args: &[&str]| {
                let mut c = Command::new(py);
                c.arg(&script)
                    .args(args)
                    .args(["--data_dir", &data])
                    .current_dir(&work)
                    .env("MPLBACKEND", "Agg");
                c
            };
            vec![
                run(&["train", "--n_epochs", &epochs, "--checkpoint_name", "a.pt"]),
                run(&[
                    "train",
                    "--use_attn",
                    "--n_epochs",
                    &epochs,
                    "--checkpoint_name",
                    "b.pt",
                ]),
                run(&["test", "--checkpoint_name", "a.pt"]),
                run(&["test", "--use_attn", "--checkpoint_name", "b.pt"]),
                run(&[
                    "test",
                    "--use_attn",
                    "--topp",
                    "0.8",
                    "--checkpoint_name",
                    "b.pt",
                ]),
            ]
        };
        let mut m = Measure {
            what: format!("Q3 whole stage: (a) and (b) trained ({epochs} epochs), greedy tests of both, nucleus test with WER@3"),
            unit: "s".into(),
            ours: Vec::new(),
            theirs: Vec::new(),
            floor: None,
            commands: vec![show(&ours_cmd(Path::new("OUT")))],
            date: crate::clock::stamp(),
        };
        if let Some(HomeworkCode { dir, python: py }) = &homework {
            m.commands.extend(theirs_cmds(dir, py).iter().map(show));
        }
        for round in 0..args.repeat {
            eprintln!("== Q3 stage, round {}: ours", round + 1);
            let out = work.join(format!("q3-{round}"));
            m.ours.push(timed(ours_cmd(&out), &work.join("ours.log"))?);
            if let Some(HomeworkCode { dir, python: py }) = &homework {
                eprintln!(
                    "== Q3 stage, round {}: the homework's (five commands)",
                    round + 1
                );
                let mut total = 0.0;
                for c in theirs_cmds(dir, py) {
                    total += timed(c, &work.join("theirs.log"))?;
                }
                m.theirs.push(total);
            }
            eprintln!("   {}", line(&m));
        }
        measures.push(m);
    }

    let machine = format!(
        "{}, {} cores, libtorch threads {threads}",
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // What this bench did not time, an earlier one on this same machine did: kept, with
    // its own date.
    if let Some(earlier) = summaries::bench::latest(root).filter(|b| b.machine == machine) {
        for m in earlier.measures {
            let question = &m.what[..2];
            if !measures
                .iter()
                .any(|n: &Measure| n.what.starts_with(question))
            {
                measures.push(m);
            }
        }
    }
    let bench = Bench {
        date: crate::clock::stamp(),
        machine,
        sgemm_gflops,
        measures,
    };
    println!("\nSide by side on {} ({}):", bench.machine, bench.date);
    for m in &bench.measures {
        println!("- {}", m.what);
        for c in &m.commands {
            println!("    $ {c}");
        }
        println!("  {}", line(m));
    }
    let dir = root.join(summaries::bench::DIR);
    artifacts::write_json(dir.join(format!("{}.json", bench.date)), &bench)?;
    artifacts::write_json(dir.join("latest.json"), &bench)?;
    eprintln!("written to {}", dir.join("latest.json").display());
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// One line of figures: ours, theirs, the ratio, the floor.
pub fn line(m: &Measure) -> String {
    let fmt = |v: &[f64]| match spread(v) {
        Some((lo, mid, hi)) => format!("{mid:.1} {} (min {lo:.1}, max {hi:.1})", m.unit),
        None => "–".into(),
    };
    let mut s = format!("ours {}", fmt(&m.ours));
    if !m.theirs.is_empty() {
        s += &format!("; the homework's {}", fmt(&m.theirs));
        if let Some((lo, mid, hi)) = spread(&ratios(m)) {
            s += &format!("; ratio {mid:.2}× (min {lo:.2}, max {hi:.2})");
        }
    }
    if let (Some(f), Some((_, mid, _))) = (m.floor, spread(&m.ours)) {
        s += &format!(
            "; floor {f:.1} {} (ours at {:.0}% of the sgemm rate)",
            m.unit,
            100.0 * f / mid
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_gives_the_ratio_and_the_floor() {
        let m = Measure {
            what: "x".into(),
            unit: "s".into(),
            ours: vec![10.0, 12.0],
            theirs: vec![20.0, 20.0],
            floor: Some(5.0),
            commands: Vec::new(),
            date: String::new(),
        };
        let l = line(&m);
        assert!(
            l.contains("ratio 0.55×") && l.contains("floor 5.0 s"),
            "{l}"
        );
        // Model 2.2: 21.9 M multiply-adds of convolution per image dominate.
        let gflop = q2_epoch_flops("2.2", 12_630.0) / 1e9;
        assert!((1750.0..1850.0).contains(&gflop), "{gflop}");
        assert!(q2_epoch_flops("2.1", 1.0) > q2_epoch_flops("2.2", 1.0));
    }
}

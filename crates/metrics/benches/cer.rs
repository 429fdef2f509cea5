//! Times CER and exact-match WER over the Q3 test set (1,000 words).
//!
//! `cargo bench -p metrics` — reads the homework's `test.tsv` where `datasets::local` finds
//! it (`P2G_DIR`, `data/p2g` after `cargo xtask fixtures`) and scores each gold word against
//! a corrupted copy of itself. Falls back to 1,000 synthetic words when the file is absent,
//! and says so.

use std::time::{Duration, Instant};

fn main() {
    let path = match datasets::local::p2g_dir() {
        Ok(dir) => dir.join("test.tsv"),
        Err(why) => {
            println!("{why}");
            std::path::PathBuf::from("test.tsv (absent)")
        }
    };
    let golds: Vec<String> = match std::fs::read_to_string(&path) {
        Ok(text) => text
            .lines()
            .filter_map(|l| l.split_once('\t').map(|(_, g)| g.to_string()))
            .collect(),
        Err(_) => {
            println!("{} not found: using 1,000 synthetic words", path.display());
            (0..1000)
                .map(|i| format!("word{}pronunciation", i * 7919 % 1000))
                .collect()
        }
    };
    // Corrupt every third character so the DP does real work.
    let preds: Vec<String> = golds
        .iter()
        .map(|g| {
            g.chars()
                .enumerate()
                .map(|(i, c)| if i % 3 == 1 { 'x' } else { c })
                .collect()
        })
        .collect();

    let cer = time("cer", || metrics::cer(&preds, &golds));
    let wer = time("exact_match_wer", || {
        metrics::exact_match_wer(&preds, &golds)
    });
    println!("{} words: CER {cer:.4}, WER {wer:.4}", golds.len());
}

fn time(name: &str, f: impl Fn() -> f64) -> f64 {
    let mut value = f();
    let mut runs: Vec<Duration> = (0..200)
        .map(|_| {
            let t = Instant::now();
            value = std::hint::black_box(f());
            t.elapsed()
        })
        .collect();
    runs.sort();
    println!(
        "{name:>16}: median {:>8.3} ms, min {:>8.3} ms over {} runs",
        runs[runs.len() / 2].as_secs_f64() * 1e3,
        runs[0].as_secs_f64() * 1e3,
        runs.len()
    );
    value
}

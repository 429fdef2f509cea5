//! The Q1 stage of the report: every check and experiment, its figures and `summary.json`.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use ndarray::Array1;
use plot::{ImageGrid, LineChart, Series};
use rand::rngs::StdRng;
use rand::SeedableRng;
pub use summaries::q1::{ImageSweep, Q1Config, Q1Summary, Retrieval};

use crate::retrieval::{self, BetaPoint, CapacityPoint, Corruption};
use crate::verify;
use crate::Memory;

fn log_space(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 10f64.powf(lo + (hi - lo) * i as f64 / (n - 1) as f64))
        .collect()
}

/// Runs Q1 and writes figures and `summary.json` into `out` (the summary last, so its
/// presence means the stage finished).
pub fn run_q1(config: &Q1Config, out: &Path) -> Result<Q1Summary> {
    let start = Instant::now();
    // One writer per folder; what a killed one left half-written goes.
    let _lock = artifacts::Lock::acquire(
        out.join(".lock"),
        &format!("Q1's results in {}", out.display()),
    )?;
    artifacts::remove_stale_temps_in(out);
    let mut figures = Vec::new();
    let mut save = |chart: LineChart, name: &str| -> Result<()> {
        chart.save(out.join(name))?;
        figures.extend([format!("{name}.png"), format!("{name}.svg")]);
        Ok(())
    };

    let checks = verify::run(&config.checks);

    // CCCP energy along iterates, one memory, three temperatures.
    let mut rng = StdRng::seed_from_u64(config.seed);
    let x = verify::randn(&mut rng, 16, 8, 1.0);
    let q0: Array1<f64> = verify::randn(&mut rng, 1, 8, 2.0).row(0).to_owned();
    let mut chart = LineChart::new("CCCP: energy along the iterates (N=16, D=8)")
        .x_label("iteration t")
        .y_label("E(q_t)");
    for beta in [0.1, 1.0, 10.0] {
        let traj = Memory::new(x.clone(), beta).iterate(&q0, 1e-10, 15);
        let pts = traj
            .energies
            .iter()
            .enumerate()
            .map(|(t, &e)| (t as f64, e))
            .collect();
        chart = chart.series(Series::new(format!("β = {beta}"), pts));
    }
    save(chart, "cccp_energy")?;

    let (n, d) = (64, 64);
    let betas = log_space(-3.0, 0.5, 15);
    let sweep = retrieval::beta_sweep(config.seed, n, d, config.queries, &betas);
    let series_of = |c: Corruption, name: &str, f: fn(&BetaPoint) -> f64| {
        let pts = sweep
            .iter()
            .filter(|p| p.corruption == c)
            .map(|p| (p.beta.log10(), f(p)))
            .collect();
        Series::new(name, pts)
    };
    save(
        LineChart::new(format!("One-step retrieval of ±1 patterns (N={n}, D={d})"))
            .x_label("log10 β")
            .y_label("fraction of wrong signs")
            .series(series_of(Corruption::Flip(0.25), "25% flipped", |p| {
                p.bit_error
            }))
            .series(series_of(Corruption::MaskHalf, "half masked", |p| {
                p.bit_error
            })),
        "retrieval_vs_beta",
    )?;
    save(
        LineChart::new("Metastable states: patterns averaged by one update")
            .x_label("log10 β")
            .y_label("exp(entropy of softmax(βXq))")
            .series(series_of(Corruption::Flip(0.25), "25% flipped", |p| {
                p.effective_patterns
            }))
            .series(series_of(Corruption::MaskHalf, "half masked", |p| {
                p.effective_patterns
            })),
        "effective_patterns",
    )?;

    let sizes: Vec<usize> = (1..)
        .map(|k| 1usize << k)
        .take_while(|&s| s <= config.max_patterns)
        .collect();
    let capacity_beta = 1.0;
    let capacity = retrieval::capacity(config.seed, d, &sizes, config.queries, capacity_beta);
    let pts = |f: fn(&CapacityPoint) -> f64| {
        capacity
            .iter()
            .map(|p| ((p.patterns as f64).log2(), f(p)))
            .collect()
    };
    save(
        LineChart::new(format!("Capacity, D={d}, 10% of the signs flipped"))
            .x_label("log2 N (stored patterns)")
            .y_label("exact retrieval rate")
            .series(Series::new(
                "classic (sign(Wq) to a fixed point)",
                pts(|p| p.classic_success),
            ))
            .series(Series::new(
                format!("modern (one update, β = {capacity_beta})"),
                pts(|p| p.modern_success),
            )),
        "capacity",
    )?;

    let image_betas = log_space(-4.0, 0.0, 13);
    let images = retrieval::image_retrieval(
        config.seed,
        64,
        config.queries.min(64),
        &image_betas,
        &[0.003, 0.03, 1.0],
        6,
    );
    let ipts = |f: fn(&retrieval::ImagePoint) -> f64| {
        images
            .sweep
            .iter()
            .map(|p| (p.beta.log10(), f(p)))
            .collect()
    };
    save(
        LineChart::new("Half-masked 32×32 images (64 stored)")
            .x_label("log10 β")
            .y_label("rate")
            .series(Series::new("relative L2 error", ipts(|p| p.relative_error)))
            .series(Series::new(
                "nearest image correct",
                ipts(|p| p.nearest_correct),
            )),
        "image_retrieval_vs_beta",
    )?;
    let mut rows = vec!["stored".to_string(), "query (masked)".to_string()];
    rows.extend(images.gallery_betas.iter().map(|b| format!("β = {b}")));
    let grid = ImageGrid {
        title: "Retrieval from half-masked images in one update".into(),
        rows: rows
            .into_iter()
            .zip(&images.gallery)
            .map(|(label, imgs)| (label, imgs.iter().map(|i| i.to_vec()).collect()))
            .collect(),
        side: 32,
        scale: 3,
    };
    grid.save(out.join("image_retrieval"))?;
    figures.push("image_retrieval.png".into());

    let summary = Q1Summary {
        version: summaries::VERSION,
        config: config.clone(),
        checks,
        retrieval: Retrieval {
            beta_sweep_patterns: n,
            dimension: d,
            beta_sweep: sweep,
            capacity_beta,
            capacity,
            images: ImageSweep {
                stored: images.stored,
                sweep: images.sweep,
                gallery_betas: images.gallery_betas,
            },
        },
        figures,
        seconds: start.elapsed().as_secs_f64(),
    };
    artifacts::write_json(out.join("summary.json"), &summary)?;
    Ok(summary)
}

//! Every reader of outside files under a fixed-seed mutation campaign: thousands of mutants
//! of a real file each, read in a child process whose address space is capped at what it
//! uses plus 256 MiB and 32 bytes per byte of the file. No mutant may make the reader panic,
//! abort or exceed the cap, and every refusal must be one sentence naming the file; a
//! damaged resume point must resume, or be refused and then start afresh with `--force`.
//! (`cargo xtask fuzz` runs longer campaigns with fresh seeds.)

use std::path::{Path, PathBuf};

use fuzz::campaign::{self, Limits, Outcome};
use fuzz::Reader;

const MUTANTS: usize = 2_000;
const SEED: u64 = 2024;

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_read-untrusted"))
}

fn work(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fuzz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `fits`: the seed is one the reader accepts, so some mutants must be accepted too.
fn check(reader: Reader, seed: &Path, work: &Path, count: usize, fits: bool) -> Outcome {
    let o = campaign::run(reader, seed, &exe(), work, count, SEED, Limits::default()).unwrap();
    let failures: Vec<String> = o.failures.iter().map(ToString::to_string).collect();
    assert!(
        failures.is_empty(),
        "{} of {} mutants broke a rule:\n{}",
        failures.len(),
        o.mutants,
        failures.join("\n")
    );
    assert_eq!(o.mutants, count);
    // Both paths were exercised: mutants the reader refused, and some it still accepted.
    assert!(o.refused > count / 4 && (o.accepted > 0 || !fits), "{o:?}");
    eprintln!(
        "{}: {} mutants, {} accepted, {} refused, none broke a rule",
        reader.name(),
        o.mutants,
        o.accepted,
        o.refused
    );
    o
}

fn campaign(reader: Reader) {
    let w = work(reader.name());
    let seed = campaign::seed(reader, &exe(), &w).unwrap();
    // The seed itself reads without error (a run folder is read, so resumed, in a copy).
    if reader == Reader::Resume {
        let copy = w.join("copy.run");
        campaign::copy_run(&seed, &copy).unwrap();
        fuzz::read(reader, &copy).unwrap();
        std::fs::remove_dir_all(copy).unwrap();
    } else {
        fuzz::read(reader, &seed).unwrap();
    }
    check(reader, &seed, &w, MUTANTS, true);
    std::fs::remove_dir_all(w).unwrap();
}

#[test]
fn pytorch_checkpoints() {
    campaign(Reader::Pt);
}

#[test]
fn safetensors_checkpoints() {
    campaign(Reader::Safetensors);
}

#[test]
fn npz_image_sets() {
    campaign(Reader::Npz);
}

#[test]
fn tsv_corpora() {
    campaign(Reader::Tsv);
}

#[test]
fn resume_points() {
    campaign(Reader::Resume);
}

#[test]
fn a_torch_save_file_loads_exactly() {
    // The seed is laid out as torch.save lays it out, tied storage included: it loads into
    // the model bit for bit.
    let w = work("exact");
    let path = w.join("fresh.pt");
    fuzz::seeds::write_pt(&path).unwrap();
    let fresh = fuzz::seeds::model();
    let mut loaded = fuzz::seeds::model();
    tch::no_grad(|| {
        for (_, mut v) in loaded.vs.variables() {
            let _ = v.zero_();
        }
    });
    loaded.load(&path).unwrap();
    let (a, b) = (fresh.vs.variables(), loaded.vs.variables());
    assert_eq!(a.len(), b.len());
    for (name, t) in &a {
        assert!(t.equal(&b[name]), "{name}");
    }
    std::fs::remove_dir_all(w).unwrap();
}

#[test]
fn the_groups_pytorch_checkpoint_under_mutation() {
    // A `.pt` written by the homework's own code (the seed report's weights).
    let dir = datasets::local::checkpoints_dir().unwrap_or_else(|why| panic!("{why}"));
    let real = dir.join("seed-no-attn.pt");
    let t = torchkit::pytorch::read_state_dict(&real).unwrap();
    assert_eq!(
        t.len(),
        16,
        "the homework's state_dict entries, generator.weight included"
    );
    // Its mutants are read whole, then refused by the small model they do not fit.
    let w = work("real-pt");
    let seed = w.join("seed.pt");
    std::fs::copy(&real, &seed).unwrap();
    check(Reader::Pt, &seed, &w, 300, false);
    std::fs::remove_dir_all(w).unwrap();
}

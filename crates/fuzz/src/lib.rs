//! Fuzzing every reader of files from outside: PyTorch `.pt` checkpoints, safetensors
//! checkpoints, npz image sets, the TSV corpus and a training's resume point.
//!
//! A campaign ([`campaign::run`]) takes a real file of the kind ([`seeds`]), makes thousands
//! of mutants of it ([`mutate`]) and has the `read-untrusted` binary read them in a child
//! process whose address space is capped at what it uses plus a small multiple of the file's
//! size. It passes when no mutant makes the reader panic, abort or run out of that memory,
//! and every refusal is one sentence naming the file. For a resume point the rule is
//! stronger: whatever the damage, the rerun with `--force` must succeed.
//!
//! The test suite runs fixed-seed campaigns (`tests/readers.rs`); `cargo xtask fuzz` runs
//! longer ones with fresh seeds.

use std::path::Path;

use anyhow::Result;

pub mod campaign;
pub mod mutate;
pub mod resume;
pub mod seeds;

/// The readers of outside files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Reader {
    /// `torch.save` checkpoints, loaded into a model (`p2g test --checkpoint x.pt`).
    Pt,
    /// Safetensors checkpoints, loaded into a model.
    Safetensors,
    /// npz image sets (`cnn --data`).
    Npz,
    /// The homework's TSV files (`p2g --data`).
    Tsv,
    /// A training's resume point: manifest and state files (`torchkit::trainer`).
    Resume,
}

impl Reader {
    /// Every reader.
    pub const ALL: [Reader; 5] = [
        Reader::Pt,
        Reader::Safetensors,
        Reader::Npz,
        Reader::Tsv,
        Reader::Resume,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Reader::Pt => "pt",
            Reader::Safetensors => "safetensors",
            Reader::Npz => "npz",
            Reader::Tsv => "tsv",
            Reader::Resume => "resume",
        }
    }

    /// The extension its files get.
    pub fn extension(self) -> &'static str {
        match self {
            Reader::Pt => "pt",
            Reader::Safetensors => "safetensors",
            Reader::Npz => "npz",
            Reader::Tsv => "tsv",
            Reader::Resume => "run",
        }
    }
}

/// Loads libtorch's pools and first allocations, so that the memory cap is taken after.
pub fn warm_up() {
    let m = seeds::model();
    let _ = m.parameters();
}

/// Reads `file` as the project reads such a file from outside.
pub fn read(reader: Reader, file: &Path) -> Result<()> {
    match reader {
        Reader::Pt | Reader::Safetensors => {
            torchkit::checkpoint::metadata(file)?;
            seeds::model().load(file)
        }
        Reader::Npz => {
            vision::dataset::Dataset::load(file, vision::dataset::Layout::Skeleton).map(|_| ())
        }
        Reader::Tsv => seq2seq::data::read_tsv(file).map(|_| ()),
        Reader::Resume => resume::resume(file),
    }
}

//! Q3's summary: (a) and (b) trained and tested greedily and by beam search, (c) nucleus
//! sampling on (b)'s checkpoint, with the options and timings.

use serde::{Deserialize, Serialize};

/// The options of the stage, as run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Q3Options {
    /// Folder with `train.tsv`, `valid.tsv`, `test.tsv`.
    pub data_dir: String,
    /// `data_dir` holds the generated quick-run corpus, not the homework's.
    pub synthetic: bool,
    /// Seed (42).
    pub seed: u64,
    /// Epochs (20).
    pub epochs: usize,
    /// Adam learning rate (0.003).
    pub lr: f64,
    /// Examples per batch (64).
    pub batch_size: usize,
    /// Longest decoded output (50).
    pub max_len: usize,
    /// Trained as the homework's code runs, op for op and draw for draw.
    pub exact: bool,
    /// Hidden size (128).
    pub hidden: i64,
    /// Dropout on embeddings and outputs (0.3).
    pub dropout: f64,
    /// Nucleus mass (0.8).
    pub top_p: f64,
    /// Samples per example for WER@k (3).
    pub k: usize,
    /// Beam widths compared with greedy.
    pub beam_widths: Vec<usize>,
    /// Trainings at once.
    pub jobs: usize,
    /// Retrievals per step of each Hopfield-head model trained beside (b).
    #[serde(default)]
    pub hopfield_steps: Vec<usize>,
}

/// Everything the stage measured; `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Q3Summary {
    /// [`crate::VERSION`].
    pub version: u32,
    /// The options.
    pub config: Q3Options,
    /// Vocabulary sizes (source, target).
    pub vocab_sizes: (usize, usize),
    /// (a).
    pub no_attention: ModelReport,
    /// (b).
    pub attention: ModelReport,
    /// (c), on the attention checkpoint.
    pub nucleus: NucleusReport,
    /// The Hopfield-head models, trained as (b) with the head replaced.
    #[serde(default)]
    pub hopfield: Vec<HopfieldRun>,
    /// What the trained heads retrieve (none without a Hopfield model).
    #[serde(default)]
    pub retrieval: Option<Retrieval>,
    /// Device and threads.
    pub device: String,
    /// Wall time of the stage.
    pub total_seconds: f64,
    /// Wall time until both models were trained.
    pub training_wall_seconds: f64,
    /// Wall time of all test decoding (greedy, beam, nucleus) and figures.
    pub testing_wall_seconds: f64,
    /// Peak resident memory of this (testing) process, MiB; training peaks are per model.
    pub peak_rss_mib: Option<f64>,
    /// Figures written.
    pub figures: Vec<String>,
}

/// Test results of one trained model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelReport {
    /// Trainable parameters.
    pub params: i64,
    /// Lowest validation CER and its epoch.
    pub best_val_cer: f64,
    /// 1-based epoch of the best checkpoint.
    pub best_epoch: usize,
    /// Validation CER per epoch.
    pub val_cer: Vec<f64>,
    /// Greedy test scores of the best checkpoint.
    pub test: Scores,
    /// Seconds to train (validation decoding included).
    pub train_seconds: f64,
    /// Seconds to decode the test set greedily.
    pub test_decode_seconds: f64,
    /// Beam search on the same checkpoint.
    pub beam: Vec<BeamReport>,
    /// The per-epoch log and the checkpoint, relative to the stage folder.
    pub files: Vec<String>,
    /// Peak resident memory of the training process, MiB.
    pub peak_rss_mib: Option<f64>,
    /// The epochs after which training was interrupted and (exactly) resumed.
    pub resumed_after_epochs: Vec<usize>,
    /// Where the processes that trained it ran (`host`, `host, slurm job 12_1`), in order.
    #[serde(default)]
    pub places: Vec<String>,
}

/// Beam search at one width.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BeamReport {
    /// Beam width.
    pub width: usize,
    /// Test scores.
    pub test: Scores,
    /// Decoding seconds.
    pub seconds: f64,
}

/// Nucleus sampling results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NucleusReport {
    /// p.
    pub p: f64,
    /// Test CER/WER of one sample per example, and WER@k of k more.
    pub test: NucleusScores,
    /// How many examples had differing samples, and the first few.
    pub differing_examples: usize,
    /// Up to 10 (gold, samples) pairs whose samples differ.
    pub differing_sample: Vec<(String, Vec<String>)>,
}

/// Scores of nucleus sampling.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NucleusScores {
    /// CER of the first sample.
    pub cer: f64,
    /// WER of the first sample.
    pub wer: f64,
    /// WER@3 over three further samples.
    pub wer_at_3: f64,
}

/// CER and the homework's WER of a set of predictions.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Scores {
    /// Σ Levenshtein / Σ gold characters.
    pub cer: f64,
    /// Fraction of examples not predicted exactly.
    pub wer: f64,
}

/// A model with the Hopfield attention head.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HopfieldRun {
    /// Retrievals per decoder step.
    pub steps: usize,
    /// Its training and test results.
    pub report: ModelReport,
}

/// The effective number of attended source positions, `exp` of the attention's entropy,
/// under teacher forcing on the test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectivePositions {
    /// Mean at decoder step 1, 2, …
    pub per_step: Vec<f64>,
    /// How many words have each step.
    pub words_per_step: Vec<usize>,
    /// Over every step of every word.
    pub mean: f64,
}

/// One head at one inverse temperature and number of retrievals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadPoint {
    /// What it is ("(b) Bahdanau", "Hopfield, 1 step", …).
    pub label: String,
    /// β over the trained β (1 for the models as trained).
    pub beta_scale: f64,
    /// Retrievals per decoder step.
    pub steps: usize,
    /// Effective positions.
    pub effective: EffectivePositions,
    /// Greedy test scores at this setting.
    pub test: Scores,
}

/// What the trained attention heads retrieve, in Q1's terms.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Retrieval {
    /// Mean source length (phonemes) of the test words: the effective positions of
    /// uniform averaging.
    pub mean_source_length: f64,
    /// Bahdanau's and each Hopfield model's head, as trained.
    pub trained: Vec<HeadPoint>,
    /// The first Hopfield model with β scaled and the retrievals changed at test time.
    pub sweep: Vec<HeadPoint>,
    /// The words of the attention maps (gold spellings).
    pub map_words: Vec<String>,
}

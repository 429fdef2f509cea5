//! The epoch loop every model crate runs. As with Lightning's `Trainer` or burn's `Learner`,
//! the loop is owned here once and the model crate brings the maths: a [`Learner`] trains
//! and evaluates one epoch and says whether its weights become the checkpoint.
//!
//! What the loop guarantees, for a run whose files start with `stem` (`out/attention`):
//! * **One writer.** `stem.lock` is held for the whole run; a second run into the same
//!   files is refused at once, naming the lock.
//! * **Kill-safe.** After every epoch the state (weights, optimiser, the generator's state)
//!   goes to `stem.state-<epoch>.safetensors`, then the manifest `stem.resume.json` that
//!   names it is written — that rename is the commit. Only then are the per-epoch CSV and
//!   the published checkpoint rewritten from it, so a kill at any moment leaves either the
//!   previous epoch or this one, and a rerun rewrites the CSV and re-publishes the
//!   checkpoint of the epoch the manifest names (the best epoch's state is kept for that).
//! * **Exact resume.** The rerun restores the generator's state, so it draws what the
//!   uninterrupted run would have drawn: its outputs are the uninterrupted run's, bit for bit.
//! * **Finished is final.** A finished run writes `stem.run.json` (the commit), then removes
//!   its resume files. Rerun with the same options and data it is reused, not redone; with
//!   other options or data it is refused unless the caller replaces it (`--force`).
//! * **Nothing foreign is overwritten**: a checkpoint that no record of ours explains is
//!   left alone unless the caller replaces it; a resume point of other options or data
//!   (the data's SHA-256 is part of the key) is refused, never mixed in.
//! * **Divergence stops the run**: a non-finite loss is an error naming the epoch and batch,
//!   and so are non-finite weights after an epoch; nothing of that epoch is saved.
//! * **A broken resume point never blocks**: a manifest, state or record that cannot be read
//!   (truncated, garbled, missing, naming files outside the run, a state whose SHA-256 is
//!   not the one its manifest recorded) is checked whole before anything of it is applied; the error names the file and says that `--force` starts
//!   afresh, and with `--force` the run does, from the weights it was given.
//! * **Outputs are checked first**: a checkpoint or log path that is a folder or cannot be
//!   written fails before the lock is taken or any epoch runs.
//! * Stale temporary files of the run's own names, left by a kill, are removed.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// What a model crate brings to the loop.
pub trait Learner {
    /// One epoch's figures: a line of the CSV log.
    type Row: Serialize + DeserializeOwned + Clone;
    /// What the epochs hand on to the next besides the weights (running loss totals, the
    /// best validation score so far...); saved with every resume point.
    type Carry: Serialize + DeserializeOwned + Clone;

    /// The weights (and buffers) a resume point saves and restores.
    fn var_store(&mut self) -> &mut VarStore;
    /// The optimiser's state, for the resume point (none for plain SGD).
    fn optimizer_state(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }
    /// Restores what [`Learner::optimizer_state`] gave.
    fn load_optimizer_state(&mut self, _state: &HashMap<String, Tensor>) -> Result<()> {
        Ok(())
    }
    /// Trains and evaluates epoch `ctx.number`, updating `carry`.
    fn epoch(&mut self, carry: &mut Self::Carry, ctx: &mut Epoch) -> Result<Verdict<Self::Row>>;
    /// Writes the current weights as the run's checkpoint (atomically).
    fn save_checkpoint(&self, path: &Path) -> Result<()>;
    /// Loads a checkpoint written by [`Learner::save_checkpoint`] (a finished run, reused).
    fn load_checkpoint(&mut self, path: &Path) -> Result<()>;
}

/// What an epoch ended with.
pub struct Verdict<R> {
    /// Its CSV row.
    pub row: R,
    /// Whether this epoch's weights become the checkpoint (the best so far, or simply the
    /// latest).
    pub keep: bool,
}

/// Where a run writes, and what its results depend on.
#[derive(Debug, Clone)]
pub struct Run {
    /// Prefix of the loop's own files (`stem.lock`, `stem.resume.json`, ...).
    pub stem: PathBuf,
    /// The published checkpoint.
    pub checkpoint: PathBuf,
    /// The per-epoch CSV.
    pub log_csv: PathBuf,
    /// The options the results depend on (any text that changes when they would).
    pub options: String,
    /// SHA-256 of the data trained and validated on.
    pub data_sha256: String,
    /// Epochs to train.
    pub epochs: usize,
    /// Replace a finished run, a resume point or a checkpoint of other options or data
    /// instead of refusing (`--force`).
    pub replace: bool,
    /// The device the weights live on (its generator is saved with the state).
    pub device: Device,
    /// Other files the caller writes for this run (an outcome record): their stale
    /// temporaries are removed under the run's lock too.
    pub extra_outputs: Vec<PathBuf>,
    /// Keep libtorch's thread count for the whole run instead of taking up cores another
    /// job frees (`jobs::ThreadShare`): for runs whose numbers must not depend on it.
    pub fixed_threads: bool,
}

/// A finished run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fitted<R, C> {
    /// One row per epoch.
    pub rows: Vec<R>,
    /// What the last epoch handed on.
    pub carry: C,
    /// The epoch whose weights are the checkpoint (0: none was kept).
    pub best_epoch: usize,
    /// Training seconds, summed over every process that worked on the run.
    pub seconds: f64,
    /// The epochs after which the run was interrupted and resumed, in order.
    pub resumed_after_epochs: Vec<usize>,
    /// Where the processes that trained it ran, in order ([`crate::jobs::place`]).
    #[serde(default)]
    pub places: Vec<String>,
    /// Whether this call found the run already finished and did no training.
    #[serde(skip)]
    pub reused: bool,
}

/// What the loop hands a learner for one epoch: its number, the progress bar, the thread
/// share and the divergence check.
pub struct Epoch {
    /// 1-based.
    pub number: usize,
    /// Epochs in the run.
    pub of: usize,
    bar: indicatif::ProgressBar,
    share: crate::jobs::ThreadShare,
}

impl Epoch {
    /// Sets the number of batches the bar counts.
    pub fn batches(&mut self, n: usize) {
        self.bar.set_length(n as u64);
    }

    /// Marks a batch done (`loss`, when the learner has it on the host, shows on the bar)
    /// and takes up any cores another job freed.
    pub fn batch_done(&mut self, loss: Option<f64>) {
        self.bar.inc(1);
        if let Some(l) = loss {
            self.bar.set_message(format!("loss {l:.4}"));
        }
        self.share.poll();
    }

    /// The epoch's batch loop: `step` on each of `batches` in turn, each loss read back and
    /// checked at once (a non-finite one stops the run naming its batch), the progress bar
    /// showing the running mean. Returns the losses in order.
    pub fn train_batches<B>(
        &mut self,
        batches: impl ExactSizeIterator<Item = B>,
        mut step: impl FnMut(B) -> Result<f64>,
    ) -> Result<Vec<f64>> {
        let n = batches.len();
        self.batches(n);
        let (mut losses, mut sum) = (Vec::with_capacity(n), 0.0);
        for (b, batch) in batches.enumerate() {
            let loss = step(batch)?;
            self.check_finite(&format!("batch {} of {n}", b + 1), loss)?;
            losses.push(loss);
            sum += loss;
            self.batch_done(Some(sum / losses.len() as f64));
        }
        Ok(losses)
    }

    /// [`Epoch::train_batches`] for steps whose losses stay on the device (`step` returns a
    /// scalar tensor): read back once, when the epoch's batches are done — no host sync per
    /// batch — then checked, naming the first non-finite batch.
    pub fn train_batches_on_device<B>(
        &mut self,
        batches: impl ExactSizeIterator<Item = B>,
        mut step: impl FnMut(B) -> tch::Tensor,
    ) -> Result<Vec<f64>> {
        let n = batches.len();
        self.batches(n);
        let mut losses = Vec::with_capacity(n);
        for batch in batches {
            losses.push(step(batch));
            self.batch_done(None);
        }
        if losses.is_empty() {
            return Ok(Vec::new());
        }
        let values =
            Vec::<f64>::try_from(tch::Tensor::stack(&losses, 0).to_kind(tch::Kind::Double))?;
        for (b, &l) in values.iter().enumerate() {
            self.check_finite(&format!("batch {} of {n}", b + 1), l)?;
        }
        Ok(values)
    }

    /// An error when `loss` (of batch `batch`, 0-based, or of the evaluation) is not finite.
    pub fn check_finite(&self, what: &str, value: f64) -> Result<()> {
        if value.is_finite() {
            return Ok(());
        }
        bail!(Diverged {
            epoch: self.number,
            what: format!("the loss of {what} is {value}"),
        })
    }
}

/// A non-finite loss or weight: the run stops, keeping the last finished epoch's state.
#[derive(Debug)]
pub struct Diverged {
    /// Epoch it happened in.
    pub epoch: usize,
    /// What is not finite: "the loss of batch 17 is NaN", "the weight 'fc1.weight' holds
    /// NaN or infinite values".
    pub what: String,
}

impl std::fmt::Display for Diverged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kept = if self.epoch > 1 {
            format!(
                "the run as it was after epoch {} is kept, checkpoint included",
                self.epoch - 1
            )
        } else {
            "nothing was saved".to_string()
        };
        write!(
            f,
            "training diverged: in epoch {}, {}; stopped, {kept} (try a smaller learning rate)",
            self.epoch, self.what
        )
    }
}

impl std::error::Error for Diverged {}

/// A resume point of other options or data, refused without `--force` (never "unreadable").
#[derive(Debug)]
struct ForeignResumePoint(String);

impl std::fmt::Display for ForeignResumePoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ForeignResumePoint {}

/// What a run's results depend on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Key {
    options: String,
    data_sha256: String,
}

impl Key {
    /// How `self` (a record on disk) differs from `now`.
    fn difference(&self, now: &Key) -> String {
        let mut parts = Vec::new();
        if self.options != now.options {
            let (was, is) = around_first_difference(&self.options, &now.options);
            parts.push(format!("options were `{was}`, now `{is}`"));
        }
        if self.data_sha256 != now.data_sha256 {
            parts.push(format!(
                "data SHA-256 was {}, now {}",
                short(&self.data_sha256),
                short(&now.data_sha256)
            ));
        }
        parts.join("; ")
    }
}

/// The two texts from a little before their first difference, at most 60 characters each
/// (a record on disk may hold anything).
fn around_first_difference(a: &str, b: &str) -> (String, String) {
    let same = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    let from = same.saturating_sub(20);
    let cut = |s: &str| {
        let mut out: String = s.chars().skip(from).take(60).collect();
        if from > 0 {
            out.insert(0, '…');
        }
        if s.chars().count() > from + 60 {
            out.push('…');
        }
        out
    };
    (cut(a), cut(b))
}

/// The first 12 characters (a record on disk may hold any text, not only hex).
fn short(sha: &str) -> String {
    sha.chars().take(12).collect()
}

/// The commit record after an epoch: `stem.resume.json`.
#[derive(Serialize, Deserialize)]
struct Manifest<R, C> {
    key: Key,
    /// Epochs finished.
    epoch: usize,
    /// State file of the last finished epoch.
    state: String,
    /// State file of the kept epoch (the published checkpoint), if any.
    kept_state: Option<String>,
    /// SHA-256 of each state file named, checked before it is read: a state damaged on disk
    /// would otherwise resume (its weights and Adam moments are only numbers) and diverge.
    #[serde(default)]
    sha256: BTreeMap<String, String>,
    fitted: Fitted<R, C>,
}

/// The commit record of a finished run: `stem.run.json`.
#[derive(Serialize, Deserialize)]
struct Record<R, C> {
    key: Key,
    epochs: usize,
    checkpoint: PathBuf,
    fitted: Fitted<R, C>,
}

/// The loop's own files.
struct Files {
    stem: PathBuf,
}

impl Files {
    fn with(&self, suffix: &str) -> PathBuf {
        let mut name = self.stem.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        self.stem.with_file_name(name)
    }
    fn lock(&self) -> PathBuf {
        self.with(".lock")
    }
    fn manifest(&self) -> PathBuf {
        self.with(".resume.json")
    }
    fn record(&self) -> PathBuf {
        self.with(".run.json")
    }
    fn state_name(&self, epoch: usize) -> String {
        format!(
            "{}.state-{epoch}.safetensors",
            self.stem.file_name().unwrap_or_default().to_string_lossy()
        )
    }
    fn sibling(&self, name: &str) -> PathBuf {
        self.stem.with_file_name(name)
    }
    /// The state file a manifest names, if the name is one of this run's
    /// (`stem.state-<n>.safetensors` beside the stem, never a path elsewhere).
    fn state_file(&self, name: &str) -> Result<PathBuf> {
        let prefix = format!(
            "{}.state-",
            self.stem.file_name().unwrap_or_default().to_string_lossy()
        );
        let epoch = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".safetensors"));
        if !epoch.is_some_and(|e| !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())) {
            bail!(
                "{} names the state file '{}', which is not one of this run's ({prefix}<epoch>.safetensors)",
                self.manifest().display(),
                name.chars().take(80).collect::<String>()
            );
        }
        Ok(self.sibling(name))
    }
    /// State files of this stem in the folder (`stem.state-<n>.safetensors`).
    fn states(&self) -> Vec<PathBuf> {
        let prefix = format!(
            "{}.state-",
            self.stem.file_name().unwrap_or_default().to_string_lossy()
        );
        list(&self.stem)
            .into_iter()
            .filter(|(name, _)| name.starts_with(&prefix) && name.ends_with(".safetensors"))
            .map(|(_, p)| p)
            .collect()
    }
}

/// Files in the folder of `stem`: (name, path).
fn list(stem: &Path) -> Vec<(String, PathBuf)> {
    artifacts::files_in(artifacts::folder_of(stem))
}

/// Saves the learner's state after `epoch` to `path`: weights, optimiser, generator.
fn save_state<L: Learner>(learner: &mut L, device: Device, path: &Path) -> Result<()> {
    let named = collect_state(learner, device)?;
    artifacts::with_temp_file(path, |tmp| {
        Tensor::write_safetensors(&named, tmp).map_err(anyhow::Error::from)
    })
    .with_context(|| format!("saving the resume state {}", path.display()))
}

/// The learner's state as a resume point names it: `model.<variable>`, `optimizer.<name>`
/// and the generators' `rng.<device>` (shallow where the tensors are already on the CPU).
fn collect_state<L: Learner>(learner: &mut L, device: Device) -> Result<Vec<(String, Tensor)>> {
    let optimizer = learner.optimizer_state();
    let mut named: Vec<(String, Tensor)> = learner
        .var_store()
        .variables()
        .into_iter()
        // Contiguous: safetensors stores row-major data (a model may keep channels-last
        // weights).
        .map(|(k, v)| (format!("model.{k}"), v.to_device(Device::Cpu).contiguous()))
        .collect();
    named.extend(optimizer.into_iter().map(|(k, v)| {
        (
            format!("optimizer.{k}"),
            v.to_device(Device::Cpu).contiguous(),
        )
    }));
    for (name, d) in generators(device) {
        let state = crate::rng::state(d)?;
        named.push((name.into(), Tensor::from_slice(&state)));
    }
    Ok(named)
}

/// The learner's state copied aside, to go back to if a resume point fails half-applied.
fn snapshot<L: Learner>(learner: &mut L, device: Device) -> Result<HashMap<String, Tensor>> {
    Ok(collect_state(learner, device)?
        .into_iter()
        .map(|(k, v)| (k, v.copy()))
        .collect())
}

/// The generators a run on `device` draws from: the CPU's always (shuffling, CPU dropout),
/// the GPU's too on a GPU.
fn generators(device: Device) -> Vec<(&'static str, Device)> {
    let mut g = vec![("rng.cpu", Device::Cpu)];
    if let Device::Cuda(_) = device {
        g.push(("rng.cuda", device));
    }
    g
}

/// Reads a state file and checks it against the learner before anything is applied: every
/// variable present with its shape and finite, and (with `everything`) the generators'
/// states present. Errors name the file.
fn read_state<L: Learner>(
    learner: &mut L,
    device: Device,
    path: &Path,
    everything: bool,
    sha256: Option<&String>,
) -> Result<HashMap<String, Tensor>> {
    if let Some(want) = sha256 {
        let got = artifacts::sha256_file(path)?;
        if &got != want {
            bail!(
                "resume state {} is not the file its manifest recorded (SHA-256 {}, recorded {}): damaged",
                path.display(),
                short(&got),
                short(want)
            );
        }
    }
    let file: HashMap<String, Tensor> = Tensor::read_safetensors(path)
        .with_context(|| format!("reading the resume state {}", path.display()))?
        .into_iter()
        .collect();
    for (name, var) in learner.var_store().variables() {
        match file.get(&format!("model.{name}")) {
            Some(t) if t.size() == var.size() => {
                if t.is_floating_point() && !bool::try_from(t.isfinite().all()).unwrap_or(false) {
                    bail!(
                        "resume state {}: '{name}' holds NaN or infinite values",
                        path.display()
                    );
                }
            }
            _ => bail!(
                "resume state {} lacks '{name}' with shape {:?}",
                path.display(),
                var.size()
            ),
        }
    }
    // The optimiser's state too: a NaN moment would make the first step diverge.
    for (name, t) in &file {
        if t.is_floating_point() && !bool::try_from(t.isfinite().all()).unwrap_or(false) {
            bail!(
                "resume state {}: '{}' holds NaN or infinite values",
                path.display(),
                name.chars().take(80).collect::<String>()
            );
        }
    }
    if everything {
        for (name, _) in generators(device) {
            if !file.contains_key(name) {
                bail!(
                    "resume state {} lacks the generator state {name}",
                    path.display()
                );
            }
        }
    }
    Ok(file)
}

/// Applies a state read by [`read_state`]: weights always; optimiser and generators when
/// `everything`.
fn apply_state<L: Learner>(
    learner: &mut L,
    device: Device,
    file: &HashMap<String, Tensor>,
    everything: bool,
) -> Result<()> {
    tch::no_grad(|| {
        for (name, mut var) in learner.var_store().variables() {
            var.copy_(&file[&format!("model.{name}")].to_device(var.device()));
        }
    });
    if !everything {
        return Ok(());
    }
    let optimizer: HashMap<String, Tensor> = file
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("optimizer.")?.to_string(), v.shallow_clone())))
        .collect();
    learner.load_optimizer_state(&optimizer)?;
    for (name, d) in generators(device) {
        let bytes = Vec::<u8>::try_from(file[name].to_kind(Kind::Uint8))?;
        crate::rng::set_state(d, &bytes)?;
    }
    Ok(())
}

/// The first variable holding NaN or an infinity, if any.
fn non_finite_variable<L: Learner>(learner: &mut L) -> Option<String> {
    learner
        .var_store()
        .variables()
        .into_iter()
        .find(|(_, v)| {
            v.is_floating_point() && !bool::try_from(v.isfinite().all()).unwrap_or(false)
        })
        .map(|(name, _)| name)
}

/// What a resume point restored.
struct Resumed<R, C> {
    manifest: Manifest<R, C>,
    log: crate::runlog::EpochLog<R>,
}

/// Restores the resume point whose manifest has been read: the checkpoint of the kept epoch
/// re-published, the CSV rewritten, then the latest state applied. Both states are read and
/// checked before anything is applied.
fn restore<L: Learner>(
    learner: &mut L,
    run: &Run,
    files: &Files,
    m: Manifest<L::Row, L::Carry>,
) -> Result<Resumed<L::Row, L::Carry>> {
    anyhow::ensure!(
        m.fitted.rows.len() == m.epoch,
        "{} records {} epochs but {} rows",
        files.manifest().display(),
        m.epoch,
        m.fitted.rows.len()
    );
    // A manifest that records checksums must record one for each state it names.
    let sha = |name: &String| -> Result<Option<&String>> {
        match m.sha256.get(name) {
            None if !m.sha256.is_empty() => bail!(
                "{} records no checksum for the state file it names",
                files.manifest().display()
            ),
            found => Ok(found),
        }
    };
    let kept = match &m.kept_state {
        Some(kept) => Some(read_state(
            learner,
            run.device,
            &files.state_file(kept)?,
            false,
            sha(kept)?,
        )?),
        None => None,
    };
    let latest_path = files.state_file(&m.state)?;
    let latest = read_state(learner, run.device, &latest_path, true, sha(&m.state)?)?;
    if let Some(kept) = &kept {
        apply_state(learner, run.device, kept, false)?;
        learner.save_checkpoint(&run.checkpoint)?;
    }
    apply_state(learner, run.device, &latest, true)
        .with_context(|| format!("restoring the resume state {}", latest_path.display()))?;
    let mut log = crate::runlog::EpochLog::resume(&run.log_csv, m.fitted.rows.clone());
    log.rewrite()?;
    Ok(Resumed { manifest: m, log })
}

/// Trains `learner` for `run.epochs` epochs, resuming or reusing what an earlier process left
/// (see the module's documentation); `start` is the carry of a fresh run.
pub fn fit<L: Learner>(
    learner: &mut L,
    run: &Run,
    start: L::Carry,
) -> Result<Fitted<L::Row, L::Carry>> {
    let files = Files {
        stem: run.stem.clone(),
    };
    // Before the lock and any epoch: every output can be written (a folder cannot).
    for output in [&run.checkpoint, &run.log_csv]
        .into_iter()
        .chain(&run.extra_outputs)
    {
        artifacts::check_writable(output)?;
    }
    let _lock = artifacts::Lock::acquire(
        files.lock(),
        &format!("the run {}", run.checkpoint.display()),
    )?;
    let record_path = files.record();
    let manifest_path = files.manifest();
    artifacts::remove_stale_temps(&[&record_path, &manifest_path, &run.checkpoint, &run.log_csv]);
    for extra in &run.extra_outputs {
        artifacts::remove_stale_temps(&[extra]);
    }
    for state in files.states() {
        artifacts::remove_stale_temps(&[&state]);
    }
    let key = Key {
        options: run.options.clone(),
        data_sha256: run.data_sha256.clone(),
    };

    // A finished run: reused with the same key, else refused or replaced.
    if record_path.exists() {
        match artifacts::read_json::<Record<L::Row, L::Carry>>(&record_path) {
            Ok(record) if record.key == key && record.epochs == run.epochs => {
                return reuse(learner, run, &files, record);
            }
            Ok(record) if !run.replace => bail!(
                "{} holds a finished run of other options or data ({}); pass --force to train again in its place, or write elsewhere",
                record_path.display(),
                if record.key == key {
                    format!("{} epochs, now {}", record.epochs, run.epochs)
                } else {
                    record.key.difference(&key)
                }
            ),
            Ok(_) => eprintln!(
                "replacing the finished run {} (--force)",
                record_path.display()
            ),
            Err(e) if !run.replace => bail!(
                "the finished run's record is unreadable ({e:#}); pass --force to train again in its place"
            ),
            Err(e) => eprintln!("replacing the unreadable record ({e:#}) (--force)"),
        }
        std::fs::remove_file(&record_path)?;
    }

    let mut fitted = Fitted {
        rows: Vec::new(),
        carry: start,
        best_epoch: 0,
        seconds: 0.0,
        resumed_after_epochs: Vec::new(),
        places: Vec::new(),
        reused: false,
    };
    let mut states: (Option<String>, Option<String>) = (None, None); // (latest, kept)
    let mut checksums: BTreeMap<String, String> = BTreeMap::new();
    let mut log = crate::runlog::EpochLog::new(&run.log_csv);
    if manifest_path.exists() {
        // Kept aside: a resume point that fails half-applied leaves the learner as given.
        let fresh = snapshot(learner, run.device)?;
        let resumed = artifacts::read_json::<Manifest<L::Row, L::Carry>>(&manifest_path)
            .and_then(|m| {
                if m.key != key && !run.replace {
                    bail!(ForeignResumePoint(format!(
                        "{} is the resume point of a run of other options or data ({}); pass --force to start afresh in its place, or write elsewhere",
                        manifest_path.display(),
                        m.key.difference(&key)
                    )));
                }
                if m.key != key {
                    eprintln!(
                        "dropping the resume point {} (--force)",
                        manifest_path.display()
                    );
                    return Ok(None);
                }
                restore(learner, run, &files, m).map(Some)
            });
        match resumed {
            Ok(Some(r)) => {
                let m = r.manifest;
                log = r.log;
                fitted = m.fitted;
                fitted.resumed_after_epochs.push(m.epoch);
                states = (Some(m.state), m.kept_state);
                checksums = m.sha256;
                eprintln!(
                    "resuming after epoch {} from {} (weights, optimiser and generator restored: the run continues as if never stopped)",
                    m.epoch,
                    manifest_path.display()
                );
            }
            Ok(None) => clear_resume(&files)?,
            Err(e) if e.is::<ForeignResumePoint>() => return Err(e),
            Err(e) if run.replace => {
                eprintln!("starting afresh: the resume point is unreadable ({e:#}) (--force)");
                apply_state(learner, run.device, &fresh, true)?;
                clear_resume(&files)?;
            }
            Err(e) => bail!(
                "the resume point is unreadable ({e:#}); pass --force to start afresh in its place"
            ),
        }
    }
    if fitted.rows.is_empty() && run.checkpoint.exists() && !run.replace {
        bail!(
            "{} exists, but no record says which run wrote it; pass --force to overwrite it, or choose another checkpoint path",
            run.checkpoint.display()
        );
    }
    remove_unreferenced_states(&files, &states);

    if fitted.rows.len() < run.epochs {
        let here = crate::jobs::place();
        if fitted.places.last() != Some(&here) {
            fitted.places.push(here);
        }
    }
    let start_time = Instant::now();
    let seconds_before = fitted.seconds;
    let mut share = if run.fixed_threads {
        crate::jobs::ThreadShare::following(None)
    } else {
        crate::jobs::ThreadShare::from_env()
    };
    for number in fitted.rows.len() + 1..=run.epochs {
        let bar = crate::runlog::epoch_bar(0, number, run.epochs);
        let mut ctx = Epoch {
            number,
            of: run.epochs,
            bar,
            share,
        };
        let verdict = learner.epoch(&mut fitted.carry, &mut ctx)?;
        ctx.bar.finish_and_clear();
        share = ctx.share;
        fitted.rows.push(verdict.row);
        if verdict.keep {
            fitted.best_epoch = number;
        }
        fitted.seconds = seconds_before + start_time.elapsed().as_secs_f64();
        // A step that overflowed the weights (a huge learning rate) may leave a finite loss.
        if let Some(name) = non_finite_variable(learner) {
            bail!(Diverged {
                epoch: number,
                what: format!("the weight '{name}' holds NaN or infinite values"),
            });
        }
        // Commit: the state, then the manifest naming it.
        let state = files.state_name(number);
        save_state(learner, run.device, &files.sibling(&state))?;
        let kept = if verdict.keep {
            Some(state.clone())
        } else {
            states.1.clone()
        };
        checksums.insert(
            state.clone(),
            artifacts::sha256_file(files.sibling(&state))?,
        );
        checksums.retain(|name, _| *name == state || Some(name) == kept.as_ref());
        artifacts::write_json(
            &manifest_path,
            &Manifest {
                key: key.clone(),
                epoch: number,
                state: state.clone(),
                kept_state: kept.clone(),
                sha256: checksums.clone(),
                fitted: fitted.clone(),
            },
        )?;
        states = (Some(state), kept);
        remove_unreferenced_states(&files, &states);
        log.push(fitted.rows.last().cloned().expect("just pushed"))?;
        if verdict.keep {
            learner.save_checkpoint(&run.checkpoint)?;
        }
    }
    // Commit the finished run, then clear the resume files.
    artifacts::write_json(
        &record_path,
        &Record {
            key,
            epochs: run.epochs,
            checkpoint: run.checkpoint.clone(),
            fitted: fitted.clone(),
        },
    )?;
    clear_resume(&files)?;
    Ok(fitted)
}

/// A finished run found again: its outputs are made whole and its weights loaded.
fn reuse<L: Learner>(
    learner: &mut L,
    run: &Run,
    files: &Files,
    record: Record<L::Row, L::Carry>,
) -> Result<Fitted<L::Row, L::Carry>> {
    // A kill between the record and the clean-up leaves resume files: finish the job.
    clear_resume(files)?;
    if !run.checkpoint.exists() {
        bail!(
            "{} records a finished run, but its checkpoint {} is gone; delete the record to train again",
            files.record().display(),
            run.checkpoint.display()
        );
    }
    let mut log = crate::runlog::EpochLog::resume(&run.log_csv, record.fitted.rows.clone());
    log.rewrite()?;
    learner.load_checkpoint(&run.checkpoint)?;
    eprintln!(
        "already trained: {} holds the finished run of these options and data (best epoch {}); reusing it",
        run.checkpoint.display(),
        record.fitted.best_epoch
    );
    Ok(Fitted {
        reused: true,
        ..record.fitted
    })
}

/// Removes the manifest (first: without it the states are garbage), then the states.
fn clear_resume(files: &Files) -> Result<()> {
    let manifest = files.manifest();
    if manifest.exists() {
        std::fs::remove_file(&manifest)
            .with_context(|| format!("removing {}", manifest.display()))?;
    }
    for s in files.states() {
        let _ = std::fs::remove_file(s);
    }
    Ok(())
}

/// Deletes state files that neither the latest nor the kept epoch needs.
fn remove_unreferenced_states(files: &Files, (latest, kept): &(Option<String>, Option<String>)) {
    for s in files.states() {
        let name = s.file_name().unwrap_or_default().to_string_lossy();
        if Some(name.as_ref()) != latest.as_deref() && Some(name.as_ref()) != kept.as_deref() {
            let _ = std::fs::remove_file(&s);
        }
    }
}

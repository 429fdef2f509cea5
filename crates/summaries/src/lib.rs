//! The typed contract between the stages and the report.
//!
//! Each stage binary writes its `summary.json` from one of [`q1::Q1Summary`],
//! [`q2::Q2Summary`] and [`q3::Q3Summary`]; the xtask reads them back with [`read`], which
//! refuses a summary of another [`VERSION`] in one sentence rather than printing "–" or NaN
//! for a renamed field. [`seeds::Seeds`] is the statistics over repeated seeds, and [`Run`]
//! the merged `OUT/summary.json`.

pub mod bench;
pub mod growth;
pub mod q1;
pub mod q2;
pub mod q3;
pub mod seeds;

use std::path::Path;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Format version of every summary: bump it when a field is renamed, removed or changes
/// meaning (adding an optional field does not need it).
pub const VERSION: u32 = 1;

/// Reads a summary written by a stage (or the merged one), refusing another format version.
pub fn read<T: DeserializeOwned>(path: impl AsRef<Path>) -> Result<T> {
    let path = path.as_ref();
    let value: serde_json::Value = artifacts::read_json(path)?;
    let found = value.get("version").and_then(serde_json::Value::as_u64);
    anyhow::ensure!(
        found == Some(u64::from(VERSION)),
        "{} is a summary of format version {}, this build reads version {VERSION}: rerun that stage with this build (`cargo xtask reproduce --force`), or report it with the build that wrote it",
        path.display(),
        found.map_or("none (written before versions)".into(), |v| v.to_string()),
    );
    serde_json::from_value(value).with_context(|| {
        format!(
            "{} does not match this build's summary types",
            path.display()
        )
    })
}

/// The merged `OUT/summary.json`: every stage's summary of the first seed, and the
/// statistics over seeds when there were several.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Run {
    /// [`VERSION`].
    pub version: u32,
    /// A `--quick` run (shortened, not the homework's numbers).
    pub quick: bool,
    /// Q1, if it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q1: Option<q1::Q1Summary>,
    /// Q2, if it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q2: Option<q2::Q2Summary>,
    /// Q3, if it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q3: Option<q3::Q3Summary>,
    /// Mean ± std over seeds (`--seeds N`, N > 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds: Option<seeds::Seeds>,
}

/// Any stage's summary, as the run-facts table sees it.
#[derive(Debug, Clone)]
pub enum Stage {
    /// Q1.
    Q1(Box<q1::Q1Summary>),
    /// Q2.
    Q2(Box<q2::Q2Summary>),
    /// Q3.
    Q3(Box<q3::Q3Summary>),
}

impl Stage {
    /// Reads `dir/summary.json` as the summary of `stage` (q1, q2 or q3).
    pub fn read(stage: &str, dir: &Path) -> Result<Self> {
        let path = dir.join("summary.json");
        Ok(match stage {
            "q1" => Self::Q1(Box::new(read(&path)?)),
            "q2" => Self::Q2(Box::new(read(&path)?)),
            "q3" => Self::Q3(Box::new(read(&path)?)),
            other => anyhow::bail!("no stage '{other}' (q1, q2 or q3)"),
        })
    }

    /// Largest peak resident memory of any of the stage's processes, MiB.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        match self {
            Self::Q1(_) => None,
            Self::Q2(s) => s.peak_rss_mib,
            Self::Q3(s) => [
                s.peak_rss_mib,
                s.no_attention.peak_rss_mib,
                s.attention.peak_rss_mib,
            ]
            .into_iter()
            .flatten()
            .reduce(f64::max),
        }
    }

    /// Each training of the stage, named (`2.1 at lr 0.01`, `(a)`), with what `of_q2` or
    /// `of_q3` takes from its record.
    fn per_training<T>(
        &self,
        of_q2: impl Fn(&q2::Run) -> T,
        of_q3: impl Fn(&q3::ModelReport) -> T,
    ) -> Vec<(String, T)> {
        match self {
            Self::Q1(_) => Vec::new(),
            Self::Q2(s) => s
                .runs
                .iter()
                .map(|r| (format!("{} at lr {}", r.model, r.learning_rate), of_q2(r)))
                .collect(),
            Self::Q3(s) => vec![
                ("(a)".into(), of_q3(&s.no_attention)),
                ("(b)".into(), of_q3(&s.attention)),
            ],
        }
    }

    /// (which training, epochs after which it was interrupted and resumed), for those that were.
    pub fn resumed(&self) -> Vec<(String, Vec<usize>)> {
        self.per_training(
            |r| r.resumed_after_epochs.clone(),
            |m| m.resumed_after_epochs.clone(),
        )
        .into_iter()
        .filter(|(_, e)| !e.is_empty())
        .collect()
    }

    /// Where each training of the stage ran (`host`, `host, slurm job 12_1`), in order.
    pub fn places(&self) -> Vec<(String, Vec<String>)> {
        self.per_training(|r| r.places.clone(), |m| m.places.clone())
    }

    /// Whether the stage ran on generated quick-run data.
    pub fn synthetic(&self) -> bool {
        match self {
            Self::Q1(_) => false,
            Self::Q2(s) => s.dataset.synthetic,
            Self::Q3(s) => s.config.synthetic,
        }
    }

    /// The data file of a stage that records one (Q2).
    pub fn dataset(&self) -> Option<&q2::DatasetInfo> {
        match self {
            Self::Q2(s) => Some(&s.dataset),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("summaries-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("summary.json")
    }

    #[test]
    fn a_summary_reads_back_and_another_version_is_refused() {
        let path = temp("version");
        let run = Run {
            version: VERSION,
            quick: true,
            ..Run::default()
        };
        artifacts::write_json(&path, &run).unwrap();
        let back: Run = read(&path).unwrap();
        assert!(back.quick && back.q2.is_none());

        std::fs::write(&path, r#"{"version": 0, "quick": true}"#).unwrap();
        let e = read::<Run>(&path).unwrap_err().to_string();
        assert!(
            e.contains("format version 0, this build reads version 1"),
            "{e}"
        );
        std::fs::write(&path, r#"{"quick": true}"#).unwrap();
        let e = read::<Run>(&path).unwrap_err().to_string();
        assert!(e.contains("none (written before versions)"), "{e}");
        // The right version with a field of the wrong type names the file.
        std::fs::write(&path, r#"{"version": 1, "quick": "yes"}"#).unwrap();
        let e = format!("{:#}", read::<Run>(&path).unwrap_err());
        assert!(
            e.contains("does not match this build's summary types"),
            "{e}"
        );
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}

//! What a run measures: per-epoch metrics, the run's `history.jsonl` (one line appended per
//! epoch, so that an epoch's writes do not grow with the run) and `metrics.json` (everything,
//! written when a run ends).

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::checkpoint::{self, CheckpointError};
use crate::train::diagnostics::LayerDiagnostics;
use crate::train::pretrain::LayerPretraining;
use crate::train::{HISTORY_FILE, METRICS_FILE};

/// Metrics of one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (training mode).
    pub train_loss: f64,
    /// Training accuracy over the epoch's batches (training mode).
    pub train_accuracy: f64,
    /// Validation loss (evaluation mode).
    pub val_loss: Option<f64>,
    /// Validation accuracy.
    pub val_accuracy: Option<f64>,
    /// Learning rate of the epoch.
    pub lr: f64,
    /// Momentum of the epoch, when a momentum schedule sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momentum: Option<f64>,
    /// Wall seconds of the epoch (training and validation).
    pub seconds: f64,
    /// Training throughput (samples per second of the training loop).
    pub samples_per_s: f64,
    /// Per dense layer diagnostics (empty with `diagnostics = false`); see
    /// [`crate::train::diagnostics`].
    #[serde(default)]
    pub diagnostics: Vec<LayerDiagnostics>,
    /// Vanishing/exploding gradient warnings of the epoch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Everything saved in the metrics file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    /// Per-epoch metrics.
    pub epochs: Vec<EpochMetrics>,
    /// Test loss of the final (restored) model.
    pub test_loss: Option<f64>,
    /// Test accuracy of the final model.
    pub test_accuracy: Option<f64>,
    /// The epoch whose weights early stopping restored (1-based), if it ran.
    pub best_epoch: Option<usize>,
    /// Whether early stopping ended the run before the last epoch.
    pub stopped_early: bool,
    /// Reconstruction losses of greedy layer-wise pretraining (empty without it).
    #[serde(default)]
    pub pretraining: Vec<LayerPretraining>,
    /// Per dense layer diagnostics before the first step (empty with `diagnostics = false`).
    #[serde(default)]
    pub diagnostics_at_init: Vec<LayerDiagnostics>,
}

/// Writes `metrics.json` into the run folder `dir` (atomically).
pub(crate) fn write_metrics(dir: &Path, m: &RunMetrics) -> Result<(), CheckpointError> {
    let text = serde_json::to_string_pretty(m).unwrap_or_default();
    checkpoint::atomic_write(&dir.join(METRICS_FILE), text.as_bytes())
}

/// Appends an epoch's metrics as one line to the run folder's `history.jsonl`, synced to disk.
pub(crate) fn append_history(dir: &Path, m: &EpochMetrics) -> Result<(), CheckpointError> {
    let path = dir.join(HISTORY_FILE);
    let io = |error| CheckpointError::Io {
        path: path.clone(),
        error,
    };
    let mut line = serde_json::to_string(m).unwrap_or_default();
    line.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io)?;
    f.write_all(line.as_bytes()).map_err(io)?;
    f.sync_data().map_err(io)
}

/// The first `epochs` lines of the run folder's `history.jsonl`; a longer file (a run killed
/// after appending an epoch, before saving its state) is cut to them. `None` if there is no
/// history file.
pub(crate) fn read_history(
    dir: &Path,
    epochs: usize,
) -> Result<Option<Vec<EpochMetrics>>, CheckpointError> {
    let path = dir.join(HISTORY_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(CheckpointError::Io { path, error }),
    };
    let bad = |message: String| CheckpointError::Metadata {
        path: path.clone(),
        key: "history".into(),
        message,
    };
    let mut history = Vec::with_capacity(epochs);
    for (i, line) in text.lines().take(epochs).enumerate() {
        let m: EpochMetrics =
            serde_json::from_str(line).map_err(|e| bad(format!("line {}: {e}", i + 1)))?;
        history.push(m);
    }
    if history.len() < epochs {
        return Err(bad(format!(
            "{} epochs recorded, the training state has {epochs}",
            history.len()
        )));
    }
    if text.lines().count() > epochs {
        let mut kept = String::new();
        for m in &history {
            kept.push_str(&serde_json::to_string(m).unwrap_or_default());
            kept.push('\n');
        }
        checkpoint::atomic_write(&path, kept.as_bytes())?;
    }
    Ok(Some(history))
}

/// A run folder's metrics: `metrics.json`, or for a run still going (or killed) the epochs of
/// its `history.jsonl` so far.
pub fn read_run_metrics(dir: &Path) -> anyhow::Result<serde_json::Value> {
    use anyhow::Context;
    let path = dir.join(METRICS_FILE);
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        return serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()));
    }
    let hist = dir.join(HISTORY_FILE);
    let text = std::fs::read_to_string(&hist).with_context(|| {
        format!(
            "reading {} (the run has no {METRICS_FILE} yet)",
            hist.display()
        )
    })?;
    let epochs = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str::<serde_json::Value>(l)
                .with_context(|| format!("{} line {}", hist.display(), i + 1))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(serde_json::json!({ "epochs": epochs }))
}

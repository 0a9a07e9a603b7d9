//! What a run measures: per-epoch metrics and the run's `metrics.json`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::checkpoint::{self, CheckpointError};
use crate::train::diagnostics::LayerDiagnostics;
use crate::train::pretrain::LayerPretraining;
use crate::train::METRICS_FILE;

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
    let text = serde_json::to_string_pretty(m).expect("metrics serialise");
    checkpoint::atomic_write(&dir.join(METRICS_FILE), text.as_bytes())
}

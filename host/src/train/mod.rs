//! A training run: data preparation, mini-batch training with every regulariser, validation,
//! early stopping, per-epoch checkpoints and exact resume.
//!
//! | file | what |
//! |---|---|
//! | `config.rs` | the TOML configuration and [`config::ConfigError`] |
//! | `data.rs` | a run's data: load, split, transform ([`prepare_data`], [`test_data`], [`raw_training_split`]) |
//! | `init.rs` | where training starts: initialisation, `init` checkpoint, [`pretrain`] |
//! | `step.rs` | the one training step ([`step::step`]) |
//! | `run.rs` | the loop in phases: prepare, epoch, evaluate, early stop, checkpoint, finish |
//! | `resume.rs`, `metrics.rs` | what a run folder holds: resume state, `metrics.json` |
//! | `progress.rs` | what a run shows ([`TrainObserver`]) |
//! | `diagnostics.rs` | per-layer diagnostics and warnings |
//! | `pretrain/` | greedy layer-wise pretraining |
//!
//! Random streams of one seed: 0 = data split, 1 = weight initialisation, 2 = training (epoch
//! shuffles, then dropout and DropConnect masks in layer order, batch after batch). Their state
//! is saved with each epoch, so a resumed run continues bit for bit.

pub mod config;
mod data;
pub mod diagnostics;
mod init;
mod metrics;
pub mod pretrain;
pub mod progress;
mod resume;
mod run;
pub mod step;

use std::path::PathBuf;

use anyhow::Context;

use crate::model::checkpoint::CheckpointError;
use crate::model::Model;
use crate::train::config::{ConfigError, TrainConfig};
use crate::train::pretrain::PretrainError;

pub use data::{
    data_path, load_raw, prepare_data, raw_test_split, raw_training_split, test_data, PreparedData,
};
pub use init::{init_weights, initial_network, pretrain_only, starting_network};
pub use metrics::{EpochMetrics, RunMetrics};
pub use progress::TrainObserver;

/// File name of the resumable training state in a run folder.
pub const TRAIN_STATE_FILE: &str = "train_state.safetensors";
/// File name of the metrics in a run folder.
pub const METRICS_FILE: &str = "metrics.json";
/// File name of the resolved config in a run folder.
pub const CONFIG_FILE: &str = "config.toml";

/// Training errors.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss or the weights stopped being finite.
    #[error(
        "training diverged at epoch {epoch}, batch {batch}: loss is {loss} (learning rate {lr}); \
         try a smaller learning rate or gradient clipping (regularization.clip_grad_norm). \
         No weights were written for this epoch: the last good checkpoint is kept."
    )]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based batch within the epoch.
        batch: usize,
        /// The offending loss value.
        loss: f64,
        /// The learning rate in force.
        lr: f64,
    },
    /// An invalid configuration.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The pretraining method does not fit the network or the data.
    #[error("invalid configuration: {0}")]
    Pretrain(#[from] PretrainError),
    /// The thread pool could not be built.
    #[error("invalid configuration: thread pool: {0}")]
    ThreadPool(#[from] rayon::ThreadPoolBuildError),
    /// Saving or loading a checkpoint failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The saved training state does not fit this run.
    #[error("cannot resume: {0}")]
    Resume(#[from] ResumeError),
}

/// Why a run cannot resume from its folder.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// `resume` without a run folder.
    #[error("no run folder given")]
    NoRunFolder,
    /// The saved state belongs to another architecture.
    #[error("{0} was saved for a different architecture")]
    Architecture(PathBuf),
    /// The saved state belongs to another optimiser.
    #[error("{0} was saved with another optimiser")]
    Optimizer(PathBuf),
    /// The saved random-generator state is not 64 bytes.
    #[error("rng state must be 64 bytes")]
    RngState,
}

/// How to run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Run folder for checkpoints, metrics and the config (none: keep everything in memory).
    pub out_dir: Option<PathBuf>,
    /// Continue from the folder's training state.
    pub resume: bool,
    /// Show progress bars.
    pub progress: bool,
    /// Stop after this many epochs in total, as if interrupted (for tests).
    pub stop_after: Option<usize>,
}

/// The result of a run.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    /// The final model (best weights if early stopping ran).
    pub model: Model,
    /// Metrics.
    pub metrics: RunMetrics,
}

/// Trains a model as configured. With an output folder, writes `config.toml` at the start and,
/// after every epoch, `model.safetensors` (the model to keep so far), `train_state.safetensors`
/// and `metrics.json`, each atomically. With `opts.progress`, shows the run with
/// [`progress::default_observer`].
pub fn train(
    cfg: &TrainConfig,
    data: &PreparedData,
    opts: &RunOptions,
) -> Result<TrainOutcome, TrainError> {
    if opts.progress {
        train_with_observer(cfg, data, opts, progress::default_observer().as_mut())
    } else {
        train_with_observer(cfg, data, opts, &mut ())
    }
}

/// [`train`], reporting to `observer` (whatever `opts.progress` says).
pub fn train_with_observer(
    cfg: &TrainConfig,
    data: &PreparedData,
    opts: &RunOptions,
    observer: &mut dyn TrainObserver,
) -> Result<TrainOutcome, TrainError> {
    let threads = cfg.thread_count();
    thread_pool(threads)?.install(|| run::train_in_pool(cfg, data, opts, threads, observer))
}

/// A rayon pool of `threads` threads (training, pretraining and the benchmark run in one, so
/// the GEMMs split their work the same way whatever pool the caller runs on).
pub(crate) fn thread_pool(threads: usize) -> Result<rayon::ThreadPool, TrainError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(TrainError::from)
}

/// Trains from a config file path with CLI-style options: convenience for tests and tools.
pub fn train_from_config(cfg: &TrainConfig, opts: &RunOptions) -> anyhow::Result<TrainOutcome> {
    let data = prepare_data(cfg).context("preparing the data")?;
    Ok(train(cfg, &data, opts)?)
}

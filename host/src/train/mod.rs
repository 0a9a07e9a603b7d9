//! A training run: data preparation, mini-batch training with every regulariser, validation,
//! early stopping, per-epoch checkpoints and exact resume.
//!
//! | file | what |
//! |---|---|
//! | `config.rs` | the TOML configuration and [`config::ConfigError`] |
//! | `data.rs` | a run's data: load, split, transform ([`prepare_data`], [`test_data`]) |
//! | `init.rs` | where training starts: initialisation, `init` checkpoint, [`pretrain`] |
//! | `step.rs` | the one training step ([`step::step`]) |
//! | `run.rs` | the loop in phases: prepare, epoch, evaluate, early stop, checkpoint, finish |
//! | `folder.rs` | the run folder: one writer (a lock), no run replaced silently, no leftovers |
//! | `resume.rs`, `metrics.rs` | what a run folder holds: resume state, `history.jsonl`, `metrics.json` |
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
pub mod folder;
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
    data_path, data_record, dataset_crc, load_raw, prepare_data, raw_test_split, scoring_data,
    test_data, DataRecord, PreparedData, ScoringData, DATA_RECORD_KEY,
};
pub use folder::RunFolderError;
pub use init::{init_weights, initial_network, pretrain_only, starting_network};
pub use metrics::{read_run_metrics, EpochMetrics, RunMetrics};
pub use progress::TrainObserver;

/// File name of the resumable training state in a run folder.
pub const TRAIN_STATE_FILE: &str = "train_state.safetensors";
/// File name of the metrics in a run folder (written when a run ends).
pub const METRICS_FILE: &str = "metrics.json";
/// File name of the per-epoch metrics in a run folder (a line appended per epoch).
pub const HISTORY_FILE: &str = "history.jsonl";
/// File name of the resolved config in a run folder.
pub const CONFIG_FILE: &str = "config.toml";

/// Training errors.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss, the weights, the batch-norm statistics or the validation loss stopped being
    /// finite (or a running variance became negative).
    #[error(
        "training diverged at epoch {epoch}{}: {what} (learning rate {}); try a smaller \
         learning rate or gradient clipping (regularization.clip_grad_norm). {}",
        batch.map_or(String::new(), |b| format!(", batch {b}")),
        config::Shown::shown(lr),
        match kept {
            Some(Some(e)) => format!("The run folder keeps the checkpoint of epoch {e}."),
            Some(None) => "No epoch completed: the run folder holds no model.".to_string(),
            None => String::new(),
        }
    )]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based batch within the epoch (`None`: found after the epoch's steps).
        batch: Option<usize>,
        /// What stopped being finite (`the loss is NaN`, ...).
        what: String,
        /// The learning rate in force.
        lr: f64,
        /// With a run folder: the last epoch whose checkpoint it keeps (`Some(None)`: none).
        kept: Option<Option<usize>>,
    },
    /// The run folder cannot be used (it holds another run, or another process writes there).
    #[error(transparent)]
    RunFolder(#[from] RunFolderError),
    /// An invalid configuration (or data that does not fit it).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The pretraining method does not fit the network or the data.
    #[error(transparent)]
    Pretrain(#[from] PretrainError),
    /// The thread pool could not be built.
    #[error("the thread pool could not be built")]
    ThreadPool(#[from] rayon::ThreadPoolBuildError),
    /// Saving or loading a checkpoint failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The saved training state does not fit this run.
    #[error("cannot resume: {0}")]
    Resume(ResumeError),
}

impl From<ResumeError> for TrainError {
    fn from(e: ResumeError) -> Self {
        // Not a `source`: the message already says it (no "cannot resume: X: X" in a chain).
        TrainError::Resume(e)
    }
}

/// Why a run cannot resume from its folder.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// `resume` without a run folder.
    #[error("no run folder given")]
    NoRunFolder,
    /// The folder has no training state.
    #[error("{0} is missing: the folder holds no run to resume")]
    NoState(PathBuf),
    /// A setting differs from the one the run was started with.
    #[error(
        "{key} was {was} when the run started and is {is} now: a resumed run continues as it \
         was configured (start a new run to change it)"
    )]
    ConfigChanged {
        /// The setting (dotted key).
        key: String,
        /// Its value in the saved state.
        was: String,
        /// Its value now.
        is: String,
    },
    /// The data differs from the data the run was started with.
    #[error("the data changed since the run started (then: {was}; now: {is})")]
    DataChanged {
        /// The saved data's summary.
        was: String,
        /// The data's summary now.
        is: String,
    },
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
    /// Replace a run already in the folder (without it, a folder holding a run is an error).
    pub force: bool,
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

/// Trains a model as configured. With an output folder (locked while the run writes into it;
/// one holding a run already is refused unless `opts.force`): after every epoch a line of
/// `history.jsonl`, then `train_state.safetensors` and `model.safetensors` (the model to keep so
/// far), each atomically, and `config.toml` with the first of them; `metrics.json` when the run
/// ends. With `opts.progress`, shows the run with [`progress::default_observer`].
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
    cfg.validate()?;
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

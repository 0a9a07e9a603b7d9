//! The state a run folder keeps after each epoch so that `--resume` continues bit for bit:
//! `train_state.safetensors` holds the current and best weights, the optimiser's state, the
//! training random stream and the bookkeeping ([`Progress`]).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::checkpoint::{self, CheckpointError, Tensor, TensorFile};
use crate::model::{Model, Sequential};
use crate::nn::network::Network;
use crate::nn::optim::Optimizer;
use crate::random::{RngState, TrainRng};
use crate::train::diagnostics::LayerDiagnostics;
use crate::train::metrics::{EpochMetrics, RunMetrics};
use crate::train::pretrain::LayerPretraining;
use crate::train::{ResumeError, TrainError};

/// Bookkeeping saved with each epoch for resume.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Progress {
    pub(crate) epochs_done: usize,
    pub(crate) opt_steps: u64,
    pub(crate) best_metric: Option<f64>,
    pub(crate) best_epoch: Option<usize>,
    pub(crate) bad_epochs: usize,
    pub(crate) stopped_early: bool,
    pub(crate) history: Vec<EpochMetrics>,
    #[serde(default)]
    pub(crate) pretraining: Vec<LayerPretraining>,
    #[serde(default)]
    pub(crate) diagnostics_at_init: Vec<LayerDiagnostics>,
}

impl Progress {
    /// A run's bookkeeping before its first epoch.
    pub(crate) fn new(pretraining: Vec<LayerPretraining>) -> Self {
        Self {
            epochs_done: 0,
            opt_steps: 0,
            best_metric: None,
            best_epoch: None,
            bad_epochs: 0,
            stopped_early: false,
            history: Vec::new(),
            pretraining,
            diagnostics_at_init: Vec::new(),
        }
    }

    /// The run's metrics so far, with the test loss and accuracy once measured.
    pub(crate) fn metrics(&self, test: Option<(f64, f64)>) -> RunMetrics {
        RunMetrics {
            epochs: self.history.clone(),
            test_loss: test.map(|t| t.0),
            test_accuracy: test.map(|t| t.1),
            best_epoch: self.best_epoch,
            stopped_early: self.stopped_early,
            pretraining: self.pretraining.clone(),
            diagnostics_at_init: self.diagnostics_at_init.clone(),
        }
    }
}

/// Writes `train_state.safetensors`.
pub(crate) fn save_train_state(
    path: &Path,
    current: &Sequential,
    best: Option<&Sequential>,
    opt: &mut Optimizer,
    rng: &TrainRng,
    prog: &Progress,
    make_model: &dyn Fn(&Sequential) -> Model,
) -> Result<(), CheckpointError> {
    let mut tensors = checkpoint::state_dict(current, "model.");
    if let Some(b) = best {
        tensors.extend(checkpoint::state_dict(b, "best."));
    }
    for (i, s) in opt.state.iter().enumerate() {
        tensors.push((format!("optimizer.{i}"), Tensor::f32(vec![s.len()], s)));
    }
    tensors.push(("rng".into(), Tensor::u8(&RngState::of(rng).to_bytes())));
    let mut meta = checkpoint::model_metadata(&make_model(current));
    meta.insert(
        "microdnn.train_state".into(),
        serde_json::to_string(prog).expect("serialises"),
    );
    meta.insert(
        "microdnn.optimizer".into(),
        serde_json::to_string(&opt.config).expect("serialises"),
    );
    checkpoint::atomic_write(path, &checkpoint::to_bytes(&tensors, meta))
}

/// Reads `train_state.safetensors` into `net` and `opt`; returns the training random stream,
/// the best weights so far and the bookkeeping.
pub(crate) fn load_train_state(
    path: &Path,
    net: &mut Network,
    opt: &mut Optimizer,
) -> Result<(TrainRng, Option<Sequential>, Progress), TrainError> {
    let bytes = std::fs::read(path).map_err(|error| CheckpointError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let file = TensorFile::parse(path, &bytes)?;
    let arch = file.architecture()?;
    if arch.specs() != net.seq.specs() {
        return Err(ResumeError::Architecture(path.to_path_buf()).into());
    }
    let saved_opt: crate::nn::optim::OptimizerConfig = file.meta_json("microdnn.optimizer")?;
    if saved_opt != opt.config {
        return Err(ResumeError::Optimizer(path.to_path_buf()).into());
    }
    file.load_into(&mut net.seq, "model.")?;
    let prog: Progress = file.meta_json("microdnn.train_state")?;
    let best = if prog.best_epoch.is_some() {
        let mut b = arch.clone();
        file.load_into(&mut b, "best.")?;
        Some(b)
    } else {
        None
    };
    for (i, s) in opt.state.iter_mut().enumerate() {
        *s = file.f32(&format!("optimizer.{i}"), &[s.len()])?;
    }
    let rng_bytes: [u8; 64] = file
        .u8("rng")?
        .try_into()
        .map_err(|_| ResumeError::RngState)?;
    opt.steps = prog.opt_steps;
    Ok((RngState::from_bytes(&rng_bytes).restore(), best, prog))
}

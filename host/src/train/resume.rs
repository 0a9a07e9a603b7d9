//! The state a run folder keeps after each epoch so that `--resume` continues bit for bit:
//! `train_state.safetensors` holds the current and best weights, the optimiser's state, the
//! training random stream, the bookkeeping ([`Progress`]; its size does not grow with the
//! epochs: their metrics are in `history.jsonl`), the run's resolved config and its data record,
//! so that a resumed run can refuse a changed setting or changed data.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::checkpoint::{self, CheckpointError, Tensor, TensorFile};
use crate::model::{Model, Sequential};
use crate::nn::network::Network;
use crate::nn::optim::Optimizer;
use crate::random::{RngState, TrainRng};
use crate::train::config::TrainConfig;
use crate::train::data::{DataRecord, DATA_RECORD_KEY};
use crate::train::diagnostics::LayerDiagnostics;
use crate::train::metrics::{EpochMetrics, RunMetrics};
use crate::train::pretrain::LayerPretraining;
use crate::train::{ResumeError, TrainError};

/// Metadata key of the run's resolved config (TOML) in the training state.
const CONFIG_KEY: &str = "microdnn.config";

/// Bookkeeping saved with each epoch for resume.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Progress {
    pub(crate) epochs_done: usize,
    pub(crate) opt_steps: u64,
    pub(crate) best_metric: Option<f64>,
    pub(crate) best_epoch: Option<usize>,
    pub(crate) bad_epochs: usize,
    pub(crate) stopped_early: bool,
    /// Kept in `history.jsonl`, not in the state (read from states written before it was).
    #[serde(default, skip_serializing)]
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

/// What a run saves besides its weights and optimiser: the bookkeeping, and what it was started
/// with.
pub(crate) struct RunRecord<'a> {
    pub(crate) prog: &'a Progress,
    pub(crate) config: &'a TrainConfig,
    pub(crate) data: Option<&'a DataRecord>,
}

/// Writes `train_state.safetensors`.
pub(crate) fn save_train_state(
    path: &Path,
    current: &Sequential,
    best: Option<&Sequential>,
    opt: &mut Optimizer,
    rng: &TrainRng,
    run: &RunRecord<'_>,
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
        serde_json::to_string(run.prog).unwrap_or_default(),
    );
    meta.insert(
        "microdnn.optimizer".into(),
        serde_json::to_string(&opt.config).unwrap_or_default(),
    );
    meta.insert(CONFIG_KEY.into(), run.config.to_toml());
    if let Some(d) = run.data {
        meta.insert(
            DATA_RECORD_KEY.into(),
            serde_json::to_string(d).unwrap_or_default(),
        );
    }
    checkpoint::atomic_write(path, &checkpoint::to_bytes(&tensors, meta))
}

/// Reads `train_state.safetensors` into `net` and `opt`, after checking that `config` and
/// `data` are what the run was started with (the epochs and threads may change, and the data's
/// place); returns the training random stream, the best weights so far and the bookkeeping.
pub(crate) fn load_train_state(
    path: &Path,
    net: &mut Network,
    opt: &mut Optimizer,
    config: &TrainConfig,
    data: Option<&DataRecord>,
) -> Result<(TrainRng, Option<Sequential>, Progress), TrainError> {
    let bytes = std::fs::read(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => {
            TrainError::Resume(ResumeError::NoState(path.to_path_buf()))
        }
        _ => CheckpointError::Io {
            path: path.to_path_buf(),
            error,
        }
        .into(),
    })?;
    let file = TensorFile::parse(path, &bytes)?;
    file.check_microdnn()?;
    if let Ok(saved) = file.meta(CONFIG_KEY) {
        same_config(saved, config)?;
    }
    if let (Ok(saved), Some(now)) = (file.meta_json::<DataRecord>(DATA_RECORD_KEY), data) {
        same_data(&saved, now)?;
    }
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

/// The first setting (dotted key) where `a` and `b` differ, with both values.
fn first_difference(
    key: &str,
    a: &toml::Value,
    b: &toml::Value,
) -> Option<(String, String, String)> {
    match (a, b) {
        (toml::Value::Table(ta), toml::Value::Table(tb)) => {
            let mut keys: Vec<&String> = ta.keys().chain(tb.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                let sub = if key.is_empty() {
                    k.clone()
                } else {
                    format!("{key}.{k}")
                };
                match (ta.get(k), tb.get(k)) {
                    (Some(x), Some(y)) => first_difference(&sub, x, y),
                    (x, y) => Some((sub, show(x), show(y))),
                }
            })
        }
        _ if a == b => None,
        _ => Some((key.to_string(), a.to_string(), b.to_string())),
    }
}

fn show(v: Option<&toml::Value>) -> String {
    v.map_or("(not set)".into(), |v| v.to_string())
}

/// The resolved config as TOML without what a resumed run may change: the epoch count, the
/// threads (results do not depend on them) and the data's place (the data itself is compared
/// through its record).
fn comparable(cfg: &TrainConfig) -> toml::Value {
    let mut c = cfg.clone();
    c.epochs = 0;
    c.threads = 0;
    c.data.path = None;
    c.data.dataset = Some(c.data.dataset());
    toml::Value::try_from(&c).unwrap_or(toml::Value::Boolean(false))
}

/// Refuses a resumed run whose config differs from the saved one.
fn same_config(saved: &str, now: &TrainConfig) -> Result<(), ResumeError> {
    let Ok(saved) = toml::from_str::<TrainConfig>(saved) else {
        return Ok(());
    };
    match first_difference("", &comparable(&saved), &comparable(now)) {
        None => Ok(()),
        Some((key, was, is)) => Err(ResumeError::ConfigChanged { key, was, is }),
    }
}

/// Refuses a resumed run whose data differs from the data it started with.
fn same_data(saved: &DataRecord, now: &DataRecord) -> Result<(), ResumeError> {
    let strip = |r: &DataRecord| DataRecord {
        path: Default::default(),
        ..r.clone()
    };
    if strip(saved) == strip(now) {
        return Ok(());
    }
    Err(ResumeError::DataChanged {
        was: format!(
            "{} rows, CRC-32 {:08x}, test split {} rows",
            saved.rows, saved.data_crc, saved.test_rows
        ),
        is: format!(
            "{} rows, CRC-32 {:08x}, test split {} rows",
            now.rows, now.data_crc, now.test_rows
        ),
    })
}

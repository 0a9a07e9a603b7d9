//! The training loop: data preparation, mini-batch training with every regulariser, validation,
//! early stopping, per-epoch checkpoints and exact resume.
//!
//! Random streams of one seed: 0 = data split, 1 = weight initialisation, 2 = training (epoch
//! shuffles, then dropout and DropConnect masks in layer order, batch after batch). Their state
//! is saved with each epoch, so a resumed run continues bit for bit.

pub mod config;
pub mod diagnostics;
pub mod pretrain;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::data::{self, split, Dataset, InputTransform};
use crate::model::checkpoint::{self, CheckpointError, Tensor, TensorFile, MODEL_FILE};
use crate::model::{Layer, Model, Sequential};
use crate::nn::network::Network;
use crate::nn::optim::Optimizer;
use crate::random::{rng_for, shuffle, RngState, TrainRng};
use crate::train::config::{
    default_digits_path, default_mnist_dir, DatasetKind, StopMetric, TrainConfig, TransformKind,
};
use crate::train::diagnostics::{self as diag, DiagSample, LayerDiagnostics, StepTracker};
use crate::train::pretrain::LayerPretraining;

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
    Config(String),
    /// Saving or loading a checkpoint failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The saved training state does not fit this run.
    #[error("cannot resume: {0}")]
    Resume(String),
}

/// The splits of a run, transformed, and the fitted transform.
#[derive(Clone, Debug)]
pub struct PreparedData {
    /// Training split.
    pub train: Dataset,
    /// Validation split (for early stopping and monitoring).
    pub val: Option<Dataset>,
    /// Test split.
    pub test: Option<Dataset>,
    /// The transform fitted on the training split (already applied to every split).
    pub transform: InputTransform,
}

/// The data file or folder for a config (its `path`, else the built-in default).
pub fn data_path(cfg: &TrainConfig) -> PathBuf {
    cfg.data
        .path
        .clone()
        .unwrap_or_else(|| match cfg.data.dataset {
            DatasetKind::Mnist => default_mnist_dir(),
            _ => default_digits_path(),
        })
}

/// Loads a data set: for CSV data the whole file (test = `None`), for MNIST the official
/// training and test sets.
pub fn load_raw(cfg: &TrainConfig) -> anyhow::Result<(Dataset, Option<Dataset>)> {
    let path = data_path(cfg);
    Ok(match cfg.data.dataset {
        DatasetKind::Mnist => {
            let (tr, te) = data::load_mnist(&path)?;
            (tr, Some(te))
        }
        DatasetKind::Digits | DatasetKind::Csv => {
            (data::load_csv(&path, cfg.data.label_column)?, None)
        }
    })
}

/// The raw (untransformed) test split of a run: MNIST's official test set, or the same seeded
/// stratified split of a CSV file that [`prepare_data`] holds out (`None` without one). What
/// `microdnn evaluate` and `microdnn eval` score a trained model on.
pub fn raw_test_split(cfg: &TrainConfig) -> anyhow::Result<Option<Dataset>> {
    let (all, official_test) = load_raw(cfg)?;
    Ok(match official_test {
        Some(t) => Some(t),
        None if cfg.data.test_fraction > 0.0 => {
            let mut rng = rng_for(cfg.seed, 0);
            let s = split::stratified_split(&all.y, cfg.data.test_fraction, &mut rng);
            Some(all.split(&s).1)
        }
        None => None,
    })
}

/// Loads, splits and transforms the data of a run (deterministic for a seed).
pub fn prepare_data(cfg: &TrainConfig) -> anyhow::Result<PreparedData> {
    let (all, official_test) = load_raw(cfg)?;
    let mut rng = rng_for(cfg.seed, 0);
    let (trainval, test) = match official_test {
        Some(t) => (all, Some(t)),
        None if cfg.data.test_fraction > 0.0 => {
            let s = split::stratified_split(&all.y, cfg.data.test_fraction, &mut rng);
            let (a, b) = all.split(&s);
            (a, Some(b))
        }
        None => (all, None),
    };
    let (mut train, mut val) = if cfg.data.validation_fraction() > 0.0 {
        let s = if cfg.data.dataset == DatasetKind::Mnist {
            split::tail_split(trainval.len(), cfg.data.validation_fraction())
        } else {
            split::stratified_split(&trainval.y, cfg.data.validation_fraction(), &mut rng)
        };
        let (a, b) = trainval.split(&s);
        (a, Some(b))
    } else {
        (trainval, None)
    };
    let mut test = test;
    let classes = [Some(&train), val.as_ref(), test.as_ref()]
        .into_iter()
        .flatten()
        .map(|d| d.classes)
        .max()
        .unwrap_or(0);
    let transform = match cfg.data.transform {
        TransformKind::None => InputTransform::identity(train.features),
        TransformKind::Standardize => InputTransform::standardize(&train),
        TransformKind::ScaleByMax => {
            let max = cfg.data.max_value.unwrap_or(match cfg.data.dataset {
                DatasetKind::Digits => 16.0,
                DatasetKind::Mnist => 255.0,
                DatasetKind::Csv => train
                    .x
                    .iter()
                    .fold(0.0f32, |m, v| m.max(v.abs()))
                    .max(f32::MIN_POSITIVE),
            });
            InputTransform::scale_by_max(train.features, max)
        }
    };
    for d in [Some(&mut train), val.as_mut(), test.as_mut()]
        .into_iter()
        .flatten()
    {
        d.classes = classes;
        transform.apply(d);
    }
    Ok(PreparedData {
        train,
        val,
        test,
        transform,
    })
}

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

/// Bookkeeping saved with each epoch for resume.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Progress {
    epochs_done: usize,
    opt_steps: u64,
    best_metric: Option<f64>,
    best_epoch: Option<usize>,
    bad_epochs: usize,
    stopped_early: bool,
    history: Vec<EpochMetrics>,
    #[serde(default)]
    pretraining: Vec<LayerPretraining>,
    #[serde(default)]
    diagnostics_at_init: Vec<LayerDiagnostics>,
}

/// Initialises the weights of `seq` (biases zero) from `rng`, layer by layer.
pub fn init_weights(seq: &mut Sequential, init: crate::nn::init::Init, rng: &mut TrainRng) {
    for l in &mut seq.layers {
        if let Layer::Linear(l) = l {
            init.fill(&mut l.weight, l.in_features, l.out_features, rng);
            l.bias.iter_mut().for_each(|b| *b = 0.0);
        }
    }
}

/// The network training starts from: built and initialised (random stream 1), then, if
/// `prepare` (not on resume), either replaced by the weights of the checkpoint `cfg.init` (same
/// architecture and input transform; no pretraining) or pretrained with `[pretrain]`.
pub fn initial_network(
    cfg: &TrainConfig,
    data: &PreparedData,
    threads: usize,
    prepare: bool,
) -> Result<(Sequential, Vec<LayerPretraining>), TrainError> {
    let mut seq = cfg
        .model
        .build(data.train.features, data.train.classes)
        .map_err(TrainError::Config)?;
    init_weights(&mut seq, cfg.model.init, &mut rng_for(cfg.seed, 1));
    if !prepare {
        return Ok((seq, Vec::new()));
    }
    if let Some(path) = &cfg.init {
        let m = checkpoint::load_model(path)?;
        let bad = |what: &str| {
            TrainError::Config(format!(
                "init checkpoint {} has another {what} than this configuration",
                path.display()
            ))
        };
        if m.net.specs() != seq.specs() {
            return Err(bad("architecture"));
        }
        if m.transform != data.transform {
            return Err(bad("input transform"));
        }
        return Ok((m.net, Vec::new()));
    }
    let pretraining = match &cfg.pretrain {
        Some(p) => crate::train::pretrain::pretrain(
            &mut seq,
            &data.train,
            p,
            cfg.seed,
            cfg.batch_size,
            threads,
        )
        .map_err(TrainError::Config)?,
        None => Vec::new(),
    };
    Ok((seq, pretraining))
}

fn all_finite(seq: &Sequential) -> bool {
    seq.layers.iter().all(|l| match l {
        Layer::Linear(l) => l.weight.iter().chain(&l.bias).all(|v| v.is_finite()),
        Layer::BatchNorm1d(b) => b
            .weight
            .iter()
            .chain(&b.bias)
            .chain(&b.running_mean)
            .chain(&b.running_var)
            .all(|v| v.is_finite()),
        _ => true,
    })
}

/// Trains a model as configured. With an output folder, writes `config.toml` at the start and,
/// after every epoch, `model.safetensors` (the model to keep so far), `train_state.safetensors`
/// and `metrics.json`, each atomically.
pub fn train(
    cfg: &TrainConfig,
    data: &PreparedData,
    opts: &RunOptions,
) -> Result<TrainOutcome, TrainError> {
    let threads = cfg.thread_count();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| TrainError::Config(format!("thread pool: {e}")))?;
    pool.install(|| train_in_pool(cfg, data, opts, threads))
}

fn train_in_pool(
    cfg: &TrainConfig,
    data: &PreparedData,
    opts: &RunOptions,
    threads: usize,
) -> Result<TrainOutcome, TrainError> {
    if cfg.batch_size == 0 || data.train.is_empty() {
        return Err(TrainError::Config(
            "batch_size and the training set must be non-empty".into(),
        ));
    }
    let classes = data.train.classes;
    let (seq, pretraining) = initial_network(cfg, data, threads, !opts.resume)?;
    let mut net = Network::new(seq, cfg.loss, cfg.batch_size, threads);
    let mut opt = Optimizer::new(cfg.optimizer, &net.param_sizes());
    let mut rng = rng_for(cfg.seed, 2);
    let mut best: Option<Sequential> = None;
    let mut prog = Progress {
        epochs_done: 0,
        opt_steps: 0,
        best_metric: None,
        best_epoch: None,
        bad_epochs: 0,
        stopped_early: false,
        history: Vec::new(),
        pretraining,
        diagnostics_at_init: Vec::new(),
    };
    let early = cfg.early_stopping.filter(|_| data.val.is_some());
    let make_model = |seq: &Sequential| Model {
        net: seq.clone(),
        transform: data.transform.clone(),
        classes,
    };

    if let Some(dir) = &opts.out_dir {
        std::fs::create_dir_all(dir).map_err(|error| CheckpointError::Io {
            path: dir.clone(),
            error,
        })?;
        if opts.resume {
            let st = load_train_state(&dir.join(TRAIN_STATE_FILE), &mut net, &mut opt)?;
            rng = st.0;
            best = st.1;
            prog = st.2;
        } else {
            checkpoint::atomic_write(&dir.join(CONFIG_FILE), cfg.to_toml().as_bytes())?;
        }
    } else if opts.resume {
        return Err(TrainError::Resume("no run folder given".into()));
    }

    let diag_sample = cfg
        .diagnostics
        .then(|| DiagSample::new(&data.train, data.val.as_ref()));
    let mut tracker = StepTracker::new();
    let mut advised = false;
    let diag_stride = diag::step_stride(data.train.len().div_ceil(cfg.batch_size));
    if let (Some(s), false) = (&diag_sample, opts.resume) {
        prog.diagnostics_at_init = diag::at_init(&net, s, &mut rng_for(cfg.seed, 5));
        report_diagnostics(
            opts.progress,
            "init",
            None,
            &prog.diagnostics_at_init,
            &mut advised,
        );
    }

    let train = &data.train;
    let f = train.features;
    let n = train.len();
    let mut order: Vec<usize> = (0..n).collect();
    let mut labels = vec![0u32; cfg.batch_size];
    let mut eval_rng = rng_for(cfg.seed, 3);
    let last_epoch = opts.stop_after.map_or(cfg.epochs, |s| s.min(cfg.epochs));
    let mut epoch = prog.epochs_done;
    while epoch < last_epoch && !prog.stopped_early {
        let t0 = Instant::now();
        let lr = cfg.schedule.lr(cfg.lr, epoch, cfg.epochs);
        for (i, o) in order.iter_mut().enumerate() {
            *o = i;
        }
        shuffle(&mut order, &mut rng);
        let bar = progress_bar(opts.progress, n as u64, epoch + 1, cfg.epochs);
        let (mut loss_sum, mut correct) = (0.0f64, 0usize);
        for (bi, idx) in order.chunks(cfg.batch_size).enumerate() {
            let b = idx.len();
            {
                let input = net.input_mut(b);
                for (r, &i) in idx.iter().enumerate() {
                    input[r * f..(r + 1) * f].copy_from_slice(train.row(i));
                    labels[r] = train.y[i];
                }
            }
            net.forward(b, true, &mut rng);
            let (l, k) = net.loss_and_grad(&labels[..b]);
            if !l.is_finite() {
                bar.abandon();
                return Err(TrainError::Diverged {
                    epoch: epoch + 1,
                    batch: bi + 1,
                    loss: l / b as f64,
                    lr,
                });
            }
            loss_sum += l;
            correct += k;
            net.backward(b, false);
            let track = diag_sample.is_some() && bi % diag_stride == 0;
            if track {
                tracker.before_step(&mut net);
            }
            let mut params = net.params();
            cfg.regularization.add_grads(&mut params);
            cfg.regularization.clip(&mut params);
            opt.step(&mut params, lr as f32);
            cfg.regularization.apply_max_norm(&mut params);
            drop(params);
            if track {
                tracker.after_step(&mut net);
            }
            if bi % 16 == 15 || (bi + 1) * cfg.batch_size >= n {
                let done = ((bi + 1) * cfg.batch_size).min(n);
                bar.set_position(done as u64);
                bar.set_message(format!(
                    "loss {:.4} acc {:.2}% {:.0} samples/s",
                    loss_sum / done as f64,
                    100.0 * correct as f64 / done as f64,
                    done as f64 / t0.elapsed().as_secs_f64()
                ));
            }
        }
        let train_secs = t0.elapsed().as_secs_f64();
        if !all_finite(&net.seq) {
            bar.abandon();
            return Err(TrainError::Diverged {
                epoch: epoch + 1,
                batch: n.div_ceil(cfg.batch_size),
                loss: f64::NAN,
                lr,
            });
        }
        let (val_loss, val_accuracy) = match &data.val {
            Some(v) => {
                let (l, k) = net.evaluate(&v.x, &v.y, &mut eval_rng);
                (Some(l / v.len() as f64), Some(k as f64 / v.len() as f64))
            }
            None => (None, None),
        };
        epoch += 1;
        let diagnostics = match &diag_sample {
            Some(s) => {
                let (g, r) = tracker.take();
                diag::layer_diagnostics(&net.seq, s, &g, &r)
            }
            None => Vec::new(),
        };
        let prev = match prog.history.last() {
            Some(p) => Some(&p.diagnostics[..]),
            None => Some(&prog.diagnostics_at_init[..]),
        };
        let warnings = diag::warnings(prev.filter(|p| !p.is_empty()), &diagnostics)
            .iter()
            .map(|w| w.to_string())
            .collect();
        let m = EpochMetrics {
            epoch,
            train_loss: loss_sum / n as f64,
            train_accuracy: correct as f64 / n as f64,
            val_loss,
            val_accuracy,
            lr,
            seconds: t0.elapsed().as_secs_f64(),
            samples_per_s: n as f64 / train_secs,
            diagnostics,
            warnings,
        };
        bar.finish_with_message(format!(
            "loss {:.4} acc {:.2}%{} {:.0} samples/s",
            m.train_loss,
            100.0 * m.train_accuracy,
            match (m.val_loss, m.val_accuracy) {
                (Some(l), Some(a)) => format!(" | val loss {l:.4} acc {:.2}%", 100.0 * a),
                _ => String::new(),
            },
            m.samples_per_s
        ));
        report_diagnostics(
            opts.progress,
            &format!("epoch {epoch}"),
            Some(&m.warnings),
            &m.diagnostics,
            &mut advised,
        );
        if let Some(es) = early {
            let value = match es.metric {
                StopMetric::ValLoss => -m.val_loss.unwrap(),
                StopMetric::ValAccuracy => m.val_accuracy.unwrap(),
            };
            if prog.best_metric.is_none_or(|b| value > b + es.min_delta) {
                prog.best_metric = Some(value);
                prog.best_epoch = Some(epoch);
                prog.bad_epochs = 0;
                best = Some(net.seq.clone());
            } else {
                prog.bad_epochs += 1;
                if prog.bad_epochs >= es.patience {
                    prog.stopped_early = epoch < cfg.epochs;
                }
            }
        }
        prog.history.push(m);
        prog.epochs_done = epoch;
        prog.opt_steps = opt.steps;
        if let Some(dir) = &opts.out_dir {
            let keep = best.as_ref().unwrap_or(&net.seq);
            checkpoint::save_model(&dir.join(MODEL_FILE), &make_model(keep))?;
            save_train_state(
                &dir.join(TRAIN_STATE_FILE),
                &net.seq,
                best.as_ref(),
                &mut opt,
                &rng,
                &prog,
                &make_model,
            )?;
            let partial = RunMetrics {
                epochs: prog.history.clone(),
                test_loss: None,
                test_accuracy: None,
                best_epoch: prog.best_epoch,
                stopped_early: prog.stopped_early,
                pretraining: prog.pretraining.clone(),
                diagnostics_at_init: prog.diagnostics_at_init.clone(),
            };
            write_metrics(dir, &partial)?;
        }
    }
    let finished = epoch >= cfg.epochs || prog.stopped_early;
    let final_seq = if finished {
        best.clone().unwrap_or_else(|| net.seq.clone())
    } else {
        net.seq.clone()
    };
    let (test_loss, test_accuracy) = match (&data.test, finished) {
        (Some(t), true) => {
            net.seq = final_seq.clone();
            let (l, k) = net.evaluate(&t.x, &t.y, &mut eval_rng);
            (Some(l / t.len() as f64), Some(k as f64 / t.len() as f64))
        }
        _ => (None, None),
    };
    let metrics = RunMetrics {
        epochs: prog.history.clone(),
        test_loss,
        test_accuracy,
        best_epoch: prog.best_epoch,
        stopped_early: prog.stopped_early,
        pretraining: prog.pretraining.clone(),
        diagnostics_at_init: prog.diagnostics_at_init.clone(),
    };
    let model = make_model(&final_seq);
    if let (Some(dir), true) = (&opts.out_dir, finished) {
        checkpoint::save_model(&dir.join(MODEL_FILE), &model)?;
        write_metrics(dir, &metrics)?;
    }
    Ok(TrainOutcome { model, metrics })
}

/// Prints the diagnostics summary line and any warnings (with the lecture's advice) when
/// showing progress. `warnings = None`: compute them without a previous epoch (at init). The
/// advice is printed once per run (`advised`).
fn report_diagnostics(
    show: bool,
    when: &str,
    warnings: Option<&[String]>,
    d: &[LayerDiagnostics],
    advised: &mut bool,
) {
    if !show || d.is_empty() {
        return;
    }
    eprintln!("  diagnostics ({when}): {}", diag::summary(d));
    let computed: Vec<String>;
    let ws = match warnings {
        Some(w) => w,
        None => {
            computed = diag::warnings(None, d)
                .iter()
                .map(|w| w.to_string())
                .collect();
            &computed
        }
    };
    for w in ws {
        eprintln!("  warning: {w}");
    }
    if !ws.is_empty() && !*advised {
        eprintln!("  {}", diag::ADVICE);
        *advised = true;
    }
}

fn progress_bar(show: bool, len: u64, epoch: usize, epochs: usize) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("epoch {epoch:>3}/{epochs}"));
    bar
}

fn write_metrics(dir: &Path, m: &RunMetrics) -> Result<(), CheckpointError> {
    let text = serde_json::to_string_pretty(m).expect("metrics serialise");
    checkpoint::atomic_write(&dir.join(METRICS_FILE), text.as_bytes())
}

fn save_train_state(
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

fn load_train_state(
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
        return Err(TrainError::Resume(format!(
            "{} was saved for a different architecture",
            path.display()
        )));
    }
    let saved_opt: crate::nn::optim::OptimizerConfig = file.meta_json("microdnn.optimizer")?;
    if saved_opt != opt.config {
        return Err(TrainError::Resume(format!(
            "{} was saved with another optimiser",
            path.display()
        )));
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
        .map_err(|_| TrainError::Resume("rng state must be 64 bytes".into()))?;
    opt.steps = prog.opt_steps;
    Ok((RngState::from_bytes(&rng_bytes).restore(), best, prog))
}

/// Trains from a config file path with CLI-style options: convenience for tests and tools.
pub fn train_from_config(cfg: &TrainConfig, opts: &RunOptions) -> anyhow::Result<TrainOutcome> {
    let data = prepare_data(cfg).context("preparing the data")?;
    Ok(train(cfg, &data, opts)?)
}

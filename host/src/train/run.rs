//! The training loop, phase by phase. [`Run::prepare`] builds the network, the optimiser and
//! the random streams (or restores them from the run folder on resume) and measures the
//! diagnostics at initialisation; then each epoch is [`Run::epoch`] (a fresh shuffle and the
//! mini-batch [`step`]s), [`Run::evaluate`] (validation, diagnostics, warnings),
//! [`Run::early_stop`] and [`Run::checkpoint`] (the run folder's files); [`Run::finish`] restores
//! the best weights, measures the test split and writes the final files.
//!
//! The run folder ([`RunFolder`]) is locked for the whole run. Each epoch appends its metrics to
//! `history.jsonl`, then saves `train_state.safetensors` (what resume reads) and
//! `model.safetensors`; a run killed between these writes is repaired on resume (extra history
//! lines are dropped and the model is written again from the state), so resume stays exact.
//! `config.toml` is written with the first checkpoint, never before: a folder never holds the
//! config of one run beside the model of another.

use std::time::Instant;

use crate::model::checkpoint::{self, MODEL_FILE};
use crate::model::{Layer, Model, Sequential};
use crate::nn::dropout::{self, DropoutKind};
use crate::nn::network::Network;
use crate::nn::optim::Optimizer;
use crate::random::{rng_for, shuffle, TrainRng};
use crate::train::config::{ConfigError, StopMetric, TrainConfig, MAX_BATCH_VALUES};
use crate::train::diagnostics::{self as diag, DiagSample, StepTracker};
use crate::train::folder::{RunFolder, Use};
use crate::train::init::initial_network;
use crate::train::metrics::{append_history, read_history, write_metrics, EpochMetrics};
use crate::train::progress::TrainObserver;
use crate::train::resume::{load_train_state, save_train_state, Progress, RunRecord};
use crate::train::step::{all_finite, load_batch, step, StepHook, StepParams};
use crate::train::{
    PreparedData, ResumeError, RunOptions, TrainError, TrainOutcome, CONFIG_FILE, TRAIN_STATE_FILE,
};

/// Trains on the current rayon pool (see [`crate::train::train`]).
pub(crate) fn train_in_pool(
    cfg: &TrainConfig,
    data: &PreparedData,
    opts: &RunOptions,
    threads: usize,
    observer: &mut dyn TrainObserver,
) -> Result<TrainOutcome, TrainError> {
    let mut run = Run::prepare(cfg, data, opts, threads, observer)?;
    let last_epoch = opts.stop_after.map_or(cfg.epochs, |s| s.min(cfg.epochs));
    while run.prog.epochs_done < last_epoch && !run.prog.stopped_early {
        let t0 = Instant::now();
        let params = StepParams::for_epoch(cfg, run.prog.epochs_done);
        // The rate as reported (f64; the step uses it rounded to f32).
        let lr = cfg.schedule.lr(cfg.lr, run.prog.epochs_done, cfg.epochs);
        let totals = run.epoch(&params, lr, t0)?;
        let m = run.evaluate(&params, lr, &totals, t0);
        if let Some(v) = m.val_loss.filter(|v| !v.is_finite()) {
            return Err(run.diverged(None, format!("the validation loss is {v}"), lr));
        }
        run.observer.epoch_end(&m);
        run.early_stop(&m);
        run.prog.history.push(m);
        run.prog.epochs_done += 1;
        run.prog.opt_steps = run.opt.steps;
        run.checkpoint()?;
    }
    run.finish()
}

/// A run in progress: what the phases share.
struct Run<'a> {
    cfg: &'a TrainConfig,
    data: &'a PreparedData,
    observer: &'a mut dyn TrainObserver,
    /// The run folder, locked (none: everything in memory).
    folder: Option<RunFolder>,
    /// Whether this process has written `config.toml` (with its first checkpoint).
    wrote_config: bool,
    /// The mini-batch size: the configured one, at most the training split.
    batch: usize,
    net: Network,
    opt: Optimizer,
    /// Random stream 2: shuffles, then dropout and DropConnect masks.
    rng: TrainRng,
    /// Random stream 3: evaluation.
    eval_rng: TrainRng,
    /// The weights early stopping keeps.
    best: Option<Sequential>,
    /// What is saved for resume (epochs done, early-stopping state, history).
    prog: Progress,
    /// Per-epoch diagnostics (`diagnostics = true`).
    diag: Option<Diagnostics>,
    order: Vec<usize>,
    labels: Vec<u32>,
}

/// The diagnostics of a run: the sample they are measured on and the per-step tracker, which
/// sees every `stride`-th step.
struct Diagnostics {
    sample: DiagSample,
    tracker: StepTracker,
    stride: usize,
}

/// The training part of an epoch.
struct EpochTotals {
    loss_sum: f64,
    correct: usize,
    train_secs: f64,
}

/// Records gradient norms and update ratios around a step (when tracking).
struct Tracking<'t>(Option<&'t mut StepTracker>);

impl StepHook for Tracking<'_> {
    fn after_backward(&mut self, net: &mut Network) {
        if let Some(t) = &mut self.0 {
            t.before_step(net);
        }
    }

    fn after_update(&mut self, net: &mut Network) {
        if let Some(t) = &mut self.0 {
            t.after_step(net);
        }
    }
}

/// The model of a run with these weights (training-time weights of `kind` of dropout: a classic
/// network is converted to inverted dropout, the form every checkpoint holds).
fn model_of(data: &PreparedData, seq: &Sequential, kind: DropoutKind) -> Model {
    Model {
        net: match kind {
            DropoutKind::Inverted => seq.clone(),
            DropoutKind::Classic => dropout::to_inverted(seq),
        },
        transform: data.transform.clone(),
        classes: data.train.classes,
    }
}

/// Saves the model of a run with its data record (how to rebuild its test split).
fn save_model(
    dir: &std::path::Path,
    data: &PreparedData,
    seq: &Sequential,
    kind: DropoutKind,
) -> Result<(), TrainError> {
    let record = data.record.as_ref().map(|r| {
        (
            crate::train::DATA_RECORD_KEY,
            serde_json::to_string(r).unwrap_or_default(),
        )
    });
    checkpoint::save_model_with(
        &dir.join(MODEL_FILE),
        &model_of(data, seq, kind),
        record.as_slice(),
    )?;
    Ok(())
}

/// What makes a network unusable besides non-finite parameters: a negative batch-norm running
/// variance (evaluation takes its square root).
fn negative_variance(seq: &Sequential) -> bool {
    seq.layers.iter().any(|l| match l {
        Layer::BatchNorm1d(b) => b.running_var.iter().any(|&v| v < 0.0),
        _ => false,
    })
}

impl<'a> Run<'a> {
    /// The network (initialised, loaded from `init` or pretrained), the optimiser, the random
    /// streams and the bookkeeping, restored from the run folder on resume; the run folder and
    /// its `config.toml`; the diagnostics at initialisation.
    fn prepare(
        cfg: &'a TrainConfig,
        data: &'a PreparedData,
        opts: &'a RunOptions,
        threads: usize,
        observer: &'a mut dyn TrainObserver,
    ) -> Result<Self, TrainError> {
        if data.train.is_empty() {
            return Err(ConfigError::NothingToTrain.into());
        }
        cfg.check_epoch_settings()?;
        let batch = cfg.batch_size.min(data.train.len());
        let (mut seq, pretraining) = initial_network(cfg, data, threads, !opts.resume)?;
        let widths: u64 = seq.widths().iter().map(|&w| w as u64).sum();
        let values = widths.saturating_mul(batch as u64);
        if values > MAX_BATCH_VALUES {
            return Err(ConfigError::TooLarge {
                what: "a batch's activations (batch_size x the layer widths)",
                advice: "make the batch smaller (batch_size) or the layers narrower",
                count: values,
                limit: MAX_BATCH_VALUES,
            }
            .into());
        }
        let classic = cfg.model.dropout_kind == DropoutKind::Classic;
        if classic && !opts.resume && (cfg.init.is_some() || cfg.pretrain.is_some()) {
            // Checkpoints and pretraining give test-time (inverted) weights.
            dropout::to_classic(&mut seq);
        }
        let mut net = Network::new(seq, cfg.loss, batch, threads);
        net.set_dropout_kind(cfg.model.dropout_kind);
        let mut opt = Optimizer::new(cfg.optimizer, &net.param_sizes());
        let mut rng = rng_for(cfg.seed, 2);
        let mut best = None;
        let mut prog = Progress::new(pretraining);
        let folder = match &opts.out_dir {
            Some(dir) => {
                let how = if opts.resume {
                    Use::Resume
                } else {
                    Use::Fresh {
                        replace: opts.force,
                    }
                };
                Some(RunFolder::open(dir, how)?.0)
            }
            None if opts.resume => return Err(ResumeError::NoRunFolder.into()),
            None => None,
        };
        if let (Some(f), true) = (&folder, opts.resume) {
            let dir = f.dir();
            (rng, best, prog) = load_train_state(
                &dir.join(TRAIN_STATE_FILE),
                &mut net,
                &mut opt,
                cfg,
                data.record.as_ref(),
            )?;
            if let Some(h) = read_history(dir, prog.epochs_done)? {
                prog.history = h;
            }
            // The model a kill may have left an epoch behind the state.
            save_model(
                dir,
                data,
                best.as_ref().unwrap_or(&net.seq),
                net.dropout_kind(),
            )?;
        }
        let diag = cfg.diagnostics.then(|| Diagnostics {
            sample: DiagSample::new(&data.train, data.val.as_ref()),
            tracker: StepTracker::new(),
            stride: diag::step_stride(data.train.len().div_ceil(cfg.batch_size)),
        });
        if let (Some(d), false) = (&diag, opts.resume) {
            prog.diagnostics_at_init = diag::at_init(&net, &d.sample, &mut rng_for(cfg.seed, 5));
            let warnings: Vec<String> = diag::warnings(None, &prog.diagnostics_at_init)
                .iter()
                .map(|w| w.to_string())
                .collect();
            observer.at_init(&prog.diagnostics_at_init, &warnings);
        }
        Ok(Self {
            cfg,
            data,
            observer,
            folder,
            wrote_config: false,
            batch,
            net,
            opt,
            rng,
            eval_rng: rng_for(cfg.seed, 3),
            best,
            prog,
            diag,
            order: (0..data.train.len()).collect(),
            labels: vec![0; batch],
        })
    }

    /// One pass over the training split in a fresh shuffle, with the epoch's settings `params`
    /// (learning rate `lr`). Divergence (a non-finite loss at a step, or non-finite weights at
    /// the end) is an error.
    fn epoch(
        &mut self,
        params: &StepParams,
        lr: f64,
        t0: Instant,
    ) -> Result<EpochTotals, TrainError> {
        let epoch = self.prog.epochs_done + 1;
        let train = &self.data.train;
        let (n, bs) = (train.len(), self.batch);
        for (i, o) in self.order.iter_mut().enumerate() {
            *o = i;
        }
        shuffle(&mut self.order, &mut self.rng);
        self.observer.epoch_start(epoch, self.cfg.epochs, n);
        let (mut loss_sum, mut correct) = (0.0f64, 0usize);
        for (bi, idx) in self.order.chunks(bs).enumerate() {
            load_batch(&mut self.net, train, idx, &mut self.labels);
            let tracker = match &mut self.diag {
                Some(d) if bi % d.stride == 0 => Some(&mut d.tracker),
                _ => None,
            };
            let loss = step(
                &mut self.net,
                &mut self.opt,
                params,
                &self.labels[..idx.len()],
                &mut self.rng,
                &mut Tracking(tracker),
            );
            let loss = match loss {
                Ok(l) => l,
                Err(e) => {
                    let what = format!("the loss is {}", e.sum / idx.len() as f64);
                    return Err(self.diverged(Some(bi + 1), what, lr));
                }
            };
            loss_sum += loss.sum;
            correct += loss.correct;
            if bi % 16 == 15 || (bi + 1) * bs >= n {
                let done = ((bi + 1) * bs).min(n);
                let secs = t0.elapsed().as_secs_f64();
                self.observer.batches(done, loss_sum, correct, secs);
            }
        }
        let train_secs = t0.elapsed().as_secs_f64();
        if !all_finite(&self.net.seq) {
            let what = "a weight or batch-norm statistic is not finite".to_string();
            return Err(self.diverged(None, what, lr));
        }
        if negative_variance(&self.net.seq) {
            let what =
                "a batch-norm running variance is negative (is model.bn_momentum in [0, 1]?)";
            return Err(self.diverged(None, what.to_string(), lr));
        }
        Ok(EpochTotals {
            loss_sum,
            correct,
            train_secs,
        })
    }

    /// The epoch's metrics: training loss and accuracy, validation loss and accuracy
    /// (evaluation mode), diagnostics and their warnings.
    fn evaluate(
        &mut self,
        params: &StepParams,
        lr: f64,
        t: &EpochTotals,
        t0: Instant,
    ) -> EpochMetrics {
        let (val_loss, val_accuracy) = match &self.data.val {
            Some(v) => {
                let (l, k) = self.net.evaluate(&v.x, &v.y, &mut self.eval_rng);
                (Some(l / v.len() as f64), Some(k as f64 / v.len() as f64))
            }
            None => (None, None),
        };
        let diagnostics = match &mut self.diag {
            Some(d) => {
                let (g, r) = d.tracker.take();
                let kind = self.net.dropout_kind();
                let seq = model_of(self.data, &self.net.seq, kind).net;
                diag::layer_diagnostics(&seq, &d.sample, &g, &r)
            }
            None => Vec::new(),
        };
        let prev = match self.prog.history.last() {
            Some(p) => &p.diagnostics[..],
            None => &self.prog.diagnostics_at_init[..],
        };
        let warnings = diag::warnings(Some(prev).filter(|p| !p.is_empty()), &diagnostics)
            .iter()
            .map(|w| w.to_string())
            .collect();
        let n = self.data.train.len();
        EpochMetrics {
            epoch: self.prog.epochs_done + 1,
            train_loss: t.loss_sum / n as f64,
            train_accuracy: t.correct as f64 / n as f64,
            val_loss,
            val_accuracy,
            lr,
            momentum: params.momentum.map(f64::from),
            seconds: t0.elapsed().as_secs_f64(),
            samples_per_s: n as f64 / t.train_secs,
            diagnostics,
            warnings,
        }
    }

    /// Early stopping (with a validation split): keeps a copy of the best weights and stops
    /// after `patience` epochs without an improvement of more than `min_delta` (stopping at the
    /// last epoch does not count as stopping early).
    fn early_stop(&mut self, m: &EpochMetrics) {
        let Some(es) = self.cfg.early_stopping.filter(|_| self.data.val.is_some()) else {
            return;
        };
        let value = match es.metric {
            StopMetric::ValLoss => -m.val_loss.unwrap_or(f64::NAN),
            StopMetric::ValAccuracy => m.val_accuracy.unwrap_or(f64::NAN),
        };
        let p = &mut self.prog;
        if p.best_metric.is_none_or(|b| value > b + es.min_delta) {
            p.best_metric = Some(value);
            p.best_epoch = Some(m.epoch);
            p.bad_epochs = 0;
            self.best = Some(self.net.seq.clone());
        } else {
            p.bad_epochs += 1;
            if p.bad_epochs >= es.patience {
                p.stopped_early = m.epoch < self.cfg.epochs;
            }
        }
    }

    /// The divergence error of the current epoch (the observer is told first).
    fn diverged(&mut self, batch: Option<usize>, what: String, lr: f64) -> TrainError {
        self.observer.diverged();
        TrainError::Diverged {
            epoch: self.prog.epochs_done + 1,
            batch,
            what,
            lr,
            kept: self
                .folder
                .as_ref()
                .map(|_| Some(self.prog.epochs_done).filter(|&e| e > 0)),
        }
    }

    /// With a run folder: the epoch's line of `history.jsonl`, then the training state for
    /// resume, then the model to keep so far (the best weights, if early stopping has some),
    /// each written atomically; `config.toml` (resolved) before the first of them.
    fn checkpoint(&mut self) -> Result<(), TrainError> {
        let Some(dir) = self.folder.as_ref().map(|f| f.dir().to_path_buf()) else {
            return Ok(());
        };
        let mut resolved = self.cfg.clone();
        resolved.data.dataset = Some(self.cfg.data.dataset());
        if !self.wrote_config {
            checkpoint::atomic_write(&dir.join(CONFIG_FILE), resolved.to_toml().as_bytes())?;
            self.wrote_config = true;
        }
        if let Some(m) = self.prog.history.last() {
            append_history(&dir, m)?;
        }
        let (data, kind) = (self.data, self.net.dropout_kind());
        save_train_state(
            &dir.join(TRAIN_STATE_FILE),
            &self.net.seq,
            self.best.as_ref(),
            &mut self.opt,
            &self.rng,
            &RunRecord {
                prog: &self.prog,
                config: &resolved,
                data: data.record.as_ref(),
            },
            &|s| model_of(data, s, DropoutKind::Inverted),
        )?;
        save_model(
            &dir,
            data,
            self.best.as_ref().unwrap_or(&self.net.seq),
            kind,
        )
    }

    /// The outcome. A finished run (all epochs, or stopped early) restores the best weights,
    /// measures the test split and writes the final model and metrics; a run stopped by
    /// `stop_after` returns its current weights.
    fn finish(mut self) -> Result<TrainOutcome, TrainError> {
        let finished = self.prog.epochs_done >= self.cfg.epochs || self.prog.stopped_early;
        let final_seq = match (&self.best, finished) {
            (Some(b), true) => b.clone(),
            _ => self.net.seq.clone(),
        };
        let test = match (&self.data.test, finished) {
            (Some(t), true) if !t.is_empty() => {
                self.net.seq = final_seq.clone();
                let (l, k) = self.net.evaluate(&t.x, &t.y, &mut self.eval_rng);
                let loss = l / t.len() as f64;
                if !loss.is_finite() {
                    self.observer.diverged();
                    let done = self.prog.epochs_done;
                    return Err(TrainError::Diverged {
                        epoch: done,
                        batch: None,
                        what: format!("the test loss of the final model is {loss}"),
                        lr: self.prog.history.last().map_or(self.cfg.lr, |m| m.lr),
                        kept: self.folder.as_ref().map(|_| Some(done)),
                    });
                }
                Some((loss, k as f64 / t.len() as f64))
            }
            _ => None,
        };
        let metrics = self.prog.metrics(test);
        let model = model_of(self.data, &final_seq, self.net.dropout_kind());
        if let Some(dir) = self.folder.as_ref().map(|f| f.dir().to_path_buf()) {
            if finished {
                save_model(&dir, self.data, &final_seq, self.net.dropout_kind())?;
            }
            write_metrics(&dir, &metrics)?;
        }
        Ok(TrainOutcome { model, metrics })
    }
}

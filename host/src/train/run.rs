//! The training loop, phase by phase. [`Run::prepare`] builds the network, the optimiser and
//! the random streams (or restores them from the run folder on resume) and measures the
//! diagnostics at initialisation; then each epoch is [`Run::epoch`] (a fresh shuffle and the
//! mini-batch [`step`]s), [`Run::evaluate`] (validation, diagnostics, warnings),
//! [`Run::early_stop`] and [`Run::checkpoint`] (the run folder's files); [`Run::finish`] restores
//! the best weights, measures the test split and writes the final files.

use std::time::Instant;

use crate::model::checkpoint::{self, CheckpointError, MODEL_FILE};
use crate::model::{Model, Sequential};
use crate::nn::dropout::{self, DropoutKind};
use crate::nn::network::Network;
use crate::nn::optim::Optimizer;
use crate::random::{rng_for, shuffle, TrainRng};
use crate::train::config::{ConfigError, StopMetric, TrainConfig};
use crate::train::diagnostics::{self as diag, DiagSample, StepTracker};
use crate::train::init::initial_network;
use crate::train::metrics::{write_metrics, EpochMetrics};
use crate::train::progress::TrainObserver;
use crate::train::resume::{load_train_state, save_train_state, Progress};
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
    opts: &'a RunOptions,
    observer: &'a mut dyn TrainObserver,
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
        if cfg.batch_size == 0 || data.train.is_empty() {
            return Err(ConfigError::NothingToTrain.into());
        }
        cfg.check_epoch_settings()?;
        let (mut seq, pretraining) = initial_network(cfg, data, threads, !opts.resume)?;
        let classic = cfg.model.dropout_kind == DropoutKind::Classic;
        if classic && !opts.resume && (cfg.init.is_some() || cfg.pretrain.is_some()) {
            // Checkpoints and pretraining give test-time (inverted) weights.
            dropout::to_classic(&mut seq);
        }
        let mut net = Network::new(seq, cfg.loss, cfg.batch_size, threads);
        net.set_dropout_kind(cfg.model.dropout_kind);
        let mut opt = Optimizer::new(cfg.optimizer, &net.param_sizes());
        let mut rng = rng_for(cfg.seed, 2);
        let mut best = None;
        let mut prog = Progress::new(pretraining);
        if let Some(dir) = &opts.out_dir {
            std::fs::create_dir_all(dir).map_err(|error| CheckpointError::Io {
                path: dir.clone(),
                error,
            })?;
            if opts.resume {
                (rng, best, prog) =
                    load_train_state(&dir.join(TRAIN_STATE_FILE), &mut net, &mut opt)?;
            } else {
                checkpoint::atomic_write(&dir.join(CONFIG_FILE), cfg.to_toml().as_bytes())?;
            }
        } else if opts.resume {
            return Err(ResumeError::NoRunFolder.into());
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
            opts,
            observer,
            net,
            opt,
            rng,
            eval_rng: rng_for(cfg.seed, 3),
            best,
            prog,
            diag,
            order: (0..data.train.len()).collect(),
            labels: vec![0; cfg.batch_size],
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
        let (n, bs) = (train.len(), self.cfg.batch_size);
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
                    self.observer.diverged();
                    return Err(TrainError::Diverged {
                        epoch,
                        batch: bi + 1,
                        loss: e.sum / idx.len() as f64,
                        lr,
                    });
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
            self.observer.diverged();
            return Err(TrainError::Diverged {
                epoch,
                batch: n.div_ceil(bs),
                loss: f64::NAN,
                lr,
            });
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

    /// With a run folder: the model to keep so far (the best weights, if early stopping has
    /// some), the training state for resume and the metrics so far, each written atomically.
    fn checkpoint(&mut self) -> Result<(), TrainError> {
        let Some(dir) = &self.opts.out_dir else {
            return Ok(());
        };
        let (data, kind) = (self.data, self.net.dropout_kind());
        let keep = self.best.as_ref().unwrap_or(&self.net.seq);
        checkpoint::save_model(&dir.join(MODEL_FILE), &model_of(data, keep, kind))?;
        save_train_state(
            &dir.join(TRAIN_STATE_FILE),
            &self.net.seq,
            self.best.as_ref(),
            &mut self.opt,
            &self.rng,
            &self.prog,
            &|s| model_of(data, s, DropoutKind::Inverted),
        )?;
        write_metrics(dir, &self.prog.metrics(None))?;
        Ok(())
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
            (Some(t), true) => {
                self.net.seq = final_seq.clone();
                let (l, k) = self.net.evaluate(&t.x, &t.y, &mut self.eval_rng);
                Some((l / t.len() as f64, k as f64 / t.len() as f64))
            }
            _ => None,
        };
        let metrics = self.prog.metrics(test);
        let model = model_of(self.data, &final_seq, self.net.dropout_kind());
        if let (Some(dir), true) = (&self.opts.out_dir, finished) {
            checkpoint::save_model(&dir.join(MODEL_FILE), &model)?;
            write_metrics(dir, &metrics)?;
        }
        Ok(TrainOutcome { model, metrics })
    }
}

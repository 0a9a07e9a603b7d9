//! The training loop.

use std::time::Instant;

use crate::model::checkpoint::{self, CheckpointError, MODEL_FILE};
use crate::model::{Layer, Model, Sequential};
use crate::nn::network::Network;
use crate::nn::optim::Optimizer;
use crate::random::{rng_for, shuffle};
use crate::train::config::{StopMetric, TrainConfig};
use crate::train::diagnostics::{self as diag, DiagSample, LayerDiagnostics, StepTracker};
use crate::train::init::initial_network;
use crate::train::metrics::{write_metrics, EpochMetrics, RunMetrics};
use crate::train::resume::{load_train_state, save_train_state, Progress};
use crate::train::{
    PreparedData, RunOptions, TrainError, TrainOutcome, CONFIG_FILE, TRAIN_STATE_FILE,
};

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

pub(crate) fn train_in_pool(
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

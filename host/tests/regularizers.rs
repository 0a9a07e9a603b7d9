//! The settings of the paper's regulariser table: the KL-sparsity penalty on hidden units
//! (finite differences), classic dropout against inverted dropout (same predictions, and the
//! mapping of learning rate, L2 and max-norm between them), the momentum schedule and late L1
//! as the loop hands them to the step, their validation, and an exact resume with all of them.

#![allow(clippy::needless_range_loop)] // finite differences index by position

use microdnn::Activation;
use microdnn_host::model::checkpoint::{self, MODEL_FILE};
use microdnn_host::model::{Layer, Linear, Sequential};
use microdnn_host::nn::dropout::{self, DropoutKind};
use microdnn_host::nn::loss::{self, Loss};
use microdnn_host::nn::network::{Network, ParamKind};
use microdnn_host::nn::optim::{Optimizer, OptimizerConfig};
use microdnn_host::nn::regularize::Regularization;
use microdnn_host::nn::schedule::{MomentumSchedule, Schedule};
use microdnn_host::nn::sparsity::KlSparsity;
use microdnn_host::random::{rng_for, shuffle, TrainRng};
use microdnn_host::train::config::TrainConfig;
use microdnn_host::train::{self, step, PreparedData, RunOptions, TrainError};

mod common;
use common::rand_vec;

fn linear(inp: usize, out: usize, seed: u64, scale: f32) -> Linear {
    let mut rng = rng_for(seed, 7);
    Linear::from_parts(
        inp,
        out,
        rand_vec(inp * out, &mut rng, -scale, scale),
        rand_vec(out, &mut rng, -0.3, 0.3),
    )
    .unwrap()
}

/// Mean cross-entropy of the batch in the network's input plus the KL-sparsity penalty,
/// training mode with the masks of a copy of `masks`.
fn objective(net: &mut Network, x: &[f32], y: &[u32], s: &KlSparsity, masks: &TrainRng) -> f64 {
    let b = y.len();
    net.input_mut(b).copy_from_slice(x);
    let out = net.forward(b, true, &mut masks.clone()).to_vec();
    let (l, _) = loss::loss_only(Loss::CrossEntropy, &out, y, net.classes());
    l / b as f64 + net.activity_penalty(b, s)
}

/// The smallest distance from 0 of a pre-activation of a ReLU in the batch (training mode,
/// masks of `masks`): each prefix of the network ending at a dense layer before a ReLU is run on
/// the same random stream (only dropout layers draw from it, in order).
fn kink_margin(seq: &Sequential, x: &[f32], b: usize, masks: &TrainRng) -> f32 {
    let mut margin = f32::INFINITY;
    for i in 0..seq.layers.len() {
        if !matches!(
            seq.layers.get(i + 1),
            Some(Layer::Activation(Activation::Relu))
        ) {
            continue;
        }
        let prefix = Sequential::new(seq.layers[..=i].to_vec());
        let mut net = Network::new(prefix, Loss::CrossEntropy, b, 1);
        net.input_mut(b).copy_from_slice(x);
        let pre = net.forward(b, true, &mut masks.clone());
        margin = pre.iter().map(|v| v.abs()).fold(margin, f32::min);
    }
    margin
}

#[test]
fn kl_sparsity_penalty_gradients_by_finite_differences() {
    let h = 1e-3f32;
    for (act, target) in [(Activation::Relu, 0.3f32), (Activation::Sigmoid, 0.1)] {
        let seq = Sequential::new(vec![
            Layer::Linear(linear(5, 6, 1, 0.8)),
            Layer::Activation(act),
            Layer::Dropout(0.25),
            Layer::Linear(linear(6, 4, 2, 0.8)),
            Layer::Activation(act),
            Layer::Linear(linear(4, 3, 3, 0.8)),
        ]);
        let b = 4;
        let y = [0u32, 2, 1, 2];
        let s = KlSparsity {
            target,
            weight: 0.8,
        };
        let masks = rng_for(5, 2);
        // Inputs whose ReLU pre-activations all stay 0.02 or more from the kink, so that steps of
        // 1e-3 in a parameter never cross it (the first such input of a fixed sequence).
        let x = (0..100)
            .map(|k| rand_vec(b * 5, &mut rng_for(4, k), -1.0, 1.0))
            .find(|x| act != Activation::Relu || kink_margin(&seq, x, b, &masks) >= 0.02)
            .expect("an input away from the kinks");
        let mut net = Network::new(seq, Loss::CrossEntropy, b, 1);
        let pen = {
            objective(&mut net, &x, &y, &s, &masks);
            net.activity_penalty(b, &s)
        };
        assert!(pen > 0.05, "{act:?}: the penalty is active ({pen})");
        net.input_mut(b).copy_from_slice(&x);
        net.forward(b, true, &mut masks.clone());
        net.loss_and_grad(&y);
        net.backward_with_penalty(b, false, Some(&s));
        let grads: Vec<Vec<f32>> = net.params().iter().map(|p| p.grad.to_vec()).collect();
        // Without the penalty the gradients differ (so the check below sees the penalty's part).
        net.input_mut(b).copy_from_slice(&x);
        net.forward(b, true, &mut masks.clone());
        net.loss_and_grad(&y);
        net.backward(b, false);
        let plain: Vec<Vec<f32>> = net.params().iter().map(|p| p.grad.to_vec()).collect();
        assert_ne!(grads, plain);
        for (pi, g) in grads.iter().enumerate() {
            for j in 0..g.len() {
                let orig = net.params()[pi].value[j];
                net.params()[pi].value[j] = orig + h;
                let lp = objective(&mut net, &x, &y, &s, &masks);
                net.params()[pi].value[j] = orig - h;
                let lm = objective(&mut net, &x, &y, &s, &masks);
                net.params()[pi].value[j] = orig;
                let num = (lp - lm) / (2.0 * h as f64);
                common::close(num, g[j] as f64, 2e-4, &format!("{act:?} param {pi}[{j}]"));
            }
        }
    }
}

/// A 6-8-8-3 ReLU network with input dropout 0.2 and hidden dropout 0.5.
fn dropout_net(seed: u64) -> Sequential {
    Sequential::new(vec![
        Layer::Dropout(0.2),
        Layer::Linear(linear(6, 8, seed, 0.8)),
        Layer::Activation(Activation::Relu),
        Layer::Dropout(0.5),
        Layer::Linear(linear(8, 8, seed + 1, 0.8)),
        Layer::Activation(Activation::Relu),
        Layer::Dropout(0.5),
        Layer::Linear(linear(8, 3, seed + 2, 0.8)),
    ])
}

fn net_of(seq: Sequential, kind: DropoutKind, batch: usize) -> Network {
    let mut n = Network::new(seq, Loss::CrossEntropy, batch, 1);
    n.set_dropout_kind(kind);
    n
}

fn assert_close(a: &[f32], b: &[f32], rel: f32, what: &str) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let tol = rel * x.abs().max(y.abs()).max(1.0);
        assert!((x - y).abs() <= tol, "{what} [{i}]: {x} vs {y}");
    }
}

#[test]
fn classic_and_inverted_dropout_predict_the_same_once_mapped() {
    let b = 64;
    let classic = dropout_net(10);
    let x = rand_vec(b * 6, &mut rng_for(6, 0), -1.0, 1.0);
    let mut c = net_of(classic.clone(), DropoutKind::Classic, b);
    c.input_mut(b).copy_from_slice(&x);
    let yc = c.forward(b, false, &mut rng_for(0, 0)).to_vec();
    // The mapped network, with inverted dropout: in the trainer and through the model's
    // predictor (the path of scoring and export).
    let inverted = dropout::to_inverted(&classic);
    let mut i = net_of(inverted.clone(), DropoutKind::Inverted, b);
    i.input_mut(b).copy_from_slice(&x);
    let yi = i.forward(b, false, &mut rng_for(0, 0)).to_vec();
    let yp = inverted.predict(&x, b);
    assert_close(&yc, &yi, 1e-5, "classic vs inverted network");
    assert_close(&yc, &yp, 1e-5, "classic vs predictor");
    let argmax = |v: &[f32]| -> Vec<usize> { v.chunks(3).map(microdnn::argmax).collect() };
    assert_eq!(argmax(&yc), argmax(&yp));
    // Unmapped, the classic weights under inverted dropout compute something else.
    let wrong = classic.predict(&x, b);
    assert!(yc.iter().zip(&wrong).any(|(a, b)| (a - b).abs() > 0.05));
    // Training mode: the same random words drop the same units, and the outputs agree too.
    c.input_mut(b).copy_from_slice(&x);
    let tc = c.forward(b, true, &mut rng_for(7, 2)).to_vec();
    i.input_mut(b).copy_from_slice(&x);
    let ti = i.forward(b, true, &mut rng_for(7, 2)).to_vec();
    assert_close(&tc, &ti, 1e-5, "training mode");
}

/// Keep probability of the dropout layer feeding each parameter tensor (1 if none), in
/// `Network::params` order.
fn keep_of_params(seq: &Sequential) -> Vec<(f32, ParamKind)> {
    let mut out = Vec::new();
    for (i, l) in seq.layers.iter().enumerate() {
        if let Layer::Linear(_) = l {
            let keep = match i.checked_sub(1).map(|j| &seq.layers[j]) {
                Some(Layer::Dropout(r)) => 1.0 - r,
                _ => 1.0,
            };
            out.push((keep, ParamKind::Weight));
            out.push((1.0, ParamKind::Bias));
        }
    }
    out
}

#[test]
fn classic_training_is_inverted_training_with_mapped_rate_l2_and_max_norm() {
    // Classic: rate η, L2 λ, max-norm c on the classic weights. Inverted, per weight tensor fed
    // by dropout with keep probability q: rate q²η, L2 λ/q², max-norm q·c (biases and other
    // tensors unchanged). Two steps of the Hinton-form momentum with the same masks give the
    // same network (W_inv = q·W_classic) up to f32 rounding.
    let b = 16;
    let classic = dropout_net(20);
    let keeps = keep_of_params(&classic);
    let x = rand_vec(b * 6, &mut rng_for(8, 0), 0.0, 1.0);
    let y: Vec<u32> = (0..b as u32).map(|i| i % 3).collect();
    let (eta, lambda, c, mu) = (0.5f32, 1e-2f32, 0.6f32, 0.9f32);
    let cfg = OptimizerConfig::SgdHinton { momentum: mu };

    let mut cn = net_of(classic.clone(), DropoutKind::Classic, b);
    let mut copt = Optimizer::new(cfg, &cn.param_sizes());
    let creg = Regularization {
        l2: lambda,
        max_norm: Some(c),
        ..Default::default()
    };
    let mut inn = net_of(dropout::to_inverted(&classic), DropoutKind::Inverted, b);
    let sizes = inn.param_sizes();
    let mut iopts: Vec<Optimizer> = sizes.iter().map(|&n| Optimizer::new(cfg, &[n])).collect();
    let (mut crng, mut irng) = (rng_for(9, 2), rng_for(9, 2));
    let mut grads_checked = false;
    for it in 0..2 {
        cn.input_mut(b).copy_from_slice(&x);
        step::gradients(&mut cn, &y, &mut crng);
        inn.input_mut(b).copy_from_slice(&x);
        step::gradients(&mut inn, &y, &mut irng);
        if !grads_checked {
            // ∂L/∂W_classic = q ∂L/∂W_inv for the weights after dropout; the same elsewhere.
            let cg: Vec<Vec<f32>> = cn.params().iter().map(|p| p.grad.to_vec()).collect();
            let ig: Vec<Vec<f32>> = inn.params().iter().map(|p| p.grad.to_vec()).collect();
            for ((g_c, g_i), (q, _)) in cg.iter().zip(&ig).zip(&keeps) {
                let scaled: Vec<f32> = g_i.iter().map(|g| q * g).collect();
                assert_close(g_c, &scaled, 1e-5, "gradient");
            }
            grads_checked = true;
        }
        step::update(&mut cn, &mut copt, &step::StepParams::new(eta, creg));
        if it == 0 {
            // The max-norm bound is active: the first layer's rows were rescaled to length c.
            let Layer::Linear(l) = &cn.seq.layers[1] else {
                unreachable!()
            };
            for r in l.weight.chunks(6) {
                let n = r.iter().map(|w| w * w).sum::<f32>().sqrt();
                assert!((n - c).abs() < 1e-5, "row norm {n}");
            }
        }
        let mut params = inn.params();
        for (k, p) in params.iter_mut().enumerate() {
            let (q, kind) = keeps[k];
            let reg = Regularization {
                l2: if kind == ParamKind::Weight {
                    lambda / (q * q)
                } else {
                    0.0
                },
                max_norm: (kind == ParamKind::Weight).then_some(c * q),
                ..Default::default()
            };
            let one = std::slice::from_mut(p);
            reg.add_grads(one);
            iopts[k].step(one, q * q * eta);
            reg.apply_max_norm(one);
        }
    }
    let mapped = dropout::to_inverted(&cn.seq);
    for (l, (a, b)) in mapped.layers.iter().zip(&inn.seq.layers).enumerate() {
        if let (Layer::Linear(a), Layer::Linear(b)) = (a, b) {
            assert_close(&a.weight, &b.weight, 2e-5, &format!("layer {l} weight"));
            assert_close(&a.bias, &b.bias, 2e-5, &format!("layer {l} bias"));
        }
    }
}

fn digits(cfg: &TrainConfig) -> PreparedData {
    train::prepare_data(cfg).unwrap()
}

fn small(epochs: usize) -> TrainConfig {
    let mut cfg = TrainConfig {
        epochs,
        lr: 0.5,
        threads: 1,
        batch_size: 50,
        ..TrainConfig::default()
    };
    cfg.model.hidden = vec![48, 32];
    cfg.early_stopping = None;
    cfg.diagnostics = false;
    cfg
}

#[test]
fn the_loop_hands_each_epoch_its_momentum_rate_and_l1() {
    // Three epochs with a momentum ramp 0.5 → 0.8 over 3 epochs, an exponential rate and L1
    // from epoch 2, redone by hand with the values worked out here: (0.5, 0.6, 0.7),
    // (1, 0.5, 0.25) × lr, L1 off, off, on.
    let mut cfg = small(3);
    cfg.optimizer = OptimizerConfig::SgdHinton { momentum: 0.0 };
    cfg.momentum_schedule = Some(MomentumSchedule::Linear {
        start: 0.5,
        end: 0.8,
        epochs: 3,
    });
    cfg.schedule = Schedule::Exponential { gamma: 0.5 };
    cfg.regularization.l1 = 1e-3;
    cfg.regularization.l1_from_epoch = 2;
    cfg.regularization.sparsity = Some(KlSparsity {
        target: 0.2,
        weight: 1e-3,
    });
    cfg.model.dropout = 0.3.into();
    cfg.model.dropout_kind = DropoutKind::Classic;
    let data = digits(&cfg);
    let out = train::train(&cfg, &data, &RunOptions::default()).unwrap();
    let momenta: Vec<Option<f64>> = out.metrics.epochs.iter().map(|e| e.momentum).collect();
    let want = [0.5f32, 0.6, 0.7].map(|m| Some(m as f64));
    for (m, w) in momenta.iter().zip(want) {
        assert!((m.unwrap() - w.unwrap()).abs() < 1e-6, "{momenta:?}");
    }

    let (seq, _) = train::starting_network(&cfg, &data).unwrap();
    let mut net = net_of(seq, DropoutKind::Classic, cfg.batch_size);
    let mut opt = Optimizer::new(cfg.optimizer, &net.param_sizes());
    let mut rng = rng_for(cfg.seed, 2);
    let mut labels = vec![0; cfg.batch_size];
    for (epoch, (mu, k)) in [(0.5f32, 1.0f32), (0.6, 0.5), (0.7, 0.25)]
        .into_iter()
        .enumerate()
    {
        let mut reg = cfg.regularization;
        if epoch < 2 {
            reg.l1 = 0.0;
        }
        let p = step::StepParams {
            lr: 0.5 * k,
            momentum: Some(mu),
            reg,
        };
        let mut order: Vec<usize> = (0..data.train.len()).collect();
        shuffle(&mut order, &mut rng);
        for idx in order.chunks(cfg.batch_size) {
            step::load_batch(&mut net, &data.train, idx, &mut labels);
            let b = &labels[..idx.len()];
            step::step(&mut net, &mut opt, &p, b, &mut rng, &mut ()).unwrap();
        }
    }
    // The run saves the classic network converted to inverted dropout.
    let by_hand = dropout::to_inverted(&net.seq);
    assert_eq!(bits(&by_hand), bits(&out.model.net));
}

fn bits(seq: &Sequential) -> Vec<u32> {
    seq.layers
        .iter()
        .filter_map(|l| match l {
            Layer::Linear(l) => Some(l.weight.iter().chain(&l.bias).map(|v| v.to_bits())),
            _ => None,
        })
        .flatten()
        .collect()
}

fn paper_config(epochs: usize) -> TrainConfig {
    let mut cfg = small(epochs);
    cfg.optimizer = OptimizerConfig::SgdHinton { momentum: 0.5 };
    cfg.momentum_schedule = Some(MomentumSchedule::Linear {
        start: 0.5,
        end: 0.99,
        epochs: 3,
    });
    cfg.lr = 2.0;
    cfg.schedule = Schedule::Exponential { gamma: 0.9 };
    cfg.model.input_dropout = 0.2;
    cfg.model.dropout = 0.5.into();
    cfg.model.dropout_kind = DropoutKind::Classic;
    cfg.regularization.max_norm = Some(3.0);
    cfg.regularization.l2 = 1e-4;
    cfg.regularization.l1 = 1e-5;
    cfg.regularization.l1_from_epoch = 2;
    cfg.regularization.sparsity = Some(KlSparsity {
        target: 0.5,
        weight: 1e-3,
    });
    cfg
}

#[test]
fn resume_is_bit_identical_with_the_paper_s_settings() {
    let mut cfg = paper_config(4);
    cfg.diagnostics = true;
    let data = digits(&cfg);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let run = |dir: &std::path::Path, resume: bool, stop_after: Option<usize>| {
        let opts = RunOptions {
            out_dir: Some(dir.to_path_buf()),
            resume,
            progress: false,
            stop_after,
            force: false,
        };
        train::train(&cfg, &data, &opts).unwrap()
    };
    let full = run(d1.path(), false, None);
    run(d2.path(), false, Some(1));
    run(d2.path(), true, Some(3));
    let resumed = run(d2.path(), true, None);
    assert_eq!(bits(&full.model.net), bits(&resumed.model.net));
    let trace = |m: &train::RunMetrics| -> Vec<(u64, Option<u64>, u64)> {
        m.epochs
            .iter()
            .map(|e| {
                let mu = e.momentum.map(f64::to_bits);
                (e.train_loss.to_bits(), mu, e.lr.to_bits())
            })
            .collect()
    };
    assert_eq!(trace(&full.metrics), trace(&resumed.metrics));
    assert_eq!(full.metrics.test_accuracy, resumed.metrics.test_accuracy);
    assert_eq!(
        std::fs::read(d1.path().join(MODEL_FILE)).unwrap(),
        std::fs::read(d2.path().join(MODEL_FILE)).unwrap()
    );
    // What the folder keeps is the inverted model the outcome returns; it scores the test split
    // as the classic network did during the run (up to a rounding-level tie).
    let saved = checkpoint::load_model(&d1.path().join(MODEL_FILE)).unwrap();
    assert_eq!(saved, full.model);
    let test = data.test.as_ref().unwrap();
    let logits = saved.net.predict(&test.x, test.len());
    let classes = logits.chunks(saved.classes).map(microdnn::argmax);
    let right = classes
        .zip(&test.y)
        .filter(|(p, y)| *p == **y as usize)
        .count();
    let acc = right as f64 / test.len() as f64;
    let run_acc = full.metrics.test_accuracy.unwrap();
    assert!(
        (acc - run_acc).abs() <= 1.0 / test.len() as f64,
        "{acc} vs {run_acc}"
    );
    assert!(run_acc > 0.5, "it learns: {run_acc}");
}

#[test]
fn unusable_epoch_settings_are_refused_before_training() {
    let data = digits(&small(2));
    let err = |f: &dyn Fn(&mut TrainConfig)| -> String {
        let mut cfg = small(2);
        f(&mut cfg);
        match train::train(&cfg, &data, &RunOptions::default()) {
            Err(TrainError::Config(e)) => e.to_string(),
            other => panic!("expected a config error, got {:?}", other.map(|_| ())),
        }
    };
    let ramp = |start, end| {
        Some(MomentumSchedule::Linear {
            start,
            end,
            epochs: 5,
        })
    };
    let e = err(&|c| c.momentum_schedule = ramp(0.5, 1.0));
    assert!(e.contains("momentum_schedule.end = 1"), "{e}");
    let e = err(&|c| c.optimizer = OptimizerConfig::SgdHinton { momentum: -0.1 });
    assert!(e.contains("optimizer.momentum = -0.1"), "{e}");
    let e = err(&|c| {
        c.optimizer = OptimizerConfig::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
        c.momentum_schedule = ramp(0.5, 0.9);
    });
    assert!(e.contains("Adam has no momentum"), "{e}");
    let e = err(&|c| c.schedule = Schedule::InverseTime { half_life: 0.0 });
    assert!(e.contains("schedule.half_life = 0"), "{e}");
    let e = err(&|c| c.regularization.l1_from_epoch = 1);
    assert!(e.contains("L1 is off"), "{e}");
    let e = err(&|c| {
        c.regularization.l1 = 1e-5;
        c.regularization.l1_from_epoch = 2;
    });
    assert!(e.contains("past the last epoch"), "{e}");
    let kl = |target, weight| Some(KlSparsity { target, weight });
    let e = err(&|c| {
        c.model.activation = "tanh".into();
        c.regularization.sparsity = kl(0.1, 0.1);
    });
    assert!(e.contains("relu or sigmoid"), "{e}");
    let e = err(&|c| {
        c.model.activation = "sigmoid".into();
        c.regularization.sparsity = kl(1.0, 0.1);
    });
    assert!(e.contains("target = 1 must be in (0, 1)"), "{e}");
    let e = err(&|c| c.regularization.sparsity = kl(0.1, -1.0));
    assert!(e.contains("weight = -1"), "{e}");
    // A ReLU target above 1 is a valid Poisson rate.
    let mut ok = small(1);
    ok.regularization.sparsity = kl(2.0, 1e-4);
    assert!(train::train(&ok, &data, &RunOptions::default()).is_ok());
    // And the settings read from TOML, with unknown keys of the new tables refused.
    let cfg: TrainConfig = toml::from_str(
        "[model]\ndropout_kind = \"classic\"\n[optimizer]\nkind = \"sgd_hinton\"\nmomentum = 0.5\n\
         [momentum_schedule]\nkind = \"linear\"\nstart = 0.5\nend = 0.99\nepochs = 500\n\
         [regularization]\nl1 = 1e-5\nl1_from_epoch = 240\nsparsity = { target = 0.1, weight = 1e-3 }\n",
    )
    .unwrap();
    assert_eq!(cfg.model.dropout_kind, DropoutKind::Classic);
    let want = MomentumSchedule::Linear {
        start: 0.5,
        end: 0.99,
        epochs: 500,
    };
    assert_eq!(cfg.momentum_schedule, Some(want));
    assert_eq!(cfg.regularization.l1_from_epoch, 240);
    assert!(toml::from_str::<TrainConfig>(
        "[momentum_schedule]\nkind = \"linear\"\nstart = 0.5\nend = 0.9\nepochs = 1\nstep = 2\n"
    )
    .is_err());
}

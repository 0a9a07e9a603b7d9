//! The trainer against numbers PyTorch computed (`tests/fixtures/torch_reference/`, written by
//! its committed `make_fixtures.py`):
//! - the update rules of SGD, momentum, Nesterov and Adam, with weight decay on the weights only
//!   (the trainer's `l2`) and on every parameter (`decay_all`), over six steps with a changing
//!   learning rate and the same hand-set gradients, element by element against `torch.optim`;
//!   and that the trainer's Adam + `l2` is PyTorch's `Adam(weight_decay=…)` (L2 added to the
//!   gradient), not `AdamW` (decoupled decay), which the trainer does not implement;
//! - batch norm in training mode against `nn.BatchNorm1d`: outputs, batch statistics, running
//!   mean, unbiased running variance and the batch count after every batch, the backward pass,
//!   and the eval-mode output with the final running statistics;
//! - five steps of a small network (Linear, BatchNorm1d, ReLU, Linear; cross-entropy, Nesterov
//!   SGD, weight decay on the dense weights): loss, parameters and running statistics after
//!   every step.
//!
//! The conventions compared (PyTorch's, which the trainer follows): SGD momentum
//! `v ← μ v + g` (dampening 0; the first step's buffer is `g`), `w ← w − lr v`, Nesterov
//! `w ← w − lr (g + μ v)`; Adam's bias corrections `lr / (1 − β₁ᵗ)` and `√(1 − β₂ᵗ)`, `ε` added
//! to `√v̂`; weight decay `λ w` added to the gradient before the optimiser; batch norm
//! normalises with the biased batch variance and keeps the unbiased one, `running ← (1 − m)
//! running + m batch`.

use std::path::Path;

use microdnn_host::model::{BatchNorm1d, Layer, Sequential};
use microdnn_host::nn::batchnorm::{self, BnCache};
use microdnn_host::nn::loss::Loss;
use microdnn_host::nn::network::{Network, ParamKind, ParamMut};
use microdnn_host::nn::optim::{Optimizer, OptimizerConfig};
use microdnn_host::nn::regularize::Regularization;
use microdnn_host::train::step;
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/torch_reference")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// Largest |a − b| / (|b| + floor) over two vectors of the same length.
///
/// PyTorch's CPU kernels fuse some multiply-adds (one rounding where the trainer has two), so
/// results agree to a few ulps, not bit for bit.
fn max_rel(a: &[f32], b: &[f32], floor: f32) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / (y.abs() + floor))
        .fold(0.0, f32::max)
}

/// Both are float32 computations of the same formulas; only the order of a few roundings may
/// differ (a few ulps after six steps).
const TOL: f32 = 1e-6;

/// Runs one optimiser case of `optim.json` through the trainer's optimiser and regulariser.
fn run_case(f: &Value, config: OptimizerConfig, reg: Regularization) -> Vec<(Vec<f32>, Vec<f32>)> {
    let (mut w, mut b) = (floats(&f["weight"]), floats(&f["bias"]));
    let mut opt = Optimizer::new(config, &[w.len(), b.len()]);
    let lrs = floats(&f["lrs"]);
    let mut out = Vec::new();
    for (g, lr) in f["grads"].as_array().unwrap().iter().zip(lrs) {
        let (mut gw, mut gb) = (floats(&g["weight"]), floats(&g["bias"]));
        let mut params = [
            ParamMut {
                value: &mut w,
                grad: &mut gw,
                kind: ParamKind::Weight,
                cols: 4,
            },
            ParamMut {
                value: &mut b,
                grad: &mut gb,
                kind: ParamKind::Bias,
                cols: 3,
            },
        ];
        reg.add_grads(&mut params);
        opt.step(&mut params, lr);
        out.push((w.clone(), b.clone()));
    }
    out
}

fn config_of(case: &Value) -> OptimizerConfig {
    let num = |k: &str| case[k].as_f64().unwrap() as f32;
    match case["kind"].as_str().unwrap() {
        "sgd" => OptimizerConfig::Sgd {
            momentum: num("momentum"),
            nesterov: case["nesterov"].as_bool().unwrap(),
        },
        "adam" | "adamw" => OptimizerConfig::Adam {
            beta1: num("beta1"),
            beta2: num("beta2"),
            eps: num("eps"),
        },
        other => panic!("unknown optimiser {other}"),
    }
}

fn regularization_of(case: &Value) -> Regularization {
    Regularization {
        l2: case["weight_decay"].as_f64().unwrap() as f32,
        decay_all: case["decay"] == "all",
        ..Default::default()
    }
}

#[test]
fn update_rules_match_torch_optim_step_by_step() {
    let f = fixture("optim.json");
    let mut checked = 0;
    for case in f["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        if case["kind"] == "adamw" {
            continue; // below
        }
        let got = run_case(&f, config_of(case), regularization_of(case));
        let mut worst = 0.0f32;
        let mut identical = true;
        for (k, ((w, b), want)) in got
            .iter()
            .zip(case["after"].as_array().unwrap())
            .enumerate()
        {
            // Relative to max(|w|, 0.1): the parameters are of order 1, and a weight that
            // crosses 0 carries the absolute error of its neighbours.
            let (ew, eb) = (
                max_rel(w, &floats(&want["weight"]), 0.1),
                max_rel(b, &floats(&want["bias"]), 0.1),
            );
            assert!(
                ew <= TOL && eb <= TOL,
                "{name}, step {}: weight differs by {ew:e}, bias by {eb:e} (relative)",
                k + 1
            );
            worst = worst.max(ew).max(eb);
            identical &= *w == floats(&want["weight"]) && *b == floats(&want["bias"]);
        }
        eprintln!("{name}: largest relative difference {worst:e} over 6 steps (bit-identical: {identical})");
        checked += 1;
    }
    assert_eq!(checked, 10);
}

#[test]
fn weight_decay_is_l2_in_the_gradient_as_torch_adam_not_adamw() {
    let f = fixture("optim.json");
    let case = |n: &str| {
        f["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .unwrap()
            .clone()
    };
    let (adam_wd, adamw) = (case("adam_wd_all"), case("adamw"));
    // The trainer's Adam with l2 = 0.05 on every parameter...
    let got = run_case(&f, config_of(&adam_wd), regularization_of(&adam_wd));
    let last = |c: &Value| floats(&c["after"].as_array().unwrap()[5]["weight"]);
    // ...is torch.optim.Adam(weight_decay=0.05)...
    assert!(max_rel(&got[5].0, &last(&adam_wd), 1e-3) <= TOL);
    // ...and not AdamW(weight_decay=0.05): the two rules differ far beyond rounding.
    assert!(max_rel(&got[5].0, &last(&adamw), 1e-3) > 1000.0 * TOL);
    // Decay on the weight only leaves the bias as without decay.
    let (plain, weight_only) = (case("sgd_momentum"), case("sgd_momentum_wd_weight"));
    let bias = |c: &Value| floats(&c["after"].as_array().unwrap()[5]["bias"]);
    assert_eq!(bias(&plain), bias(&weight_only));
    assert_ne!(last(&plain), last(&weight_only));
}

#[test]
fn batch_norm_training_mode_matches_torch_batchnorm1d() {
    let f = fixture("batchnorm.json");
    for case in f["cases"].as_array().unwrap() {
        let features = case["features"].as_u64().unwrap() as usize;
        let mut bn = BatchNorm1d::new(
            features,
            case["eps"].as_f64().unwrap() as f32,
            case["momentum"].as_f64().unwrap() as f32,
        );
        bn.weight = floats(&case["weight"]);
        bn.bias = floats(&case["bias"]);
        let mut cache = BnCache::new(32, features);
        for (k, s) in case["steps"].as_array().unwrap().iter().enumerate() {
            let x = floats(&s["x"]);
            let n = x.len() / features;
            let mut y = vec![0.0; x.len()];
            batchnorm::forward_train(&mut bn, &x, &mut y, n, &mut cache);
            let what = format!("{features} features, batch {} of {n} rows", k + 1);
            let close = |got: &[f32], key: &str, floor: f32| {
                let e = max_rel(got, &floats(&s[key]), floor);
                assert!(e <= TOL, "{what}: {key} differs by {e:e}");
            };
            // y = γ x̂ + β cancels near 0: compared relative to max(|y|, 1).
            close(&y, "y", 1.0);
            close(&bn.running_mean, "running_mean", 1e-3);
            close(&bn.running_var, "running_var", 1e-3);
            assert_eq!(
                bn.num_batches_tracked,
                s["num_batches_tracked"].as_i64().unwrap()
            );
            let dy = floats(&s["dy"]);
            let (mut dx, mut dg, mut db) =
                (vec![0.0; x.len()], vec![0.0; features], vec![0.0; features]);
            batchnorm::backward(&bn, &cache, &dy, Some(&mut dx), &mut dg, &mut db, n);
            // Gradients are sums over the batch of products that cancel: relative to their scale.
            let scale = floats(&s["dy"]).iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for (got, key) in [(&dx, "dx"), (&dg, "dgamma"), (&db, "dbeta")] {
                let want = floats(&s[key]);
                let e = got
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(
                    e <= 1e-5 * scale * n as f32,
                    "{what}: {key} differs by {e:e}"
                );
            }
        }
        let xe = floats(&case["eval_x"]);
        let mut ye = vec![0.0; xe.len()];
        batchnorm::forward_eval(&bn, &xe, &mut ye);
        let e = max_rel(&ye, &floats(&case["eval_y"]), 1.0);
        assert!(e <= TOL, "eval mode differs by {e:e}");
    }
}

#[test]
fn a_few_training_steps_match_torch() {
    let f = fixture("train.json");
    let arch =
        microdnn_host::import::pytorch::parse_architecture(f["architecture"].as_str().unwrap())
            .unwrap();
    let mut seq = Sequential::new(
        arch.iter()
            .map(Layer::from_spec)
            .collect::<Result<_, _>>()
            .unwrap(),
    );
    let init = &f["init"];
    let names = [
        "0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias",
    ];
    {
        let mut k = 0;
        for layer in seq.layers.iter_mut() {
            let (a, b) = match layer {
                Layer::Linear(l) => (&mut l.weight, &mut l.bias),
                Layer::BatchNorm1d(bn) => (&mut bn.weight, &mut bn.bias),
                _ => continue,
            };
            *a = floats(&init[names[k]]);
            *b = floats(&init[names[k + 1]]);
            k += 2;
        }
        assert_eq!(k, 6);
    }
    let mut net = Network::new(seq, Loss::CrossEntropy, 10, 1);
    let mut opt = Optimizer::new(
        OptimizerConfig::Sgd {
            momentum: f["momentum"].as_f64().unwrap() as f32,
            nesterov: true,
        },
        &net.param_sizes(),
    );
    let reg = Regularization {
        l2: f["weight_decay"].as_f64().unwrap() as f32,
        ..Default::default()
    };
    let lr = f["lr"].as_f64().unwrap() as f32;
    let mut rng = microdnn_host::random::rng_for(0, 0);
    for (k, batch) in f["batches"].as_array().unwrap().iter().enumerate() {
        let x = floats(&batch["x"]);
        let labels: Vec<u32> = batch["y"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        net.input_mut(labels.len()).copy_from_slice(&x);
        let params = step::StepParams::new(lr, reg);
        let loss = step::step(&mut net, &mut opt, &params, &labels, &mut rng, &mut ())
            .expect("a finite loss");
        let torch_loss = batch["loss"].as_f64().unwrap();
        let mean = loss.sum / labels.len() as f64;
        assert!(
            (mean - torch_loss).abs() <= 1e-5 * torch_loss.abs(),
            "step {}: loss {mean} vs torch {torch_loss}",
            k + 1
        );
        let state = &batch["state"];
        let params = net.params();
        for (p, name) in params.iter().zip(names) {
            let e = max_rel(p.value, &floats(&state[name]), 1e-2);
            assert!(e <= 1e-5, "step {}: {name} differs by {e:e}", k + 1);
        }
        drop(params);
        let Layer::BatchNorm1d(bn) = &net.seq.layers[1] else {
            panic!("layer 1 is the batch norm")
        };
        for (got, name) in [
            (&bn.running_mean, "1.running_mean"),
            (&bn.running_var, "1.running_var"),
        ] {
            let e = max_rel(got, &floats(&state[name]), 1e-3);
            assert!(e <= 1e-5, "step {}: {name} differs by {e:e}", k + 1);
        }
    }
}

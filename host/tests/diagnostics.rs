//! Training diagnostics: values against direct computations on tiny networks, the metrics.json
//! schema, warnings, and the lecture's claim that deep sigmoid networks have vanishing
//! gradients at initialisation while ReLU with He initialisation does not.

use microdnn::Activation;
use microdnn_host::data::{Dataset, InputTransform};
use microdnn_host::model::{Layer, Linear, Sequential};
use microdnn_host::nn::init::Init;
use microdnn_host::random::{normal, rng_for};
use microdnn_host::train::config::TrainConfig;
use microdnn_host::train::diagnostics::{self as diag, DiagSample, LayerDiagnostics, Warning};
use microdnn_host::train::{self, PreparedData, RunOptions, METRICS_FILE};

fn sample_of(x: Vec<f32>, features: usize) -> DiagSample {
    let rows = x.len() / features;
    DiagSample {
        x,
        y: vec![0; rows],
        features,
    }
}

#[test]
fn dead_fraction_and_activation_statistics_match_a_direct_computation() {
    // 2 inputs in [0, 1] -> 4 ReLU units -> 2 outputs. Unit 1 has negative weights and bias: dead
    // for non-negative inputs; unit 3 has bias -100: dead. Units 0 and 2 are alive.
    let w1 = vec![1.0, 0.5, -1.0, -2.0, 0.3, -0.2, 1.0, 1.0];
    let b1 = vec![0.0, -0.1, 0.1, -100.0];
    let seq = Sequential::new(vec![
        Layer::Linear(Linear::from_parts(2, 4, w1.clone(), b1.clone()).unwrap()),
        Layer::Activation(Activation::Relu),
        Layer::Linear(
            Linear::from_parts(
                4,
                2,
                vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0],
                vec![0.0, 0.0],
            )
            .unwrap(),
        ),
    ]);
    let mut rng = rng_for(1, 0);
    let rows = 500;
    let x: Vec<f32> = (0..rows * 2)
        .map(|_| microdnn_host::random::uniform01(&mut rng))
        .collect();
    let sample = sample_of(x.clone(), 2);
    let d = diag::layer_diagnostics(&seq, &sample, &[1.0, 2.0], &[0.1, 0.2]);
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].layer, 0);
    assert_eq!(d[1].layer, 2);
    assert_eq!(d[0].dead_fraction, Some(0.5));
    assert_eq!(d[1].dead_fraction, None, "output layer has no ReLU");
    assert_eq!((d[0].grad_norm, d[0].update_ratio), (1.0, 0.1));
    assert_eq!((d[1].grad_norm, d[1].update_ratio), (2.0, 0.2));
    let wn = w1.iter().map(|v| (v * v) as f64).sum::<f64>().sqrt();
    assert!((d[0].weight_norm - wn).abs() < 1e-6);

    // Direct computation in f64.
    let mut post = Vec::new();
    let mut unit0 = Vec::new();
    for r in x.chunks_exact(2) {
        for j in 0..4 {
            let a =
                w1[2 * j] as f64 * r[0] as f64 + w1[2 * j + 1] as f64 * r[1] as f64 + b1[j] as f64;
            if j == 0 {
                unit0.push(a);
            }
            post.push(a.max(0.0));
        }
    }
    let mean = post.iter().sum::<f64>() / post.len() as f64;
    let std = (post.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / post.len() as f64).sqrt();
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(|a, b| a.total_cmp(b));
        let pos = p / 100.0 * (v.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
    };
    let close = |a: f64, b: f64, what: &str| assert!((a - b).abs() < 1e-5, "{what}: {a} vs {b}");
    close(d[0].act_mean, mean, "mean");
    close(d[0].act_std, std, "std");
    close(d[0].act_p15, pct(&mut post, 15.0), "p15");
    close(d[0].act_p50, pct(&mut post, 50.0), "p50");
    close(d[0].act_p85, pct(&mut post, 85.0), "p85");
    close(d[0].unit0_input_p15, pct(&mut unit0, 15.0), "unit0 p15");
    close(d[0].unit0_input_p50, pct(&mut unit0, 50.0), "unit0 p50");
    close(d[0].unit0_input_p85, pct(&mut unit0, 85.0), "unit0 p85");
    // Output layer: its outputs are units 0 and 1 of the hidden layer; unit 1 is dead -> 0.
    assert!(d[1].act_p15 == 0.0);
}

#[test]
fn unit0_input_percentiles_of_a_standard_normal() {
    // Unit 0 of a layer with weight row (1, 0) and bias 0 sees x0 ~ N(0, 1): percentiles
    // -1.0364, 0, 1.0364.
    let seq = Sequential::new(vec![
        Layer::Linear(Linear::from_parts(2, 2, vec![1.0, 0.0, 0.0, 1.0], vec![0.0; 2]).unwrap()),
        Layer::Activation(Activation::Sigmoid),
        Layer::Linear(Linear::from_parts(2, 1, vec![1.0, 1.0], vec![0.0]).unwrap()),
    ]);
    let mut rng = rng_for(2, 0);
    let x: Vec<f32> = (0..40_000).map(|_| normal(&mut rng)).collect();
    let d = diag::layer_diagnostics(&seq, &sample_of(x, 2), &[], &[]);
    let u = [
        d[0].unit0_input_p15,
        d[0].unit0_input_p50,
        d[0].unit0_input_p85,
    ];
    for (got, want) in u.iter().zip([-1.0364, 0.0, 1.0364]) {
        assert!((got - want).abs() < 0.03, "{u:?}");
    }
    // Sigmoid activations: median 0.5, symmetric; dead fraction only for ReLU-like units.
    assert!((d[0].act_p50 - 0.5).abs() < 0.01);
    assert!((d[0].act_p15 + d[0].act_p85 - 1.0).abs() < 0.01);
    assert_eq!(d[0].dead_fraction, None);
}

fn synthetic(n: usize, features: usize, classes: usize, seed: u64) -> Dataset {
    let mut rng = rng_for(seed, 0);
    let centres: Vec<f32> = (0..classes * features).map(|_| normal(&mut rng)).collect();
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..n {
        let c = i % classes;
        for j in 0..features {
            x.push(centres[c * features + j] + 0.5 * normal(&mut rng));
        }
        y.push(c as u32);
    }
    Dataset {
        features,
        classes,
        x,
        y,
    }
}

fn deep_config(activation: &str, init: Init) -> TrainConfig {
    let mut cfg = TrainConfig {
        epochs: 1,
        lr: 0.01,
        threads: 1,
        batch_size: 32,
        early_stopping: None,
        ..TrainConfig::default()
    };
    cfg.model.hidden = vec![32; 9]; // 10 dense layers
    cfg.model.activation = activation.into();
    cfg.model.init = init;
    cfg
}

fn run(cfg: &TrainConfig, train: Dataset, val: Option<Dataset>) -> train::TrainOutcome {
    let f = train.features;
    let data = PreparedData::new(train, val, None, InputTransform::identity(f));
    train::train(cfg, &data, &RunOptions::default()).unwrap()
}

fn first_over_last(d: &[LayerDiagnostics]) -> f64 {
    d.first().unwrap().grad_norm / d.last().unwrap().grad_norm
}

#[test]
fn deep_sigmoid_gradients_vanish_at_init_but_relu_with_he_does_not() {
    let data = synthetic(512, 20, 4, 3);
    let sig = run(
        &deep_config("sigmoid", Init::XavierUniform),
        data.clone(),
        None,
    );
    let relu = run(&deep_config("relu", Init::HeNormal), data, None);
    let s = &sig.metrics.diagnostics_at_init;
    let r = &relu.metrics.diagnostics_at_init;
    assert_eq!(s.len(), 10);
    assert_eq!(r.len(), 10);
    let (rs, rr) = (first_over_last(s), first_over_last(r));
    eprintln!("first/last gradient norm: sigmoid {rs:.3e}, relu+He {rr:.3e}");
    assert!(rs < 1e-3, "sigmoid: first/last = {rs:e}");
    assert!(rr > 0.1 && rr < 10.0, "relu+He: first/last = {rr:e}");
    // Gradient norms decrease towards the input for sigmoid (each layer multiplies by at most
    // 1/4 times the weights).
    assert!(s.windows(2).all(|w| w[0].grad_norm < w[1].grad_norm));
    assert!(s
        .iter()
        .all(|d| d.update_ratio == 0.0 && d.dead_fraction.is_none()));
    assert!(r[..9].iter().all(|d| d.dead_fraction.is_some()));
    assert!(r[9].dead_fraction.is_none());
    // The per-epoch entries are there too, with positive update ratios.
    let e = &relu.metrics.epochs[0].diagnostics;
    assert_eq!(e.len(), 10);
    assert!(e.iter().all(|d| d.update_ratio > 0.0 && d.grad_norm > 0.0));
}

#[test]
fn warnings_for_vanishing_exploding_and_non_finite_gradients() {
    let d = |layer, grad_norm| LayerDiagnostics {
        layer,
        grad_norm,
        weight_norm: 1.0,
        update_ratio: 0.0,
        dead_fraction: None,
        act_mean: 0.0,
        act_std: 0.0,
        act_p15: 0.0,
        act_p50: 0.0,
        act_p85: 0.0,
        unit0_input_p15: 0.0,
        unit0_input_p50: 0.0,
        unit0_input_p85: 0.0,
    };
    let healthy = vec![d(0, 0.1), d(2, 0.2)];
    assert!(diag::warnings(None, &healthy).is_empty());
    let vanishing = vec![d(0, 1e-9), d(2, 0.2)];
    assert_eq!(
        diag::warnings(Some(&healthy), &vanishing),
        vec![Warning::Vanishing {
            layer: 0,
            grad_norm: 1e-9,
            last: 0.2
        }]
    );
    let exploding = vec![d(0, 5.0), d(2, f64::NAN)];
    let w = diag::warnings(Some(&healthy), &exploding);
    assert_eq!(w.len(), 2);
    assert!(
        matches!(w[0], Warning::Exploding { layer: 0, growth } if (growth - 50.0).abs() < 1e-9)
    );
    assert_eq!(w[1], Warning::NonFinite { layer: 2 });
    assert!(w[0].to_string().contains("exploding"));
    assert!(diag::ADVICE.contains("learning rate") && diag::ADVICE.contains("ReLU"));
}

#[test]
fn metrics_json_has_the_documented_diagnostics_schema() {
    let data = synthetic(300, 10, 3, 4);
    let val = synthetic(100, 10, 3, 5);
    let mut cfg = deep_config("relu", Init::HeNormal);
    cfg.model.hidden = vec![16, 8];
    cfg.model.batch_norm = true;
    cfg.epochs = 2;
    let dir = tempfile::tempdir().unwrap();
    let f = data.features;
    let prepared = PreparedData::new(data, Some(val), None, InputTransform::identity(f));
    let opts = RunOptions {
        out_dir: Some(dir.path().to_path_buf()),
        ..RunOptions::default()
    };
    train::train(&cfg, &prepared, &opts).unwrap();
    let text = std::fs::read_to_string(dir.path().join(METRICS_FILE)).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let keys = [
        "layer",
        "grad_norm",
        "weight_norm",
        "update_ratio",
        "dead_fraction",
        "act_mean",
        "act_std",
        "act_p15",
        "act_p50",
        "act_p85",
        "unit0_input_p15",
        "unit0_input_p50",
        "unit0_input_p85",
    ];
    let check = |list: &serde_json::Value| {
        let list = list.as_array().unwrap();
        // Dense layers at 0 (Linear, BatchNorm1d, ReLU), 3 (Linear, BatchNorm1d, ReLU), 6.
        let layers: Vec<u64> = list.iter().map(|e| e["layer"].as_u64().unwrap()).collect();
        assert_eq!(layers, vec![0, 3, 6]);
        for e in list {
            let obj = e.as_object().unwrap();
            assert_eq!(obj.len(), keys.len(), "{obj:?}");
            for k in keys {
                assert!(obj.contains_key(k), "missing {k}");
            }
        }
        assert!(list[0]["dead_fraction"].is_f64());
        assert!(list[2]["dead_fraction"].is_null());
    };
    check(&json["diagnostics_at_init"]);
    let epochs = json["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2);
    for e in epochs {
        check(&e["diagnostics"]);
    }
    // And it reads back.
    let m: train::RunMetrics = serde_json::from_str(&text).unwrap();
    assert_eq!(m.epochs[1].diagnostics.len(), 3);

    // Diagnostics off: empty lists, same weights (diagnostics never touch the training stream).
    let mut off = cfg.clone();
    off.diagnostics = false;
    let a = train::train(&off, &prepared, &RunOptions::default()).unwrap();
    let b = train::train(&cfg, &prepared, &RunOptions::default()).unwrap();
    assert!(a.metrics.diagnostics_at_init.is_empty());
    assert!(a.metrics.epochs.iter().all(|e| e.diagnostics.is_empty()));
    assert_eq!(a.model.net, b.model.net);
}

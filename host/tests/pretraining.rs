//! Greedy layer-wise pretraining: finite-difference checks of the autoencoder losses (tied,
//! untied, sparse KL penalty), the RBM's contrastive-divergence gradient as the gradient of a
//! free-energy difference, a stacked autoencoder that reconstructs held-out digits far better
//! than the mean image, RBM reconstruction error falling over epochs, and `pretrain` then
//! `train --init` equal to one `train` with `[pretrain]`.

#![allow(clippy::needless_range_loop)] // finite differences index by position

use microdnn::Activation;
use microdnn_host::model::Linear;
use microdnn_host::random::{rng_for, uniform01};
use microdnn_host::train::config::TrainConfig;
use microdnn_host::train::pretrain::{
    self, AeGrads, Autoencoder, Method, PretrainConfig, PretrainError, Pretrained, Rbm,
};
use microdnn_host::train::{self, RunOptions};

mod common;
use common::rand_vec;

fn close(num: f64, ana: f64, what: &str) {
    common::close(num, ana, 5e-5, what)
}

const H: f32 = 1e-3;

fn ae(tied: bool, enc: Activation, dec: Activation, seed: u64) -> Autoencoder {
    let mut rng = rng_for(seed, 0);
    let (n, h) = (5, 3);
    let enc_layer = Linear::from_parts(
        n,
        h,
        rand_vec(n * h, &mut rng, -1.0, 1.0),
        rand_vec(h, &mut rng, -0.5, 0.5),
    )
    .unwrap();
    let mut a = Autoencoder::new(&enc_layer, enc, dec, tied, &mut rng);
    a.c = rand_vec(n, &mut rng, -0.5, 0.5);
    a
}

/// Central differences of the total loss against the analytic gradient, for every parameter.
fn check_ae(a: &Autoencoder, name: &str) {
    let rows = 4;
    let mut rng = rng_for(7, 1);
    let target = rand_vec(rows * a.inputs, &mut rng, 0.0, 1.0);
    // A corrupted input (masking) different from the target, as a denoising autoencoder sees.
    let input: Vec<f32> = target
        .iter()
        .map(|&v| if uniform01(&mut rng) < 0.3 { 0.0 } else { v })
        .collect();
    let mut g = a.zero_grads();
    let (_, total) = a.loss_and_grad(&input, &target, rows, &mut g, 1);
    assert!((total - a.loss(&input, &target, rows).1).abs() < 1e-9);
    let AeGrads { w, b, w_dec, c } = g;
    let field = |m: &mut Autoencoder, k: usize| -> *mut Vec<f32> {
        match k {
            0 => &mut m.w,
            1 => &mut m.b,
            2 => m.w_dec.as_mut().unwrap(),
            _ => &mut m.c,
        }
    };
    for (k, grads) in [w, b, w_dec, c].iter().enumerate() {
        for j in 0..grads.len() {
            let mut m = a.clone();
            // SAFETY: the pointer is to a field of `m`, used while `m` lives, no other borrow.
            let p = unsafe { &mut *field(&mut m, k) };
            let orig = p[j];
            p[j] = orig + H;
            let lp = m.loss(&input, &target, rows).1;
            let p = unsafe { &mut *field(&mut m, k) };
            p[j] = orig - H;
            let lm = m.loss(&input, &target, rows).1;
            close(
                (lp - lm) / (2.0 * H as f64),
                grads[j] as f64,
                &format!("{name}: param {k} [{j}]"),
            );
        }
    }
}

#[test]
fn untied_autoencoder_gradients() {
    check_ae(
        &ae(false, Activation::Sigmoid, Activation::Identity, 1),
        "untied sigmoid/identity",
    );
    check_ae(
        &ae(false, Activation::Tanh, Activation::Sigmoid, 2),
        "untied tanh/sigmoid",
    );
}

#[test]
fn tied_autoencoder_gradients() {
    let a = ae(true, Activation::Sigmoid, Activation::Sigmoid, 3);
    assert!(a.w_dec.is_none());
    check_ae(&a, "tied sigmoid/sigmoid");
    check_ae(
        &ae(true, Activation::Tanh, Activation::Identity, 4),
        "tied tanh/identity",
    );
}

#[test]
fn sparse_kl_penalty_value_and_gradients() {
    let mut a = ae(false, Activation::Sigmoid, Activation::Identity, 5);
    let (rho, beta) = (0.1f32, 0.5f32);
    a.sparsity = Some((rho, beta));
    let rows = 4;
    let mut rng = rng_for(9, 0);
    let x = rand_vec(rows * a.inputs, &mut rng, 0.0, 1.0);
    // The penalty by hand: β Σ_j KL(ρ ‖ mean_b y_bj).
    let y = a.encode(&x, rows);
    let mut kl = 0.0f64;
    for j in 0..a.hidden {
        let q = (0..rows).map(|r| y[r * a.hidden + j] as f64).sum::<f64>() / rows as f64;
        let r = rho as f64;
        kl += r * (r / q).ln() + (1.0 - r) * ((1.0 - r) / (1.0 - q)).ln();
    }
    let (recon, total) = a.loss(&x, &x, rows);
    assert!(
        (total - recon - beta as f64 * kl).abs() < 1e-9,
        "{total} {recon} {kl}"
    );
    assert!(kl > 0.01, "the penalty is active: {kl}");
    check_ae(&a, "sparse");
    // Tied and sparse together.
    let mut t = ae(true, Activation::Sigmoid, Activation::Sigmoid, 6);
    t.sparsity = Some((0.05, 1.0));
    check_ae(&t, "sparse tied");
}

fn rbm(seed: u64) -> Rbm {
    let mut rng = rng_for(seed, 0);
    let (n, h) = (6, 4);
    Rbm {
        visible: n,
        hidden: h,
        w: rand_vec(n * h, &mut rng, -1.0, 1.0),
        b: rand_vec(n, &mut rng, -0.5, 0.5),
        c: rand_vec(h, &mut rng, -0.5, 0.5),
    }
}

#[test]
fn rbm_cd_gradient_is_the_free_energy_difference_gradient() {
    // For a Bernoulli-Bernoulli RBM, ∂F(v)/∂W_jk = −σ(c_j + W_j·v) v_k, ∂F/∂b = −v,
    // ∂F/∂c_j = −σ(c_j + W_j·v); so the CD update (positive minus negative statistics) is
    // −∇[F̄(v0) − F̄(vk)] with the chain end vk held fixed. Checked by finite differences.
    let r = rbm(1);
    let rows = 5;
    let mut rng = rng_for(2, 0);
    let v0: Vec<f32> = (0..rows * r.visible)
        .map(|_| if uniform01(&mut rng) < 0.5 { 1.0 } else { 0.0 })
        .collect();
    let vk = rand_vec(rows * r.visible, &mut rng, 0.0, 1.0);
    let g = r.cd_gradients(&v0, &vk, rows, 1);
    let objective = |m: &Rbm| m.free_energy(&v0, rows) - m.free_energy(&vk, rows);
    for (k, grads) in [&g.w, &g.b, &g.c].into_iter().enumerate() {
        for j in 0..grads.len() {
            let mut m = r.clone();
            let p = match k {
                0 => &mut m.w,
                1 => &mut m.b,
                _ => &mut m.c,
            };
            let orig = p[j];
            p[j] = orig + H;
            let lp = objective(&m);
            let mut m2 = r.clone();
            let p = match k {
                0 => &mut m2.w,
                1 => &mut m2.b,
                _ => &mut m2.c,
            };
            p[j] = orig - H;
            let lm = objective(&m2);
            close(
                (lp - lm) / (2.0 * H as f64),
                grads[j] as f64,
                &format!("rbm param {k} [{j}]"),
            );
        }
    }
    // A hand-computed CD case: one visible and one hidden unit, W = 0, b = c = 0:
    // p(h|v) = 1/2 always, so ΔW = (½·1 − ½·vk), here vk = 0.25: gradient −0.375.
    let tiny = Rbm {
        visible: 1,
        hidden: 1,
        w: vec![0.0],
        b: vec![0.0],
        c: vec![0.0],
    };
    let g = tiny.cd_gradients(&[1.0], &[0.25], 1, 1);
    assert_eq!((g.w[0], g.b[0], g.c[0]), (-0.375, -0.75, 0.0));
}

fn digits_config() -> TrainConfig {
    let mut cfg = TrainConfig {
        epochs: 30,
        batch_size: 32,
        lr: 0.05,
        threads: 1,
        ..TrainConfig::default()
    };
    cfg.model.hidden = vec![32, 16];
    cfg.model.activation = "sigmoid".into();
    cfg.model.init = microdnn_host::nn::init::Init::XavierUniform;
    cfg.optimizer = microdnn_host::nn::optim::OptimizerConfig::Sgd {
        momentum: 0.9,
        nesterov: true,
    };
    cfg
}

fn mse(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64
}

fn encoders(cfg: &TrainConfig, n_in: usize) -> Vec<(Linear, Activation)> {
    let mut rng = rng_for(cfg.seed, 1);
    let mut width = n_in;
    cfg.model
        .hidden
        .iter()
        .map(|&h| {
            let mut l = Linear::from_parts(width, h, vec![0.0; width * h], vec![0.0; h]).unwrap();
            cfg.model.init.fill(&mut l.weight, width, h, &mut rng);
            width = h;
            (l, cfg.model.activation().unwrap())
        })
        .collect()
}

#[test]
fn stacked_autoencoder_reconstructs_held_out_digits_far_better_than_the_mean_image() {
    let cfg = digits_config();
    let data = train::prepare_data(&cfg).unwrap();
    let (tr, te) = (&data.train, data.test.as_ref().unwrap());
    let f = tr.features;
    let mut mean = vec![0.0f32; f];
    for r in tr.x.chunks_exact(f) {
        mean.iter_mut()
            .zip(r)
            .for_each(|(m, v)| *m += v / tr.len() as f32);
    }
    let baseline = mse(&te.x, &mean.repeat(te.len()));
    for (method, tied) in [(Method::Autoencoder, false), (Method::Denoising, true)] {
        let p = PretrainConfig {
            method,
            tied,
            epochs: 100,
            lr: 0.5,
            ..Default::default()
        };
        let (stack, report) = pretrain::pretrain_stack(
            &tr.x,
            tr.len(),
            &encoders(&cfg, f),
            &p,
            32,
            1,
            &mut rng_for(0, 4),
        )
        .unwrap();
        assert_eq!(stack.len(), 2);
        for (i, l) in report.iter().enumerate() {
            assert!(
                l.losses.last() < l.losses.first(),
                "layer {i}: {:?}",
                l.losses
            );
        }
        // 64 -> 32 -> 16 -> 32 -> 64 through both encoders and both decoders.
        let rec = pretrain::reconstruct(&stack, &te.x, te.len());
        let err = mse(&rec, &te.x);
        eprintln!(
            "{method:?} tied={tied}: held-out MSE {err:.4}, mean-image baseline {baseline:.4}"
        );
        assert!(
            err < 0.5 * baseline,
            "{method:?}: {err} vs baseline {baseline}"
        );
        assert!(matches!(stack[0], Pretrained::Autoencoder(_)));
    }
}

#[test]
fn rbm_pretraining_lowers_reconstruction_error_over_epochs() {
    let cfg = digits_config();
    let data = train::prepare_data(&cfg).unwrap();
    let (tr, te) = (&data.train, data.test.as_ref().unwrap());
    let p = PretrainConfig {
        method: Method::Rbm,
        epochs: 15,
        lr: 0.1,
        cd_k: 1,
        ..Default::default()
    };
    let mut rng = rng_for(0, 4);
    let mut r = Rbm::new(tr.features, 32, &mut rng);
    let before = r.reconstruction_error(&te.x, te.len());
    let losses = pretrain::train_rbm(&mut r, &tr.x, tr.len(), &p, 32, 1, &mut rng);
    let after = r.reconstruction_error(&te.x, te.len());
    eprintln!("RBM reconstruction error per epoch {losses:?}; held out {before:.4} -> {after:.4}");
    assert!(losses.windows(2).filter(|w| w[1] < w[0]).count() >= losses.len() / 2);
    assert!(losses.last().unwrap() < &(0.5 * losses[0]), "{losses:?}");
    assert!(after < 0.5 * before, "{before} -> {after}");
    // CD-3 trains too.
    let p3 = PretrainConfig { cd_k: 3, ..p };
    let mut r3 = Rbm::new(tr.features, 32, &mut rng);
    let l3 = pretrain::train_rbm(&mut r3, &tr.x, tr.len(), &p3, 32, 1, &mut rng);
    assert!(l3.last().unwrap() < &(0.5 * l3[0]), "{l3:?}");
}

#[test]
fn every_method_pretrains_and_fine_tunes_digits() {
    for method in [Method::Rbm, Method::Denoising, Method::Sparse] {
        let mut cfg = digits_config();
        cfg.pretrain = Some(PretrainConfig {
            method,
            epochs: 5,
            lr: 0.1,
            corruption: pretrain::Corruption::Gaussian,
            corruption_level: 0.1,
            ..Default::default()
        });
        let data = train::prepare_data(&cfg).unwrap();
        let out = train::train(&cfg, &data, &RunOptions::default()).unwrap();
        let p = &out.metrics.pretraining;
        assert_eq!(p.iter().map(|l| l.layer).collect::<Vec<_>>(), vec![0, 2]);
        for l in p {
            assert_eq!(l.method, Some(method));
            assert!(
                l.losses.last() < l.losses.first(),
                "{method:?}: {:?}",
                l.losses
            );
        }
        let acc = out.metrics.test_accuracy.unwrap();
        eprintln!("{method:?}: test accuracy {acc}");
        assert!(acc > 0.9, "{method:?}: {acc}");
    }
}

#[test]
fn sparse_and_rbm_need_sigmoid_units_and_rbm_needs_unit_inputs() {
    let mut cfg = digits_config();
    cfg.model.activation = "relu".into();
    cfg.epochs = 1;
    cfg.pretrain = Some(PretrainConfig {
        method: Method::Rbm,
        epochs: 1,
        ..Default::default()
    });
    let data = train::prepare_data(&cfg).unwrap();
    let err = train::train(&cfg, &data, &RunOptions::default()).unwrap_err();
    assert!(err.to_string().contains("sigmoid"), "{err}");
    assert!(
        matches!(
            err,
            train::TrainError::Pretrain(PretrainError::NeedsSigmoid {
                method: Method::Rbm,
                activation: Activation::Relu
            })
        ),
        "{err}"
    );
    cfg.model.activation = "sigmoid".into();
    cfg.data.transform = microdnn_host::train::config::TransformKind::Standardize;
    let data = train::prepare_data(&cfg).unwrap();
    let err = train::train(&cfg, &data, &RunOptions::default()).unwrap_err();
    assert!(err.to_string().contains("[0, 1]"), "{err}");
    assert!(
        matches!(
            err,
            train::TrainError::Pretrain(PretrainError::InputsNotProbabilities)
        ),
        "{err}"
    );
}

#[test]
fn pretrain_only_then_init_equals_train_with_pretraining() {
    let mut cfg = digits_config();
    cfg.epochs = 5;
    cfg.pretrain = Some(PretrainConfig {
        method: Method::Denoising,
        tied: true,
        epochs: 3,
        lr: 0.1,
        ..Default::default()
    });
    let data = train::prepare_data(&cfg).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (pre, report) = train::pretrain_only(&cfg, &data, Some(dir.path()), false).unwrap();
    assert_eq!(report.len(), 2);
    let loaded = microdnn_host::model::checkpoint::load_model(dir.path()).unwrap();
    assert_eq!(loaded.net, pre.net);
    let mut fine = cfg.clone();
    fine.init = Some(dir.path().to_path_buf());
    let a = train::train(&fine, &data, &RunOptions::default()).unwrap();
    let b = train::train(&cfg, &data, &RunOptions::default()).unwrap();
    assert_eq!(a.model.net, b.model.net, "bit-identical weights");
    assert!(a.metrics.pretraining.is_empty());
    // A checkpoint of another architecture is refused.
    let mut other = fine.clone();
    other.model.hidden = vec![32, 8];
    let err = train::train(&other, &data, &RunOptions::default()).unwrap_err();
    assert!(err.to_string().contains("architecture"), "{err}");
}

#[test]
#[cfg(feature = "cli")]
fn cli_pretrain_then_fine_tune_with_init_then_export() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dbn.toml");
    std::fs::write(
        &config,
        "epochs = 3\nthreads = 1\n[model]\nhidden = [32, 16]\nactivation = \"sigmoid\"\n\
         init = \"xavier_uniform\"\n[pretrain]\nmethod = \"rbm\"\ncd_k = 1\nepochs = 3\nlr = 0.1\n",
    )
    .unwrap();
    let pre = dir.path().join("pre");
    let out = common::run_ok(
        common::microdnn()
            .args(["pretrain", "--config"])
            .arg(&config)
            .arg("--out")
            .arg(&pre),
    );
    assert!(out.contains("pretrained 2 layers"), "{out}");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(pre.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["pretraining"].as_array().unwrap().len(), 2);
    assert_eq!(m["pretraining"][0]["method"], "rbm");
    let run = dir.path().join("run");
    let out = common::run_ok(
        common::microdnn()
            .args(["train", "--quiet", "--config"])
            .arg(&config)
            .arg("--init")
            .arg(&pre)
            .arg("--out")
            .arg(&run),
    );
    assert!(out.contains("trained 3 epochs"), "{out}");
    let exported = dir.path().join("exported");
    common::run_ok(
        common::microdnn()
            .arg("export")
            .arg(&run)
            .arg("--out")
            .arg(&exported),
    );
    assert!(exported.join("model.udnn").exists());
}

#[test]
fn sparse_autoencoder_codes_are_sparse() {
    // Mean hidden activation on held-out digits: near ρ with the KL penalty, far above without.
    let cfg = digits_config();
    let data = train::prepare_data(&cfg).unwrap();
    let (tr, te) = (&data.train, data.test.as_ref().unwrap());
    let layer = &encoders(&cfg, tr.features)[..1];
    let mean_code = |method, weight| {
        let p = PretrainConfig {
            method,
            epochs: 30,
            lr: 0.5,
            sparsity_target: 0.05,
            sparsity_weight: weight,
            ..Default::default()
        };
        let (stack, _) =
            pretrain::pretrain_stack(&tr.x, tr.len(), layer, &p, 32, 1, &mut rng_for(0, 4))
                .unwrap();
        let y = stack[0].encode(&te.x, te.len());
        y.iter().map(|&v| v as f64).sum::<f64>() / y.len() as f64
    };
    let plain = mean_code(Method::Autoencoder, 0.0);
    let sparse = mean_code(Method::Sparse, 0.05);
    eprintln!("mean hidden activation: plain {plain:.3}, sparse {sparse:.3} (target 0.05)");
    assert!(sparse < 0.1, "{sparse}");
    assert!(plain > 2.0 * sparse, "{plain} vs {sparse}");
}

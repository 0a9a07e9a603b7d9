//! Finite-difference gradient checks of every layer (dense, batch norm in training mode, each
//! activation, dropout and DropConnect with a fixed mask), each loss and each regulariser.
//!
//! The objective of a layer check is `L = Σ r ⊙ f(x)` for a fixed random `r`, evaluated in
//! training mode with a fresh copy of the same generator each time, so dropout and DropConnect
//! masks are the same in every evaluation. Derivatives are central differences in `f32` with
//! step `h = 1e-3`, compared with a relative tolerance of 2% (plus a small absolute slack for
//! near-zero entries); inputs of ReLU-like layers are kept away from the kink.

#![allow(clippy::needless_range_loop)] // finite differences index by position

use microdnn::Activation;
use microdnn_host::model::{BatchNorm1d, Layer, Linear, Sequential};
use microdnn_host::nn::loss::{self, Loss};
use microdnn_host::nn::network::{Network, ParamKind, ParamMut};
use microdnn_host::nn::regularize::Regularization;
use microdnn_host::random::{rng_for, TrainRng};

mod common;
use common::rand_vec;

fn close(num: f64, ana: f64, what: &str) {
    common::close(num, ana, 2e-3, what)
}

const H: f32 = 1e-3;

fn objective(net: &mut Network, x: &[f32], r: &[f32], batch: usize, rng: &TrainRng) -> f64 {
    net.input_mut(batch).copy_from_slice(x);
    let out = net.forward(batch, true, &mut rng.clone());
    out.iter().zip(r).map(|(&o, &r)| o as f64 * r as f64).sum()
}

/// Checks every parameter gradient and the input gradient of `seq` on a batch.
fn check_network(seq: Sequential, batch: usize, x: Vec<f32>, name: &str) {
    let mut net = Network::new(seq, Loss::CrossEntropy, batch, 1);
    let mut rng = rng_for(11, 5);
    let outs = net.classes();
    let r = rand_vec(batch * outs, &mut rng, -1.0, 1.0);
    let mask_rng = rng_for(12, 6);
    objective(&mut net, &x, &r, batch, &mask_rng);
    net.output_grad_mut(batch).copy_from_slice(&r);
    net.backward(batch, true);
    let grads: Vec<Vec<f32>> = net.params().iter().map(|p| p.grad.to_vec()).collect();
    let dx = net.input_grad(batch).to_vec();
    for (pi, g) in grads.iter().enumerate() {
        for j in 0..g.len() {
            let orig = net.params()[pi].value[j];
            net.params()[pi].value[j] = orig + H;
            let lp = objective(&mut net, &x, &r, batch, &mask_rng);
            net.params()[pi].value[j] = orig - H;
            let lm = objective(&mut net, &x, &r, batch, &mask_rng);
            net.params()[pi].value[j] = orig;
            close(
                (lp - lm) / (2.0 * H as f64),
                g[j] as f64,
                &format!("{name} param {pi}[{j}]"),
            );
        }
    }
    for j in 0..x.len() {
        let mut xp = x.clone();
        xp[j] += H;
        let lp = objective(&mut net, &xp, &r, batch, &mask_rng);
        xp[j] -= 2.0 * H;
        let lm = objective(&mut net, &xp, &r, batch, &mask_rng);
        close(
            (lp - lm) / (2.0 * H as f64),
            dx[j] as f64,
            &format!("{name} input [{j}]"),
        );
    }
}

fn linear(inp: usize, out: usize, seed: u64) -> Linear {
    let mut rng = rng_for(seed, 7);
    Linear::from_parts(
        inp,
        out,
        rand_vec(inp * out, &mut rng, -0.8, 0.8),
        rand_vec(out, &mut rng, -0.3, 0.3),
    )
    .unwrap()
}

#[test]
fn dense_layer_gradients() {
    let x = rand_vec(3 * 5, &mut rng_for(1, 1), -1.0, 1.0);
    check_network(
        Sequential::new(vec![Layer::Linear(linear(5, 4, 1))]),
        3,
        x,
        "dense",
    );
}

#[test]
fn activation_gradients() {
    // Inputs of the activation are the layer's own inputs here: away from 0 for the kinks.
    let mut rng = rng_for(2, 2);
    let x: Vec<f32> = rand_vec(4 * 6, &mut rng, 0.1, 1.5)
        .into_iter()
        .enumerate()
        .map(|(i, v)| if i % 3 == 0 { -v } else { v })
        .collect();
    for act in [
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu { slope: 0.1 },
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softmax,
    ] {
        // An identity dense layer in front gives the network its width (and checks the
        // gradient flowing through the activation into a layer with parameters).
        let mut eye = vec![0.0; 36];
        (0..6).for_each(|i| eye[i * 7] = 1.0);
        let front = Linear::from_parts(6, 6, eye, vec![0.0; 6]).unwrap();
        let seq = Sequential::new(vec![Layer::Linear(front), Layer::Activation(act)]);
        check_network(seq, 4, x.clone(), act.name());
    }
}

#[test]
fn batchnorm_training_mode_gradients() {
    let mut bn = BatchNorm1d::new(4, 1e-5, 0.1);
    bn.weight = vec![1.5, -0.7, 0.9, 2.0];
    bn.bias = vec![0.1, 0.2, -0.3, 0.0];
    let x = rand_vec(6 * 4, &mut rng_for(3, 3), -2.0, 2.0);
    check_network(
        Sequential::new(vec![Layer::BatchNorm1d(bn)]),
        6,
        x,
        "batchnorm",
    );
}

#[test]
fn dropout_and_dropconnect_gradients_with_fixed_masks() {
    let x = rand_vec(4 * 6, &mut rng_for(4, 4), -1.0, 1.0);
    check_network(
        Sequential::new(vec![Layer::Dropout(0.4), Layer::Linear(linear(6, 3, 2))]),
        4,
        x.clone(),
        "dropout",
    );
    let mut l = linear(6, 5, 3);
    l.dropconnect = 0.5;
    check_network(Sequential::new(vec![Layer::Linear(l)]), 4, x, "dropconnect");
}

#[test]
fn stacked_network_gradients() {
    let x = rand_vec(5 * 4, &mut rng_for(5, 5), -1.0, 1.0);
    let seq = Sequential::new(vec![
        Layer::Linear(linear(4, 6, 4)),
        Layer::BatchNorm1d(BatchNorm1d::new(6, 1e-5, 0.1)),
        Layer::Activation(Activation::Tanh),
        Layer::Dropout(0.3),
        Layer::Linear(linear(6, 3, 5)),
        Layer::Activation(Activation::Sigmoid),
    ]);
    check_network(seq, 5, x, "stack");
}

#[test]
fn loss_gradients() {
    let mut rng = rng_for(6, 6);
    let (batch, classes) = (4, 5);
    let z = rand_vec(batch * classes, &mut rng, -3.0, 3.0);
    let labels = [0u32, 4, 2, 2];
    for which in [Loss::CrossEntropy, Loss::Mse] {
        let mut dz = vec![0.0; z.len()];
        loss::loss_and_grad(which, &z, &labels, classes, &mut dz);
        let mean = |z: &[f32]| loss::loss_only(which, z, &labels, classes).0 / batch as f64;
        for j in 0..z.len() {
            let mut zp = z.clone();
            zp[j] += H;
            let lp = mean(&zp);
            zp[j] -= 2.0 * H;
            let lm = mean(&zp);
            close(
                (lp - lm) / (2.0 * H as f64),
                dz[j] as f64,
                &format!("{which:?} [{j}]"),
            );
        }
    }
    // MSE is PyTorch's mean over batch and classes.
    let (l, _) = loss::loss_only(Loss::Mse, &[1.0, 1.0], &[0], 2);
    assert!((l - 0.5).abs() < 1e-12);
}

#[test]
fn regulariser_gradients() {
    let mut rng = rng_for(7, 7);
    let mut w: Vec<f32> = rand_vec(12, &mut rng, 0.2, 1.0)
        .into_iter()
        .enumerate()
        .map(|(i, v)| if i % 2 == 0 { -v } else { v })
        .collect();
    let mut b = rand_vec(3, &mut rng, -1.0, 1.0);
    for reg in [
        Regularization {
            l1: 0.3,
            ..Default::default()
        },
        Regularization {
            l2: 0.7,
            ..Default::default()
        },
        Regularization {
            l1: 0.1,
            l2: 0.2,
            decay_all: true,
            ..Default::default()
        },
    ] {
        let (mut gw, mut gb) = (vec![0.0; 12], vec![0.0; 3]);
        {
            let mut ps = vec![
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
            reg.add_grads(&mut ps);
        }
        let penalty = |w: &mut Vec<f32>, b: &mut Vec<f32>| {
            let (mut g1, mut g2) = (vec![0.0; 12], vec![0.0; 3]);
            reg.penalty(&[
                ParamMut {
                    value: w,
                    grad: &mut g1,
                    kind: ParamKind::Weight,
                    cols: 4,
                },
                ParamMut {
                    value: b,
                    grad: &mut g2,
                    kind: ParamKind::Bias,
                    cols: 3,
                },
            ])
        };
        for j in 0..12 {
            let o = w[j];
            w[j] = o + H;
            let lp = penalty(&mut w, &mut b);
            w[j] = o - H;
            let lm = penalty(&mut w, &mut b);
            w[j] = o;
            close(
                (lp - lm) / (2.0 * H as f64),
                gw[j] as f64,
                &format!("{reg:?} w[{j}]"),
            );
        }
        for j in 0..3 {
            if !reg.decay_all {
                assert_eq!(gb[j], 0.0, "biases are not decayed by default");
            }
        }
    }
}

#[test]
fn max_norm_and_clipping() {
    let mut w = vec![3.0f32, 4.0, 0.3, 0.4];
    let mut g = vec![30.0f32, 40.0, 0.0, 0.0];
    let reg = Regularization {
        max_norm: Some(1.0),
        clip_grad_norm: Some(5.0),
        ..Default::default()
    };
    let mut ps = vec![ParamMut {
        value: &mut w,
        grad: &mut g,
        kind: ParamKind::Weight,
        cols: 2,
    }];
    let before = reg.clip(&mut ps);
    assert!((before - 50.0).abs() < 1e-9);
    reg.apply_max_norm(&mut ps);
    assert!((g[0] - 3.0).abs() < 1e-6 && (g[1] - 4.0).abs() < 1e-6);
    assert!((w[0] - 0.6).abs() < 1e-6 && (w[1] - 0.8).abs() < 1e-6);
    assert_eq!(&w[2..], &[0.3, 0.4], "rows within the bound are untouched");
}

//! The proof that an exported file computes what the trained network computes: the file run by
//! the core (f32) against the unfolded network in f64, within a bound derived from the
//! arithmetic.

use microdnn::Activation;
use serde::Serialize;

use super::{AlignedModel, ExportError, Lowered, U};
use crate::model::{Layer, Model};

/// Result of [`check_equivalence`].
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Equivalence {
    /// Samples compared.
    pub samples: usize,
    /// Largest |device − exact| over all outputs.
    pub max_abs_error: f64,
    /// Largest ratio error / bound (must be ≤ 1).
    pub max_error_to_bound: f64,
    /// Samples whose argmax differs between the device file and the exact network.
    pub argmax_disagreements: usize,
}

fn gamma(k: usize) -> f64 {
    let k = k as f64;
    k * U / (1.0 - k * U)
}

/// Evaluates the unfolded network exactly (f64) on raw inputs, with the softmax the export adds
/// (if any): the reference the exported file is checked against.
pub fn reference_forward(model: &Model, lowered: &Lowered, raw: &[f32]) -> Vec<f64> {
    let mut x: Vec<f64> = raw
        .iter()
        .zip(model.transform.scale.iter().zip(&model.transform.offset))
        .map(|(v, (s, o))| *v as f64 * *s as f64 + *o as f64)
        .collect();
    for l in &model.net.layers {
        match l {
            Layer::Linear(lin) => {
                x = (0..lin.out_features)
                    .map(|o| {
                        let row = &lin.weight[o * lin.in_features..(o + 1) * lin.in_features];
                        lin.bias[o] as f64
                            + row.iter().zip(&x).map(|(w, v)| *w as f64 * v).sum::<f64>()
                    })
                    .collect();
            }
            Layer::BatchNorm1d(bn) => {
                for (j, v) in x.iter_mut().enumerate() {
                    let d = (bn.running_var[j] as f64 + bn.eps as f64).sqrt();
                    *v = bn.weight[j] as f64 * (*v - bn.running_mean[j] as f64) / d
                        + bn.bias[j] as f64;
                }
            }
            Layer::Activation(a) => apply_f64(*a, &mut x),
            Layer::Dropout(_) => {}
        }
    }
    let last = lowered.layers.last().map(|l| l.activation);
    let net_ends_in_activation = matches!(
        model
            .net
            .layers
            .iter()
            .rev()
            .find(|l| !matches!(l, Layer::Dropout(_))),
        Some(Layer::Activation(_))
    );
    if last == Some(Activation::Softmax) && !net_ends_in_activation {
        apply_f64(Activation::Softmax, &mut x);
    }
    x
}

fn apply_f64(a: Activation, x: &mut [f64]) {
    match a {
        Activation::Identity => {}
        Activation::Relu => x.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::LeakyRelu { slope } => x.iter_mut().for_each(|v| {
            if *v <= 0.0 {
                *v *= slope as f64
            }
        }),
        Activation::Sigmoid => x.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
        Activation::Tanh => x.iter_mut().for_each(|v| *v = v.tanh()),
        Activation::Softmax => {
            let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = x.iter().map(|v| (v - m).exp()).sum();
            x.iter_mut().for_each(|v| *v = (*v - m).exp() / s);
        }
    }
}

/// Lipschitz constant (∞-norm) of an activation, and its own evaluation error relative to |y|
/// in units of u (libm is within about 1 ulp; softmax adds a few roundings).
fn activation_constants(a: Activation) -> (f64, f64) {
    match a {
        Activation::Identity | Activation::Relu => (1.0, 0.0),
        Activation::LeakyRelu { slope } => ((slope as f64).abs().max(1.0), 1.0),
        Activation::Sigmoid => (0.25, 4.0),
        Activation::Tanh => (1.0, 4.0),
        // ‖J‖∞ of softmax is max_i 2 p_i (1 - p_i) ≤ 1/2; evaluation: exp, sum, divide.
        Activation::Softmax => (0.5, 8.0),
    }
}

/// Runs the exported file with the core (f32, exactly what a device computes) on `samples`
/// raw inputs and compares every output with the exact (f64) unfolded network. Each output must
/// lie within a bound derived from the arithmetic:
///
/// for each layer, with `e` the bound on the layer's input error,
/// `e_lin[o] = Σ_c |W'[o][c]| e[c] + γ(⌈n/4⌉+3) (Σ_c |W'[o][c] x[c]| + |b'[o]|) + 2u (Σ_c |W'[o][c] x[c]| + |b'[o]|)`
/// (kernel rounding, then the rounding of the folded weights and bias), and
/// `e_out = L e_lin + k u |y|` with `L` the activation's Lipschitz constant and `k u` its own
/// evaluation error. The input transform contributes `2u |x'|`.
pub fn check_equivalence(
    model: &Model,
    lowered: &Lowered,
    file: &AlignedModel,
    samples: &[f32],
) -> Result<Equivalence, ExportError> {
    let view = file.view()?;
    let n_in = view.inputs();
    let w = view.max_width();
    let (mut a, mut b) = (vec![0.0f32; w], vec![0.0f32; w]);
    let mut eq = Equivalence {
        samples: 0,
        max_abs_error: 0.0,
        max_error_to_bound: 0.0,
        argmax_disagreements: 0,
    };
    for raw in samples.chunks_exact(n_in) {
        let mut x = raw.to_vec();
        let device = view
            .run(&mut x, &mut a, &mut b)
            .map_err(ExportError::Shape)?
            .to_vec();
        let exact = reference_forward(model, lowered, raw);
        // Propagate the bound through the folded layers, using the f32 activations x.
        let mut h: Vec<f64> = raw
            .iter()
            .zip(
                lowered
                    .transform
                    .scale
                    .iter()
                    .zip(&lowered.transform.offset),
            )
            .map(|(v, (s, o))| (*v * *s + *o) as f64)
            .collect();
        // The transform's own rounding (a product and a sum), plus the folding error.
        let mut e: Vec<f64> = raw
            .iter()
            .zip(
                lowered
                    .transform
                    .scale
                    .iter()
                    .zip(&lowered.transform.offset),
            )
            .zip(&lowered.input_abs_err)
            .map(|((v, (s, o)), fe)| {
                2.0 * U * ((*v as f64 * *s as f64).abs() + (*o as f64).abs()) + fe
            })
            .collect();
        for l in &lowered.layers {
            let g = gamma(l.inputs.div_ceil(4) + 3) + l.weight_rel_err;
            let mut y = vec![0.0f64; l.outputs];
            let mut ey = vec![0.0f64; l.outputs];
            for o in 0..l.outputs {
                let row = &l.rows[o * l.inputs..(o + 1) * l.inputs];
                let mag: f64 = row
                    .iter()
                    .zip(&h)
                    .map(|(w, v)| (*w as f64 * v).abs())
                    .sum::<f64>()
                    + (l.bias[o] as f64).abs();
                let prop: f64 = row.iter().zip(&e).map(|(w, e)| (*w as f64).abs() * e).sum();
                y[o] =
                    row.iter().zip(&h).map(|(w, v)| *w as f64 * v).sum::<f64>() + l.bias[o] as f64;
                ey[o] = prop + g * mag + l.bias_abs_err[o];
            }
            apply_f64(l.activation, &mut y);
            let (lip, k) = activation_constants(l.activation);
            let emax = ey.iter().cloned().fold(0.0, f64::max);
            e = y
                .iter()
                .zip(&ey)
                .map(|(v, ei)| {
                    // Softmax mixes all outputs: use the largest input error for each.
                    let ein = if l.activation == Activation::Softmax {
                        emax
                    } else {
                        *ei
                    };
                    lip * ein + k * U * v.abs() + f64::from(f32::from_bits(1))
                })
                .collect();
            h = y;
        }
        for ((d, x), bound) in device.iter().zip(&exact).zip(&e) {
            let err = (*d as f64 - x).abs();
            eq.max_abs_error = eq.max_abs_error.max(err);
            eq.max_error_to_bound = eq.max_error_to_bound.max(err / bound);
        }
        let da = microdnn::argmax(&device);
        let xa = exact
            .iter()
            .enumerate()
            .fold(0, |best, (i, v)| if *v > exact[best] { i } else { best });
        if da != xa {
            eq.argmax_disagreements += 1;
        }
        eq.samples += 1;
    }
    Ok(eq)
}

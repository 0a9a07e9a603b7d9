//! Export: a trained [`Model`] (or a PyTorch `nn.Sequential` state dict) → a device model file.
//!
//! Lowering turns the training-side layer list into the device's dense layers:
//! - `Linear` starts a device layer (activation identity until one follows);
//! - `BatchNorm1d` right after a `Linear` is folded into it (`W' = diag(s) W`, `b' = s b + t`);
//!   after an activation it is folded into the *next* `Linear` (`W' = W diag(s)`,
//!   `b' = b + W t`); before any `Linear` it is folded into the input transform;
//! - an activation sets the current layer's activation;
//! - `Dropout` is dropped (inverted dropout needs no rescaling); its rate is kept on the
//!   preceding layer for Monte-Carlo passes on the device;
//! - the last layer gets a softmax when [`OutputActivation::Softmax`] is asked for and the
//!   network ends in logits.
//!
//! The folding uses [`microdnn::batch_norm`]'s own functions, the packing
//! [`microdnn::kernel::pack`] and the file [`microdnn::model::encode`]: the host writes through
//! the same definitions the device reads.
//!
//! [`check_equivalence`] shows that the exported file computes what the trained network
//! computes: it evaluates the *unfolded* network in f64 and the exported file with the core's
//! own f32 arithmetic, and checks every output against an error bound propagated through the
//! layers from the kernel's documented rounding behaviour.

use std::path::Path;

use microdnn::model::{EncodeLayer, ModelSpec, ModelView};
use microdnn::{kernel, Activation};
use serde::Serialize;

use crate::data::InputTransform;
use crate::model::{Layer, Model, Sequential};

/// What the exported network's last layer outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum OutputActivation {
    /// Class probabilities (adds a softmax unless the network already ends in an activation).
    Softmax,
    /// Whatever the network computes (logits for a classifier).
    Identity,
}

/// Errors of lowering or writing a model.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The layer sequence cannot be expressed as device layers.
    #[error("layer {layer} ({what}): {why}")]
    Unsupported {
        /// Index in the Sequential.
        layer: usize,
        /// The layer's kind.
        what: &'static str,
        /// Why it cannot be exported.
        why: String,
    },
    /// Batch-norm statistics that cannot be folded.
    #[error("layer {layer} (BatchNorm1d): {source}")]
    BatchNorm {
        /// Index in the Sequential.
        layer: usize,
        /// The core's error.
        source: microdnn::Error,
    },
    /// A shape the core rejected.
    #[error("{0}")]
    Shape(microdnn::Error),
    /// The core's encoder rejected the network.
    #[error("encoding the device model: {0}")]
    Encode(#[from] microdnn::ModelError),
    /// Writing a file.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// One device layer in row-major form (before packing).
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceLayer {
    /// Inputs.
    pub inputs: usize,
    /// Outputs.
    pub outputs: usize,
    /// Row-major weights `[outputs][inputs]`.
    pub rows: Vec<f32>,
    /// Bias.
    pub bias: Vec<f32>,
    /// Activation after the dense part.
    pub activation: Activation,
    /// Dropout rate on the output (kept for Monte-Carlo passes).
    pub dropout_rate: f32,
    /// Bound on the relative rounding error of each weight introduced by folding (0 if the
    /// weights were copied unchanged).
    pub weight_rel_err: f64,
    /// Bound on the absolute rounding error of each bias introduced by folding.
    pub bias_abs_err: Vec<f64>,
}

/// A network lowered to device layers, with the (possibly adjusted) input transform.
#[derive(Clone, Debug, PartialEq)]
pub struct Lowered {
    /// Device layers.
    pub layers: Vec<DeviceLayer>,
    /// Input transform applied on the device before the first layer.
    pub transform: InputTransform,
    /// Bound on the absolute error of each transformed input introduced by folding a batch
    /// norm into the transform (0 without one).
    pub input_abs_err: Vec<f64>,
}

/// Unit roundoff of f32.
const U: f64 = f32::EPSILON as f64 / 2.0;
/// Relative error bound of a folded scale `s = gamma / sqrt(var + eps)` (add, sqrt, divide).
const SCALE_REL: f64 = 3.0 * U;

/// Lowers a trained model to device layers (see the module docs for the rules).
pub fn lower(model: &Model, output: OutputActivation) -> Result<Lowered, ExportError> {
    let net = &model.net;
    let mut layers: Vec<DeviceLayer> = Vec::new();
    let mut transform = model.transform.clone();
    let mut input_abs_err = vec![0.0f64; transform.scale.len()];
    // A batch norm seen after an activation, to fold into the next Linear's columns:
    // (scale, shift, error bound of each shift).
    let mut pending: Option<(Vec<f32>, Vec<f32>, Vec<f64>)> = None;
    let mut pending_at = 0;
    let mut activation_set = false;
    for (i, l) in net.layers.iter().enumerate() {
        match l {
            Layer::Linear(lin) => {
                let mut rows = lin.weight.clone();
                let mut bias = lin.bias.clone();
                let mut weight_rel_err = 0.0;
                let mut bias_abs_err = vec![0.0f64; lin.out_features];
                if let Some((scale, shift, shift_err)) = pending.take() {
                    // y = W (s*h + t) + b = (W diag(s)) h + (b + W t); W t in f64.
                    for (o, b) in bias.iter_mut().enumerate() {
                        let row = &lin.weight[o * lin.in_features..(o + 1) * lin.in_features];
                        let wt: f64 = row
                            .iter()
                            .zip(&shift)
                            .map(|(w, t)| *w as f64 * *t as f64)
                            .sum();
                        let folded = *b as f64 + wt;
                        *b = folded as f32;
                        let werr: f64 = row
                            .iter()
                            .zip(&shift_err)
                            .map(|(w, e)| (*w as f64).abs() * e)
                            .sum();
                        bias_abs_err[o] = werr + U * folded.abs();
                    }
                    for row in rows.chunks_mut(lin.in_features) {
                        row.iter_mut().zip(&scale).for_each(|(w, s)| *w *= s);
                    }
                    weight_rel_err = SCALE_REL + U;
                }
                layers.push(DeviceLayer {
                    inputs: lin.in_features,
                    outputs: lin.out_features,
                    rows,
                    bias,
                    activation: Activation::Identity,
                    dropout_rate: 0.0,
                    weight_rel_err,
                    bias_abs_err,
                });
                activation_set = false;
            }
            Layer::BatchNorm1d(bn) => {
                let n = bn.features;
                let (mut scale, mut shift) = (vec![0.0; n], vec![0.0; n]);
                microdnn::batch_norm::fold_stats(
                    &bn.weight,
                    &bn.bias,
                    &bn.running_mean,
                    &bn.running_var,
                    bn.eps,
                    &mut scale,
                    &mut shift,
                )
                .map_err(|source| ExportError::BatchNorm { layer: i, source })?;
                // Error of t = beta - m * s: the product and difference round (2u), and s
                // carries SCALE_REL.
                let shift_err: Vec<f64> = (0..n)
                    .map(|j| {
                        let ms = (bn.running_mean[j] as f64 * scale[j] as f64).abs();
                        (2.0 * U + SCALE_REL) * ms + U * (bn.bias[j] as f64).abs()
                    })
                    .collect();
                match layers.last_mut() {
                    None => {
                        // Before any Linear: x'' = (x*a + c)*s + t.
                        for j in 0..n {
                            let off = transform.offset[j] as f64 * scale[j] as f64;
                            transform.offset[j] = transform.offset[j] * scale[j] + shift[j];
                            transform.scale[j] *= scale[j];
                            input_abs_err[j] = input_abs_err[j] * (scale[j] as f64).abs()
                                + (2.0 * U + SCALE_REL) * off.abs()
                                + shift_err[j]
                                + U * (transform.offset[j] as f64).abs();
                        }
                    }
                    Some(last) if !activation_set => {
                        let before: Vec<f64> = last
                            .bias
                            .iter()
                            .zip(&scale)
                            .map(|(b, s)| (*b as f64 * *s as f64).abs())
                            .collect();
                        microdnn::batch_norm::fold_into_slices(
                            &scale,
                            &shift,
                            &mut last.rows,
                            &mut last.bias,
                        );
                        for (j, e) in last.bias_abs_err.iter_mut().enumerate() {
                            *e = *e * (scale[j] as f64).abs()
                                + (2.0 * U + SCALE_REL) * before[j]
                                + shift_err[j]
                                + U * (last.bias[j] as f64).abs();
                        }
                        last.weight_rel_err = last.weight_rel_err + SCALE_REL + U;
                    }
                    Some(_) => {
                        if pending.is_some() {
                            return Err(unsupported(i, "BatchNorm1d", "two batch norms in a row"));
                        }
                        pending = Some((scale, shift, shift_err));
                        pending_at = i;
                    }
                }
            }
            Layer::Activation(a) => {
                let Some(last) = layers.last_mut() else {
                    return Err(unsupported(
                        i,
                        "activation",
                        "an activation before the first Linear",
                    ));
                };
                if pending.is_some() {
                    return Err(unsupported(
                        i,
                        "activation",
                        "an activation after a batch norm that follows an activation",
                    ));
                }
                if activation_set && *a != Activation::Identity {
                    return Err(unsupported(i, "activation", "two activations in a row"));
                }
                if *a != Activation::Identity {
                    last.activation = *a;
                    activation_set = true;
                }
            }
            Layer::Dropout(rate) => {
                if let Some(last) = layers.last_mut() {
                    last.dropout_rate = *rate;
                }
                // Input dropout (before the first Linear) is the identity at inference.
            }
        }
    }
    if pending.is_some() {
        return Err(unsupported(
            pending_at,
            "BatchNorm1d",
            "a batch norm after the last layer's activation",
        ));
    }
    let Some(last) = layers.last_mut() else {
        return Err(unsupported(0, "network", "no Linear layer"));
    };
    last.dropout_rate = 0.0; // no dropout on the network's output
    if output == OutputActivation::Softmax && !activation_set {
        last.activation = Activation::Softmax;
    }
    Ok(Lowered {
        layers,
        transform,
        input_abs_err,
    })
}

fn unsupported(layer: usize, what: &'static str, why: &str) -> ExportError {
    ExportError::Unsupported {
        layer,
        what,
        why: why.into(),
    }
}

/// Encodes lowered layers as a device model file (weights packed for the kernel).
pub fn encode(lowered: &Lowered) -> Result<Vec<u8>, ExportError> {
    let packed: Vec<Vec<f32>> = lowered
        .layers
        .iter()
        .map(|l| {
            let mut p = vec![0.0; l.rows.len()];
            kernel::pack(&l.rows, l.inputs, l.outputs, &mut p).map(|_| p)
        })
        .collect::<Result<_, _>>()
        .map_err(ExportError::Shape)?;
    let enc: Vec<EncodeLayer<'_>> = lowered
        .layers
        .iter()
        .zip(&packed)
        .map(|(l, p)| EncodeLayer {
            inputs: l.inputs,
            outputs: l.outputs,
            activation: l.activation,
            dropout_rate: l.dropout_rate,
            packed_weights: p,
            bias: &l.bias,
        })
        .collect();
    let identity = lowered.transform.scale.iter().all(|&s| s == 1.0)
        && lowered.transform.offset.iter().all(|&o| o == 0.0);
    let spec = ModelSpec {
        inputs: lowered.layers[0].inputs,
        layers: &enc,
        input_transform: (!identity)
            .then_some((&lowered.transform.scale[..], &lowered.transform.offset[..])),
    };
    let mut out = vec![0u8; microdnn::model::encoded_len(&spec)];
    let n = microdnn::model::encode(&spec, &mut out)?;
    out.truncate(n);
    Ok(out)
}

/// A model file's bytes copied to 16-byte-aligned memory, as a device has them in flash.
pub struct AlignedModel {
    words: Vec<u128>,
    len: usize,
}

impl AlignedModel {
    /// Copies `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        let mut words = vec![0u128; bytes.len().div_ceil(16)];
        for (w, c) in words.iter_mut().zip(bytes.chunks(16)) {
            let mut b = [0u8; 16];
            b[..c.len()].copy_from_slice(c);
            *w = u128::from_ne_bytes(b);
        }
        Self {
            words,
            len: bytes.len(),
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u128, u8>(&self.words)[..self.len]
    }

    /// Validates and views the model.
    pub fn view(&self) -> Result<ModelView<'_>, microdnn::ModelError> {
        ModelView::new_checked(self.bytes())
    }
}

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

/// A summary of an exported model, written beside it as `model.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Layers: inputs, outputs, activation, dropout rate.
    pub layers: Vec<(usize, usize, String, f32)>,
    /// Parameters.
    pub params: usize,
    /// Multiply-accumulates per inference.
    pub macs: usize,
    /// Bytes of the model file (what it occupies in flash).
    pub file_bytes: usize,
    /// Bytes of activation buffers a `network!` type needs (one per layer output).
    pub ram_bytes: usize,
    /// Bytes of the input vector.
    pub input_bytes: usize,
}

/// Summarises a validated model file.
pub fn summarize(view: &ModelView<'_>) -> Summary {
    Summary {
        layers: view
            .layers()
            .map(|l| {
                (
                    l.inputs,
                    l.outputs,
                    l.activation.to_string(),
                    l.dropout_rate,
                )
            })
            .collect(),
        params: view.params(),
        macs: view.macs(),
        file_bytes: view.bytes().len(),
        ram_bytes: view.layers().map(|l| l.outputs * 4).sum(),
        input_bytes: view.inputs() * 4,
    }
}

/// Writes `bytes` to `path` atomically (temporary file in the same folder, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    crate::model::checkpoint::atomic_write(path, bytes).map_err(|e| ExportError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// Lowers a network and checks its sizes for export; convenience for [`Sequential`]s built by
/// hand (tests, PyTorch imports) with an identity transform.
pub fn model_from_sequential(net: Sequential, classes: usize) -> Model {
    let f = net.in_features();
    Model {
        net,
        transform: InputTransform::identity(f),
        classes,
    }
}

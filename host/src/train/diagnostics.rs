//! Training diagnostics (the lecture's "Gradient Vanishing & Exploding", dead ReLUs and the
//! batch-norm figure of one unit's input distribution), per dense layer and epoch.
//!
//! Definitions, for the dense layer at position `layer` of the `Sequential`:
//! - `grad_norm`: L2 norm of the weight gradient of the *data loss* (before weight decay and
//!   clipping), averaged over the epoch's tracked optimiser steps: every step of an epoch of up
//!   to [`TRACKED_STEPS`] steps, else every [`step_stride`]-th step (about [`TRACKED_STEPS`]
//!   evenly spread steps, so the cost stays small on large data sets). At initialisation
//!   ([`at_init`]): averaged over up to 8 mini-batches of the diagnostic sample, without a step.
//! - `weight_norm`: L2 (Frobenius) norm of the weight at the end of the epoch.
//! - `update_ratio`: `‖W_after − W_before‖ / ‖W_before‖` of each tracked optimiser step
//!   (everything the step does: optimiser, decay, max-norm), averaged over the epoch; 0 at
//!   initialisation.
//! - The *pre-activation* of a layer is the input of its activation function (after batch norm
//!   when there is one: the quantity the batch-norm paper's figure tracks); the *activation* is
//!   the activation's output. The last dense layer has no activation: both are its outputs.
//! - `dead_fraction`: for ReLU and leaky-ReLU layers, the share of units whose pre-activation is
//!   `≤ 0` for every example of the diagnostic sample; `null` for other activations.
//! - `act_mean`, `act_std` (population), `act_p15/50/85`: over every activation value (all units,
//!   all examples) of the diagnostic sample.
//! - `unit0_input_p15/50/85`: percentiles of the pre-activation of unit 0 over the sample.
//!
//! Percentiles interpolate linearly between order statistics (NumPy's default). The diagnostic
//! sample is the validation split (its first [`MAX_SAMPLE`] examples), or without one up to
//! [`MAX_SAMPLE`] evenly spaced training examples; it is evaluated in evaluation mode after each
//! epoch.
//!
//! Cost: per tracked step, a few passes over the dense weights (gradient norm, copy, update
//! norm); per epoch, one evaluation-mode pass over the sample and linear-time percentile
//! selections. MNIST 784-256-128-10, batch 128, 2 threads: 5-10% of an epoch (tracking every
//! step cost 40%). Turn off with `diagnostics = false` in the config; `bench-train` steps
//! without them (no hook on its steps).

use std::fmt;

use microdnn::Activation;
use serde::{Deserialize, Deserializer, Serialize};

use crate::data::Dataset;
use crate::model::{Layer, Sequential};
use crate::nn::network::{Network, ParamKind};
use crate::nn::{activation, batchnorm, matmul};
use crate::random::TrainRng;

/// Largest diagnostic sample.
pub const MAX_SAMPLE: usize = 5000;

/// About how many optimiser steps per epoch the step statistics track.
pub const TRACKED_STEPS: usize = 32;

/// Track every `step_stride(steps_per_epoch)`-th step (batch index `% stride == 0`).
pub fn step_stride(steps_per_epoch: usize) -> usize {
    (steps_per_epoch / TRACKED_STEPS).max(1)
}

/// Advice printed with vanishing or exploding gradient warnings (the lecture's remedies).
pub const ADVICE: &str = "remedies: a smaller learning rate (exploding), ReLU or leaky ReLU \
     instead of sigmoid/tanh (vanishing), batch normalisation (model.batch_norm = true), a good \
     initialisation (model.init = \"he_normal\" for ReLU, \"xavier_uniform\" for sigmoid/tanh), \
     gradient clipping (regularization.clip_grad_norm), greedy layer-wise pretraining ([pretrain])";

fn f64_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Diagnostics of one dense layer (see the module documentation for the definitions). Saved in
/// `metrics.json` under `"diagnostics"` in each epoch and `"diagnostics_at_init"`; non-finite
/// values are written as `null`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerDiagnostics {
    /// Position of the dense layer in the `Sequential`.
    pub layer: usize,
    /// Mean L2 norm of the weight gradient over the epoch's steps.
    #[serde(deserialize_with = "f64_or_nan")]
    pub grad_norm: f64,
    /// L2 norm of the weight.
    #[serde(deserialize_with = "f64_or_nan")]
    pub weight_norm: f64,
    /// Mean `‖ΔW‖ / ‖W‖` per step.
    #[serde(deserialize_with = "f64_or_nan")]
    pub update_ratio: f64,
    /// Share of dead units (ReLU-like layers only).
    pub dead_fraction: Option<f64>,
    /// Mean activation.
    #[serde(deserialize_with = "f64_or_nan")]
    pub act_mean: f64,
    /// Standard deviation of the activations.
    #[serde(deserialize_with = "f64_or_nan")]
    pub act_std: f64,
    /// 15th percentile of the activations.
    #[serde(deserialize_with = "f64_or_nan")]
    pub act_p15: f64,
    /// Median activation.
    #[serde(deserialize_with = "f64_or_nan")]
    pub act_p50: f64,
    /// 85th percentile of the activations.
    #[serde(deserialize_with = "f64_or_nan")]
    pub act_p85: f64,
    /// 15th percentile of unit 0's pre-activation.
    #[serde(deserialize_with = "f64_or_nan")]
    pub unit0_input_p15: f64,
    /// Median of unit 0's pre-activation.
    #[serde(deserialize_with = "f64_or_nan")]
    pub unit0_input_p50: f64,
    /// 85th percentile of unit 0's pre-activation.
    #[serde(deserialize_with = "f64_or_nan")]
    pub unit0_input_p85: f64,
}

/// The examples diagnostics are computed on (already transformed).
#[derive(Clone, Debug)]
pub struct DiagSample {
    /// Inputs, `[rows, features]`.
    pub x: Vec<f32>,
    /// Labels.
    pub y: Vec<u32>,
    /// Input width.
    pub features: usize,
}

impl DiagSample {
    /// The first [`MAX_SAMPLE`] validation examples, else up to [`MAX_SAMPLE`] evenly spaced
    /// training examples.
    pub fn new(train: &Dataset, val: Option<&Dataset>) -> Self {
        let (d, idx): (&Dataset, Vec<usize>) = match val.filter(|v| !v.is_empty()) {
            Some(v) => (v, (0..v.len().min(MAX_SAMPLE)).collect()),
            None => {
                let n = train.len();
                let k = n.min(MAX_SAMPLE);
                (train, (0..k).map(|i| i * n / k.max(1)).collect())
            }
        };
        let s = d.subset(&idx);
        Self {
            x: s.x,
            y: s.y,
            features: s.features,
        }
    }

    /// Examples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

/// Pre-activations and activations of one dense layer over a sample.
#[derive(Clone, Debug)]
pub struct LayerActivity {
    /// Position of the dense layer.
    pub layer: usize,
    /// The activation applied after it (`None` for the output layer).
    pub activation: Option<Activation>,
    /// Units.
    pub width: usize,
    /// Pre-activations `[rows, width]`.
    pub pre: Vec<f32>,
    /// Activations `[rows, width]`.
    pub post: Vec<f32>,
}

/// Evaluation-mode forward pass of `rows` examples `x`, recording each dense layer's
/// pre-activations and activations.
pub fn activity(seq: &Sequential, x: &[f32], rows: usize) -> Vec<LayerActivity> {
    let mut cur = x.to_vec();
    let widths = seq.widths();
    let mut out: Vec<LayerActivity> = Vec::new();
    // Index into `out` of the dense layer whose activation is still to come.
    let mut open: Option<usize> = None;
    for (i, l) in seq.layers.iter().enumerate() {
        let w = widths[i + 1];
        let mut next = vec![0.0f32; rows * w];
        match l {
            Layer::Linear(lin) => {
                if let Some(k) = open.take() {
                    // A dense layer without an activation before this one: its outputs.
                    out[k].pre = cur.clone();
                    out[k].post = cur.clone();
                }
                matmul::linear_forward(
                    &cur,
                    &lin.weight,
                    &lin.bias,
                    &mut next,
                    rows,
                    lin.in_features,
                    lin.out_features,
                    gemm::Parallelism::None,
                );
                out.push(LayerActivity {
                    layer: i,
                    activation: None,
                    width: w,
                    pre: Vec::new(),
                    post: Vec::new(),
                });
                open = Some(out.len() - 1);
            }
            Layer::BatchNorm1d(b) => batchnorm::forward_eval(b, &cur, &mut next),
            Layer::Dropout(_) => next.copy_from_slice(&cur),
            Layer::Activation(a) => {
                activation::forward(*a, &cur, &mut next, w);
                if let Some(k) = open.take() {
                    out[k].activation = Some(*a);
                    out[k].pre = cur.clone();
                    out[k].post = next.clone();
                }
            }
        }
        cur = next;
    }
    if let Some(k) = open {
        // The output layer (or a dense layer followed by no activation): its outputs.
        out[k].pre = cur.clone();
        out[k].post = cur;
    }
    out
}

/// Percentiles (`ps` in 0..=100) of `v`, interpolating linearly between order statistics; NaN
/// for an empty slice. Reorders `v` (linear-time selections, no full sort).
pub fn percentiles(v: &mut [f32], ps: &[f64]) -> Vec<f64> {
    if v.is_empty() {
        return vec![f64::NAN; ps.len()];
    }
    let cmp = |a: &f32, b: &f32| a.total_cmp(b);
    ps.iter()
        .map(|&p| {
            let pos = p.clamp(0.0, 100.0) / 100.0 * (v.len() - 1) as f64;
            let lo = pos.floor() as usize;
            let t = pos - lo as f64;
            let (_, at, rest) = v.select_nth_unstable_by(lo, cmp);
            let a = *at as f64;
            if t > 0.0 {
                let b = rest.iter().copied().min_by(cmp).expect("lo < len - 1") as f64;
                a * (1.0 - t) + b * t
            } else {
                a
            }
        })
        .collect()
}

/// Mean and population standard deviation (NaN for an empty slice).
pub fn mean_std(v: &[f32]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Share of units whose pre-activation is `≤ 0` for every row (`pre` is `[rows, width]`).
pub fn dead_fraction(pre: &[f32], width: usize) -> f64 {
    if width == 0 {
        return 0.0;
    }
    let mut alive = vec![false; width];
    for row in pre.chunks_exact(width) {
        for (a, &v) in alive.iter_mut().zip(row) {
            *a |= v > 0.0;
        }
    }
    alive.iter().filter(|a| !**a).count() as f64 / width as f64
}

fn l2(v: &[f32]) -> f64 {
    v.iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>()
        .sqrt()
}

/// Diagnostics of every dense layer of `seq` on `sample`, with the step statistics
/// `grad_norms` and `update_ratios` (one per dense layer, in order).
pub fn layer_diagnostics(
    seq: &Sequential,
    sample: &DiagSample,
    grad_norms: &[f64],
    update_ratios: &[f64],
) -> Vec<LayerDiagnostics> {
    let acts = activity(seq, &sample.x, sample.len());
    acts.into_iter()
        .enumerate()
        .map(|(k, mut a)| {
            let Layer::Linear(lin) = &seq.layers[a.layer] else {
                unreachable!("activity reports dense layers")
            };
            let dead = match a.activation {
                Some(Activation::Relu | Activation::LeakyRelu { .. }) => {
                    Some(dead_fraction(&a.pre, a.width))
                }
                _ => None,
            };
            let (mean, std) = mean_std(&a.post);
            let p = percentiles(&mut a.post, &[15.0, 50.0, 85.0]);
            let mut unit0: Vec<f32> = a.pre.iter().step_by(a.width.max(1)).copied().collect();
            let u = percentiles(&mut unit0, &[15.0, 50.0, 85.0]);
            LayerDiagnostics {
                layer: a.layer,
                grad_norm: grad_norms.get(k).copied().unwrap_or(f64::NAN),
                weight_norm: l2(&lin.weight),
                update_ratio: update_ratios.get(k).copied().unwrap_or(f64::NAN),
                dead_fraction: dead,
                act_mean: mean,
                act_std: std,
                act_p15: p[0],
                act_p50: p[1],
                act_p85: p[2],
                unit0_input_p15: u[0],
                unit0_input_p50: u[1],
                unit0_input_p85: u[2],
            }
        })
        .collect()
}

/// Norms of the dense weight gradients currently in `net` (data-loss gradient after
/// `backward`), in layer order.
pub fn weight_grad_norms(net: &mut Network) -> Vec<f64> {
    net.params()
        .iter()
        .filter(|p| p.kind == ParamKind::Weight)
        .map(|p| l2(p.grad))
        .collect()
}

/// Diagnostics before the first step: gradients of the data loss on up to 8 mini-batches of the
/// sample (training mode, on a copy of the network, with `rng` for dropout masks), activations
/// in evaluation mode; `update_ratio` is 0.
pub fn at_init(net: &Network, sample: &DiagSample, rng: &mut TrainRng) -> Vec<LayerDiagnostics> {
    let original = net;
    let mut net = net.clone();
    let f = sample.features;
    let bs = net.max_batch().max(1);
    let mut sums: Vec<f64> = Vec::new();
    let mut batches = 0usize;
    for (xs, ys) in sample.x.chunks(bs * f).zip(sample.y.chunks(bs)).take(8) {
        let b = ys.len();
        net.input_mut(b).copy_from_slice(xs);
        crate::train::step::gradients(&mut net, ys, rng);
        let g = weight_grad_norms(&mut net);
        if sums.is_empty() {
            sums = vec![0.0; g.len()];
        }
        sums.iter_mut().zip(&g).for_each(|(s, v)| *s += v);
        batches += 1;
    }
    let grads: Vec<f64> = sums.iter().map(|s| s / batches.max(1) as f64).collect();
    let zeros = vec![0.0; grads.len()];
    // The copy's batch-norm running statistics moved: activations of the original.
    layer_diagnostics(&original.seq, sample, &grads, &zeros)
}

/// Per-step statistics of the dense weights over an epoch.
#[derive(Clone, Debug, Default)]
pub struct StepTracker {
    before: Vec<Vec<f32>>,
    grad_sum: Vec<f64>,
    ratio_sum: Vec<f64>,
    steps: usize,
}

impl StepTracker {
    /// A tracker with nothing recorded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Call after `backward` (before regularisers and the optimiser): records the gradient norms
    /// and the weights before the step.
    pub fn before_step(&mut self, net: &mut Network) {
        let params = net.params();
        let weights = params.iter().filter(|p| p.kind == ParamKind::Weight);
        let k = weights.clone().count();
        if self.grad_sum.len() != k {
            self.grad_sum = vec![0.0; k];
            self.ratio_sum = vec![0.0; k];
            self.before = vec![Vec::new(); k];
            self.steps = 0;
        }
        for (i, p) in weights.enumerate() {
            self.grad_sum[i] += l2(p.grad);
            self.before[i].clear();
            self.before[i].extend_from_slice(p.value);
        }
    }

    /// Call after the step: records `‖ΔW‖ / ‖W‖`.
    pub fn after_step(&mut self, net: &mut Network) {
        let params = net.params();
        for (i, p) in params
            .iter()
            .filter(|p| p.kind == ParamKind::Weight)
            .enumerate()
        {
            let old = &self.before[i];
            let d: f64 = p
                .value
                .iter()
                .zip(old)
                .map(|(&a, &b)| ((a - b) as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            let w = l2(old);
            self.ratio_sum[i] += if w > 0.0 { d / w } else { 0.0 };
        }
        self.steps += 1;
    }

    /// The epoch's mean gradient norms and update ratios; resets the tracker.
    pub fn take(&mut self) -> (Vec<f64>, Vec<f64>) {
        let n = self.steps.max(1) as f64;
        let g = self.grad_sum.iter().map(|s| s / n).collect();
        let r = self.ratio_sum.iter().map(|s| s / n).collect();
        self.grad_sum.iter_mut().for_each(|s| *s = 0.0);
        self.ratio_sum.iter_mut().for_each(|s| *s = 0.0);
        self.steps = 0;
        (g, r)
    }
}

/// A problem the diagnostics detect.
#[derive(Clone, Debug, PartialEq)]
pub enum Warning {
    /// A layer's gradient norm is below `1e-5` times the last layer's.
    Vanishing {
        /// Dense layer position.
        layer: usize,
        /// Its gradient norm.
        grad_norm: f64,
        /// The last dense layer's gradient norm.
        last: f64,
    },
    /// A layer's gradient norm grew more than 10x since the previous epoch.
    Exploding {
        /// Dense layer position.
        layer: usize,
        /// Growth factor.
        growth: f64,
    },
    /// A layer's gradient norm is not finite.
    NonFinite {
        /// Dense layer position.
        layer: usize,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Vanishing {
                layer,
                grad_norm,
                last,
            } => write!(
                f,
                "vanishing gradient: layer {layer} gradient norm {grad_norm:.3e} is below 1e-5 x \
                 the last layer's ({last:.3e})"
            ),
            Warning::Exploding { layer, growth } => write!(
                f,
                "exploding gradient: layer {layer} gradient norm grew {growth:.1}x in one epoch"
            ),
            Warning::NonFinite { layer } => {
                write!(
                    f,
                    "exploding gradient: layer {layer} gradient norm is not finite"
                )
            }
        }
    }
}

/// Vanishing gradients (a layer's norm `< 1e-5 ×` the last dense layer's) and exploding ones
/// (non-finite, or `> 10×` the same layer's norm in `prev`). No absolute threshold: a converged
/// network has tiny gradients everywhere.
pub fn warnings(prev: Option<&[LayerDiagnostics]>, cur: &[LayerDiagnostics]) -> Vec<Warning> {
    let mut out = Vec::new();
    let last = cur.last().map_or(f64::NAN, |d| d.grad_norm);
    for d in cur {
        if !d.grad_norm.is_finite() {
            out.push(Warning::NonFinite { layer: d.layer });
            continue;
        }
        if last.is_finite() && last > 0.0 && d.grad_norm < 1e-5 * last {
            out.push(Warning::Vanishing {
                layer: d.layer,
                grad_norm: d.grad_norm,
                last,
            });
        }
        if let Some(p) = prev.and_then(|p| p.iter().find(|p| p.layer == d.layer)) {
            if p.grad_norm > 0.0 && d.grad_norm > 10.0 * p.grad_norm {
                out.push(Warning::Exploding {
                    layer: d.layer,
                    growth: d.grad_norm / p.grad_norm,
                });
            }
        }
    }
    out
}

/// One compact line: gradient-norm range over layers, update ratios, largest dead fraction.
pub fn summary(d: &[LayerDiagnostics]) -> String {
    let Some(first) = d.first() else {
        return String::new();
    };
    let by = |key: fn(&LayerDiagnostics) -> f64, max: bool| {
        d.iter().fold(first, |m, x| {
            let (a, b) = (key(x), key(m));
            if (max && a > b) || (!max && a < b) {
                x
            } else {
                m
            }
        })
    };
    let gmin = by(|x| x.grad_norm, false);
    let gmax = by(|x| x.grad_norm, true);
    let rmax = by(|x| x.update_ratio, true);
    let mut s = format!(
        "grad norm {:.2e} (layer {}) .. {:.2e} (layer {})",
        gmin.grad_norm, gmin.layer, gmax.grad_norm, gmax.layer
    );
    if rmax.update_ratio > 0.0 {
        s.push_str(&format!(
            ", max update/weight {:.2e} (layer {})",
            rmax.update_ratio, rmax.layer
        ));
    }
    if let Some(dd) = d
        .iter()
        .filter(|x| x.dead_fraction.is_some())
        .max_by(|a, b| {
            let f = |x: &LayerDiagnostics| {
                x.dead_fraction
                    .filter(|v| v.is_finite())
                    .unwrap_or(f64::NEG_INFINITY)
            };
            f(a).total_cmp(&f(b))
        })
    {
        s.push_str(&format!(
            ", dead units {:.1}% (layer {})",
            100.0 * dd.dead_fraction.unwrap_or(0.0),
            dd.layer
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let mut v: Vec<f32> = (0..101).rev().map(|i| i as f32).collect();
        assert_eq!(
            percentiles(&mut v, &[15.0, 50.0, 85.0]),
            vec![15.0, 50.0, 85.0]
        );
        let mut w = vec![1.0f32, 2.0, 3.0, 4.0];
        // numpy.percentile([1,2,3,4], [15, 50, 85]) = [1.45, 2.5, 3.55]
        let p = percentiles(&mut w, &[15.0, 50.0, 85.0]);
        for (a, b) in p.iter().zip([1.45, 2.5, 3.55]) {
            assert!((a - b).abs() < 1e-6, "{p:?}");
        }
        assert!(percentiles(&mut [], &[50.0])[0].is_nan());
    }

    #[test]
    fn the_summary_takes_any_float() {
        let d = |layer, dead| LayerDiagnostics {
            layer,
            grad_norm: f64::NAN,
            weight_norm: 1.0,
            update_ratio: f64::NAN,
            dead_fraction: Some(dead),
            act_mean: 0.0,
            act_std: 0.0,
            act_p15: 0.0,
            act_p50: 0.0,
            act_p85: 0.0,
            unit0_input_p15: 0.0,
            unit0_input_p50: 0.0,
            unit0_input_p85: 0.0,
        };
        // Comparing a NaN with partial_cmp(..).unwrap() panicked.
        let s = summary(&[d(0, f64::NAN), d(2, 0.25)]);
        assert!(s.contains("dead units 25.0% (layer 2)"), "{s}");
    }

    #[test]
    fn dead_fraction_counts_units_never_positive() {
        // 3 units x 2 rows: unit 0 positive once, unit 1 never, unit 2 zero and negative.
        let pre = [1.0, -1.0, 0.0, -2.0, -3.0, -0.5];
        assert!((dead_fraction(&pre, 3) - 2.0 / 3.0).abs() < 1e-12);
    }
}

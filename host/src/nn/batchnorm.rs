//! Batch normalisation, training and evaluation mode (PyTorch's `BatchNorm1d` semantics; see
//! [`crate::model::BatchNorm1d`]).
//!
//! Shapes: input and output `[batch, features]`; statistics per feature (column).
//!
//! Training mode: `mean = Σx/n`, `var = Σ(x-mean)²/n` (biased, used to normalise),
//! `x̂ = (x-mean)/sqrt(var+eps)`, `y = γ x̂ + β`; then `running_mean ← (1-m) running_mean + m
//! mean` and `running_var ← (1-m) running_var + m var n/(n-1)` (unbiased, as PyTorch), and
//! `num_batches_tracked += 1`. Statistics are accumulated in `f64`.

#![allow(clippy::needless_range_loop)] // per-feature loops index several arrays at once

use crate::model::BatchNorm1d;

/// Values kept from the training forward pass for the backward pass.
#[derive(Clone, Debug, Default)]
pub struct BnCache {
    /// Normalised inputs `x̂`, `[batch, features]`.
    pub xhat: Vec<f32>,
    /// `1 / sqrt(var + eps)` per feature.
    pub inv_std: Vec<f32>,
    /// Batch mean per feature (`f64` accumulator).
    mean: Vec<f64>,
    /// Batch variance per feature (`f64` accumulator).
    var: Vec<f64>,
    /// Batch mean per feature, rounded to `f32`.
    mean_f32: Vec<f32>,
}

impl BnCache {
    /// Buffers for up to `max_batch` rows.
    pub fn new(max_batch: usize, features: usize) -> Self {
        Self {
            xhat: vec![0.0; max_batch * features],
            inv_std: vec![0.0; features],
            mean: vec![0.0; features],
            var: vec![0.0; features],
            mean_f32: vec![0.0; features],
        }
    }
}

/// Training-mode forward; updates the running statistics.
pub fn forward_train(
    bn: &mut BatchNorm1d,
    x: &[f32],
    y: &mut [f32],
    batch: usize,
    cache: &mut BnCache,
) {
    let f = bn.features;
    let mean = &mut cache.mean;
    mean.iter_mut().for_each(|m| *m = 0.0);
    for row in x[..batch * f].chunks_exact(f) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64;
        }
    }
    let n = batch as f64;
    mean.iter_mut().for_each(|m| *m /= n);
    let var = &mut cache.var;
    var.iter_mut().for_each(|v| *v = 0.0);
    for row in x[..batch * f].chunks_exact(f) {
        for ((s, &v), m) in var.iter_mut().zip(row).zip(mean.iter()) {
            let d = v as f64 - m;
            *s += d * d;
        }
    }
    var.iter_mut().for_each(|v| *v /= n);
    for j in 0..f {
        cache.inv_std[j] = (1.0 / (var[j] + bn.eps as f64).sqrt()) as f32;
    }
    let meanf = &mut cache.mean_f32;
    meanf
        .iter_mut()
        .zip(mean.iter())
        .for_each(|(a, &m)| *a = m as f32);
    for ((xr, yr), hr) in x[..batch * f]
        .chunks_exact(f)
        .zip(y[..batch * f].chunks_exact_mut(f))
        .zip(cache.xhat[..batch * f].chunks_exact_mut(f))
    {
        for j in 0..f {
            let h = (xr[j] - meanf[j]) * cache.inv_std[j];
            hr[j] = h;
            yr[j] = bn.weight[j] * h + bn.bias[j];
        }
    }
    let m = bn.momentum;
    let unbias = if batch > 1 { n / (n - 1.0) } else { 1.0 };
    for j in 0..f {
        bn.running_mean[j] = (1.0 - m) * bn.running_mean[j] + m * mean[j] as f32;
        bn.running_var[j] = (1.0 - m) * bn.running_var[j] + m * (var[j] * unbias) as f32;
    }
    bn.num_batches_tracked += 1;
}

/// Evaluation-mode forward with the running statistics.
pub fn forward_eval(bn: &BatchNorm1d, x: &[f32], y: &mut [f32]) {
    let f = bn.features;
    let inv: Vec<f32> = bn
        .running_var
        .iter()
        .map(|v| 1.0 / (v + bn.eps).sqrt())
        .collect();
    for (xr, yr) in x.chunks_exact(f).zip(y.chunks_exact_mut(f)) {
        for j in 0..f {
            yr[j] = (xr[j] - bn.running_mean[j]) * inv[j] * bn.weight[j] + bn.bias[j];
        }
    }
}

/// Training-mode backward: parameter gradients (overwritten) and, if asked, the input gradient
/// `dx = γ inv_std / n (n dy - Σdy - x̂ Σ(dy x̂))`.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    bn: &BatchNorm1d,
    cache: &BnCache,
    dy: &[f32],
    dx: Option<&mut [f32]>,
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    batch: usize,
) {
    let f = bn.features;
    dgamma.iter_mut().for_each(|v| *v = 0.0);
    dbeta.iter_mut().for_each(|v| *v = 0.0);
    for (dr, hr) in dy[..batch * f]
        .chunks_exact(f)
        .zip(cache.xhat.chunks_exact(f))
    {
        for j in 0..f {
            dgamma[j] += dr[j] * hr[j];
            dbeta[j] += dr[j];
        }
    }
    if let Some(dx) = dx {
        let n = batch as f32;
        for ((dxr, dr), hr) in dx[..batch * f]
            .chunks_exact_mut(f)
            .zip(dy.chunks_exact(f))
            .zip(cache.xhat.chunks_exact(f))
        {
            for j in 0..f {
                let k = bn.weight[j] * cache.inv_std[j] / n;
                dxr[j] = k * (n * dr[j] - dbeta[j] - hr[j] * dgamma[j]);
            }
        }
    }
}

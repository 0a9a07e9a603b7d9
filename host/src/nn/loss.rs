//! Losses on the network outputs `[batch, classes]`, averaged over the batch.

use serde::{Deserialize, Serialize};

/// The training loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Softmax fused with cross-entropy on logits: `mean_b(logsumexp(z_b) - z_b[y_b])`;
    /// gradient `(softmax(z) - onehot(y)) / batch`.
    #[default]
    CrossEntropy,
    /// Mean squared error against one-hot targets, averaged over batch and classes like
    /// PyTorch's `MSELoss`: `Σ (z - t)² / (batch · classes)`.
    Mse,
}

/// Loss value (summed over the batch, in `f64`, *not* averaged: divide by the batch size) and
/// the gradient of the *mean* loss with respect to `z`, written into `dz`. Also returns the
/// number of rows whose argmax equals the label.
pub fn loss_and_grad(
    loss: Loss,
    z: &[f32],
    labels: &[u32],
    classes: usize,
    dz: &mut [f32],
) -> (f64, usize) {
    let batch = labels.len();
    let inv_b = 1.0 / batch as f32;
    let mut total = 0.0f64;
    let mut correct = 0usize;
    for ((zr, dr), &y) in z
        .chunks_exact(classes)
        .zip(dz.chunks_exact_mut(classes))
        .zip(labels)
    {
        let y = y as usize;
        if microdnn::argmax(zr) == y {
            correct += 1;
        }
        match loss {
            Loss::CrossEntropy => {
                let max = zr.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0f32;
                for (d, &v) in dr.iter_mut().zip(zr) {
                    let e = microdnn::math::exp(v - max);
                    *d = e;
                    sum += e;
                }
                total += (sum as f64).ln() + (max - zr[y]) as f64;
                let k = inv_b / sum;
                dr.iter_mut().for_each(|d| *d *= k);
                dr[y] -= inv_b;
            }
            Loss::Mse => {
                let k = 2.0 / (batch * classes) as f32;
                let mut s = 0.0f64;
                for (c, (d, &v)) in dr.iter_mut().zip(zr).enumerate() {
                    let t = if c == y { 1.0 } else { 0.0 };
                    let e = v - t;
                    s += (e as f64) * (e as f64);
                    *d = k * e;
                }
                total += s / classes as f64;
            }
        }
    }
    (total, correct)
}

/// Loss (summed over rows) and correct count without a gradient (evaluation).
pub fn loss_only(loss: Loss, z: &[f32], labels: &[u32], classes: usize) -> (f64, usize) {
    let mut total = 0.0f64;
    let mut correct = 0usize;
    for (zr, &y) in z.chunks_exact(classes).zip(labels) {
        let y = y as usize;
        if microdnn::argmax(zr) == y {
            correct += 1;
        }
        match loss {
            Loss::CrossEntropy => {
                let max = zr.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f64 = zr
                    .iter()
                    .map(|&v| microdnn::math::exp(v - max) as f64)
                    .sum();
                total += sum.ln() + (max - zr[y]) as f64;
            }
            Loss::Mse => {
                let s: f64 = zr
                    .iter()
                    .enumerate()
                    .map(|(c, &v)| {
                        let e = v as f64 - if c == y { 1.0 } else { 0.0 };
                        e * e
                    })
                    .sum();
                total += s / classes as f64;
            }
        }
    }
    (total, correct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_is_stable_for_huge_logits() {
        let z = [1000.0f32, 0.0, -1000.0];
        let mut dz = [0.0; 3];
        let (l, c) = loss_and_grad(Loss::CrossEntropy, &z, &[0], 3, &mut dz);
        assert!(l.abs() < 1e-6 && c == 1);
        let (l, _) = loss_and_grad(Loss::CrossEntropy, &z, &[2], 3, &mut dz);
        assert!((l - 2000.0).abs() < 1e-3, "{l}");
        assert!(dz.iter().all(|d| d.is_finite()));
        // Uniform logits: loss ln(3).
        let (l, _) = loss_only(Loss::CrossEntropy, &[0.0; 3], &[1], 3);
        assert!((l - 3f64.ln()).abs() < 1e-6);
    }

    #[test]
    fn the_predicted_class_follows_the_cores_nan_rule() {
        // A NaN output is never the prediction (core::argmax); ties go to the first index.
        let z = [f32::NAN, 2.0, 2.0, f32::NAN, 0.5, 3.0];
        let (_, correct) = loss_only(Loss::Mse, &z, &[1, 2], 3);
        assert_eq!(correct, 2);
        let mut dz = [0.0; 6];
        let (_, correct) = loss_and_grad(Loss::Mse, &z, &[0, 1], 3, &mut dz);
        assert_eq!(correct, 0);
    }
}

//! The input transform `x' = x * scale + offset`, per input feature, fitted on the training split
//! and saved with the model so that the device applies exactly the same one.

use serde::{Deserialize, Serialize};

use super::Dataset;

/// Per-input affine transform `x'[i] = x[i] * scale[i] + offset[i]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputTransform {
    /// Multipliers, one per input.
    pub scale: Vec<f32>,
    /// Offsets, one per input (added after scaling).
    pub offset: Vec<f32>,
}

impl InputTransform {
    /// The identity on `features` inputs.
    pub fn identity(features: usize) -> Self {
        Self {
            scale: vec![1.0; features],
            offset: vec![0.0; features],
        }
    }

    /// Divides every input by `max` (e.g. 16 for the UCI digits, 255 for MNIST).
    pub fn scale_by_max(features: usize, max: f32) -> Self {
        Self {
            scale: vec![1.0 / max; features],
            offset: vec![0.0; features],
        }
    }

    /// Standardisation fitted on `data`: `scale = 1/std`, `offset = -mean/std` (population std,
    /// computed in `f64`); a constant input (std 0) gets scale 1 and offset `-mean`.
    pub fn standardize(data: &Dataset) -> Self {
        let f = data.features;
        let n = data.len().max(1) as f64;
        let mut mean = vec![0.0f64; f];
        for i in 0..data.len() {
            for (m, &v) in mean.iter_mut().zip(data.row(i)) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0f64; f];
        for i in 0..data.len() {
            for ((s, &v), m) in var.iter_mut().zip(data.row(i)).zip(&mean) {
                *s += (v as f64 - m).powi(2);
            }
        }
        let (mut scale, mut offset) = (Vec::with_capacity(f), Vec::with_capacity(f));
        for (m, v) in mean.iter().zip(&var) {
            let std = (v / n).sqrt();
            let s = if std > 1e-12 { 1.0 / std } else { 1.0 };
            scale.push(s as f32);
            offset.push((-m * s) as f32);
        }
        Self { scale, offset }
    }

    /// Number of inputs.
    pub fn features(&self) -> usize {
        self.scale.len()
    }

    /// Applies the transform to one example in place.
    pub fn apply_row(&self, x: &mut [f32]) {
        for ((v, s), o) in x.iter_mut().zip(&self.scale).zip(&self.offset) {
            *v = *v * s + o;
        }
    }

    /// Applies the transform to every example of `data`.
    pub fn apply(&self, data: &mut Dataset) {
        let f = data.features;
        data.x.chunks_exact_mut(f).for_each(|r| self.apply_row(r));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardize_gives_zero_mean_unit_std_and_handles_constants() {
        let d = Dataset {
            features: 2,
            classes: 1,
            x: vec![1.0, 5.0, 3.0, 5.0, 5.0, 5.0],
            y: vec![0, 0, 0],
        };
        let t = InputTransform::standardize(&d);
        let mut e = d.clone();
        t.apply(&mut e);
        let col0: Vec<f32> = (0..3).map(|i| e.row(i)[0]).collect();
        let m: f32 = col0.iter().sum::<f32>() / 3.0;
        let v: f32 = col0.iter().map(|x| (x - m) * (x - m)).sum::<f32>() / 3.0;
        assert!(m.abs() < 1e-6 && (v - 1.0).abs() < 1e-5);
        assert_eq!(t.scale[1], 1.0);
        assert!((0..3).all(|i| e.row(i)[1] == 0.0));
        let s = InputTransform::scale_by_max(2, 16.0);
        let mut r = [16.0, 8.0];
        s.apply_row(&mut r);
        assert_eq!(r, [1.0, 0.5]);
    }
}

//! Batch normalisation at inference: a per-unit affine map.

use crate::Error;

/// Batch normalisation for inference over `N` units: `y = x * scale + shift`.
///
/// Built from the trained parameters with [`BatchNorm::from_stats`], using the same definition
/// as PyTorch's `BatchNorm1d` in evaluation mode:
///
/// ```text
/// y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta
///   = x * scale + shift,   scale = gamma / sqrt(running_var + eps),   shift = beta - running_mean * scale
/// ```
///
/// (`running_var` is the running average of the *unbiased* batch variance, as PyTorch keeps it.)
/// A batch norm that follows a dense layer can be folded into it ([`BatchNorm::fold_into`]), which
/// is what the exporter does: the device then runs no batch-norm code at all.
///
/// ```
/// use microdnn::BatchNorm;
/// let bn = BatchNorm::from_stats(&[2.0, 1.0], &[0.5, 0.0], &[1.0, -1.0], &[3.0, 0.0], 1.0).unwrap();
/// let mut y = [3.0, 0.0];
/// bn.apply(&mut y);
/// assert_eq!(y, [2.5, 1.0]); // 2*(3-1)/2+0.5, 1*(0+1)/1+0
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BatchNorm<const N: usize> {
    /// Per-unit multiplier.
    pub scale: [f32; N],
    /// Per-unit offset, added after scaling.
    pub shift: [f32; N],
}

impl<const N: usize> BatchNorm<N> {
    /// The per-unit affine map of a trained batch norm; [`Error::InvalidBatchNorm`] names the
    /// first unit whose `var + eps` is not positive and finite or whose scale/shift is not
    /// finite.
    pub fn from_stats(
        gamma: &[f32; N],
        beta: &[f32; N],
        running_mean: &[f32; N],
        running_var: &[f32; N],
        eps: f32,
    ) -> Result<Self, Error> {
        let mut bn = BatchNorm {
            scale: [0.0; N],
            shift: [0.0; N],
        };
        fold_stats(
            gamma,
            beta,
            running_mean,
            running_var,
            eps,
            &mut bn.scale,
            &mut bn.shift,
        )?;
        Ok(bn)
    }

    /// `y = y * scale + shift`, in place.
    pub fn apply(&self, y: &mut [f32; N]) {
        for ((y, s), t) in y.iter_mut().zip(&self.scale).zip(&self.shift) {
            *y = *y * s + t;
        }
    }

    /// Folds this batch norm into the dense layer before it, given in **row-major** form
    /// (`rows[o]` = incoming weights of unit `o`): `rows[o] *= scale[o]`,
    /// `bias[o] = bias[o] * scale[o] + shift[o]`. The folded layer computes the same function
    /// up to rounding.
    pub fn fold_into<const I: usize>(&self, rows: &mut [[f32; I]; N], bias: &mut [f32; N]) {
        for (((row, b), s), t) in rows.iter_mut().zip(bias).zip(&self.scale).zip(&self.shift) {
            fold_unit(*s, *t, row, b);
        }
    }
}

/// Computes `scale` and `shift` from batch-norm statistics (slice form of
/// [`BatchNorm::from_stats`], for callers whose sizes are known only at run time).
pub fn fold_stats(
    gamma: &[f32],
    beta: &[f32],
    running_mean: &[f32],
    running_var: &[f32],
    eps: f32,
    scale: &mut [f32],
    shift: &mut [f32],
) -> Result<(), Error> {
    let n = scale.len();
    for (what, len) in [
        ("gamma", gamma.len()),
        ("beta", beta.len()),
        ("running_mean", running_mean.len()),
        ("running_var", running_var.len()),
        ("shift", shift.len()),
    ] {
        if len != n {
            return Err(Error::Shape {
                what,
                expected: n,
                found: len,
            });
        }
    }
    for (unit, (((((g, b), m), v), sc), sh)) in gamma
        .iter()
        .zip(beta)
        .zip(running_mean)
        .zip(running_var)
        .zip(scale.iter_mut())
        .zip(shift.iter_mut())
        .enumerate()
    {
        let d = v + eps;
        if !(d > 0.0 && d.is_finite()) {
            return Err(Error::InvalidBatchNorm { unit });
        }
        let s = g / libm::sqrtf(d);
        let t = b - m * s;
        if !(s.is_finite() && t.is_finite()) {
            return Err(Error::InvalidBatchNorm { unit });
        }
        *sc = s;
        *sh = t;
    }
    Ok(())
}

/// Folds a per-unit affine map into row-major dense weights and bias (slice form of
/// [`BatchNorm::fold_into`]): `rows` holds `scale.len()` rows of equal length.
///
/// Fails with [`Error::Shape`], before changing anything, unless `shift` and `bias` have
/// `scale.len()` entries and `rows` a whole number of entries per unit.
pub fn fold_into_slices(
    scale: &[f32],
    shift: &[f32],
    rows: &mut [f32],
    bias: &mut [f32],
) -> Result<(), Error> {
    let n = scale.len();
    for (what, len) in [("shift", shift.len()), ("bias", bias.len())] {
        if len != n {
            return Err(Error::Shape {
                what,
                expected: n,
                found: len,
            });
        }
    }
    let inputs = rows.len().checked_div(n).unwrap_or(0);
    let whole = inputs.saturating_mul(n);
    if whole != rows.len() {
        return Err(Error::Shape {
            what: "rows (scale.len() rows of equal length)",
            expected: whole,
            found: rows.len(),
        });
    }
    if inputs == 0 {
        // No weights: only the bias changes.
        for ((b, s), t) in bias.iter_mut().zip(scale).zip(shift) {
            fold_unit(*s, *t, &mut [], b);
        }
        return Ok(());
    }
    for (((row, b), s), t) in rows.chunks_mut(inputs).zip(bias).zip(scale).zip(shift) {
        fold_unit(*s, *t, row, b);
    }
    Ok(())
}

/// `row *= s; b = b * s + t` for one unit.
fn fold_unit(s: f32, t: f32, row: &mut [f32], b: &mut f32) {
    row.iter_mut().for_each(|w| *w *= s);
    *b = *b * s + t;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{kernel, Dense, Rng};

    #[test]
    fn matches_the_pytorch_formula() {
        let (g, b, m, v, eps) = ([1.5f32, -0.5], [0.1, 0.2], [0.3, -2.0], [0.04, 9.0], 1e-5);
        let bn = BatchNorm::from_stats(&g, &b, &m, &v, eps).unwrap();
        let x = [1.0f32, -1.0];
        let mut y = x;
        bn.apply(&mut y);
        for i in 0..2 {
            let r = g[i] as f64 * (x[i] as f64 - m[i] as f64) / (v[i] as f64 + eps as f64).sqrt()
                + b[i] as f64;
            assert!((y[i] as f64 - r).abs() < 1e-5, "{} vs {r}", y[i]);
        }
    }

    #[test]
    fn rejects_invalid_statistics() {
        let one = [1.0f32; 3];
        let var = [1.0, -1.0, 1.0];
        assert_eq!(
            BatchNorm::from_stats(&one, &one, &one, &var, 1e-5),
            Err(Error::InvalidBatchNorm { unit: 1 })
        );
        let var = [1.0, 1.0, f32::INFINITY];
        assert_eq!(
            BatchNorm::from_stats(&one, &one, &one, &var, 1e-5),
            Err(Error::InvalidBatchNorm { unit: 2 })
        );
        assert!(BatchNorm::from_stats(&one, &one, &one, &[0.0; 3], 0.0).is_err());
        let mut s = [0.0; 3];
        let mut t = [0.0; 2];
        assert!(matches!(
            fold_stats(&one, &one, &one, &one, 1e-5, &mut s, &mut t),
            Err(Error::Shape { what: "shift", .. })
        ));
    }

    #[test]
    fn fold_into_slices_checks_every_length_before_writing() {
        let (scale, shift) = ([2.0f32, 3.0], [0.5f32, -0.5]);
        // 2 units x 3 inputs, then one weight too many: it used to stay unscaled silently.
        let mut rows = [1.0f32; 7];
        let mut bias = [1.0f32; 2];
        assert_eq!(
            fold_into_slices(&scale, &shift, &mut rows, &mut bias),
            Err(Error::Shape {
                what: "rows (scale.len() rows of equal length)",
                expected: 6,
                found: 7
            })
        );
        assert_eq!((rows, bias), ([1.0; 7], [1.0; 2]), "nothing changed");
        assert!(matches!(
            fold_into_slices(&scale, &shift[..1], &mut rows[..6], &mut bias),
            Err(Error::Shape { what: "shift", .. })
        ));
        assert!(matches!(
            fold_into_slices(&scale, &shift, &mut rows[..6], &mut bias[..1]),
            Err(Error::Shape { what: "bias", .. })
        ));
        assert!(fold_into_slices(&[], &[], &mut rows, &mut []).is_err());
        // The hand-computed fold: row 0 x 2, row 1 x 3; bias 1*2+0.5, 1*3-0.5.
        fold_into_slices(&scale, &shift, &mut rows[..6], &mut bias).unwrap();
        assert_eq!(rows[..6], [2.0, 2.0, 2.0, 3.0, 3.0, 3.0]);
        assert_eq!(bias, [2.5, 2.5]);
        // Units without inputs: the bias still folds.
        let mut bias = [1.0f32; 2];
        fold_into_slices(&scale, &shift, &mut [], &mut bias).unwrap();
        assert_eq!(bias, [2.5, 2.5]);
    }

    #[test]
    fn folding_into_dense_is_equivalent() {
        const I: usize = 9;
        const N: usize = 6;
        let mut rng = Rng::new(11);
        let mut rows = [[0.0f32; I]; N];
        rows.as_flattened_mut()
            .iter_mut()
            .for_each(|w| *w = rng.uniform(-1.0, 1.0));
        let mut bias: [f32; N] = core::array::from_fn(|_| rng.uniform(-0.5, 0.5));
        let stat =
            |rng: &mut Rng, lo, hi| -> [f32; N] { core::array::from_fn(|_| rng.uniform(lo, hi)) };
        let (g, b, m, v) = (
            stat(&mut rng, 0.5, 2.0),
            stat(&mut rng, -1.0, 1.0),
            stat(&mut rng, -1.0, 1.0),
            stat(&mut rng, 0.1, 3.0),
        );
        let bn = BatchNorm::from_stats(&g, &b, &m, &v, 1e-5).unwrap();
        let x: [f32; I] = core::array::from_fn(|_| rng.uniform(-2.0, 2.0));

        // Unfolded: dense, then batch norm.
        let mut packed = [[0.0f32; I]; N];
        kernel::pack(rows.as_flattened(), I, N, packed.as_flattened_mut()).unwrap();
        let mut y1 = [0.0; N];
        Dense::new(&packed, &bias).forward(&x, &mut y1);
        bn.apply(&mut y1);

        // Folded.
        bn.fold_into(&mut rows, &mut bias);
        kernel::pack(rows.as_flattened(), I, N, packed.as_flattened_mut()).unwrap();
        let mut y2 = [0.0; N];
        Dense::new(&packed, &bias).forward(&x, &mut y2);

        for o in 0..N {
            // Both are within gamma(k) * (|s| sum|w x| + |s b| + |t|) of the exact value, plus the
            // rounding of the scale multiplications (a few ulps of each term).
            let mag = bn.scale[o].abs() as f64
                * (rows[o]
                    .iter()
                    .zip(&x)
                    .map(|(w, x)| (*w * *x).abs() as f64)
                    .sum::<f64>()
                    / bn.scale[o].abs() as f64
                    + bias[o].abs() as f64)
                + bn.shift[o].abs() as f64
                + y1[o].abs() as f64;
            let tol = (2.0 * kernel::error_bound(I) + 4.0 * f32::EPSILON as f64) * mag;
            assert!(
                ((y1[o] - y2[o]) as f64).abs() <= tol,
                "unit {o}: {} vs {}",
                y1[o],
                y2[o]
            );
        }
    }
}

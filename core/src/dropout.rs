//! Dropout at inference: the identity, plus an opt-in Monte-Carlo mode.
//!
//! The trainer uses *inverted* dropout: during training each unit is kept with probability
//! `1 - rate` and scaled by `1 / (1 - rate)`, so the expected activation is unchanged and
//! inference needs no rescaling. [`Dropout`] is therefore a zero-sized no-op.
//!
//! Monte-Carlo dropout (Gal and Ghahramani, 2016) keeps dropout on at inference and runs `K`
//! stochastic passes; the spread of the outputs estimates the model's uncertainty.
//! [`McDropout`] draws its masks from a caller-seeded [`Rng`], so runs are reproducible, and
//! [`crate::mc_predict`] runs the passes and reports the mean and standard deviation.

use crate::{Error, Rng};

/// Dropout at inference: the identity (zero-sized, costs nothing).
///
/// ```
/// use microdnn::Dropout;
/// assert_eq!(core::mem::size_of::<Dropout>(), 0);
/// let mut y = [1.0, -2.0];
/// Dropout.apply(&mut y);
/// assert_eq!(y, [1.0, -2.0]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Dropout;

impl Dropout {
    /// Leaves `y` unchanged (inverted dropout needs no rescaling at inference).
    #[inline(always)]
    pub fn apply(&self, _y: &mut [f32]) {}
}

/// Dropout kept on at inference, for Monte-Carlo uncertainty estimates.
///
/// Each unit is kept with probability `1 - rate` (and scaled by `1 / (1 - rate)`, as in
/// training) or set to zero.
///
/// ```
/// use microdnn::{McDropout, Rng};
/// let d = McDropout::new(0.5).unwrap();
/// let mut rng = Rng::new(1);
/// let mut y = [1.0f32; 1000];
/// d.apply(&mut y, &mut rng);
/// assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct McDropout {
    /// A unit is kept when a uniform `u32` is below this threshold.
    keep_below: u32,
    scale: f32,
    active: bool,
}

impl McDropout {
    /// Dropout with the given rate; [`Error::InvalidDropoutRate`] unless `0 <= rate < 1`.
    /// A rate of 0 is valid and leaves every unit unchanged.
    pub fn new(rate: f32) -> Result<Self, Error> {
        if !(0.0..1.0).contains(&rate) {
            return Err(Error::InvalidDropoutRate);
        }
        let keep = 1.0 - rate as f64;
        // keep * 2^32, saturating just below 2^32 for keep ~ 1.
        let t = keep * 4_294_967_296.0;
        let keep_below = if t >= 4_294_967_295.0 {
            u32::MAX
        } else {
            t as u32
        };
        Ok(McDropout {
            keep_below,
            scale: (1.0 / keep) as f32,
            active: rate > 0.0,
        })
    }

    /// Zeroes each unit with probability `rate` and scales the others by `1 / (1 - rate)`.
    pub fn apply(&self, y: &mut [f32], rng: &mut Rng) {
        if !self.active {
            return;
        }
        for v in y.iter_mut() {
            *v = if rng.next_u32() < self.keep_below {
                *v * self.scale
            } else {
                0.0
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_validation() {
        assert!(McDropout::new(-0.1).is_err());
        assert!(McDropout::new(1.0).is_err());
        assert!(McDropout::new(f32::NAN).is_err());
        let zero = McDropout::new(0.0).unwrap();
        let mut y = [3.0f32; 8];
        zero.apply(&mut y, &mut Rng::new(0));
        assert_eq!(y, [3.0; 8]);
    }

    #[test]
    fn keeps_the_expected_fraction_and_preserves_the_mean() {
        let d = McDropout::new(0.3).unwrap();
        let mut rng = Rng::new(5);
        let mut y = [1.0f32; 20_000];
        d.apply(&mut y, &mut rng);
        let kept = y.iter().filter(|&&v| v != 0.0).count() as f64 / y.len() as f64;
        // Binomial standard deviation sqrt(0.21/20000) ~ 0.0032: allow 5 sigma.
        assert!((kept - 0.7).abs() < 0.017, "{kept}");
        let mean = y.iter().map(|&v| v as f64).sum::<f64>() / y.len() as f64;
        assert!((mean - 1.0).abs() < 0.025, "{mean}");
    }
}

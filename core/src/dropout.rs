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
/// training) or set to zero. The mask convention is the one the trainer (`microdnn-host`) draws
/// its dropout and DropConnect masks with, through [`McDropout::multiplier`]: one uniform 32-bit
/// word per unit, the unit dropped when the word is below `rate · 2³²`, kept units scaled by
/// `1 / (1 - rate)` computed in `f32`.
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
    /// A unit is dropped when its uniform `u32` is below this threshold (`rate · 2³²`).
    drop_below: u32,
    /// `1 / (1 - rate)`, in `f32`.
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
        // rate * 2^32 < 2^32 for rate < 1; `as` saturates at u32::MAX all the same.
        let drop_below = ((rate as f64) * 4_294_967_296.0).min(u32::MAX as f64) as u32;
        Ok(McDropout {
            drop_below,
            scale: 1.0 / (1.0 - rate),
            active: rate > 0.0,
        })
    }

    /// The multiplier of a unit whose random word is `word`: `0` (dropped, `word < rate · 2³²`)
    /// or `1 / (1 - rate)` (kept). With rate 0 every unit is kept with multiplier 1.
    ///
    /// ```
    /// use microdnn::McDropout;
    /// let d = McDropout::new(0.25).unwrap();
    /// assert_eq!(d.multiplier((1 << 30) - 1), 0.0); // below 0.25 · 2³²: dropped
    /// assert_eq!(d.multiplier(1 << 30), 1.0 / 0.75);
    /// assert_eq!(McDropout::new(0.0).unwrap().multiplier(0), 1.0);
    /// ```
    #[inline]
    pub fn multiplier(&self, word: u32) -> f32 {
        if word >= self.drop_below {
            self.scale
        } else {
            0.0
        }
    }

    /// Zeroes each unit with probability `rate` and scales the others by `1 / (1 - rate)`.
    pub fn apply(&self, y: &mut [f32], rng: &mut Rng) {
        if !self.active {
            return;
        }
        for v in y.iter_mut() {
            *v = if rng.next_u32() >= self.drop_below {
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

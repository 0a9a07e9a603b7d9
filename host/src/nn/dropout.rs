//! Inverted dropout and DropConnect masks.
//!
//! A mask holds multipliers: `0` for a dropped unit (or weight) and `1/(1-p)` for a kept one, so
//! masking and rescaling are one multiplication (training); evaluation is the identity. The
//! convention is the core's ([`microdnn::McDropout::multiplier`], shared with Monte-Carlo dropout
//! on the device): one 32-bit random word per element, drawn in order from the run's seeded
//! generator, the element dropped when the word is below `p · 2³²`.

use microdnn::McDropout;
use rand::Rng;

use crate::random::TrainRng;

/// Fills `mask` with `0` (probability `rate`) or `1/(1-rate)`. A rate of 0 fills ones without
/// drawing. Rates outside `[0, 1)` are rejected where networks are made (`ModelConfig::build`,
/// `Sequential::validate`); here they leave the input unchanged (ones, no draws).
pub fn fill_mask(mask: &mut [f32], rate: f32, rng: &mut TrainRng) {
    match McDropout::new(rate) {
        Ok(d) if rate > 0.0 => mask
            .iter_mut()
            .for_each(|m| *m = d.multiplier(rng.next_u32())),
        _ => mask.iter_mut().for_each(|m| *m = 1.0),
    }
}

/// `y = x * mask` (training forward of dropout, and its backward `dx = dy * mask`).
pub fn apply_mask(x: &[f32], mask: &[f32], y: &mut [f32]) {
    for ((y, &x), &m) in y.iter_mut().zip(x).zip(mask) {
        *y = x * m;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::rng_for;

    #[test]
    fn mask_keeps_the_expected_share_and_preserves_the_mean() {
        let mut m = vec![0.0; 100_000];
        fill_mask(&mut m, 0.3, &mut rng_for(3, 0));
        let kept = m.iter().filter(|&&v| v > 0.0).count() as f64 / m.len() as f64;
        assert!((kept - 0.7).abs() < 0.01, "{kept}");
        let mean = m.iter().map(|&v| v as f64).sum::<f64>() / m.len() as f64;
        assert!((mean - 1.0).abs() < 0.02, "{mean}");
        fill_mask(&mut m, 0.0, &mut rng_for(3, 0));
        assert!(m.iter().all(|&v| v == 1.0));
    }
}

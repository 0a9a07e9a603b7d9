//! Dropout and DropConnect masks, and the two parameterisations of dropout.
//!
//! A mask holds multipliers: `0` for a dropped unit (or weight) and `1/(1-p)` for a kept one, so
//! masking and rescaling are one multiplication (training); evaluation is the identity. The
//! convention is the core's ([`microdnn::McDropout::multiplier`], shared with Monte-Carlo dropout
//! on the device): one 32-bit random word per element, drawn in order from the run's seeded
//! generator, the element dropped when the word is below `p · 2³²`.
//!
//! **Inverted and classic dropout** ([`DropoutKind`]). With keep probability `q = 1 − p`,
//! inverted dropout (the default, PyTorch's) multiplies kept units by `1/q` in training and does
//! nothing at test time; classic dropout (Hinton et al. 2012, Srivastava et al. 2014) keeps
//! units unscaled in training and multiplies them by `q` at test time. Both drop the same units
//! for the same random words (a classic mask is `0`/`1` where the inverted one is `0`/`1/q`),
//! and a network's function is the same when the dense layer fed by a dropout layer has weights
//! `W_inv = q · W_classic` (same bias). The training dynamics map too: the gradient of the same
//! loss is `∂L/∂W_classic = q ∂L/∂W_inv`, so SGD (with or without momentum) on `W_classic` with
//! learning rate `η` is SGD on `W_inv` with `q² η`; an L2 penalty `(λ/2)‖W_classic‖²` is
//! `(λ/q²)/2 ‖W_inv‖²`, an L1 penalty `l1 ‖W_classic‖₁` is `(l1/q) ‖W_inv‖₁`, and a max-norm
//! bound `c` on `W_classic`'s rows is `q c` on `W_inv`'s. Only the weights into a layer whose
//! inputs are dropped map; biases and the other layers keep their settings. The trainer can
//! train either way (`model.dropout_kind`); a classic network leaves training through
//! [`to_inverted`], so checkpoints, export, the device and PyTorch always see inverted dropout.

use microdnn::McDropout;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::model::{Layer, Sequential};
use crate::random::TrainRng;

/// How dropout scales in training and at test time (`model.dropout_kind`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropoutKind {
    /// Kept units × `1/q` in training, identity at test time (PyTorch's `nn.Dropout`).
    #[default]
    Inverted,
    /// Kept units unscaled in training, every unit × `q` at test time (the papers').
    Classic,
}

/// Multiplies the weights of the dense layer fed by each dropout layer by `f(q)`, `q` its keep
/// probability. Every network a config builds has a dense layer right after each dropout layer;
/// a dropout layer followed by anything else (or by nothing) is left alone.
fn rescale_after_dropout(seq: &mut Sequential, f: impl Fn(f32) -> f32) {
    for i in 0..seq.layers.len().saturating_sub(1) {
        let Layer::Dropout(rate) = seq.layers[i] else {
            continue;
        };
        if let Layer::Linear(l) = &mut seq.layers[i + 1] {
            let k = f(1.0 - rate);
            l.weight.iter_mut().for_each(|w| *w *= k);
        }
    }
}

/// The inverted-dropout network computing what the classic-dropout network `seq` computes at
/// test time: the weights after each dropout layer × `q` (biases unchanged).
pub fn to_inverted(seq: &Sequential) -> Sequential {
    let mut s = seq.clone();
    rescale_after_dropout(&mut s, |q| q);
    s
}

/// The classic-dropout weights of the inverted-dropout network `seq` (the inverse of
/// [`to_inverted`] up to rounding): the weights after each dropout layer ÷ `q`.
pub fn to_classic(seq: &mut Sequential) {
    rescale_after_dropout(seq, |q| 1.0 / q);
}

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

/// Turns an inverted mask (`0` or `1/(1-rate)`) into a classic one (`0` or `1`): the same units
/// dropped.
pub fn make_classic(mask: &mut [f32]) {
    mask.iter_mut()
        .for_each(|m| *m = if *m == 0.0 { 0.0 } else { 1.0 });
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

    #[test]
    fn classic_masks_drop_the_same_units_unscaled() {
        let (mut inv, mut cla) = (vec![0.0; 1000], vec![0.0; 1000]);
        fill_mask(&mut inv, 0.2, &mut rng_for(4, 0));
        fill_mask(&mut cla, 0.2, &mut rng_for(4, 0));
        make_classic(&mut cla);
        for (i, c) in inv.iter().zip(&cla) {
            assert_eq!(*c, if *i == 0.0 { 0.0 } else { 1.0 });
        }
        assert!(inv.contains(&0.0) && inv.contains(&1.25));
    }

    #[test]
    fn conversion_scales_only_the_weights_fed_by_dropout() {
        use crate::model::Linear;
        let lin = |k: f32| {
            Linear::from_parts(2, 2, vec![k, 2.0 * k, 3.0 * k, 4.0 * k], vec![0.5, 0.25]).unwrap()
        };
        let seq = Sequential::new(vec![
            Layer::Dropout(0.2),
            Layer::Linear(lin(1.0)),
            Layer::Activation(microdnn::Activation::Relu),
            Layer::Linear(lin(1.0)),
            Layer::Activation(microdnn::Activation::Relu),
            Layer::Dropout(0.5),
            Layer::Linear(lin(1.0)),
        ]);
        let inv = to_inverted(&seq);
        let w = |s: &Sequential, i: usize| match &s.layers[i] {
            Layer::Linear(l) => (l.weight.clone(), l.bias.clone()),
            _ => unreachable!(),
        };
        assert_eq!(w(&inv, 1).0, vec![0.8, 1.6, 2.4, 3.2]);
        assert_eq!(w(&inv, 3), w(&seq, 3), "no dropout before it");
        assert_eq!(w(&inv, 6).0, vec![0.5, 1.0, 1.5, 2.0]);
        assert_eq!(w(&inv, 6).1, vec![0.5, 0.25], "biases unchanged");
        let mut back = inv.clone();
        to_classic(&mut back);
        for i in [1, 3, 6] {
            for (a, b) in w(&back, i).0.iter().zip(&w(&seq, i).0) {
                assert!((a - b).abs() <= 1e-6 * b.abs(), "{a} {b}");
            }
        }
    }
}

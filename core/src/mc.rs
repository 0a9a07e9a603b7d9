//! Monte-Carlo dropout summaries: what `K` stochastic passes say about one input.
//!
//! [`McAccumulator`] takes the output of each pass (a network's `forward_mc`, or
//! [`ModelView::run_mc`](crate::ModelView::run_mc) on the host) and keeps, without storing the
//! passes:
//! - the mean probability of each class and its (population) standard deviation over the
//!   passes (Welford's update, as [`crate::mc_predict`]);
//! - the mean over the passes of each pass's entropy.
//!
//! [`McAccumulator::finish`] then reports the class of the mean, the *predictive entropy*
//! `H[mean]` (total uncertainty) and the *expected entropy* `E_k H[p_k]` (the part of it every
//! pass already has, aleatoric); their difference is the mutual information between the
//! prediction and the dropout mask (BALD; epistemic: high when the passes disagree). Entropies are
//! in nats ([`math::entropy`]).
//!
//! Every operation is `f32` in a fixed order, so the device and the host running the same passes
//! from the same seed get the same bits; [`crate::link`]'s `MC` message carries the result.
//!
//! The passes must be probability vectors. [`McOutputs::for_activation`] says how to get them
//! from a network's last activation: softmax outputs are used as they are, identity outputs
//! (logits) go through [`math::softmax`] first; anything else (sigmoid, tanh, ReLU outputs) is
//! not a distribution over classes and is refused.

use crate::{argmax, math, Activation, Rng};

/// How the outputs of a pass become class probabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum McOutputs {
    /// The network ends in softmax: its outputs are the probabilities.
    Probabilities,
    /// The network ends in the identity: softmax is applied to each pass's outputs.
    Logits,
}

impl McOutputs {
    /// For a network whose last layer has activation `last`: `None` unless it is softmax or
    /// the identity.
    pub const fn for_activation(last: Activation) -> Option<Self> {
        match last {
            Activation::Softmax => Some(McOutputs::Probabilities),
            Activation::Identity => Some(McOutputs::Logits),
            _ => None,
        }
    }
}

/// The scalar results of [`McAccumulator::finish`] (the means and standard deviations are in
/// the caller's slices).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct McSummary {
    /// Passes accumulated.
    pub passes: u32,
    /// The class of the mean probabilities ([`argmax`]'s rule).
    pub class: usize,
    /// `H[mean]`, nats: the predictive entropy.
    pub entropy: f32,
    /// Mean over the passes of each pass's entropy, nats.
    pub expected_entropy: f32,
}

impl McSummary {
    /// `entropy - expected_entropy`: the mutual information between the prediction and the
    /// dropout mask (BALD), nats. Rounding can make it slightly negative when every pass agrees.
    pub fn mutual_information(&self) -> f32 {
        self.entropy - self.expected_entropy
    }
}

/// Welford's running mean and sum of squared deviations, pass `k` (1-based) adding `y`.
/// The one update [`McAccumulator`] and [`crate::mc_predict`] share.
pub(crate) fn welford(mean: &mut [f32], m2: &mut [f32], y: &[f32], k: u32) {
    let k = k as f32;
    for ((m, m2), &v) in mean.iter_mut().zip(m2.iter_mut()).zip(y) {
        let d = v - *m;
        *m += d / k;
        *m2 += d * (v - *m);
    }
}

/// Accumulates Monte-Carlo passes into the caller's `mean` and `std` slices (no heap; see the
/// [module docs](self)).
///
/// ```
/// use microdnn::mc::{McAccumulator, McOutputs};
/// let (mut mean, mut std) = ([0.0f32; 2], [0.0f32; 2]);
/// let mut acc = McAccumulator::new(McOutputs::Probabilities, &mut mean, &mut std);
/// acc.add(&mut [1.0, 0.0]);
/// acc.add(&mut [0.0, 1.0]);
/// let s = acc.finish();
/// assert_eq!((s.passes, s.class), (2, 0));
/// assert_eq!(s.expected_entropy, 0.0); // each pass is certain...
/// assert!((s.entropy - core::f32::consts::LN_2).abs() < 1e-6); // ...but they disagree
/// assert_eq!((mean, std), ([0.5, 0.5], [0.5, 0.5]));
/// ```
#[derive(Debug)]
pub struct McAccumulator<'a> {
    outputs: McOutputs,
    mean: &'a mut [f32],
    /// Holds M2 (the sum of squared deviations) until [`McAccumulator::finish`].
    std: &'a mut [f32],
    passes: u32,
    entropy_sum: f32,
}

impl<'a> McAccumulator<'a> {
    /// An empty accumulator over `mean` and `std` (zeroed here; one element per class).
    pub fn new(outputs: McOutputs, mean: &'a mut [f32], std: &'a mut [f32]) -> Self {
        mean.iter_mut().for_each(|v| *v = 0.0);
        std.iter_mut().for_each(|v| *v = 0.0);
        McAccumulator {
            outputs,
            mean,
            std,
            passes: 0,
            entropy_sum: 0.0,
        }
    }

    /// Adds one pass's outputs (turned into probabilities in place first for
    /// [`McOutputs::Logits`]).
    pub fn add(&mut self, y: &mut [f32]) {
        if self.outputs == McOutputs::Logits {
            math::softmax(y);
        }
        self.passes = self.passes.saturating_add(1);
        welford(self.mean, self.std, y, self.passes);
        self.entropy_sum += math::entropy(y);
    }

    /// The standard deviations (in the `std` slice), the class of the mean and the entropies.
    /// With no pass added: zeros, class 0.
    pub fn finish(self) -> McSummary {
        let n = self.passes.max(1) as f32;
        self.std
            .iter_mut()
            .for_each(|m2| *m2 = libm::sqrtf(*m2 / n));
        McSummary {
            passes: self.passes,
            class: argmax(self.mean),
            entropy: math::entropy(self.mean),
            expected_entropy: self.entropy_sum / n,
        }
    }
}

/// The Monte-Carlo procedure, written once for the device and the host: a generator seeded
/// with `seed` ([`Rng::new`]), then `passes` calls of `pass(rng, out)`, each writing one
/// stochastic forward pass's outputs into `out` (the caller's scratch, one element per class),
/// accumulated into `mean` and `std` by [`McAccumulator`].
///
/// The `eval` firmware answers the link's `MC` request with this and its network's
/// `forward_mc`; the host reproduces it with [`ModelView::mc`](crate::ModelView::mc), so both
/// draw the same masks in the same order and get the same bits.
pub fn run<E>(
    outputs: McOutputs,
    passes: core::num::NonZeroU32,
    seed: u64,
    mean: &mut [f32],
    std: &mut [f32],
    out: &mut [f32],
    mut pass: impl FnMut(&mut Rng, &mut [f32]) -> Result<(), E>,
) -> Result<McSummary, E> {
    let mut rng = Rng::new(seed);
    let mut acc = McAccumulator::new(outputs, mean, std);
    for _ in 0..passes.get() {
        pass(&mut rng, out)?;
        acc.add(out);
    }
    Ok(acc.finish())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// Relative error of the backend's `exp` for `x <= 0` (softmax's arguments).
    #[cfg(feature = "micromath")]
    const EXP_REL_ERR: f64 = math::MICROMATH_EXP_MAX_REL_ERR as f64;
    #[cfg(not(feature = "micromath"))]
    const EXP_REL_ERR: f64 = 0.0;

    #[test]
    fn matches_a_two_pass_f64_computation() {
        let mut rng = crate::Rng::new(8);
        for outputs in [McOutputs::Probabilities, McOutputs::Logits] {
            for k in [1usize, 2, 7, 50] {
                let passes: Vec<Vec<f32>> = (0..k)
                    .map(|_| {
                        let mut p: Vec<f32> = (0..5).map(|_| rng.uniform(-3.0, 3.0)).collect();
                        if outputs == McOutputs::Probabilities {
                            math::softmax(&mut p);
                        }
                        p
                    })
                    .collect();
                let (mut mean, mut std) = ([0.0f32; 5], [0.0f32; 5]);
                let mut acc = McAccumulator::new(outputs, &mut mean, &mut std);
                for p in &passes {
                    acc.add(&mut p.clone());
                }
                let s = acc.finish();
                // The reference: probabilities in f64, mean and variance from all passes.
                let probs: Vec<Vec<f64>> = passes
                    .iter()
                    .map(|p| {
                        let v: Vec<f64> = p.iter().map(|&x| x as f64).collect();
                        if outputs == McOutputs::Logits {
                            let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                            let e: Vec<f64> = v.iter().map(|x| (x - m).exp()).collect();
                            let z: f64 = e.iter().sum();
                            e.iter().map(|x| x / z).collect()
                        } else {
                            v
                        }
                    })
                    .collect();
                let h = |p: &[f64]| -> f64 {
                    -p.iter()
                        .filter(|&&v| v > 0.0)
                        .map(|v| v * v.ln())
                        .sum::<f64>()
                };
                let m: Vec<f64> = (0..5)
                    .map(|j| probs.iter().map(|p| p[j]).sum::<f64>() / k as f64)
                    .collect();
                // With libm's exp the softmax of logits is accurate to a few ulps. With
                // micromath's, each probability has a relative error of at most about 2 eps (eps:
                // exp's relative error, once in the numerator, once in the sum), so |p error| <=
                // 2 eps, a standard deviation moves by at most twice that, and each -p ln p term
                // by at most 2 eps (1/e + p): the entropy by 2 eps (5/e + 1).
                let eps = if cfg!(feature = "micromath") && outputs == McOutputs::Logits {
                    EXP_REL_ERR
                } else {
                    0.0
                };
                let (tol_p, tol_std, tol_h) = (
                    1e-6 + 2.0 * eps,
                    1e-5 + 4.0 * eps,
                    1e-5 + 2.0 * eps * (5.0 / core::f64::consts::E + 1.0),
                );
                for j in 0..5 {
                    let var = probs.iter().map(|p| (p[j] - m[j]).powi(2)).sum::<f64>() / k as f64;
                    assert!((mean[j] as f64 - m[j]).abs() < tol_p, "{outputs:?} k={k}");
                    assert!(
                        (std[j] as f64 - var.sqrt()).abs() < tol_std,
                        "{outputs:?} k={k}"
                    );
                }
                let expected = probs.iter().map(|p| h(p)).sum::<f64>() / k as f64;
                assert!((s.entropy as f64 - h(&m)).abs() < tol_h);
                assert!((s.expected_entropy as f64 - expected).abs() < tol_h);
                assert_eq!(s.passes, k as u32);
                assert_eq!(s.class, crate::argmax(&mean));
                // Mutual information is non-negative (concavity of entropy), up to rounding.
                assert!(s.mutual_information() > -1e-5);
                if k == 1 {
                    assert_eq!(std, [0.0; 5]);
                    assert_eq!(s.entropy, s.expected_entropy);
                }
            }
        }
    }

    #[test]
    fn only_softmax_and_identity_outputs_are_distributions() {
        assert_eq!(
            McOutputs::for_activation(Activation::Softmax),
            Some(McOutputs::Probabilities)
        );
        assert_eq!(
            McOutputs::for_activation(Activation::Identity),
            Some(McOutputs::Logits)
        );
        for a in [
            Activation::Relu,
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::LEAKY_RELU,
        ] {
            assert_eq!(McOutputs::for_activation(a), None);
        }
    }

    #[test]
    fn nan_passes_stay_visible() {
        let (mut mean, mut std) = ([0.0f32; 2], [0.0f32; 2]);
        let mut acc = McAccumulator::new(McOutputs::Logits, &mut mean, &mut std);
        acc.add(&mut [f32::NAN, 1.0]);
        let s = acc.finish();
        assert!(s.entropy.is_nan() && s.expected_entropy.is_nan());
        assert!(mean.iter().all(|v| v.is_nan()));
    }
}

//! The KL-sparsity penalty on hidden units' mean activations, written once: the supervised
//! trainer (`regularization.sparsity`, in [`crate::nn::network::Network`]'s backward pass) and
//! the sparse autoencoders of pretraining (`train/pretrain/autoencoder.rs`) both call it.
//!
//! For each hidden unit `j` with mean activation `q_j` over a mini-batch of `B` rows, the penalty
//! added to the mean loss is `β Σ_j D(ρ ‖ q_j)`, so the gradient reaching activation `y_bj` is
//! `β D'(q_j) / B`. The divergence follows the units' range:
//!
//! - [`Divergence::Bernoulli`] (sigmoid units, activations in (0, 1)): the KL divergence of
//!   Bernoulli distributions, `ρ ln(ρ/q) + (1−ρ) ln((1−ρ)/(1−q))`, derivative
//!   `(q − ρ) / (q (1 − q))` (Ng's sparse autoencoder; Srivastava et al.'s `deepnet`,
//!   `layer.py`, `AddSparsityGradient` for logistic units);
//! - [`Divergence::Poisson`] (ReLU units, activations in [0, ∞)): the KL divergence of Poisson
//!   distributions with rates ρ and q (the generalised KL divergence), `ρ ln(ρ/q) − ρ + q`,
//!   derivative `(q − ρ) / q`: the gradient `deepnet` uses for rectified linear units (the same
//!   `AddSparsityGradient`, whose divisor is `q` for them), where the Bernoulli form is undefined
//!   for `q ≥ 1`.
//!
//! `q` is clamped to `[1e-6, 1 − 1e-6]` (Bernoulli) or `[1e-6, ∞)` (Poisson) before both the
//! value and the derivative, so a unit that is silent on a whole batch gets a finite gradient
//! (it is zero anyway through a ReLU that is off).

use serde::{Deserialize, Serialize};

/// Smallest mean activation the penalty sees (and 1 minus the largest, for Bernoulli).
pub const MEAN_CLAMP: f64 = 1e-6;

/// KL-sparsity settings (`regularization.sparsity` in a training config).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KlSparsity {
    /// Target mean activation ρ of every hidden unit (> 0; < 1 for sigmoid units).
    pub target: f32,
    /// Weight β of the penalty (≥ 0), added to the mean loss.
    pub weight: f32,
}

/// Which KL divergence measures a unit's mean activation against the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Divergence {
    /// Bernoulli KL, for units in (0, 1).
    Bernoulli,
    /// Poisson (generalised) KL, for non-negative units.
    Poisson,
}

impl Divergence {
    /// The divergence for a hidden activation: Bernoulli for sigmoid, Poisson for ReLU, `None`
    /// for activations whose outputs can be negative (tanh, leaky ReLU, identity), which no KL
    /// divergence of a mean rate covers.
    pub fn for_activation(a: microdnn::Activation) -> Option<Self> {
        match a {
            microdnn::Activation::Sigmoid => Some(Divergence::Bernoulli),
            microdnn::Activation::Relu => Some(Divergence::Poisson),
            _ => None,
        }
    }

    fn clamp(self, q: f64) -> f64 {
        match self {
            Divergence::Bernoulli => q.clamp(MEAN_CLAMP, 1.0 - MEAN_CLAMP),
            Divergence::Poisson => q.max(MEAN_CLAMP),
        }
    }

    /// `D(ρ ‖ q)` at the clamped `q`.
    pub fn value(self, rho: f64, q: f64) -> f64 {
        let q = self.clamp(q);
        match self {
            Divergence::Bernoulli => {
                rho * (rho / q).ln() + (1.0 - rho) * ((1.0 - rho) / (1.0 - q)).ln()
            }
            Divergence::Poisson => rho * (rho / q).ln() - rho + q,
        }
    }

    /// `∂D(ρ ‖ q)/∂q` at the clamped `q`.
    pub fn derivative(self, rho: f64, q: f64) -> f64 {
        let q = self.clamp(q);
        match self {
            Divergence::Bernoulli => (q - rho) / (q * (1.0 - q)),
            Divergence::Poisson => (q - rho) / q,
        }
    }
}

/// Mean of each of the `width` columns of the row-major `[rows, width]` matrix `y`, in `f64`.
pub fn column_means(y: &[f32], rows: usize, width: usize) -> Vec<f64> {
    let mut m = vec![0.0f64; width];
    for r in y.chunks_exact(width).take(rows) {
        m.iter_mut().zip(r).for_each(|(m, &v)| *m += v as f64);
    }
    m.iter_mut().for_each(|v| *v /= rows.max(1) as f64);
    m
}

/// The penalty `β Σ_j D(ρ ‖ q_j)` of the activations `y` (`[rows, width]`).
pub fn penalty(div: Divergence, s: &KlSparsity, y: &[f32], rows: usize, width: usize) -> f64 {
    let rho = s.target as f64;
    s.weight as f64
        * column_means(y, rows, width)
            .iter()
            .map(|&q| div.value(rho, q))
            .sum::<f64>()
}

/// The per-unit gradient of the penalty with respect to each activation `y_bj` of a row (the
/// same for every row): `β D'(ρ ‖ q_j) / rows`.
pub fn row_gradient(
    div: Divergence,
    s: &KlSparsity,
    y: &[f32],
    rows: usize,
    width: usize,
) -> Vec<f32> {
    let rho = s.target as f64;
    let k = s.weight as f64 / rows.max(1) as f64;
    column_means(y, rows, width)
        .iter()
        .map(|&q| (k * div.derivative(rho, q)) as f32)
        .collect()
}

/// Adds the penalty's gradient to `dy` (`[rows, width]`, the gradient reaching the
/// activations `y`).
pub fn add_gradient(
    div: Divergence,
    s: &KlSparsity,
    y: &[f32],
    dy: &mut [f32],
    rows: usize,
    width: usize,
) {
    let d = row_gradient(div, s, y, rows, width);
    for r in dy.chunks_exact_mut(width).take(rows) {
        r.iter_mut().zip(&d).for_each(|(g, d)| *g += d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divergences_by_hand() {
        // Bernoulli: ρ = 0.1, q = 0.5: 0.1 ln 0.2 + 0.9 ln 1.8.
        let b = Divergence::Bernoulli;
        let want = 0.1 * 0.2f64.ln() + 0.9 * 1.8f64.ln();
        assert!((b.value(0.1, 0.5) - want).abs() < 1e-15);
        assert!((b.derivative(0.1, 0.5) - 0.4 / 0.25).abs() < 1e-12);
        assert_eq!(b.value(0.3, 0.3), 0.0);
        // Poisson: ρ = 0.1, q = 2: 0.1 ln 0.05 − 0.1 + 2; derivative 1.9 / 2.
        let p = Divergence::Poisson;
        assert!((p.value(0.1, 2.0) - (0.1 * 0.05f64.ln() + 1.9)).abs() < 1e-15);
        assert!((p.derivative(0.1, 2.0) - 0.95).abs() < 1e-15);
        assert_eq!(p.value(0.5, 0.5), 0.0);
        // Silent units: finite, pushing the mean up.
        assert!(p.derivative(0.1, 0.0).is_finite() && p.derivative(0.1, 0.0) < 0.0);
        assert!(b.derivative(0.1, 1.0).is_finite() && b.derivative(0.1, 1.0) > 0.0);
    }

    #[test]
    fn derivative_is_the_value_s_slope() {
        for (div, q) in [
            (Divergence::Bernoulli, 0.3),
            (Divergence::Bernoulli, 0.02),
            (Divergence::Poisson, 0.3),
            (Divergence::Poisson, 4.0),
        ] {
            let h = 1e-6;
            let num = (div.value(0.05, q + h) - div.value(0.05, q - h)) / (2.0 * h);
            let ana = div.derivative(0.05, q);
            assert!((num - ana).abs() < 1e-6 * ana.abs().max(1.0), "{div:?} {q}");
        }
    }

    #[test]
    fn gradient_rows_are_the_penalty_s_partial_derivatives() {
        // y is [2 rows, 3 units]; perturb each entry and compare with the added gradient.
        let s = KlSparsity {
            target: 0.2,
            weight: 0.7,
        };
        let y = vec![0.5f32, 1.5, 0.25, 0.75, 0.5, 0.05];
        for div in [Divergence::Poisson, Divergence::Bernoulli] {
            let y: Vec<f32> = match div {
                Divergence::Bernoulli => y.iter().map(|v| v / 2.0).collect(),
                Divergence::Poisson => y.clone(),
            };
            let mut dy = vec![1.0f32; 6];
            add_gradient(div, &s, &y, &mut dy, 2, 3);
            for j in 0..6 {
                let h = 1e-3f32;
                let mut yp = y.clone();
                yp[j] += h;
                let mut ym = y.clone();
                ym[j] -= h;
                let num =
                    (penalty(div, &s, &yp, 2, 3) - penalty(div, &s, &ym, 2, 3)) / (2.0 * h as f64);
                let ana = dy[j] as f64 - 1.0;
                assert!(
                    (num - ana).abs() < 1e-3 * ana.abs().max(0.1),
                    "{div:?} [{j}]: {num} vs {ana}"
                );
            }
        }
    }
}

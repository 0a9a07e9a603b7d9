//! Optimisers (PyTorch's update rules, and the momentum form of Hinton et al. 2012). State is one
//! buffer (SGD: velocity) or two (Adam: first and second moments) per parameter tensor, in the
//! network's parameter order.
//!
//! **Two forms of momentum.** PyTorch's SGD (`kind = "sgd"`) accumulates gradients and applies
//! the learning rate to the sum: `v ← μ v + g`, `w ← w − η v`, so its steady-state step is
//! `η g / (1 − μ)`. Hinton et al. (2012, arXiv:1207.0580, appendix A) and Srivastava et al.
//! (2014) keep the step itself and scale the gradient by `1 − μ`:
//! `Δw ← μ Δw − (1 − μ) ε g`, `w ← w + Δw` (`kind = "sgd_hinton"`), whose steady-state step is
//! `ε g` whatever `μ`. With a constant rate and momentum the two are the same algorithm with
//! `η = (1 − μ) ε`; when `μ` or `ε` change from epoch to epoch (the papers' momentum ramp and
//! learning-rate decay) they differ, so the form is a setting of its own rather than a
//! conversion.

use serde::{Deserialize, Serialize};

use super::network::ParamMut;

/// Optimiser choice and hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// Mini-batch SGD: `v ← μ v + g`; `w ← w - lr (g + μ v)` with Nesterov, else `w ← w - lr v`.
    Sgd {
        /// Momentum `μ` (0 = plain SGD).
        #[serde(default)]
        momentum: f32,
        /// Nesterov momentum.
        #[serde(default)]
        nesterov: bool,
    },
    /// SGD with the momentum form of Hinton et al. (2012): `Δw ← μ Δw − (1 − μ) ε g`,
    /// `w ← w + Δw` (see the module documentation).
    SgdHinton {
        /// Momentum `μ` (the weight of the previous step).
        #[serde(default)]
        momentum: f32,
    },
    /// Adam (Kingma & Ba) with bias correction.
    Adam {
        /// First-moment decay (default 0.9).
        #[serde(default = "default_beta1")]
        beta1: f32,
        /// Second-moment decay (default 0.999).
        #[serde(default = "default_beta2")]
        beta2: f32,
        /// Denominator epsilon (default 1e-8).
        #[serde(default = "default_eps")]
        eps: f32,
    },
}

fn default_beta1() -> f32 {
    0.9
}
fn default_beta2() -> f32 {
    0.999
}
fn default_eps() -> f32 {
    1e-8
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::Sgd {
            momentum: 0.9,
            nesterov: false,
        }
    }
}

/// An optimiser with its state.
#[derive(Clone, Debug, PartialEq)]
pub struct Optimizer {
    /// Hyper-parameters.
    pub config: OptimizerConfig,
    /// State buffers (see module docs).
    pub state: Vec<Vec<f32>>,
    /// Steps taken.
    pub steps: u64,
}

impl Optimizer {
    /// A fresh optimiser for parameters of the given sizes.
    pub fn new(config: OptimizerConfig, sizes: &[usize]) -> Self {
        let per = match config {
            OptimizerConfig::Sgd { .. } | OptimizerConfig::SgdHinton { .. } => 1,
            OptimizerConfig::Adam { .. } => 2,
        };
        let state = sizes
            .iter()
            .flat_map(|&n| std::iter::repeat_n(n, per))
            .map(|n| vec![0.0; n])
            .collect();
        Self {
            config,
            state,
            steps: 0,
        }
    }

    /// One update of every parameter with learning rate `lr`. Large tensors are updated in
    /// parallel blocks on the current rayon pool (element-wise: the result does not depend on
    /// the thread count).
    pub fn step(&mut self, params: &mut [ParamMut<'_>], lr: f32) {
        self.step_with_momentum(params, lr, None);
    }

    /// [`Optimizer::step`] with the momentum `momentum` instead of the configured one (SGD; a
    /// momentum schedule resolves it per epoch). Adam ignores it (the configuration refuses a
    /// momentum schedule with Adam).
    pub fn step_with_momentum(
        &mut self,
        params: &mut [ParamMut<'_>],
        lr: f32,
        momentum: Option<f32>,
    ) {
        use rayon::prelude::*;
        self.steps += 1;
        match self.config {
            OptimizerConfig::SgdHinton { momentum: mu } => {
                let mu = momentum.unwrap_or(mu);
                for (p, v) in params.iter_mut().zip(self.state.iter_mut()) {
                    let (w, g) = (&mut *p.value, &*p.grad);
                    if w.len() >= 2 * PAR_BLOCK {
                        w.par_chunks_mut(PAR_BLOCK)
                            .zip(g.par_chunks(PAR_BLOCK))
                            .zip(v.par_chunks_mut(PAR_BLOCK))
                            .for_each(|((w, g), v)| hinton_block(w, g, v, lr, mu));
                    } else {
                        hinton_block(w, g, v, lr, mu);
                    }
                }
            }
            OptimizerConfig::Sgd {
                momentum: mu,
                nesterov,
            } => {
                let momentum = momentum.unwrap_or(mu);
                for (p, v) in params.iter_mut().zip(self.state.iter_mut()) {
                    let (w, g) = (&mut *p.value, &*p.grad);
                    if w.len() >= 2 * PAR_BLOCK {
                        w.par_chunks_mut(PAR_BLOCK)
                            .zip(g.par_chunks(PAR_BLOCK))
                            .zip(v.par_chunks_mut(PAR_BLOCK))
                            .for_each(|((w, g), v)| sgd_block(w, g, v, lr, momentum, nesterov));
                    } else {
                        sgd_block(w, g, v, lr, momentum, nesterov);
                    }
                }
            }
            OptimizerConfig::Adam { beta1, beta2, eps } => {
                let t = self.steps as i32;
                let c1 = 1.0 - (beta1 as f64).powi(t);
                let c2 = 1.0 - (beta2 as f64).powi(t);
                let k = AdamStep {
                    beta1,
                    beta2,
                    eps,
                    step: (lr as f64 / c1) as f32,
                    c2s: c2.sqrt() as f32,
                };
                let mut bufs = self.state.chunks_exact_mut(2);
                for p in params.iter_mut() {
                    let pair = bufs.next().expect("optimiser state matches parameters");
                    let (m, v) = pair.split_at_mut(1);
                    let (w, g, m, v) = (&mut *p.value, &*p.grad, &mut m[0], &mut v[0]);
                    if w.len() >= 2 * PAR_BLOCK {
                        w.par_chunks_mut(PAR_BLOCK)
                            .zip(g.par_chunks(PAR_BLOCK))
                            .zip(m.par_chunks_mut(PAR_BLOCK))
                            .zip(v.par_chunks_mut(PAR_BLOCK))
                            .for_each(|(((w, g), m), v)| adam_block(w, g, m, v, &k));
                    } else {
                        adam_block(w, g, m, v, &k);
                    }
                }
            }
        }
    }
}

/// Elements per parallel block of an update.
const PAR_BLOCK: usize = 1 << 14;

fn sgd_block(w: &mut [f32], g: &[f32], v: &mut [f32], lr: f32, momentum: f32, nesterov: bool) {
    if momentum == 0.0 {
        for (w, &g) in w.iter_mut().zip(g) {
            *w -= lr * g;
        }
    } else if nesterov {
        for ((w, &g), v) in w.iter_mut().zip(g).zip(v.iter_mut()) {
            *v = momentum * *v + g;
            *w -= lr * (g + momentum * *v);
        }
    } else {
        for ((w, &g), v) in w.iter_mut().zip(g).zip(v.iter_mut()) {
            *v = momentum * *v + g;
            *w -= lr * *v;
        }
    }
}

/// `Δw ← μ Δw − (1 − μ) ε g`, `w ← w + Δw` (`v` holds `Δw`).
fn hinton_block(w: &mut [f32], g: &[f32], v: &mut [f32], lr: f32, momentum: f32) {
    let k = (1.0 - momentum) * lr;
    for ((w, &g), v) in w.iter_mut().zip(g).zip(v.iter_mut()) {
        *v = momentum * *v - k * g;
        *w += *v;
    }
}

struct AdamStep {
    beta1: f32,
    beta2: f32,
    eps: f32,
    /// `lr / (1 - beta1^t)`.
    step: f32,
    /// `sqrt(1 - beta2^t)`.
    c2s: f32,
}

fn adam_block(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: &AdamStep) {
    for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m = k.beta1 * *m + (1.0 - k.beta1) * g;
        *v = k.beta2 * *v + (1.0 - k.beta2) * g * g;
        *w -= k.step * *m / (v.sqrt() / k.c2s + k.eps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::network::ParamKind;

    fn one(opt: &mut Optimizer, w: &mut [f32], g: &mut [f32], lr: f32, mu: Option<f32>) {
        let mut p = [ParamMut {
            value: w,
            grad: g,
            kind: ParamKind::Weight,
            cols: 1,
        }];
        opt.step_with_momentum(&mut p, lr, mu);
    }

    #[test]
    fn hinton_form_by_hand() {
        // ε = 2, μ = 0.5 then 0.75 (a schedule), g = 1 then 3.
        let mut opt = Optimizer::new(OptimizerConfig::SgdHinton { momentum: 0.9 }, &[1]);
        let (mut w, mut g) = ([1.0f32], [1.0f32]);
        one(&mut opt, &mut w, &mut g, 2.0, Some(0.5));
        // Δw = 0.5·0 − 0.5·2·1 = −1.
        assert_eq!((w[0], opt.state[0][0]), (0.0, -1.0));
        g[0] = 3.0;
        one(&mut opt, &mut w, &mut g, 2.0, Some(0.75));
        // Δw = 0.75·(−1) − 0.25·2·3 = −2.25.
        assert_eq!((w[0], opt.state[0][0]), (-2.25, -2.25));
        // Without an override, the configured momentum: Δw = 0.9·(−2.25) − 0.1·2·3 = −2.625.
        one(&mut opt, &mut w, &mut g, 2.0, None);
        assert!((opt.state[0][0] + 2.625).abs() < 1e-6);
        assert!((w[0] + 4.875).abs() < 1e-6);
    }

    #[test]
    fn the_forms_agree_at_constant_rate_and_momentum_only() {
        // PyTorch form with η = (1 − μ) ε equals the Hinton form while μ and ε are constant.
        let (eps, mu) = (0.5f32, 0.75f32);
        let mut a = Optimizer::new(OptimizerConfig::SgdHinton { momentum: mu }, &[1]);
        let mut b = Optimizer::new(
            OptimizerConfig::Sgd {
                momentum: mu,
                nesterov: false,
            },
            &[1],
        );
        let (mut wa, mut wb) = ([0.25f32], [0.25f32]);
        for g in [1.0f32, -2.0, 0.5, 4.0] {
            one(&mut a, &mut wa, &mut [g], eps, None);
            one(&mut b, &mut wb, &mut [g], (1.0 - mu) * eps, None);
            assert!((wa[0] - wb[0]).abs() < 1e-6, "{} {}", wa[0], wb[0]);
        }
        // Halve ε: the Hinton form's next step uses the new ε on the new gradient only; the
        // PyTorch form rescales the whole velocity.
        one(&mut a, &mut wa, &mut [1.0], eps / 2.0, None);
        one(&mut b, &mut wb, &mut [1.0], (1.0 - mu) * eps / 2.0, None);
        assert!((wa[0] - wb[0]).abs() > 1e-3, "{} {}", wa[0], wb[0]);
    }
}

//! Optimisers (PyTorch's update rules). State is one buffer (SGD: velocity) or two (Adam: first
//! and second moments) per parameter tensor, in the network's parameter order.

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
            OptimizerConfig::Sgd { .. } => 1,
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
        use rayon::prelude::*;
        self.steps += 1;
        match self.config {
            OptimizerConfig::Sgd { momentum, nesterov } => {
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

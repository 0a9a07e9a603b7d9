//! Regularisers: L1 and L2 weight decay (as gradient terms), max-norm constraints on each
//! unit's incoming weights, and global gradient-norm clipping; the settings of the KL-sparsity
//! penalty on hidden activations too (its computation is [`crate::nn::sparsity`], in the
//! network's backward pass).
//!
//! The penalty is `l1 Σ|w| + (l2/2) Σ w²` over the regularised tensors (by default the dense
//! weights only: not biases, not batch-norm parameters), so its gradient is `l1 sign(w) + l2 w`
//! (PyTorch's `weight_decay = l2`). L1 can start late (`l1_from_epoch`: Srivastava et al. 2014's
//! "L2 + L1 applied towards the end of training"); the training loop resolves it per epoch
//! ([`Regularization::at_epoch`]).

use serde::{Deserialize, Serialize};

use super::network::{ParamKind, ParamMut};
use super::sparsity::KlSparsity;

/// Regularisation settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Regularization {
    /// L1 coefficient.
    pub l1: f32,
    /// L2 coefficient (weight decay).
    pub l2: f32,
    /// Also decay biases and batch-norm parameters.
    pub decay_all: bool,
    /// Max-norm bound `c` on every unit's incoming weight vector (row of `[out, in]`), applied
    /// after each step: rows longer than `c` are rescaled to length `c`.
    pub max_norm: Option<f32>,
    /// Rescale all gradients together when their global L2 norm exceeds this.
    pub clip_grad_norm: Option<f32>,
    /// First epoch (0-based) in which `l1` applies; 0 = from the start.
    pub l1_from_epoch: usize,
    /// KL-sparsity penalty on the mean activation of every hidden unit (ReLU or sigmoid units;
    /// see [`crate::nn::sparsity`]).
    pub sparsity: Option<KlSparsity>,
}

impl Regularization {
    /// The settings in force in `epoch` (0-based): `l1` is 0 before `l1_from_epoch`.
    pub fn at_epoch(&self, epoch: usize) -> Self {
        let mut r = *self;
        if epoch < self.l1_from_epoch {
            r.l1 = 0.0;
        }
        r
    }

    fn applies(&self, kind: ParamKind) -> bool {
        self.decay_all || kind == ParamKind::Weight
    }

    /// The penalty value (`f64`).
    pub fn penalty(&self, params: &[ParamMut<'_>]) -> f64 {
        if self.l1 == 0.0 && self.l2 == 0.0 {
            return 0.0;
        }
        let mut s = 0.0f64;
        for p in params.iter().filter(|p| self.applies(p.kind)) {
            for &w in p.value.iter() {
                let w = w as f64;
                s += self.l1 as f64 * w.abs() + 0.5 * self.l2 as f64 * w * w;
            }
        }
        s
    }

    /// Adds the penalty's gradient to the gradients.
    pub fn add_grads(&self, params: &mut [ParamMut<'_>]) {
        if self.l1 == 0.0 && self.l2 == 0.0 {
            return;
        }
        let (l1, l2) = (self.l1, self.l2);
        for p in params.iter_mut().filter(|p| self.applies(p.kind)) {
            for (g, &w) in p.grad.iter_mut().zip(p.value.iter()) {
                let sign = if w > 0.0 {
                    1.0
                } else if w < 0.0 {
                    -1.0
                } else {
                    0.0
                };
                *g += l1 * sign + l2 * w;
            }
        }
    }

    /// Clips the gradients to the global norm bound; returns the norm before clipping.
    pub fn clip(&self, params: &mut [ParamMut<'_>]) -> f64 {
        let Some(maxn) = self.clip_grad_norm else {
            return 0.0;
        };
        let norm = global_grad_norm(params);
        if norm > maxn as f64 && norm.is_finite() {
            let k = (maxn as f64 / norm) as f32;
            params
                .iter_mut()
                .for_each(|p| p.grad.iter_mut().for_each(|g| *g *= k));
        }
        norm
    }

    /// Applies the max-norm constraint to every dense weight matrix.
    pub fn apply_max_norm(&self, params: &mut [ParamMut<'_>]) {
        let Some(c) = self.max_norm else { return };
        for p in params.iter_mut().filter(|p| p.kind == ParamKind::Weight) {
            for row in p.value.chunks_exact_mut(p.cols) {
                let n = row
                    .iter()
                    .map(|&w| (w as f64) * (w as f64))
                    .sum::<f64>()
                    .sqrt();
                if n > c as f64 {
                    let k = (c as f64 / n) as f32;
                    row.iter_mut().for_each(|w| *w *= k);
                }
            }
        }
    }
}

/// The L2 norm of all gradients together (`f64`, fixed order).
pub fn global_grad_norm(params: &[ParamMut<'_>]) -> f64 {
    params
        .iter()
        .flat_map(|p| p.grad.iter())
        .map(|&g| (g as f64) * (g as f64))
        .sum::<f64>()
        .sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l1_switches_on_at_its_epoch() {
        let r = Regularization {
            l1: 1e-5,
            l2: 1e-4,
            l1_from_epoch: 3,
            ..Default::default()
        };
        assert_eq!(r.at_epoch(0).l1, 0.0);
        assert_eq!(r.at_epoch(2).l1, 0.0);
        assert_eq!(r.at_epoch(3).l1, 1e-5);
        assert_eq!(r.at_epoch(9).l1, 1e-5);
        assert_eq!(r.at_epoch(0).l2, 1e-4, "only L1 waits");
        // One weight w = 0.5 with zero data gradient: before epoch 3 only L2 acts.
        let (mut w, mut g) = (vec![0.5f32], vec![0.0f32]);
        let mut ps = [ParamMut {
            value: &mut w,
            grad: &mut g,
            kind: ParamKind::Weight,
            cols: 1,
        }];
        r.at_epoch(2).add_grads(&mut ps);
        assert_eq!(ps[0].grad[0], 0.5e-4);
        ps[0].grad[0] = 0.0;
        r.at_epoch(3).add_grads(&mut ps);
        assert_eq!(ps[0].grad[0], 1e-5 + 0.5e-4);
    }
}

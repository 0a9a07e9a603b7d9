//! One mini-batch training step, written once: `microdnn train` ([`crate::train`]), `microdnn
//! bench-train` ([`crate::bench`]) and the lab's step-by-step probes (`lab::probe`) all call
//! [`step`].
//!
//! A step on the batch in the network's input buffer ([`load_batch`]), with the settings of its
//! epoch ([`StepParams`]):
//! 1. [`gradients`]: forward pass in training mode (dropout and DropConnect masks drawn from the
//!    run's stream, batch norm on batch statistics), the loss, backward (gradients of the *mean*
//!    loss, plus the KL-sparsity penalty's where it reaches the hidden activations, if set);
//! 2. a non-finite loss stops here: nothing is updated, the caller reports the divergence;
//! 3. [`StepHook::after_backward`] (the gradients are the data loss's, plus the activity
//!    penalty's if one is set: diagnostics and probes measure them here);
//! 4. [`update`]: L1/L2 gradients, global-norm clipping, the optimiser's step (at the epoch's
//!    learning rate and momentum), max-norm;
//! 5. [`StepHook::after_update`].
//!
//! New per-step behaviour belongs here or in the pieces it calls: a regulariser in
//! `nn/regularize.rs` (called by [`update`]), an activation penalty in `nn/network.rs`'s
//! backward (`nn/sparsity.rs`), an optimiser in `nn/optim.rs`. Settings that change from epoch
//! to epoch (learning rate, momentum schedule, the epoch from which L1 starts) are resolved once
//! per epoch by [`StepParams::for_epoch`] (the loop in `train/run.rs`, the lab's probes) and
//! passed in, so every caller steps the same way.

use crate::data::Dataset;
use crate::model::{Layer, Sequential};
use crate::nn::network::Network;
use crate::nn::optim::Optimizer;
use crate::nn::regularize::Regularization;
use crate::random::TrainRng;
use crate::train::config::TrainConfig;

/// The settings of every step of one epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepParams {
    /// Learning rate.
    pub lr: f32,
    /// Momentum replacing the optimiser's (a momentum schedule), or `None`.
    pub momentum: Option<f32>,
    /// Regularisers in force (L1 switched on or not yet).
    pub reg: Regularization,
}

impl StepParams {
    /// Learning rate `lr`, the optimiser's momentum and the regularisers `reg` as they are.
    pub fn new(lr: f32, reg: Regularization) -> Self {
        Self {
            lr,
            momentum: None,
            reg,
        }
    }

    /// The settings of `epoch` (0-based) of a run configured by `cfg`: the learning-rate
    /// schedule's rate, the momentum schedule's momentum, L1 from `l1_from_epoch` on.
    pub fn for_epoch(cfg: &TrainConfig, epoch: usize) -> Self {
        Self {
            lr: cfg.schedule.lr(cfg.lr, epoch, cfg.epochs) as f32,
            momentum: cfg.momentum_schedule.map(|m| m.momentum(epoch)),
            reg: cfg.regularization.at_epoch(epoch),
        }
    }
}

/// The loss of one mini-batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchLoss {
    /// Loss summed over the batch's rows (divide by the batch size for the mean).
    pub sum: f64,
    /// Rows whose predicted class is their label.
    pub correct: usize,
}

/// A step whose loss was not finite (NaN or infinite): the parameters were left untouched.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NonFiniteLoss {
    /// The loss, summed over the batch.
    pub sum: f64,
}

/// Watches a [`step`] between its phases. Both methods do nothing by default; `()` watches
/// nothing.
pub trait StepHook {
    /// After backward, before the regularisers and the update: `net` holds the gradients of the
    /// data loss and the weights before the step.
    fn after_backward(&mut self, _net: &mut Network) {}
    /// After the optimiser step and max-norm.
    fn after_update(&mut self, _net: &mut Network) {}
}

impl StepHook for () {}

/// Copies rows `idx` of `data` into the network's input buffer and their labels into
/// `labels[..idx.len()]`.
pub fn load_batch(net: &mut Network, data: &Dataset, idx: &[usize], labels: &mut [u32]) {
    let f = data.features;
    let input = net.input_mut(idx.len());
    for (r, &i) in idx.iter().enumerate() {
        input[r * f..(r + 1) * f].copy_from_slice(data.row(i));
        labels[r] = data.y[i];
    }
}

/// Forward pass in training mode (masks from `rng`), loss and backward for the batch in the
/// network's input (`labels.len()` rows): afterwards the network holds the gradients of the mean
/// loss (of the data alone: no penalty). Backward runs whatever the loss (a non-finite one gives
/// non-finite gradients).
pub fn gradients(net: &mut Network, labels: &[u32], rng: &mut TrainRng) -> BatchLoss {
    penalized_gradients(net, labels, rng, &Regularization::default())
}

/// [`gradients`] plus the gradient of `reg`'s activity penalty (KL sparsity), if it has one. The
/// loss returned is the data loss's.
pub fn penalized_gradients(
    net: &mut Network,
    labels: &[u32],
    rng: &mut TrainRng,
    reg: &Regularization,
) -> BatchLoss {
    let b = labels.len();
    net.forward(b, true, rng);
    let (sum, correct) = net.loss_and_grad(labels);
    net.backward_with_penalty(b, false, reg.sparsity.as_ref());
    BatchLoss { sum, correct }
}

/// The update of a step whose gradients are in `net`: the regularisers' gradients (L1/L2), global
/// gradient-norm clipping, the optimiser's step at the learning rate and momentum of `p`, then
/// max-norm.
pub fn update(net: &mut Network, opt: &mut Optimizer, p: &StepParams) {
    let mut params = net.params();
    p.reg.add_grads(&mut params);
    p.reg.clip(&mut params);
    opt.step_with_momentum(&mut params, p.lr, p.momentum);
    p.reg.apply_max_norm(&mut params);
}

/// One training step on the batch in the network's input, labelled `labels`, with the settings
/// `p` (see the module documentation for its phases). Returns the batch's loss, or
/// [`NonFiniteLoss`] (nothing updated) when the loss is NaN or infinite.
pub fn step(
    net: &mut Network,
    opt: &mut Optimizer,
    p: &StepParams,
    labels: &[u32],
    rng: &mut TrainRng,
    hook: &mut impl StepHook,
) -> Result<BatchLoss, NonFiniteLoss> {
    let loss = penalized_gradients(net, labels, rng, &p.reg);
    if !loss.sum.is_finite() {
        return Err(NonFiniteLoss { sum: loss.sum });
    }
    hook.after_backward(net);
    update(net, opt, p);
    hook.after_update(net);
    Ok(loss)
}

/// Whether every parameter and batch-norm running statistic of `seq` is finite (checked after
/// each epoch: a step can keep a finite loss while some weight overflowed).
pub fn all_finite(seq: &Sequential) -> bool {
    seq.layers.iter().all(|l| match l {
        Layer::Linear(l) => l.weight.iter().chain(&l.bias).all(|v| v.is_finite()),
        Layer::BatchNorm1d(b) => b
            .weight
            .iter()
            .chain(&b.bias)
            .chain(&b.running_mean)
            .chain(&b.running_var)
            .all(|v| v.is_finite()),
        _ => true,
    })
}

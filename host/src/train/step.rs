//! One mini-batch training step, written once: `microdnn train` ([`crate::train`]), `microdnn
//! bench-train` ([`crate::bench`]) and the lab's step-by-step probes (`lab::probe`) all call
//! [`step`].
//!
//! A step on the batch in the network's input buffer ([`load_batch`]):
//! 1. [`gradients`]: forward pass in training mode (dropout and DropConnect masks drawn from the
//!    run's stream, batch norm on batch statistics), the loss, backward (gradients of the *mean*
//!    loss);
//! 2. a non-finite loss stops here: nothing is updated, the caller reports the divergence;
//! 3. [`StepHook::after_backward`] (the gradients are the data loss's: diagnostics and probes
//!    measure them here);
//! 4. [`update`]: L1/L2 gradients, global-norm clipping, the optimiser's step, max-norm;
//! 5. [`StepHook::after_update`].
//!
//! New per-step behaviour belongs here or in the pieces it calls: a regulariser in
//! `nn/regularize.rs` (called by [`update`]), an activation penalty such as KL sparsity of hidden
//! units in `nn/network.rs`'s backward, an optimiser in `nn/optim.rs`. Settings that change from
//! epoch to epoch (a momentum schedule, an epoch from which L1 starts) are resolved by the loop
//! (`train/run.rs`, one epoch at a time) and passed in, so every caller steps the same way.

use crate::data::Dataset;
use crate::model::{Layer, Sequential};
use crate::nn::network::Network;
use crate::nn::optim::Optimizer;
use crate::nn::regularize::Regularization;
use crate::random::TrainRng;

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
/// loss. Backward runs whatever the loss (a non-finite one gives non-finite gradients).
pub fn gradients(net: &mut Network, labels: &[u32], rng: &mut TrainRng) -> BatchLoss {
    let b = labels.len();
    net.forward(b, true, rng);
    let (sum, correct) = net.loss_and_grad(labels);
    net.backward(b, false);
    BatchLoss { sum, correct }
}

/// The update of a step whose gradients are in `net`: the regularisers' gradients (L1/L2), global
/// gradient-norm clipping, the optimiser's step at learning rate `lr`, then max-norm.
pub fn update(net: &mut Network, opt: &mut Optimizer, reg: &Regularization, lr: f32) {
    let mut params = net.params();
    reg.add_grads(&mut params);
    reg.clip(&mut params);
    opt.step(&mut params, lr);
    reg.apply_max_norm(&mut params);
}

/// One training step on the batch in the network's input, labelled `labels` (see the module
/// documentation for its phases). Returns the batch's loss, or [`NonFiniteLoss`] (nothing
/// updated) when the loss is NaN or infinite.
pub fn step(
    net: &mut Network,
    opt: &mut Optimizer,
    reg: &Regularization,
    lr: f32,
    labels: &[u32],
    rng: &mut TrainRng,
    hook: &mut impl StepHook,
) -> Result<BatchLoss, NonFiniteLoss> {
    let loss = gradients(net, labels, rng);
    if !loss.sum.is_finite() {
        return Err(NonFiniteLoss { sum: loss.sum });
    }
    hook.after_backward(net);
    update(net, opt, reg, lr);
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

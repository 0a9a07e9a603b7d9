//! A training loop with probes, for experiments that look inside a run step by step: the
//! trainer's own step ([`crate::train::step`]: loss gradient, L1/L2, clipping, optimiser step,
//! max-norm) with a hook after every step, per-layer gradient norms, and statistics of the hidden
//! units.

use microdnn::Activation;

use crate::data::Dataset;
use crate::model::{Layer, Sequential};
use crate::nn::network::Network;
use crate::nn::optim::Optimizer;
use crate::random::{rng_for, shuffle, TrainRng};
use crate::train::config::TrainConfig;
use crate::train::diagnostics::weight_grad_norms;
use crate::train::step::{all_finite, gradients, load_batch, step, StepHook, StepParams};
use crate::train::PreparedData;

/// The network a run of `cfg` starts from: initialised from the seed and, with a `[pretrain]`
/// section, greedily pretrained (the trainer's own code path).
pub fn initial_network(cfg: &TrainConfig, data: &PreparedData) -> anyhow::Result<Sequential> {
    Ok(crate::train::starting_network(cfg, data)?.0)
}

/// A network being trained step by step.
pub struct Trainer {
    /// The network.
    pub net: Network,
    /// The optimiser.
    pub opt: Optimizer,
    /// The run's settings (regularisation, batch size, schedule).
    pub cfg: TrainConfig,
    /// Optimiser steps taken.
    pub steps: usize,
    /// Epochs completed.
    pub epochs: usize,
    /// Record [`Trainer::grad_norms`] at every step.
    pub track_grads: bool,
    /// Norm of each dense weight's loss gradient at the last step (before regularisation).
    pub grad_norms: Vec<f64>,
    rng: TrainRng,
    eval_rng: TrainRng,
    order: Vec<usize>,
    labels: Vec<u32>,
}

impl Trainer {
    /// A trainer for `seq` with `cfg`'s loss, optimiser, schedules, regularisation and kind of
    /// dropout (with classic dropout, `seq` holds classic weights); threads from `cfg`.
    pub fn new(cfg: &TrainConfig, seq: Sequential) -> Self {
        let mut net = Network::new(seq, cfg.loss, cfg.batch_size, cfg.thread_count());
        net.set_dropout_kind(cfg.model.dropout_kind);
        let opt = Optimizer::new(cfg.optimizer, &net.param_sizes());
        Self {
            net,
            opt,
            cfg: cfg.clone(),
            steps: 0,
            epochs: 0,
            track_grads: false,
            grad_norms: Vec::new(),
            rng: rng_for(cfg.seed, 2),
            eval_rng: rng_for(cfg.seed, 3),
            order: Vec::new(),
            labels: vec![0; cfg.batch_size],
        }
    }

    /// Norm of each dense weight's gradient after a backward pass on `rows` of `d` (no update).
    pub fn gradient_norms(&mut self, d: &Dataset, rows: &[usize]) -> Vec<f64> {
        let b = rows.len().min(self.cfg.batch_size);
        load_batch(&mut self.net, d, &rows[..b], &mut self.labels);
        gradients(&mut self.net, &self.labels[..b], &mut self.rng);
        weight_grad_norms(&mut self.net)
    }

    /// One epoch over `train` in a fresh shuffle; `hook` runs after every step. Returns the mean
    /// training loss, or NaN as soon as the loss or the weights stop being finite.
    pub fn epoch(&mut self, train: &Dataset, mut hook: impl FnMut(&mut Self)) -> f64 {
        let params = StepParams::for_epoch(&self.cfg, self.epochs);
        self.order = (0..train.len()).collect();
        shuffle(&mut self.order, &mut self.rng);
        let mut sum = 0.0;
        let order = std::mem::take(&mut self.order);
        for idx in order.chunks(self.cfg.batch_size) {
            let b = idx.len();
            load_batch(&mut self.net, train, idx, &mut self.labels);
            let mut probe = GradNorms {
                on: self.track_grads,
                norms: &mut self.grad_norms,
            };
            let labels = &self.labels[..b];
            match step(
                &mut self.net,
                &mut self.opt,
                &params,
                labels,
                &mut self.rng,
                &mut probe,
            ) {
                Ok(l) => sum += l.sum,
                Err(_) => return f64::NAN,
            }
            self.steps += 1;
            hook(self);
        }
        self.order = order;
        self.epochs += 1;
        if all_finite(&self.net.seq) {
            sum / train.len() as f64
        } else {
            f64::NAN
        }
    }

    /// Evaluation-mode mean loss and accuracy on `d`.
    pub fn evaluate(&mut self, d: &Dataset) -> (f64, f64) {
        let (l, k) = self.net.evaluate(&d.x, &d.y, &mut self.eval_rng);
        (l / d.len() as f64, k as f64 / d.len() as f64)
    }
}

/// Records the dense weights' gradient norms of the data loss at each step (when `on`).
struct GradNorms<'a> {
    on: bool,
    norms: &'a mut Vec<f64>,
}

impl StepHook for GradNorms<'_> {
    fn after_backward(&mut self, net: &mut Network) {
        if self.on {
            *self.norms = weight_grad_norms(net);
        }
    }
}

/// Statistics of one hidden layer's units over a set of examples (evaluation mode).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct HiddenStats {
    /// Position of the hidden dense layer in the `Sequential`.
    pub layer: usize,
    /// Units that never fire on any example: ReLU output 0 everywhere (for leaky ReLU: the input
    /// negative everywhere). `None` for other activations.
    pub dead_fraction: Option<f64>,
    /// 15th, 50th and 85th percentiles of the layer's activations.
    pub act: [f64; 3],
    /// 15th, 50th and 85th percentiles of unit 0's input (what enters its activation: after
    /// batch norm when there is one).
    pub unit0_input: [f64; 3],
}

/// The `q` quantile of `v` (nearest rank; `v` is sorted in place).
pub fn percentile(v: &mut [f32], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * q).round() as usize] as f64
}

fn percentiles(v: &mut [f32]) -> [f64; 3] {
    [0.15, 0.5, 0.85].map(|q| percentile(v, q))
}

/// Outputs of the layers at `at` (indices into `seq.layers`) for `n` examples.
pub fn outputs_at(seq: &Sequential, x: &[f32], n: usize, at: &[usize]) -> Vec<Vec<f32>> {
    at.iter()
        .map(|&i| Sequential::new(seq.layers[..=i].to_vec()).predict(x, n))
        .collect()
}

/// [`HiddenStats`] of every hidden layer (each activation layer) on the first `n` rows of `d`.
pub fn hidden_stats(seq: &Sequential, d: &Dataset, n: usize) -> Vec<HiddenStats> {
    let n = n.min(d.len());
    let x = &d.x[..n * d.features];
    let widths = seq.widths();
    let mut out = Vec::new();
    for (i, l) in seq.layers.iter().enumerate() {
        let Layer::Activation(act) = l else { continue };
        if i == 0 {
            continue;
        }
        let dense = (0..i)
            .rev()
            .find(|&j| matches!(seq.layers[j], Layer::Linear(_)))
            .unwrap_or(0);
        let w = widths[i + 1];
        let o = outputs_at(seq, x, n, &[i - 1, i]);
        let (pre, post) = (&o[0], &o[1]);
        let dead = match act {
            Activation::Relu | Activation::LeakyRelu { .. } => {
                let dead = (0..w)
                    .filter(|&u| (0..n).all(|r| pre[r * w + u] <= 0.0))
                    .count();
                Some(dead as f64 / w as f64)
            }
            _ => None,
        };
        let mut all = post.clone();
        let mut unit0: Vec<f32> = (0..n).map(|r| pre[r * w]).collect();
        out.push(HiddenStats {
            layer: dense,
            dead_fraction: dead,
            act: percentiles(&mut all),
            unit0_input: percentiles(&mut unit0),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Linear;

    #[test]
    fn dead_units_and_percentiles() {
        // Unit 0 passes x, unit 1 is -1 - |x|-ish: always negative for x >= 0.
        let seq = Sequential::new(vec![
            Layer::Linear(Linear::from_parts(1, 2, vec![1.0, -1.0], vec![0.0, -1.0]).unwrap()),
            Layer::Activation(Activation::Relu),
            Layer::Linear(Linear::from_parts(2, 1, vec![1.0, 1.0], vec![0.0]).unwrap()),
        ]);
        let d = Dataset {
            features: 1,
            classes: 2,
            x: (0..101).map(|i| i as f32).collect(),
            y: vec![0; 101],
        };
        let s = hidden_stats(&seq, &d, 1000);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].layer, 0);
        assert_eq!(s[0].dead_fraction, Some(0.5));
        assert_eq!(s[0].unit0_input, [15.0, 50.0, 85.0]);
        let mut v = vec![3.0, 1.0, 2.0];
        assert_eq!(percentile(&mut v, 0.5), 2.0);
    }
}

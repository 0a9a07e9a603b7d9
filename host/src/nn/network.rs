//! The training-side network: a [`Sequential`] plus the buffers of a run (activations,
//! gradients, masks, batch-norm caches), allocated once for a maximum batch size.

use gemm::Parallelism;

use super::activation;
use super::batchnorm::{self, BnCache};
use super::dense::{self, DenseState};
use super::dropout::{self, DropoutKind};
use super::loss::{self, Loss};
use super::matmul;
use super::sparsity::{self, Divergence, KlSparsity};
use crate::model::{Layer, Sequential};
use crate::random::TrainRng;

/// What a parameter tensor is (regularisers treat kinds differently).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// Dense weight `[out, in]`.
    Weight,
    /// Dense bias.
    Bias,
    /// Batch-norm scale (gamma).
    BnWeight,
    /// Batch-norm shift (beta).
    BnBias,
}

/// A parameter tensor with its gradient.
#[derive(Debug)]
pub struct ParamMut<'a> {
    /// Values.
    pub value: &'a mut [f32],
    /// Gradient of the loss (same length).
    pub grad: &'a mut [f32],
    /// Kind.
    pub kind: ParamKind,
    /// Row length (`in` for a dense weight; the length for vectors).
    pub cols: usize,
}

#[derive(Clone, Debug)]
enum LayerState {
    Dense(DenseState),
    Bn {
        cache: BnCache,
        dgamma: Vec<f32>,
        dbeta: Vec<f32>,
    },
    Dropout {
        mask: Vec<f32>,
    },
    Stateless,
}

/// A network being trained.
#[derive(Clone, Debug)]
pub struct Network {
    /// The layers and their parameters.
    pub seq: Sequential,
    /// The loss on the last layer's outputs.
    pub loss: Loss,
    states: Vec<LayerState>,
    acts: Vec<Vec<f32>>,
    grads: Vec<Vec<f32>>,
    widths: Vec<usize>,
    max_batch: usize,
    par: Parallelism,
    first_param: usize,
    dropout_kind: DropoutKind,
}

impl Network {
    /// Buffers for batches of up to `max_batch` rows; GEMMs use `threads` threads of the current
    /// rayon pool.
    pub fn new(seq: Sequential, loss: Loss, max_batch: usize, threads: usize) -> Self {
        let widths = seq.widths();
        let states = seq
            .layers
            .iter()
            .zip(&widths[1..])
            .map(|(l, &w)| match l {
                Layer::Linear(l) => LayerState::Dense(DenseState::new(l)),
                Layer::BatchNorm1d(b) => LayerState::Bn {
                    cache: BnCache::new(max_batch, b.features),
                    dgamma: vec![0.0; b.features],
                    dbeta: vec![0.0; b.features],
                },
                Layer::Dropout(_) => LayerState::Dropout {
                    mask: vec![1.0; max_batch * w],
                },
                Layer::Activation(_) => LayerState::Stateless,
            })
            .collect();
        let first_param = seq
            .layers
            .iter()
            .position(|l| matches!(l, Layer::Linear(_) | Layer::BatchNorm1d(_)))
            .unwrap_or(seq.layers.len());
        Self {
            acts: widths.iter().map(|&w| vec![0.0; max_batch * w]).collect(),
            grads: widths.iter().map(|&w| vec![0.0; max_batch * w]).collect(),
            states,
            widths,
            max_batch,
            par: matmul::parallelism(threads),
            first_param,
            loss,
            seq,
            dropout_kind: DropoutKind::Inverted,
        }
    }

    /// Trains and evaluates with `kind` of dropout (inverted unless set; see
    /// [`crate::nn::dropout`]). With classic dropout the weights of [`Network::seq`] are the
    /// classic ones: [`dropout::to_inverted`] gives the network to save.
    pub fn set_dropout_kind(&mut self, kind: DropoutKind) {
        self.dropout_kind = kind;
    }

    /// The kind of dropout this network trains with.
    pub fn dropout_kind(&self) -> DropoutKind {
        self.dropout_kind
    }

    /// Largest batch the buffers hold.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Number of outputs.
    pub fn classes(&self) -> usize {
        *self.widths.last().unwrap()
    }

    /// The input buffer for `batch` rows (fill it, then call [`Network::forward`]).
    pub fn input_mut(&mut self, batch: usize) -> &mut [f32] {
        &mut self.acts[0][..batch * self.widths[0]]
    }

    /// Forward pass of the `batch` rows in the input buffer; returns the outputs. In training
    /// mode, fresh dropout and DropConnect masks are drawn from `rng` (in layer order) and batch
    /// norm uses batch statistics and updates its running averages. In evaluation mode dropout
    /// is the identity (inverted) or a multiplication by the keep probability (classic).
    pub fn forward(&mut self, batch: usize, train: bool, rng: &mut TrainRng) -> &[f32] {
        assert!(batch <= self.max_batch);
        for i in 0..self.seq.layers.len() {
            let (win, wout) = (self.widths[i], self.widths[i + 1]);
            let (lo, hi) = self.acts.split_at_mut(i + 1);
            let x = &lo[i][..batch * win];
            let y = &mut hi[0][..batch * wout];
            match (&mut self.seq.layers[i], &mut self.states[i]) {
                (Layer::Linear(l), LayerState::Dense(s)) => {
                    let use_mask = train && l.dropconnect > 0.0;
                    if use_mask {
                        dropout::fill_mask(&mut s.mask, l.dropconnect, rng);
                    }
                    dense::forward(l, s, use_mask, x, y, batch, self.par);
                }
                (Layer::BatchNorm1d(b), LayerState::Bn { cache, .. }) => {
                    if train {
                        batchnorm::forward_train(b, x, y, batch, cache);
                    } else {
                        batchnorm::forward_eval(b, x, y);
                    }
                }
                (Layer::Dropout(rate), LayerState::Dropout { mask }) => {
                    let classic = self.dropout_kind == DropoutKind::Classic;
                    if train && *rate > 0.0 {
                        let m = &mut mask[..batch * wout];
                        dropout::fill_mask(m, *rate, rng);
                        if classic {
                            dropout::make_classic(m);
                        }
                        dropout::apply_mask(x, m, y);
                    } else if classic && *rate > 0.0 {
                        let keep = 1.0 - *rate;
                        y.iter_mut().zip(x).for_each(|(y, &x)| *y = x * keep);
                    } else {
                        y.copy_from_slice(x);
                    }
                }
                (Layer::Activation(a), _) => activation::forward(*a, x, y, wout),
                _ => unreachable!("layer state matches its layer"),
            }
        }
        let n = self.widths.len() - 1;
        &self.acts[n][..batch * self.widths[n]]
    }

    /// The loss of the last forward pass against `labels` (summed over rows) and the number of
    /// correct rows; writes the output gradient for [`Network::backward`].
    pub fn loss_and_grad(&mut self, labels: &[u32]) -> (f64, usize) {
        let n = self.widths.len() - 1;
        let b = labels.len();
        let c = self.widths[n];
        loss::loss_and_grad(
            self.loss,
            &self.acts[n][..b * c],
            labels,
            c,
            &mut self.grads[n][..b * c],
        )
    }

    /// Mutable access to the output gradient of `batch` rows (to drive backward with a custom
    /// objective, as the gradient checks do).
    pub fn output_grad_mut(&mut self, batch: usize) -> &mut [f32] {
        let n = self.widths.len() - 1;
        &mut self.grads[n][..batch * self.widths[n]]
    }

    /// The gradient with respect to the network input from the last backward pass; only
    /// meaningful after `backward(batch, true)` (training skips it).
    pub fn input_grad(&self, batch: usize) -> &[f32] {
        &self.grads[0][..batch * self.widths[0]]
    }

    /// Backward pass through every layer after a training-mode forward pass; parameter
    /// gradients are overwritten. The gradient of the data input is only computed when
    /// `input_grad` is set.
    pub fn backward(&mut self, batch: usize, input_grad: bool) {
        self.backward_with_penalty(batch, input_grad, None);
    }

    /// [`Network::backward`] with the gradient of a KL-sparsity penalty on every hidden
    /// activation layer's outputs added where it reaches them ([`crate::nn::sparsity`]; Poisson
    /// divergence for ReLU, Bernoulli for sigmoid units; other activations are refused by the
    /// configuration and skipped here). The penalty's value is [`Network::activity_penalty`].
    pub fn backward_with_penalty(
        &mut self,
        batch: usize,
        input_grad: bool,
        sparsity: Option<&KlSparsity>,
    ) {
        for i in (0..self.seq.layers.len()).rev() {
            let (win, wout) = (self.widths[i], self.widths[i + 1]);
            let need_dx = input_grad || i > self.first_param;
            let (glo, ghi) = self.grads.split_at_mut(i + 1);
            if let (Some(s), Layer::Activation(a)) = (sparsity, &self.seq.layers[i]) {
                if let Some(div) = Divergence::for_activation(*a) {
                    let y = &self.acts[i + 1][..batch * wout];
                    sparsity::add_gradient(div, s, y, &mut ghi[0][..batch * wout], batch, wout);
                }
            }
            let dy = &ghi[0][..batch * wout];
            let dx = &mut glo[i][..batch * win];
            let x = &self.acts[i][..batch * win];
            let y = &self.acts[i + 1][..batch * wout];
            match (&self.seq.layers[i], &mut self.states[i]) {
                (Layer::Linear(l), LayerState::Dense(s)) => {
                    let use_mask = l.dropconnect > 0.0;
                    dense::backward(
                        l,
                        s,
                        use_mask,
                        x,
                        dy,
                        need_dx.then_some(dx),
                        batch,
                        self.par,
                    );
                }
                (
                    Layer::BatchNorm1d(b),
                    LayerState::Bn {
                        cache,
                        dgamma,
                        dbeta,
                    },
                ) => {
                    batchnorm::backward(b, cache, dy, need_dx.then_some(dx), dgamma, dbeta, batch);
                }
                (Layer::Dropout(rate), LayerState::Dropout { mask }) => {
                    if need_dx {
                        if *rate > 0.0 {
                            dropout::apply_mask(dy, &mask[..batch * wout], dx);
                        } else {
                            dx.copy_from_slice(dy);
                        }
                    }
                }
                (Layer::Activation(a), _) => {
                    if need_dx {
                        activation::backward(*a, x, y, dy, dx, wout);
                    }
                }
                _ => unreachable!("layer state matches its layer"),
            }
        }
    }

    /// The KL-sparsity penalty of the last forward pass's `batch` rows, summed over the hidden
    /// activation layers (what [`Network::backward_with_penalty`] differentiates).
    pub fn activity_penalty(&self, batch: usize, s: &KlSparsity) -> f64 {
        self.seq
            .layers
            .iter()
            .enumerate()
            .filter_map(|(i, l)| match l {
                Layer::Activation(a) => Divergence::for_activation(*a).map(|d| (i, d)),
                _ => None,
            })
            .map(|(i, div)| {
                let w = self.widths[i + 1];
                sparsity::penalty(div, s, &self.acts[i + 1][..batch * w], batch, w)
            })
            .sum()
    }

    /// Every parameter tensor with its gradient, in layer order (weight before bias).
    pub fn params(&mut self) -> Vec<ParamMut<'_>> {
        let mut out = Vec::new();
        for (l, s) in self.seq.layers.iter_mut().zip(self.states.iter_mut()) {
            match (l, s) {
                (Layer::Linear(l), LayerState::Dense(s)) => {
                    let cols = l.in_features;
                    out.push(ParamMut {
                        value: &mut l.weight,
                        grad: &mut s.dw,
                        kind: ParamKind::Weight,
                        cols,
                    });
                    out.push(ParamMut {
                        cols: l.bias.len(),
                        value: &mut l.bias,
                        grad: &mut s.db,
                        kind: ParamKind::Bias,
                    });
                }
                (Layer::BatchNorm1d(b), LayerState::Bn { dgamma, dbeta, .. }) => {
                    out.push(ParamMut {
                        cols: b.features,
                        value: &mut b.weight,
                        grad: dgamma,
                        kind: ParamKind::BnWeight,
                    });
                    out.push(ParamMut {
                        cols: b.features,
                        value: &mut b.bias,
                        grad: dbeta,
                        kind: ParamKind::BnBias,
                    });
                }
                _ => {}
            }
        }
        out
    }

    /// Sizes of the parameter tensors, in [`Network::params`] order.
    pub fn param_sizes(&mut self) -> Vec<usize> {
        self.params().iter().map(|p| p.value.len()).collect()
    }

    /// Sets the DropConnect mask of layer `i` (for gradient checks with a fixed mask).
    pub fn set_dropconnect_mask(&mut self, i: usize, mask: &[f32]) {
        if let LayerState::Dense(s) = &mut self.states[i] {
            s.mask.copy_from_slice(mask);
        }
    }

    /// The DropConnect mask of layer `i` (empty if none).
    pub fn dropconnect_mask(&self, i: usize) -> &[f32] {
        match &self.states[i] {
            LayerState::Dense(s) => &s.mask,
            _ => &[],
        }
    }

    /// The dropout mask of layer `i` (empty if not a dropout layer).
    pub fn dropout_mask(&self, i: usize) -> &[f32] {
        match &self.states[i] {
            LayerState::Dropout { mask } => mask,
            _ => &[],
        }
    }

    /// Evaluation-mode loss (summed) and correct count over a whole data set, in chunks of the
    /// maximum batch size. `x` must already be transformed.
    pub fn evaluate(&mut self, x: &[f32], y: &[u32], rng: &mut TrainRng) -> (f64, usize) {
        let f = self.widths[0];
        let c = self.classes();
        let which = self.loss;
        let mut total = 0.0;
        let mut correct = 0;
        let mut start = 0;
        while start < y.len() {
            let b = (y.len() - start).min(self.max_batch);
            self.input_mut(b)
                .copy_from_slice(&x[start * f..(start + b) * f]);
            let out = self.forward(b, false, rng);
            let (l, k) = loss::loss_only(which, out, &y[start..start + b], c);
            total += l;
            correct += k;
            start += b;
        }
        (total, correct)
    }
}

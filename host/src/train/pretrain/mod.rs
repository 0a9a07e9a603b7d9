//! Greedy layer-wise pretraining (the lecture's "Greedy Layer-wise Training"): before the
//! supervised training, each hidden dense layer in turn is trained *unsupervised* on the
//! representation computed by the layers below it (already pretrained); then the encoders
//! initialise the classifier, which is fine-tuned with supervision (all weights).
//!
//! Methods (`[pretrain] method = ...`):
//! - `"autoencoder"`: encoder `y = s(W x + b)` (the network's layer and hidden activation `s`),
//!   decoder `z = g(W' y + b')` with untied `W'` (Xavier-initialised, discarded afterwards) or
//!   tied `W' = Wᵀ` (`tied = true`). Decoder activation `g` (`decoder_activation`): `"identity"`
//!   (real-valued inputs), `"sigmoid"` (inputs in `[0, 1]`), or `"auto"` (default: sigmoid when
//!   every input of the layer lies in `[0, 1]`, else identity). Loss: the mean squared
//!   reconstruction error `Σ (z − x)² / (batch · inputs)`.
//! - `"denoising"`: the same, but the encoder sees a corrupted input `x̃` and the target is the
//!   clean `x`: `corruption = "masking"` sets each input to 0 with probability
//!   `corruption_level` (no rescaling), `"gaussian"` adds `N(0, corruption_level²)` noise.
//! - `"sparse"`: the autoencoder loss plus `β Σ_j KL(ρ ‖ ρ̂_j)` with
//!   `KL(ρ ‖ ρ̂) = ρ ln(ρ/ρ̂) + (1−ρ) ln((1−ρ)/(1−ρ̂))`, `ρ̂_j` the mean activation of hidden unit
//!   `j` over the mini-batch, `ρ = sparsity_target`, `β = sparsity_weight`. `ρ̂_j` must be a
//!   firing probability: this method needs sigmoid hidden units (`model.activation = "sigmoid"`).
//!   The reconstruction term is a mean per input while the penalty sums over hidden units, so
//!   useful weights are small: default `ρ = 0.05`, `β = 0.01` (on the digits, `β = 0.1` drives
//!   every unit towards `ρ` so hard that fine-tuning a sigmoid network stalls near chance).
//! - `"rbm"`: a Bernoulli-Bernoulli restricted Boltzmann machine per layer (deep-belief-network
//!   pretraining), energy `E(v, h) = −bᵀv − cᵀh − hᵀWv`, trained with contrastive divergence
//!   CD-k (`cd_k`): `h₀ ~ p(h | v₀)` sampled, `k` Gibbs steps with mean-field visible units
//!   (`v_t = p(v | h_{t−1})`, Hinton's practical guide), hidden states sampled except at the
//!   last step, then `ΔW ∝ p(h|v₀)ᵀ v₀ − p(h|v_k)ᵀ v_k`, `Δb ∝ v₀ − v_k`, `Δc ∝ p(h|v₀) − p(h|v_k)`
//!   (batch means). This is the gradient of the free-energy difference `F(v₀) − F(v_k)` with
//!   `v_k` held fixed, `F(v) = −bᵀv − Σ_j softplus(c_j + W_j v)` (tested). Inputs are used as
//!   probabilities, so the first layer's inputs must lie in `[0, 1]` (`data.transform =
//!   "scale_by_max"`), and the hidden units are sigmoid units (`model.activation = "sigmoid"`);
//!   the representation passed up is `p(h | v)`. The monitored loss is the mean squared
//!   one-step reconstruction error `(v₀ − p(v | h₀))²`. The classifier receives `W` and `c`.
//!
//! Every method trains with SGD and momentum (`lr`, `momentum`), `epochs` per layer, mini-batches
//! of `batch_size` (default: the training batch size), on the training split (already
//! transformed). Batch norm and dropout layers of the network are skipped while pretraining;
//! they take part in the fine-tuning. The output layer is not pretrained. Deterministic for a
//! seed (random stream 4: shuffles, corruption, Gibbs samples, decoder initialisation).
//!
//! Running it: a `[pretrain]` section makes `microdnn train` pretrain and then fine-tune;
//! `microdnn pretrain --config FILE --out DIR` only pretrains and writes a checkpoint (the
//! classifier with pretrained hidden layers and an initialised output layer) that
//! `microdnn train --config FILE --init DIR` fine-tunes (same result, bit for bit, as one `train`
//! with `[pretrain]`). Either model exports like any other.

mod autoencoder;
mod rbm;

use gemm::Parallelism;
use microdnn::Activation;
use serde::{Deserialize, Serialize};

pub use crate::train::config::{Corruption, DecoderActivation, Method, PretrainConfig};
pub use autoencoder::{train_autoencoder, AeGrads, Autoencoder};
pub use rbm::{train_rbm, Rbm, RbmGrads};

use crate::data::Dataset;
use crate::model::{Layer, Linear, Sequential};
use crate::nn::matmul;
use crate::nn::optim::OptimizerConfig;
use crate::random::{rng_for, shuffle, TrainRng};

/// A pretraining method that does not fit the network or its data.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PretrainError {
    /// Sparse autoencoders and RBMs read hidden units as firing probabilities.
    #[error(
        "pretrain.method = {method:?} needs sigmoid hidden units (model.activation = \"sigmoid\"), \
         not {activation:?}"
    )]
    NeedsSigmoid {
        /// The method.
        method: Method,
        /// The network's hidden activation.
        activation: Activation,
    },
    /// An RBM's inputs are probabilities.
    #[error(
        "pretrain.method = \"rbm\" uses its inputs as probabilities: they must lie in [0, 1] \
         (data.transform = \"scale_by_max\")"
    )]
    InputsNotProbabilities,
}

/// Reconstruction losses of one pretrained layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerPretraining {
    /// Position of the dense layer in the `Sequential`.
    pub layer: usize,
    /// Mean reconstruction loss (mean squared error per input) of each epoch.
    pub losses: Vec<f64>,
    /// The method (`autoencoder`, `denoising`, `sparse`, `rbm`).
    #[serde(default)]
    pub method: Option<Method>,
}

fn par(threads: usize) -> Parallelism {
    matmul::parallelism(threads)
}

/// A pretrained layer.
#[derive(Clone, Debug, PartialEq)]
pub enum Pretrained {
    /// An autoencoder.
    Autoencoder(Autoencoder),
    /// An RBM.
    Rbm(Rbm),
}

impl Pretrained {
    /// The hidden representation (RBM: `p(h | v)`).
    pub fn encode(&self, x: &[f32], rows: usize) -> Vec<f32> {
        match self {
            Pretrained::Autoencoder(a) => a.encode(x, rows),
            Pretrained::Rbm(r) => r.hidden_probs(x, rows),
        }
    }

    /// The reconstruction of the input from a hidden representation (RBM: `p(v | h)`).
    pub fn decode(&self, y: &[f32], rows: usize) -> Vec<f32> {
        match self {
            Pretrained::Autoencoder(a) => a.decode(y, rows),
            Pretrained::Rbm(r) => r.visible_probs(y, rows),
        }
    }

    /// Encoder weight `[hidden, inputs]` and bias.
    pub fn encoder(&self) -> (&[f32], &[f32]) {
        match self {
            Pretrained::Autoencoder(a) => (&a.w, &a.b),
            Pretrained::Rbm(r) => (&r.w, &r.c),
        }
    }
}

/// Reconstructs `rows` inputs through a stack: encode through every layer, then decode back.
pub fn reconstruct(stack: &[Pretrained], x: &[f32], rows: usize) -> Vec<f32> {
    let mut v = x.to_vec();
    for p in stack {
        v = p.encode(&v, rows);
    }
    for p in stack.iter().rev() {
        v = p.decode(&v, rows);
    }
    v
}

fn gather(inputs: &[f32], width: usize, idx: &[usize], out: &mut Vec<f32>) {
    out.clear();
    for &i in idx {
        out.extend_from_slice(&inputs[i * width..(i + 1) * width]);
    }
}

/// The epochs of one layer's pretraining: `epochs` passes over the `rows` inputs (`width` wide),
/// each in a new shuffle of the previous order (random stream 4), in mini-batches of `batch`;
/// `batch_step(x, rows, rng)` trains on one gathered batch and returns its mean loss. Returns
/// each epoch's mean loss. Autoencoders and RBMs differ only in their `batch_step`.
fn sgd_epochs(
    inputs: &[f32],
    width: usize,
    rows: usize,
    epochs: usize,
    batch: usize,
    rng: &mut TrainRng,
    mut batch_step: impl FnMut(&[f32], usize, &mut TrainRng) -> f64,
) -> Vec<f64> {
    let mut order: Vec<usize> = (0..rows).collect();
    let mut x = Vec::new();
    let mut losses = Vec::new();
    for _ in 0..epochs {
        shuffle(&mut order, rng);
        let mut total = 0.0;
        for idx in order.chunks(batch.max(1)) {
            gather(inputs, width, idx, &mut x);
            total += batch_step(&x, idx.len(), rng) * idx.len() as f64;
        }
        losses.push(total / rows.max(1) as f64);
    }
    losses
}

/// Plain SGD with the configured momentum (every method trains with it).
fn sgd(cfg: &PretrainConfig) -> OptimizerConfig {
    OptimizerConfig::Sgd {
        momentum: cfg.momentum,
        nesterov: false,
    }
}

fn in_unit_interval(x: &[f32]) -> bool {
    x.iter().all(|&v| (-1e-6..=1.0 + 1e-6).contains(&v))
}

/// Greedy layer-wise pretraining of a stack of encoders on `rows` inputs of width `inputs`:
/// `layers` gives each encoder's initial weights and hidden activation. Returns the trained
/// layers (with their decoders) and the losses; the report's `layer` is the position in
/// `layers`.
#[allow(clippy::too_many_arguments)]
pub fn pretrain_stack(
    inputs: &[f32],
    rows: usize,
    layers: &[(Linear, Activation)],
    cfg: &PretrainConfig,
    batch: usize,
    threads: usize,
    rng: &mut TrainRng,
) -> Result<(Vec<Pretrained>, Vec<LayerPretraining>), PretrainError> {
    let mut x = inputs.to_vec();
    let mut stack = Vec::new();
    let mut report = Vec::new();
    for (k, (enc, act)) in layers.iter().enumerate() {
        let needs_sigmoid = matches!(cfg.method, Method::Sparse | Method::Rbm);
        if needs_sigmoid && *act != Activation::Sigmoid {
            return Err(PretrainError::NeedsSigmoid {
                method: cfg.method,
                activation: *act,
            });
        }
        let unit = in_unit_interval(&x);
        let (p, losses) = if cfg.method == Method::Rbm {
            if !unit {
                return Err(PretrainError::InputsNotProbabilities);
            }
            let mut rbm = Rbm::new(enc.in_features, enc.out_features, rng);
            let losses = train_rbm(&mut rbm, &x, rows, cfg, batch, threads, rng);
            (Pretrained::Rbm(rbm), losses)
        } else {
            let dec = match cfg.decoder_activation {
                DecoderActivation::Identity => Activation::Identity,
                DecoderActivation::Sigmoid => Activation::Sigmoid,
                DecoderActivation::Auto if unit => Activation::Sigmoid,
                DecoderActivation::Auto => Activation::Identity,
            };
            let mut ae = Autoencoder::new(enc, *act, dec, cfg.tied, rng);
            if cfg.method == Method::Sparse {
                ae.sparsity = Some((cfg.sparsity_target, cfg.sparsity_weight));
            }
            let losses = train_autoencoder(&mut ae, &x, rows, cfg, batch, threads, rng);
            (Pretrained::Autoencoder(ae), losses)
        };
        x = p.encode(&x, rows);
        stack.push(p);
        report.push(LayerPretraining {
            layer: k,
            losses,
            method: Some(cfg.method),
        });
    }
    Ok((stack, report))
}

/// Pretrains every hidden dense layer of `seq` (all but the last dense layer) on the inputs of
/// `train` (already transformed) and writes the encoders into `seq`. Deterministic for a seed
/// (random stream 4). `batch_size` is the training batch size (used unless the config sets one).
pub fn pretrain(
    seq: &mut Sequential,
    train: &Dataset,
    cfg: &PretrainConfig,
    seed: u64,
    batch_size: usize,
    threads: usize,
) -> Result<Vec<LayerPretraining>, PretrainError> {
    let dense: Vec<usize> = seq
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| matches!(l, Layer::Linear(_)))
        .map(|(i, _)| i)
        .collect();
    let hidden = &dense[..dense.len().saturating_sub(1)];
    let layers: Vec<(Linear, Activation)> = hidden
        .iter()
        .map(|&li| {
            let Layer::Linear(enc) = &seq.layers[li] else {
                unreachable!()
            };
            let act = seq.layers[li + 1..]
                .iter()
                .find_map(|l| match l {
                    Layer::Activation(a) => Some(*a),
                    Layer::Linear(_) => Some(Activation::Identity),
                    _ => None,
                })
                .unwrap_or(Activation::Identity);
            (enc.clone(), act)
        })
        .collect();
    let mut rng = rng_for(seed, 4);
    let batch = cfg.batch_size.unwrap_or(batch_size).max(1);
    let (stack, mut report) = pretrain_stack(
        &train.x,
        train.len(),
        &layers,
        cfg,
        batch,
        threads,
        &mut rng,
    )?;
    for ((p, r), &li) in stack.iter().zip(&mut report).zip(hidden) {
        let (w, b) = p.encoder();
        if let Layer::Linear(target) = &mut seq.layers[li] {
            target.weight.copy_from_slice(w);
            target.bias.copy_from_slice(b);
        }
        r.layer = li;
    }
    Ok(report)
}

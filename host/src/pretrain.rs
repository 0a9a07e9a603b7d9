//! Greedy layer-wise pretraining (the lecture's "Greedy Layer-wise Training"): before the
//! supervised training, each hidden dense layer in turn is trained as the encoder of a one-layer
//! autoencoder that reconstructs its own input, the output of the layers below (already
//! pretrained, evaluation mode).
//!
//! For hidden layer `k` with activation `f`: encoder `h = f(x Wₖᵀ + bₖ)`, a fresh linear decoder
//! `x̂ = h Dᵀ + c` (Xavier-initialised, discarded afterwards), loss the mean squared
//! reconstruction error `Σ(x̂ - x)² / (batch · inputs)`. With `noise > 0` the input is corrupted
//! by dropout first (a denoising autoencoder) while the target stays clean. Batch norm and
//! dropout layers of the network are skipped here; they take part in the fine-tuning.

use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::model::{Layer, Linear, Predictor, Sequential};
use crate::nn::init::Init;
use crate::nn::loss::Loss;
use crate::nn::network::Network;
use crate::nn::optim::{Optimizer, OptimizerConfig};
use crate::random::{rng_for, shuffle};

/// Pretraining settings (`[pretrain]` in the config).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PretrainConfig {
    /// Epochs per layer.
    pub epochs: usize,
    /// Learning rate (SGD with momentum 0.9).
    pub lr: f32,
    /// Input dropout rate of the denoising autoencoder (0 = plain autoencoder).
    pub noise: f32,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        Self {
            epochs: 5,
            lr: 0.01,
            noise: 0.0,
        }
    }
}

/// Reconstruction losses of one pretrained layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerPretraining {
    /// Position of the dense layer in the `Sequential`.
    pub layer: usize,
    /// Mean reconstruction loss of each epoch.
    pub losses: Vec<f64>,
}

/// Pretrains every hidden dense layer of `seq` (all but the last dense layer) on the inputs of
/// `train` (already transformed). Deterministic for a seed (random stream 4).
pub fn pretrain(
    seq: &mut Sequential,
    train: &Dataset,
    cfg: &PretrainConfig,
    seed: u64,
    batch_size: usize,
    threads: usize,
) -> Vec<LayerPretraining> {
    let dense: Vec<usize> = seq
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| matches!(l, Layer::Linear(_)))
        .map(|(i, _)| i)
        .collect();
    let mut rng = rng_for(seed, 4);
    let mut inputs = train.x.clone();
    let mut width = train.features;
    let n = train.len();
    let mut report = Vec::new();
    for &li in dense.iter().take(dense.len().saturating_sub(1)) {
        let Layer::Linear(enc) = &seq.layers[li] else {
            unreachable!()
        };
        let act = seq.layers[li + 1..]
            .iter()
            .find_map(|l| match l {
                Layer::Activation(a) => Some(*a),
                Layer::Linear(_) => Some(microdnn::Activation::Identity),
                _ => None,
            })
            .unwrap_or(microdnn::Activation::Identity);
        let h = enc.out_features;
        let mut dec = Linear::from_parts(h, width, vec![0.0; h * width], vec![0.0; width]);
        Init::XavierUniform.fill(&mut dec.weight, h, width, &mut rng);
        let mut layers = Vec::new();
        if cfg.noise > 0.0 {
            layers.push(Layer::Dropout(cfg.noise));
        }
        let enc_at = layers.len();
        layers.push(Layer::Linear(Linear {
            dropconnect: 0.0,
            ..enc.clone()
        }));
        layers.push(Layer::Activation(act));
        layers.push(Layer::Linear(dec));
        let mut net = Network::new(Sequential::new(layers), Loss::Mse, batch_size, threads);
        let mut opt = Optimizer::new(
            OptimizerConfig::Sgd {
                momentum: 0.9,
                nesterov: false,
            },
            &net.param_sizes(),
        );
        let mut order: Vec<usize> = (0..n).collect();
        let mut losses = Vec::new();
        for _ in 0..cfg.epochs {
            shuffle(&mut order, &mut rng);
            let mut total = 0.0f64;
            for idx in order.chunks(batch_size) {
                let b = idx.len();
                let input = net.input_mut(b);
                for (r, &i) in idx.iter().enumerate() {
                    input[r * width..(r + 1) * width]
                        .copy_from_slice(&inputs[i * width..(i + 1) * width]);
                }
                let out = net.forward(b, true, &mut rng).to_vec();
                let k = 2.0 / (b * width) as f32;
                let grad = net.output_grad_mut(b);
                for (r, &i) in idx.iter().enumerate() {
                    let target = &inputs[i * width..(i + 1) * width];
                    let o = &out[r * width..(r + 1) * width];
                    for ((g, &y), &t) in grad[r * width..(r + 1) * width]
                        .iter_mut()
                        .zip(o)
                        .zip(target)
                    {
                        let e = y - t;
                        total += (e as f64) * (e as f64);
                        *g = k * e;
                    }
                }
                net.backward(b, false);
                opt.step(&mut net.params(), cfg.lr);
            }
            losses.push(total / (n * width) as f64);
        }
        let Layer::Linear(trained) = &net.seq.layers[enc_at] else {
            unreachable!()
        };
        if let Layer::Linear(target) = &mut seq.layers[li] {
            target.weight.clone_from(&trained.weight);
            target.bias.clone_from(&trained.bias);
        }
        // The next layer's inputs: this encoder's outputs for every training example.
        let encoder = Sequential::new(vec![net.seq.layers[enc_at].clone(), Layer::Activation(act)]);
        let mut p = Predictor::new(&encoder, 256);
        let mut next = Vec::with_capacity(n * h);
        for chunk in inputs.chunks(256 * width) {
            next.extend_from_slice(p.predict_batch(chunk, chunk.len() / width));
        }
        inputs = next;
        width = h;
        report.push(LayerPretraining { layer: li, losses });
    }
    report
}

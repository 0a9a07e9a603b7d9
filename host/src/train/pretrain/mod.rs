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

use gemm::Parallelism;
use microdnn::Activation;
use serde::{Deserialize, Serialize};

pub use crate::train::config::{Corruption, DecoderActivation, Method, PretrainConfig};

use crate::data::Dataset;
use crate::model::{Layer, Linear, Sequential};
use crate::nn::init::Init;
use crate::nn::network::{ParamKind, ParamMut};
use crate::nn::optim::{Optimizer, OptimizerConfig};
use crate::nn::{activation, matmul};
use crate::random::{normal, rng_for, shuffle, uniform01, TrainRng};

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

fn sigmoid_in_place(v: &mut [f32]) {
    v.iter_mut().for_each(|x| *x = microdnn::math::sigmoid(*x));
}

/// One autoencoder layer: encoder `y = enc(x Wᵀ + b)`, decoder `z = dec(y W'ᵀ + c)` with
/// `W' = w_dec` (`[inputs, hidden]`) or, tied, `W' = Wᵀ`.
#[derive(Clone, Debug, PartialEq)]
pub struct Autoencoder {
    /// Inputs.
    pub inputs: usize,
    /// Hidden units.
    pub hidden: usize,
    /// Encoder weight `[hidden, inputs]`.
    pub w: Vec<f32>,
    /// Encoder bias `[hidden]`.
    pub b: Vec<f32>,
    /// Untied decoder weight `[inputs, hidden]`; `None` = tied (`Wᵀ`).
    pub w_dec: Option<Vec<f32>>,
    /// Decoder bias `[inputs]`.
    pub c: Vec<f32>,
    /// Encoder activation.
    pub enc: Activation,
    /// Decoder activation.
    pub dec: Activation,
    /// Sparsity penalty `(ρ, β)`.
    pub sparsity: Option<(f32, f32)>,
}

/// Gradients of an [`Autoencoder`]'s loss (same shapes as its parameters).
#[derive(Clone, Debug, PartialEq)]
pub struct AeGrads {
    /// Encoder weight gradient (both uses when tied).
    pub w: Vec<f32>,
    /// Encoder bias gradient.
    pub b: Vec<f32>,
    /// Decoder weight gradient (empty when tied).
    pub w_dec: Vec<f32>,
    /// Decoder bias gradient.
    pub c: Vec<f32>,
}

/// Values of one forward pass.
struct AeForward {
    a: Vec<f32>,
    y: Vec<f32>,
    zp: Vec<f32>,
    z: Vec<f32>,
}

impl Autoencoder {
    /// An autoencoder around an encoder layer; an untied decoder is Xavier-initialised from
    /// `rng`, its bias zero.
    pub fn new(
        encoder: &Linear,
        enc: Activation,
        dec: Activation,
        tied: bool,
        rng: &mut TrainRng,
    ) -> Self {
        let (n, h) = (encoder.in_features, encoder.out_features);
        let w_dec = (!tied).then(|| {
            let mut w = vec![0.0; n * h];
            Init::XavierUniform.fill(&mut w, h, n, rng);
            w
        });
        Self {
            inputs: n,
            hidden: h,
            w: encoder.weight.clone(),
            b: encoder.bias.clone(),
            w_dec,
            c: vec![0.0; n],
            enc,
            dec,
            sparsity: None,
        }
    }

    /// Zero gradients of the right shapes.
    pub fn zero_grads(&self) -> AeGrads {
        AeGrads {
            w: vec![0.0; self.w.len()],
            b: vec![0.0; self.b.len()],
            w_dec: vec![0.0; self.w_dec.as_ref().map_or(0, |w| w.len())],
            c: vec![0.0; self.c.len()],
        }
    }

    /// The hidden representation `enc(x Wᵀ + b)` of `rows` inputs.
    pub fn encode(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut a = vec![0.0; rows * self.hidden];
        matmul::linear_forward(
            x,
            &self.w,
            &self.b,
            &mut a,
            rows,
            self.inputs,
            self.hidden,
            Parallelism::None,
        );
        let mut y = vec![0.0; a.len()];
        activation::forward(self.enc, &a, &mut y, self.hidden);
        y
    }

    fn decoder_pre(&self, y: &[f32], rows: usize, p: Parallelism) -> Vec<f32> {
        let (n, h) = (self.inputs, self.hidden);
        let mut zp = vec![0.0; rows * n];
        match &self.w_dec {
            Some(wd) => matmul::linear_forward(y, wd, &self.c, &mut zp, rows, h, n, p),
            None => {
                // zp[rows, n] = y[rows, h] · W[h, n] + c
                matmul::input_grad(y, &self.w, &mut zp, rows, n, h, p);
                for r in zp.chunks_exact_mut(n) {
                    r.iter_mut().zip(&self.c).for_each(|(z, c)| *z += c);
                }
            }
        }
        zp
    }

    /// The reconstruction `dec(y W'ᵀ + c)` of `rows` hidden representations.
    pub fn decode(&self, y: &[f32], rows: usize) -> Vec<f32> {
        let zp = self.decoder_pre(y, rows, Parallelism::None);
        let mut z = vec![0.0; zp.len()];
        activation::forward(self.dec, &zp, &mut z, self.inputs);
        z
    }

    fn forward(&self, x: &[f32], rows: usize, p: Parallelism) -> AeForward {
        let mut a = vec![0.0; rows * self.hidden];
        matmul::linear_forward(
            x,
            &self.w,
            &self.b,
            &mut a,
            rows,
            self.inputs,
            self.hidden,
            p,
        );
        let mut y = vec![0.0; a.len()];
        activation::forward(self.enc, &a, &mut y, self.hidden);
        let zp = self.decoder_pre(&y, rows, p);
        let mut z = vec![0.0; zp.len()];
        activation::forward(self.dec, &zp, &mut z, self.inputs);
        AeForward { a, y, zp, z }
    }

    fn mean_activations(&self, y: &[f32], rows: usize) -> Vec<f64> {
        let mut m = vec![0.0f64; self.hidden];
        for r in y.chunks_exact(self.hidden) {
            m.iter_mut().zip(r).for_each(|(m, &v)| *m += v as f64);
        }
        m.iter_mut()
            .for_each(|v| *v = (*v / rows as f64).clamp(1e-6, 1.0 - 1e-6));
        m
    }

    fn penalty(&self, rho_hat: &[f64]) -> f64 {
        match self.sparsity {
            Some((rho, beta)) => {
                let rho = rho as f64;
                beta as f64
                    * rho_hat
                        .iter()
                        .map(|&q| {
                            rho * (rho / q).ln() + (1.0 - rho) * ((1.0 - rho) / (1.0 - q)).ln()
                        })
                        .sum::<f64>()
            }
            None => 0.0,
        }
    }

    /// The loss of reconstructing `target` from `input` (`rows` each): `(reconstruction, total)`
    /// with reconstruction `Σ (z − target)² / (rows · inputs)` and total = reconstruction + the
    /// sparsity penalty.
    pub fn loss(&self, input: &[f32], target: &[f32], rows: usize) -> (f64, f64) {
        let f = self.forward(input, rows, Parallelism::None);
        let recon =
            f.z.iter()
                .zip(target)
                .map(|(&z, &t)| ((z - t) as f64).powi(2))
                .sum::<f64>()
                / (rows * self.inputs) as f64;
        let pen = if self.sparsity.is_some() {
            self.penalty(&self.mean_activations(&f.y, rows))
        } else {
            0.0
        };
        (recon, recon + pen)
    }

    /// [`Autoencoder::loss`] and its gradient (overwrites `g`).
    pub fn loss_and_grad(
        &self,
        input: &[f32],
        target: &[f32],
        rows: usize,
        g: &mut AeGrads,
        threads: usize,
    ) -> (f64, f64) {
        let p = par(threads);
        let (n, h) = (self.inputs, self.hidden);
        let f = self.forward(input, rows, p);
        let k = 2.0 / (rows * n) as f32;
        let mut recon = 0.0f64;
        let dz: Vec<f32> =
            f.z.iter()
                .zip(target)
                .map(|(&z, &t)| {
                    let e = z - t;
                    recon += (e as f64) * (e as f64);
                    k * e
                })
                .collect();
        recon /= (rows * n) as f64;
        let mut dzp = vec![0.0; dz.len()];
        activation::backward(self.dec, &f.zp, &f.z, &dz, &mut dzp, n);
        matmul::column_sums(&dzp, &mut g.c, rows, n);
        let mut dy = vec![0.0; rows * h];
        match &self.w_dec {
            Some(wd) => {
                matmul::weight_grad(&dzp, &f.y, &mut g.w_dec, rows, h, n, p);
                matmul::input_grad(&dzp, wd, &mut dy, rows, h, n, p);
            }
            None => {
                let zeros = vec![0.0; h];
                matmul::linear_forward(&dzp, &self.w, &zeros, &mut dy, rows, n, h, p);
            }
        }
        let mut pen = 0.0;
        if let Some((rho, beta)) = self.sparsity {
            let q = self.mean_activations(&f.y, rows);
            pen = self.penalty(&q);
            let rho = rho as f64;
            let d: Vec<f32> = q
                .iter()
                .map(|&q| (beta as f64 / rows as f64 * (-rho / q + (1.0 - rho) / (1.0 - q))) as f32)
                .collect();
            for r in dy.chunks_exact_mut(h) {
                r.iter_mut().zip(&d).for_each(|(g, d)| *g += d);
            }
        }
        let mut da = vec![0.0; dy.len()];
        activation::backward(self.enc, &f.a, &f.y, &dy, &mut da, h);
        matmul::weight_grad(&da, input, &mut g.w, rows, n, h, p);
        matmul::column_sums(&da, &mut g.b, rows, h);
        if self.w_dec.is_none() {
            // The decoder's use of W: dW[h, n] += yᵀ · dzp.
            let mut dw2 = vec![0.0; g.w.len()];
            matmul::weight_grad(&f.y, &dzp, &mut dw2, rows, n, h, p);
            g.w.iter_mut().zip(&dw2).for_each(|(a, b)| *a += b);
        }
        (recon, recon + pen)
    }

    /// The parameters with gradients, for the optimiser.
    fn params<'a>(&'a mut self, g: &'a mut AeGrads) -> Vec<ParamMut<'a>> {
        let (n, h) = (self.inputs, self.hidden);
        let mut v = vec![
            ParamMut {
                value: &mut self.w,
                grad: &mut g.w,
                kind: ParamKind::Weight,
                cols: n,
            },
            ParamMut {
                value: &mut self.b,
                grad: &mut g.b,
                kind: ParamKind::Bias,
                cols: h,
            },
        ];
        if let Some(wd) = &mut self.w_dec {
            v.push(ParamMut {
                value: wd,
                grad: &mut g.w_dec,
                kind: ParamKind::Weight,
                cols: h,
            });
        }
        v.push(ParamMut {
            value: &mut self.c,
            grad: &mut g.c,
            kind: ParamKind::Bias,
            cols: n,
        });
        v
    }
}

/// A Bernoulli-Bernoulli restricted Boltzmann machine.
#[derive(Clone, Debug, PartialEq)]
pub struct Rbm {
    /// Visible units.
    pub visible: usize,
    /// Hidden units.
    pub hidden: usize,
    /// Weight `[hidden, visible]`.
    pub w: Vec<f32>,
    /// Visible bias.
    pub b: Vec<f32>,
    /// Hidden bias.
    pub c: Vec<f32>,
}

/// Gradients (descent direction) of an [`Rbm`]: the CD estimate of the negative
/// log-likelihood gradient.
#[derive(Clone, Debug, PartialEq)]
pub struct RbmGrads {
    /// Weight gradient.
    pub w: Vec<f32>,
    /// Visible-bias gradient.
    pub b: Vec<f32>,
    /// Hidden-bias gradient.
    pub c: Vec<f32>,
}

impl Rbm {
    /// An RBM with weights `N(0, 0.01²)` and zero biases (Hinton's practical guide).
    pub fn new(visible: usize, hidden: usize, rng: &mut TrainRng) -> Self {
        Self {
            visible,
            hidden,
            w: (0..visible * hidden).map(|_| 0.01 * normal(rng)).collect(),
            b: vec![0.0; visible],
            c: vec![0.0; hidden],
        }
    }

    /// `p(h = 1 | v) = σ(v Wᵀ + c)` for `rows` visible vectors.
    pub fn hidden_probs(&self, v: &[f32], rows: usize) -> Vec<f32> {
        let mut h = vec![0.0; rows * self.hidden];
        matmul::linear_forward(
            v,
            &self.w,
            &self.c,
            &mut h,
            rows,
            self.visible,
            self.hidden,
            Parallelism::None,
        );
        sigmoid_in_place(&mut h);
        h
    }

    /// `p(v = 1 | h) = σ(h W + b)` for `rows` hidden vectors.
    pub fn visible_probs(&self, h: &[f32], rows: usize) -> Vec<f32> {
        let mut v = vec![0.0; rows * self.visible];
        matmul::input_grad(
            h,
            &self.w,
            &mut v,
            rows,
            self.visible,
            self.hidden,
            Parallelism::None,
        );
        for r in v.chunks_exact_mut(self.visible) {
            r.iter_mut().zip(&self.b).for_each(|(v, b)| *v += b);
        }
        sigmoid_in_place(&mut v);
        v
    }

    /// Mean free energy `F(v) = −bᵀv − Σ_j softplus(c_j + W_j v)` over `rows` vectors (f64).
    pub fn free_energy(&self, v: &[f32], rows: usize) -> f64 {
        let (n, h) = (self.visible, self.hidden);
        let mut total = 0.0f64;
        for r in v.chunks_exact(n).take(rows) {
            let mut f = -r
                .iter()
                .zip(&self.b)
                .map(|(&v, &b)| v as f64 * b as f64)
                .sum::<f64>();
            for j in 0..h {
                let x = self.c[j] as f64
                    + self.w[j * n..(j + 1) * n]
                        .iter()
                        .zip(r)
                        .map(|(&w, &v)| w as f64 * v as f64)
                        .sum::<f64>();
                let softplus = if x > 30.0 { x } else { x.exp().ln_1p() };
                f -= softplus;
            }
            total += f;
        }
        total / rows as f64
    }

    /// The CD gradient for data `v0` and chain end `vk` (`rows` each): the gradient of
    /// `mean F(v0) − mean F(vk)` with `vk` held fixed.
    pub fn cd_gradients(&self, v0: &[f32], vk: &[f32], rows: usize, threads: usize) -> RbmGrads {
        let p = par(threads);
        let (n, h) = (self.visible, self.hidden);
        let h0 = self.hidden_probs(v0, rows);
        let hk = self.hidden_probs(vk, rows);
        let mut w0 = vec![0.0; n * h];
        let mut wk = vec![0.0; n * h];
        matmul::weight_grad(&h0, v0, &mut w0, rows, n, h, p);
        matmul::weight_grad(&hk, vk, &mut wk, rows, n, h, p);
        let inv = 1.0 / rows as f32;
        let col_diff = |a: &[f32], b: &[f32], width: usize| {
            let mut sa = vec![0.0; width];
            let mut sb = vec![0.0; width];
            matmul::column_sums(a, &mut sa, rows, width);
            matmul::column_sums(b, &mut sb, rows, width);
            sa.iter()
                .zip(&sb)
                .map(|(a, b)| -(a - b) * inv)
                .collect::<Vec<f32>>()
        };
        RbmGrads {
            w: w0.iter().zip(&wk).map(|(a, b)| -(a - b) * inv).collect(),
            b: col_diff(v0, vk, n),
            c: col_diff(&h0, &hk, h),
        }
    }

    /// Runs the CD-k chain from `v0`: returns the chain end `v_k` (mean-field visible units) and
    /// the one-step mean squared reconstruction error.
    pub fn gibbs_chain(
        &self,
        v0: &[f32],
        rows: usize,
        k: usize,
        rng: &mut TrainRng,
    ) -> (Vec<f32>, f64) {
        let mut ph = self.hidden_probs(v0, rows);
        let mut v = v0.to_vec();
        let mut err = 0.0;
        for step in 0..k.max(1) {
            let hs: Vec<f32> = ph
                .iter()
                .map(|&p| if uniform01(rng) < p { 1.0 } else { 0.0 })
                .collect();
            v = self.visible_probs(&hs, rows);
            if step == 0 {
                err = v
                    .iter()
                    .zip(v0)
                    .map(|(&a, &b)| ((a - b) as f64).powi(2))
                    .sum::<f64>()
                    / v.len().max(1) as f64;
            }
            if step + 1 < k {
                ph = self.hidden_probs(&v, rows);
            }
        }
        (v, err)
    }

    /// Mean squared one-step mean-field reconstruction error `(v − p(v | p(h | v)))²`
    /// (deterministic; a monitor for held-out data).
    pub fn reconstruction_error(&self, v: &[f32], rows: usize) -> f64 {
        let r = self.visible_probs(&self.hidden_probs(v, rows), rows);
        r.iter()
            .zip(v)
            .map(|(&a, &b)| ((a - b) as f64).powi(2))
            .sum::<f64>()
            / r.len().max(1) as f64
    }
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

fn corrupt(cfg: &PretrainConfig, x: &mut [f32], rng: &mut TrainRng) {
    if cfg.method != Method::Denoising || cfg.corruption_level <= 0.0 {
        return;
    }
    match cfg.corruption {
        Corruption::Masking => x.iter_mut().for_each(|v| {
            if uniform01(rng) < cfg.corruption_level {
                *v = 0.0
            }
        }),
        Corruption::Gaussian => x
            .iter_mut()
            .for_each(|v| *v += cfg.corruption_level * normal(rng)),
    }
}

fn gather(inputs: &[f32], width: usize, idx: &[usize], out: &mut Vec<f32>) {
    out.clear();
    for &i in idx {
        out.extend_from_slice(&inputs[i * width..(i + 1) * width]);
    }
}

fn sgd(cfg: &PretrainConfig) -> OptimizerConfig {
    OptimizerConfig::Sgd {
        momentum: cfg.momentum,
        nesterov: false,
    }
}

/// Trains one autoencoder on `rows` inputs for `cfg.epochs` epochs; returns each epoch's mean
/// reconstruction error.
pub fn train_autoencoder(
    ae: &mut Autoencoder,
    inputs: &[f32],
    rows: usize,
    cfg: &PretrainConfig,
    batch: usize,
    threads: usize,
    rng: &mut TrainRng,
) -> Vec<f64> {
    let n = ae.inputs;
    let mut g = ae.zero_grads();
    let sizes: Vec<usize> = ae.params(&mut g).iter().map(|p| p.value.len()).collect();
    let mut opt = Optimizer::new(sgd(cfg), &sizes);
    let mut order: Vec<usize> = (0..rows).collect();
    let (mut clean, mut noisy) = (Vec::new(), Vec::new());
    let mut losses = Vec::new();
    for _ in 0..cfg.epochs {
        shuffle(&mut order, rng);
        let mut total = 0.0;
        for idx in order.chunks(batch.max(1)) {
            gather(inputs, n, idx, &mut clean);
            noisy.clone_from(&clean);
            corrupt(cfg, &mut noisy, rng);
            let (recon, _) = ae.loss_and_grad(&noisy, &clean, idx.len(), &mut g, threads);
            total += recon * idx.len() as f64;
            opt.step(&mut ae.params(&mut g), cfg.lr);
        }
        losses.push(total / rows.max(1) as f64);
    }
    losses
}

/// Trains one RBM with CD-k on `rows` inputs (in [0, 1]); returns each epoch's mean one-step
/// reconstruction error.
pub fn train_rbm(
    rbm: &mut Rbm,
    inputs: &[f32],
    rows: usize,
    cfg: &PretrainConfig,
    batch: usize,
    threads: usize,
    rng: &mut TrainRng,
) -> Vec<f64> {
    let n = rbm.visible;
    let mut opt = Optimizer::new(sgd(cfg), &[rbm.w.len(), rbm.b.len(), rbm.c.len()]);
    let mut order: Vec<usize> = (0..rows).collect();
    let mut v0 = Vec::new();
    let mut losses = Vec::new();
    for _ in 0..cfg.epochs {
        shuffle(&mut order, rng);
        let mut total = 0.0;
        for idx in order.chunks(batch.max(1)) {
            gather(inputs, n, idx, &mut v0);
            let (vk, err) = rbm.gibbs_chain(&v0, idx.len(), cfg.cd_k, rng);
            total += err * idx.len() as f64;
            let mut g = rbm.cd_gradients(&v0, &vk, idx.len(), threads);
            let mut params = [
                ParamMut {
                    value: &mut rbm.w,
                    grad: &mut g.w,
                    kind: ParamKind::Weight,
                    cols: n,
                },
                ParamMut {
                    value: &mut rbm.b,
                    grad: &mut g.b,
                    kind: ParamKind::Bias,
                    cols: n,
                },
                ParamMut {
                    cols: rbm.hidden,
                    value: &mut rbm.c,
                    grad: &mut g.c,
                    kind: ParamKind::Bias,
                },
            ];
            opt.step(&mut params, cfg.lr);
        }
        losses.push(total / rows.max(1) as f64);
    }
    losses
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
) -> Result<(Vec<Pretrained>, Vec<LayerPretraining>), String> {
    let mut x = inputs.to_vec();
    let mut stack = Vec::new();
    let mut report = Vec::new();
    for (k, (enc, act)) in layers.iter().enumerate() {
        let needs_sigmoid = matches!(cfg.method, Method::Sparse | Method::Rbm);
        if needs_sigmoid && *act != Activation::Sigmoid {
            return Err(format!(
                "pretrain.method = {:?} needs sigmoid hidden units (model.activation = \"sigmoid\"), \
                 not {act:?}",
                cfg.method
            ));
        }
        let unit = in_unit_interval(&x);
        let (p, losses) = if cfg.method == Method::Rbm {
            if !unit {
                return Err(
                    "pretrain.method = \"rbm\" uses its inputs as probabilities: they must lie in \
                     [0, 1] (data.transform = \"scale_by_max\")"
                        .into(),
                );
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
) -> Result<Vec<LayerPretraining>, String> {
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

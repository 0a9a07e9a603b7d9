//! Autoencoder layers (plain, denoising, sparse; tied or untied decoder) and their training.

use gemm::Parallelism;
use microdnn::Activation;

use super::{par, sgd, sgd_epochs};
use crate::model::Linear;
use crate::nn::init::Init;
use crate::nn::network::{ParamKind, ParamMut};
use crate::nn::optim::Optimizer;
use crate::nn::sparsity::{self, Divergence, KlSparsity};
use crate::nn::{activation, matmul};
use crate::random::{normal, uniform01, TrainRng};
use crate::train::config::{Corruption, Method, PretrainConfig};

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

    fn penalty(&self, y: &[f32], rows: usize) -> f64 {
        match self.sparsity {
            Some((target, weight)) => sparsity::penalty(
                Divergence::Bernoulli,
                &KlSparsity { target, weight },
                y,
                rows,
                self.hidden,
            ),
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
        let pen = self.penalty(&f.y, rows);
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
        let pen = self.penalty(&f.y, rows);
        if let Some((target, weight)) = self.sparsity {
            let s = KlSparsity { target, weight };
            sparsity::add_gradient(Divergence::Bernoulli, &s, &f.y, &mut dy, rows, h);
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
    let mut g = ae.zero_grads();
    let sizes: Vec<usize> = ae.params(&mut g).iter().map(|p| p.value.len()).collect();
    let mut opt = Optimizer::new(sgd(cfg), &sizes);
    let mut noisy = Vec::new();
    let width = ae.inputs;
    sgd_epochs(
        inputs,
        width,
        rows,
        cfg.epochs,
        batch,
        rng,
        |clean, b, rng| {
            noisy.clear();
            noisy.extend_from_slice(clean);
            corrupt(cfg, &mut noisy, rng);
            let (recon, _) = ae.loss_and_grad(&noisy, clean, b, &mut g, threads);
            opt.step(&mut ae.params(&mut g), cfg.lr);
            recon
        },
    )
}

//! Restricted Boltzmann machine layers and their training with contrastive divergence (CD-k).

use gemm::Parallelism;

use super::{par, sgd, sgd_epochs};
use crate::nn::matmul;
use crate::nn::network::{ParamKind, ParamMut};
use crate::nn::optim::Optimizer;
use crate::random::{normal, uniform01, TrainRng};
use crate::train::config::PretrainConfig;

fn sigmoid_in_place(v: &mut [f32]) {
    v.iter_mut().for_each(|x| *x = microdnn::math::sigmoid(*x));
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

    /// The parameters with their gradients `g`, for the optimiser: `W`, `b`, `c`.
    fn params<'a>(&'a mut self, g: &'a mut RbmGrads) -> [ParamMut<'a>; 3] {
        let (n, h) = (self.visible, self.hidden);
        [
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
                cols: n,
            },
            ParamMut {
                value: &mut self.c,
                grad: &mut g.c,
                kind: ParamKind::Bias,
                cols: h,
            },
        ]
    }
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
    let mut opt = Optimizer::new(sgd(cfg), &[rbm.w.len(), rbm.b.len(), rbm.c.len()]);
    let width = rbm.visible;
    sgd_epochs(inputs, width, rows, cfg.epochs, batch, rng, |v0, b, rng| {
        let (vk, err) = rbm.gibbs_chain(v0, b, cfg.cd_k, rng);
        let mut g = rbm.cd_gradients(v0, &vk, b, threads);
        opt.step(&mut rbm.params(&mut g), cfg.lr);
        err
    })
}

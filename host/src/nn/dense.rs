//! Dense (fully-connected) layer, training side: forward, backward and DropConnect.
//!
//! Shapes: input `[batch, in]`, weight `[out, in]` (PyTorch layout), bias `[out]`, output
//! `[batch, out]`; `y = x Wᵀ + b`.
//!
//! DropConnect (Wan et al. 2013): during training each weight is dropped with probability `p`
//! and kept weights are scaled by `1/(1-p)`; one mask per mini-batch. At evaluation the plain
//! weights are used (the mean of the masked weights).

use gemm::Parallelism;

use super::matmul;
use crate::model::Linear;

/// Per-layer training buffers of a dense layer.
#[derive(Clone, Debug)]
pub struct DenseState {
    /// Weight gradient `[out, in]`.
    pub dw: Vec<f32>,
    /// Bias gradient `[out]`.
    pub db: Vec<f32>,
    /// DropConnect multipliers `[out, in]` (empty without DropConnect).
    pub mask: Vec<f32>,
    /// Masked weights `W ⊙ mask` used in the forward pass (empty without DropConnect).
    pub masked_w: Vec<f32>,
}

impl DenseState {
    /// Buffers for `layer`.
    pub fn new(layer: &Linear) -> Self {
        let n = layer.weight.len();
        let dc = layer.dropconnect > 0.0;
        Self {
            dw: vec![0.0; n],
            db: vec![0.0; layer.out_features],
            mask: if dc { vec![1.0; n] } else { Vec::new() },
            masked_w: if dc { vec![0.0; n] } else { Vec::new() },
        }
    }
}

/// Forward pass. With `use_mask` (training with DropConnect), `state.mask` must hold the mask:
/// the masked weights are computed into `state.masked_w` and used.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    layer: &Linear,
    state: &mut DenseState,
    use_mask: bool,
    x: &[f32],
    y: &mut [f32],
    batch: usize,
    par: Parallelism,
) {
    let w: &[f32] = if use_mask {
        for ((m, &w), &k) in state
            .masked_w
            .iter_mut()
            .zip(&layer.weight)
            .zip(&state.mask)
        {
            *m = w * k;
        }
        &state.masked_w
    } else {
        &layer.weight
    };
    matmul::linear_forward(
        x,
        w,
        &layer.bias,
        y,
        batch,
        layer.in_features,
        layer.out_features,
        par,
    );
}

/// Backward pass: weight and bias gradients (overwritten) and, if `dx` is given, the input
/// gradient. With `use_mask`, gradients flow through the masked weights of the forward pass.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    layer: &Linear,
    state: &mut DenseState,
    use_mask: bool,
    x: &[f32],
    dy: &[f32],
    dx: Option<&mut [f32]>,
    batch: usize,
    par: Parallelism,
) {
    let (inp, out) = (layer.in_features, layer.out_features);
    matmul::weight_grad(dy, x, &mut state.dw, batch, inp, out, par);
    if use_mask {
        state
            .dw
            .iter_mut()
            .zip(&state.mask)
            .for_each(|(g, m)| *g *= m);
    }
    matmul::column_sums(dy, &mut state.db, batch, out);
    if let Some(dx) = dx {
        let w = if use_mask {
            &state.masked_w
        } else {
            &layer.weight
        };
        matmul::input_grad(dy, w, dx, batch, inp, out, par);
    }
}

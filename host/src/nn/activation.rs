//! Batched activations. The forward pass calls the core crate's scalar functions
//! (`microdnn::math`), so the trainer and the device compute identical activations.
//!
//! Shapes: input and output `[batch, features]`, any layout (element-wise).

use microdnn::math;
use microdnn::Activation;

/// `y = f(x)` element-wise. [`Activation::Softmax`] is applied per row of `features`.
pub fn forward(act: Activation, x: &[f32], y: &mut [f32], features: usize) {
    match act {
        Activation::Identity => y.copy_from_slice(x),
        Activation::Relu => y.iter_mut().zip(x).for_each(|(y, &x)| *y = math::relu(x)),
        Activation::LeakyRelu { slope } => y
            .iter_mut()
            .zip(x)
            .for_each(|(y, &x)| *y = math::leaky_relu(x, slope)),
        Activation::Sigmoid => y
            .iter_mut()
            .zip(x)
            .for_each(|(y, &x)| *y = math::sigmoid(x)),
        Activation::Tanh => y.iter_mut().zip(x).for_each(|(y, &x)| *y = math::tanh(x)),
        Activation::Softmax => {
            y.copy_from_slice(x);
            y.chunks_exact_mut(features).for_each(math::softmax);
        }
    }
}

/// `dx = dy * f'(x)`, from the input `x` and output `y` of the forward pass.
pub fn backward(
    act: Activation,
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    features: usize,
) {
    match act {
        Activation::Identity => dx.copy_from_slice(dy),
        Activation::Relu => {
            for ((d, &g), &x) in dx.iter_mut().zip(dy).zip(x) {
                *d = if x > 0.0 { g } else { 0.0 };
            }
        }
        Activation::LeakyRelu { slope } => {
            for ((d, &g), &x) in dx.iter_mut().zip(dy).zip(x) {
                *d = if x > 0.0 { g } else { slope * g };
            }
        }
        Activation::Sigmoid => {
            for ((d, &g), &y) in dx.iter_mut().zip(dy).zip(y) {
                *d = g * y * (1.0 - y);
            }
        }
        Activation::Tanh => {
            for ((d, &g), &y) in dx.iter_mut().zip(dy).zip(y) {
                *d = g * (1.0 - y * y);
            }
        }
        Activation::Softmax => {
            // dx_i = y_i (dy_i - Σ_j dy_j y_j), per row.
            for ((dxr, dyr), yr) in dx
                .chunks_exact_mut(features)
                .zip(dy.chunks_exact(features))
                .zip(y.chunks_exact(features))
            {
                let dot: f32 = dyr.iter().zip(yr).map(|(a, b)| a * b).sum();
                for ((d, &g), &y) in dxr.iter_mut().zip(dyr).zip(yr) {
                    *d = y * (g - dot);
                }
            }
        }
    }
}

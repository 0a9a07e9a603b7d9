//! Fully-connected layer with compile-time shape.

use crate::{kernel, Activation, Error};

/// A fully-connected layer `y = W x + b` with `I` inputs and `O` outputs.
///
/// It borrows its parameters: weights in the kernel's
/// [packed layout](crate::kernel#packed-weight-layout) as `[[f32; I]; O]` (same element count as
/// row-major) and the bias. Borrowing is what lets weights stay in flash: a `static` array, or
/// a slice of a validated model file, is used in place.
///
/// # Shapes
/// - input `x: [f32; I]`, output `y: [f32; O]`
/// - weights `I * O` floats, bias `O` floats; `I * O` multiply-accumulates per call.
///
/// ```
/// use microdnn::{kernel, Dense};
/// let rows = [[1.0, 2.0], [3.0, 4.0], [-1.0, 0.0]]; // row-major [out][in]
/// let mut packed = [[0.0; 2]; 3];
/// kernel::pack(rows.as_flattened(), 2, 3, packed.as_flattened_mut()).unwrap();
/// let bias = [0.0, 1.0, 0.5];
/// let layer = Dense::new(&packed, &bias);
/// let mut y = [0.0; 3];
/// layer.forward(&[1.0, 1.0], &mut y);
/// assert_eq!(y, [3.0, 8.0, -0.5]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Dense<'a, const I: usize, const O: usize> {
    weights: &'a [[f32; I]; O],
    bias: &'a [f32; O],
}

impl<'a, const I: usize, const O: usize> Dense<'a, I, O> {
    /// Multiply-accumulates per forward pass.
    pub const MACS: usize = I * O;
    /// Number of parameters (weights and biases).
    pub const PARAMS: usize = I * O + O;

    /// A layer over packed weights and a bias (see [`kernel::pack`]).
    ///
    /// `I` and `O` must be at least 1: a zero width fails to compile.
    pub const fn new(packed_weights: &'a [[f32; I]; O], bias: &'a [f32; O]) -> Self {
        const {
            assert!(
                I > 0 && O > 0,
                "a dense layer needs at least one input and output"
            )
        };
        Dense {
            weights: packed_weights,
            bias,
        }
    }

    /// A layer over flat slices (packed weights, bias), for example views into a model file.
    /// Fails with [`Error::Shape`] unless they hold exactly `I * O` and `O` elements.
    /// `I` and `O` must be at least 1: a zero width fails to compile.
    pub fn from_slices(packed_weights: &'a [f32], bias: &'a [f32]) -> Result<Self, Error> {
        let shape = |what, expected: usize, found: usize| Error::Shape {
            what,
            expected,
            found,
        };
        const {
            assert!(
                I > 0 && O > 0,
                "a dense layer needs at least one input and output"
            )
        };
        let n = I.checked_mul(O).ok_or(Error::Overflow)?;
        if packed_weights.len() != n {
            return Err(shape("weights", n, packed_weights.len()));
        }
        let bias: &[f32; O] = bias.try_into().map_err(|_| shape("bias", O, bias.len()))?;
        let (rows, _) = packed_weights.as_chunks::<I>();
        let weights: &[[f32; I]; O] = rows
            .try_into()
            .map_err(|_| shape("weights", n, packed_weights.len()))?;
        Ok(Dense { weights, bias })
    }

    /// The packed weights.
    pub const fn packed_weights(&self) -> &'a [[f32; I]; O] {
        self.weights
    }

    /// The bias.
    pub const fn bias(&self) -> &'a [f32; O] {
        self.bias
    }

    /// `y = W x + b` with the fast kernel (bit-identical on every target, see [`kernel`]).
    ///
    /// One copy of the kernel per layer shape, specialised to `I` and `O`.
    #[inline(never)]
    pub fn forward(&self, x: &[f32; I], y: &mut [f32; O]) {
        kernel::dense_packed(self.weights.as_flattened(), self.bias, x, y);
    }

    /// `y = W x + b` as a plain sequential sum per row (bias first, columns in order), reading
    /// the packed weights through [`kernel::packed_index`]. Slow; a test oracle only.
    pub fn forward_reference(&self, x: &[f32; I], y: &mut [f32; O]) {
        let w = self.weights.as_flattened();
        for (o, (y, b)) in y.iter_mut().zip(self.bias).enumerate() {
            let mut s = *b;
            for (c, xc) in x.iter().enumerate() {
                if let Some(wv) = kernel::packed_index(I, O, o, c).and_then(|k| w.get(k)) {
                    s += wv * xc;
                }
            }
            *y = s;
        }
    }
}

/// A dense layer followed by its activation: one stage of a [`network!`](macro@crate::network).
///
/// `dropout_rate` records the (inverted) dropout the trainer applied to this layer's output. At
/// inference dropout is the identity, so [`Layer::forward`] ignores it; Monte-Carlo passes
/// ([`crate::Network::forward_mc`]) apply it.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Layer<'a, const I: usize, const O: usize> {
    /// The affine part (batch norm, if any, is folded into it at export).
    pub dense: Dense<'a, I, O>,
    /// The activation applied to the dense output, in place.
    pub activation: Activation,
    /// Dropout rate on this layer's output, used only in Monte-Carlo mode. 0 for none.
    pub dropout_rate: f32,
}

impl<'a, const I: usize, const O: usize> Layer<'a, I, O> {
    /// A layer without dropout.
    pub const fn new(dense: Dense<'a, I, O>, activation: Activation) -> Self {
        Layer {
            dense,
            activation,
            dropout_rate: 0.0,
        }
    }

    /// The same layer with a Monte-Carlo dropout rate on its output.
    pub const fn with_dropout(mut self, rate: f32) -> Self {
        self.dropout_rate = rate;
        self
    }

    /// Dense then activation, writing into `y`.
    #[inline]
    pub fn forward(&self, x: &[f32; I], y: &mut [f32; O]) {
        self.dense.forward(x, y);
        self.activation.apply(y);
    }
}

/// Logs the shape, not the parameters.
#[cfg(feature = "defmt")]
impl<const I: usize, const O: usize> defmt::Format for Dense<'_, I, O> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Dense<{=usize}, {=usize}>", I, O)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::Rng;
    use std::vec;

    #[test]
    fn from_slices_checks_lengths() {
        let w = [0.0f32; 12];
        let b = [0.0f32; 4];
        assert!(Dense::<3, 4>::from_slices(&w, &b).is_ok());
        assert_eq!(
            Dense::<3, 4>::from_slices(&w[..11], &b).unwrap_err(),
            Error::Shape {
                what: "weights",
                expected: 12,
                found: 11
            }
        );
        assert!(matches!(
            Dense::<3, 4>::from_slices(&w, &b[..3]),
            Err(Error::Shape { what: "bias", .. })
        ));
        assert!(Dense::<4, 3>::from_slices(&w, &b).is_err());
    }

    #[test]
    fn forward_matches_reference_oracle() {
        let mut rng = Rng::new(3);
        let mut rows = [[0.0f32; 13]; 7];
        rows.as_flattened_mut()
            .iter_mut()
            .for_each(|v| *v = rng.uniform(-1.0, 1.0));
        let mut packed = [[0.0f32; 13]; 7];
        kernel::pack(rows.as_flattened(), 13, 7, packed.as_flattened_mut()).unwrap();
        let bias = [0.25f32; 7];
        let x: [f32; 13] = core::array::from_fn(|i| i as f32 * 0.1 - 0.6);
        let d = Dense::new(&packed, &bias);
        let (mut y, mut r) = ([0.0; 7], [0.0; 7]);
        d.forward(&x, &mut y);
        d.forward_reference(&x, &mut r);
        let mut naive = vec![0.0; 7];
        kernel::dense_reference(rows.as_flattened(), &bias, &x, &mut naive).unwrap();
        assert_eq!(
            &r[..],
            &naive[..],
            "oracle reads the packed layout correctly"
        );
        for (o, (a, b)) in y.iter().zip(r.iter()).enumerate() {
            let mag: f64 = rows[o]
                .iter()
                .zip(&x)
                .map(|(w, x)| (*w as f64 * *x as f64).abs())
                .sum::<f64>()
                + 0.25;
            let tol = (kernel::error_bound(13) + kernel::reference_error_bound(13)) * mag;
            assert!(((a - b) as f64).abs() <= tol, "row {o}: {a} vs {b}");
        }
    }
}

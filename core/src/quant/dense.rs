//! The int8 fully-connected layer with compile-time shape.

use super::kernel::{self, check_kernel_bias_packed, packed_index};
use super::{QActivation, QuantError, Requantize};

/// An int8 fully-connected layer with `I` inputs and `O` outputs: TFLite's `FULLY_CONNECTED`
/// with int8 input and output, per-channel (or per-tensor) symmetric int8 weights and an int32
/// bias, byte-exact with TFLite Micro.
///
/// It borrows its parameters, so they stay in flash: weights in the
/// [packed layout](super::kernel#packed-weight-layout) as `[[i8; I]; O]` (same byte count as
/// row-major), TFLite's int32 bias, the precomputed [kernel bias](super::kernel::kernel_bias)
/// (`bias - input_zero_point * row sums`, checked against the weights by [`QDense::new`]), and
/// the [`Requantize`] stage (multipliers, shifts, output zero point, fused-activation clamp).
///
/// # Shapes
/// - input `x: [i8; I]`, output `y: [i8; O]`
/// - weights `I * O` bytes, bias and kernel bias `O` `i32` each, one or `O`
///   (multiplier, shift) pairs; `I * O` multiply-accumulates per call.
///
/// ```
/// use microdnn::quant::{kernel, per_channel_multipliers, FusedActivation, QDense, QuantParams, Requantize};
/// let (input, output) = (QuantParams::new(0.5, -1).unwrap(), QuantParams::new(0.25, 3).unwrap());
/// let rows = [[2i8, -3], [4, 5], [-6, 7]]; // [out][in]
/// let (filter_scales, bias) = ([0.5, 0.25, 0.125], [1, -2, 0]);
/// let (mut m, mut s) = ([0; 3], [0; 3]);
/// per_channel_multipliers(input, &filter_scales, output, &mut m, &mut s).unwrap();
/// let (lo, hi) = FusedActivation::Relu.range(output).unwrap();
/// let mut packed = [[0i8; 2]; 3];
/// kernel::pack(rows.as_flattened(), 2, 3, packed.as_flattened_mut()).unwrap();
/// let mut kb = [0; 3];
/// kernel::kernel_bias(rows.as_flattened(), 2, &bias, input.zero_point(), &mut kb).unwrap();
/// let layer = QDense::new(&packed, &bias, &kb, input.zero_point(), Requantize::new(&m, &s, output.zero_point(), lo, hi).unwrap()).unwrap();
/// let mut y = [0i8; 3];
/// layer.forward(&[1, 3], &mut y); // real input [1.0, 2.0]
/// // row 0: (2*2 - 3*4 + 1) * 0.5*0.5/0.25 = -7: below the ReLU's zero, clamped to 3
/// // row 1: (4*2 + 5*4 - 2) * 0.5*0.25/0.25 = 13; row 2: (-6*2 + 7*4) * 0.25 = 4
/// assert_eq!(y, [3, 3 + 13, 3 + 4]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct QDense<'a, const I: usize, const O: usize> {
    weights: &'a [[i8; I]; O],
    bias: &'a [i32; O],
    kernel_bias: &'a [i32; O],
    input_zero_point: i8,
    requantize: Requantize<'a>,
}

impl<'a, const I: usize, const O: usize> QDense<'a, I, O> {
    /// Multiply-accumulates per forward pass.
    pub const MACS: usize = I * O;
    /// Number of weights and biases (as counted for the f32 [`crate::Dense`]).
    pub const PARAMS: usize = I * O + O;

    /// A layer over packed weights, TFLite's bias, the kernel bias and the output stage.
    ///
    /// Fails with [`QuantError::Shape`] unless `requantize` has 1 or `O` channels, and with
    /// [`QuantError::KernelBias`] unless `kernel_bias[o] == bias[o] - input_zero_point *
    /// sum(weights of row o)` (reads every weight once: as much work as one forward pass).
    /// `I` and `O` must be at least 1: a zero width fails to compile.
    pub fn new(
        packed_weights: &'a [[i8; I]; O],
        bias: &'a [i32; O],
        kernel_bias: &'a [i32; O],
        input_zero_point: i8,
        requantize: Requantize<'a>,
    ) -> Result<Self, QuantError> {
        const {
            assert!(
                I > 0 && O > 0,
                "a dense layer needs at least one input and output"
            )
        };
        if requantize.channels() != 1 && requantize.channels() != O {
            return Err(QuantError::Shape {
                what: "multipliers",
                expected: O,
                found: requantize.channels(),
            });
        }
        check_kernel_bias_packed(
            packed_weights.as_flattened(),
            I,
            bias,
            input_zero_point,
            kernel_bias,
        )?;
        Ok(QDense {
            weights: packed_weights,
            bias,
            kernel_bias,
            input_zero_point,
            requantize,
        })
    }

    /// A layer over flat slices (packed weights, bias, kernel bias), for example views into a
    /// model file. Fails with [`QuantError::Shape`] unless they hold exactly `I * O`, `O` and
    /// `O` elements, then checks as [`QDense::new`] does.
    pub fn from_slices(
        packed_weights: &'a [i8],
        bias: &'a [i32],
        kernel_bias: &'a [i32],
        input_zero_point: i8,
        requantize: Requantize<'a>,
    ) -> Result<Self, QuantError> {
        const {
            assert!(
                I > 0 && O > 0,
                "a dense layer needs at least one input and output"
            )
        };
        let shape = |what, expected: usize, found: usize| QuantError::Shape {
            what,
            expected,
            found,
        };
        let n = I.checked_mul(O).ok_or(QuantError::Overflow)?;
        if packed_weights.len() != n {
            return Err(shape("weights", n, packed_weights.len()));
        }
        let (rows, _) = packed_weights.as_chunks::<I>();
        let weights: &[[i8; I]; O] = rows
            .try_into()
            .map_err(|_| shape("weights", n, packed_weights.len()))?;
        let bias: &[i32; O] = bias.try_into().map_err(|_| shape("bias", O, bias.len()))?;
        let kernel_bias: &[i32; O] = kernel_bias
            .try_into()
            .map_err(|_| shape("kernel bias", O, kernel_bias.len()))?;
        Self::new(weights, bias, kernel_bias, input_zero_point, requantize)
    }

    /// The packed weights.
    pub const fn packed_weights(&self) -> &'a [[i8; I]; O] {
        self.weights
    }

    /// TFLite's int32 bias.
    pub const fn bias(&self) -> &'a [i32; O] {
        self.bias
    }

    /// The kernel bias (`bias - input_zero_point * row sums`).
    pub const fn kernel_bias(&self) -> &'a [i32; O] {
        self.kernel_bias
    }

    /// The input zero point.
    pub const fn input_zero_point(&self) -> i8 {
        self.input_zero_point
    }

    /// The output stage.
    pub const fn requantize(&self) -> &Requantize<'a> {
        &self.requantize
    }

    /// Bytes of parameters in flash: weights, bias, kernel bias, multipliers and shifts.
    pub const fn flash_bytes(&self) -> usize {
        I * O + 8 * O + 8 * self.requantize.channels()
    }

    /// The layer with the fast kernel (byte-exact with TFLite Micro; see [`kernel`]).
    ///
    /// One copy of the kernel per layer shape, specialised to `I` and `O`.
    ///
    /// On a core with the DSP extension (Cortex-M4/M7, M33/M55 built with their `target-cpu`)
    /// the blocks run in an `SMLAD` loop (the core's audited assembly), with the input
    /// sign-extended once into `2 I` bytes of stack; elsewhere in portable Rust.
    #[inline(never)]
    pub fn forward(&self, x: &[i8; I], y: &mut [i8; O]) {
        #[cfg(microdnn_dsp)]
        kernel::dense_packed_dsp(
            self.weights.as_flattened(),
            self.kernel_bias,
            &self.requantize,
            x,
            &mut kernel::Extended::<I>::new().0,
            y,
        );
        #[cfg(not(microdnn_dsp))]
        kernel::dense_packed(
            self.weights.as_flattened(),
            self.kernel_bias,
            &self.requantize,
            x,
            y,
        );
    }

    /// The layer as TFLite Micro's reference loop (`FullyConnectedPerChannel`: the bias and
    /// `x - input_zero_point`, columns in order), reading the packed weights through
    /// [`packed_index`]. Slow; a test oracle.
    pub fn forward_reference(&self, x: &[i8; I], y: &mut [i8; O]) {
        let w = self.weights.as_flattened();
        let offset = -(self.input_zero_point as i32);
        for (o, (y, &b)) in y.iter_mut().zip(self.bias).enumerate() {
            let mut acc = 0i32;
            for (c, &xc) in x.iter().enumerate() {
                let wv = packed_index(I, O, o, c)
                    .and_then(|k| w.get(k))
                    .copied()
                    .unwrap_or(0);
                acc = acc.wrapping_add(wv as i32 * (xc as i32 + offset));
            }
            *y = self.requantize.apply(o, acc.wrapping_add(b));
        }
    }
}

/// An int8 dense layer followed by its int8 activation: one stage of a
/// [`qnetwork!`](crate::qnetwork). Fused ReLU/ReLU6 live in the dense layer's clamp; the
/// activation here is a separate TFLite operator (its own input and output quantization).
#[derive(Clone, Copy, Debug)]
pub struct QLayer<'a, const I: usize, const O: usize> {
    /// The fully-connected part.
    pub dense: QDense<'a, I, O>,
    /// The activation applied to the dense output, in place.
    pub activation: QActivation,
}

impl<'a, const I: usize, const O: usize> QLayer<'a, I, O> {
    /// A layer from its parts.
    pub const fn new(dense: QDense<'a, I, O>, activation: QActivation) -> Self {
        QLayer { dense, activation }
    }

    /// Dense then activation, writing into `y`.
    #[inline]
    pub fn forward(&self, x: &[i8; I], y: &mut [i8; O]) {
        self.dense.forward(x, y);
        self.activation.apply(y);
    }
}

/// Logs the shape, not the parameters.
#[cfg(feature = "defmt")]
impl<const I: usize, const O: usize> defmt::Format for QDense<'_, I, O> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "QDense<{=usize}, {=usize}>", I, O)
    }
}

/// Logs the shape and the activation.
#[cfg(feature = "defmt")]
impl<const I: usize, const O: usize> defmt::Format for QLayer<'_, I, O> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "QLayer<{=usize}, {=usize}> {}",
            I,
            O,
            self.activation.name()
        )
    }
}

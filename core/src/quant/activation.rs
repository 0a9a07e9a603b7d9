//! int8 activation operators with TFLite Micro's algorithms: `RELU`, `RELU6`, `LEAKY_RELU`,
//! `LOGISTIC`, `TANH` and `SOFTMAX`.
//!
//! Each operator has a `prepare` constructor that derives its integer parameters from the float
//! quantization exactly as the operator's TFLite Micro `Prepare` does, and an `apply` that runs
//! its `Eval` in place. Where TFLite Micro fixes the output quantization (logistic and softmax:
//! scale 1/256, zero point -128; tanh: 1/128, 0) `prepare` requires it, as a typed error.

use super::fixed::{
    self, clamp_i32, multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_greater_than_one, rounding_divide_by_pot,
};
use super::{quantize_multiplier, QuantError, QuantParams, QuantizedMultiplier};

/// TFLite Micro's int8 `RELU` (`ReluQuantized`): rescales from the input to the output
/// quantization and clamps below at the output's real zero:
/// `clamp(zy + M(x - zx), zy, 127)` with `M = QuantizeMultiplier(double(sx) / double(sy))`.
///
/// (The TFLite Micro source at commit `90b983c` divides in `f32` first; the tested build,
/// `tflite-micro` 0.dev20261023, divides in double, and the fixture `relu_multiplier_rounding`
/// tells the two apart. This follows the tested build.)
///
/// ```
/// use microdnn::quant::{QRelu, QuantParams};
/// let relu = QRelu::prepare(QuantParams::new(0.1, 0).unwrap(), QuantParams::new(0.05, -128).unwrap()).unwrap();
/// let mut x = [-128i8, -1, 0, 1, 50, 127];
/// relu.apply(&mut x);
/// assert_eq!(x, [-128, -128, -128, -126, -28, 126]); // real 0, 0, 0, 0.1, 5.0, 12.7
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QRelu {
    input_zero_point: i8,
    output_zero_point: i8,
    multiplier: QuantizedMultiplier,
    min: i8,
}

impl QRelu {
    /// TFLite Micro's `CalculateReluOpData<int8_t>`. Fails with
    /// [`QuantError::MultiplierOutOfRange`] when `input.scale / output.scale` is `2^30` or more.
    pub fn prepare(input: QuantParams, output: QuantParams) -> Result<Self, QuantError> {
        let real = f64::from(input.scale()) / f64::from(output.scale());
        let multiplier =
            QuantizedMultiplier::from_real(real).map_err(|_| QuantError::MultiplierOutOfRange {
                what: "relu",
                channel: None,
            })?;
        // zero_point + roundf(0 / scale), clipped below at -128: the zero point itself.
        Ok(QRelu {
            input_zero_point: input.zero_point(),
            output_zero_point: output.zero_point(),
            multiplier,
            min: output.zero_point(),
        })
    }

    /// The rescaling multiplier.
    pub const fn multiplier(&self) -> QuantizedMultiplier {
        self.multiplier
    }

    /// Applies the operator in place.
    pub fn apply(&self, x: &mut [i8]) {
        let (zx, zy) = (self.input_zero_point as i32, self.output_zero_point as i32);
        for v in x.iter_mut() {
            let r = zy.wrapping_add(self.multiplier.apply(*v as i32 - zx));
            *v = clamp_i32(r, self.min as i32, 127) as i8;
        }
    }
}

/// TFLite Micro's int8 `RELU6` (`Relu6Quantized`): clamps to `[zx, six]` with
/// `six = clamp(round(6 / sx) + zx)`, in the **input** quantization. TFLite Micro ignores the
/// output quantization of this operator (it assumes it equals the input's), so a model whose
/// `RELU6` output has other parameters gets bytes meant in the input's; this does the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QRelu6 {
    zero: i8,
    six: i8,
}

impl QRelu6 {
    /// TFLite Micro's `Relu6Prepare` (`FloatToQuantizedType<int8_t>(6, scale, zero_point)`).
    pub fn prepare(input: QuantParams) -> Self {
        let six =
            (libm::roundf(6.0 / input.scale()) as i32).saturating_add(input.zero_point() as i32);
        QRelu6 {
            zero: input.zero_point(),
            six: clamp_i32(six, -128, 127) as i8,
        }
    }

    /// The clamp `(zero, six)`.
    pub const fn range(&self) -> (i8, i8) {
        (self.zero, self.six)
    }

    /// Applies the operator in place.
    pub fn apply(&self, x: &mut [i8]) {
        for v in x.iter_mut() {
            *v = if *v > self.six {
                self.six
            } else if *v < self.zero {
                self.zero
            } else {
                *v
            };
        }
    }
}

/// TFLite Micro's int8 `LEAKY_RELU` (`reference_ops::QuantizeLeakyRelu`): two multipliers, the
/// identity `sx / sy` for `x >= zx` and `sx * alpha / sy` below (in double, as the tested build
/// computes them; the source at commit `90b983c` rounds both to `f32` first, and the fixture
/// `leaky_relu_multiplier_rounding` tells them apart); a negative alpha is applied as a negated
/// non-negative multiplier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QLeakyRelu {
    input_zero_point: i8,
    output_zero_point: i8,
    identity: QuantizedMultiplier,
    alpha_multiplier: i32,
    alpha_shift: i32,
}

impl QLeakyRelu {
    /// TFLite Micro's `CalculateOpDataLeakyRelu`. Fails with [`QuantError::NonFinite`] for a
    /// non-finite `alpha` and [`QuantError::MultiplierOutOfRange`] when a multiplier's shift
    /// would exceed 30.
    pub fn prepare(
        input: QuantParams,
        output: QuantParams,
        alpha: f32,
    ) -> Result<Self, QuantError> {
        if !alpha.is_finite() {
            return Err(QuantError::NonFinite { what: "alpha" });
        }
        let out_of_range = |what| QuantError::MultiplierOutOfRange {
            what,
            channel: None,
        };
        let (alpha_multiplier, alpha_shift) = quantize_multiplier(
            f64::from(input.scale()) * f64::from(alpha) / f64::from(output.scale()),
        )?;
        if !(QuantizedMultiplier::MIN_SHIFT..=QuantizedMultiplier::MAX_SHIFT).contains(&alpha_shift)
        {
            return Err(out_of_range("alpha"));
        }
        let identity =
            QuantizedMultiplier::from_real(f64::from(input.scale()) / f64::from(output.scale()))
                .map_err(|_| out_of_range("identity"))?;
        Ok(QLeakyRelu {
            input_zero_point: input.zero_point(),
            output_zero_point: output.zero_point(),
            identity,
            alpha_multiplier,
            alpha_shift,
        })
    }

    /// The identity multiplier (for inputs at or above the zero point).
    pub const fn identity(&self) -> QuantizedMultiplier {
        self.identity
    }

    /// The alpha multiplier and shift (the multiplier is negative for a negative alpha).
    pub const fn alpha(&self) -> (i32, i32) {
        (self.alpha_multiplier, self.alpha_shift)
    }

    /// Applies the operator in place.
    pub fn apply(&self, x: &mut [i8]) {
        let negative = self.alpha_multiplier < 0;
        let safe_alpha = self.alpha_multiplier.wrapping_abs();
        let (zx, zy) = (self.input_zero_point as i32, self.output_zero_point as i32);
        for v in x.iter_mut() {
            let input = *v as i32 - zx;
            let delta = if input >= 0 {
                self.identity.apply(input)
            } else {
                let s = multiply_by_quantized_multiplier(input, safe_alpha, self.alpha_shift);
                if negative {
                    s.wrapping_neg()
                } else {
                    s
                }
            };
            *v = clamp_i32(zy.wrapping_add(delta), -128, 127) as i8;
        }
    }
}

/// The integer parameters shared by TFLite Micro's int8 logistic and tanh: the input rescaled
/// into a `Q4.27` fixed-point number by `input_multiplier * 2^input_left_shift`, and the radius
/// beyond which the output saturates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FixedPointInput {
    /// The input zero point.
    pub zero_point: i8,
    /// Inputs with `|x - zero_point| >= range_radius` saturate.
    pub range_radius: i32,
    /// The `Q0.31` input multiplier.
    pub multiplier: i32,
    /// The input left shift.
    pub left_shift: i32,
}

impl FixedPointInput {
    /// The `Prepare` of TFLite Micro's int8 `LOGISTIC` and `TANH` (identical for both):
    /// `frexp(scale * 2^27)` gives `multiplier = round(q * 2^31)` and `left_shift`, and
    /// `range_radius = CalculateInputRadius(4, left_shift, 31) = floor(15 * 2^27 / 2^left_shift)`.
    fn prepare(input: QuantParams, op: &'static str) -> Result<Self, QuantError> {
        const INPUT_INTEGER_BITS: i32 = 4;
        let real = f64::from(input.scale()) * f64::from(1u32 << (31 - INPUT_INTEGER_BITS));
        let (q, left_shift) = libm::frexp(real);
        // A float scale has 24 significant bits: q * 2^31 is an integer below 2^31.
        let multiplier = libm::round(q * (1u64 << 31) as f64);
        if left_shift < 0 || multiplier >= (1u64 << 31) as f64 {
            return Err(QuantError::InputScaleOutOfRange { op });
        }
        let max_input_rescaled: u64 = ((1 << INPUT_INTEGER_BITS) - 1) << (31 - INPUT_INTEGER_BITS);
        let range_radius = max_input_rescaled
            .checked_shr(left_shift as u32)
            .unwrap_or(0) as i32;
        Ok(FixedPointInput {
            zero_point: input.zero_point(),
            range_radius,
            multiplier: multiplier as i32,
            left_shift,
        })
    }

    /// The saturated output for `x`, or the `Q4.27` input of the fixed-point function.
    #[inline]
    fn rescale(&self, x: i8) -> Result<i32, bool> {
        let input = x as i32 - self.zero_point as i32;
        if input <= -self.range_radius {
            Err(false)
        } else if input >= self.range_radius {
            Err(true)
        } else {
            Ok(multiply_by_quantized_multiplier(
                input,
                self.multiplier,
                self.left_shift,
            ))
        }
    }
}

/// TFLite Micro's int8 `LOGISTIC` (`reference_integer_ops::Logistic`): the input rescaled to
/// `Q4.27`, gemmlowp's fixed-point `logistic`, the `Q0.31` result rounded to 1/256 and offset by
/// -128. Output quantization: scale 1/256, zero point -128.
///
/// ```
/// use microdnn::quant::{QLogistic, QuantParams};
/// let input = QuantParams::new(0.1, 0).unwrap();
/// let output = QuantParams::new(1.0 / 256.0, -128).unwrap();
/// let sigmoid = QLogistic::prepare(input, output).unwrap();
/// let mut x = [-128i8, 0, 10, 127];
/// sigmoid.apply(&mut x);
/// assert_eq!(x, [-128, 0, 59, 127]); // 0.0, 0.5, 0.73 (sigmoid(1) = 0.731), 1.0
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QLogistic {
    input: FixedPointInput,
}

impl QLogistic {
    /// TFLite Micro's `CalculateArithmeticOpDataLogistic` for int8. Fails with
    /// [`QuantError::OutputQuantization`] unless `output` is scale 1/256, zero point -128
    /// (TFLite Micro checks the zero point and assumes the scale), and with
    /// [`QuantError::InputScaleOutOfRange`] for an input scale below about `2^-28`.
    pub fn prepare(input: QuantParams, output: QuantParams) -> Result<Self, QuantError> {
        if output.zero_point() != -128 || output.scale() != 1.0 / 256.0 {
            return Err(QuantError::OutputQuantization { op: "logistic" });
        }
        Ok(QLogistic {
            input: FixedPointInput::prepare(input, "logistic")?,
        })
    }

    /// The integer input parameters.
    pub const fn input(&self) -> FixedPointInput {
        self.input
    }

    /// Applies the operator in place.
    pub fn apply(&self, x: &mut [i8]) {
        for v in x.iter_mut() {
            *v = match self.input.rescale(*v) {
                Err(high) => {
                    if high {
                        127
                    } else {
                        -128
                    }
                }
                Ok(q4) => {
                    let q0 = fixed::logistic(q4, 4);
                    let q23 = rounding_divide_by_pot(q0, 31 - 8);
                    clamp_i32(q23 - 128, -128, 127) as i8
                }
            };
        }
    }
}

/// TFLite Micro's int8 `TANH` (`reference_integer_ops::Tanh`): the input rescaled to `Q4.27`,
/// gemmlowp's fixed-point `tanh`, the `Q0.31` result rounded to 1/128. Output quantization:
/// scale 1/128, zero point 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QTanh {
    input: FixedPointInput,
}

impl QTanh {
    /// The `Prepare` of TFLite Micro's int8 `TANH`. Fails with
    /// [`QuantError::OutputQuantization`] unless `output` is scale 1/128, zero point 0 (TFLite
    /// Micro assumes it without checking), and with [`QuantError::InputScaleOutOfRange`] for an
    /// input scale below about `2^-28`.
    pub fn prepare(input: QuantParams, output: QuantParams) -> Result<Self, QuantError> {
        if output.zero_point() != 0 || output.scale() != 1.0 / 128.0 {
            return Err(QuantError::OutputQuantization { op: "tanh" });
        }
        Ok(QTanh {
            input: FixedPointInput::prepare(input, "tanh")?,
        })
    }

    /// The integer input parameters.
    pub const fn input(&self) -> FixedPointInput {
        self.input
    }

    /// Applies the operator in place.
    pub fn apply(&self, x: &mut [i8]) {
        for v in x.iter_mut() {
            *v = match self.input.rescale(*v) {
                Err(high) => {
                    if high {
                        127
                    } else {
                        -128
                    }
                }
                Ok(q4) => {
                    let q0 = fixed::tanh(q4, 4);
                    clamp_i32(rounding_divide_by_pot(q0, 31 - 7), -128, 127) as i8
                }
            };
        }
    }
}

/// TFLite Micro's int8 `SOFTMAX` (`reference_ops::Softmax` for int8 input and output): input
/// differences to the row maximum scaled by `beta * scale` into `Q5.26`, gemmlowp's
/// `exp_on_negative_values`, their sum in `Q12.19`, its reciprocal (`GetReciprocal`), outputs
/// rounded to 1/256 and offset by -128. Differences below `diff_min` contribute nothing and
/// give -128. Output quantization: scale 1/256, zero point -128 (TFLite's outputs need not sum
/// to exactly 256).
///
/// ```
/// use microdnn::quant::{QSoftmax, QuantParams};
/// let input = QuantParams::new(0.1, 0).unwrap();
/// let output = QuantParams::new(1.0 / 256.0, -128).unwrap();
/// let softmax = QSoftmax::prepare(1.0, input, output).unwrap();
/// let mut x = [0i8, 0, 0, 0];
/// softmax.apply(&mut x);
/// assert_eq!(x, [-64; 4]); // 0.25 each
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QSoftmax {
    input_multiplier: i32,
    input_left_shift: i32,
    diff_min: i32,
}

impl QSoftmax {
    /// TFLite Micro's `CalculateSoftmaxParams` for int8 input and output
    /// (`PreprocessSoftmaxScaling(beta, scale, 5)`, `diff_min = -CalculateInputRadius(5, shift)`).
    ///
    /// Fails with [`QuantError::OutputQuantization`] unless `output` is scale 1/256, zero point
    /// -128 (TFLite Micro checks both), with [`QuantError::NonFinite`] for a non-finite `beta`,
    /// and with [`QuantError::InputScaleOutOfRange`] when `beta * scale * 2^26 <= 1` (TFLite
    /// aborts there).
    pub fn prepare(beta: f32, input: QuantParams, output: QuantParams) -> Result<Self, QuantError> {
        const SCALED_DIFF_INTEGER_BITS: i32 = 5;
        if output.zero_point() != -128 || output.scale() != 1.0 / 256.0 {
            return Err(QuantError::OutputQuantization { op: "softmax" });
        }
        if !beta.is_finite() {
            return Err(QuantError::NonFinite { what: "beta" });
        }
        let max_real_multiplier = ((1u64 << 31) - 1) as f64;
        let real = (f64::from(beta)
            * f64::from(input.scale())
            * (1u64 << (31 - SCALED_DIFF_INTEGER_BITS)) as f64)
            .min(max_real_multiplier);
        // QuantizeMultiplierGreaterThanOne checks real > 1.
        if real.is_nan() || real <= 1.0 {
            return Err(QuantError::InputScaleOutOfRange { op: "softmax" });
        }
        let (input_multiplier, input_left_shift) = quantize_multiplier(real)?;
        // real in (1, 2^31 - 1]: the shift is in [1, 31].
        let max_input_rescaled: u64 =
            ((1 << SCALED_DIFF_INTEGER_BITS) - 1) << (31 - SCALED_DIFF_INTEGER_BITS);
        let radius = max_input_rescaled
            .checked_shr(input_left_shift as u32)
            .unwrap_or(0) as i32;
        Ok(QSoftmax {
            input_multiplier,
            input_left_shift,
            diff_min: -radius,
        })
    }

    /// `(input_multiplier, input_left_shift, diff_min)`.
    pub const fn params(&self) -> (i32, i32, i32) {
        (self.input_multiplier, self.input_left_shift, self.diff_min)
    }

    #[inline]
    fn exp_of_diff(&self, diff: i32) -> i32 {
        let rescaled = multiply_by_quantized_multiplier_greater_than_one(
            diff,
            self.input_multiplier,
            self.input_left_shift,
        );
        fixed::exp_on_negative_values(rescaled, 5)
    }

    /// Applies the operator in place to one row (the whole slice).
    ///
    /// For rows of 4,096 or more elements TFLite's `Q12.19` sum can overflow (undefined in
    /// TFLite); here it wraps, and the result is meaningless but never a panic.
    pub fn apply(&self, x: &mut [i8]) {
        let max = x.iter().copied().max().unwrap_or(0) as i32;
        let mut sum: i32 = 0;
        for &v in x.iter() {
            let diff = v as i32 - max;
            if diff >= self.diff_min {
                // Rescale<12> of a Q0 value: a rounding shift right by 12.
                sum = sum.wrapping_add(rounding_divide_by_pot(self.exp_of_diff(diff), 12));
            }
        }
        let (shifted_scale, num_bits_over_unit) = fixed::get_reciprocal(sum, 12);
        let exponent = num_bits_over_unit + 31 - 8;
        for v in x.iter_mut() {
            let diff = *v as i32 - max;
            *v = if diff >= self.diff_min {
                let e = self.exp_of_diff(diff);
                let unsat = rounding_divide_by_pot(
                    fixed::saturating_rounding_doubling_high_mul(shifted_scale, e),
                    exponent,
                );
                clamp_i32(unsat.wrapping_sub(128), -128, 127) as i8
            } else {
                -128
            };
        }
    }
}

/// The int8 activation that follows an int8 dense layer (a separate TFLite operator with its
/// own quantization; ReLU/ReLU6 fused into the layer are its clamp, not an activation here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QActivation {
    /// No operator.
    Identity,
    /// `RELU` with its own input/output quantization.
    Relu(QRelu),
    /// `RELU6` (in the input quantization).
    Relu6(QRelu6),
    /// `LEAKY_RELU`.
    LeakyRelu(QLeakyRelu),
    /// `LOGISTIC` (sigmoid).
    Logistic(QLogistic),
    /// `TANH`.
    Tanh(QTanh),
    /// `SOFTMAX` over the whole layer output.
    Softmax(QSoftmax),
}

impl QActivation {
    /// Applies the activation to `y` in place.
    pub fn apply(&self, y: &mut [i8]) {
        match self {
            QActivation::Identity => {}
            QActivation::Relu(op) => op.apply(y),
            QActivation::Relu6(op) => op.apply(y),
            QActivation::LeakyRelu(op) => op.apply(y),
            QActivation::Logistic(op) => op.apply(y),
            QActivation::Tanh(op) => op.apply(y),
            QActivation::Softmax(op) => op.apply(y),
        }
    }

    /// A short lowercase name (`"identity"`, `"relu"`, `"relu6"`, `"leaky_relu"`, `"sigmoid"`,
    /// `"tanh"`, `"softmax"`), as [`crate::Activation::name`].
    pub const fn name(&self) -> &'static str {
        match self {
            QActivation::Identity => "identity",
            QActivation::Relu(_) => "relu",
            QActivation::Relu6(_) => "relu6",
            QActivation::LeakyRelu(_) => "leaky_relu",
            QActivation::Logistic(_) => "sigmoid",
            QActivation::Tanh(_) => "tanh",
            QActivation::Softmax(_) => "softmax",
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    fn p(scale: f32, zero_point: i8) -> QuantParams {
        QuantParams::new(scale, zero_point).unwrap()
    }

    #[test]
    fn fixed_output_quantizations_are_required() {
        let input = p(0.1, 3);
        assert_eq!(
            QLogistic::prepare(input, p(1.0 / 256.0, 0)),
            Err(QuantError::OutputQuantization { op: "logistic" })
        );
        assert!(QLogistic::prepare(input, p(1.0 / 128.0, -128)).is_err());
        assert!(QTanh::prepare(input, p(1.0 / 128.0, -128)).is_err());
        assert!(QTanh::prepare(input, p(1.0 / 256.0, 0)).is_err());
        assert!(QTanh::prepare(input, p(1.0 / 128.0, 0)).is_ok());
        assert!(QSoftmax::prepare(1.0, input, p(1.0 / 256.0, -127)).is_err());
        assert_eq!(
            QSoftmax::prepare(f32::NAN, input, p(1.0 / 256.0, -128)),
            Err(QuantError::NonFinite { what: "beta" })
        );
        assert!(QSoftmax::prepare(-1.0, input, p(1.0 / 256.0, -128)).is_err());
        assert_eq!(
            QLeakyRelu::prepare(input, input, f32::INFINITY),
            Err(QuantError::NonFinite { what: "alpha" })
        );
    }

    #[test]
    fn hand_computed_parameters() {
        // Logistic/tanh: scale 2^-3 -> 2^-3 * 2^27 = 2^24 = 0.5 * 2^25: multiplier 2^30,
        // left shift 25, radius floor(15 * 2^27 / 2^25) = 60.
        let l = QLogistic::prepare(p(0.125, 0), p(1.0 / 256.0, -128)).unwrap();
        let i = l.input();
        assert_eq!(
            (i.multiplier, i.left_shift, i.range_radius),
            (1 << 30, 25, 60)
        );
        // Softmax: beta 1, scale 2^-4: 2^-4 * 2^26 = 2^22 -> (2^30, 23); diff_min =
        // -floor(31 * 2^26 / 2^23) = -248.
        let s = QSoftmax::prepare(1.0, p(0.0625, 0), p(1.0 / 256.0, -128)).unwrap();
        assert_eq!(s.params(), (1 << 30, 23, -248));
        // Capped: beta * scale * 2^26 above 2^31 - 1 -> multiplier 2^31 - 1, shift 31, and
        // diff_min -floor(31 * 2^26 / 2^31) = 0: only the maxima count.
        let s = QSoftmax::prepare(1.0, p(64.0, 0), p(1.0 / 256.0, -128)).unwrap();
        assert_eq!(s.params(), (i32::MAX, 31, 0));
        let mut x = [5i8, 5, 4, -128];
        s.apply(&mut x);
        assert_eq!(x, [0, 0, -128, -128]); // 1/2 each for the two maxima
                                           // ReLU6 in the input quantization: six = round(6 / 0.05) + (-100) = 20.
        let r6 = QRelu6::prepare(p(0.05, -100));
        assert_eq!(r6.range(), (-100, 20));
        let mut x = [-128i8, -100, 0, 20, 21, 127];
        r6.apply(&mut x);
        assert_eq!(x, [-100, -100, 0, 20, 20, 20]);
        // Leaky ReLU, same scales, alpha 0.5: (x - zx) * 0.5 below, identity above.
        let lr = QLeakyRelu::prepare(p(0.5, 10), p(0.5, 10), 0.5).unwrap();
        let mut x = [10i8, 20, 0, -128, 127];
        lr.apply(&mut x);
        // -10 * 0.5 = -5 exactly; -138 * 0.5 = -69 exactly
        assert_eq!(x, [10, 20, 5, 10 - 69, 127]);
        // Negative alpha: the negative side is mirrored.
        let lr = QLeakyRelu::prepare(p(0.5, 0), p(0.5, 0), -0.25).unwrap();
        let mut x = [-8i8, 8, -128];
        lr.apply(&mut x);
        assert_eq!(x, [2, 8, 32]);
    }

    #[test]
    fn total_for_extreme_scales() {
        let scales = [
            f32::from_bits(1), // smallest subnormal
            1e-30,
            3.7e-9,
            1e-3,
            0.0625,
            1.0,
            15.9,
            16.0,
            1e10,
            f32::MAX,
        ];
        let all: std::vec::Vec<i8> = (-128..=127).collect();
        let out256 = p(1.0 / 256.0, -128);
        let out128 = p(1.0 / 128.0, 0);
        for &si in &scales {
            for zi in [-128i8, 0, 127] {
                let input = p(si, zi);
                let mut ops = std::vec::Vec::new();
                ops.push(QActivation::Relu6(QRelu6::prepare(input)));
                if let Ok(op) = QLogistic::prepare(input, out256) {
                    ops.push(QActivation::Logistic(op));
                }
                if let Ok(op) = QTanh::prepare(input, out128) {
                    ops.push(QActivation::Tanh(op));
                }
                for beta in [1e-30, 1.0, 1e30] {
                    if let Ok(op) = QSoftmax::prepare(beta, input, out256) {
                        ops.push(QActivation::Softmax(op));
                    }
                }
                for &so in &scales {
                    let output = p(so, (zi / 2).wrapping_neg());
                    if let Ok(op) = QRelu::prepare(input, output) {
                        ops.push(QActivation::Relu(op));
                    }
                    for alpha in [-3.0, 0.0, 0.01, 1e20] {
                        if let Ok(op) = QLeakyRelu::prepare(input, output, alpha) {
                            ops.push(QActivation::LeakyRelu(op));
                        }
                    }
                }
                for op in ops {
                    let mut x = all.clone();
                    op.apply(&mut x);
                    let mut one = [zi];
                    op.apply(&mut one);
                }
            }
        }
        // The same operators are refused, not mis-computed, where TFLite has no algorithm.
        assert_eq!(
            QLogistic::prepare(p(f32::from_bits(1), 0), out256),
            Err(QuantError::InputScaleOutOfRange { op: "logistic" })
        );
        assert!(QSoftmax::prepare(1.0, p(1e-30, 0), out256).is_err());
    }
}

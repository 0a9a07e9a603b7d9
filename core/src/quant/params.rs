//! Quantization parameters and the arithmetic that turns float scales into fixed-point
//! multipliers, exactly as TFLite Micro's `Prepare` functions do.

use super::fixed::{clamp_i32, multiply_by_quantized_multiplier, rounding_divide_by_pot};
use super::QuantError;

/// Per-tensor affine int8 quantization: `real = scale * (q - zero_point)`.
///
/// `scale` is strictly positive and finite (checked by [`QuantParams::new`]).
///
/// ```
/// use microdnn::quant::QuantParams;
/// let p = QuantParams::new(0.5, -3).unwrap();
/// assert_eq!(p.quantize(1.25), 0); // round(2.5) = 3 (ties away from zero), + (-3)
/// assert_eq!(p.dequantize(-1), 1.0);
/// assert_eq!(p.quantize(1000.0), 127); // saturates
/// assert!(QuantParams::new(0.0, 0).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QuantParams {
    scale: f32,
    zero_point: i8,
}

impl QuantParams {
    /// Parameters with a strictly positive, finite `scale`; otherwise
    /// [`QuantError::InvalidScale`].
    pub const fn new(scale: f32, zero_point: i8) -> Result<Self, QuantError> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(QuantError::InvalidScale {
                what: "tensor",
                channel: None,
            });
        }
        Ok(QuantParams { scale, zero_point })
    }

    /// The scale.
    pub const fn scale(&self) -> f32 {
        self.scale
    }

    /// The zero point.
    pub const fn zero_point(&self) -> i8 {
        self.zero_point
    }

    /// TFLite's `QUANTIZE` (float to int8, `reference_ops::AffineQuantize`):
    /// `clamp(round(x / scale) + zero_point, -128, 127)` with the division in `f32` and ties
    /// rounded away from zero. NaN maps to the zero point (undefined in TFLite).
    pub fn quantize(&self, x: f32) -> i8 {
        let r = libm::roundf(x / self.scale) as i32; // saturating cast; NaN -> 0
        clamp_i32(r.saturating_add(self.zero_point as i32), -128, 127) as i8
    }

    /// TFLite's `DEQUANTIZE` (int8 to float): `scale * (q - zero_point)`, one rounding.
    pub fn dequantize(&self, q: i8) -> f32 {
        // (q - zp) has at most 9 significant bits, so the f32 product rounds the exact
        // value once, as TFLite's double product cast to float does.
        self.scale * (q as i32 - self.zero_point as i32) as f32
    }
}

/// TFLite's `QuantizeMultiplier(double, int32*, int*)`, exactly: `real = q * 2^shift` with
/// `q` in `[0.5, 1)` (`frexp`), `multiplier = round(q * 2^31)` (ties away from zero); a
/// `multiplier` that rounds up to `2^31` is halved and the shift incremented; a shift below
/// -31 flushes to `(0, 0)`. Zero gives `(0, 0)`; a negative `real` a negative multiplier.
///
/// Returns `(multiplier, shift)`, with `real ≈ multiplier * 2^(shift - 31)`. The shift is not
/// range-checked (TFLite does not either; a shift above 30 cannot be applied, see
/// [`QuantizedMultiplier::from_real`]). Fails only for a non-finite `real`.
///
/// ```
/// use microdnn::quant::quantize_multiplier;
/// assert_eq!(quantize_multiplier(0.5), Ok((1 << 30, 0)));
/// assert_eq!(quantize_multiplier(0.75), Ok((3 << 29, 0)));
/// assert_eq!(quantize_multiplier(1.0), Ok((1 << 30, 1)));
/// assert_eq!(quantize_multiplier(0.0), Ok((0, 0)));
/// assert_eq!(quantize_multiplier(1e-12), Ok((0, 0))); // below 2^-32: flushed to zero
/// // 1 - 2^-40 rounds up to 2^31, which is halved: (2^30, shift + 1)
/// assert_eq!(quantize_multiplier(1.0 - 2f64.powi(-40)), Ok((1 << 30, 1)));
/// ```
pub fn quantize_multiplier(real: f64) -> Result<(i32, i32), QuantError> {
    if !real.is_finite() {
        return Err(QuantError::NonFinite { what: "multiplier" });
    }
    if real == 0.0 {
        return Ok((0, 0));
    }
    let (q, mut shift) = libm::frexp(real);
    // |q| in [0.5, 1): q * 2^31 is exact, and its rounding lies in [2^30, 2^31].
    let mut q_fixed = libm::round(q * (1u64 << 31) as f64) as i64;
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        return Ok((0, 0));
    }
    // |q_fixed| <= 2^31 - 1 for positive reals, and >= -2^31 for negative ones: fits in i32.
    Ok((q_fixed as i32, shift))
}

/// A non-negative real multiplier in TFLite's fixed-point form: a `Q0.31` multiplier and a
/// power-of-two shift in `[-31, 30]`, applied by [`QuantizedMultiplier::apply`]
/// (`MultiplyByQuantizedMultiplier`).
///
/// ```
/// use microdnn::quant::QuantizedMultiplier;
/// let m = QuantizedMultiplier::from_real(0.1).unwrap();
/// assert_eq!((m.multiplier(), m.shift()), (1717986918, -3));
/// assert_eq!(m.apply(1000), 100);
/// assert_eq!(m.apply(-15), -2); // -1.5: the two roundings give -2
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QuantizedMultiplier {
    multiplier: i32,
    shift: i32,
}

impl QuantizedMultiplier {
    /// Shifts outside `[MIN_SHIFT, MAX_SHIFT]` are rejected.
    pub const MIN_SHIFT: i32 = -31;
    /// A left shift of 31 would overflow every non-zero input.
    pub const MAX_SHIFT: i32 = 30;

    /// A stored multiplier and shift: `multiplier >= 0` and `shift` in `[-31, 30]`, otherwise
    /// `None`.
    pub const fn new(multiplier: i32, shift: i32) -> Option<Self> {
        if multiplier < 0 || shift < Self::MIN_SHIFT || shift > Self::MAX_SHIFT {
            None
        } else {
            Some(QuantizedMultiplier { multiplier, shift })
        }
    }

    /// [`quantize_multiplier`] of `real`, which must be finite, non-negative and below about
    /// `2^30`; otherwise [`QuantError::MultiplierOutOfRange`] (or [`QuantError::NonFinite`]).
    pub fn from_real(real: f64) -> Result<Self, QuantError> {
        let out_of_range = QuantError::MultiplierOutOfRange {
            what: "real",
            channel: None,
        };
        let (m, s) = quantize_multiplier(real)?;
        QuantizedMultiplier::new(m, s).ok_or(out_of_range)
    }

    /// The `Q0.31` multiplier (0 or in `[2^30, 2^31)` when made by [`Self::from_real`]).
    pub const fn multiplier(&self) -> i32 {
        self.multiplier
    }

    /// The power-of-two shift (positive: left).
    pub const fn shift(&self) -> i32 {
        self.shift
    }

    /// `MultiplyByQuantizedMultiplier(x, multiplier, shift)`; see
    /// [`fixed::multiply_by_quantized_multiplier`](super::fixed::multiply_by_quantized_multiplier).
    #[inline]
    pub const fn apply(&self, x: i32) -> i32 {
        multiply_by_quantized_multiplier(x, self.multiplier, self.shift)
    }
}

/// The activation TFLite fuses into a layer's output clamp (`TfLiteFusedActivation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FusedActivation {
    /// No clamp beyond the int8 range.
    None,
    /// Clamp below at real 0.
    Relu,
    /// Clamp to real `[-1, 1]`.
    ReluN1To1,
    /// Clamp to real `[0, 6]`.
    Relu6,
}

impl FusedActivation {
    /// The int8 clamp `(min, max)` of this activation for an output quantized with `output`:
    /// TFLite's `CalculateActivationRangeQuantized`, where each bound is
    /// `zero_point + round(bound / scale)` (division in `f32`, ties away from zero), clipped to
    /// `[-128, 127]`.
    ///
    /// Fails with [`QuantError::ActivationBoundOverflow`] when `round(bound / scale)` does not
    /// fit in an `i32` (TFLite refuses the model then).
    ///
    /// ```
    /// use microdnn::quant::{FusedActivation, QuantParams};
    /// let out = QuantParams::new(0.05, -100).unwrap();
    /// assert_eq!(FusedActivation::Relu6.range(out), Ok((-100, 20)));
    /// assert_eq!(FusedActivation::None.range(out), Ok((-128, 127)));
    /// ```
    pub fn range(self, output: QuantParams) -> Result<(i8, i8), QuantError> {
        let quantize = |bound: f32| -> Result<i32, QuantError> {
            let t = libm::roundf(bound / output.scale());
            if !(t >= i32::MIN as f32 && t <= i32::MAX as f32) {
                return Err(QuantError::ActivationBoundOverflow);
            }
            // TFLite adds in i32 (undefined on overflow); the sum is only compared with the
            // int8 limits, for which saturation gives the same result.
            Ok((t as i32).saturating_add(output.zero_point() as i32))
        };
        let (lo, hi) = match self {
            FusedActivation::None => (-128, 127),
            FusedActivation::Relu => (quantize(0.0)?.max(-128), 127),
            FusedActivation::ReluN1To1 => (quantize(-1.0)?.max(-128), quantize(1.0)?.min(127)),
            FusedActivation::Relu6 => (quantize(0.0)?.max(-128), quantize(6.0)?.min(127)),
        };
        // Each bound is in [-128, 127] after one-sided clipping because zero_point is, and the
        // lower real bound is below the upper one.
        Ok((
            clamp_i32(lo, -128, 127) as i8,
            clamp_i32(hi, -128, 127) as i8,
        ))
    }

    /// A short lowercase name (`"none"`, `"relu"`, `"relu_n1_to_1"`, `"relu6"`).
    pub const fn name(self) -> &'static str {
        match self {
            FusedActivation::None => "none",
            FusedActivation::Relu => "relu",
            FusedActivation::ReluN1To1 => "relu_n1_to_1",
            FusedActivation::Relu6 => "relu6",
        }
    }
}

/// The per-channel output multipliers of an int8 `FULLY_CONNECTED` layer with per-channel
/// weight scales, as TFLite Micro's `CalculateOpDataFullyConnected` computes them:
/// `QuantizeMultiplier(double(input_scale) * double(filter_scale[c]) / double(output_scale))`.
///
/// Writes `multipliers[c]` and `shifts[c]` for every channel. Fails with
/// [`QuantError::Shape`] unless the three slices have the same length, with
/// [`QuantError::InvalidScale`] for a filter scale that is not positive and finite, and with
/// [`QuantError::MultiplierOutOfRange`] for an effective scale of about `2^30` or more.
///
/// ```
/// use microdnn::quant::{per_channel_multipliers, QuantParams};
/// let input = QuantParams::new(0.5, 3).unwrap();
/// let output = QuantParams::new(0.25, -1).unwrap();
/// let (mut m, mut s) = ([0; 2], [0; 2]);
/// per_channel_multipliers(input, &[0.25, 0.1875], output, &mut m, &mut s).unwrap();
/// assert_eq!((m, s), ([1 << 30, 3 << 29], [0, -1])); // 0.5 and 0.75 / 2
/// ```
pub fn per_channel_multipliers(
    input: QuantParams,
    filter_scales: &[f32],
    output: QuantParams,
    multipliers: &mut [i32],
    shifts: &mut [i32],
) -> Result<(), QuantError> {
    let n = filter_scales.len();
    for (what, len) in [("multipliers", multipliers.len()), ("shifts", shifts.len())] {
        if len != n {
            return Err(QuantError::Shape {
                what,
                expected: n,
                found: len,
            });
        }
    }
    for (c, ((&fs, m), s)) in filter_scales
        .iter()
        .zip(multipliers.iter_mut())
        .zip(shifts.iter_mut())
        .enumerate()
    {
        if !(fs.is_finite() && fs > 0.0) {
            return Err(QuantError::InvalidScale {
                what: "filter",
                channel: Some(c),
            });
        }
        let real = f64::from(input.scale()) * f64::from(fs) / f64::from(output.scale());
        let q =
            QuantizedMultiplier::from_real(real).map_err(|_| QuantError::MultiplierOutOfRange {
                what: "output",
                channel: Some(c),
            })?;
        *m = q.multiplier();
        *s = q.shift();
    }
    Ok(())
}

/// The single output multiplier of an int8 `FULLY_CONNECTED` layer with one weight scale
/// (TFLite's `GetQuantizedConvolutionMultipler`):
/// `QuantizeMultiplier(double(input_scale) * double(filter_scale) / double(output_scale))`.
///
/// The TFLite Micro source at commit `90b983c` (August 2026) rounds the product
/// `input_scale * filter_scale` to `f32` first; the build this crate is tested against
/// (`tflite-micro` 0.dev20261023, whose machine code converts both scales to double before
/// multiplying) does not, and the fixture `fc_multiplier_rounding_per_tensor` has outputs on
/// which the two differ. This follows the tested build.
pub fn per_tensor_multiplier(
    input: QuantParams,
    filter_scale: f32,
    output: QuantParams,
) -> Result<QuantizedMultiplier, QuantError> {
    if !(filter_scale.is_finite() && filter_scale > 0.0) {
        return Err(QuantError::InvalidScale {
            what: "filter",
            channel: None,
        });
    }
    let real = f64::from(input.scale()) * f64::from(filter_scale) / f64::from(output.scale());
    QuantizedMultiplier::from_real(real).map_err(|_| QuantError::MultiplierOutOfRange {
        what: "output",
        channel: None,
    })
}

/// How a layer turns its `i32` accumulators into int8 outputs: per channel (or one for all),
/// `clamp(zero_point + MultiplyByQuantizedMultiplier(acc, multiplier, shift), min, max)`.
///
/// Borrows the multipliers and shifts (as TFLite Micro keeps them: one `i32` each), so they can
/// stay in flash. Either one pair per output channel, or a single pair for every channel
/// (per-tensor quantization).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requantize<'a> {
    multipliers: &'a [i32],
    shifts: &'a [i32],
    output_zero_point: i8,
    min: i8,
    max: i8,
}

impl<'a> Requantize<'a> {
    /// Checks the parameters: `multipliers` and `shifts` of equal, non-zero length, every
    /// multiplier `>= 0` and shift in `[-31, 30]` ([`QuantError::InvalidRequantization`]), and
    /// `activation_min <= activation_max` ([`QuantError::ActivationRange`]).
    ///
    /// `activation_min`/`activation_max` are the fused activation's clamp
    /// ([`FusedActivation::range`]); `(-128, 127)` for none.
    pub fn new(
        multipliers: &'a [i32],
        shifts: &'a [i32],
        output_zero_point: i8,
        activation_min: i8,
        activation_max: i8,
    ) -> Result<Self, QuantError> {
        if shifts.len() != multipliers.len() || multipliers.is_empty() {
            return Err(QuantError::Shape {
                what: "shifts",
                expected: multipliers.len().max(1),
                found: shifts.len(),
            });
        }
        for (channel, (&m, &s)) in multipliers.iter().zip(shifts).enumerate() {
            if QuantizedMultiplier::new(m, s).is_none() {
                return Err(QuantError::InvalidRequantization { channel });
            }
        }
        if activation_min > activation_max {
            return Err(QuantError::ActivationRange {
                min: activation_min,
                max: activation_max,
            });
        }
        Ok(Requantize {
            multipliers,
            shifts,
            output_zero_point,
            min: activation_min,
            max: activation_max,
        })
    }

    /// Number of (multiplier, shift) pairs: 1 for per-tensor quantization.
    pub const fn channels(&self) -> usize {
        self.multipliers.len()
    }

    /// The multipliers.
    pub const fn multipliers(&self) -> &'a [i32] {
        self.multipliers
    }

    /// The shifts.
    pub const fn shifts(&self) -> &'a [i32] {
        self.shifts
    }

    /// The output zero point.
    pub const fn output_zero_point(&self) -> i8 {
        self.output_zero_point
    }

    /// The activation clamp `(min, max)`.
    pub const fn activation_range(&self) -> (i8, i8) {
        (self.min, self.max)
    }

    /// The int8 output of `channel` for accumulator `acc` (TFLite Micro's
    /// `FullyConnectedPerChannel` epilogue). A per-tensor `Requantize` uses its single pair for
    /// every channel; a channel beyond the last uses the last pair.
    #[inline]
    pub fn apply(&self, channel: usize, acc: i32) -> i8 {
        let i = if channel < self.multipliers.len() {
            channel
        } else {
            self.multipliers.len().saturating_sub(1)
        };
        let (m, s) = match (self.multipliers.get(i), self.shifts.get(i)) {
            (Some(&m), Some(&s)) => (m, s),
            _ => (0, 0),
        };
        self.apply_with(m, s, acc)
    }

    /// The epilogue with an explicit multiplier and shift (used by the kernels, which walk the
    /// channels themselves): [`Requantize::apply`] for a pair of this `Requantize`.
    ///
    /// Written for the pairs [`Requantize::new`] accepts (`multiplier >= 0`, `shift` in
    /// `[-31, 30]`), where it is exactly `MultiplyByQuantizedMultiplier` (tested against
    /// [`multiply_by_quantized_multiplier`]) without its range clamps and its saturation
    /// branch, which such pairs never reach (the saturating case needs a multiplier of
    /// `i32::MIN`). Other pairs give some value, never a panic.
    #[inline(always)]
    pub(crate) fn apply_with(&self, multiplier: i32, shift: i32, acc: i32) -> i8 {
        let (left, right) = if shift > 0 {
            (shift, 0)
        } else {
            (0, shift.wrapping_neg())
        };
        let scaled = acc.wrapping_shl(left as u32);
        // SaturatingRoundingDoublingHighMul for a non-negative multiplier (see `fixed`).
        let high = ((scaled as i64 * multiplier as i64 + (1 << 30)) >> 31) as i32;
        let q = rounding_divide_by_pot(high, right).wrapping_add(self.output_zero_point as i32);
        clamp_i32(q, self.min as i32, self.max as i32) as i8
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::Rng;

    /// QuantizeMultiplier recomputed without frexp: the exact binary exponent by repeated
    /// doubling/halving, then the same rounding.
    fn quantize_multiplier_by_scaling(real: f64) -> (i32, i32) {
        if real == 0.0 {
            return (0, 0);
        }
        let (mut q, mut e) = (real.abs(), 0i32);
        while q >= 1.0 {
            q /= 2.0;
            e += 1;
        }
        while q < 0.5 {
            q *= 2.0;
            e -= 1;
        }
        let mut m = (q * 2f64.powi(31)).round() as i64;
        if m == 1 << 31 {
            m /= 2;
            e += 1;
        }
        if e < -31 {
            return (0, 0);
        }
        (if real < 0.0 { -m } else { m } as i32, e)
    }

    #[test]
    fn quantize_multiplier_edge_cases() {
        assert_eq!(quantize_multiplier(0.0), Ok((0, 0)));
        assert_eq!(quantize_multiplier(-0.0), Ok((0, 0)));
        assert!(quantize_multiplier(f64::NAN).is_err());
        assert!(quantize_multiplier(f64::INFINITY).is_err());
        assert_eq!(quantize_multiplier(1.0), Ok((1 << 30, 1)));
        assert_eq!(quantize_multiplier(2.0), Ok((1 << 30, 2)));
        assert_eq!(quantize_multiplier(-0.5), Ok((-(1 << 30), 0)));
        // -(1 - 2^-40): rounds to -2^31, which TFLite does not renormalise (only +2^31).
        assert_eq!(
            quantize_multiplier(-1.0 + 2f64.powi(-40)),
            Ok((i32::MIN, 0))
        );
        // Tiny: 2^-32 has frexp exponent -31 and survives; 2^-33 is flushed.
        assert_eq!(quantize_multiplier(2f64.powi(-32)), Ok((1 << 30, -31)));
        assert_eq!(quantize_multiplier(2f64.powi(-33)), Ok((0, 0)));
        assert_eq!(quantize_multiplier(f64::MIN_POSITIVE / 4.0), Ok((0, 0)));
        // Large multipliers keep their shift (not appliable above 30).
        assert_eq!(quantize_multiplier(2f64.powi(40)), Ok((1 << 30, 41)));
        assert!(QuantizedMultiplier::from_real(2f64.powi(40)).is_err());
        assert!(QuantizedMultiplier::from_real(2f64.powi(29)).is_ok());
        assert!(QuantizedMultiplier::from_real(2f64.powi(30)).is_err()); // shift 31
        assert!(QuantizedMultiplier::from_real(-0.5).is_err());
        // 1/3: 0.666.. * 2^31 = 1431655765.33 -> 1431655765, shift -1.
        assert_eq!(quantize_multiplier(1.0 / 3.0), Ok((1431655765, -1)));
    }

    #[test]
    fn quantize_multiplier_against_scaling() {
        let mut rng = Rng::new(5);
        for _ in 0..100_000 {
            let mant = 1.0 + rng.next_u32() as f64 / 2f64.powi(32);
            let e = (rng.next_u32() % 80) as i32 - 60;
            let sign = if rng.next_u32().is_multiple_of(4) {
                -1.0
            } else {
                1.0
            };
            let real = sign * mant * 2f64.powi(e);
            assert_eq!(
                quantize_multiplier(real),
                Ok(quantize_multiplier_by_scaling(real)),
                "{real}"
            );
            // And the representation is within half a unit of the real value.
            let (m, s) = quantize_multiplier(real).unwrap();
            if m != 0 {
                let back = m as f64 * 2f64.powi(s - 31);
                assert!(
                    (back - real).abs() <= 2f64.powi(s - 32) * 1.000001,
                    "{real}"
                );
            }
        }
    }

    #[test]
    fn activation_ranges() {
        let out = QuantParams::new(0.1, 5).unwrap();
        assert_eq!(FusedActivation::Relu.range(out), Ok((5, 127)));
        assert_eq!(FusedActivation::ReluN1To1.range(out), Ok((-5, 15)));
        assert_eq!(FusedActivation::Relu6.range(out), Ok((5, 65)));
        let wide = QuantParams::new(1.0, 127).unwrap();
        assert_eq!(FusedActivation::Relu6.range(wide), Ok((127, 127)));
        let tiny = QuantParams::new(1e-12, 0).unwrap();
        assert_eq!(FusedActivation::Relu.range(tiny), Ok((0, 127)));
        assert_eq!(
            FusedActivation::Relu6.range(tiny),
            Err(QuantError::ActivationBoundOverflow)
        );
        // Ties round away from zero: 6 / 4 = 1.5 -> 2.
        let coarse = QuantParams::new(4.0, -1).unwrap();
        assert_eq!(FusedActivation::Relu6.range(coarse), Ok((-1, 1)));
    }

    #[test]
    fn requantize_checks_and_applies() {
        assert!(Requantize::new(&[1 << 30], &[0, 0], 0, -128, 127).is_err());
        assert!(Requantize::new(&[], &[], 0, -128, 127).is_err());
        assert_eq!(
            Requantize::new(&[1 << 30, -1], &[0, 0], 0, -128, 127),
            Err(QuantError::InvalidRequantization { channel: 1 })
        );
        assert!(Requantize::new(&[1 << 30], &[31], 0, -128, 127).is_err());
        assert!(Requantize::new(&[1 << 30], &[0], 0, 5, 4).is_err());
        let r = Requantize::new(&[1 << 30, 3 << 29], &[-1, 0], -10, -20, 100).unwrap();
        assert_eq!(r.apply(0, 100), -10 + 25);
        assert_eq!(r.apply(1, 100), -10 + 75);
        assert_eq!(r.apply(1, 1000), 100); // clamped above
        assert_eq!(r.apply(1, -1000), -20); // clamped below
        assert_eq!(r.apply(7, 100), -10 + 75); // beyond the last channel: the last pair
    }

    #[test]
    fn the_kernel_epilogue_is_multiply_by_quantized_multiplier() {
        let mut rng = Rng::new(17);
        let accs = [
            0,
            1,
            -1,
            2,
            -2,
            i32::MAX,
            i32::MIN,
            1 << 20,
            -(1 << 20),
            12345,
            -54321,
        ];
        for _ in 0..20_000 {
            let m = (rng.next_u32() >> 1) as i32; // [0, 2^31)
            let m = [m, 0, 1 << 30, i32::MAX][(rng.next_u32() % 8).min(3) as usize];
            let s = (rng.next_u32() % 62) as i32 - 31; // [-31, 30]
            let zp = rng.next_u32() as i8;
            let (lo, hi) = {
                let (a, b) = (rng.next_u32() as i8, rng.next_u32() as i8);
                (a.min(b), a.max(b))
            };
            let r = Requantize::new(&[0], &[0], zp, lo, hi).unwrap();
            let acc = if rng.next_u32().is_multiple_of(4) {
                accs[(rng.next_u32() as usize) % accs.len()]
            } else {
                (rng.next_u32() as i32) >> (rng.next_u32() % 32)
            };
            let want = clamp_i32(
                multiply_by_quantized_multiplier(acc, m, s).wrapping_add(zp as i32),
                lo as i32,
                hi as i32,
            ) as i8;
            assert_eq!(r.apply_with(m, s, acc), want, "{acc} {m} {s}");
        }
        // Pairs `new` refuses still give a value (no panic, also in debug builds).
        let r = Requantize::new(&[0], &[0], 0, -128, 127).unwrap();
        for (m, s) in [(i32::MIN, 0), (-5, 40), (7, i32::MIN), (i32::MAX, i32::MAX)] {
            let _ = r.apply_with(m, s, i32::MIN);
        }
    }

    #[test]
    fn quantize_and_dequantize_follow_tflite() {
        let p = QuantParams::new(0.5, 10).unwrap();
        assert_eq!(p.quantize(1.25), 13); // 2.5 -> 3
        assert_eq!(p.quantize(-1.25), 7); // -2.5 -> -3
        assert_eq!(p.quantize(1.2), 12); // 2.4 -> 2
        let p = QuantParams::new(0.1, 10).unwrap();
        assert_eq!(p.quantize(f32::INFINITY), 127);
        assert_eq!(p.quantize(f32::NEG_INFINITY), -128);
        assert_eq!(p.quantize(f32::NAN), 10);
        for q in -128..=127i8 {
            assert_eq!(
                p.dequantize(q),
                (f64::from(0.1f32) * (q as f64 - 10.0)) as f32
            );
        }
    }
}

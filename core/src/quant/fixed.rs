//! Fixed-point primitives of TFLite's integer kernels, transcribed from gemmlowp's
//! `fixedpoint/fixedpoint.h` and TFLite's `kernels/internal/common.{h,cc}`.
//!
//! Every function is total: it returns a value for every input and never panics, also with
//! overflow checks on. Where the C++ original has undefined behaviour (signed overflow in a plain
//! `+`, `-`, `*` or `<<`, or a shift count out of range), this module wraps like the two's
//! complement hardware TFLite runs on, or clamps the shift count, and says so. Inside TFLite's
//! documented input ranges the results are exactly TFLite's.
//!
//! A gemmlowp `FixedPoint<i32, IB>` is represented here by its raw `i32`: the value is
//! `raw / 2^(31 - IB)`, so `IB` integer bits (range `[-2^IB, 2^IB)`). `Q0` (`IB = 0`) holds
//! `[-1, 1)`.

/// `SaturatingRoundingDoublingHighMul` (gemmlowp; the Arm NEON `VQRDMULH` instruction): the
/// high 32 bits of `2 * a * b`, rounded to nearest (ties upward), with the single overflowing
/// case `a = b = i32::MIN` saturated to `i32::MAX`.
///
/// As fixed point: the product of two `Q0.31` numbers.
///
/// ```
/// use microdnn::quant::fixed::saturating_rounding_doubling_high_mul as srdhm;
/// assert_eq!(srdhm(1 << 30, 1 << 30), 1 << 29); // 0.5 * 0.5 = 0.25
/// assert_eq!(srdhm(i32::MIN, i32::MIN), i32::MAX); // (-1) * (-1) saturates
/// assert_eq!(srdhm(3, 1 << 30), 2); // 1.5 rounds up
/// assert_eq!(srdhm(-3, 1 << 30), -1); // -1.5 rounds up too
/// ```
#[inline]
pub const fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == b && a == i32::MIN {
        return i32::MAX;
    }
    // gemmlowp computes `(ab + nudge) / 2^31` with `nudge = 2^30` for `ab >= 0` and
    // `1 - 2^30` below, `/` truncating toward zero. For `ab >= 0` that is
    // `floor((ab + 2^30) / 2^31)`; for `ab < 0`, `trunc(y / 2^31)` with `y = ab + 1 - 2^30 < 0`
    // is `ceil(y / 2^31) = floor((y + 2^31 - 1) / 2^31) = floor((ab + 2^30) / 2^31)` as well.
    // So one rounding shift does it (the form CMSIS-NN's kernels use: `SMLAL` then a shift).
    // |ab| <= 2^62: no overflow; the result fits in i32 except for the saturated case above.
    ((a as i64 * b as i64 + (1 << 30)) >> 31) as i32
}

/// `RoundingDivideByPOT` (gemmlowp): `x / 2^exponent` rounded to nearest, ties away from zero
/// (a rounding arithmetic right shift).
///
/// gemmlowp asserts `0 <= exponent <= 31`; here `exponent` is clamped into that range.
///
/// ```
/// use microdnn::quant::fixed::rounding_divide_by_pot as rdbpot;
/// assert_eq!(rdbpot(5, 1), 3); // 2.5 -> 3
/// assert_eq!(rdbpot(-5, 1), -3); // -2.5 -> -3
/// assert_eq!(rdbpot(-6, 2), -2); // -1.5 -> -2
/// assert_eq!(rdbpot(7, 0), 7);
/// ```
#[inline]
pub const fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    let e = clamp_i32(exponent, 0, 31) as u32;
    let mask = ((1i64 << e) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + if x < 0 { 1 } else { 0 };
    // (x >> e) <= 2^(31-e) - 1, so adding 1 cannot overflow when e >= 1 (and for e = 0 the
    // remainder is 0, never above the threshold).
    (x >> e) + if remainder > threshold { 1 } else { 0 }
}

/// `SaturatingRoundingMultiplyByPOT<exponent>` (gemmlowp): `x * 2^exponent`, saturating when
/// `exponent > 0`, rounding to nearest ([`rounding_divide_by_pot`]) when `exponent < 0`.
///
/// `exponent` is clamped into `[-31, 31]`.
#[inline]
pub const fn saturating_rounding_multiply_by_pot(x: i32, exponent: i32) -> i32 {
    let e = clamp_i32(exponent, -31, 31);
    if e == 0 {
        x
    } else if e < 0 {
        rounding_divide_by_pot(x, -e)
    } else {
        // gemmlowp compares against a threshold, then shifts through an i64; the comparison
        // alone decides saturation, and the i64 shift is exact otherwise.
        let threshold = (1i64 << (31 - e)) - 1;
        if x as i64 > threshold {
            i32::MAX
        } else if (x as i64) < -threshold {
            i32::MIN
        } else {
            ((x as i64) << e) as i32
        }
    }
}

/// `MultiplyByQuantizedMultiplier(int32 x, int32 multiplier, int shift)`, TFLite's default
/// (double-rounding) requantization, used by every int8 kernel:
///
/// ```text
/// RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x * 2^max(shift, 0), multiplier),
///                     max(-shift, 0))
/// ```
///
/// It approximates `x * multiplier * 2^(shift - 31)`. The left shift is a plain C++ multiply
/// that TFLite expects not to overflow; here it wraps (as the hardware does). `shift` is clamped
/// into `[-31, 31]` (outside it TFLite's behaviour is undefined).
///
/// ```
/// use microdnn::quant::fixed::multiply_by_quantized_multiplier as mbqm;
/// // multiplier 0.5 (2^30 in Q0.31), shift -1: x / 4, rounded twice.
/// assert_eq!(mbqm(100, 1 << 30, -1), 25);
/// // 1 * 0.25 = 0.25 rounds to 0 exactly, but TFLite rounds twice: 0.5 -> 1, then 0.5 -> 1.
/// assert_eq!(mbqm(1, 1 << 30, -1), 1);
/// ```
#[inline]
pub const fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    let shift = clamp_i32(shift, -31, 31);
    let (left, right) = if shift > 0 { (shift, 0) } else { (0, -shift) };
    let scaled = x.wrapping_mul(1i32.wrapping_shl(left as u32));
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(scaled, multiplier),
        right,
    )
}

/// `MultiplyByQuantizedMultiplierGreaterThanOne` (double-rounding build), used by the int8
/// softmax: `SaturatingRoundingDoublingHighMul(x * 2^left_shift, multiplier)`.
///
/// The left shift wraps on overflow; `left_shift` is clamped into `[0, 31]`.
#[inline]
pub const fn multiply_by_quantized_multiplier_greater_than_one(
    x: i32,
    multiplier: i32,
    left_shift: i32,
) -> i32 {
    let left = clamp_i32(left_shift, 0, 31) as u32;
    saturating_rounding_doubling_high_mul(x.wrapping_mul(1i32.wrapping_shl(left)), multiplier)
}

/// `RoundingHalfSum` (gemmlowp, `i32`): `(a + b) / 2` rounded to nearest, ties away from zero.
#[inline]
pub const fn rounding_half_sum(a: i32, b: i32) -> i32 {
    let sum = a as i64 + b as i64;
    let sign = if sum >= 0 { 1 } else { -1 };
    ((sum + sign) / 2) as i32
}

/// `FixedPoint::ConstantPOT<exponent>()` for `integer_bits`: the raw value of `2^exponent`.
const fn constant_pot(integer_bits: u32, exponent: i32) -> i32 {
    let offset = 31 - integer_bits as i32 + exponent;
    1i32.wrapping_shl(offset as u32)
}

/// `FixedPoint<i32, IB>::One()`: `2^(31 - IB)`, or `i32::MAX` in `Q0` where 1 is not
/// representable.
const fn one(integer_bits: u32) -> i32 {
    if integer_bits == 0 {
        i32::MAX
    } else {
        1i32.wrapping_shl(31 - integer_bits)
    }
}

/// `Rescale<dst>(FixedPoint<i32, src>)`: the same value with `dst` integer bits (saturating).
#[inline]
const fn rescale(x: i32, src_bits: u32, dst_bits: u32) -> i32 {
    saturating_rounding_multiply_by_pot(x, src_bits as i32 - dst_bits as i32)
}

/// gemmlowp `exp_on_interval_between_negative_one_quarter_and_0_excl`: `exp(a)` for a `Q0`
/// value `a` in `[-1/4, 0)`, as `Q0` (a Taylor expansion around -1/8).
pub const fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
    let mul = saturating_rounding_doubling_high_mul;
    const CONSTANT_TERM: i32 = 1_895_147_668; // exp(-1/8)
    const CONSTANT_1_OVER_3: i32 = 715_827_883; // 1/3
    let x = a.wrapping_add(constant_pot(0, -3));
    let x2 = mul(x, x);
    let x3 = mul(x2, x);
    let x4 = mul(x2, x2);
    let x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2);
    let x4_over_24_plus_x3_over_6_plus_x2_over_2 = saturating_rounding_multiply_by_pot(
        mul(x4_over_4.wrapping_add(x3), CONSTANT_1_OVER_3).wrapping_add(x2),
        -1,
    );
    CONSTANT_TERM.wrapping_add(mul(
        CONSTANT_TERM,
        x.wrapping_add(x4_over_24_plus_x3_over_6_plus_x2_over_2),
    ))
}

/// gemmlowp `exp_on_negative_values`: `exp(a)` for `a <= 0` given with `integer_bits` integer
/// bits (`FixedPoint<i32, integer_bits>`), as `Q0`. TFLite uses 4 (logistic), 5 (tanh after
/// doubling, softmax). `integer_bits` is clamped into `[0, 30]`.
pub const fn exp_on_negative_values(a: i32, integer_bits: u32) -> i32 {
    let ib = if integer_bits > 30 { 30 } else { integer_bits };
    let fractional_bits = 31 - ib as i32;
    let one_quarter = constant_pot(ib, -2);
    let mask = one_quarter.wrapping_sub(1);
    let a_mod_quarter_minus_one_quarter = (a & mask).wrapping_sub(one_quarter);
    let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl(rescale(
        a_mod_quarter_minus_one_quarter,
        ib,
        0,
    ));
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);

    // (exponent, Q0 raw value of exp(-2^exponent)): gemmlowp's barrel shifter.
    const BARREL: [(i32, i32); 7] = [
        (-2, 1_672_461_947),
        (-1, 1_302_514_674),
        (0, 790_015_084),
        (1, 290_630_308),
        (2, 39_332_535),
        (3, 720_401),
        (4, 242),
    ];
    let mut k = 0;
    while k < BARREL.len() {
        let (exponent, multiplier) = BARREL[k];
        if (ib as i32) > exponent {
            let shift = fractional_bits + exponent;
            if remainder & 1i32.wrapping_shl(shift as u32) != 0 {
                result = saturating_rounding_doubling_high_mul(result, multiplier);
            }
        }
        k += 1;
    }

    if ib > 5 {
        let clamp = -(1i32 << (36 - ib));
        if a < clamp {
            result = 0;
        }
    }
    if a == 0 {
        result = one(0);
    }
    result
}

/// gemmlowp `one_over_one_plus_x_for_x_in_0_1`: `1 / (1 + a)` for a `Q0` value `a` in
/// `[0, 1)`, as `Q0` (three Newton-Raphson steps).
pub const fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    let x = newton_reciprocal_of_half_denominator(a);
    // ExactMulByPot<-1> (Q2 -> Q1, same raw), then Rescale<0> from Q1.
    rescale(x, 1, 0)
}

/// gemmlowp `one_minus_x_over_one_plus_x_for_x_in_0_1`: `(1 - a) / (1 + a)` for a `Q0` value
/// `a` in `[0, 1)`, as `Q0`.
pub const fn one_minus_x_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    let x = newton_reciprocal_of_half_denominator(a);
    rescale(x.wrapping_sub(one(2)), 2, 0)
}

/// The Newton-Raphson division shared by the two functions above: `1 / ((1 + a) / 2)` in `Q2`.
const fn newton_reciprocal_of_half_denominator(a: i32) -> i32 {
    let mul = saturating_rounding_doubling_high_mul;
    const CONSTANT_48_OVER_17: i32 = 1_515_870_810; // Q2
    const CONSTANT_NEG_32_OVER_17: i32 = -1_010_580_540; // Q2
    let half_denominator = rounding_half_sum(a, one(0));
    let mut x = CONSTANT_48_OVER_17.wrapping_add(mul(half_denominator, CONSTANT_NEG_32_OVER_17));
    let mut i = 0;
    while i < 3 {
        let half_denominator_times_x = mul(half_denominator, x); // Q0 * Q2 -> Q2
        let one_minus_half_denominator_times_x = one(2).wrapping_sub(half_denominator_times_x);
        // Q2 * Q2 -> Q4, rescaled to Q2.
        x = x.wrapping_add(rescale(mul(x, one_minus_half_denominator_times_x), 4, 2));
        i += 1;
    }
    x
}

/// gemmlowp `logistic`: `1 / (1 + exp(-a))` for `a` with `integer_bits` integer bits, as `Q0`.
pub const fn logistic(a: i32, integer_bits: u32) -> i32 {
    if a == 0 {
        return 1 << 30; // one half
    }
    let abs_input = if a > 0 { a } else { a.wrapping_neg() };
    let result_if_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(
        abs_input.wrapping_neg(),
        integer_bits,
    ));
    if a > 0 {
        result_if_positive
    } else {
        one(0).wrapping_sub(result_if_positive)
    }
}

/// gemmlowp `tanh`: `tanh(a)` for `a` with `integer_bits` integer bits, as `Q0`.
pub const fn tanh(a: i32, integer_bits: u32) -> i32 {
    if a == 0 {
        return 0;
    }
    let n = if a < 0 { a } else { a.wrapping_neg() };
    // neg_tanh_on_negative_values: ExactMulByPot<1> adds an integer bit, same raw value.
    let t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1));
    if a < 0 {
        t.wrapping_neg()
    } else {
        t
    }
}

/// TFLite `GetReciprocal(x, x_integer_digits, &num_bits_over_unit)`: for a positive `x` with
/// `x_integer_digits` integer bits, returns `(scale, num_bits_over_unit)` where `scale` (`Q0`)
/// is `1 / (x / 2^num_bits_over_unit)`, i.e. `x` normalised into `[1, 2)` and inverted.
pub const fn get_reciprocal(x: i32, x_integer_digits: i32) -> (i32, i32) {
    let headroom_plus_one = (x as u32).leading_zeros();
    let num_bits_over_unit = x_integer_digits - headroom_plus_one as i32;
    let shifted = match (x as u32).checked_shl(headroom_plus_one) {
        Some(v) => v,
        None => 0,
    };
    let shifted_sum_minus_one = shifted.wrapping_sub(1 << 31) as i32;
    (
        one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one),
        num_bits_over_unit,
    )
}

/// `v` clamped into `[lo, hi]` (`const`).
#[inline]
pub(crate) const fn clamp_i32(v: i32, lo: i32, hi: i32) -> i32 {
    if v < lo {
        lo
    } else if v > hi {
        hi
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::Rng;

    /// SRDHM from its definition with i128: `a*b / 2^31` rounded to nearest, ties upward
    /// (gemmlowp truncates `(p + 1 - 2^30) / 2^31` toward zero for a negative product `p`,
    /// which is `floor((p + 2^30) / 2^31)` too), saturating.
    fn srdhm_exact(a: i32, b: i32) -> i32 {
        let p = a as i128 * b as i128;
        let q = (p + (1i128 << 30)).div_euclid(1i128 << 31);
        q.clamp(i32::MIN as i128, i32::MAX as i128) as i32
    }

    /// SRDHM as gemmlowp writes it: a sign-dependent nudge, then a division truncating toward
    /// zero (the implementation uses one rounding shift instead; see its comment).
    fn srdhm_gemmlowp(a: i32, b: i32) -> i32 {
        if a == b && a == i32::MIN {
            return i32::MAX;
        }
        let ab = a as i64 * b as i64;
        let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
        ((ab + nudge) / (1i64 << 31)) as i32
    }

    #[test]
    fn srdhm_matches_gemmlowp_literally() {
        let edges = edge_values();
        for &a in &edges {
            for &b in &edges {
                assert_eq!(
                    saturating_rounding_doubling_high_mul(a, b),
                    srdhm_gemmlowp(a, b),
                    "{a} {b}"
                );
            }
        }
        let mut rng = Rng::new(12);
        for _ in 0..200_000 {
            let (a, b) = (rng.next_u32() as i32, rng.next_u32() as i32);
            // Small magnitudes too, where the rounding of ties matters.
            let (c, d) = (a >> (rng.next_u32() % 31), b >> (rng.next_u32() % 31));
            for (x, y) in [(a, b), (c, d), (a, d), (c, b)] {
                assert_eq!(
                    saturating_rounding_doubling_high_mul(x, y),
                    srdhm_gemmlowp(x, y),
                    "{x} {y}"
                );
            }
        }
    }

    /// Rounding right shift from its definition: nearest, ties away from zero.
    fn rdbpot_exact(x: i32, e: u32) -> i32 {
        let d = 1i128 << e;
        let x = x as i128;
        let q = x.div_euclid(d);
        let r = x.rem_euclid(d); // x = q*d + r, 0 <= r < d
        let up = 2 * r > d || (2 * r == d && x > 0);
        (q + up as i128) as i32
    }

    fn edge_values() -> std::vec::Vec<i32> {
        let mut v = std::vec![0, 1, -1, 2, -2, 3, -3, i32::MAX, i32::MIN, i32::MAX - 1];
        v.extend([
            i32::MIN + 1,
            1 << 30,
            -(1 << 30),
            (1 << 30) + 1,
            1 << 15,
            -(1 << 15),
        ]);
        v
    }

    #[test]
    fn srdhm_matches_exact_rounding() {
        let edges = edge_values();
        for &a in &edges {
            for &b in &edges {
                assert_eq!(
                    saturating_rounding_doubling_high_mul(a, b),
                    srdhm_exact(a, b),
                    "{a} {b}"
                );
            }
        }
        let mut rng = Rng::new(11);
        for _ in 0..200_000 {
            let (a, b) = (rng.next_u32() as i32, rng.next_u32() as i32);
            assert_eq!(
                saturating_rounding_doubling_high_mul(a, b),
                srdhm_exact(a, b)
            );
            // Small operands make exact ties frequent.
            let (a, b) = ((a >> 20), 1 << (rng.next_u32() % 31));
            assert_eq!(
                saturating_rounding_doubling_high_mul(a, b),
                srdhm_exact(a, b)
            );
        }
    }

    #[test]
    fn rdbpot_matches_exact_rounding() {
        let mut rng = Rng::new(12);
        for e in 0..=31u32 {
            for &x in &edge_values() {
                assert_eq!(
                    rounding_divide_by_pot(x, e as i32),
                    rdbpot_exact(x, e),
                    "{x} {e}"
                );
            }
            for _ in 0..20_000 {
                let x = rng.next_u32() as i32 >> (rng.next_u32() % 32);
                assert_eq!(
                    rounding_divide_by_pot(x, e as i32),
                    rdbpot_exact(x, e),
                    "{x} {e}"
                );
            }
        }
        // Out-of-range exponents are clamped, never a panic.
        assert_eq!(rounding_divide_by_pot(100, -3), 100);
        assert_eq!(
            rounding_divide_by_pot(i32::MAX, 99),
            rdbpot_exact(i32::MAX, 31)
        );
    }

    #[test]
    fn hand_computed_cases() {
        // 0.75 * 0.5 = 0.375
        assert_eq!(
            saturating_rounding_doubling_high_mul(3 << 29, 1 << 30),
            3 << 28
        );
        // ties: 5 * 2^30 / 2^31 = 2.5 -> 3; -2.5 -> -2 (half up)
        assert_eq!(saturating_rounding_doubling_high_mul(5, 1 << 30), 3);
        assert_eq!(saturating_rounding_doubling_high_mul(-5, 1 << 30), -2);
        assert_eq!(rounding_divide_by_pot(3, 1), 2);
        assert_eq!(rounding_divide_by_pot(-3, 1), -2);
        assert_eq!(rounding_divide_by_pot(-1, 1), -1);
        assert_eq!(rounding_divide_by_pot(1, 1), 1);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
        assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1);
        // 1000 * 0.75 * 2^-3 = 93.75 -> 94
        assert_eq!(multiply_by_quantized_multiplier(1000, 3 << 29, -3), 94);
        // left shift: 1000 * 0.75 * 2^2 = 3000
        assert_eq!(multiply_by_quantized_multiplier(1000, 3 << 29, 2), 3000);
        // double rounding: -3 * 0.5 = -1.5 -> -1 (SRDHM rounds half up), then -1/2 = -0.5 -> -1
        assert_eq!(multiply_by_quantized_multiplier(-3, 1 << 30, -1), -1);
        assert_eq!(saturating_rounding_multiply_by_pot(1 << 28, 2), 1 << 30);
        assert_eq!(saturating_rounding_multiply_by_pot(1 << 29, 2), i32::MAX);
        assert_eq!(saturating_rounding_multiply_by_pot(-(1 << 29), 2), i32::MIN);
        assert_eq!(
            saturating_rounding_multiply_by_pot(-(1 << 29) - 1, 2),
            i32::MIN
        );
        assert_eq!(saturating_rounding_multiply_by_pot(7, -1), 4);
        assert_eq!(rounding_half_sum(3, 4), 4);
        assert_eq!(rounding_half_sum(-3, -4), -4);
        assert_eq!(rounding_half_sum(i32::MAX, i32::MAX), i32::MAX);
    }

    #[test]
    fn multiply_by_quantized_multiplier_against_i128() {
        // The double rounding, recomputed independently in i128.
        let mut rng = Rng::new(13);
        for _ in 0..300_000 {
            let m = (rng.next_u32() >> 1) as i32 | (1 << 30); // normalised, as QuantizeMultiplier makes
            let shift = (rng.next_u32() % 40) as i32 - 31; // -31..=8
            let x = rng.next_u32() as i32 >> (rng.next_u32() % 32);
            let left = shift.max(0) as u32;
            let scaled = (x as i64) << left;
            if scaled > i32::MAX as i64 || scaled < i32::MIN as i64 {
                continue; // outside TFLite's contract (the C++ multiply would overflow)
            }
            let hi = srdhm_exact(scaled as i32, m);
            let expected = rdbpot_exact(hi, (-shift).max(0) as u32);
            assert_eq!(
                multiply_by_quantized_multiplier(x, m, shift),
                expected,
                "{x} {m} {shift}"
            );
            // and it approximates x * m * 2^(shift-31) within one unit (two roundings)
            let exact = x as f64 * m as f64 * 2f64.powi(shift - 31);
            assert!((expected as f64 - exact).abs() <= 1.0, "{x} {m} {shift}");
        }
    }

    fn q(x: f64, integer_bits: u32) -> i32 {
        (x * 2f64.powi(31 - integer_bits as i32)).round() as i32
    }
    fn f(raw: i32) -> f64 {
        raw as f64 / 2f64.powi(31)
    }

    #[test]
    fn transcendental_functions_are_accurate() {
        // Not a bit-exactness test (the TFLite Micro fixtures are), a sanity check of the
        // transcription: gemmlowp documents these as accurate to a few units in 2^-31 * 2^k.
        for i in 0..=2000 {
            let x = -16.0 * i as f64 / 2000.0;
            let e = f(exp_on_negative_values(q(x, 5), 5));
            assert!((e - x.exp()).abs() < 2e-6, "exp({x}) = {e}");
            let e4 = f(exp_on_negative_values(q(x.max(-15.9), 4), 4));
            assert!((e4 - x.max(-15.9).exp()).abs() < 2e-6, "exp4({x}) = {e4}");
        }
        for i in -1000..=1000 {
            let x = 7.9 * i as f64 / 1000.0;
            let l = f(logistic(q(x, 4), 4));
            assert!(
                (l - 1.0 / (1.0 + (-x).exp())).abs() < 2e-6,
                "logistic({x}) = {l}"
            );
            let t = f(tanh(q(x, 4), 4));
            assert!((t - x.tanh()).abs() < 2e-6, "tanh({x}) = {t}");
        }
        for i in 0..1000 {
            let x = i as f64 / 1000.0;
            let r = f(one_over_one_plus_x_for_x_in_0_1(q(x, 0)));
            assert!((r - 1.0 / (1.0 + x)).abs() < 1e-8, "1/(1+{x}) = {r}");
        }
        let (scale, bits) = get_reciprocal(q(3.0, 12), 12); // 3 = 1.5 * 2^1
        assert_eq!(bits, 1);
        assert!((f(scale) - 1.0 / 1.5).abs() < 1e-8);
    }

    #[test]
    fn total_on_extreme_inputs() {
        for &a in &edge_values() {
            for ib in [0u32, 4, 5, 12, 31, 99] {
                let _ = exp_on_negative_values(a, ib);
                let _ = logistic(a, ib);
                let _ = tanh(a, ib);
            }
            let _ = one_over_one_plus_x_for_x_in_0_1(a);
            let _ = one_minus_x_over_one_plus_x_for_x_in_0_1(a);
            let _ = get_reciprocal(a, 12);
            for s in [-99, -32, -31, 0, 30, 31, 32, 99] {
                let _ = multiply_by_quantized_multiplier(a, a, s);
                let _ = multiply_by_quantized_multiplier_greater_than_one(a, a, s);
                let _ = saturating_rounding_multiply_by_pot(a, s);
            }
        }
    }
}

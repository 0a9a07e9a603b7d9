//! Scalar activation functions and the math backend behind them.
//!
//! Every function here is total: it returns a value (never panics) for every `f32`, and for every
//! *finite* input it returns a finite value. `sigmoid` and `tanh` stay in `[0, 1]` and `[-1, 1]`
//! for any input including `±inf`, `±1e30` and subnormals; a NaN input gives a NaN output (an
//! error upstream stays visible instead of being turned into a plausible number).
//!
//! The host trainer (`microdnn-host`) calls these same functions, so a trained network and the
//! device compute identical activations.
//!
//! # Backends
//! - default: [`libm`] (`expf`, `tanhf`): correctly rounded to within 1 ulp, deterministic on every
//!   target; the host and the Cortex-M produce bit-identical results.
//! - feature `micromath`: `micromath`'s fast `exp` approximation, used for sigmoid, tanh and
//!   softmax. Measured maximum errors against `f64` over a dense sweep of `[-20, 20]` (test
//!   `micromath_error_bounds` checks them):
//!   - sigmoid: absolute error 5.3e-4 (bound `MICROMATH_SIGMOID_MAX_ABS_ERR` = 6e-4),
//!   - tanh: absolute error 1.05e-3 (bound `MICROMATH_TANH_MAX_ABS_ERR` = 1.1e-3),
//!   - `exp` on `[-80, 0]` (as used by softmax): relative error 2.39e-3
//!     (bound `MICROMATH_EXP_MAX_REL_ERR` = 2.5e-3).
//!
//!   Saturation: `sigmoid(-inf)` is `exp(-88)`, about 6e-39, instead of exactly 0.
//!
//! [`ln`] and [`entropy`] (Monte-Carlo summaries, [`crate::mc`]) use `libm`'s `logf` with either
//! backend.
//!
//! # Conventions (shared with the trainer)
//! - ReLU is written as a comparison, `if x > 0 { x } else { 0 }`, with NaN passed through: it
//!   never depends on `f32::max`'s unspecified choice between `+0` and `-0`.
//! - Leaky ReLU: `x` if `x > 0`, else `slope * x` (slope 0.01 by default, as in PyTorch).

/// Default negative slope of leaky ReLU (PyTorch's `LeakyReLU` default).
pub const DEFAULT_LEAKY_SLOPE: f32 = 0.01;

/// Largest argument magnitude passed to `exp` by [`sigmoid`] and [`tanh`] with the `micromath`
/// backend: `exp(-88)` is still a normal `f32`, and results are saturated beyond it anyway.
#[cfg(feature = "micromath")]
const EXP_CLAMP: f32 = 88.0;

/// Measured maximum absolute error of [`sigmoid`] with the `micromath` backend (see module docs).
#[cfg(feature = "micromath")]
pub const MICROMATH_SIGMOID_MAX_ABS_ERR: f32 = 6.0e-4;
/// Measured maximum absolute error of [`tanh`] with the `micromath` backend (see module docs).
#[cfg(feature = "micromath")]
pub const MICROMATH_TANH_MAX_ABS_ERR: f32 = 1.1e-3;
/// Measured maximum relative error of `exp(x)`, `x <= 0`, with the `micromath` backend.
#[cfg(feature = "micromath")]
pub const MICROMATH_EXP_MAX_REL_ERR: f32 = 2.5e-3;

/// `e^x` through the selected backend.
///
/// With `libm`, exact to 1 ulp for every input. With `micromath`, an approximation documented
/// in the module docs; inputs are clamped to `[-88, 88]` so it saturates instead of wrapping.
#[inline]
pub fn exp(x: f32) -> f32 {
    #[cfg(not(feature = "micromath"))]
    {
        libm::expf(x)
    }
    #[cfg(feature = "micromath")]
    {
        use micromath::F32Ext;
        if x.is_nan() {
            return x;
        }
        F32Ext::exp(x.clamp(-EXP_CLAMP, EXP_CLAMP))
    }
}

/// Rectified linear unit: `x` if `x > 0`, else `+0.0`; NaN passes through.
#[inline(always)]
#[allow(clippy::neg_cmp_op_on_partial_ord)] // the negation is the point: it lets NaN through
pub fn relu(x: f32) -> f32 {
    // `!(x <= 0)` keeps NaN (all comparisons with NaN are false) and maps -0.0 to +0.0.
    if !(x <= 0.0) {
        x
    } else {
        0.0
    }
}

/// Leaky ReLU: `x` if `x > 0`, else `slope * x`; NaN passes through.
#[inline(always)]
pub fn leaky_relu(x: f32, slope: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        slope * x
    }
}

/// Logistic sigmoid `1 / (1 + e^-x)`, evaluated without overflow for every input.
///
/// Computed from `e = exp(-|x|)`, which lies in `[0, 1]`, as `1 / (1 + e)` for `x >= 0` and
/// `e / (1 + e)` for `x < 0`: no intermediate overflows, and the result is in `[0, 1]`.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    let ax = if x < 0.0 { -x } else { x };
    let e = exp(-ax);
    if x >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    }
}

/// Hyperbolic tangent, in `[-1, 1]` for every input.
///
/// `libm::tanhf` with the default backend; with `micromath`, `sign(x) (1 - t) / (1 + t)` where
/// `t = exp(-2|x|)` (no overflow for any input).
#[inline]
pub fn tanh(x: f32) -> f32 {
    #[cfg(not(feature = "micromath"))]
    {
        libm::tanhf(x)
    }
    #[cfg(feature = "micromath")]
    {
        if x.is_nan() {
            return x;
        }
        let ax = if x < 0.0 { -x } else { x };
        let ax = ax.min(EXP_CLAMP / 2.0);
        let t = exp(-2.0 * ax);
        let r = (1.0 - t) / (1.0 + t);
        if x < 0.0 {
            -r
        } else {
            r
        }
    }
}

/// Natural logarithm, `libm::logf` (within 1 ulp; the same bits on every target) with either
/// backend: `micromath`'s `ln` approximation is much coarser than its `exp` and would make
/// [`entropy`] unreliable, and [`entropy`] runs a handful of times per Monte-Carlo request, not
/// per unit of a layer. `ln(0)` is `-inf`; a negative input or NaN gives NaN.
#[inline]
pub fn ln(x: f32) -> f32 {
    libm::logf(x)
}

/// Shannon entropy in nats of a probability vector: `-Σ p ln p` over the entries with `p > 0`
/// (`0 ln 0 = 0`), summed in index order in `f32`, so the host and a device compute the same
/// bits. A NaN entry gives NaN; entries are not checked to sum to 1. `ln(n)` for the uniform
/// distribution over `n` classes, 0 for a one-hot vector.
///
/// ```
/// use microdnn::math::entropy;
/// assert_eq!(entropy(&[1.0, 0.0, 0.0]), 0.0);
/// assert!((entropy(&[0.25; 4]) - 4f32.ln()).abs() < 1e-6);
/// ```
pub fn entropy(p: &[f32]) -> f32 {
    let mut h = 0.0f32;
    for &v in p {
        if v > 0.0 {
            h -= v * ln(v);
        } else if v.is_nan() {
            return f32::NAN;
        }
    }
    h
}

/// Numerically stable softmax, in place.
///
/// Subtracts the maximum before exponentiating, so no input can overflow `exp`; the outputs are
/// in `[0, 1]` and sum to 1 within rounding. Edge cases: an empty slice is left alone; if some
/// inputs are `+inf`, they share the probability mass equally and the rest get 0; if all inputs
/// are `-inf`, the result is uniform; a NaN input makes every output NaN.
pub fn softmax(x: &mut [f32]) {
    let Some(&first) = x.first() else {
        return;
    };
    let mut max = first;
    let mut any_nan = false;
    for &v in x.iter() {
        if v > max {
            max = v;
        }
        any_nan |= v.is_nan();
    }
    if any_nan {
        x.iter_mut().for_each(|v| *v = f32::NAN);
        return;
    }
    if max.is_infinite() {
        // Either some entries are +inf (they take all the mass) or every entry is -inf (uniform).
        let hit = |v: f32| v == max;
        let k = x.iter().filter(|&&v| hit(v)).count() as f32;
        x.iter_mut()
            .for_each(|v| *v = if hit(*v) { 1.0 / k } else { 0.0 });
        return;
    }
    let mut sum = 0.0f32;
    for v in x.iter_mut() {
        let e = exp(*v - max);
        *v = e;
        sum += e;
    }
    // sum >= 1 because the maximum contributes exp(0) = 1: the division is safe.
    let inv = 1.0 / sum;
    x.iter_mut().for_each(|v| *v *= inv);
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    const SPECIALS: [f32; 14] = [
        0.0,
        -0.0,
        1e-45,
        -1e-45,
        1e-40,
        -1e-40,
        1e30,
        -1e30,
        f32::MAX,
        f32::MIN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        88.8,
        -104.0,
    ];

    #[test]
    fn sigmoid_and_tanh_are_finite_and_bounded_on_extremes() {
        for &x in &SPECIALS {
            let s = sigmoid(x);
            let t = tanh(x);
            assert!(
                s.is_finite() && (0.0..=1.0).contains(&s),
                "sigmoid({x}) = {s}"
            );
            assert!(
                t.is_finite() && (-1.0..=1.0).contains(&t),
                "tanh({x}) = {t}"
            );
        }
        // Saturation: exact with libm; within exp(-88) ~ 6e-39 with micromath's clamped exp.
        let sat = if cfg!(feature = "micromath") {
            1e-30
        } else {
            0.0
        };
        assert!((sigmoid(1e30) - 1.0).abs() <= sat);
        assert!((sigmoid(f32::INFINITY) - 1.0).abs() <= sat);
        assert!(sigmoid(-1e30) <= sat);
        assert!(sigmoid(f32::NEG_INFINITY) <= sat);
        assert!((tanh(1e30) - 1.0).abs() <= sat);
        assert!((tanh(f32::NEG_INFINITY) + 1.0).abs() <= sat);
        assert!((sigmoid(1e-40) - 0.5).abs() < 1e-6);
        assert!(sigmoid(f32::NAN).is_nan() && tanh(f32::NAN).is_nan());
    }

    #[test]
    fn sigmoid_and_tanh_match_f64_reference() {
        let (mut es, mut et) = (0.0f64, 0.0f64);
        let mut x = -30.0f32;
        while x <= 30.0 {
            let rs = 1.0 / (1.0 + (-(x as f64)).exp());
            let rt = (x as f64).tanh();
            es = es.max((sigmoid(x) as f64 - rs).abs());
            et = et.max((tanh(x) as f64 - rt).abs());
            x += 0.001;
        }
        #[cfg(not(feature = "micromath"))]
        {
            // libm is accurate to about 1 ulp of the result (results are <= 1 in magnitude).
            assert!(es < 2.0 * f32::EPSILON as f64, "sigmoid max abs err {es}");
            assert!(et < 2.0 * f32::EPSILON as f64, "tanh max abs err {et}");
        }
        #[cfg(feature = "micromath")]
        {
            std::println!("micromath sigmoid max abs err {es:e}, tanh {et:e}");
            assert!(
                es < MICROMATH_SIGMOID_MAX_ABS_ERR as f64,
                "sigmoid err {es}"
            );
            assert!(et < MICROMATH_TANH_MAX_ABS_ERR as f64, "tanh err {et}");
        }
    }

    #[cfg(feature = "micromath")]
    #[test]
    fn micromath_error_bounds() {
        let mut er = 0.0f64;
        let mut x = -80.0f32;
        while x <= 0.0 {
            let r = (x as f64).exp();
            er = er.max(((exp(x) as f64) - r).abs() / r);
            x += 0.001;
        }
        std::println!("micromath exp max rel err {er:e}");
        assert!(er < MICROMATH_EXP_MAX_REL_ERR as f64, "exp rel err {er}");
    }

    #[test]
    fn entropy_matches_f64_and_edge_cases() {
        // Against -sum p ln p in f64 on random distributions.
        let mut rng = crate::Rng::new(4);
        let mut worst = 0.0f64;
        for n in [1usize, 2, 3, 10, 100] {
            for _ in 0..200 {
                let mut p = std::vec![0.0f32; n];
                p.iter_mut().for_each(|v| *v = rng.uniform(-8.0, 8.0));
                softmax(&mut p);
                let want: f64 = -p
                    .iter()
                    .filter(|&&v| v > 0.0)
                    .map(|&v| v as f64 * (v as f64).ln())
                    .sum::<f64>();
                worst = worst.max((entropy(&p) as f64 - want).abs());
            }
        }
        // n terms, each within a few ulps of its value (at most 1/e): about n * 1e-7.
        assert!(worst < 2e-5, "{worst}");
        assert_eq!(entropy(&[]), 0.0);
        assert_eq!(entropy(&[0.0, 1.0]), 0.0);
        assert!((entropy(&[0.5, 0.5]) - core::f32::consts::LN_2).abs() < 2e-3);
        assert!(entropy(&[0.5, f32::NAN]).is_nan());
        assert_eq!(ln(0.0), f32::NEG_INFINITY);
        assert!(ln(-1.0).is_nan() && ln(f32::NAN).is_nan());
    }

    #[test]
    fn relu_conventions() {
        assert_eq!(relu(2.5), 2.5);
        assert_eq!(relu(-2.5), 0.0);
        assert!(relu(-0.0).is_sign_positive());
        assert!(relu(f32::NAN).is_nan());
        assert_eq!(leaky_relu(-2.0, DEFAULT_LEAKY_SLOPE), -0.02);
        assert_eq!(leaky_relu(3.0, 0.2), 3.0);
        assert!(leaky_relu(f32::NAN, 0.1).is_nan());
    }

    #[test]
    fn softmax_is_stable_and_normalised() {
        let mut v = [1000.0, 1001.0, 999.0];
        softmax(&mut v);
        let s: f32 = v.iter().sum();
        assert!((s - 1.0).abs() < 1e-6);
        // Reference from f64 on the shifted values.
        let r = [(-1.0f64).exp(), 1.0, (-2.0f64).exp()];
        let rs: f64 = r.iter().sum();
        #[cfg(not(feature = "micromath"))]
        let tol = 1e-6;
        // Each exp is within a relative error e, so each ratio is within about 2e.
        #[cfg(feature = "micromath")]
        let tol = 2.0 * MICROMATH_EXP_MAX_REL_ERR as f64;
        for (a, b) in v.iter().zip(r.iter()) {
            assert!((*a as f64 - b / rs).abs() < tol);
        }
        let mut inf = [0.0, f32::INFINITY, f32::INFINITY];
        softmax(&mut inf);
        assert_eq!(inf, [0.0, 0.5, 0.5]);
        let mut ninf = [f32::NEG_INFINITY; 4];
        softmax(&mut ninf);
        assert_eq!(ninf, [0.25; 4]);
        let mut nan = [0.0, f32::NAN];
        softmax(&mut nan);
        assert!(nan.iter().all(|v| v.is_nan()));
        let mut empty: [f32; 0] = [];
        softmax(&mut empty);
    }
}

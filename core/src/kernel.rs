//! The f32 dense kernel: `y = W x + b`, with a fixed, documented order of additions.
//!
//! # Arithmetic contract (the same on every target)
//!
//! For every output row `o` of a layer with `n` inputs, four accumulator *lanes* start at `+0.0`.
//! Column `c` belongs to lane `c mod 4`. Columns are visited in increasing order, and each visit
//! does `acc[c mod 4] = acc[c mod 4] + (w[o][c] * x[c])`, with the product rounded to `f32`
//! before the addition (no fused multiply-add). Finally
//!
//! ```text
//! y[o] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + b[o]
//! ```
//!
//! Rust never contracts `a * b + c` into a fused multiply-add on its own, and the Cortex-M4F's
//! `vmla.f32` rounds the product, so x86-64 (scalar or vectorised, where the four lanes map onto
//! one vector register) and `thumbv7em-none-eabihf` compute **bit-identical** outputs.
//! [`dense_spec`] is this contract written as a plain scalar loop; the fast [`dense`] is tested
//! to match it bit for bit, on the host and on every emulated Cortex-M (M0 to M55).
//!
//! On a Cortex-M55 build (`-C target-cpu=cortex-m55`, `cfg(microdnn_helium)` from `build.rs`)
//! the lanes of a block's rows run in Helium vector registers, one register per row, with the
//! same per-lane order (`helium.rs`, the core's only `unsafe`): 0.99 executed instructions per
//! MAC on 784-128-64-10 instead of 2.39 on the Cortex-M4F. Helium flushes subnormals to zero;
//! the loop detects a flush from FPSCR's cumulative flags and the block is recomputed with the
//! scalar loop, so results stay bit-identical (the firmware's self-test checks a subnormal case).
//!
//! # Packed weight layout
//!
//! The fast kernel reads weights in an interleaved order so that each input load is reused by
//! [`BLOCK_ROWS`] output rows and each row's four lanes read four consecutive floats. Five rows
//! is what the Cortex-M4F's 32 single-precision registers hold (20 accumulators, 4 inputs, the
//! weight being loaded); measured with `cargo xtask bench-mcu` on 784-128-64-10: 4 rows 2.45,
//! 5 rows 2.39, 6 rows 4.48 executed instructions per multiply-accumulate (6 spills).
//!
//! ```text
//! rows are grouped in blocks of BLOCK_ROWS = 5 (the last block holds O mod 5 rows, if any);
//! block k (height h) occupies h*I consecutive floats starting at 5*k*I, laid out as
//!   for each column group g in 0..I/4:   for each row r of the block: w[r][4g..4g+4]
//!   then the tail columns t = I mod 4:  for each row r of the block: w[r][4*(I/4)..I]
//!
//! example, 3 inputs x 7 outputs (I/4 = 0 groups, tail 3):
//!   block 0: w0[0..3] w1[0..3] w2[0..3] w3[0..3] w4[0..3]     block 1: w5[0..3] w6[0..3]
//! example, 8 inputs x 2 outputs (2 groups, no tail):
//!   block 0: w0[0..4] w1[0..4] w0[4..8] w1[4..8]
//! ```
//!
//! The packed array has exactly `I * O` elements, the same as the row-major one, so a
//! `[[f32; I]; O]` can hold either; [`pack`] and [`unpack`] convert between them. Model files
//! store weights already packed, so the device reads them in place from flash.
//!
//! # Error bound against exact arithmetic
//!
//! Each lane adds at most `ceil(n / 4)` products, then three more additions combine the lanes and
//! the bias, so with `u = 2^-24` the computed `y[o]` satisfies
//! `|y - y_exact| <= gamma(ceil(n/4) + 3) * (sum_c |w[o][c] x[c]| + |b[o]|)` where
//! `gamma(k) = k u / (1 - k u)` ([`error_bound`]). The naive [`dense_reference`] satisfies the
//! same with `gamma(n + 1)`.

use crate::Error;

/// Rows per block of the packed layout (part of the layout contract).
pub const BLOCK_ROWS: usize = 5;
/// Accumulator lanes per row (part of the arithmetic contract).
pub const LANES: usize = 4;

/// Checks the operand lengths of a dense layer with `inputs` inputs and `outputs` outputs.
fn check(
    weights: usize,
    bias: usize,
    x: usize,
    y: usize,
    inputs: usize,
    outputs: usize,
) -> Result<(), Error> {
    let expect = |what, expected: usize, found: usize| {
        if expected == found {
            Ok(())
        } else {
            Err(Error::Shape {
                what,
                expected,
                found,
            })
        }
    };
    let n = inputs.checked_mul(outputs).ok_or(Error::Overflow)?;
    expect("weights", n, weights)?;
    expect("bias", outputs, bias)?;
    expect("input", inputs, x)?;
    expect("output", outputs, y)
}

/// Fast dense kernel on packed weights: `y = W x + b`.
///
/// `packed` holds `x.len() * y.len()` weights in the [packed layout](self#packed-weight-layout);
/// `bias` has `y.len()` entries. Returns [`Error::Shape`] (and leaves `y` untouched) when a
/// length does not fit.
///
/// ```
/// use microdnn::kernel;
/// let rows = [1.0, 2.0, 3.0, /* row 1 */ -1.0, 0.5, 0.0];
/// let mut packed = [0.0; 6];
/// kernel::pack(&rows, 3, 2, &mut packed).unwrap();
/// let mut y = [0.0; 2];
/// kernel::dense(&packed, &[0.5, 0.0], &[1.0, 1.0, 1.0], &mut y).unwrap();
/// assert_eq!(y, [6.5, -0.5]);
/// ```
pub fn dense(packed: &[f32], bias: &[f32], x: &[f32], y: &mut [f32]) -> Result<(), Error> {
    check(packed.len(), bias.len(), x.len(), y.len(), x.len(), y.len())?;
    dense_packed(packed, bias, x, y);
    Ok(())
}

/// The fast kernel without the length checks, for callers whose types guarantee the lengths
/// ([`crate::Dense`]). With inconsistent lengths it computes a meaningless result but never
/// panics: every access goes through iterators that stop at the shortest operand.
///
/// Always inlined, so that [`crate::Dense::forward`] gets a copy specialised to its constant
/// widths (constant trip counts, no per-block length bookkeeping): on the Cortex-M4F that halves
/// the per-block overhead for small layers.
#[inline(always)]
pub(crate) fn dense_packed(packed: &[f32], bias: &[f32], x: &[f32], y: &mut [f32]) {
    let n = x.len();
    if n == 0 {
        y.iter_mut().zip(bias).for_each(|(y, b)| *y = 0.0 + *b);
        return;
    }
    for ((w, b), y) in packed
        .chunks(BLOCK_ROWS * n)
        .zip(bias.chunks(BLOCK_ROWS))
        .zip(y.chunks_mut(BLOCK_ROWS))
    {
        match y.len() {
            5 => block::<5>(w, b, x, y),
            4 => block::<4>(w, b, x, y),
            3 => block::<3>(w, b, x, y),
            2 => block::<2>(w, b, x, y),
            _ => block::<1>(w, b, x, y),
        }
    }
}

/// One block of `H` rows: every input group of four is loaded once and used by all `H` rows.
#[inline(always)]
fn block<const H: usize>(w: &[f32], bias: &[f32], x: &[f32], y: &mut [f32]) {
    let mut acc = [[0.0f32; LANES]; H];
    let (xg, xt) = x.as_chunks::<LANES>();
    let split = (xg.len() * LANES * H).min(w.len());
    let (wg, wt) = w.split_at(split);
    // Helium (Cortex-M55): the same lanes, one vector register per row (`crate::helium`);
    // if the vector unit flushed a subnormal to zero, the block is recomputed below.
    #[cfg(microdnn_helium)]
    let exact = crate::helium::lanes::<H>(wg, xg.as_flattened(), &mut acc);
    #[cfg(not(microdnn_helium))]
    let exact = false;
    if !exact {
        acc = [[0.0f32; LANES]; H];
        let (wg, _) = wg.as_chunks::<LANES>();
        for (xc, wc) in xg.iter().zip(wg.chunks_exact(H)) {
            for (a, wr) in acc.iter_mut().zip(wc) {
                a[0] += wr[0] * xc[0];
                a[1] += wr[1] * xc[1];
                a[2] += wr[2] * xc[2];
                a[3] += wr[3] * xc[3];
            }
        }
    }
    if !xt.is_empty() {
        for (a, wr) in acc.iter_mut().zip(wt.chunks_exact(xt.len())) {
            for ((a, w), x) in a.iter_mut().zip(wr).zip(xt) {
                *a += w * x;
            }
        }
    }
    for ((y, a), b) in y.iter_mut().zip(acc.iter()).zip(bias) {
        *y = ((a[0] + a[1]) + (a[2] + a[3])) + b;
    }
}

/// The arithmetic contract as a plain scalar loop over **row-major** weights (`rows[o * n + c]`).
///
/// Slow and obvious; [`dense`] must agree with it bit for bit.
pub fn dense_spec(rows: &[f32], bias: &[f32], x: &[f32], y: &mut [f32]) -> Result<(), Error> {
    check(rows.len(), bias.len(), x.len(), y.len(), x.len(), y.len())?;
    let n = x.len();
    for (o, (y, b)) in y.iter_mut().zip(bias).enumerate() {
        let mut acc = [0.0f32; LANES];
        // `check` made `rows` exactly `n` values per output: the row is always there (`get`
        // only keeps a panic path out of the firmware's self-test).
        let row = o
            .checked_mul(n)
            .and_then(|start| rows.get(start..start.checked_add(n)?))
            .unwrap_or_default();
        for (c, (w, xc)) in row.iter().zip(x).enumerate() {
            acc[c % LANES] += w * xc;
        }
        *y = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + b;
    }
    Ok(())
}

/// The plain reference kernel over **row-major** weights: one running sum per row, started at
/// the bias, columns in order. A different order of additions from [`dense`]: results agree
/// within [`error_bound`], not bit for bit. Also the "naive loop" baseline of the benchmarks.
pub fn dense_reference(rows: &[f32], bias: &[f32], x: &[f32], y: &mut [f32]) -> Result<(), Error> {
    check(rows.len(), bias.len(), x.len(), y.len(), x.len(), y.len())?;
    let n = x.len().max(1);
    for ((y, b), row) in y.iter_mut().zip(bias).zip(rows.chunks(n)) {
        let mut s = *b;
        for (w, x) in row.iter().zip(x) {
            s += w * x;
        }
        *y = s;
    }
    Ok(())
}

/// Offset in the packed layout of weight `(row, col)` of a layer with `inputs` inputs and
/// `outputs` outputs; `None` when out of range, or when `inputs * outputs` does not fit in
/// `usize` (no slice can hold such a layer).
pub const fn packed_index(inputs: usize, outputs: usize, row: usize, col: usize) -> Option<usize> {
    if row >= outputs || col >= inputs || inputs.checked_mul(outputs).is_none() {
        return None;
    }
    // Every term below is at most `inputs * outputs`, which fits: nothing can overflow.
    let block = row / BLOCK_ROWS;
    let r = row % BLOCK_ROWS;
    let start = block * BLOCK_ROWS;
    let h = if outputs - start < BLOCK_ROWS {
        outputs - start
    } else {
        BLOCK_ROWS
    };
    let groups = inputs / LANES;
    let base = start * inputs;
    Some(if col < groups * LANES {
        base + (col / LANES) * LANES * h + r * LANES + col % LANES
    } else {
        let tail = inputs - groups * LANES;
        base + groups * LANES * h + r * tail + (col - groups * LANES)
    })
}

/// Converts row-major weights (`rows[o * inputs + c]`) into the packed layout.
pub fn pack(rows: &[f32], inputs: usize, outputs: usize, packed: &mut [f32]) -> Result<(), Error> {
    check(rows.len(), outputs, inputs, outputs, inputs, outputs)?;
    check(packed.len(), outputs, inputs, outputs, inputs, outputs)?;
    for (o, row) in rows.chunks(inputs.max(1)).enumerate().take(outputs) {
        for (c, w) in row.iter().enumerate() {
            if let Some(dst) = packed_index(inputs, outputs, o, c).and_then(|i| packed.get_mut(i)) {
                *dst = *w;
            }
        }
    }
    Ok(())
}

/// Converts packed weights back into row-major order (the inverse of [`pack`]).
pub fn unpack(
    packed: &[f32],
    inputs: usize,
    outputs: usize,
    rows: &mut [f32],
) -> Result<(), Error> {
    check(rows.len(), outputs, inputs, outputs, inputs, outputs)?;
    check(packed.len(), outputs, inputs, outputs, inputs, outputs)?;
    for (o, row) in rows.chunks_mut(inputs.max(1)).enumerate().take(outputs) {
        for (c, w) in row.iter_mut().enumerate() {
            if let Some(src) = packed_index(inputs, outputs, o, c).and_then(|i| packed.get(i)) {
                *w = *src;
            }
        }
    }
    Ok(())
}

/// The forward error bound of [`dense`] for one output with `inputs` inputs: the factor
/// `gamma(ceil(inputs/4) + 3)` to multiply by `sum |w x| + |b|` (see the module docs).
///
/// Infinite once `(ceil(inputs/4) + 3) u >= 1` (more than about 2^26 inputs): the analysis
/// bounds nothing there.
pub fn error_bound(inputs: usize) -> f64 {
    gamma(inputs.div_ceil(LANES) as f64 + 3.0)
}

/// The forward error bound of [`dense_reference`] for one output with `inputs` inputs:
/// `gamma(inputs + 1)`, to multiply by `sum |w x| + |b|`. Infinite from 2^24 - 1 inputs on.
pub fn reference_error_bound(inputs: usize) -> f64 {
    gamma(inputs as f64 + 1.0)
}

/// `gamma(k) = k u / (1 - k u)` with `u = 2^-24`, or infinity when `k u >= 1`.
fn gamma(k: f64) -> f64 {
    let ku = k * (f64::from(f32::EPSILON) / 2.0);
    if ku < 1.0 {
        ku / (1.0 - ku)
    } else {
        f64::INFINITY
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn pack_layout_matches_the_documented_example() {
        // 3 inputs x 6 outputs: block 0 = rows 0..5 (tail only), block 1 = row 5.
        let rows: Vec<f32> = (0..18).map(|v| v as f32).collect();
        let mut packed = [0.0; 18];
        pack(&rows, 3, 6, &mut packed).unwrap();
        assert_eq!(&packed[..], &rows[..]); // tail-only layout is row-major within blocks
                                            // 8 inputs x 2 outputs: one block of height 2, two groups.
        let rows: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let mut packed = [0.0; 16];
        pack(&rows, 8, 2, &mut packed).unwrap();
        let expect = [
            0., 1., 2., 3., 8., 9., 10., 11., 4., 5., 6., 7., 12., 13., 14., 15.,
        ];
        assert_eq!(packed, expect);
        let mut back = [0.0; 16];
        unpack(&packed, 8, 2, &mut back).unwrap();
        assert_eq!(&back[..], &rows[..]);
        // 8 inputs x 7 outputs: block 0 = rows 0..5 (height 5), block 1 = rows 5..7 (height 2).
        // Row 6, column 5: block 1 starts at 5*8 = 40; group 1 of that block starts 1*4*2 = 8
        // further; row 1 of the block adds 4; column 5 is lane 1.
        assert_eq!(packed_index(8, 7, 6, 5), Some(40 + 8 + 4 + 1));
        // Row 4, column 2: block 0, group 0, row 4 of the block, lane 2.
        assert_eq!(packed_index(8, 7, 4, 2), Some(4 * 4 + 2));
        // Row 3, column 7: block 0, group 1 starts at 4*5 = 20, row 3 adds 12, lane 3.
        assert_eq!(packed_index(8, 7, 3, 7), Some(20 + 12 + 3));
    }

    #[test]
    fn hand_computed_case() {
        // y0 = 1*1 + 2*2 + 3*3 + 4*4 + 5*5 + 0.5 = 55.5 ; y1 = -(1+...+5) = -15
        let rows = [1.0, 2.0, 3.0, 4.0, 5.0, -1.0, -1.0, -1.0, -1.0, -1.0];
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let mut packed = [0.0; 10];
        pack(&rows, 5, 2, &mut packed).unwrap();
        let mut y = [0.0; 2];
        dense(&packed, &[0.5, 0.0], &x, &mut y).unwrap();
        assert_eq!(y, [55.5, -15.0]);
    }

    #[test]
    fn shape_errors_name_the_operand() {
        let mut y = [7.0; 2];
        let e = dense(&[0.0; 5], &[0.0; 2], &[0.0; 3], &mut y).unwrap_err();
        assert_eq!(
            e,
            Error::Shape {
                what: "weights",
                expected: 6,
                found: 5
            }
        );
        assert_eq!(y, [7.0; 2], "output untouched on error");
        let e = dense(&[0.0; 6], &[0.0; 1], &[0.0; 3], &mut y).unwrap_err();
        assert!(matches!(e, Error::Shape { what: "bias", .. }));
        let mut packed = vec![0.0; 6];
        assert!(pack(&[0.0; 5], 3, 2, &mut packed).is_err());
    }

    #[test]
    fn zero_inputs_gives_bias() {
        let mut y = [0.0; 3];
        dense(&[], &[1.0, 2.0, 3.0], &[], &mut y).unwrap();
        assert_eq!(y, [1.0, 2.0, 3.0]);
    }

    #[test]
    fn packed_index_is_a_permutation() {
        for (i, o) in [(1, 1), (3, 6), (7, 5), (13, 9), (16, 4), (5, 13)] {
            let mut seen = vec![false; i * o];
            for r in 0..o {
                for c in 0..i {
                    let k = packed_index(i, o, r, c).unwrap();
                    assert!(!seen[k]);
                    seen[k] = true;
                }
            }
            assert!(packed_index(i, o, o, 0).is_none());
            assert!(packed_index(i, o, 0, i).is_none());
        }
    }
}

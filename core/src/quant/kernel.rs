//! The int8 dense kernels: TFLite Micro's `FULLY_CONNECTED` (int8 input, per-channel int8
//! weights, int32 bias, int8 output), as a reference loop and as a fast blocked loop.
//!
//! # Arithmetic (TFLite Micro's `reference_integer_ops::FullyConnectedPerChannel`)
//!
//! For output row `o` of a layer with `n` inputs, weights `w` (zero point 0), bias `b`, input
//! zero point `zx` and output zero point `zy`:
//!
//! ```text
//! acc    = sum_c w[o][c] * (x[c] - zx) + b[o]                          (i32)
//! y[o]   = clamp(zy + MultiplyByQuantizedMultiplier(acc, M[o], S[o]), act_min, act_max)
//! ```
//!
//! Integer addition is exact and associative, so the order of the sum does not matter: the fast
//! kernel computes `acc = sum_c w[o][c] * x[c] + kb[o]` with the **kernel bias**
//! `kb[o] = b[o] - zx * sum_c w[o][c]` precomputed once (what CMSIS-NN calls `kernel_sum`), and
//! is equal to the reference byte for byte. Sums are taken modulo 2^32 (wrapping), as TFLite's
//! `int32` accumulator does on every machine it runs on; that never happens for layers below
//! 65,793 inputs (|w (x - zx)| <= 128 * 255).
//!
//! # Packed weight layout
//!
//! The fast kernel reads weights in the same interleaving as the f32 kernel
//! ([`crate::kernel`]), with blocks of [`BLOCK_ROWS`] = 4 rows and groups of [`GROUP`] = 4
//! columns: each input group is loaded once for four rows, and each row's group is one aligned
//! 32-bit word (what a Cortex-M4 `SMLAD` kernel loads; see the module docs of [`crate::quant`]).
//!
//! ```text
//! rows are grouped in blocks of BLOCK_ROWS = 4 (the last block holds O mod 4 rows, if any);
//! block k (height h) occupies h*I consecutive bytes starting at 4*k*I, laid out as
//!   for each column group g in 0..I/4:   for each row r of the block: w[r][4g..4g+4]
//!   then the tail columns t = I mod 4:  for each row r of the block: w[r][4*(I/4)..I]
//!
//! example, 6 inputs x 5 outputs (1 group, tail 2):
//!   block 0: w0[0..4] w1[0..4] w2[0..4] w3[0..4] w0[4..6] w1[4..6] w2[4..6] w3[4..6]
//!   block 1: w4[0..4] w4[4..6]
//! ```
//!
//! The packed array has exactly `I * O` bytes, so a `[[i8; I]; O]` holds either layout. Every
//! block starts at a multiple of 4 bytes, and so does every group word inside it.

use super::{QuantError, Requantize};

/// Rows per block of the packed layout (part of the layout contract).
pub const BLOCK_ROWS: usize = 4;
/// Columns per group of the packed layout (part of the layout contract): one 32-bit word.
pub const GROUP: usize = 4;

fn expect(what: &'static str, expected: usize, found: usize) -> Result<(), QuantError> {
    if expected == found {
        Ok(())
    } else {
        Err(QuantError::Shape {
            what,
            expected,
            found,
        })
    }
}

/// Checks a layer's operand lengths: `weights = inputs * outputs`, `bias = outputs`, and the
/// requantization has one channel or `outputs`.
fn check(
    weights: usize,
    bias: usize,
    requantize: &Requantize<'_>,
    inputs: usize,
    outputs: usize,
) -> Result<(), QuantError> {
    let n = inputs.checked_mul(outputs).ok_or(QuantError::Overflow)?;
    expect("weights", n, weights)?;
    expect("bias", outputs, bias)?;
    if requantize.channels() != 1 {
        expect("multipliers", outputs, requantize.channels())?;
    }
    Ok(())
}

/// The reference kernel: TFLite Micro's `FullyConnectedPerChannel` loop over **row-major**
/// weights (`rows[o * n + c]`, TFLite's `[outputs, inputs]` filter), the int32 `bias` and the
/// input zero point. The specification the fast kernel is tested against; slow.
///
/// `requantize` holds one multiplier/shift per output (per-channel) or one for all
/// (per-tensor, TFLite's `FullyConnected`; the weight zero point is 0 in both). Fails with
/// [`QuantError::Shape`] (leaving `y` untouched) when a length does not fit.
///
/// ```
/// use microdnn::quant::{kernel, Requantize};
/// let rows = [1i8, 2, 3, /* row 1 */ -4, 5, -6];
/// let rq = Requantize::new(&[1 << 30], &[0], 1, -128, 127).unwrap(); // multiplier 0.5, zero point 1
/// let mut y = [0i8; 2];
/// kernel::dense_reference(&rows, &[10, -10], -2, &rq, &[0, 1, 2], &mut y).unwrap();
/// // row 0: 1*2 + 2*3 + 3*4 + 10 = 30 -> 15 + 1; row 1: -8 + 15 - 24 - 10 = -27 -> -13 + 1
/// assert_eq!(y, [16, -12]);
/// ```
pub fn dense_reference(
    rows: &[i8],
    bias: &[i32],
    input_zero_point: i8,
    requantize: &Requantize<'_>,
    x: &[i8],
    y: &mut [i8],
) -> Result<(), QuantError> {
    let n = x.len();
    check(rows.len(), bias.len(), requantize, n, y.len())?;
    let input_offset = -(input_zero_point as i32);
    for (o, (y, &b)) in y.iter_mut().zip(bias).enumerate() {
        let mut acc: i32 = 0;
        for (d, &xv) in x.iter().enumerate() {
            let w = rows.get(o * n + d).copied().unwrap_or(0) as i32;
            acc = acc.wrapping_add(w * (xv as i32 + input_offset));
        }
        acc = acc.wrapping_add(b);
        *y = requantize.apply(o, acc);
    }
    Ok(())
}

/// The fast kernel over [packed](self#packed-weight-layout) weights and the precomputed kernel
/// bias ([`kernel_bias`]): `y = requantize(W x + kb)`. Equal to [`dense_reference`] byte for
/// byte. Fails with [`QuantError::Shape`] (leaving `y` untouched) when a length does not fit.
pub fn dense(
    packed: &[i8],
    kernel_bias: &[i32],
    requantize: &Requantize<'_>,
    x: &[i8],
    y: &mut [i8],
) -> Result<(), QuantError> {
    check(
        packed.len(),
        kernel_bias.len(),
        requantize,
        x.len(),
        y.len(),
    )?;
    dense_packed(packed, kernel_bias, requantize, x, y);
    Ok(())
}

/// The fast kernel with room for the sign-extended input that the Cortex-M DSP kernel needs:
/// for layers whose shapes are known only at run time, on every core at the speed of
/// [`super::QDense::forward`]. `scratch` needs at least `x.len()` elements (its contents are
/// overwritten; 4-byte aligned for the DSP loop, otherwise the portable loop runs). On cores
/// with the DSP extension the blocks run in the core's `SMLAD` loop when `packed` and `scratch`
/// are 4-byte aligned; elsewhere this is [`dense`]. Equal to [`dense_reference`] byte for byte.
/// Fails with [`QuantError::Shape`] (leaving `y` untouched) when a length does not fit.
///
/// ```
/// use microdnn::quant::{kernel, Requantize};
/// let rows = [1i8, 2, 3, /* row 1 */ -4, 5, -6];
/// let mut packed = [0i8; 6];
/// kernel::pack(&rows, 3, 2, &mut packed).unwrap();
/// let mut kb = [0; 2];
/// kernel::kernel_bias(&rows, 3, &[10, -10], -2, &mut kb).unwrap();
/// let rq = Requantize::new(&[1 << 30], &[0], 1, -128, 127).unwrap();
/// let (mut y, mut scratch) = ([0i8; 2], [0i16; 3]);
/// kernel::dense_with_scratch(&packed, &kb, &rq, &[0, 1, 2], &mut scratch, &mut y).unwrap();
/// assert_eq!(y, [16, -12]); // as dense_reference's example
/// ```
pub fn dense_with_scratch(
    packed: &[i8],
    kernel_bias: &[i32],
    requantize: &Requantize<'_>,
    x: &[i8],
    scratch: &mut [i16],
    y: &mut [i8],
) -> Result<(), QuantError> {
    check(
        packed.len(),
        kernel_bias.len(),
        requantize,
        x.len(),
        y.len(),
    )?;
    if scratch.len() < x.len() {
        return Err(QuantError::Shape {
            what: "scratch",
            expected: x.len(),
            found: scratch.len(),
        });
    }
    #[cfg(microdnn_dsp)]
    dense_packed_dsp(packed, kernel_bias, requantize, x, scratch, y);
    #[cfg(not(microdnn_dsp))]
    dense_packed(packed, kernel_bias, requantize, x, y);
    Ok(())
}

/// The fast kernel without the length checks, for callers whose types guarantee them
/// ([`super::QDense`]). With inconsistent lengths the result is meaningless but nothing panics:
/// every access goes through iterators that stop at the shortest operand.
#[inline(always)]
pub(crate) fn dense_packed(
    packed: &[i8],
    kernel_bias: &[i32],
    requantize: &Requantize<'_>,
    x: &[i8],
    y: &mut [i8],
) {
    blocks(packed, kernel_bias, requantize, x.len(), y, |h, w, kb| {
        portable_block(h, w, kb, x)
    });
}

/// The walk over the blocks of the packed layout shared by the kernels: `block(h, w, kb)`
/// returns the `i32` accumulators (kernel bias included) of the block of `h` rows whose
/// weights are `w`, and each is requantized into `y`.
#[inline(always)]
fn blocks(
    packed: &[i8],
    kernel_bias: &[i32],
    requantize: &Requantize<'_>,
    n: usize,
    y: &mut [i8],
    mut block: impl FnMut(usize, &[i8], &[i32]) -> [i32; BLOCK_ROWS],
) {
    let mult = requantize.multipliers();
    let shifts = requantize.shifts();
    let per_tensor = mult.len() == 1;
    if n == 0 {
        for (o, (y, &kb)) in y.iter_mut().zip(kernel_bias).enumerate() {
            *y = requantize.apply(o, kb);
        }
        return;
    }
    for (k, ((w, kb), y)) in packed
        .chunks(BLOCK_ROWS * n)
        .zip(kernel_bias.chunks(BLOCK_ROWS))
        .zip(y.chunks_mut(BLOCK_ROWS))
        .enumerate()
    {
        let first = k * BLOCK_ROWS;
        let (m, s) = if per_tensor {
            (mult, shifts)
        } else {
            (
                mult.get(first..).unwrap_or(&[]),
                shifts.get(first..).unwrap_or(&[]),
            )
        };
        let acc = block(y.len(), w, kb);
        for (r, (y, a)) in y.iter_mut().zip(acc).enumerate() {
            let i = if per_tensor { 0 } else { r };
            let (mi, si) = match (m.get(i), s.get(i)) {
                (Some(&mi), Some(&si)) => (mi, si),
                _ => (0, 0),
            };
            *y = requantize.apply_with(mi, si, a);
        }
    }
}

/// The portable block of `h` rows (1 to 4), widened to [`BLOCK_ROWS`] accumulators.
#[inline(always)]
fn portable_block(h: usize, w: &[i8], kb: &[i32], x: &[i8]) -> [i32; BLOCK_ROWS] {
    match h {
        4 => block::<4>(w, kb, x),
        3 => widen(block::<3>(w, kb, x)),
        2 => widen(block::<2>(w, kb, x)),
        _ => widen(block::<1>(w, kb, x)),
    }
}

/// Room for the sign-extended input of the DSP kernel (`crate::asm::dsp_int8::extend`): `I`
/// `i16` slots, 4-byte aligned, left uninitialised (the kernel writes what it reads). `2 I`
/// bytes of stack during a layer's forward pass.
#[cfg(microdnn_dsp)]
#[repr(C, align(4))]
pub(crate) struct Extended<const I: usize>(pub(crate) [core::mem::MaybeUninit<i16>; I]);

#[cfg(microdnn_dsp)]
impl<const I: usize> Extended<I> {
    /// Uninitialised room (no code runs).
    #[inline(always)]
    pub(crate) const fn new() -> Self {
        Extended([const { core::mem::MaybeUninit::uninit() }; I])
    }
}

/// The fast kernel on a core with the DSP extension: the input sign-extended once into
/// `scratch` (at least `x.len()` slots, 4-byte aligned), then each block's full column groups
/// by the `SMLAD` loop of `crate::asm::dsp_int8` (its twin: [`block`]), the tail columns and
/// the requantization as in [`dense_packed`]. Falls back to [`dense_packed`] when the weights
/// or `scratch` are not 4-byte aligned (a `[[i8; I]; O]` built by hand may not be; model files'
/// tensors are). Equal to [`dense_packed`] byte for byte (integer sums are exact).
#[cfg(microdnn_dsp)]
#[inline(always)]
pub(crate) fn dense_packed_dsp(
    packed: &[i8],
    kernel_bias: &[i32],
    requantize: &Requantize<'_>,
    x: &[i8],
    scratch: &mut [impl crate::asm::dsp_int8::Halfword],
    y: &mut [i8],
) {
    let n = x.len();
    let aligned = (packed.as_ptr() as usize).is_multiple_of(4);
    let xw = match crate::asm::dsp_int8::extend(x, scratch) {
        Some(xw) if aligned && n > 0 => xw,
        _ => return dense_packed(packed, kernel_bias, requantize, x, y),
    };
    let stride = BLOCK_ROWS * n;
    // Full blocks of four rows: the fast path.
    let (kb4, kb_rest) = kernel_bias.as_chunks::<BLOCK_ROWS>();
    let (y4, y_rest) = y.as_chunks_mut::<BLOCK_ROWS>();
    let full = kb4.len().min(y4.len());
    let blocks = packed.chunks_exact(stride).zip(kb4).zip(y4);
    let (mult, shifts) = (requantize.multipliers(), requantize.shifts());
    if let ([m], [s]) = (mult, shifts) {
        for ((w, kb), yb) in blocks {
            let acc = dsp_block::<BLOCK_ROWS>(w, kb, x, xw);
            for (y, a) in yb.iter_mut().zip(acc) {
                *y = requantize.apply_with(*m, *s, a);
            }
        }
    } else {
        let (m4, _) = mult.as_chunks::<BLOCK_ROWS>();
        let (s4, _) = shifts.as_chunks::<BLOCK_ROWS>();
        for ((((w, kb), yb), m), s) in blocks.zip(m4).zip(s4) {
            let acc = dsp_block::<BLOCK_ROWS>(w, kb, x, xw);
            for (((y, a), &m), &s) in yb.iter_mut().zip(acc).zip(m).zip(s) {
                *y = requantize.apply_with(m, s, a);
            }
        }
    }
    // The last block, of 1 to 3 rows.
    let h = y_rest.len().min(kb_rest.len());
    if h == 0 {
        return;
    }
    let w = packed.get(full * stride..).unwrap_or(&[]);
    let acc = match h {
        3 => widen(dsp_block::<3>(w, kb_rest, x, xw)),
        2 => widen(dsp_block::<2>(w, kb_rest, x, xw)),
        _ => widen(dsp_block::<1>(w, kb_rest, x, xw)),
    };
    let first = full * BLOCK_ROWS;
    for (r, (y, a)) in y_rest.iter_mut().zip(acc).enumerate() {
        let c = if mult.len() == 1 { 0 } else { first + r };
        let (m, s) = (
            mult.get(c).copied().unwrap_or(0),
            shifts.get(c).copied().unwrap_or(0),
        );
        *y = requantize.apply_with(m, s, a);
    }
}

/// One block of `H` rows with the `SMLAD` loop over its full column groups (`xw`: the input's
/// sign-extended pairs) and the tail columns in Rust; [`block`] if the loop cannot run.
#[cfg(microdnn_dsp)]
#[inline(always)]
fn dsp_block<const H: usize>(w: &[i8], kernel_bias: &[i32], x: &[i8], xw: &[u32]) -> [i32; H] {
    let groups = x.len() / GROUP;
    let split = (groups * GROUP * H).min(w.len());
    let (wg, wt) = w.split_at(split);
    let mut acc: [i32; H] = core::array::from_fn(|r| kernel_bias.get(r).copied().unwrap_or(0));
    // The block starts at a multiple of 4 bytes of the (aligned) packed weights, and its groups
    // part holds 4 H bytes per group: this cast succeeds.
    let ran = match bytemuck::try_cast_slice::<i8, u32>(wg) {
        Ok(ww) => crate::asm::dsp_int8::dot::<H>(xw, ww, &mut acc),
        Err(_) => false,
    };
    if !ran {
        return block::<H>(w, kernel_bias, x);
    }
    let xt = x.get(groups * GROUP..).unwrap_or(&[]);
    if !xt.is_empty() {
        for (a, wr) in acc.iter_mut().zip(wt.chunks_exact(xt.len())) {
            for (w, &xv) in wr.iter().zip(xt) {
                *a = a.wrapping_add(*w as i32 * xv as i32);
            }
        }
    }
    acc
}

fn widen<const H: usize>(a: [i32; H]) -> [i32; BLOCK_ROWS] {
    let mut out = [0; BLOCK_ROWS];
    for (o, v) in out.iter_mut().zip(a) {
        *o = v;
    }
    out
}

/// One block of `H` rows: each input group is loaded (and widened) once for all `H` rows; each
/// row keeps four `i32` lanes (one per column of a group), summed at the end. Exact, so the
/// lane split changes nothing but speed. The portable twin of the DSP loop
/// (`crate::asm::dsp_int8::dot`).
#[inline(always)]
fn block<const H: usize>(w: &[i8], kernel_bias: &[i32], x: &[i8]) -> [i32; H] {
    // Two i32 lanes per row, each the sum of two adjacent i16 products: the shape of x86's
    // `pmaddwd` and of the Cortex-M4's `SMLAD`, which compilers vectorise.
    let mut acc = [[0i32; 2]; H];
    let (xg, xt) = x.as_chunks::<GROUP>();
    let split = (xg.len() * GROUP * H).min(w.len());
    let (wg, wt) = w.split_at(split);
    let (wg, _) = wg.as_chunks::<GROUP>();
    let (tiles, _) = wg.as_chunks::<H>();
    for (xc, tile) in xg.iter().zip(tiles) {
        let xv = xc.map(i16::from);
        for (a, wr) in acc.iter_mut().zip(tile) {
            let wv = wr.map(i16::from);
            a[0] = a[0].wrapping_add(
                i32::from(wv[0]) * i32::from(xv[0]) + i32::from(wv[1]) * i32::from(xv[1]),
            );
            a[1] = a[1].wrapping_add(
                i32::from(wv[2]) * i32::from(xv[2]) + i32::from(wv[3]) * i32::from(xv[3]),
            );
        }
    }
    if !xt.is_empty() {
        for (a, wr) in acc.iter_mut().zip(wt.chunks_exact(xt.len())) {
            for (w, &xv) in wr.iter().zip(xt) {
                a[0] = a[0].wrapping_add(*w as i32 * xv as i32);
            }
        }
    }
    let mut out = [0i32; H];
    for ((o, a), &kb) in out.iter_mut().zip(acc).zip(kernel_bias) {
        *o = a[0].wrapping_add(a[1]).wrapping_add(kb);
    }
    out
}

/// The kernel bias of each row, `bias[o] - input_zero_point * sum_c rows[o][c]` (wrapping),
/// from **row-major** weights: what the fast kernel adds instead of subtracting the input zero
/// point from every input. Computed once, at export or start-up.
///
/// ```
/// use microdnn::quant::kernel;
/// let rows = [1i8, 2, 3, /* row 1 */ -4, 5, -6];
/// let mut kb = [0; 2];
/// kernel::kernel_bias(&rows, 3, &[10, -10], -2, &mut kb).unwrap();
/// assert_eq!(kb, [10 + 2 * 6, -10 + 2 * -5]);
/// ```
pub fn kernel_bias(
    rows: &[i8],
    inputs: usize,
    bias: &[i32],
    input_zero_point: i8,
    kernel_bias: &mut [i32],
) -> Result<(), QuantError> {
    let outputs = bias.len();
    let n = inputs.checked_mul(outputs).ok_or(QuantError::Overflow)?;
    expect("weights", n, rows.len())?;
    expect("kernel bias", outputs, kernel_bias.len())?;
    let zp = input_zero_point as i32;
    for ((kb, &b), row) in kernel_bias
        .iter_mut()
        .zip(bias)
        .zip(rows.chunks(inputs.max(1)))
    {
        let sum = if inputs == 0 { 0 } else { row_sum(row) };
        *kb = b.wrapping_sub(zp.wrapping_mul(sum));
    }
    Ok(())
}

fn row_sum(row: &[i8]) -> i32 {
    row.iter().fold(0i32, |s, &w| s.wrapping_add(w as i32))
}

/// Checks that `kernel_bias` is [`kernel_bias`] of the packed weights (fails with
/// [`QuantError::KernelBias`] naming the first wrong row). Reads every weight once.
pub(crate) fn check_kernel_bias_packed(
    packed: &[i8],
    inputs: usize,
    bias: &[i32],
    input_zero_point: i8,
    kernel_bias: &[i32],
) -> Result<(), QuantError> {
    let zp = input_zero_point as i32;
    // Never 0 (`chunks` would panic): 4 * max(inputs, 1), saturated.
    let block = BLOCK_ROWS.saturating_mul(inputs).max(BLOCK_ROWS);
    let groups = inputs / GROUP;
    for (k, ((w, b), kb)) in packed
        .chunks(block)
        .zip(bias.chunks(BLOCK_ROWS))
        .zip(kernel_bias.chunks(BLOCK_ROWS))
        .enumerate()
    {
        let h = b.len();
        let mut sums = [0i32; BLOCK_ROWS];
        if inputs > 0 {
            let (wg, wt) = w.split_at((groups * GROUP * h).min(w.len()));
            for (i, chunk) in wg.chunks(GROUP).enumerate() {
                // `h >= 1` (a chunk); `checked_rem` keeps the division-by-zero panic out.
                if let Some(s) = i.checked_rem(h).and_then(|j| sums.get_mut(j)) {
                    *s = s.wrapping_add(row_sum(chunk));
                }
            }
            let tail = inputs - groups * GROUP;
            if tail > 0 {
                for (s, chunk) in sums.iter_mut().zip(wt.chunks(tail)) {
                    *s = s.wrapping_add(row_sum(chunk));
                }
            }
        }
        for (r, ((&b, &kb), &s)) in b.iter().zip(kb).zip(&sums).enumerate() {
            if kb != b.wrapping_sub(zp.wrapping_mul(s)) {
                return Err(QuantError::KernelBias {
                    row: k * BLOCK_ROWS + r,
                });
            }
        }
    }
    Ok(())
}

/// Offset in the packed layout of weight `(row, col)` of a layer with `inputs` inputs and
/// `outputs` outputs; `None` when out of range.
pub const fn packed_index(inputs: usize, outputs: usize, row: usize, col: usize) -> Option<usize> {
    if row >= outputs || col >= inputs {
        return None;
    }
    let block = row / BLOCK_ROWS;
    let r = row % BLOCK_ROWS;
    let start = block * BLOCK_ROWS;
    let h = if outputs - start < BLOCK_ROWS {
        outputs - start
    } else {
        BLOCK_ROWS
    };
    let groups = inputs / GROUP;
    let base = start * inputs;
    Some(if col < groups * GROUP {
        base + (col / GROUP) * GROUP * h + r * GROUP + col % GROUP
    } else {
        let tail = inputs - groups * GROUP;
        base + groups * GROUP * h + r * tail + (col - groups * GROUP)
    })
}

/// Converts row-major weights (`rows[o * inputs + c]`) into the packed layout.
pub fn pack(
    rows: &[i8],
    inputs: usize,
    outputs: usize,
    packed: &mut [i8],
) -> Result<(), QuantError> {
    let n = inputs.checked_mul(outputs).ok_or(QuantError::Overflow)?;
    expect("weights", n, rows.len())?;
    expect("packed weights", n, packed.len())?;
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
    packed: &[i8],
    inputs: usize,
    outputs: usize,
    rows: &mut [i8],
) -> Result<(), QuantError> {
    let n = inputs.checked_mul(outputs).ok_or(QuantError::Overflow)?;
    expect("weights", n, rows.len())?;
    expect("packed weights", n, packed.len())?;
    for (o, row) in rows.chunks_mut(inputs.max(1)).enumerate().take(outputs) {
        for (c, w) in row.iter_mut().enumerate() {
            if let Some(src) = packed_index(inputs, outputs, o, c).and_then(|i| packed.get(i)) {
                *w = *src;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn layout_matches_the_documented_example() {
        // 6 inputs x 5 outputs; weight value = 10 * row + col.
        let rows: Vec<i8> = (0..5)
            .flat_map(|o| (0..6).map(move |c| (10 * o + c) as i8))
            .collect();
        let mut packed = vec![0i8; 30];
        pack(&rows, 6, 5, &mut packed).unwrap();
        let expected: Vec<i8> = [
            0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23, 30, 31, 32, 33, // group 0
            4, 5, 14, 15, 24, 25, 34, 35, // tail
            40, 41, 42, 43, 44, 45, // block 1
        ]
        .to_vec();
        assert_eq!(packed, expected);
        let mut back = vec![0i8; 30];
        unpack(&packed, 6, 5, &mut back).unwrap();
        assert_eq!(back, rows);
    }

    #[test]
    fn packed_index_is_a_bijection() {
        for i in 0..=13 {
            for o in 0..=13 {
                let mut seen = vec![false; i * o];
                for r in 0..o {
                    for c in 0..i {
                        let k = packed_index(i, o, r, c).unwrap();
                        assert!(!seen[k], "{i}x{o}: ({r},{c}) collides");
                        seen[k] = true;
                    }
                }
                assert!(seen.iter().all(|&s| s));
                assert_eq!(packed_index(i, o, o, 0), None);
                assert_eq!(packed_index(i, o, 0, i), None);
            }
        }
    }

    #[test]
    fn lengths_are_checked() {
        let rq = Requantize::new(&[1 << 30], &[0], 0, -128, 127).unwrap();
        let mut y = [0i8; 2];
        assert!(matches!(
            dense(&[0; 5], &[0; 2], &rq, &[0; 3], &mut y),
            Err(QuantError::Shape {
                what: "weights",
                expected: 6,
                found: 5
            })
        ));
        assert!(dense_reference(&[0; 6], &[0; 3], 0, &rq, &[0; 3], &mut y).is_err());
        let rq3 = Requantize::new(&[1 << 30; 3], &[0; 3], 0, -128, 127).unwrap();
        assert!(matches!(
            dense(&[0; 6], &[0; 2], &rq3, &[0; 3], &mut y),
            Err(QuantError::Shape {
                what: "multipliers",
                ..
            })
        ));
        assert!(pack(&[0; 6], 3, 2, &mut [0; 5]).is_err());
        assert!(kernel_bias(&[0; 6], 3, &[0; 2], 0, &mut [0; 1]).is_err());
    }

    #[test]
    fn kernel_bias_check_finds_the_wrong_row() {
        let (i, o) = (7, 6);
        let rows: Vec<i8> = (0..i * o)
            .map(|v| (v as i32 * 37 % 255 - 127) as i8)
            .collect();
        let bias: Vec<i32> = (0..o as i32).map(|v| v * 1000 - 2500).collect();
        let mut packed = vec![0; i * o];
        pack(&rows, i, o, &mut packed).unwrap();
        let mut kb = vec![0; o];
        kernel_bias(&rows, i, &bias, -77, &mut kb).unwrap();
        assert_eq!(
            check_kernel_bias_packed(&packed, i, &bias, -77, &kb),
            Ok(())
        );
        kb[5] += 1;
        assert_eq!(
            check_kernel_bias_packed(&packed, i, &bias, -77, &kb),
            Err(QuantError::KernelBias { row: 5 })
        );
        assert!(check_kernel_bias_packed(&packed, i, &bias, -76, &kb).is_err());
    }
}

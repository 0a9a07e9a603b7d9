//! The int8 dense kernel's inner loops for cores with the DSP extension (Cortex-M4, M7, and
//! M33/M55 built with their `target-cpu`; `cfg(microdnn_dsp)`, set by `build.rs`).
//!
//! LLVM does not use `SMLAD` for the portable kernel's pairs of `i16` products (it emits
//! `SMULBB`/`MLA` sequences), so the block loop is written here. Its portable twin is
//! [`crate::quant::kernel`]'s `block` (the fallback and the reference): integer sums are exact,
//! so both give the same `i32` accumulators, and the firmware's self-test checks
//! [`crate::quant::QDense::forward`] against TFLite Micro's loop
//! ([`crate::quant::QDense::forward_reference`]) on the target, on every block height and
//! column tail.
//!
//! # What it computes
//!
//! The layer's input is sign-extended once per call ([`extend`]): for each full group of four
//! columns `x0..x3`, two words holding `i16` pairs, `(x0, x2)` and `(x1, x3)`. A weight word of
//! the [packed layout](crate::quant::kernel#packed-weight-layout) holds one row's bytes
//! `w0..w3` of the group; `SXTB16 w` gives the pair `(w0, w2)`, `SXTB16 w, ROR #8` the pair
//! `(w1, w3)`, and two `SMLAD`s add `w0 x0 + w2 x2` and `w1 x1 + w3 x3` to the row's `i32`
//! accumulator ([`dot`]). So the device never reorders weights: the layout was chosen at export
//! for these two instructions.
//!
//! Per group and block of four rows: one `LDRD` of the input pairs, two `LDRD`s of the four
//! rows' words, and per row two `SXTB16` and two `SMLAD`: 19 instructions for 16
//! multiply-accumulates, plus the loop's `SUBS`/`BNE` once per two groups (the loop body holds
//! two groups): 1.25 executed instructions per MAC in the loop. 12 registers: four accumulators,
//! the input pair, two weight words, one temporary, two pointers and the counter.
//!
//! Overflow: the products of sign-extended bytes are below `2^14` in magnitude, their pair sums
//! below `2^15`; `SMLAD`'s accumulation wraps modulo `2^32` (setting the sticky Q flag, which
//! nothing reads), as the portable kernel's `wrapping_add` does.
#![allow(unsafe_code)]

use core::arch::asm;
use core::mem::MaybeUninit;

/// Room for 16-bit values that [`extend`] may overwrite with any bits: `i16`, and uninitialised
/// `MaybeUninit<i16>` (a stack array that needs no zeroing). Both are two bytes.
pub(crate) trait Halfword {}
impl Halfword for i16 {}
impl Halfword for MaybeUninit<i16> {}

/// Sign-extends the full groups of four columns of `x` into `out`, as two words per group: `x0`
/// in the low and `x2` in the high half of the first (two's complement `i16`s), `x1` and `x3` in
/// the second. Returns those `2 * (x.len() / 4)` words, or `None` if `out` is not 4-byte aligned
/// or holds fewer than `4 * (x.len() / 4)` elements (nothing is written then).
///
/// Bytes are loaded one by one (`LDRSB`), so `x` may have any alignment. 9 instructions per four
/// inputs.
#[inline(always)]
pub(crate) fn extend<'s, T: Halfword>(x: &[i8], out: &'s mut [T]) -> Option<&'s [u32]> {
    const { assert!(core::mem::size_of::<T>() == 2) };
    let groups = x.len() / 4;
    if out.len() < groups * 4 || !(out.as_ptr() as usize).is_multiple_of(4) {
        return None;
    }
    if groups == 0 {
        return Some(&[]);
    }
    let dst = out.as_mut_ptr().cast::<u32>();
    // SAFETY: `src` points to `x`, whose `4 * groups` first bytes are read (four `LDRSB` per
    // group, the last one post-incrementing `src` by 4); `dst` points to `out`, 4-byte aligned
    // (checked above), of which `2 * groups` words (`8 * groups` bytes <= `2 * out.len()`
    // bytes, checked above; its elements are two bytes) are written by one post-incremented
    // `STRD` per group; any bits are a valid `i16` (or `MaybeUninit<i16>`). `out` is
    // borrowed mutably, so nothing else reads or writes it meanwhile. `groups >= 1`, so the
    // count-down loop ends. The flags are changed by `SUBS` (no `preserves_flags`); no stack is
    // used.
    unsafe {
        asm!(
            "2:",
            "ldrsb {x1}, [{src}, #1]",
            "ldrsb {x2}, [{src}, #2]",
            "ldrsb {x3}, [{src}, #3]",
            "ldrsb {x0}, [{src}], #4",
            "pkhbt {x0}, {x0}, {x2}, lsl #16",
            "pkhbt {x1}, {x1}, {x3}, lsl #16",
            "strd {x0}, {x1}, [{dst}], #8",
            "subs {n}, {n}, #1",
            "bne 2b",
            src = inout(reg) x.as_ptr() => _,
            dst = inout(reg) dst => _,
            n = inout(reg) groups => _,
            x0 = out(reg) _,
            x1 = out(reg) _,
            x2 = out(reg) _,
            x3 = out(reg) _,
            options(nostack),
        );
    }
    // SAFETY: the loop above initialised exactly these `2 * groups` words of `out` (aligned,
    // in bounds: checked above); any bit pattern is a valid `u32`. The slice borrows `out` for
    // `'s`, so it cannot be written while the words are read.
    Some(unsafe { core::slice::from_raw_parts(dst.cast_const(), groups * 2) })
}

/// One sign-extended column group of one row: `SXTB16` of the weight word `w` (rotated by 8 for
/// the odd columns) and two `SMLAD`s into the accumulator `a`, with the input pairs in `xe`
/// (columns 0, 2) and `xo` (columns 1, 3). `t` is a scratch register.
macro_rules! row {
    ($a:literal, $w:literal) => {
        concat!(
            "sxtb16 {t}, {",
            $w,
            "}, ror #8\n",
            "sxtb16 {",
            $w,
            "}, {",
            $w,
            "}\n",
            "smlad {",
            $a,
            "}, {",
            $w,
            "}, {xe}, {",
            $a,
            "}\n",
            "smlad {",
            $a,
            "}, {t}, {xo}, {",
            $a,
            "}\n",
        )
    };
}

/// One column group of an `H`-row block: the input pairs, then the rows' words (two per `LDRD`).
macro_rules! group {
    (1) => {
        concat!(
            "ldrd {xe}, {xo}, [{xp}], #8\n",
            "ldr {w0}, [{wp}], #4\n",
            row!("a0", "w0"),
        )
    };
    (2) => {
        concat!(
            "ldrd {xe}, {xo}, [{xp}], #8\n",
            "ldrd {w0}, {w1}, [{wp}], #8\n",
            row!("a0", "w0"),
            row!("a1", "w1"),
        )
    };
    (3) => {
        concat!(
            "ldrd {xe}, {xo}, [{xp}], #8\n",
            "ldrd {w0}, {w1}, [{wp}], #8\n",
            row!("a0", "w0"),
            row!("a1", "w1"),
            "ldr {w0}, [{wp}], #4\n",
            row!("a2", "w0"),
        )
    };
    (4) => {
        concat!(
            "ldrd {xe}, {xo}, [{xp}], #8\n",
            "ldrd {w0}, {w1}, [{wp}], #8\n",
            row!("a0", "w0"),
            row!("a1", "w1"),
            "ldrd {w0}, {w1}, [{wp}], #8\n",
            row!("a2", "w0"),
            row!("a3", "w1"),
        )
    };
}

/// The loop over `n` groups, two per iteration: `LSRS` halves the count, its carry says whether
/// one group runs first, its zero flag whether any pair remains (nothing in a group body
/// changes the flags: `SMLAD` only sets Q).
macro_rules! groups {
    ($h:tt) => {
        concat!(
            "lsrs {n}, {n}, #1\n",
            "bcc 3f\n",
            group!($h),
            "3:\n",
            "beq 5f\n",
            "4:\n",
            group!($h),
            group!($h),
            "subs {n}, {n}, #1\n",
            "bne 4b\n",
            "5:\n",
        )
    };
}

/// Adds to `acc[r]` the dot product of row `r` of a block of `H` rows (1 to 4) with the input,
/// over the full column groups: `w` holds the block's group words (for each group, `H` words,
/// one per row: the packed layout), `xw` the input's pairs from [`extend`]. Lengths that
/// disagree shorten the loop to the groups both hold: nothing outside the slices is read.
///
/// Returns `false` (leaving `acc` untouched) for a block height other than 1 to 4, which the
/// packed layout never has; the caller then runs its portable loop.
#[inline(always)]
pub(crate) fn dot<const H: usize>(xw: &[u32], w: &[u32], acc: &mut [i32; H]) -> bool {
    if H == 0 || H > 4 {
        return false;
    }
    let groups = (xw.len() / 2).min(w.len() / H);
    let (xp, wp) = (xw.as_ptr(), w.as_ptr());
    // SAFETY (every arm): `xp` points to `xw`, of which `2 * groups` words are read (one
    // post-incremented `LDRD` per group), and `wp` to `w`, of which `H * groups` words are read
    // (`LDRD`/`LDR`, post-incremented, `H` words per group): both counts are within the slices'
    // lengths (`groups` is the smaller of the two quotients above). Both are `u32` slices, so
    // every access is word-aligned, as `LDRD` requires. The loop runs exactly `groups` group
    // bodies (one before the loop when `groups` is odd, then `groups / 2` iterations of two;
    // none when `groups` is 0), so it ends. Memory is only read (`readonly`); the accumulators
    // are `inout` registers, the other registers written are declared as outputs; the flags
    // are changed (no `preserves_flags`); no stack is used.
    match acc.as_mut_slice() {
        // SAFETY: see above (H = 1).
        [a0] => unsafe {
            asm!(
                groups!(1),
                xp = inout(reg) xp => _, wp = inout(reg) wp => _, n = inout(reg) groups => _,
                a0 = inout(reg) *a0,
                xe = out(reg) _, xo = out(reg) _, w0 = out(reg) _, t = out(reg) _,
                options(nostack, readonly),
            )
        },
        // SAFETY: see above (H = 2).
        [a0, a1] => unsafe {
            asm!(
                groups!(2),
                xp = inout(reg) xp => _, wp = inout(reg) wp => _, n = inout(reg) groups => _,
                a0 = inout(reg) *a0, a1 = inout(reg) *a1,
                xe = out(reg) _, xo = out(reg) _, w0 = out(reg) _, w1 = out(reg) _,
                t = out(reg) _,
                options(nostack, readonly),
            )
        },
        // SAFETY: see above (H = 3).
        [a0, a1, a2] => unsafe {
            asm!(
                groups!(3),
                xp = inout(reg) xp => _, wp = inout(reg) wp => _, n = inout(reg) groups => _,
                a0 = inout(reg) *a0, a1 = inout(reg) *a1, a2 = inout(reg) *a2,
                xe = out(reg) _, xo = out(reg) _, w0 = out(reg) _, w1 = out(reg) _,
                t = out(reg) _,
                options(nostack, readonly),
            )
        },
        // SAFETY: see above (H = 4).
        [a0, a1, a2, a3] => unsafe {
            asm!(
                groups!(4),
                xp = inout(reg) xp => _, wp = inout(reg) wp => _, n = inout(reg) groups => _,
                a0 = inout(reg) *a0, a1 = inout(reg) *a1, a2 = inout(reg) *a2,
                a3 = inout(reg) *a3,
                xe = out(reg) _, xo = out(reg) _, w0 = out(reg) _, w1 = out(reg) _,
                t = out(reg) _,
                options(nostack, readonly),
            )
        },
        _ => return false,
    }
    true
}

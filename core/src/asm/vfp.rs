//! The f32 dense kernel's inner loop in scalar floating-point (VFPv4/FPv5 single precision)
//! assembly, for the hard-float Cortex-M4F, M7 and M33 (`cfg(microdnn_vfp)`, set by `build.rs`
//! for every `eabihf` target that is not a Helium core).
//!
//! LLVM compiles the portable block loop (`kernel::block`) to one `VLDR` per weight and one
//! `VMLA` per multiply-accumulate, plus address and loop bookkeeping: 2.39 executed instructions
//! per MAC on 784-128-64-10. The FPU's 32 single-precision registers can hold a 5-row block's 20
//! accumulators, the four inputs of a column group and eight weights, and `VLDM` loads several
//! consecutive floats with one instruction, so this loop does per column group of a 5-row block:
//! one `VLDM` of the four inputs, three `VLDM`s of the weights (two rows, two rows, one row: the
//! packed layout stores a block's rows of one group consecutively) and 20 `VMLA`s, two groups per
//! iteration plus `SUBS`/`BNE`: 49 instructions for 40 MACs (1.23 per MAC in the loop).
//!
//! # What it computes
//!
//! `VMLA.F32 Sd, Sn, Sm` computes `Sd + (Sn * Sm)` with the product rounded to f32 before the
//! addition (a chained, not fused, multiply-accumulate; Arm ARM `FPMulAdd` is only used by
//! `VFMA`), in round-to-nearest with subnormals kept (the Cortex-M FPU's reset `FPSCR`: `FZ` and
//! `DN` clear; nothing in the firmware changes it). Lane `l` of row `r` lives in `s(4r + l)`;
//! per group the inputs `x[4g..4g + 4]` are in `s20..s23` and the row's weights in `s24..s27` or
//! `s28..s31`, and `s(4r + l) = s(4r + l) + w[r][4g + l] * x[4g + l]`, the groups in increasing
//! order: [`crate::kernel::dense_spec`]'s order lane by lane. So results are bit-identical to
//! the portable loop (its reference twin, `kernel::dense_portable`) and to every other target;
//! the firmware's self-test checks that on the Cortex-M4F, M7 and M33 under QEMU, on every block
//! height, group count parity and column tail, with signed zeros, subnormals, infinities and
//! NaNs in the operands. Tail columns and the final `((l0 + l1) + (l2 + l3)) + b` stay in Rust
//! (`kernel::block`).
#![allow(unsafe_code)]

use core::arch::asm;

/// `VMLA`s of one row whose weights are in `s24..s27` (`lo`) or `s28..s31` (`hi`), the inputs
/// in `s20..s23`, into the accumulators `s$a..s$d`.
macro_rules! mla {
    (lo $a:literal $b:literal $c:literal $d:literal) => {
        concat!(
            "vmla.f32 s",
            $a,
            ", s24, s20\n",
            "vmla.f32 s",
            $b,
            ", s25, s21\n",
            "vmla.f32 s",
            $c,
            ", s26, s22\n",
            "vmla.f32 s",
            $d,
            ", s27, s23\n",
        )
    };
    (hi $a:literal $b:literal $c:literal $d:literal) => {
        concat!(
            "vmla.f32 s",
            $a,
            ", s28, s20\n",
            "vmla.f32 s",
            $b,
            ", s29, s21\n",
            "vmla.f32 s",
            $c,
            ", s30, s22\n",
            "vmla.f32 s",
            $d,
            ", s31, s23\n",
        )
    };
}

/// One column group of an `H`-row block: the four inputs, then the rows' weights, two rows
/// (eight floats) per `VLDM`.
macro_rules! group {
    (1) => {
        concat!(
            "vldmia {x}!, {{s20-s23}}\n",
            "vldmia {w}!, {{s24-s27}}\n",
            mla!(lo 0 1 2 3),
        )
    };
    (2) => {
        concat!(
            "vldmia {x}!, {{s20-s23}}\n",
            "vldmia {w}!, {{s24-s31}}\n",
            mla!(lo 0 1 2 3),
            mla!(hi 4 5 6 7),
        )
    };
    (3) => {
        concat!(
            group!(2),
            "vldmia {w}!, {{s24-s27}}\n",
            mla!(lo 8 9 10 11),
        )
    };
    (4) => {
        concat!(
            group!(2),
            "vldmia {w}!, {{s24-s31}}\n",
            mla!(lo 8 9 10 11),
            mla!(hi 12 13 14 15),
        )
    };
    (5) => {
        concat!(
            group!(4),
            "vldmia {w}!, {{s24-s27}}\n",
            mla!(lo 16 17 18 19),
        )
    };
}

/// The whole loop for an `H`-row block whose accumulators are `s0..$last`: load them from
/// `{a}`, run `{n}` groups (two per iteration: `LSRS` halves the count, its carry says whether
/// one group runs first, its zero flag whether any pair remains; `VLDM`/`VMLA` leave the APSR
/// flags alone), store them back.
macro_rules! block {
    ($h:tt, $last:literal) => {
        concat!(
            "vldmia {a}, {{s0-s",
            $last,
            "}}\n",
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
            "vstmia {a}, {{s0-s",
            $last,
            "}}\n",
        )
    };
}

/// Runs `acc[r][l] += w * x` over the full 4-column groups of one block (see the module docs).
/// `w` holds the block's group weights (`groups * 4 * H` floats: for each group, `H` rows of 4),
/// `x` the input's group columns (`groups * 4` floats). Lengths that disagree shorten the loop
/// to what both hold: nothing outside the slices is ever read.
///
/// Returns `false` (leaving `acc` untouched) for a block height other than 1 to 5, which the
/// packed layout never has; the caller then runs its portable loop.
#[inline(always)]
pub(crate) fn lanes<const H: usize>(w: &[f32], x: &[f32], acc: &mut [[f32; 4]; H]) -> bool {
    if H == 0 || H > 5 {
        return false;
    }
    let groups = (x.len() / 4).min(w.len() / (4 * H));
    if groups == 0 {
        return true;
    }
    let (w, x, a) = (w.as_ptr(), x.as_ptr(), acc.as_mut_ptr().cast::<f32>());
    macro_rules! run {
        ($h:tt, $last:literal) => {
            // SAFETY: `x` points to `groups * 4` readable floats and `w` to `groups * 4 * H`
            // (both counted from the slices' lengths above), and the loop reads exactly that
            // many: per group one post-incremented `VLDM` of four floats from `x` and `VLDM`s of
            // `4 * H` floats in all from `w`. It runs exactly `groups >= 1` group bodies (one
            // before the loop when `groups` is odd, then `groups / 2` iterations of two), so it
            // ends. `a` points to `acc`, `16 * H` bytes, of which the `VLDM`/`VSTM` of
            // `s0..s(4H - 1)` read and write exactly `4 * H` floats; `acc` is borrowed mutably,
            // so nothing else accesses it meanwhile. Every access is 4-byte aligned (f32
            // slices), as `VLDM`/`VSTM` require. All FPU registers s0-s31 (d0-d15) are declared
            // clobbered (the compiler saves the callee-saved s16-s31); the APSR flags are changed
            // by `LSRS`/`SUBS` (no `preserves_flags`); `FPSCR` is neither read nor written; no
            // stack is used.
            unsafe {
                asm!(
                    block!($h, $last),
                    a = in(reg) a,
                    x = inout(reg) x => _,
                    w = inout(reg) w => _,
                    n = inout(reg) groups => _,
                    out("d0") _, out("d1") _, out("d2") _, out("d3") _,
                    out("d4") _, out("d5") _, out("d6") _, out("d7") _,
                    out("d8") _, out("d9") _, out("d10") _, out("d11") _,
                    out("d12") _, out("d13") _, out("d14") _, out("d15") _,
                    options(nostack),
                )
            }
        };
    }
    match H {
        1 => run!(1, "3"),
        2 => run!(2, "7"),
        3 => run!(3, "11"),
        4 => run!(4, "15"),
        _ => run!(5, "19"),
    }
    true
}

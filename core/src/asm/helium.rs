//! The dense kernel's inner loop in Helium (Armv8.1-M MVE) assembly, for Cortex-M55/M85 builds
//! (`cfg(microdnn_helium)`, set by `build.rs` from `-C target-cpu=cortex-m55`).
//!
//! LLVM does not map the kernel's lanes onto MVE registers by itself (measured: 3.44 executed
//! instructions per MAC on 784-128-64-10 with `target-cpu=cortex-m55`, worse than the scalar
//! Cortex-M4F's 2.39), so this is the one place of the core with `unsafe`: an audited assembly
//! loop whose arithmetic is exactly the contract's (see [`crate::kernel`]).
//!
//! # What it computes
//!
//! For a block of `H` rows (1 to 5) of the packed layout, over the `groups` full 4-column
//! groups: each row's four lanes live in one vector register (`q0`..`q4`); per group, the input's
//! four columns are loaded once (`q5`), and for each row the four weights (`q6`) are multiplied
//! by them (`vmul.f32`, each product rounded to f32) and added to the row's lanes (`vadd.f32`,
//! rounded): lane `l` of row `r` gets `acc[r][l] = acc[r][l] + (w[r][4g + l] * x[4g + l])`, the
//! columns in increasing order, no fused multiply-add. That is [`crate::kernel::dense_spec`]'s
//! order lane by lane, so results are bit-identical to every other target (checked on the
//! emulated Cortex-M55 by the firmware's self-test against `dense_spec`). Tail columns and the
//! final `((l0 + l1) + (l2 + l3)) + b` stay in Rust (`kernel::block`).
//!
//! Per group: 1 + 3 `H` + 2 instructions for 4 `H` multiply-accumulates (0.9 per MAC at `H` = 5).
//!
//! # Subnormals
//!
//! MVE's floating-point instructions flush subnormal operands and results to zero (they use the
//! architecture's standard FPSCR value, whatever `FPSCR.FZ` says), where the scalar FPU and
//! x86-64 keep them. A flush raises the cumulative flags `FPSCR.IDC` (input denormal) or
//! `FPSCR.UFC` (underflow): the loop clears both before it starts and reads them when it ends,
//! and [`lanes`] returns `false` when either was raised, so the caller recomputes the block with
//! the scalar loop (exact IEEE arithmetic). Flags raised before the call are restored.
#![allow(unsafe_code)]

use core::arch::asm;

/// `FPSCR.IDC` (bit 7) and `FPSCR.UFC` (bit 3): set when a subnormal was flushed to zero.
const FLUSH_FLAGS: u32 = 0x88;

/// Runs `acc[r][l] += w * x` over the full 4-column groups of one block (see the module docs).
/// `w` holds the block's group weights (`groups * 4 * H` floats: for each group, `H` rows of 4),
/// `x` the input's group columns (`groups * 4` floats). Lengths that disagree shorten the loop
/// to what both hold: nothing outside the slices is ever read.
///
/// Returns `false` if the vector unit flushed a subnormal to zero: `acc` then holds a result
/// that may differ from the contract's, and the caller must recompute the block.
#[inline(always)]
pub(crate) fn lanes<const H: usize>(w: &[f32], x: &[f32], acc: &mut [[f32; 4]; H]) -> bool {
    let groups = (x.len() / 4).min(w.len() / (4 * H));
    if groups == 0 || H == 0 || H > 5 {
        // Nothing to do, or not a block height of the packed layout (never used): the caller's
        // scalar loop handles it.
        return groups == 0;
    }
    let flags: u32;
    let (w, x, a) = (w.as_ptr(), x.as_ptr(), acc.as_mut_ptr().cast::<f32>());
    macro_rules! block {
        ($($q:literal $off:literal),+) => {
            // SAFETY: `x` points to `groups * 4` readable floats and `w` to `groups * 4 * H`
            // (both counted from the slices' lengths above), and the loop reads exactly that
            // many: per group one 16-byte load from `x` and one per row from `w`, each
            // post-incremented. `a` points to `acc`, `H` x 16 bytes, written by the stores at
            // `a + 16 r` for r < H only. `groups >= 1`, so the count-down loop ends. All
            // accesses are 4-byte aligned (f32 slices), which VLDRW/VSTRW require. The vector
            // registers q0-q7 (d0-d15) are declared clobbered; the flags are changed by SUBS
            // (no `preserves_flags`); no stack is used. FPSCR's cumulative IDC and UFC flags
            // are cleared before the loop and read after it; the caller's earlier flags are
            // written back with the loop's new ones (except IDC/UFC, reported in `flags`).
            unsafe {
                asm!(
                    "vmrs {saved}, fpscr",
                    "bic {t}, {saved}, #0x88",
                    "vmsr fpscr, {t}",
                    $(concat!("vldrw.u32 q", $q, ", [{a}, #", $off, "]"),)+
                    "2:",
                    "vldrw.u32 q5, [{x}], #16",
                    $(
                        "vldrw.u32 q6, [{w}], #16",
                        "vmul.f32 q7, q6, q5",
                        concat!("vadd.f32 q", $q, ", q", $q, ", q7"),
                    )+
                    "subs {n}, {n}, #1",
                    "bne 2b",
                    $(concat!("vstrw.32 q", $q, ", [{a}, #", $off, "]"),)+
                    "vmrs {t}, fpscr",
                    "bic {n}, {t}, #0x88",
                    "orr {saved}, {saved}, {n}",
                    "vmsr fpscr, {saved}",
                    a = in(reg) a,
                    saved = out(reg) _,
                    t = out(reg) flags,
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
        1 => block!("0" "0"),
        2 => block!("0" "0", "1" "16"),
        3 => block!("0" "0", "1" "16", "2" "32"),
        4 => block!("0" "0", "1" "16", "2" "32", "3" "48"),
        _ => block!("0" "0", "1" "16", "2" "32", "3" "48", "4" "64"),
    }
    flags & FLUSH_FLAGS == 0
}

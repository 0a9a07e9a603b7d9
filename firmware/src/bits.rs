//! Bit-for-bit comparison of `f32` results, NaNs canonicalised.
//!
//! The expected bits of the self-test, demo and benchmark come from the host (`build.rs` runs
//! microdnn on x86-64), whose default NaN (0xffc0_0000) differs from ARM's (0x7fc0_0000): every
//! NaN is compared as [`CANONICAL_NAN`], every other value bit for bit (`+0.0` and `-0.0`
//! differ).

/// The bits every NaN is compared as (ARM's default NaN).
pub const CANONICAL_NAN: u32 = 0x7fc0_0000;

/// `bits`, with every NaN pattern replaced by [`CANONICAL_NAN`].
pub const fn canonical(bits: u32) -> u32 {
    if f32::from_bits(bits).is_nan() {
        CANONICAL_NAN
    } else {
        bits
    }
}

/// Whether `value` has the bit pattern `expected` (NaNs canonicalised).
pub fn same_as(value: f32, expected: u32) -> bool {
    canonical(value.to_bits()) == canonical(expected)
}

/// Whether `a` and `b` are the same bit for bit (NaNs canonicalised).
pub fn same(a: f32, b: f32) -> bool {
    same_as(a, b.to_bits())
}

//! The core's audited assembly: the one module where `unsafe` is allowed (the rest of the crate
//! is `forbid(unsafe_code)` on every build without these kernels, `deny` with them).
//!
//! Each kernel is an inline-assembly inner loop behind a safe function that checks every length
//! and alignment the loop relies on, with a `// SAFETY:` note on each `unsafe` block, a portable
//! twin in plain Rust that computes the same thing (the fallback, and the reference it is tested
//! against on the target, by the firmware's self-test), and a `cfg` set by `core/build.rs` from
//! the target triple and CPU flags, so a kernel is only ever compiled for cores that have its
//! instructions:
//!
//! | module | cores (`cfg`) | inner loop | portable twin |
//! |---|---|---|---|
//! | [`helium`] | Cortex-M55/M85 (`microdnn_helium`) | f32 dense block: `vmul.f32`/`vadd.f32` lanes | the scalar loop of `kernel::block` (`kernel::dense_spec`'s order) |
//! | [`vfp`] | Cortex-M4F/M7/M33 (`microdnn_vfp`: `eabihf`, not Helium) | f32 dense block: `VLDM` of 4 inputs and 8 weights, `VMLA` | the scalar loop of `kernel::block` (`kernel::dense_portable`) |
//! | [`dsp_int8`] | Cortex-M4/M7, Cortex-M33/M55 with `target-cpu` (`microdnn_dsp`) | int8 dense block: `SXTB16` + `SMLAD` | `quant::kernel::dense_packed` (TFLite Micro's loop, `quant::kernel::dense_reference`) |

#[cfg(microdnn_dsp)]
pub(crate) mod dsp_int8;
#[cfg(microdnn_helium)]
pub(crate) mod helium;
#[cfg(microdnn_vfp)]
pub(crate) mod vfp;

//! # microdnn-firmware
//!
//! Support code shared by the firmware programs in `src/bin/` (QEMU `mps2-an386`, Cortex-M4F):
//!
//! - [`board`]: semihosting exit codes, and fatal handlers (panic, HardFault, unexpected
//!   exceptions) that always end the emulator with a failure code, so a run never hangs;
//! - [`icount`]: a deterministic instruction counter built on SysTick, for QEMU's
//!   `-icount shift=3,sleep=off`;
//! - [`stack`]: stack painting, to measure the peak stack depth of a program;
//! - [`model`]: the demo network (784-128-64-10) whose weights `build.rs` generates into flash;
//! - [`eval_model`]: the model compiled into the `eval` program (`MICRODNN_MODEL`, or the demo
//!   network), with its network type derived from the file at build time;
//! - [`uart`]: the CMSDK APB UART behind the `embedded-io` traits (the host link).
//!
//! Logging goes through `defmt` over semihosting (frames on the emulator's standard output);
//! `cargo xtask demo|test|bench-mcu` decode them with the ELF's defmt table.
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

// The defmt global logger: frames go to the host's stdout over semihosting.
use defmt_semihosting as _;

pub mod board;
pub mod eval_model;
pub mod icount;
pub mod model;
pub mod stack;
pub mod uart;

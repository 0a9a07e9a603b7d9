//! # microdnn-firmware
//!
//! The programs in `src/bin/` run on every board of the board table (`targets/src/lib.rs`); the
//! code shared by all boards lives here, and each board is one folder, `boards/BOARD/`, with
//! its clock, its host serial port and its `memory.x`. `build.rs` compiles in the board named by
//! `MICRODNN_BOARD` (default `mps2`, QEMU's Cortex-M4F) as [`board`]:
//!
//! - [`board`]: `NAME`, `SYSTICK_HZ`, `Serial` (an `embedded_io::{Read, Write}` port) and
//!   `serial()`, which brings it up;
//! - [`memory`]: the board's flash and RAM sizes (from its `memory.x`);
//! - [`runtime`]: semihosting exit codes, and fatal handlers (panic, HardFault, unexpected
//!   exceptions) that always end the emulator with a failure code, so a run never hangs;
//! - [`icount`]: a deterministic instruction counter built on SysTick, for QEMU's
//!   `-icount shift=3,sleep=off`;
//! - [`stack`]: stack painting, to measure the peak stack depth of a program;
//! - [`model`]: the demo network whose weights `build.rs` generates into flash (784-128-64-10,
//!   or 64-32-16-10 on boards with less than 512 KiB of flash);
//! - [`eval_model`]: the model compiled into the `eval` program (`MICRODNN_MODEL`, or the demo
//!   network), with its network type derived from the file at build time;
//! - [`server`]: the `eval` program's link loop, generic over `embedded_io::{Read, Write}`;
//! - [`bits`]: bit-for-bit comparison of results with NaNs canonicalised;
//! - [`cmsdk_uart`]: ARM's CMSDK APB UART (the MPS2/MPS3 boards); [`nb_serial`]: any
//!   embedded-hal serial port (a HAL's) as an `embedded-io` port.
//!
//! Logging goes through `defmt` and the logger of `src/logger.rs` (it never panics): over
//! semihosting (frames on the emulator's standard output, decoded by `cargo xtask`), or over RTT
//! with the `rtt` feature (real boards, `probe-rs run`).
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

// `pub mod board` (the folder `boards/$MICRODNN_BOARD/`) and `pub mod memory`.
include!(concat!(env!("OUT_DIR"), "/board.rs"));

pub mod bits;
pub mod cmsdk_uart;
pub mod eval_model;
pub mod icount;
mod logger;
pub mod model;
pub mod nb_serial;
pub mod runtime;
pub mod serial;
pub mod server;
pub mod stack;

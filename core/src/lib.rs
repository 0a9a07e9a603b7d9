//! # microdnn
//!
//! Fully-connected neural-network inference for microcontrollers: `#![no_std]`, no heap, sizes
//! fixed at compile time, weights read in place from flash, and outputs bit-identical between the
//! host and a Cortex-M.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod activation;
pub mod math;

pub use activation::Activation;

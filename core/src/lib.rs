#![doc = include_str!("../README.md")]
#![no_std]
// No `unsafe` anywhere, except in the audited assembly kernels of `asm/` (built only for the
// Cortex-M cores that run them), the one module that allows it.
#![cfg_attr(
    not(any(microdnn_helium, microdnn_dsp, microdnn_vfp)),
    forbid(unsafe_code)
)]
#![cfg_attr(any(microdnn_helium, microdnn_dsp, microdnn_vfp), deny(unsafe_code))]
#![deny(missing_docs)]
// No panic reachable from the public API (see "Guarantees" in the crate docs): nothing that
// panics by design outside the tests. The parsers of untrusted bytes (`model`'s reader and
// `link`) also deny unchecked arithmetic, truncating casts and panicking indexing.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod activation;
#[cfg(any(microdnn_helium, microdnn_dsp, microdnn_vfp))]
mod asm;
pub mod batch_norm;
pub mod dense;
pub mod dropout;
pub mod error;
pub mod kernel;
pub mod link;
pub mod math;
pub mod mc;
pub mod model;
pub mod network;
pub mod quant;
pub mod rng;

pub use activation::Activation;
pub use batch_norm::BatchNorm;
pub use dense::{Dense, Layer};
pub use dropout::{Dropout, McDropout};
pub use error::Error;
pub use model::{ModelError, ModelView};
pub use network::{argmax, mc_predict, Network};
pub use rng::Rng;

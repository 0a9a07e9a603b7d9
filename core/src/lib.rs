#![doc = include_str!("../README.md")]
#![no_std]
// No `unsafe` anywhere, except in the Helium build's audited inner loop (`helium.rs`), the one
// module that allows it.
#![cfg_attr(not(microdnn_helium), forbid(unsafe_code))]
#![cfg_attr(microdnn_helium, deny(unsafe_code))]
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
pub mod batch_norm;
pub mod dense;
pub mod dropout;
pub mod error;
#[cfg(microdnn_helium)]
mod helium;
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

#![doc = include_str!("../README.md")]
#![no_std]
// No `unsafe` anywhere, except in the Helium build's audited inner loop (`helium.rs`), the one
// module that allows it.
#![cfg_attr(not(microdnn_helium), forbid(unsafe_code))]
#![cfg_attr(microdnn_helium, deny(unsafe_code))]
#![deny(missing_docs)]

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
pub mod model;
pub mod network;
pub mod rng;

pub use activation::Activation;
pub use batch_norm::BatchNorm;
pub use dense::{Dense, Layer};
pub use dropout::{Dropout, McDropout};
pub use error::Error;
pub use model::{ModelError, ModelView};
pub use network::{argmax, mc_predict, Network};
pub use rng::Rng;

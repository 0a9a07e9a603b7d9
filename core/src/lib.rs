#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod activation;
pub mod batch_norm;
pub mod dense;
pub mod dropout;
pub mod error;
pub mod kernel;
pub mod link;
pub mod math;
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

//! # microdnn-host
//!
//! Host-side training for microdnn: data loading (MNIST IDX, CSV), seeded splits, an input
//! transform saved with the model, a mini-batch trainer with the techniques of the course
//! (batch norm, dropout, DropConnect, L1/L2, max-norm, early stopping, momentum/Nesterov/Adam,
//! LR schedules, gradient clipping), safetensors checkpoints laid out like a PyTorch
//! `nn.Sequential`, and fast batched inference.
//!
//! Modules, in the order data flows through them:
//! - [`data`]: loaders (MNIST IDX, CSV), seeded splits, [`data::InputTransform`].
//! - [`nn`]: batched layers, losses, initialisation, optimisers, schedules, regularisers and the
//!   training-side [`nn::network::Network`].
//! - [`model`]: the public in-memory model ([`model::Sequential`] of [`model::Layer`]s,
//!   [`model::Model`]), the allocation-free [`model::Predictor`], checkpoints
//!   ([`model::checkpoint`], safetensors, atomic writes) and scores ([`model::metrics`]).
//! - [`train`]: a run — its configuration ([`train::config`]), its data, the one training step
//!   ([`train::step`]), the loop, early stopping, resume, greedy layer-wise pretraining
//!   ([`train::pretrain`]), diagnostics ([`train::diagnostics`]) and progress
//!   ([`train::progress`]).
//! - [`bench`](mod@bench): the `bench-train` throughput benchmark.
//! - [`import`]: networks trained elsewhere: a PyTorch `nn.Sequential` state dict, an ONNX graph,
//!   a TensorFlow Lite model (float32, or fully int8 kept as TFLite quantized it).
//! - [`export`]: lowering to device layers (batch norm folded, dropout dropped), the device
//!   model file, and the proof that it computes what the trained network computes.
//! - `device` (feature `device`): the host side of the link to a device (serial port or QEMU's
//!   UART), and the host-versus-device evaluation.
//! - `plot` (feature `plot`): PNG charts of runs; `lab` (feature `lab`): the lecture's
//!   experiments.
//!
//! Features: `cli` (default) is everything the `microdnn` binary needs: `progress` (indicatif
//! bars), `plot` (plotters), `lab`, `device` (serialport) and clap. A program that embeds the
//! trainer or the exporter uses `default-features = false` and builds none of them.
//!
//! Loading a trained model for export or inference:
//! ```no_run
//! let model = microdnn_host::model::checkpoint::load_model("runs/digits".as_ref()).unwrap();
//! let logits = model.logits(&[0.0; 64], 1); // raw inputs: the transform is applied
//! println!("class {}", microdnn_host::model::argmax(&logits));
//! ```
#![deny(missing_docs)]

pub mod bench;
pub mod data;
#[cfg(feature = "device")]
pub mod device;
pub mod export;
pub mod import;
#[cfg(feature = "lab")]
pub mod lab;
pub mod model;
pub mod nn;
#[cfg(feature = "plot")]
pub mod plot;
pub mod random;
pub mod train;

pub use data::{Dataset, InputTransform};
pub use model::checkpoint::{load_model, save_model};
pub use model::{BatchNorm1d, Layer, Linear, Model, Predictor, Sequential};

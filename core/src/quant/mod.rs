//! int8 inference byte-exact with TensorFlow Lite Micro.
//!
//! TFLite's [quantization spec](https://ai.google.dev/edge/litert/models/quantization_spec):
//! a tensor holds `q` meaning `scale * (q - zero_point)` ([`QuantParams`]); weights are
//! symmetric int8 with one scale per output channel (zero point 0), biases int32 with scale
//! `input_scale * weight_scale`, and every real rescaling factor is a fixed-point `Q0.31`
//! multiplier with a power-of-two shift ([`quantize_multiplier`], [`QuantizedMultiplier`])
//! applied with gemmlowp's rounding primitives ([`fixed`]).
//!
//! | TFLite operator (int8) | here |
//! |---|---|
//! | `FULLY_CONNECTED` per-channel / per-tensor, fused `NONE`/`RELU`/`RELU_N1_TO_1`/`RELU6` | [`QDense`], [`kernel`], [`Requantize`], [`FusedActivation`] |
//! | `RELU`, `RELU6`, `LEAKY_RELU` | [`QRelu`], [`QRelu6`], [`QLeakyRelu`] |
//! | `LOGISTIC`, `TANH` (gemmlowp fixed point, no lookup table) | [`QLogistic`], [`QTanh`] |
//! | `SOFTMAX` (gemmlowp `exp_on_negative_values`, output 1/256, -128) | [`QSoftmax`] |
//! | `QUANTIZE`, `DEQUANTIZE` | [`QuantParams::quantize`], [`QuantParams::dequantize`] |
//!
//! The parameters are derived from the float scales by the same arithmetic as TFLite Micro's
//! `Prepare` functions (including where TFLite rounds a product to `f32` first), so the host,
//! the device and TFLite Micro produce the same bytes. `core/tests/tflm.rs` compares every
//! output byte with TFLite Micro's own interpreter on models built by TensorFlow's converter
//! (`core/tests/fixtures/tflm/`, made by the committed `make_fixtures.py`).
//!
//! Matched sources: tflite-micro at commit `90b983c2b3f1480642e040bbd2ddb37b998f3424`
//! (`tensorflow/lite/micro/kernels/{fully_connected,activations,leaky_relu,logistic,tanh,
//! softmax}_common.cc`, `kernels/internal/{common.cc,quantization_util.cc}`,
//! `reference/integer_ops/{fully_connected,logistic,tanh}.h`, `reference/{softmax,
//! leaky_relu}.h`) with gemmlowp's `fixedpoint/fixedpoint.h`, in TFLite's default
//! double-rounding build (`TFLITE_SINGLE_ROUNDING` off, as in CMSIS-NN's default); fixtures
//! from the `tflite-micro` Python package `0.dev20261023182759` and TensorFlow 2.21.0. That
//! build computes the per-tensor `FULLY_CONNECTED`, `RELU` and `LEAKY_RELU` multipliers in
//! double where the August source rounds to `f32` first; this module follows the build (the
//! fixtures tell the two apart, see `core/tests/fixtures/tflm/README.md`).
//!
//! # Kernels and layout
//! [`kernel::dense_reference`] is TFLite Micro's loop, over row-major weights. The fast
//! [`kernel::dense`] (used by [`QDense::forward`]) reads weights packed in blocks of four rows
//! and groups of four columns (one 32-bit word per row and group) and folds the input zero
//! point into a precomputed kernel bias; integer sums are exact, so it is equal to the
//! reference byte for byte (property-tested). The layout is chosen for a Cortex-M4 `SMLAD`
//! kernel: one aligned word load per row and group, `SXTB16` and `SXTB16 ROR #8` applied
//! alike to the weight word and the input word pair bytes (0, 2) and (1, 3), so the device never
//! reorders weights.
//!
//! Everything here is `no_std`, allocation-free and total: no input makes it panic (where
//! TFLite's C++ has undefined behaviour, such as signed overflow, it wraps or clamps, as
//! documented in [`fixed`]).

pub mod activation;
pub mod dense;
mod error;
pub mod fixed;
pub mod kernel;
pub mod network;
mod params;

pub use activation::{
    FixedPointInput, QActivation, QLeakyRelu, QLogistic, QRelu, QRelu6, QSoftmax, QTanh,
};
pub use dense::{QDense, QLayer};
pub use error::QuantError;
pub use params::{
    per_channel_multipliers, per_tensor_multiplier, quantize_multiplier, FusedActivation,
    QuantParams, QuantizedMultiplier, Requantize,
};

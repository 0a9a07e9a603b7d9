//! The demo network, with weights in flash: [`Demo`] is 784-128-64-10 (ReLU, ReLU, softmax), or
//! 64-32-16-10 on boards with less than 512 KiB of flash (the micro:bit's Cortex-M0).
//!
//! `build.rs` draws deterministic Glorot-uniform weights with `microdnn::Rng`, packs them with
//! `microdnn::kernel::pack`, and embeds them with `include_bytes!` in 16-byte-aligned statics;
//! [`network`] views those bytes as `&[[f32; I]; O]` in place (nothing is copied to RAM). It also
//! embeds a fixed input and the host's output for it ([`EXPECTED_OUTPUT_BITS`]), computed with
//! microdnn's own `forward`, so the device can check bit-identical results.

use microdnn::{Dense, Layer};

include!("model_shape.rs");

/// The demo network of this board.
#[cfg(not(microdnn_small_demo))]
pub type Demo<'a> = Mnist<'a>;
/// Activation buffers of [`Demo`].
#[cfg(not(microdnn_small_demo))]
pub type DemoBuffers = MnistBuffers;
/// `(inputs, outputs)` of the demo network's layers.
#[cfg(not(microdnn_small_demo))]
pub const SHAPES: [(usize, usize); 3] = MNIST_SHAPES;

/// The demo network of this board.
#[cfg(microdnn_small_demo)]
pub type Demo<'a> = Small<'a>;
/// Activation buffers of [`Demo`].
#[cfg(microdnn_small_demo)]
pub type DemoBuffers = SmallBuffers;
/// `(inputs, outputs)` of the demo network's layers.
#[cfg(microdnn_small_demo)]
pub const SHAPES: [(usize, usize); 3] = SMALL_SHAPES;

/// Inputs of the demo network.
pub const INPUTS: usize = SHAPES[0].0;

/// Bytes with 16-byte alignment, so they can be viewed as `f32` arrays in place.
#[repr(C, align(16))]
pub struct Aligned<T: ?Sized>(pub T);

/// The generated weights, biases, input and expected output.
pub mod data {
    use super::Aligned;
    include!(concat!(env!("OUT_DIR"), "/model_data.rs"));
}
pub use data::{
    EXPECTED_CLASS, EXPECTED_MC_OUTPUT_BITS, EXPECTED_OUTPUT_BITS, EXPECTED_RNG_U32, INPUT,
};

/// Views little-endian `f32` bytes (this target is little-endian) as a weight matrix.
///
/// The statics are 16-byte aligned and their lengths are fixed by `build.rs` to exactly
/// `I * O * 4` bytes, so the cast cannot fail; a mismatch would be a build bug and panics.
fn weights<const I: usize, const O: usize>(bytes: &'static [u8]) -> &'static [[f32; I]; O] {
    bytemuck::from_bytes(bytes)
}

/// The demo network over the packed weights in flash.
pub fn network() -> Demo<'static> {
    Demo {
        fc1: Layer::new(
            Dense::new(weights(&data::FC1_PACKED.0), &data::FC1_BIAS),
            ACTIVATIONS[0],
        ),
        fc2: Layer::new(
            Dense::new(weights(&data::FC2_PACKED.0), &data::FC2_BIAS),
            ACTIVATIONS[1],
        ),
        fc3: Layer::new(
            Dense::new(weights(&data::FC3_PACKED.0), &data::FC3_BIAS),
            ACTIVATIONS[2],
        ),
    }
}

/// Row-major weights of `fc1`, `fc2`, `fc3` (`rows[o * inputs + c]`), for the naive baseline
/// `microdnn::kernel::dense_reference`; `None` on boards whose flash cannot hold a second copy
/// of the weights (then only the benchmark's fast kernel is measured).
pub fn row_major_weights() -> Option<[&'static [f32]; 3]> {
    #[cfg(microdnn_row_major_copy)]
    {
        let floats = |bytes: &'static [u8]| -> &'static [f32] { bytemuck::cast_slice(bytes) };
        Some([
            floats(&data::FC1_ROWS.0),
            floats(&data::FC2_ROWS.0),
            floats(&data::FC3_ROWS.0),
        ])
    }
    #[cfg(not(microdnn_row_major_copy))]
    None
}

/// Biases of `fc1`, `fc2`, `fc3`.
pub fn biases() -> [&'static [f32]; 3] {
    [&data::FC1_BIAS, &data::FC2_BIAS, &data::FC3_BIAS]
}

/// The int8 twin of the demo network, where the board's flash holds it beside the f32 one
/// (cfg `microdnn_int8_demo`, decided by `build.rs`): the same shapes, random int8 weights with
/// per-channel scales, int32 biases, ReLU fused into `fc1` and `fc2`, softmax after `fc3`, and
/// the output TFLite Micro's reference loop computes for a fixed input ([`qdata`], made by
/// `build.rs` with microdnn's own `quant::kernel::dense_reference`).
#[cfg(microdnn_int8_demo)]
pub mod int8 {
    use super::Aligned;
    use microdnn::quant::{QActivation, QDense, QLayer, QSoftmax, QuantParams, Requantize};

    /// The int8 demo network of this board.
    #[cfg(not(microdnn_small_demo))]
    pub type QDemo<'a> = super::QMnist<'a>;
    /// Activation buffers of [`QDemo`].
    #[cfg(not(microdnn_small_demo))]
    pub type QDemoBuffers = super::QMnistBuffers;
    /// The int8 demo network of this board.
    #[cfg(microdnn_small_demo)]
    pub type QDemo<'a> = super::QSmall<'a>;
    /// Activation buffers of [`QDemo`].
    #[cfg(microdnn_small_demo)]
    pub type QDemoBuffers = super::QSmallBuffers;

    /// The generated int8 parameters, input and expected output.
    pub mod qdata {
        use super::Aligned;
        include!(concat!(env!("OUT_DIR"), "/qmodel_data.rs"));
    }
    pub use qdata::{QEXPECTED_OUTPUT, QINPUT};

    /// One layer over the generated statics. They are consistent by construction (`build.rs`
    /// made them with the same checks), so a failure is a build bug and panics.
    #[allow(clippy::too_many_arguments)]
    fn layer<const I: usize, const O: usize>(
        packed: &'static [u8],
        bias: &'static [i32; O],
        kernel_bias: &'static [i32; O],
        multipliers: &'static [i32; O],
        shifts: &'static [i32; O],
        (input_zp, output_zp, lo, hi): (i8, i8, i8, i8),
        activation: QActivation,
    ) -> QLayer<'static, I, O> {
        let weights: &'static [[i8; I]; O] = bytemuck::from_bytes(packed);
        let Ok(rq) = Requantize::new(multipliers, shifts, output_zp, lo, hi) else {
            defmt::panic!("int8 demo: bad requantization")
        };
        match QDense::new(weights, bias, kernel_bias, input_zp, rq) {
            Ok(dense) => QLayer::new(dense, activation),
            Err(e) => defmt::panic!("int8 demo layer: {}", e),
        }
    }

    /// The int8 demo network over the packed weights in flash.
    pub fn network() -> QDemo<'static> {
        use qdata::*;
        let softmax = QuantParams::new(f32::from_bits(QFC3_OUTPUT.0), QFC3_OUTPUT.1)
            .and_then(|input| QSoftmax::prepare(1.0, input, QuantParams::new(1.0 / 256.0, -128)?));
        let Ok(softmax) = softmax else {
            defmt::panic!("int8 demo: bad softmax quantization")
        };
        QDemo {
            fc1: layer(
                &QFC1_PACKED.0,
                &QFC1_BIAS,
                &QFC1_KERNEL_BIAS,
                &QFC1_MULTIPLIERS,
                &QFC1_SHIFTS,
                QFC1_ZERO_POINTS,
                QActivation::Identity,
            ),
            fc2: layer(
                &QFC2_PACKED.0,
                &QFC2_BIAS,
                &QFC2_KERNEL_BIAS,
                &QFC2_MULTIPLIERS,
                &QFC2_SHIFTS,
                QFC2_ZERO_POINTS,
                QActivation::Identity,
            ),
            fc3: layer(
                &QFC3_PACKED.0,
                &QFC3_BIAS,
                &QFC3_KERNEL_BIAS,
                &QFC3_MULTIPLIERS,
                &QFC3_SHIFTS,
                QFC3_ZERO_POINTS,
                QActivation::Softmax(softmax),
            ),
        }
    }

    /// Row-major int8 weights of `fc1`, `fc2`, `fc3` and their biases, for TFLite Micro's
    /// reference loop (`quant::kernel::dense_reference`), the benchmark's baseline.
    pub fn row_major() -> [(&'static [i8], &'static [i32]); 3] {
        use qdata::*;
        let bytes = |b: &'static [u8]| -> &'static [i8] { bytemuck::cast_slice(b) };
        [
            (bytes(&QFC1_ROWS.0), &QFC1_BIAS),
            (bytes(&QFC2_ROWS.0), &QFC2_BIAS),
            (bytes(&QFC3_ROWS.0), &QFC3_BIAS),
        ]
    }
}

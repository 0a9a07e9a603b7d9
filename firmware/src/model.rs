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

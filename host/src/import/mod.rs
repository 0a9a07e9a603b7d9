//! Networks trained elsewhere, read into a [`crate::model::Sequential`] for export.
//!
//! - [`pytorch`]: a PyTorch `nn.Sequential` state dict (safetensors) and its architecture text.
//! - [`onnx`]: an ONNX model (`torch.onnx.export`, tf2onnx): a chain of `Gemm`/`MatMul` layers,
//!   batch norms and activations.
//! - [`tflite`]: a TensorFlow Lite flatbuffer (Keras through `tf.lite.TFLiteConverter`): float32
//!   models to a [`crate::model::Sequential`], fully int8 models straight to an int8 device file
//!   ([`tflite::Graph::to_int8`]).
//!
//! Each produces the same [`crate::model::Sequential`], so [`crate::export`] folds, packs and
//! checks it unchanged.

pub mod onnx;
pub mod pytorch;
pub mod tflite;

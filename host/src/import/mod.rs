//! Networks trained elsewhere, read into a [`crate::model::Model`] for export.
//!
//! - [`pytorch`]: a PyTorch `nn.Sequential` state dict (safetensors) and its architecture text.
//!
//! Other formats (ONNX, TFLite) belong beside it, one module each, producing the same
//! [`crate::model::Sequential`] so [`crate::export`] handles them unchanged.

pub mod pytorch;

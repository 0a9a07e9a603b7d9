//! Export: a trained [`Model`] (or a PyTorch `nn.Sequential` state dict) → a device model file.
//!
//! Lowering turns the training-side layer list into the device's dense layers:
//! - `Linear` starts a device layer (activation identity until one follows);
//! - `BatchNorm1d` right after a `Linear` is folded into it (`W' = diag(s) W`, `b' = s b + t`);
//!   after an activation it is folded into the *next* `Linear` (`W' = W diag(s)`,
//!   `b' = b + W t`); before any `Linear` it is folded into the input transform;
//! - an activation sets the current layer's activation;
//! - `Dropout` is dropped (inverted dropout needs no rescaling); its rate is kept on the
//!   preceding layer for Monte-Carlo passes on the device;
//! - the last layer gets a softmax when [`OutputActivation::Softmax`] is asked for and the
//!   network ends in logits.
//!
//! The folding uses [`microdnn::batch_norm`]'s own functions, the packing
//! [`microdnn::kernel::pack`] and the file [`microdnn::model::encode`]: the host writes through
//! the same definitions the device reads.
//!
//! [`check_equivalence`] shows that the exported file computes what the trained network
//! computes: it evaluates the *unfolded* network in f64 and the exported file with the core's
//! own f32 arithmetic, and checks every output against an error bound propagated through the
//! layers from the kernel's documented rounding behaviour.
//!
//! Files: `lower.rs` (the rules above, with the error each fold adds), `equivalence.rs` (the
//! check), `aligned.rs` (aligned bytes for reading a file in place), and here the encoding, the
//! summary and the atomic write. A further transformation of the lowered layers (int8
//! post-training quantization, say) belongs in a module of its own between [`lower`] and
//! [`encode`], with its error term added to the bound in `equivalence.rs`; other source formats
//! come in through [`crate::import`].

use std::path::Path;

use microdnn::model::{EncodeLayer, ModelSpec, ModelView};
use microdnn::{kernel, Activation};
use serde::Serialize;

mod aligned;
mod equivalence;
mod lower;

pub use aligned::{AlignedModel, ReadModelError, MAX_MODEL_FILE_BYTES};
pub use equivalence::{check_equivalence, reference_forward, Equivalence};
pub use lower::lower;

use crate::data::InputTransform;
use crate::model::{Model, Sequential};

/// What the exported network's last layer outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum OutputActivation {
    /// Class probabilities (adds a softmax unless the network already ends in an activation).
    Softmax,
    /// Whatever the network computes (logits for a classifier).
    Identity,
}

/// Errors of lowering or writing a model.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The layer sequence cannot be expressed as device layers.
    #[error("layer {layer} ({what}): {why}")]
    Unsupported {
        /// Index in the Sequential.
        layer: usize,
        /// The layer's kind.
        what: &'static str,
        /// Why it cannot be exported.
        why: String,
    },
    /// Batch-norm statistics that cannot be folded.
    #[error("layer {layer} (BatchNorm1d): {source}")]
    BatchNorm {
        /// Index in the Sequential.
        layer: usize,
        /// The core's error.
        source: microdnn::Error,
    },
    /// A shape the core rejected.
    #[error("{0}")]
    Shape(microdnn::Error),
    /// The core's encoder rejected the network.
    #[error("encoding the device model: {0}")]
    Encode(#[from] microdnn::ModelError),
    /// Writing a file.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// One device layer in row-major form (before packing).
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceLayer {
    /// Inputs.
    pub inputs: usize,
    /// Outputs.
    pub outputs: usize,
    /// Row-major weights `[outputs][inputs]`.
    pub rows: Vec<f32>,
    /// Bias.
    pub bias: Vec<f32>,
    /// Activation after the dense part.
    pub activation: Activation,
    /// Dropout rate on the output (kept for Monte-Carlo passes).
    pub dropout_rate: f32,
    /// Bound on the relative rounding error of each weight introduced by folding (0 if the
    /// weights were copied unchanged).
    pub weight_rel_err: f64,
    /// Bound on the absolute rounding error of each bias introduced by folding.
    pub bias_abs_err: Vec<f64>,
}

/// A network lowered to device layers, with the (possibly adjusted) input transform.
#[derive(Clone, Debug, PartialEq)]
pub struct Lowered {
    /// Device layers.
    pub layers: Vec<DeviceLayer>,
    /// Input transform applied on the device before the first layer.
    pub transform: InputTransform,
    /// Bound on the absolute error of each transformed input introduced by folding a batch
    /// norm into the transform (0 without one).
    pub input_abs_err: Vec<f64>,
}

/// Unit roundoff of f32.
const U: f64 = f32::EPSILON as f64 / 2.0;

/// Encodes lowered layers as a device model file (weights packed for the kernel).
pub fn encode(lowered: &Lowered) -> Result<Vec<u8>, ExportError> {
    let packed: Vec<Vec<f32>> = lowered
        .layers
        .iter()
        .map(|l| {
            let mut p = vec![0.0; l.rows.len()];
            kernel::pack(&l.rows, l.inputs, l.outputs, &mut p).map(|_| p)
        })
        .collect::<Result<_, _>>()
        .map_err(ExportError::Shape)?;
    let enc: Vec<EncodeLayer<'_>> = lowered
        .layers
        .iter()
        .zip(&packed)
        .map(|(l, p)| EncodeLayer {
            inputs: l.inputs,
            outputs: l.outputs,
            activation: l.activation,
            dropout_rate: l.dropout_rate,
            packed_weights: p,
            bias: &l.bias,
        })
        .collect();
    let identity = lowered.transform.scale.iter().all(|&s| s == 1.0)
        && lowered.transform.offset.iter().all(|&o| o == 0.0);
    let spec = ModelSpec {
        inputs: lowered.layers[0].inputs,
        layers: &enc,
        input_transform: (!identity)
            .then_some((&lowered.transform.scale[..], &lowered.transform.offset[..])),
    };
    let mut out = vec![0u8; microdnn::model::encoded_len(&spec)];
    let n = microdnn::model::encode(&spec, &mut out)?;
    out.truncate(n);
    Ok(out)
}

/// A summary of an exported model, written beside it as `model.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Layers: inputs, outputs, activation, dropout rate.
    pub layers: Vec<(usize, usize, String, f32)>,
    /// Parameters.
    pub params: usize,
    /// Multiply-accumulates per inference.
    pub macs: usize,
    /// Bytes of the model file (what it occupies in flash).
    pub file_bytes: usize,
    /// Bytes of activation buffers a `network!` type needs (one per layer output).
    pub ram_bytes: usize,
    /// Bytes of the input vector.
    pub input_bytes: usize,
}

/// Summarises a validated model file.
pub fn summarize(view: &ModelView<'_>) -> Summary {
    Summary {
        layers: view
            .layers()
            .map(|l| {
                (
                    l.inputs,
                    l.outputs,
                    l.activation.to_string(),
                    l.dropout_rate,
                )
            })
            .collect(),
        params: view.params(),
        macs: view.macs(),
        file_bytes: view.bytes().len(),
        ram_bytes: view.layers().map(|l| l.outputs * 4).sum(),
        input_bytes: view.inputs() * 4,
    }
}

/// Writes `bytes` to `path` atomically (temporary file in the same folder, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    crate::model::checkpoint::atomic_write(path, bytes).map_err(|e| ExportError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// Lowers a network and checks its sizes for export; convenience for [`Sequential`]s built by
/// hand (tests, PyTorch imports) with an identity transform.
pub fn model_from_sequential(net: Sequential, classes: usize) -> Model {
    let f = net.in_features();
    Model {
        net,
        transform: InputTransform::identity(f),
        classes,
    }
}

//! Errors of the model format.

/// Which part of a model file an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Tensor {
    /// The file as a whole.
    File,
    /// The header.
    Header,
    /// The layer table.
    LayerTable,
    /// The input transform (scales and offsets).
    InputTransform,
    /// A layer's weights.
    Weights,
    /// A layer's bias.
    Bias,
    /// A layer's per-channel quantisation scales.
    Scales,
    /// A layer's activation parameter (leaky-ReLU slope, int8 softmax's beta).
    ActivationParameter,
    /// An int8 layer's kernel bias (`bias - input_zero_point * row sums`).
    KernelBias,
    /// An int8 layer's output multipliers and shifts.
    Requantization,
}

impl core::fmt::Display for Tensor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Tensor::File => "file",
            Tensor::Header => "header",
            Tensor::LayerTable => "layer table",
            Tensor::InputTransform => "input transform",
            Tensor::Weights => "weights",
            Tensor::Bias => "bias",
            Tensor::Scales => "scales",
            Tensor::ActivationParameter => "activation parameter",
            Tensor::KernelBias => "kernel bias",
            Tensor::Requantization => "multipliers and shifts",
        })
    }
}

/// Why a byte slice is not a usable model. Every malformation has its own variant; none panics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ModelError {
    /// The file is shorter than its header or its declared length.
    Truncated {
        /// Bytes required.
        needed: usize,
        /// Bytes present.
        found: usize,
    },
    /// More bytes than the declared file length.
    TrailingBytes {
        /// The declared length.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// The first four bytes are not `uDNN`: not a model file.
    BadMagic,
    /// A major version this reader does not know.
    UnsupportedVersion {
        /// Major version in the file.
        major: u16,
        /// Minor version in the file.
        minor: u16,
    },
    /// The file was written big-endian (or this target is big-endian): cannot be read in place.
    WrongEndianness,
    /// The CRC-32 does not match the contents: the file is corrupted.
    BadChecksum {
        /// CRC stored in the header.
        stored: u32,
        /// CRC of the contents.
        computed: u32,
    },
    /// A header field has an impossible value.
    BadHeader {
        /// Which field.
        field: &'static str,
    },
    /// A tensor or table lies (partly) outside the file.
    OutOfRange {
        /// The layer, if the tensor belongs to one.
        layer: Option<u16>,
        /// Which tensor.
        tensor: Tensor,
    },
    /// A tensor (or the file in memory) is not aligned for reading in place.
    Misaligned {
        /// The layer, if the tensor belongs to one.
        layer: Option<u16>,
        /// Which tensor.
        tensor: Tensor,
    },
    /// A tensor's stored length does not match the layer's shape.
    TensorLength {
        /// The layer, if the tensor belongs to one.
        layer: Option<u16>,
        /// Which tensor.
        tensor: Tensor,
        /// Bytes the shape requires.
        expected: usize,
        /// Bytes stored.
        found: usize,
    },
    /// A weight, bias, transform value or activation parameter is NaN or infinite.
    NonFinite {
        /// The layer, if the tensor belongs to one.
        layer: Option<u16>,
        /// Which tensor.
        tensor: Tensor,
        /// Index of the first non-finite value.
        index: u32,
    },
    /// A layer kind this reader does not know.
    UnknownLayerKind {
        /// The layer.
        layer: u16,
        /// Its kind code.
        kind: u8,
    },
    /// An activation code this reader does not know.
    UnknownActivation {
        /// The layer.
        layer: u16,
        /// Its activation code.
        code: u8,
    },
    /// A weight type this reader cannot run: an unknown code, or int8 weights in a version-1.0
    /// file (int8 layers need the fields of version 1.1).
    UnsupportedWeightType {
        /// The layer.
        layer: u16,
        /// Its weight-type code.
        code: u8,
        /// Whether the code is a known type (int8, in a file too old to describe it) rather
        /// than garbage.
        known: bool,
    },
    /// A layer's weight type differs from the first layer's (a file is all f32 or all int8), or
    /// from the network type compiled in (`network!` is f32, `qnetwork!` int8).
    WeightType {
        /// The layer.
        layer: u16,
        /// The weight type required (`"f32"` or `"int8"`).
        expected: &'static str,
        /// The layer's weight type.
        found: &'static str,
    },
    /// An int8 layer's quantization is invalid: a scale that is zero, negative or not finite, a
    /// multiplier TFLite's arithmetic cannot apply, an operator's fixed output quantization, a
    /// kernel bias that does not match the weights... (the [`QuantError`] says which).
    ///
    /// [`QuantError`]: crate::quant::QuantError
    Quant {
        /// The layer.
        layer: u16,
        /// What is wrong.
        error: crate::quant::QuantError,
    },
    /// A stored int8 output multiplier or shift differs from the one TFLite computes from the
    /// layer's scales (`QuantizeMultiplier(input_scale * filter_scale / output_scale)`).
    StoredMultiplier {
        /// The layer.
        layer: u16,
        /// The channel (0 for a per-tensor layer).
        channel: usize,
    },
    /// Two quantizations that must be equal are not: a layer's input and the previous layer's
    /// output, or an int8 layer without an activation operator whose activation output differs
    /// from its dense output.
    QuantMismatch {
        /// The layer.
        layer: u16,
        /// Which ones.
        what: &'static str,
    },
    /// An int8 layer's fused-activation code this reader does not know.
    UnknownFusedActivation {
        /// The layer.
        layer: u16,
        /// The code.
        code: u8,
    },
    /// A weight layout this reader does not know.
    UnsupportedLayout {
        /// The layer.
        layer: u16,
        /// Its layout code.
        code: u8,
    },
    /// A dropout rate outside `[0, 1)`.
    BadDropoutRate {
        /// The layer.
        layer: u16,
    },
    /// A layer with zero inputs or outputs.
    EmptyLayer {
        /// The layer.
        layer: u16,
    },
    /// A layer's inputs differ from the previous layer's outputs (or the network's inputs).
    ShapeChain {
        /// The layer.
        layer: u16,
        /// Width coming in.
        expected: usize,
        /// The layer's declared inputs.
        found: usize,
    },
    /// The file has a different number of layers than the network type compiled in.
    LayerCount {
        /// Layers the network type has.
        expected: usize,
        /// Layers in the file.
        found: usize,
    },
    /// A layer's shape differs from the network type compiled in.
    LayerShape {
        /// The layer.
        layer: u16,
        /// `"inputs"` or `"outputs"`.
        dimension: &'static str,
        /// The compiled-in width.
        expected: usize,
        /// The width in the file.
        found: usize,
    },
    /// A layer index past the model's last layer ([`ModelView::dense_layer`]).
    ///
    /// [`ModelView::dense_layer`]: super::ModelView::dense_layer
    NoSuchLayer {
        /// The index asked for.
        layer: usize,
        /// Layers in the file.
        count: usize,
    },
    /// A tensor (or the whole file) is larger than the format's 32-bit offsets and lengths can
    /// describe: the encoder cannot write it.
    TooLarge {
        /// The layer, if the tensor belongs to one.
        layer: Option<u16>,
        /// Which tensor.
        tensor: Tensor,
    },
    /// Two parts of the file share bytes: a tensor overlaps the header, the layer table or
    /// another tensor.
    Overlap {
        /// The layer of the part found to overlap, if it belongs to one.
        layer: Option<u16>,
        /// The part found to overlap.
        tensor: Tensor,
        /// The layer of the part it overlaps, if that belongs to one.
        other_layer: Option<u16>,
        /// The part it overlaps.
        other: Tensor,
    },
    /// A field that this version reserves, or fixes to zero, holds something else: bytes the
    /// format marks "reserved, zero" (checked in files of this reader's minor version or
    /// older; later minors may use them), per-channel scales on f32 weights, or an activation
    /// parameter on an activation that has none.
    Reserved {
        /// The layer, if the field is in a layer record.
        layer: Option<u16>,
        /// Which field.
        field: &'static str,
    },
}

struct LayerName(Option<u16>);

impl core::fmt::Display for LayerName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(l) => write!(f, "layer {l} "),
            None => Ok(()),
        }
    }
}

impl core::fmt::Display for ModelError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use ModelError as E;
        match *self {
            E::Truncated { needed, found } => {
                write!(f, "truncated model: {found} bytes, need {needed}")
            }
            E::TrailingBytes { expected, found } => write!(
                f,
                "model file declares {expected} bytes but {found} were given"
            ),
            E::BadMagic => f.write_str("not a microdnn model (magic is not \"uDNN\")"),
            E::UnsupportedVersion { major, minor } => write!(
                f,
                "model format version {major}.{minor} is newer than this reader ({}.x)",
                super::VERSION_MAJOR
            ),
            E::WrongEndianness => f.write_str("model byte order differs from this target's"),
            E::BadChecksum { stored, computed } => write!(
                f,
                "model is corrupted: CRC-32 is {computed:#010x}, header says {stored:#010x}"
            ),
            E::BadHeader { field } => write!(f, "model header: invalid {field}"),
            E::OutOfRange { layer, tensor } => {
                write!(f, "{}{tensor} lies outside the file", LayerName(layer))
            }
            E::Misaligned { layer, tensor } => write!(
                f,
                "{}{tensor} is not aligned for reading in place",
                LayerName(layer)
            ),
            E::TensorLength {
                layer,
                tensor,
                expected,
                found,
            } => write!(
                f,
                "{}{tensor} has {found} bytes, its shape needs {expected}",
                LayerName(layer)
            ),
            E::NonFinite {
                layer,
                tensor,
                index,
            } => write!(
                f,
                "{}{tensor}[{index}] is NaN or infinite",
                LayerName(layer)
            ),
            E::UnknownLayerKind { layer, kind } => {
                write!(f, "layer {layer}: unknown layer kind {kind}")
            }
            E::UnknownActivation { layer, code } => {
                write!(f, "layer {layer}: unknown activation code {code}")
            }
            E::UnsupportedWeightType { layer, code, known } => write!(
                f,
                "layer {layer}: weight type {code} {}",
                if known {
                    "(int8) needs format version 1.1 or later (the file is 1.0)"
                } else {
                    "is unknown"
                }
            ),
            E::WeightType {
                layer,
                expected,
                found,
            } => write!(
                f,
                "layer {layer} has {found} weights where {expected} weights are required"
            ),
            E::Quant { layer, error } => write!(f, "layer {layer}: {error}"),
            E::StoredMultiplier { layer, channel } => write!(
                f,
                "layer {layer}: the stored multiplier or shift of channel {channel} differs from \
                 the one computed from the scales"
            ),
            E::QuantMismatch { layer, what } => write!(f, "layer {layer}: {what}"),
            E::UnknownFusedActivation { layer, code } => {
                write!(f, "layer {layer}: unknown fused activation code {code}")
            }
            E::UnsupportedLayout { layer, code } => {
                write!(f, "layer {layer}: unknown weight layout {code}")
            }
            E::BadDropoutRate { layer } => {
                write!(f, "layer {layer}: dropout rate must be in [0, 1)")
            }
            E::EmptyLayer { layer } => write!(f, "layer {layer} has zero inputs or outputs"),
            E::NoSuchLayer { layer, count } => {
                write!(
                    f,
                    "layer {layer} does not exist: the model has {count} layers"
                )
            }
            E::TooLarge { layer, tensor } => write!(
                f,
                "{}{tensor} is too large for the model format (sizes are 32-bit: under 4 GiB)",
                LayerName(layer)
            ),
            E::Overlap {
                layer,
                tensor,
                other_layer,
                other,
            } => write!(
                f,
                "{}{tensor} overlaps {}{other}",
                LayerName(layer),
                LayerName(other_layer)
            ),
            E::Reserved { layer, field } => {
                write!(f, "{}{field} must be zero", LayerName(layer))
            }
            E::ShapeChain {
                layer,
                expected,
                found,
            } => write!(
                f,
                "layer {layer} takes {found} inputs but receives {expected}"
            ),
            E::LayerCount { expected, found } => write!(
                f,
                "model has {found} layers, the network type compiled in has {expected}"
            ),
            E::LayerShape {
                layer,
                dimension,
                expected,
                found,
            } => write!(
                f,
                "layer {layer} has {found} {dimension}, the network type compiled in has {expected}"
            ),
        }
    }
}

impl core::error::Error for ModelError {}

//! The device model format: a versioned binary file holding a trained network, validated once
//! and then read in place (weights stay in flash; nothing is copied into RAM).
//!
//! The format is defined here and only here: the device reads it through [`ModelView`], the host
//! writes it through [`encode`].
//!
//! # Layout (version 1.1, all integers and floats little-endian)
//!
//! ```text
//! offset  size  header (HEADER_LEN = 64 bytes)
//!      0     4  magic b"uDNN"
//!      4     2  version major (1): a reader rejects a larger major
//!      6     2  version minor (1; f32 models are written as 1.0, int8 models need 1.1):
//!               additions that older readers may ignore
//!      8     4  byte-order mark 0x01020304 (bytes 04 03 02 01 in a little-endian file)
//!     12     4  header length in bytes (64; later minors may grow it)
//!     16     4  file length in bytes
//!     20     4  CRC-32 (IEEE) of the whole file with these four bytes taken as zero
//!     24     2  layer count (>= 1)
//!     26     2  layer record length in bytes (80; 48 in version 1.0; later minors may grow it)
//!     28     4  layer table offset
//!     32     4  network inputs
//!     36     4  network outputs (number of classes for a classifier)
//!     40     4  input transform offset, 0 for none: `inputs` f32 scales then `inputs` f32
//!               offsets; the device computes x' = x * scale + offset before the first layer
//!               (and, in an int8 model, then quantizes x' with the first layer's input
//!               quantization)
//!     44     4  tensor alignment in bytes (16)
//!     48    16  reserved, zero
//!
//! layer record (LAYER_RECORD_LEN = 80 bytes; version 1.0 has the first 48), one per layer
//!      0     1  kind: 1 = dense
//!      1     1  activation: 0 identity, 1 relu, 2 leaky relu, 3 sigmoid, 4 tanh, 5 softmax
//!               (int8: the activation operator after the dense part)
//!      2     1  weight type: 0 = f32, 1 = int8 (per-channel or per-tensor scales; 1.1)
//!      3     1  weight layout: 0 = f32 packed, blocks of 5 rows x 4 lanes (crate::kernel);
//!               1 = int8 packed, blocks of 4 rows x groups of 4 columns (crate::quant::kernel)
//!      4     4  inputs
//!      8     4  outputs
//!     12     4  activation parameter (f32): leaky-ReLU slope; int8 softmax: beta; else 0
//!     16     4  dropout rate on the layer output (f32), used only by Monte-Carlo passes
//!               (f32 layers; 0 for int8)
//!     20     8  weights: offset, length in bytes (f32 or i8 x inputs x outputs)
//!     28     8  bias: offset, length in bytes (f32, or i32 for int8, x outputs)
//!     36     8  int8 filter scales: offset, length (f32 x outputs, or x 1 per-tensor);
//!               (0, 0) for f32 weights
//!     44     4  reserved, zero
//!   version 1.1 (int8 layers; all zero in an f32 layer):
//!     48     8  kernel bias: offset, length (i32 x outputs: bias - input zero point x row sums)
//!     56     8  multipliers and shifts: offset, length (i32 x channels, then i32 x channels;
//!               one channel per filter scale)
//!     64     4  input scale (f32)       76  1  input zero point (i8)
//!     68     4  output scale (f32)      77  1  output zero point (i8), of the dense part
//!     72     4  activation output       78  1  activation output zero point (i8), after the
//!               scale (f32)                    activation operator (= output without one)
//!     79     1  fused activation (int8): 0 none, 1 relu, 2 relu_n1_to_1, 3 relu6
//!
//! tensors: each starts at a multiple of the tensor alignment (16) from the start of the file
//! ```
//!
//! # What a valid file is
//!
//! [`ModelView::new_checked`] accepts a file only if all of this holds, and reports the first
//! violation as a [`ModelError`] naming the field, layer and tensor:
//! - magic, major version, byte-order mark, declared file length (no byte missing or extra),
//!   CRC and tensor alignment as above; 1 to [`MAX_LAYERS`] layers;
//! - the header, the layer table, the input transform and every layer's weights, bias and
//!   scales lie inside the file and no two of them share a byte ([`ModelError::Overlap`]);
//! - each layer: a known kind, activation, weight type and layout; at least one input and one
//!   output; tensor lengths that match its shape; inputs that equal the previous layer's
//!   outputs (the first layer's: the network inputs; the last layer's outputs: the network
//!   outputs); a dropout rate in `[0, 1)`; a finite activation parameter that is zero unless
//!   the activation is leaky ReLU (or an int8 softmax); no scales tensor and no int8 field
//!   (all zero) for f32 weights; every layer of the same weight type
//!   ([`ModelError::WeightType`]);
//! - every weight, bias and transform value is finite;
//! - each int8 layer ([`ModelError::Quant`] and the others naming the layer): scales strictly
//!   positive and finite (input, outputs, every filter scale); one filter scale or one per
//!   output; each stored multiplier and shift equal to what TFLite computes from the scales
//!   ([`ModelError::StoredMultiplier`]); the kernel bias equal to `bias - input_zero_point *
//!   row sums` of the weights; a known fused activation whose clamp exists at the output
//!   scale; an activation operator TFLite Micro can prepare (logistic and softmax outputs
//!   at scale 1/256, zero point -128; tanh at 1/128, 0), and without one, equal dense and
//!   activation output quantizations; the input quantization equal to the previous layer's
//!   output quantization ([`ModelError::QuantMismatch`]); no dropout;
//! - in a file of this reader's minor version or older, the header and records have exactly
//!   the lengths of that version and every "reserved, zero" byte is zero
//!   ([`ModelError::Reserved`]). A later minor version may grow the header and the records and
//!   use reserved bytes for additions that older readers can ignore; anything that changes what
//!   a layer computes (a new weight type, activation or layout code, a scales tensor, an
//!   activation parameter) is refused by readers that do not know it, never ignored.
//!
//! Bytes that no header field, record or tensor covers (alignment padding) are not examined:
//! the CRC protects them like the rest.
//!
//! Reading in place needs the file's first byte aligned to at least 4 in memory (16 for the
//! best speed); [`ModelView::new_checked`] reports [`ModelError::Misaligned`] otherwise. On the
//! device, `include_bytes!` into a `#[repr(C, align(16))]` wrapper gives that.

mod crc32;
mod error;
mod int8;

pub use crc32::{crc32, Crc32};
pub use error::{ModelError, Tensor};
pub use int8::{encode_int8, encoded_len_int8, Int8EncodeLayer, Int8ModelSpec, Int8Params};

use crate::quant::QuantParams;
use crate::Activation;

/// `b"uDNN"`.
pub const MAGIC: [u8; 4] = *b"uDNN";
/// The major version this crate writes and the largest it reads.
pub const VERSION_MAJOR: u16 = 1;
/// The latest minor version this crate reads and writes (1: int8 layers). Files of f32 models
/// are written as version 1.0, which every 1.x reader reads; int8 models need 1.1.
pub const VERSION_MINOR: u16 = 1;
/// The byte-order mark, as written by a little-endian writer.
pub const BYTE_ORDER_MARK: u32 = 0x0102_0304;
/// Length of the version-1.0 header.
pub const HEADER_LEN: usize = 64;
/// Length of a layer record of version 1.1.
pub const LAYER_RECORD_LEN: usize = 80;
/// Length of a layer record of version 1.0 (the first 48 bytes of a 1.1 record).
pub const LAYER_RECORD_LEN_1_0: usize = 48;
/// Alignment of every tensor from the start of the file.
pub const TENSOR_ALIGN: usize = 16;
/// Largest number of layers a file may declare.
pub const MAX_LAYERS: usize = 256;
/// Tensors per layer record: weights, bias, scales, kernel bias, multipliers and shifts.
const PER_LAYER: usize = 5;

/// Byte offsets of the header fields.
#[allow(missing_docs)]
pub mod header {
    pub const MAGIC: usize = 0;
    pub const VERSION_MAJOR: usize = 4;
    pub const VERSION_MINOR: usize = 6;
    pub const BYTE_ORDER: usize = 8;
    pub const HEADER_LEN: usize = 12;
    pub const FILE_LEN: usize = 16;
    pub const CRC: usize = 20;
    pub const LAYER_COUNT: usize = 24;
    pub const RECORD_LEN: usize = 26;
    pub const LAYER_TABLE: usize = 28;
    pub const INPUTS: usize = 32;
    pub const OUTPUTS: usize = 36;
    pub const TRANSFORM: usize = 40;
    pub const ALIGN: usize = 44;
    pub const RESERVED: usize = 48;
}

/// Byte offsets of the layer-record fields.
#[allow(missing_docs)]
pub mod record {
    pub const KIND: usize = 0;
    pub const ACTIVATION: usize = 1;
    pub const DTYPE: usize = 2;
    pub const LAYOUT: usize = 3;
    pub const INPUTS: usize = 4;
    pub const OUTPUTS: usize = 8;
    pub const ACT_PARAM: usize = 12;
    pub const DROPOUT: usize = 16;
    pub const WEIGHTS: usize = 20;
    pub const BIAS: usize = 28;
    pub const SCALES: usize = 36;
    pub const RESERVED: usize = 44;
    pub const KERNEL_BIAS: usize = 48;
    pub const REQUANT: usize = 56;
    pub const INPUT_SCALE: usize = 64;
    pub const OUTPUT_SCALE: usize = 68;
    pub const ACT_OUTPUT_SCALE: usize = 72;
    pub const INPUT_ZP: usize = 76;
    pub const OUTPUT_ZP: usize = 77;
    pub const ACT_OUTPUT_ZP: usize = 78;
    pub const FUSED: usize = 79;
    pub const WEIGHTS_LEN: usize = WEIGHTS + 4;
    pub const BIAS_LEN: usize = BIAS + 4;
    pub const SCALES_LEN: usize = SCALES + 4;
    pub const KERNEL_BIAS_LEN: usize = KERNEL_BIAS + 4;
    pub const REQUANT_LEN: usize = REQUANT + 4;
}

const _: () = assert!(header::ALIGN + 4 == header::RESERVED && header::RESERVED + 16 == HEADER_LEN);
const _: () =
    assert!(record::SCALES + 8 == record::RESERVED && record::RESERVED + 4 == LAYER_RECORD_LEN_1_0);
const _: () = assert!(
    record::KERNEL_BIAS == LAYER_RECORD_LEN_1_0
        && record::REQUANT + 8 == record::INPUT_SCALE
        && record::FUSED + 1 == LAYER_RECORD_LEN
);
const _: () = assert!(HEADER_LEN.is_multiple_of(TENSOR_ALIGN));

/// Whether a file of this minor version is fully specified for this reader (its minor or
/// older): then its header and records have exactly this version's lengths and its reserved
/// bytes are zero. Later minors may use both.
const fn knows_all_of(minor: u16) -> bool {
    minor <= VERSION_MINOR
}

/// The layer record length of a file of this minor version: exactly this in a known minor, at
/// least this in a later one.
const fn record_len_of(minor: u16) -> usize {
    if minor == 0 {
        LAYER_RECORD_LEN_1_0
    } else {
        LAYER_RECORD_LEN
    }
}

/// Layer kind codes.
const KIND_DENSE: u8 = 1;
/// Weight type codes.
const DTYPE_F32: u8 = 0;
const DTYPE_I8: u8 = 1;
/// Weight layout codes.
const LAYOUT_PACKED4: u8 = 0;
const LAYOUT_I8_PACKED4: u8 = 1;

/// The weight type of a model's layers (a file's layers all have the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WeightType {
    /// f32 weights and activations: [`crate::Dense`], [`network!`](macro@crate::network).
    F32,
    /// int8 weights and activations, TFLite's arithmetic: [`crate::quant::QDense`],
    /// [`qnetwork!`](crate::qnetwork).
    Int8,
}

impl WeightType {
    /// `"f32"` or `"int8"`.
    pub const fn name(self) -> &'static str {
        match self {
            WeightType::F32 => "f32",
            WeightType::Int8 => "int8",
        }
    }
}

/// The activation code stored in a layer record.
pub const fn activation_code(a: &Activation) -> (u8, f32) {
    match a {
        Activation::Identity => (0, 0.0),
        Activation::Relu => (1, 0.0),
        Activation::LeakyRelu { slope } => (2, *slope),
        Activation::Sigmoid => (3, 0.0),
        Activation::Tanh => (4, 0.0),
        Activation::Softmax => (5, 0.0),
    }
}

fn activation_from_code(code: u8, param: f32) -> Option<Activation> {
    Some(match code {
        0 => Activation::Identity,
        1 => Activation::Relu,
        2 => Activation::LeakyRelu { slope: param },
        3 => Activation::Sigmoid,
        4 => Activation::Tanh,
        5 => Activation::Softmax,
        _ => return None,
    })
}

// The reading side (everything a hostile file reaches) is linted against unchecked arithmetic,
// truncating casts and panicking indexing: offsets and lengths come from the file.
#[deny(
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing
)]
fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    b.get(off..)?.first_chunk().copied().map(u16::from_le_bytes)
}

#[deny(
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing
)]
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    b.get(off..)?.first_chunk().copied().map(u32::from_le_bytes)
}

/// A layer index as stored in errors: every index reported is below [`MAX_LAYERS`].
fn layer_id(i: usize) -> u16 {
    u16::try_from(i).unwrap_or(u16::MAX)
}

fn f32_at(b: &[u8], off: usize) -> Option<f32> {
    u32_at(b, off).map(f32::from_bits)
}

/// One layer of a validated model.
#[derive(Clone, Copy, Debug)]
pub struct LayerView<'a> {
    /// Inputs of the layer.
    pub inputs: usize,
    /// Outputs of the layer.
    pub outputs: usize,
    /// Activation after the dense part (for an int8 layer, the activation operator; a ReLU fused
    /// into the output clamp is [`Int8Params::fused`]).
    pub activation: Activation,
    /// Monte-Carlo dropout rate on the output (0 for none; always 0 for int8 layers).
    pub dropout_rate: f32,
    /// The weights, biases and (int8) quantization.
    pub params: LayerParams<'a>,
}

/// The parameters of a layer, by weight type.
#[derive(Clone, Copy, Debug)]
pub enum LayerParams<'a> {
    /// f32 weights and bias.
    F32 {
        /// Weights in the packed layout of [`crate::kernel`], `inputs * outputs` values.
        weights: &'a [f32],
        /// Bias, `outputs` values.
        bias: &'a [f32],
    },
    /// int8 weights, int32 biases and TFLite's quantization.
    Int8(Int8Params<'a>),
}

impl LayerView<'_> {
    /// The layer's weight type.
    pub const fn weight_type(&self) -> WeightType {
        match self.params {
            LayerParams::F32 { .. } => WeightType::F32,
            LayerParams::Int8(_) => WeightType::Int8,
        }
    }
}

/// A validated model file, read in place.
///
/// [`ModelView::new_checked`] checks everything once (header, version, byte order, CRC, every
/// layer's kind, type, shape, chaining, offsets, alignment, and that every weight is finite);
/// afterwards no accessor can fail or panic. Modelled on smoltcp's `Packet::new_checked`.
///
/// ```
/// # use microdnn::model::{self, EncodeLayer, ModelSpec, ModelView};
/// # use microdnn::Activation;
/// # let w = [0.5f32; 6]; let b = [0.0f32; 2];
/// # let spec = ModelSpec { inputs: 3, layers: &[EncodeLayer { inputs: 3, outputs: 2,
/// #   activation: Activation::Softmax, dropout_rate: 0.0, packed_weights: &w, bias: &b }],
/// #   input_transform: None };
/// # #[repr(C, align(16))] struct Buf([u8; 256]);
/// # let mut buf = Buf([0; 256]);
/// # let n = model::encode(&spec, &mut buf.0).unwrap();
/// # let bytes = &buf.0[..n];
/// let view = ModelView::new_checked(bytes)?;
/// assert_eq!((view.inputs(), view.outputs(), view.layer_count()), (3, 2, 1));
/// # Ok::<(), microdnn::model::ModelError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ModelView<'a> {
    bytes: &'a [u8],
    layers: usize,
    table: usize,
    record_len: usize,
    header_len: usize,
    inputs: usize,
    outputs: usize,
    transform: Option<(&'a [f32], &'a [f32])>,
    minor: u16,
}

#[deny(
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing
)]
impl<'a> ModelView<'a> {
    /// Validates `bytes` as a model file.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, ModelError> {
        use ModelError as E;
        let truncated = |needed: usize| E::Truncated {
            needed,
            found: bytes.len(),
        };
        if bytes.len() < HEADER_LEN {
            // Still say "bad magic" first when even the magic is wrong: a clearer message for
            // a file that is not a model at all.
            if bytes.get(..4).is_some_and(|m| m != MAGIC) {
                return Err(E::BadMagic);
            }
            return Err(truncated(HEADER_LEN));
        }
        if bytes.get(..4) != Some(&MAGIC[..]) {
            return Err(E::BadMagic);
        }
        let rd = |off| u32_at(bytes, off).ok_or(truncated(HEADER_LEN));
        let bom = rd(header::BYTE_ORDER)?;
        if bom != BYTE_ORDER_MARK {
            return Err(if bom == BYTE_ORDER_MARK.swap_bytes() {
                E::WrongEndianness
            } else {
                E::BadHeader {
                    field: "byte-order mark",
                }
            });
        }
        if cfg!(target_endian = "big") {
            return Err(E::WrongEndianness);
        }
        let major = u16_at(bytes, header::VERSION_MAJOR).ok_or(truncated(HEADER_LEN))?;
        let minor = u16_at(bytes, header::VERSION_MINOR).ok_or(truncated(HEADER_LEN))?;
        if major != VERSION_MAJOR {
            return Err(E::UnsupportedVersion { major, minor });
        }
        let file_len = rd(header::FILE_LEN)? as usize;
        if bytes.len() < file_len {
            return Err(truncated(file_len));
        }
        if bytes.len() > file_len {
            return Err(E::TrailingBytes {
                expected: file_len,
                found: bytes.len(),
            });
        }
        let stored = rd(header::CRC)?;
        let computed = file_crc(bytes);
        if stored != computed {
            return Err(E::BadChecksum { stored, computed });
        }
        // Files of this reader's minor version (or older) have exactly its lengths and zero
        // reserved bytes; later minors may grow both and use the reserved bytes.
        let known_minor = knows_all_of(minor);
        let header_len = rd(header::HEADER_LEN)? as usize;
        if header_len < HEADER_LEN
            || header_len > file_len
            || known_minor && header_len != HEADER_LEN
        {
            return Err(E::BadHeader {
                field: "header length",
            });
        }
        let reserved = bytes.get(header::RESERVED..HEADER_LEN).unwrap_or(&[]);
        if known_minor && reserved.iter().any(|&b| b != 0) {
            return Err(E::Reserved {
                layer: None,
                field: "header bytes 48..64 (reserved)",
            });
        }
        if rd(header::ALIGN)? as usize != TENSOR_ALIGN {
            return Err(E::BadHeader {
                field: "tensor alignment",
            });
        }
        if !(bytes.as_ptr() as usize).is_multiple_of(4) {
            return Err(E::Misaligned {
                layer: None,
                tensor: Tensor::File,
            });
        }
        let layers = u16_at(bytes, header::LAYER_COUNT).ok_or(truncated(HEADER_LEN))? as usize;
        if layers == 0 || layers > MAX_LAYERS {
            return Err(E::BadHeader {
                field: "layer count",
            });
        }
        let record_len = u16_at(bytes, header::RECORD_LEN).ok_or(truncated(HEADER_LEN))? as usize;
        let expected_record_len = record_len_of(minor);
        if record_len < expected_record_len || known_minor && record_len != expected_record_len {
            return Err(E::BadHeader {
                field: "layer record length",
            });
        }
        let table = rd(header::LAYER_TABLE)? as usize;
        let table_end = layers
            .checked_mul(record_len)
            .and_then(|n| n.checked_add(table))
            .ok_or(E::OutOfRange {
                layer: None,
                tensor: Tensor::LayerTable,
            })?;
        if table_end > file_len {
            return Err(E::OutOfRange {
                layer: None,
                tensor: Tensor::LayerTable,
            });
        }
        if table < header_len {
            return Err(E::Overlap {
                layer: None,
                tensor: Tensor::LayerTable,
                other_layer: None,
                other: Tensor::Header,
            });
        }
        let inputs = rd(header::INPUTS)? as usize;
        let outputs = rd(header::OUTPUTS)? as usize;

        let mut view = ModelView {
            bytes,
            layers,
            table,
            record_len,
            header_len,
            inputs,
            outputs,
            transform: None,
            minor,
        };

        // The input transform.
        let t_off = rd(header::TRANSFORM)? as usize;
        if t_off != 0 {
            let n = inputs.checked_mul(8).ok_or(E::OutOfRange {
                layer: None,
                tensor: Tensor::InputTransform,
            })?;
            let both: &[f32] = view.tensor_of(None, Tensor::InputTransform, t_off, n)?;
            check_finite(None, Tensor::InputTransform, both)?;
            view.transform = Some(both.split_at(inputs.min(both.len())));
        }

        // Every layer.
        let mut width = inputs;
        let mut first_type = None;
        let mut previous: Option<QuantParams> = None;
        for i in 0..layers {
            let l = view.parse_layer(i)?;
            let li = layer_id(i);
            match l.params {
                LayerParams::F32 { weights, bias } => {
                    check_finite(Some(li), Tensor::Weights, weights)?;
                    check_finite(Some(li), Tensor::Bias, bias)?;
                }
                LayerParams::Int8(p) => {
                    int8::check_values(li, l.inputs, &p)?;
                    if previous.is_some_and(|q| q != p.input) {
                        return Err(E::QuantMismatch {
                            layer: li,
                            what: "the input quantization differs from the previous layer's output",
                        });
                    }
                    previous = Some(p.activation_output);
                }
            }
            let first = *first_type.get_or_insert(l.weight_type());
            if l.weight_type() != first {
                return Err(E::WeightType {
                    layer: li,
                    expected: first.name(),
                    found: l.weight_type().name(),
                });
            }
            if l.inputs != width {
                return Err(E::ShapeChain {
                    layer: li,
                    expected: width,
                    found: l.inputs,
                });
            }
            width = l.outputs;
        }
        if width != outputs {
            return Err(E::BadHeader {
                field: "network outputs (differs from the last layer's)",
            });
        }
        view.check_overlaps()?;
        Ok(view)
    }

    /// Part `k` of the file that must not share bytes with another: 0 the layer table, 1 the
    /// input transform, then each layer's weights, bias, scales, kernel bias and multipliers
    /// (the last three absent, `(0, 0)`, in f32 layers). Returns the layer, the
    /// part and its byte range (empty for an absent part). Only called once every part has been
    /// validated to lie inside the file, so the ends cannot overflow.
    fn part(&self, k: usize) -> (Option<u16>, Tensor, usize, usize) {
        match k {
            0 => {
                let len = self.layers.saturating_mul(self.record_len);
                (
                    None,
                    Tensor::LayerTable,
                    self.table,
                    self.table.saturating_add(len),
                )
            }
            1 => match self.transform {
                Some(_) => {
                    let off = u32_at(self.bytes, header::TRANSFORM).unwrap_or(0) as usize;
                    let len = self.inputs.saturating_mul(8);
                    (None, Tensor::InputTransform, off, off.saturating_add(len))
                }
                None => (None, Tensor::InputTransform, 0, 0),
            },
            _ => {
                let k = k.saturating_sub(2);
                let i = k.checked_div(PER_LAYER).unwrap_or(0);
                let (tensor, at, len_at) = match k.checked_rem(PER_LAYER) {
                    Some(0) => (Tensor::Weights, record::WEIGHTS, record::WEIGHTS_LEN),
                    Some(1) => (Tensor::Bias, record::BIAS, record::BIAS_LEN),
                    Some(2) => (Tensor::Scales, record::SCALES, record::SCALES_LEN),
                    Some(3) => (
                        Tensor::KernelBias,
                        record::KERNEL_BIAS,
                        record::KERNEL_BIAS_LEN,
                    ),
                    _ => (Tensor::Requantization, record::REQUANT, record::REQUANT_LEN),
                };
                let r = self.record(i);
                let off = u32_at(r, at).unwrap_or(0) as usize;
                let len = u32_at(r, len_at).unwrap_or(0) as usize;
                (Some(layer_id(i)), tensor, off, off.saturating_add(len))
            }
        }
    }

    /// Fails with [`ModelError::Overlap`] unless the layer table, the input transform and every
    /// tensor are pairwise disjoint (and none overlaps the header: see [`ModelView::tensor`]).
    /// Quadratic in the number of parts, without memory: 17 parts and 136 comparisons for a
    /// 3-layer network, at most 1282 parts for [`MAX_LAYERS`].
    fn check_overlaps(&self) -> Result<(), ModelError> {
        let parts = self.layers.saturating_mul(PER_LAYER).saturating_add(2);
        for k in 1..parts {
            let (layer, tensor, start, end) = self.part(k);
            if start == end {
                continue;
            }
            for j in 0..k {
                let (other_layer, other, s, e) = self.part(j);
                if s < e && start < e && s < end {
                    return Err(ModelError::Overlap {
                        layer,
                        tensor,
                        other_layer,
                        other,
                    });
                }
            }
        }
        Ok(())
    }

    /// Validates one tensor's range and alignment and returns its bytes.
    fn tensor(
        &self,
        layer: Option<u16>,
        tensor: Tensor,
        off: usize,
        len: usize,
    ) -> Result<&'a [u8], ModelError> {
        let end = off.checked_add(len);
        let Some(bytes) = end.and_then(|e| self.bytes.get(off..e)) else {
            return Err(ModelError::OutOfRange { layer, tensor });
        };
        if off < self.header_len {
            return Err(ModelError::Overlap {
                layer,
                tensor,
                other_layer: None,
                other: Tensor::Header,
            });
        }
        if !off.is_multiple_of(TENSOR_ALIGN) {
            return Err(ModelError::Misaligned { layer, tensor });
        }
        Ok(bytes)
    }

    /// [`ModelView::tensor`] viewed as values of `T` (`f32`, `i32`, `i8`).
    fn tensor_of<T: bytemuck::Pod>(
        &self,
        layer: Option<u16>,
        tensor: Tensor,
        off: usize,
        len: usize,
    ) -> Result<&'a [T], ModelError> {
        let bytes = self.tensor(layer, tensor, off, len)?;
        bytemuck::try_cast_slice(bytes).map_err(|_| ModelError::Misaligned { layer, tensor })
    }

    /// Record `i`: its first [`LAYER_RECORD_LEN`] bytes at most (a version-1.0 record has 48:
    /// the 1.1 fields beyond read as absent, zero).
    fn record(&self, i: usize) -> &'a [u8] {
        // In range for every i < layers (validated); anything else reads as an empty record.
        let len = self.record_len.min(LAYER_RECORD_LEN);
        i.checked_mul(self.record_len)
            .and_then(|o| o.checked_add(self.table))
            .and_then(|start| self.bytes.get(start..start.checked_add(len)?))
            .unwrap_or(&[])
    }

    fn parse_layer(&self, i: usize) -> Result<LayerView<'a>, ModelError> {
        use ModelError as E;
        let li = Some(layer_id(i));
        let r = self.record(i);
        let field = |off| u32_at(r, off).unwrap_or(0) as usize;
        let kind = r.get(record::KIND).copied().unwrap_or(0);
        if kind != KIND_DENSE {
            return Err(E::UnknownLayerKind {
                layer: layer_id(i),
                kind,
            });
        }
        let act_code = r.get(record::ACTIVATION).copied().unwrap_or(u8::MAX);
        let act_param = f32_at(r, record::ACT_PARAM).unwrap_or(f32::NAN);
        let activation = activation_from_code(act_code, act_param).ok_or(E::UnknownActivation {
            layer: layer_id(i),
            code: act_code,
        })?;
        if !act_param.is_finite() {
            return Err(E::NonFinite {
                layer: li,
                tensor: Tensor::ActivationParameter,
                index: 0,
            });
        }
        let dtype = r.get(record::DTYPE).copied().unwrap_or(u8::MAX);
        let int8 = match dtype {
            DTYPE_F32 => false,
            DTYPE_I8 if self.minor >= 1 => true,
            _ => {
                return Err(E::UnsupportedWeightType {
                    layer: layer_id(i),
                    code: dtype,
                    known: dtype == DTYPE_I8,
                })
            }
        };
        let has_param = match activation {
            Activation::LeakyRelu { .. } => true,
            Activation::Softmax => int8,
            _ => false,
        };
        if !has_param && act_param.to_bits() != 0 {
            return Err(E::Reserved {
                layer: li,
                field: if int8 {
                    "activation parameter (only leaky ReLU and softmax have one)"
                } else {
                    "activation parameter (only leaky ReLU has one)"
                },
            });
        }
        let layout = r.get(record::LAYOUT).copied().unwrap_or(u8::MAX);
        if layout
            != if int8 {
                LAYOUT_I8_PACKED4
            } else {
                LAYOUT_PACKED4
            }
        {
            return Err(E::UnsupportedLayout {
                layer: layer_id(i),
                code: layout,
            });
        }
        let dropout_rate = f32_at(r, record::DROPOUT).unwrap_or(f32::NAN);
        if !(0.0..1.0).contains(&dropout_rate) {
            return Err(E::BadDropoutRate { layer: layer_id(i) });
        }
        if int8 && dropout_rate.to_bits() != 0 {
            return Err(E::Reserved {
                layer: li,
                field: "dropout rate (int8 layers have no Monte-Carlo dropout)",
            });
        }
        let inputs = field(record::INPUTS);
        let outputs = field(record::OUTPUTS);
        if inputs == 0 || outputs == 0 {
            return Err(E::EmptyLayer { layer: layer_id(i) });
        }
        let size = if int8 { 1 } else { 4 };
        let wlen = inputs
            .checked_mul(outputs)
            .and_then(|n| n.checked_mul(size))
            .ok_or(E::OutOfRange {
                layer: li,
                tensor: Tensor::Weights,
            })?;
        let blen = outputs.checked_mul(4).ok_or(E::OutOfRange {
            layer: li,
            tensor: Tensor::Bias,
        })?;
        // int8: one filter scale per output, or one for the tensor (per-tensor quantization).
        let slen = match field(record::SCALES_LEN) {
            4 if int8 => 4,
            _ if int8 => blen,
            _ => 0,
        };
        let channels = slen / 4;
        let (kblen, rqlen) = if int8 {
            (blen, channels.saturating_mul(8))
        } else {
            (0, 0)
        };
        for (tensor, len_at, expected) in [
            (Tensor::Weights, record::WEIGHTS_LEN, wlen),
            (Tensor::Bias, record::BIAS_LEN, blen),
            (Tensor::Scales, record::SCALES_LEN, slen),
            (Tensor::KernelBias, record::KERNEL_BIAS_LEN, kblen),
            (Tensor::Requantization, record::REQUANT_LEN, rqlen),
        ] {
            let found = field(len_at);
            if found != expected {
                return Err(E::TensorLength {
                    layer: li,
                    tensor,
                    expected,
                    found,
                });
            }
        }
        let reserved = r.get(record::RESERVED..LAYER_RECORD_LEN_1_0).unwrap_or(&[]);
        if knows_all_of(self.minor) && reserved.iter().any(|&b| b != 0) {
            return Err(E::Reserved {
                layer: li,
                field: "record bytes 44..48 (reserved)",
            });
        }
        if !int8 {
            if field(record::SCALES) != 0 {
                return Err(E::Reserved {
                    layer: li,
                    field: "scales offset (f32 weights have no scales)",
                });
            }
            let v1_1 = r.get(LAYER_RECORD_LEN_1_0..).unwrap_or(&[]);
            if v1_1.iter().any(|&b| b != 0) {
                return Err(E::Reserved {
                    layer: li,
                    field: "record bytes 48..80 (int8 fields: f32 weights have none)",
                });
            }
            let weights = self.tensor_of(li, Tensor::Weights, field(record::WEIGHTS), wlen)?;
            let bias = self.tensor_of(li, Tensor::Bias, field(record::BIAS), blen)?;
            return Ok(LayerView {
                inputs,
                outputs,
                activation,
                dropout_rate,
                params: LayerParams::F32 { weights, bias },
            });
        }
        let scales: &[f32] = self.tensor_of(li, Tensor::Scales, field(record::SCALES), slen)?;
        let weights: &[i8] = self.tensor_of(li, Tensor::Weights, field(record::WEIGHTS), wlen)?;
        let bias: &[i32] = self.tensor_of(li, Tensor::Bias, field(record::BIAS), blen)?;
        let kernel_bias: &[i32] =
            self.tensor_of(li, Tensor::KernelBias, field(record::KERNEL_BIAS), kblen)?;
        let requant: &[i32] =
            self.tensor_of(li, Tensor::Requantization, field(record::REQUANT), rqlen)?;
        check_finite(li, Tensor::Scales, scales)?;
        let beta = if activation == Activation::Softmax {
            act_param
        } else {
            0.0
        };
        let raw = int8::raw_from_record(
            r,
            activation,
            beta,
            (scales, weights, bias, kernel_bias, requant),
        );
        let p = int8::params(layer_id(i), &raw)?;
        Ok(LayerView {
            inputs,
            outputs,
            activation,
            dropout_rate,
            params: LayerParams::Int8(p),
        })
    }

    /// The file's bytes.
    pub const fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The minor version of the file (the major is always [`VERSION_MAJOR`]).
    pub const fn version_minor(&self) -> u16 {
        self.minor
    }

    /// Number of layers.
    pub const fn layer_count(&self) -> usize {
        self.layers
    }

    /// Network inputs.
    pub const fn inputs(&self) -> usize {
        self.inputs
    }

    /// Network outputs (classes).
    pub const fn outputs(&self) -> usize {
        self.outputs
    }

    /// Layer `i`, or `None` past the last layer.
    pub fn layer(&self, i: usize) -> Option<LayerView<'a>> {
        if i >= self.layers {
            return None;
        }
        // Validated in `new_checked`: this cannot fail (and does not rescan the values).
        self.parse_layer(i).ok()
    }

    /// Iterates over the layers.
    pub fn layers(&self) -> impl Iterator<Item = LayerView<'a>> + '_ {
        (0..self.layers).filter_map(|i| self.layer(i))
    }

    /// The input transform `(scale, offset)`, if the file has one.
    pub const fn input_transform(&self) -> Option<(&'a [f32], &'a [f32])> {
        self.transform
    }

    /// Applies the input transform (`x = x * scale + offset`) to `x` in place; a no-op without
    /// one. Elements beyond the network's inputs are left alone.
    pub fn transform_input(&self, x: &mut [f32]) {
        if let Some((scale, offset)) = self.transform {
            for ((x, s), o) in x.iter_mut().zip(scale).zip(offset) {
                *x = *x * s + o;
            }
        }
    }

    /// Multiply-accumulates per inference.
    pub fn macs(&self) -> usize {
        // Tensors are disjoint parts of the file, so these sums are below its length: the
        // saturation never happens, it only keeps the arithmetic visibly total.
        self.layers().fold(0, |n, l| {
            n.saturating_add(l.inputs.saturating_mul(l.outputs))
        })
    }

    /// Parameters (weights and biases).
    pub fn params(&self) -> usize {
        self.layers().fold(0, |n, l| {
            n.saturating_add(l.inputs.saturating_add(1).saturating_mul(l.outputs))
        })
    }

    /// Largest layer output: the RAM, in f32s, of one activation buffer.
    pub fn max_width(&self) -> usize {
        self.layers().map(|l| l.outputs).max().unwrap_or(0)
    }

    /// Layer `i` as a typed [`Layer`](crate::Layer) with compile-time widths, or
    /// [`ModelError::LayerShape`] naming the layer and the dimension that differs
    /// ([`ModelError::NoSuchLayer`] past the last layer).
    pub fn dense_layer<const I: usize, const O: usize>(
        &self,
        i: usize,
    ) -> Result<crate::Layer<'a, I, O>, ModelError> {
        let l = self.layer(i).ok_or(ModelError::NoSuchLayer {
            layer: i,
            count: self.layers,
        })?;
        // `i` is below the layer count (at most MAX_LAYERS), so it fits in u16.
        let layer = u16::try_from(i).unwrap_or(u16::MAX);
        let shape = |dimension, expected: usize, found: usize| ModelError::LayerShape {
            layer,
            dimension,
            expected,
            found,
        };
        if l.inputs != I {
            return Err(shape("inputs", I, l.inputs));
        }
        if l.outputs != O {
            return Err(shape("outputs", O, l.outputs));
        }
        let LayerParams::F32 { weights, bias } = l.params else {
            return Err(ModelError::WeightType {
                layer,
                expected: "f32",
                found: l.weight_type().name(),
            });
        };
        let dense =
            crate::Dense::from_slices(weights, bias).map_err(|_| shape("weights", I, l.inputs))?;
        Ok(crate::Layer {
            dense,
            activation: l.activation,
            dropout_rate: l.dropout_rate,
        })
    }

    /// Layer `i` as a typed int8 [`QLayer`](crate::quant::QLayer) with compile-time widths
    /// (what [`qnetwork!`](crate::qnetwork)'s `from_model` calls), or
    /// [`ModelError::LayerShape`] naming the layer and the dimension that differs,
    /// [`ModelError::WeightType`] for an f32 layer ([`ModelError::NoSuchLayer`] past the last
    /// layer). Weights and parameters are read in place.
    pub fn qlayer<const I: usize, const O: usize>(
        &self,
        i: usize,
    ) -> Result<crate::quant::QLayer<'a, I, O>, ModelError> {
        let l = self.layer(i).ok_or(ModelError::NoSuchLayer {
            layer: i,
            count: self.layers,
        })?;
        let layer = u16::try_from(i).unwrap_or(u16::MAX);
        let shape = |dimension, expected: usize, found: usize| ModelError::LayerShape {
            layer,
            dimension,
            expected,
            found,
        };
        if l.inputs != I {
            return Err(shape("inputs", I, l.inputs));
        }
        if l.outputs != O {
            return Err(shape("outputs", O, l.outputs));
        }
        let LayerParams::Int8(p) = l.params else {
            return Err(ModelError::WeightType {
                layer,
                expected: "int8",
                found: l.weight_type().name(),
            });
        };
        // Validated by `new_checked` (lengths, kernel bias): this cannot fail.
        let dense = crate::quant::QDense::from_slices(
            p.weights,
            p.bias,
            p.kernel_bias,
            p.input.zero_point(),
            p.requantize,
        )
        .map_err(|error| ModelError::Quant { layer, error })?;
        Ok(crate::quant::QLayer::new(dense, p.activation))
    }

    /// The weight type of the model's layers (all the same in a valid file).
    pub fn weight_type(&self) -> WeightType {
        self.layer(0)
            .map(|l| l.weight_type())
            .unwrap_or(WeightType::F32)
    }

    /// The quantization of the network's input, for an int8 model: inputs (after the input
    /// transform) are quantized with it (TFLite's `QUANTIZE`). `None` for an f32 model.
    pub fn input_quantization(&self) -> Option<QuantParams> {
        match self.layer(0)?.params {
            LayerParams::Int8(p) => Some(p.input),
            LayerParams::F32 { .. } => None,
        }
    }

    /// The quantization of the network's output, for an int8 model: the int8 outputs mean
    /// `scale * (q - zero_point)` (TFLite's `DEQUANTIZE`). `None` for an f32 model.
    pub fn output_quantization(&self) -> Option<QuantParams> {
        match self.layer(self.layers.checked_sub(1)?)?.params {
            LayerParams::Int8(p) => Some(p.activation_output),
            LayerParams::F32 { .. } => None,
        }
    }

    /// Fails unless the model has exactly `n` layers (used by the `from_model` constructor that
    /// [`network!`](macro@crate::network) generates).
    pub fn expect_layers(&self, n: usize) -> Result<(), ModelError> {
        if self.layers == n {
            Ok(())
        } else {
            Err(ModelError::LayerCount {
                expected: n,
                found: self.layers,
            })
        }
    }

    /// Runs the model with run-time shapes (no network type needed): applies the input
    /// transform to `x` in place, then each layer, using `a` and `b` as ping-pong activation
    /// buffers of at least [`ModelView::max_width`] floats. Returns the output slice (inside `a`
    /// or `b`). The host uses it to compute exactly what a device computes.
    ///
    /// An int8 model computes what an int8 device program does: the transformed input is
    /// quantized with [`ModelView::input_quantization`] (TFLite's `QUANTIZE`, into the bytes of
    /// `x`, which it overwrites), the int8 layers run with TFLite's arithmetic (the portable
    /// [`crate::quant::kernel::dense`], byte-exact with every other int8 kernel) in the bytes of
    /// `a` and `b`, and the int8 output is dequantized with
    /// [`ModelView::output_quantization`] (TFLite's `DEQUANTIZE`: one f32 product per output).
    pub fn run<'b>(
        &self,
        x: &mut [f32],
        a: &'b mut [f32],
        b: &'b mut [f32],
    ) -> Result<&'b [f32], crate::Error> {
        if x.len() != self.inputs {
            return Err(crate::Error::Shape {
                what: "input",
                expected: self.inputs,
                found: x.len(),
            });
        }
        let need = self.max_width();
        for buf in [&*a, &*b] {
            if buf.len() < need {
                return Err(crate::Error::Shape {
                    what: "activation buffer",
                    expected: need,
                    found: buf.len(),
                });
            }
        }
        self.transform_input(x);
        if self.layers == 0 {
            return Ok(&[]);
        }
        if let Some(input) = self.input_quantization() {
            return self.run_int8(input, x, a, b);
        }
        let (mut cur, mut next) = (a, b);
        // Every width is at most `need`, which both buffers hold: the `get`s cannot fail (and
        // would give a shape error from the kernel if they did).
        let mut width = 0;
        for (k, l) in self.layers().enumerate() {
            let LayerParams::F32 { weights, bias } = l.params else {
                // A valid file's layers all have the first layer's weight type.
                continue;
            };
            let (src, dst) = if k == 0 {
                (&*x, cur.get_mut(..l.outputs).unwrap_or_default())
            } else {
                core::mem::swap(&mut cur, &mut next);
                (
                    next.get(..width).unwrap_or_default(),
                    cur.get_mut(..l.outputs).unwrap_or_default(),
                )
            };
            crate::kernel::dense(weights, bias, src, dst)?;
            l.activation.apply(dst);
            width = l.outputs;
        }
        let out: &'b [f32] = cur;
        Ok(out.get(..width).unwrap_or_default())
    }

    /// [`ModelView::run`] for an int8 model, the input transform applied.
    fn run_int8<'b>(
        &self,
        input: QuantParams,
        x: &mut [f32],
        a: &'b mut [f32],
        b: &'b mut [f32],
    ) -> Result<&'b [f32], crate::Error> {
        // Quantize in place: byte `i` of `x` lies in float `i / 4 <= i`, read before it.
        let xb: &mut [u8] = bytemuck::cast_slice_mut(x);
        for i in 0..self.inputs {
            let v = xb
                .get(i.saturating_mul(4)..)
                .and_then(|t| t.first_chunk::<4>())
                .map(|c| f32::from_ne_bytes(*c))
                .unwrap_or(0.0);
            if let Some(d) = xb.get_mut(i) {
                *d = input.quantize(v) as u8;
            }
        }
        let xq: &[i8] = bytemuck::cast_slice(xb.get(..self.inputs).unwrap_or_default());
        let (mut cur, mut next): (&mut [i8], &mut [i8]) =
            (bytemuck::cast_slice_mut(a), bytemuck::cast_slice_mut(b));
        let mut width = 0;
        let mut output = input;
        for (k, l) in self.layers().enumerate() {
            let LayerParams::Int8(p) = l.params else {
                continue;
            };
            let (src, dst) = if k == 0 {
                (xq, cur.get_mut(..l.outputs).unwrap_or_default())
            } else {
                core::mem::swap(&mut cur, &mut next);
                (
                    next.get(..width).unwrap_or_default(),
                    cur.get_mut(..l.outputs).unwrap_or_default(),
                )
            };
            crate::quant::kernel::dense(p.weights, p.kernel_bias, &p.requantize, src, dst)
                .map_err(|_| crate::Error::Shape {
                    what: "int8 layer",
                    expected: l.inputs,
                    found: src.len(),
                })?;
            p.activation.apply(dst);
            width = l.outputs;
            output = p.activation_output;
        }
        // Dequantize the int8 output (in `cur`) into the other buffer.
        let q: &[i8] = cur.get(..width).unwrap_or_default();
        let y: &'b mut [f32] = bytemuck::cast_slice_mut(next);
        let y = y.get_mut(..width).unwrap_or_default();
        for (y, &q) in y.iter_mut().zip(q) {
            *y = output.dequantize(q);
        }
        Ok(y)
    }

    /// One Monte-Carlo pass with run-time shapes: like [`ModelView::run`] on an input that is
    /// already transformed (`x` is not modified), with each layer's dropout rate applied to its
    /// output after the activation, exactly as a [`network!`](macro@crate::network) type's
    /// `forward_mc` does ([`Layer::forward_mc`](crate::Layer::forward_mc): the same masks from
    /// the same `rng` state, so the same bits). Returns the output slice (inside `a` or `b`).
    pub fn run_mc<'b>(
        &self,
        x: &[f32],
        a: &'b mut [f32],
        b: &'b mut [f32],
        rng: &mut crate::Rng,
    ) -> Result<&'b mut [f32], crate::Error> {
        if self.weight_type() == WeightType::Int8 {
            return Err(crate::Error::Int8Unsupported {
                what: "Monte-Carlo dropout",
            });
        }
        if x.len() != self.inputs {
            return Err(crate::Error::Shape {
                what: "input",
                expected: self.inputs,
                found: x.len(),
            });
        }
        let need = self.max_width();
        for buf in [&*a, &*b] {
            if buf.len() < need {
                return Err(crate::Error::Shape {
                    what: "activation buffer",
                    expected: need,
                    found: buf.len(),
                });
            }
        }
        let (mut cur, mut next) = (a, b);
        let mut width = 0;
        for (k, l) in self.layers().enumerate() {
            let LayerParams::F32 { weights, bias } = l.params else {
                continue;
            };
            let (src, dst) = if k == 0 {
                (x, cur.get_mut(..l.outputs).unwrap_or_default())
            } else {
                core::mem::swap(&mut cur, &mut next);
                (
                    next.get(..width).unwrap_or_default(),
                    cur.get_mut(..l.outputs).unwrap_or_default(),
                )
            };
            crate::kernel::dense(weights, bias, src, dst)?;
            l.activation.apply(dst);
            if l.dropout_rate > 0.0 {
                if let Ok(d) = crate::McDropout::new(l.dropout_rate) {
                    d.apply(dst, rng);
                }
            }
            width = l.outputs;
        }
        Ok(cur.get_mut(..width).unwrap_or_default())
    }

    /// The Monte-Carlo summary of `passes` dropout passes on the raw input `x` from `seed`
    /// ([`crate::mc::run`]): the input transform is applied to `x` in place, then each pass
    /// runs [`ModelView::run_mc`]. `a` and `b` are activation buffers of at least
    /// [`ModelView::max_width`] floats; `mean` and `std` get one value per class, and `pass`
    /// (one value per class) is scratch for a pass's probabilities. What the `eval` firmware
    /// answers to the link's `MC` request, bit for bit.
    ///
    /// Fails with [`Error::NotADistribution`](crate::Error::NotADistribution) unless the last
    /// layer ends in softmax or the identity (logits, turned into probabilities per pass), and
    /// with [`Error::Int8Unsupported`](crate::Error::Int8Unsupported) for an int8 model (no
    /// dropout kept).
    #[allow(clippy::too_many_arguments)]
    pub fn mc(
        &self,
        x: &mut [f32],
        a: &mut [f32],
        b: &mut [f32],
        passes: core::num::NonZeroU32,
        seed: u64,
        mean: &mut [f32],
        std: &mut [f32],
        pass: &mut [f32],
    ) -> Result<crate::mc::McSummary, crate::Error> {
        if self.weight_type() == WeightType::Int8 {
            return Err(crate::Error::Int8Unsupported {
                what: "Monte-Carlo dropout",
            });
        }
        let last = self
            .layer(self.layers.saturating_sub(1))
            .map(|l| l.activation)
            .unwrap_or(Activation::Identity);
        let outputs =
            crate::mc::McOutputs::for_activation(last).ok_or(crate::Error::NotADistribution {
                activation: last.name(),
            })?;
        for (what, v) in [("mean", &*mean), ("std", &*std), ("pass", &*pass)] {
            if v.len() != self.outputs {
                return Err(crate::Error::Shape {
                    what,
                    expected: self.outputs,
                    found: v.len(),
                });
            }
        }
        if x.len() != self.inputs {
            return Err(crate::Error::Shape {
                what: "input",
                expected: self.inputs,
                found: x.len(),
            });
        }
        self.transform_input(x);
        let x: &[f32] = x;
        crate::mc::run(outputs, passes, seed, mean, std, pass, |rng, out| {
            let y = self.run_mc(x, a, b, rng)?;
            out.iter_mut().zip(y.iter()).for_each(|(o, v)| *o = *v);
            Ok(())
        })
    }
}

/// Logs the shape and activation, not the parameters.
#[cfg(feature = "defmt")]
impl defmt::Format for LayerView<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "LayerView {{ {=usize} -> {=usize}, {}, dropout {=f32} }}",
            self.inputs,
            self.outputs,
            self.activation,
            self.dropout_rate
        )
    }
}

/// Logs the shape of the network, not the bytes.
#[cfg(feature = "defmt")]
impl defmt::Format for ModelView<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "ModelView {{ {=usize} inputs, {=usize} outputs, {=usize} layers, {=usize} bytes }}",
            self.inputs,
            self.outputs,
            self.layers,
            self.bytes.len()
        )
    }
}

/// Logs the shape, not the parameters.
#[cfg(feature = "defmt")]
impl defmt::Format for EncodeLayer<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "EncodeLayer {{ {=usize} -> {=usize}, {} }}",
            self.inputs,
            self.outputs,
            self.activation
        )
    }
}

/// Logs the shape, not the parameters.
#[cfg(feature = "defmt")]
impl defmt::Format for ModelSpec<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "ModelSpec {{ {=usize} inputs, {=usize} layers }}",
            self.inputs,
            self.layers.len()
        )
    }
}

/// The file length a model file's header declares, after checking what the header alone can
/// say (magic, byte order, major version). Reads only the first [`HEADER_LEN`] bytes of
/// `header` (more are ignored), so a reader can refuse a file before loading it: compare the
/// result with the file's size, then read exactly that many bytes and validate them with
/// [`ModelView::new_checked`].
///
/// ```
/// use microdnn::model::{declared_len, ModelError, HEADER_LEN};
/// assert_eq!(declared_len(b"not a model file, not a model file, not a model file, not a model"),
///            Err(ModelError::BadMagic));
/// assert!(matches!(declared_len(b"uDNN"), Err(ModelError::Truncated { .. })));
/// ```
pub fn declared_len(header: &[u8]) -> Result<usize, ModelError> {
    if header.get(..4).is_some_and(|m| m != MAGIC) {
        return Err(ModelError::BadMagic);
    }
    let truncated = ModelError::Truncated {
        needed: HEADER_LEN,
        found: header.len(),
    };
    let header = header.get(..HEADER_LEN).ok_or(truncated)?;
    let bom = u32_at(header, header::BYTE_ORDER).ok_or(truncated)?;
    if bom != BYTE_ORDER_MARK {
        return Err(if bom == BYTE_ORDER_MARK.swap_bytes() {
            ModelError::WrongEndianness
        } else {
            ModelError::BadHeader {
                field: "byte-order mark",
            }
        });
    }
    let major = u16_at(header, header::VERSION_MAJOR).ok_or(truncated)?;
    let minor = u16_at(header, header::VERSION_MINOR).ok_or(truncated)?;
    if major != VERSION_MAJOR {
        return Err(ModelError::UnsupportedVersion { major, minor });
    }
    Ok(u32_at(header, header::FILE_LEN).ok_or(truncated)? as usize)
}

/// CRC-32 of a model file with its CRC field taken as zero.
pub fn file_crc(bytes: &[u8]) -> u32 {
    let mut c = Crc32::new();
    c.update(bytes.get(..header::CRC).unwrap_or(bytes));
    c.update(&[0; 4]);
    c.update(bytes.get(header::CRC + 4..).unwrap_or(&[]));
    c.finish()
}

fn check_finite(layer: Option<u16>, tensor: Tensor, v: &[f32]) -> Result<(), ModelError> {
    match v.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(index) => Err(ModelError::NonFinite {
            layer,
            tensor,
            // Tensors of a file (or accepted by `encode`) are under 4 GiB: the index fits.
            index: u32::try_from(index).unwrap_or(u32::MAX),
        }),
    }
}

/// Checks an input transform of `inputs` scales and offsets: lengths and finite values.
fn check_transform(inputs: usize, transform: Option<(&[f32], &[f32])>) -> Result<(), ModelError> {
    use ModelError as E;
    if let Some((s, o)) = transform {
        // `inputs` is the first layer's inputs, whose weights fit in u32 bytes: this fits.
        let expected = inputs.checked_mul(8).ok_or(E::TooLarge {
            layer: None,
            tensor: Tensor::InputTransform,
        })?;
        if s.len() != inputs || o.len() != inputs {
            return Err(E::TensorLength {
                layer: None,
                tensor: Tensor::InputTransform,
                expected,
                found: s.len().saturating_add(o.len()).saturating_mul(4),
            });
        }
        check_finite(None, Tensor::InputTransform, s)?;
        check_finite(None, Tensor::InputTransform, o)?;
    }
    Ok(())
}

/// What [`write_header`] writes.
struct Header {
    minor: u16,
    record_len: usize,
    layers: usize,
    inputs: usize,
    outputs: usize,
    total: usize,
}

/// Writes the header (all but the CRC) and the input transform into `out` (zeroed, `total`
/// bytes, validated by the caller: every value fits its field), and returns the offset of the
/// first layer's tensors.
fn write_header(out: &mut [u8], h: Header, transform: Option<(&[f32], &[f32])>) -> usize {
    let put16 =
        |b: &mut [u8], off: usize, v: u16| b[off..off + 2].copy_from_slice(&v.to_le_bytes());
    let put32 =
        |b: &mut [u8], off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    let put_f32s = |b: &mut [u8], off: usize, v: &[f32]| {
        for (chunk, x) in b[off..off + v.len() * 4].chunks_exact_mut(4).zip(v) {
            chunk.copy_from_slice(&x.to_le_bytes());
        }
    };
    out[..4].copy_from_slice(&MAGIC);
    put16(out, header::VERSION_MAJOR, VERSION_MAJOR);
    put16(out, header::VERSION_MINOR, h.minor);
    put32(out, header::BYTE_ORDER, BYTE_ORDER_MARK);
    put32(out, header::HEADER_LEN, HEADER_LEN as u32);
    put32(out, header::FILE_LEN, h.total as u32);
    put16(out, header::LAYER_COUNT, h.layers as u16);
    put16(out, header::RECORD_LEN, h.record_len as u16);
    put32(out, header::LAYER_TABLE, HEADER_LEN as u32);
    put32(out, header::INPUTS, h.inputs as u32);
    put32(out, header::OUTPUTS, h.outputs as u32);
    put32(out, header::ALIGN, TENSOR_ALIGN as u32);
    let mut at = align_up(HEADER_LEN + h.layers * h.record_len);
    if let Some((s, o)) = transform {
        put32(out, header::TRANSFORM, at as u32);
        put_f32s(out, at, s);
        put_f32s(out, at + s.len() * 4, o);
        at += align_up(h.inputs * 8);
    }
    at
}

/// One layer to encode: weights already in the packed layout ([`crate::kernel::pack`]).
#[derive(Clone, Copy, Debug)]
pub struct EncodeLayer<'a> {
    /// Inputs.
    pub inputs: usize,
    /// Outputs.
    pub outputs: usize,
    /// Activation after the dense part.
    pub activation: Activation,
    /// Monte-Carlo dropout rate on the output (0 for none).
    pub dropout_rate: f32,
    /// Packed weights, `inputs * outputs` values.
    pub packed_weights: &'a [f32],
    /// Bias, `outputs` values.
    pub bias: &'a [f32],
}

/// A whole network to encode.
#[derive(Clone, Copy, Debug)]
pub struct ModelSpec<'a> {
    /// Network inputs.
    pub inputs: usize,
    /// Layers in order.
    pub layers: &'a [EncodeLayer<'a>],
    /// Optional input transform `(scale, offset)`, `inputs` values each.
    pub input_transform: Option<(&'a [f32], &'a [f32])>,
}

const fn align_up(n: usize) -> usize {
    n.div_ceil(TENSOR_ALIGN) * TENSOR_ALIGN
}

/// The number of bytes [`encode`] writes for `spec`.
///
/// Saturates at `usize::MAX` for absurd shapes (which [`encode`] then rejects).
pub fn encoded_len(spec: &ModelSpec<'_>) -> usize {
    let up = |n: usize| n.saturating_add(TENSOR_ALIGN - 1) / TENSOR_ALIGN * TENSOR_ALIGN;
    let mut n =
        up(HEADER_LEN.saturating_add(spec.layers.len().saturating_mul(LAYER_RECORD_LEN_1_0)));
    if spec.input_transform.is_some() {
        n = n.saturating_add(up(spec.inputs.saturating_mul(8)));
    }
    for l in spec.layers {
        let w = l.inputs.saturating_mul(l.outputs).saturating_mul(4);
        n = n
            .saturating_add(up(w))
            .saturating_add(up(l.outputs.saturating_mul(4)));
    }
    n
}

/// Writes `spec` (an f32 network) as a model file into `out` and returns its length
/// ([`encoded_len`]). The file is version 1.0 (48-byte records; every 1.x reader reads it
/// fully). The result passes [`ModelView::new_checked`]; the same checks are applied here
/// first, so an invalid network is reported before anything is written (as [`ModelError`]).
/// int8 networks: [`encode_int8`].
pub fn encode(spec: &ModelSpec<'_>, out: &mut [u8]) -> Result<usize, ModelError> {
    use ModelError as E;
    let n_layers = spec.layers.len();
    if n_layers == 0 || n_layers > MAX_LAYERS {
        return Err(E::BadHeader {
            field: "layer count",
        });
    }
    // Validate the spec before writing anything.
    let mut width = spec.inputs;
    for (i, l) in spec.layers.iter().enumerate() {
        let li = Some(layer_id(i)); // i < MAX_LAYERS
        if l.inputs != width {
            return Err(E::ShapeChain {
                layer: layer_id(i),
                expected: width,
                found: l.inputs,
            });
        }
        if l.inputs == 0 || l.outputs == 0 {
            return Err(E::EmptyLayer { layer: layer_id(i) });
        }
        // Byte lengths the format can record (u32); the slices' own byte lengths always fit in
        // usize, but are reported saturated all the same.
        let too_large = |tensor| E::TooLarge { layer: li, tensor };
        let wbytes = l
            .inputs
            .checked_mul(l.outputs)
            .and_then(|n| n.checked_mul(4))
            .filter(|&n| u32::try_from(n).is_ok())
            .ok_or(too_large(Tensor::Weights))?;
        let bbytes = l
            .outputs
            .checked_mul(4)
            .filter(|&n| u32::try_from(n).is_ok())
            .ok_or(too_large(Tensor::Bias))?;
        if l.packed_weights.len().saturating_mul(4) != wbytes {
            return Err(E::TensorLength {
                layer: li,
                tensor: Tensor::Weights,
                expected: wbytes,
                found: l.packed_weights.len().saturating_mul(4),
            });
        }
        if l.bias.len().saturating_mul(4) != bbytes {
            return Err(E::TensorLength {
                layer: li,
                tensor: Tensor::Bias,
                expected: bbytes,
                found: l.bias.len().saturating_mul(4),
            });
        }
        check_finite(li, Tensor::Weights, l.packed_weights)?;
        check_finite(li, Tensor::Bias, l.bias)?;
        if !(0.0..1.0).contains(&l.dropout_rate) {
            return Err(E::BadDropoutRate { layer: layer_id(i) });
        }
        if !activation_code(&l.activation).1.is_finite() {
            return Err(E::NonFinite {
                layer: li,
                tensor: Tensor::ActivationParameter,
                index: 0,
            });
        }
        width = l.outputs;
    }
    check_transform(spec.inputs, spec.input_transform)?;
    let total = encoded_len(spec);
    // `encoded_len` saturates at usize::MAX, which is u32::MAX on a 32-bit target; a real total
    // is a multiple of 16, so it never equals u32::MAX.
    if total >= u32::MAX as usize {
        return Err(E::BadHeader {
            field: "file length (over 4 GiB)",
        });
    }
    let Some(out) = out.get_mut(..total) else {
        return Err(E::Truncated {
            needed: total,
            found: out.len(),
        });
    };
    out.fill(0);

    // From here every offset and length is below `total` (< 4 GiB), checked above: the
    // arithmetic and the indexing below cannot fail.
    let put32 =
        |b: &mut [u8], off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    let put_f32s = |b: &mut [u8], off: usize, v: &[f32]| {
        for (chunk, x) in b[off..off + v.len() * 4].chunks_exact_mut(4).zip(v) {
            chunk.copy_from_slice(&x.to_le_bytes());
        }
    };

    let mut at = write_header(
        out,
        Header {
            minor: 0,
            record_len: LAYER_RECORD_LEN_1_0,
            layers: n_layers,
            inputs: spec.inputs,
            outputs: width,
            total,
        },
        spec.input_transform,
    );
    for (i, l) in spec.layers.iter().enumerate() {
        let r = HEADER_LEN + i * LAYER_RECORD_LEN_1_0;
        let (code, param) = activation_code(&l.activation);
        out[r + record::KIND] = KIND_DENSE;
        out[r + record::ACTIVATION] = code;
        out[r + record::DTYPE] = DTYPE_F32;
        out[r + record::LAYOUT] = LAYOUT_PACKED4;
        put32(out, r + record::INPUTS, l.inputs as u32);
        put32(out, r + record::OUTPUTS, l.outputs as u32);
        put32(out, r + record::ACT_PARAM, param.to_bits());
        put32(out, r + record::DROPOUT, l.dropout_rate.to_bits());
        let wlen = l.inputs * l.outputs * 4;
        put32(out, r + record::WEIGHTS, at as u32);
        put32(out, r + record::WEIGHTS + 4, wlen as u32);
        put_f32s(out, at, l.packed_weights);
        at += align_up(wlen);
        let blen = l.outputs * 4;
        put32(out, r + record::BIAS, at as u32);
        put32(out, r + record::BIAS + 4, blen as u32);
        put_f32s(out, at, l.bias);
        at += align_up(blen);
    }
    let crc = file_crc(out);
    put32(out, header::CRC, crc);
    Ok(total)
}

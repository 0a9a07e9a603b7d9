//! int8 layers in the model format (version 1.1): their parameters, their validation (shared by
//! the reader and the encoder) and the encoder.
//!
//! An int8 layer is TFLite's `FULLY_CONNECTED` with int8 input and output, per-channel (or
//! per-tensor) symmetric int8 weights and an int32 bias, optionally followed by one activation
//! operator with its own output quantization (see [`crate::quant`]). Its record holds the three
//! quantizations (input, dense output, activation output) and the fused activation; its tensors
//! the packed weights, the bias, the filter scales, the kernel bias and the multipliers and
//! shifts. Everything the device computes from is stored, and everything stored is checked
//! against what TFLite derives from the scales, so a file can neither disagree with itself nor
//! with TFLite Micro.

use super::{
    check_finite, layer_id, u32_at, HEADER_LEN, LAYER_RECORD_LEN, MAX_LAYERS, TENSOR_ALIGN,
};
use super::{header, record, ModelError, Tensor};
use crate::quant::{
    self, FusedActivation, QActivation, QLeakyRelu, QLogistic, QRelu, QSoftmax, QTanh, QuantError,
    QuantParams, Requantize,
};
use crate::Activation;

/// The int8 parameters of a validated layer (see [`super::LayerParams::Int8`]), read in place.
#[derive(Clone, Copy, Debug)]
pub struct Int8Params<'a> {
    /// Quantization of the layer's input: the previous layer's `activation_output` (for the
    /// first layer, the network input's: [`super::ModelView::input_quantization`]).
    pub input: QuantParams,
    /// Quantization of the dense part's output (the activation operator's input).
    pub output: QuantParams,
    /// Quantization of the layer's output, after the activation operator (equal to `output`
    /// when there is none).
    pub activation_output: QuantParams,
    /// The activation fused into the dense part's output clamp (ReLU, ReLU6...).
    pub fused: FusedActivation,
    /// Weight scales: one per output channel, or one for the whole tensor.
    pub filter_scales: &'a [f32],
    /// Weights in the [packed layout](crate::quant::kernel#packed-weight-layout),
    /// `inputs * outputs` values.
    pub weights: &'a [i8],
    /// TFLite's int32 bias, `outputs` values.
    pub bias: &'a [i32],
    /// The kernel bias, `bias - input_zero_point * sum(weights of the row)`, `outputs` values.
    pub kernel_bias: &'a [i32],
    /// The output stage: multipliers and shifts (one per filter scale), output zero point and
    /// the fused activation's clamp.
    pub requantize: Requantize<'a>,
    /// The activation operator after the dense part, prepared from the quantization.
    pub activation: QActivation,
}

/// The code of a fused activation in a layer record.
pub(crate) const fn fused_code(f: FusedActivation) -> u8 {
    match f {
        FusedActivation::None => 0,
        FusedActivation::Relu => 1,
        FusedActivation::ReluN1To1 => 2,
        FusedActivation::Relu6 => 3,
    }
}

const fn fused_from_code(code: u8) -> Option<FusedActivation> {
    Some(match code {
        0 => FusedActivation::None,
        1 => FusedActivation::Relu,
        2 => FusedActivation::ReluN1To1,
        3 => FusedActivation::Relu6,
        _ => return None,
    })
}

/// An int8 layer's fields before validation, from a layer record or an encoder's spec, with
/// tensors of the right lengths (checked by the caller).
pub(crate) struct Raw<'a> {
    pub activation: Activation,
    /// The int8 softmax's beta (0 for other activations).
    pub beta: f32,
    pub input: (f32, i8),
    pub output: (f32, i8),
    pub activation_output: (f32, i8),
    pub fused: u8,
    pub filter_scales: &'a [f32],
    pub weights: &'a [i8],
    pub bias: &'a [i32],
    pub kernel_bias: &'a [i32],
    pub multipliers: &'a [i32],
    pub shifts: &'a [i32],
}

#[deny(
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing
)]
fn quant(layer: u16, error: QuantError) -> ModelError {
    ModelError::Quant { layer, error }
}

#[deny(
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing
)]
fn params_of(
    layer: u16,
    (scale, zero_point): (f32, i8),
    what: &'static str,
) -> Result<QuantParams, ModelError> {
    QuantParams::new(scale, zero_point).map_err(|_| {
        quant(
            layer,
            QuantError::InvalidScale {
                what,
                channel: None,
            },
        )
    })
}

/// The checks that need no pass over the weights: the three quantizations, the fused activation
/// and its clamp, the stored multipliers' and shifts' ranges, and the activation operator with
/// its quantization (TFLite's fixed output quantization of logistic, tanh and softmax; equal
/// dense and activation outputs without an operator).
#[deny(
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing
)]
pub(crate) fn params<'a>(layer: u16, raw: &Raw<'a>) -> Result<Int8Params<'a>, ModelError> {
    let input = params_of(layer, raw.input, "input")?;
    let output = params_of(layer, raw.output, "output")?;
    let activation_output = params_of(layer, raw.activation_output, "activation output")?;
    let fused = fused_from_code(raw.fused).ok_or(ModelError::UnknownFusedActivation {
        layer,
        code: raw.fused,
    })?;
    let (lo, hi) = fused.range(output).map_err(|e| quant(layer, e))?;
    let requantize = Requantize::new(raw.multipliers, raw.shifts, output.zero_point(), lo, hi)
        .map_err(|e| quant(layer, e))?;
    let activation = match raw.activation {
        Activation::Identity => {
            if activation_output != output {
                return Err(ModelError::QuantMismatch {
                    layer,
                    what: "without an activation operator, the activation output quantization \
                           must equal the dense output's",
                });
            }
            QActivation::Identity
        }
        Activation::Relu => QActivation::Relu(
            QRelu::prepare(output, activation_output).map_err(|e| quant(layer, e))?,
        ),
        Activation::LeakyRelu { slope } => QActivation::LeakyRelu(
            QLeakyRelu::prepare(output, activation_output, slope).map_err(|e| quant(layer, e))?,
        ),
        Activation::Sigmoid => QActivation::Logistic(
            QLogistic::prepare(output, activation_output).map_err(|e| quant(layer, e))?,
        ),
        Activation::Tanh => QActivation::Tanh(
            QTanh::prepare(output, activation_output).map_err(|e| quant(layer, e))?,
        ),
        Activation::Softmax => QActivation::Softmax(
            QSoftmax::prepare(raw.beta, output, activation_output).map_err(|e| quant(layer, e))?,
        ),
    };
    Ok(Int8Params {
        input,
        output,
        activation_output,
        fused,
        filter_scales: raw.filter_scales,
        weights: raw.weights,
        bias: raw.bias,
        kernel_bias: raw.kernel_bias,
        requantize,
        activation,
    })
}

/// The checks that read every value: each filter scale positive and finite, each stored
/// multiplier and shift equal to TFLite's from the scales
/// (`QuantizeMultiplier(double(input_scale) * double(filter_scale) / double(output_scale))`),
/// the kernel bias equal to `bias - input_zero_point * row sums` of the weights.
#[deny(
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing
)]
pub(crate) fn check_values(
    layer: u16,
    inputs: usize,
    p: &Int8Params<'_>,
) -> Result<(), ModelError> {
    let per_channel = p.filter_scales.len() != 1;
    let stored = p.requantize.multipliers().iter().zip(p.requantize.shifts());
    for (c, (&fs, (&m, &s))) in p.filter_scales.iter().zip(stored).enumerate() {
        let channel = per_channel.then_some(c);
        // Both TFLite paths (per-channel and per-tensor) compute this same product in double.
        let q = quant::per_tensor_multiplier(p.input, fs, p.output).map_err(|e| {
            quant(
                layer,
                match e {
                    QuantError::InvalidScale { what, .. } => {
                        QuantError::InvalidScale { what, channel }
                    }
                    QuantError::MultiplierOutOfRange { what, .. } => {
                        QuantError::MultiplierOutOfRange { what, channel }
                    }
                    other => other,
                },
            )
        })?;
        if (q.multiplier(), q.shift()) != (m, s) {
            return Err(ModelError::StoredMultiplier { layer, channel: c });
        }
    }
    quant::kernel::check_kernel_bias_packed(
        p.weights,
        inputs,
        p.bias,
        p.input.zero_point(),
        p.kernel_bias,
    )
    .map_err(|e| quant(layer, e))
}

/// One int8 layer to encode: weights in the packed layout ([`crate::quant::kernel::pack`]),
/// with every derived value (kernel bias, multipliers and shifts) computed by the caller the way
/// TFLite does ([`crate::quant::kernel::kernel_bias`], [`crate::quant::per_channel_multipliers`]
/// or [`crate::quant::per_tensor_multiplier`]); [`encode_int8`] checks them.
#[derive(Clone, Copy, Debug)]
pub struct Int8EncodeLayer<'a> {
    /// Inputs.
    pub inputs: usize,
    /// Outputs.
    pub outputs: usize,
    /// The activation operator after the dense part: `Identity` (none; a ReLU is better fused),
    /// `Relu`, `LeakyRelu` (its slope is the operator's alpha), `Sigmoid`, `Tanh`, `Softmax`.
    pub activation: Activation,
    /// The softmax's beta (TFLite's; 1 for a plain softmax); 0 for other activations.
    pub softmax_beta: f32,
    /// Quantization of the layer's input.
    pub input: QuantParams,
    /// Quantization of the dense part's output.
    pub output: QuantParams,
    /// Quantization after the activation operator (`output` without one).
    pub activation_output: QuantParams,
    /// The activation fused into the output clamp.
    pub fused: FusedActivation,
    /// Weight scales: `outputs` values (per channel) or one (per tensor).
    pub filter_scales: &'a [f32],
    /// Packed weights, `inputs * outputs` values.
    pub packed_weights: &'a [i8],
    /// int32 bias, `outputs` values.
    pub bias: &'a [i32],
    /// Kernel bias, `outputs` values.
    pub kernel_bias: &'a [i32],
    /// Output multipliers, one per filter scale.
    pub multipliers: &'a [i32],
    /// Output shifts, one per filter scale.
    pub shifts: &'a [i32],
}

/// A whole int8 network to encode.
#[derive(Clone, Copy, Debug)]
pub struct Int8ModelSpec<'a> {
    /// Network inputs.
    pub inputs: usize,
    /// Layers in order.
    pub layers: &'a [Int8EncodeLayer<'a>],
    /// Optional input transform `(scale, offset)`, `inputs` values each, applied in f32 before
    /// the input is quantized with the first layer's input quantization.
    pub input_transform: Option<(&'a [f32], &'a [f32])>,
}

const fn align_up(n: usize) -> usize {
    n.div_ceil(TENSOR_ALIGN) * TENSOR_ALIGN
}

/// Byte lengths of an int8 layer's tensors: weights, bias, scales, kernel bias, multipliers and
/// shifts. Saturating (absurd shapes are rejected by [`encode_int8`]).
fn tensor_lens(l: &Int8EncodeLayer<'_>) -> [usize; 5] {
    [
        l.inputs.saturating_mul(l.outputs),
        l.outputs.saturating_mul(4),
        l.filter_scales.len().saturating_mul(4),
        l.outputs.saturating_mul(4),
        l.filter_scales.len().saturating_mul(8),
    ]
}

/// The number of bytes [`encode_int8`] writes for `spec`; saturates at `usize::MAX` for absurd
/// shapes.
pub fn encoded_len_int8(spec: &Int8ModelSpec<'_>) -> usize {
    let up = |n: usize| n.saturating_add(TENSOR_ALIGN - 1) / TENSOR_ALIGN * TENSOR_ALIGN;
    let mut n = up(HEADER_LEN.saturating_add(spec.layers.len().saturating_mul(LAYER_RECORD_LEN)));
    if spec.input_transform.is_some() {
        n = n.saturating_add(up(spec.inputs.saturating_mul(8)));
    }
    for l in spec.layers {
        for len in tensor_lens(l) {
            n = n.saturating_add(up(len));
        }
    }
    n
}

/// Checks one layer of an int8 spec (lengths, then everything the reader checks) and returns
/// its validated parameters.
fn check_layer<'a>(i: usize, l: &Int8EncodeLayer<'a>) -> Result<Int8Params<'a>, ModelError> {
    use ModelError as E;
    let layer = layer_id(i);
    let li = Some(layer);
    if l.inputs == 0 || l.outputs == 0 {
        return Err(E::EmptyLayer { layer });
    }
    let n = l
        .inputs
        .checked_mul(l.outputs)
        .filter(|&n| u32::try_from(n).is_ok())
        .ok_or(E::TooLarge {
            layer: li,
            tensor: Tensor::Weights,
        })?;
    let channels = l.filter_scales.len();
    if channels != 1 && channels != l.outputs {
        return Err(E::TensorLength {
            layer: li,
            tensor: Tensor::Scales,
            expected: l.outputs.saturating_mul(4),
            found: channels.saturating_mul(4),
        });
    }
    for (tensor, expected, found) in [
        (Tensor::Weights, n, l.packed_weights.len()),
        (Tensor::Bias, l.outputs, l.bias.len()),
        (Tensor::KernelBias, l.outputs, l.kernel_bias.len()),
        (Tensor::Requantization, channels, l.multipliers.len()),
        (Tensor::Requantization, channels, l.shifts.len()),
    ] {
        if expected != found {
            let size = if tensor == Tensor::Weights { 1 } else { 4 };
            return Err(E::TensorLength {
                layer: li,
                tensor,
                expected: expected.saturating_mul(size),
                found: found.saturating_mul(size),
            });
        }
    }
    check_finite(li, Tensor::Scales, l.filter_scales)?;
    let beta = match l.activation {
        Activation::Softmax => l.softmax_beta,
        _ if l.softmax_beta.to_bits() != 0 => {
            return Err(E::Reserved {
                layer: li,
                field: "softmax beta (only a softmax has one)",
            })
        }
        _ => 0.0,
    };
    let raw = Raw {
        activation: l.activation,
        beta,
        input: (l.input.scale(), l.input.zero_point()),
        output: (l.output.scale(), l.output.zero_point()),
        activation_output: (
            l.activation_output.scale(),
            l.activation_output.zero_point(),
        ),
        fused: fused_code(l.fused),
        filter_scales: l.filter_scales,
        weights: l.packed_weights,
        bias: l.bias,
        kernel_bias: l.kernel_bias,
        multipliers: l.multipliers,
        shifts: l.shifts,
    };
    let p = params(layer, &raw)?;
    check_values(layer, l.inputs, &p)?;
    Ok(p)
}

/// Writes `spec` as a version-1.1 model file into `out` and returns its length
/// ([`encoded_len_int8`]). Everything [`super::ModelView::new_checked`] checks is checked first
/// (each layer's lengths, quantizations, multipliers and kernel bias; the layers' shapes and
/// quantizations chained), so an invalid network is reported before anything is written.
pub fn encode_int8(spec: &Int8ModelSpec<'_>, out: &mut [u8]) -> Result<usize, ModelError> {
    use ModelError as E;
    let n_layers = spec.layers.len();
    if n_layers == 0 || n_layers > MAX_LAYERS {
        return Err(E::BadHeader {
            field: "layer count",
        });
    }
    let mut width = spec.inputs;
    let mut previous: Option<QuantParams> = None;
    for (i, l) in spec.layers.iter().enumerate() {
        if l.inputs != width {
            return Err(E::ShapeChain {
                layer: layer_id(i),
                expected: width,
                found: l.inputs,
            });
        }
        let p = check_layer(i, l)?;
        if previous.is_some_and(|q| q != p.input) {
            return Err(E::QuantMismatch {
                layer: layer_id(i),
                what: "the input quantization differs from the previous layer's output",
            });
        }
        previous = Some(p.activation_output);
        width = l.outputs;
    }
    super::check_transform(spec.inputs, spec.input_transform)?;
    let total = encoded_len_int8(spec);
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
    let mut at = super::write_header(
        out,
        super::Header {
            minor: 1,
            record_len: LAYER_RECORD_LEN,
            layers: n_layers,
            inputs: spec.inputs,
            outputs: width,
            total,
        },
        spec.input_transform,
    );
    for (i, l) in spec.layers.iter().enumerate() {
        let r = HEADER_LEN + i * LAYER_RECORD_LEN;
        let (code, param) = super::activation_code(&l.activation);
        let param = if l.activation == Activation::Softmax {
            l.softmax_beta
        } else {
            param
        };
        out[r + record::KIND] = super::KIND_DENSE;
        out[r + record::ACTIVATION] = code;
        out[r + record::DTYPE] = super::DTYPE_I8;
        out[r + record::LAYOUT] = super::LAYOUT_I8_PACKED4;
        put32(out, r + record::INPUTS, l.inputs as u32);
        put32(out, r + record::OUTPUTS, l.outputs as u32);
        put32(out, r + record::ACT_PARAM, param.to_bits());
        put32(out, r + record::INPUT_SCALE, l.input.scale().to_bits());
        put32(out, r + record::OUTPUT_SCALE, l.output.scale().to_bits());
        put32(
            out,
            r + record::ACT_OUTPUT_SCALE,
            l.activation_output.scale().to_bits(),
        );
        out[r + record::INPUT_ZP] = l.input.zero_point() as u8;
        out[r + record::OUTPUT_ZP] = l.output.zero_point() as u8;
        out[r + record::ACT_OUTPUT_ZP] = l.activation_output.zero_point() as u8;
        out[r + record::FUSED] = fused_code(l.fused);
        let lens = tensor_lens(l);
        let fields = [
            record::WEIGHTS,
            record::BIAS,
            record::SCALES,
            record::KERNEL_BIAS,
            record::REQUANT,
        ];
        let mut starts = [0usize; 5];
        for ((field, len), start) in fields.into_iter().zip(lens).zip(&mut starts) {
            put32(out, r + field, at as u32);
            put32(out, r + field + 4, len as u32);
            *start = at;
            at += align_up(len);
        }
        let range = |k: usize| starts[k]..starts[k] + lens[k];
        for (d, w) in out[range(0)].iter_mut().zip(l.packed_weights) {
            *d = *w as u8;
        }
        put_i32s(&mut out[range(1)], l.bias);
        for (d, v) in out[range(2)].chunks_exact_mut(4).zip(l.filter_scales) {
            d.copy_from_slice(&v.to_le_bytes());
        }
        put_i32s(&mut out[range(3)], l.kernel_bias);
        let (m, s) = out[range(4)].split_at_mut(l.multipliers.len() * 4);
        put_i32s(m, l.multipliers);
        put_i32s(s, l.shifts);
    }
    let crc = super::file_crc(out);
    put32(out, header::CRC, crc);
    Ok(total)
}

fn put_i32s(b: &mut [u8], v: &[i32]) {
    for (d, x) in b.chunks_exact_mut(4).zip(v) {
        d.copy_from_slice(&x.to_le_bytes());
    }
}

/// An int8 layer's tensors, validated for range, alignment and length: filter scales, weights,
/// bias, kernel bias, multipliers then shifts.
pub(crate) type Tensors<'a> = (&'a [f32], &'a [i8], &'a [i32], &'a [i32], &'a [i32]);

/// Reads an int8 layer's record fields (the tensors are passed in, already validated for range,
/// alignment and length).
#[deny(
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing
)]
pub(crate) fn raw_from_record<'a>(
    r: &[u8],
    activation: Activation,
    beta: f32,
    tensors: Tensors<'a>,
) -> Raw<'a> {
    let f32_at = |off| u32_at(r, off).map(f32::from_bits).unwrap_or(0.0);
    let i8_at = |off| r.get(off).map(|&b| b as i8).unwrap_or(0);
    let (filter_scales, weights, bias, kernel_bias, requant) = tensors;
    let (multipliers, shifts) = requant.split_at(filter_scales.len().min(requant.len()));
    Raw {
        activation,
        beta,
        input: (f32_at(record::INPUT_SCALE), i8_at(record::INPUT_ZP)),
        output: (f32_at(record::OUTPUT_SCALE), i8_at(record::OUTPUT_ZP)),
        activation_output: (
            f32_at(record::ACT_OUTPUT_SCALE),
            i8_at(record::ACT_OUTPUT_ZP),
        ),
        fused: r.get(record::FUSED).copied().unwrap_or(0),
        filter_scales,
        weights,
        bias,
        kernel_bias,
        multipliers,
        shifts,
    }
}

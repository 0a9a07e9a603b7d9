//! Post-training int8 quantization: lowered f32 device layers (batch norm already folded) to an
//! int8 model file that the core runs with TensorFlow Lite Micro's arithmetic.
//!
//! What it does, following TFLite's post-training quantization:
//! - **weights**: symmetric int8 per output channel (zero point 0), scale `max |w| / 127`,
//!   `q = round(w / scale)` clamped to `[-127, 127]`; a row of zeros gets the smallest scale of
//!   the layer's other rows (any positive scale represents it exactly);
//! - **activations**: asymmetric int8 per tensor, calibrated on training examples run through
//!   the f32 layers: the range of each layer's input and output (`minmax`: the observed
//!   minimum and maximum; `percentile`: the 0.01th and 99.99th percentiles, which ignore rare
//!   outliers), widened to include 0, then TFLite's `scale = (max - min) / 255` and nudged zero
//!   point `clamp(round(-128 - min / scale), -128, 127)`;
//! - **biases**: int32, `round(b / (input_scale * weight_scale))`;
//! - **activations of the layers**: ReLU fused into the dense layer's output clamp (its output
//!   range is calibrated after the ReLU); leaky ReLU as its own operator with its own output
//!   range; sigmoid, tanh and softmax as their operators with TFLite's fixed output
//!   quantization (1/256 and -128; 1/128 and 0; 1/256 and -128);
//! - a uniform input transform (the same scale and offset for every input, such as pixels
//!   divided by 255) folded into the first layer, so the device quantizes raw inputs (no
//!   transform in the file); a per-input transform (standardization) is kept and runs in f32
//!   before the quantization;
//! - the multipliers and shifts, and the kernel bias, from the scales with the core's functions
//!   (TFLite's `QuantizeMultiplier`), and the file written with [`microdnn::model::encode_int8`],
//!   which checks everything the device's reader checks.
//!
//! What cannot be represented is an error naming the device layer: an int32 accumulator that
//! could overflow (more than 65,793 inputs), a softmax over 4,096 outputs or more (TFLite's
//! fixed-point sum overflows), a bias that does not fit int32 at its scale, or a quantization
//! TFLite's operators refuse (a leaky-ReLU slope whose multiplier cannot be applied, a logistic
//! or softmax input scale below their algorithms' range). Calibration data with a NaN or an
//! infinity is refused, as is an f32 network that overflows on it. Monte-Carlo dropout rates are
//! not kept (int8 layers have none).
//!
//! [`compare`] measures what quantization costs: the f32 and int8 files, both run by the core,
//! on the same test examples.

use microdnn::model::{Int8EncodeLayer, Int8ModelSpec};
use microdnn::quant::{self, kernel as qkernel, FusedActivation, QuantParams};
use microdnn::Activation;
use serde::Serialize;

use super::{AlignedModel, DeviceLayer, ExportError, Lowered};

/// How the activation ranges are calibrated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum CalibrationMethod {
    /// The smallest and largest values seen (TFLite's default).
    Minmax,
    /// The 0.01th and 99.99th percentiles of the values seen: rare outliers are clipped, the
    /// common values get finer steps.
    Percentile,
}

/// Largest number of inputs of an int8 layer: beyond, `sum w (x - zx)` (each term up to
/// `127 * 255` in magnitude) could overflow TFLite's int32 accumulator.
pub const MAX_INT8_INPUTS: usize = 65_793;
/// Largest softmax width: TFLite's int8 softmax sums `exp` in `Q12.19`, which overflows at 4096.
pub const MAX_INT8_SOFTMAX: usize = 4_095;

/// Percentile of [`CalibrationMethod::Percentile`] (and its mirror, 100 minus it, for minima).
const PERCENTILE: f64 = 99.99;

/// One quantized layer, as [`quantize`] reports it.
#[derive(Clone, Debug, Serialize)]
pub struct QuantizedLayer {
    /// Inputs.
    pub inputs: usize,
    /// Outputs.
    pub outputs: usize,
    /// The activation fused into the output clamp (`"relu"` or `"none"`).
    pub fused: &'static str,
    /// The activation operator after the dense part (`"identity"` for none).
    pub operator: String,
    /// Input scale and zero point.
    pub input: (f32, i8),
    /// Dense output scale and zero point.
    pub output: (f32, i8),
    /// Scale and zero point after the activation operator.
    pub activation_output: (f32, i8),
    /// Smallest and largest per-channel weight scale.
    pub weight_scale_range: (f32, f32),
    /// Rows whose weights are all zero (they get the smallest scale of the others).
    pub zero_rows: usize,
}

/// The result of [`quantize`].
#[derive(Clone, Debug)]
pub struct Quantized {
    /// The int8 model file.
    pub bytes: Vec<u8>,
    /// Per layer, what was chosen.
    pub layers: Vec<QuantizedLayer>,
    /// Calibration examples used.
    pub calibration_examples: usize,
    /// Whether a uniform input transform was folded into the first layer.
    pub transform_folded: bool,
}

/// One layer's parameters, owned, before encoding.
struct Owned {
    packed: Vec<i8>,
    bias: Vec<i32>,
    kernel_bias: Vec<i32>,
    scales: Vec<f32>,
    multipliers: Vec<i32>,
    shifts: Vec<i32>,
    activation: Activation,
    beta: f32,
    input: QuantParams,
    output: QuantParams,
    activation_output: QuantParams,
    fused: FusedActivation,
}

fn error(layer: usize, why: impl Into<String>) -> ExportError {
    ExportError::Quantize {
        layer,
        why: why.into(),
    }
}

/// The values one tensor took over the calibration examples: min and max always, every value
/// for the percentile method.
struct Observed {
    min: f64,
    max: f64,
    values: Vec<f32>,
    keep: bool,
}

impl Observed {
    fn new(method: CalibrationMethod) -> Self {
        Observed {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            values: Vec::new(),
            keep: method == CalibrationMethod::Percentile,
        }
    }

    fn add(&mut self, v: &[f64]) {
        for &x in v {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
            if self.keep {
                self.values.push(x as f32);
            }
        }
    }

    /// The calibrated range, including 0.
    fn range(&mut self) -> (f64, f64) {
        let (lo, hi) = if self.keep && !self.values.is_empty() {
            self.values.sort_by(f32::total_cmp);
            let at = |p: f64| {
                let i = (p / 100.0 * (self.values.len() - 1) as f64).round() as usize;
                f64::from(self.values[i.min(self.values.len() - 1)])
            };
            (at(100.0 - PERCENTILE), at(PERCENTILE))
        } else {
            (self.min, self.max)
        };
        (lo.min(0.0), hi.max(0.0))
    }
}

/// TFLite's asymmetric int8 parameters for the real range `[lo, hi]` (widened to include 0):
/// `scale = (hi - lo) / 255`, zero point `-128 - lo / scale` rounded and clamped (the "nudged"
/// zero point, so that real 0 is exactly representable). A range of width 0 (a tensor that is
/// always 0) gets the range `[0, 1]`. `None` when the scale is not a positive finite `f32` (a
/// range beyond about `8.7e40`, or below `255` times the smallest normal `f32`).
pub fn asymmetric_params(lo: f64, hi: f64) -> Option<QuantParams> {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let (lo, hi) = if hi - lo > 0.0 { (lo, hi) } else { (0.0, 1.0) };
    let scale = ((hi - lo) / 255.0) as f32;
    if !(scale.is_finite() && scale >= f32::MIN_POSITIVE) {
        return None;
    }
    let zero_point = (-128.0 - lo / f64::from(scale))
        .round()
        .clamp(-128.0, 127.0) as i8;
    QuantParams::new(scale, zero_point).ok()
}

/// [`asymmetric_params`] of an observed tensor, or an error naming the layer.
fn params_of(
    observed: &mut Observed,
    layer: usize,
    what: &str,
) -> Result<QuantParams, ExportError> {
    let (lo, hi) = observed.range();
    asymmetric_params(lo, hi).ok_or_else(|| {
        error(
            layer,
            format!("its {what} range [{lo:e}, {hi:e}] has no int8 scale (not a finite f32)"),
        )
    })
}

/// What calibration observed: the network input, and per layer its dense output (after a fused
/// ReLU) and its activation output; and the number of examples.
struct Calibration {
    input: Observed,
    layers: Vec<(Observed, Observed)>,
    examples: usize,
}

/// Runs the lowered f32 layers (f64 arithmetic) on each calibration input and observes the
/// network input, and each layer's dense output (after a fused ReLU) and activation output.
fn calibrate(
    lowered: &Lowered,
    calibration: &[f32],
    method: CalibrationMethod,
) -> Result<Calibration, ExportError> {
    let n_in = lowered.layers[0].inputs;
    if calibration.is_empty() || !calibration.len().is_multiple_of(n_in) {
        return Err(ExportError::Calibration(format!(
            "{} calibration values are not a whole number (at least 1) of {n_in}-input examples",
            calibration.len()
        )));
    }
    let mut input = Observed::new(method);
    let mut layers: Vec<(Observed, Observed)> = lowered
        .layers
        .iter()
        .map(|_| (Observed::new(method), Observed::new(method)))
        .collect();
    let t = &lowered.transform;
    let mut examples = 0;
    for (e, raw) in calibration.chunks_exact(n_in).enumerate() {
        if let Some(j) = raw.iter().position(|v| !v.is_finite()) {
            return Err(ExportError::Calibration(format!(
                "calibration example {e}: input {j} is {} (NaN or infinite values are refused)",
                raw[j]
            )));
        }
        // What the device computes first: x' = x * scale + offset, in f32.
        let mut h: Vec<f64> = raw
            .iter()
            .zip(t.scale.iter().zip(&t.offset))
            .map(|(x, (s, o))| f64::from(x * s + o))
            .collect();
        input.add(&h);
        for (k, (l, (dense_obs, act_obs))) in lowered.layers.iter().zip(&mut layers).enumerate() {
            let mut z: Vec<f64> = (0..l.outputs)
                .map(|o| {
                    let row = &l.rows[o * l.inputs..(o + 1) * l.inputs];
                    f64::from(l.bias[o])
                        + row
                            .iter()
                            .zip(&h)
                            .map(|(w, v)| f64::from(*w) * v)
                            .sum::<f64>()
                })
                .collect();
            // The f32 network itself overflows there: no range to calibrate.
            if let Some(o) = z
                .iter()
                .position(|v| v.is_nan() || v.abs() > f64::from(f32::MAX))
            {
                return Err(error(
                    k,
                    format!("output {o} overflows f32 on calibration example {e}"),
                ));
            }
            if l.activation == Activation::Relu {
                z.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            dense_obs.add(&z);
            apply(l.activation, &mut z);
            act_obs.add(&z);
            h = z;
        }
        examples += 1;
    }
    Ok(Calibration {
        input,
        layers,
        examples,
    })
}

/// An activation in f64 (as the equivalence check's reference).
fn apply(a: Activation, x: &mut [f64]) {
    match a {
        Activation::Identity => {}
        Activation::Relu => x.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::LeakyRelu { slope } => x.iter_mut().for_each(|v| {
            if *v < 0.0 {
                *v *= f64::from(slope)
            }
        }),
        Activation::Sigmoid => x.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
        Activation::Tanh => x.iter_mut().for_each(|v| *v = v.tanh()),
        Activation::Softmax => {
            let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = x.iter().map(|v| (v - m).exp()).sum();
            x.iter_mut().for_each(|v| *v = (*v - m).exp() / s);
        }
    }
}

/// The fixed output quantization TFLite's operator has, if any.
fn fixed_output(a: Activation) -> Option<QuantParams> {
    let p = |s: f32, z: i8| QuantParams::new(s, z).expect("TFLite's fixed scales are valid");
    match a {
        Activation::Sigmoid | Activation::Softmax => Some(p(1.0 / 256.0, -128)),
        Activation::Tanh => Some(p(1.0 / 128.0, 0)),
        _ => None,
    }
}

/// Symmetric per-channel int8 weights of a row-major `[outputs][inputs]` matrix: the scales,
/// the quantized rows and the number of all-zero rows.
fn quantize_weights(l: &DeviceLayer) -> (Vec<f32>, Vec<i8>, usize) {
    let maxima: Vec<f32> = l
        .rows
        .chunks(l.inputs)
        .map(|r| r.iter().fold(0.0f32, |m, w| m.max(w.abs())))
        .collect();
    let smallest = maxima
        .iter()
        .filter(|&&m| m > 0.0)
        .fold(f32::INFINITY, |a, &m| a.min(m / 127.0));
    let fallback = if smallest.is_finite() {
        smallest
    } else {
        1.0 / 127.0
    };
    let scales: Vec<f32> = maxima
        .iter()
        .map(|&m| if m > 0.0 { m / 127.0 } else { fallback })
        .collect();
    let rows: Vec<i8> = l
        .rows
        .chunks(l.inputs)
        .zip(&scales)
        .flat_map(|(r, &s)| {
            r.iter()
                .map(move |&w| (f64::from(w) / f64::from(s)).round().clamp(-127.0, 127.0) as i8)
        })
        .collect();
    let zero_rows = maxima.iter().filter(|&&m| m == 0.0).count();
    (scales, rows, zero_rows)
}

/// A uniform input transform (`x' = x * s + o` with the same `s > 0` and `o` for every input,
/// such as pixels divided by 255) folded into the first layer (`W' = s W`,
/// `b' = b + o W 1`, in f64 then rounded to f32), or `None` if the transform is the identity or
/// not uniform. The int8 file then quantizes raw inputs directly: the same int8 values (the
/// quantization of `x'` is an affine image of the quantization of `x`, with the same
/// resolution), without the transform's `8 * inputs` bytes of flash and its step on the device.
/// Transforms that differ between inputs (standardization) are kept: one per-tensor input
/// quantization could not give every input its own range.
fn fold_uniform_transform(lowered: &Lowered) -> Option<Lowered> {
    let t = &lowered.transform;
    let (s0, o0) = (*t.scale.first()?, *t.offset.first()?);
    let uniform = t.scale.iter().all(|&s| s == s0) && t.offset.iter().all(|&o| o == o0);
    if !(uniform && s0 > 0.0 && s0.is_finite()) || (s0 == 1.0 && o0 == 0.0) {
        return None;
    }
    let mut folded = lowered.clone();
    let first = &mut folded.layers[0];
    for (row, b) in first.rows.chunks_mut(first.inputs).zip(&mut first.bias) {
        let sum: f64 = row.iter().map(|&w| f64::from(w)).sum();
        *b = (f64::from(*b) + f64::from(o0) * sum) as f32;
        for w in row {
            *w = (f64::from(*w) * f64::from(s0)) as f32;
        }
    }
    let n = first.inputs;
    folded.transform = crate::data::InputTransform::identity(n);
    Some(folded)
}

/// Quantizes `lowered` to an int8 model file, calibrating the activation ranges on the raw
/// (untransformed) inputs `calibration` (examples of `inputs` values, typically the first
/// training examples). See the module docs for the rules and the errors.
pub fn quantize(
    lowered: &Lowered,
    calibration: &[f32],
    method: CalibrationMethod,
) -> Result<Quantized, ExportError> {
    for (k, l) in lowered.layers.iter().enumerate() {
        if l.inputs > MAX_INT8_INPUTS {
            return Err(error(
                k,
                format!(
                    "{} inputs: int8 accumulators could overflow int32 above {MAX_INT8_INPUTS}",
                    l.inputs
                ),
            ));
        }
        if l.activation == Activation::Softmax && l.outputs > MAX_INT8_SOFTMAX {
            return Err(error(
                k,
                format!(
                    "a softmax over {} outputs: TFLite's int8 softmax is defined up to {MAX_INT8_SOFTMAX}",
                    l.outputs
                ),
            ));
        }
    }
    let folded = fold_uniform_transform(lowered);
    let transform_folded = folded.is_some();
    let lowered = folded.as_ref().unwrap_or(lowered);
    let Calibration {
        input: mut input_obs,
        layers: mut layer_obs,
        examples,
    } = calibrate(lowered, calibration, method)?;
    let mut input = params_of(&mut input_obs, 0, "input")?;
    let mut owned = Vec::new();
    let mut report = Vec::new();
    for (k, (l, (dense_obs, act_obs))) in lowered.layers.iter().zip(&mut layer_obs).enumerate() {
        let output = params_of(dense_obs, k, "output")?;
        let (fused, activation) = match l.activation {
            Activation::Relu => (FusedActivation::Relu, Activation::Identity),
            a => (FusedActivation::None, a),
        };
        let activation_output = match (activation, fixed_output(activation)) {
            (Activation::Identity, _) => output,
            (_, Some(fixed)) => fixed,
            (_, None) => params_of(act_obs, k, "activation output")?,
        };
        let (scales, rows, zero_rows) = quantize_weights(l);
        let bias = l
            .bias
            .iter()
            .zip(&scales)
            .enumerate()
            .map(|(o, (&b, &s))| {
                let q = (f64::from(b) / (f64::from(input.scale()) * f64::from(s))).round();
                if (f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&q) {
                    Ok(q as i32)
                } else {
                    Err(error(
                        k,
                        format!("the bias of output {o} ({b}) does not fit int32 at its scale"),
                    ))
                }
            })
            .collect::<Result<Vec<i32>, _>>()?;
        let (mut multipliers, mut shifts) = (vec![0; l.outputs], vec![0; l.outputs]);
        quant::per_channel_multipliers(input, &scales, output, &mut multipliers, &mut shifts)
            .map_err(|e| error(k, e.to_string()))?;
        let mut packed = vec![0i8; rows.len()];
        qkernel::pack(&rows, l.inputs, l.outputs, &mut packed)
            .map_err(|e| error(k, e.to_string()))?;
        let mut kernel_bias = vec![0; l.outputs];
        qkernel::kernel_bias(&rows, l.inputs, &bias, input.zero_point(), &mut kernel_bias)
            .map_err(|e| error(k, e.to_string()))?;
        report.push(QuantizedLayer {
            inputs: l.inputs,
            outputs: l.outputs,
            fused: fused.name(),
            operator: activation.to_string(),
            input: (input.scale(), input.zero_point()),
            output: (output.scale(), output.zero_point()),
            activation_output: (activation_output.scale(), activation_output.zero_point()),
            weight_scale_range: scales
                .iter()
                .fold((f32::INFINITY, 0.0f32), |(a, b), &s| (a.min(s), b.max(s))),
            zero_rows,
        });
        owned.push(Owned {
            packed,
            bias,
            kernel_bias,
            scales,
            multipliers,
            shifts,
            activation,
            beta: if activation == Activation::Softmax {
                1.0
            } else {
                0.0
            },
            input,
            output,
            activation_output,
            fused,
        });
        input = activation_output;
    }
    let layers: Vec<Int8EncodeLayer<'_>> = owned
        .iter()
        .zip(&lowered.layers)
        .map(|(o, l)| Int8EncodeLayer {
            inputs: l.inputs,
            outputs: l.outputs,
            activation: o.activation,
            softmax_beta: o.beta,
            input: o.input,
            output: o.output,
            activation_output: o.activation_output,
            fused: o.fused,
            filter_scales: &o.scales,
            packed_weights: &o.packed,
            bias: &o.bias,
            kernel_bias: &o.kernel_bias,
            multipliers: &o.multipliers,
            shifts: &o.shifts,
        })
        .collect();
    let t = &lowered.transform;
    let identity = t.scale.iter().all(|&s| s == 1.0) && t.offset.iter().all(|&o| o == 0.0);
    let spec = Int8ModelSpec {
        inputs: lowered.layers[0].inputs,
        layers: &layers,
        input_transform: (!identity).then_some((&t.scale[..], &t.offset[..])),
    };
    let mut bytes = vec![0u8; microdnn::model::encoded_len_int8(&spec)];
    let n = microdnn::model::encode_int8(&spec, &mut bytes)?;
    bytes.truncate(n);
    Ok(Quantized {
        bytes,
        layers: report,
        calibration_examples: examples,
        transform_folded,
    })
}

/// The f32 and int8 files of one network on the same labelled examples, both run by the core
/// exactly as a device runs them.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Comparison {
    /// Examples compared.
    pub samples: usize,
    /// Accuracy of the f32 file.
    pub f32_accuracy: f64,
    /// Accuracy of the int8 file.
    pub int8_accuracy: f64,
    /// Examples on which both predict the same class.
    pub same_class: usize,
    /// Largest |f32 output - dequantized int8 output|.
    pub max_abs_diff: f64,
}

/// Runs both files on `x` (raw inputs, row-major) and scores them against `labels`.
pub fn compare(
    f32_file: &AlignedModel,
    int8_file: &AlignedModel,
    x: &[f32],
    labels: &[u32],
) -> Result<Comparison, ExportError> {
    let (a, b) = (f32_file.view()?, int8_file.view()?);
    let n_in = a.inputs();
    let w = a.max_width().max(b.max_width());
    let (mut p, mut q) = (vec![0.0f32; w], vec![0.0f32; w]);
    let mut c = Comparison::default();
    let (mut ok32, mut ok8) = (0usize, 0usize);
    for (raw, &label) in x.chunks_exact(n_in).zip(labels) {
        let ya = a
            .run(&mut raw.to_vec(), &mut p, &mut q)
            .map_err(ExportError::Shape)?
            .to_vec();
        let yb = b
            .run(&mut raw.to_vec(), &mut p, &mut q)
            .map_err(ExportError::Shape)?
            .to_vec();
        let (ca, cb) = (microdnn::argmax(&ya), microdnn::argmax(&yb));
        ok32 += usize::from(ca as u32 == label);
        ok8 += usize::from(cb as u32 == label);
        c.same_class += usize::from(ca == cb);
        for (u, v) in ya.iter().zip(&yb) {
            c.max_abs_diff = c.max_abs_diff.max(f64::from((u - v).abs()));
        }
        c.samples += 1;
    }
    let n = c.samples.max(1) as f64;
    c.f32_accuracy = ok32 as f64 / n;
    c.int8_accuracy = ok8 as f64 / n;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asymmetric_params_follow_tflite() {
        // [-1, 3]: scale 4/255, zero point -128 + 255/4 = -64.25 -> -64.
        let p = asymmetric_params(-1.0, 3.0).unwrap();
        assert_eq!(p.scale(), (4.0f64 / 255.0) as f32);
        assert_eq!(p.zero_point(), -64);
        // Real 0 is exactly representable: it quantizes to the zero point and back to 0.
        assert_eq!(p.dequantize(p.quantize(0.0)), 0.0);
        // A range above 0 is widened to include it: [0, 2] -> zero point -128.
        let p = asymmetric_params(0.5, 2.0).unwrap();
        assert_eq!((p.scale(), p.zero_point()), ((2.0f64 / 255.0) as f32, -128));
        // Below 0: [-2, 0] -> zero point 127.
        assert_eq!(asymmetric_params(-2.0, -0.5).unwrap().zero_point(), 127);
        // A constant-zero tensor gets a valid scale.
        let p = asymmetric_params(0.0, 0.0).unwrap();
        assert!(p.scale() > 0.0 && p.quantize(0.0) == p.zero_point());
        // Ranges no f32 scale can describe.
        assert!(asymmetric_params(0.0, 1e45).is_none());
        assert!(asymmetric_params(0.0, 1e-40).is_none());
    }

    #[test]
    fn weights_are_symmetric_per_channel_and_zero_rows_get_a_scale() {
        let l = DeviceLayer {
            inputs: 3,
            outputs: 3,
            rows: vec![0.5, -1.27, 0.0, 0.0, 0.0, 0.0, 2.54, 1.0, -0.1],
            bias: vec![0.0; 3],
            activation: Activation::Identity,
            dropout_rate: 0.0,
            weight_rel_err: 0.0,
            bias_abs_err: vec![0.0; 3],
        };
        let (scales, rows, zeros) = quantize_weights(&l);
        assert_eq!(scales[0], 1.27 / 127.0);
        assert_eq!(scales[2], 2.54 / 127.0);
        assert_eq!(
            scales[1], scales[0],
            "the zero row gets the smallest other scale"
        );
        assert_eq!(zeros, 1);
        assert_eq!(&rows[..3], &[50, -127, 0]);
        assert_eq!(&rows[3..6], &[0, 0, 0]);
        assert_eq!(&rows[6..], &[127, 50, -5]);
    }
}

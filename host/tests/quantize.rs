//! int8 post-training quantization (`export::quantize`): the file's parameters follow TFLite's
//! rules (checked here from the file's raw values), the int8 network stays close to the f32
//! one, and what cannot be represented or calibrated on is a typed error naming the layer.

use microdnn::model::{LayerParams, ModelView};
use microdnn::quant::FusedActivation;
use microdnn::Activation;
use microdnn_host::export::{self, AlignedModel, CalibrationMethod, ExportError, OutputActivation};
use microdnn_host::model::{BatchNorm1d, Layer, Linear, Sequential};
use microdnn_host::InputTransform;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn linear(rng: &mut ChaCha8Rng, i: usize, o: usize) -> Layer {
    let a = (6.0 / (i + o) as f32).sqrt();
    let weight = (0..i * o).map(|_| rng.random_range(-a..a)).collect();
    let bias = (0..o).map(|_| rng.random_range(-0.2..0.2)).collect();
    Layer::Linear(Linear::from_parts(i, o, weight, bias).unwrap())
}

fn inputs(rng: &mut ChaCha8Rng, n: usize, count: usize) -> Vec<f32> {
    (0..n * count)
        .map(|_| rng.random_range(0.0..16.0))
        .collect()
}

/// A network with every activation int8 has: ReLU (fused), leaky ReLU, tanh, sigmoid, softmax
/// (the one export adds), a batch norm folded first; an input transform `transform`.
fn lowered(seed: u64, transform: InputTransform) -> export::Lowered {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut bn = BatchNorm1d::new(24, 1e-5, 0.1);
    for j in 0..24 {
        bn.weight[j] = rng.random_range(0.5..2.0);
        bn.bias[j] = rng.random_range(-1.0..1.0);
        bn.running_mean[j] = rng.random_range(-1.0..1.0);
        bn.running_var[j] = rng.random_range(0.1..2.0);
    }
    let net = Sequential::new(vec![
        linear(&mut rng, 16, 24),
        Layer::BatchNorm1d(bn),
        Layer::Activation(Activation::Relu),
        linear(&mut rng, 24, 20),
        Layer::Activation(Activation::LeakyRelu { slope: 0.1 }),
        linear(&mut rng, 20, 12),
        Layer::Activation(Activation::Tanh),
        linear(&mut rng, 12, 8),
        Layer::Activation(Activation::Sigmoid),
        linear(&mut rng, 8, 5),
    ]);
    let mut model = export::model_from_sequential(net, 5);
    model.transform = transform;
    export::lower(&model, OutputActivation::Softmax).unwrap()
}

fn standardize(n: usize) -> InputTransform {
    let mut t = InputTransform::identity(n);
    for j in 0..n {
        t.scale[j] = 0.1 + 0.01 * j as f32;
        t.offset[j] = -0.8 + 0.05 * j as f32;
    }
    t
}

#[test]
fn the_file_follows_tflites_rules_and_stays_close_to_f32() {
    let low = lowered(1, standardize(16));
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let calibration = inputs(&mut rng, 16, 400);
    let q = export::quantize(&low, &calibration, CalibrationMethod::Minmax).unwrap();
    assert_eq!(q.calibration_examples, 400);
    assert!(!q.transform_folded, "a per-input transform is kept");
    let file = AlignedModel::new(&q.bytes);
    let view = file.view().unwrap();
    assert!(view.input_transform().is_some());
    for (k, (l, dl)) in view.layers().zip(&low.layers).enumerate() {
        let LayerParams::Int8(p) = l.params else {
            panic!("int8")
        };
        // Weights: symmetric per channel, |w - scale * q| <= scale / 2, max |q| = 127.
        let mut rows = vec![0i8; l.inputs * l.outputs];
        microdnn::quant::kernel::unpack(p.weights, l.inputs, l.outputs, &mut rows).unwrap();
        for o in 0..l.outputs {
            let s = p.filter_scales[o];
            let row = &dl.rows[o * l.inputs..(o + 1) * l.inputs];
            let qrow = &rows[o * l.inputs..(o + 1) * l.inputs];
            assert_eq!(
                qrow.iter().map(|v| v.unsigned_abs()).max(),
                Some(127),
                "layer {k} row {o}"
            );
            for (w, q) in row.iter().zip(qrow) {
                assert!(
                    (w - s * f32::from(*q)).abs() <= s / 2.0 * 1.0001,
                    "layer {k}"
                );
            }
            // Bias: int32 at scale input * weight, within half a step.
            let bs = f64::from(p.input.scale()) * f64::from(s);
            assert!((f64::from(dl.bias[o]) - bs * f64::from(p.bias[o])).abs() <= bs / 2.0 * 1.0001);
        }
        // ReLU fused, the others as operators with TFLite's fixed outputs where it has them.
        match dl.activation {
            Activation::Relu => {
                assert_eq!(
                    (p.fused, l.activation),
                    (FusedActivation::Relu, Activation::Identity)
                );
                assert_eq!(p.output.zero_point(), -128, "[0, max]: real 0 at -128");
            }
            Activation::Sigmoid | Activation::Softmax => {
                assert_eq!(
                    (
                        p.activation_output.scale(),
                        p.activation_output.zero_point()
                    ),
                    (1.0 / 256.0, -128)
                )
            }
            Activation::Tanh => {
                assert_eq!(
                    (
                        p.activation_output.scale(),
                        p.activation_output.zero_point()
                    ),
                    (1.0 / 128.0, 0)
                )
            }
            a => assert_eq!(l.activation, a),
        }
        // Real 0 is exactly representable in every activation tensor (nudged zero points).
        for qp in [p.input, p.output, p.activation_output] {
            assert_eq!(qp.dequantize(qp.quantize(0.0)), 0.0);
        }
    }
    // Close to the f32 network: the softmax outputs within a few quantization steps, the class
    // the same on nearly every input.
    let f32_file = AlignedModel::new(&export::encode(&low).unwrap());
    let test = inputs(&mut rng, 16, 300);
    let labels: Vec<u32> = {
        let v = f32_file.view().unwrap();
        let (mut a, mut b) = (vec![0.0; v.max_width()], vec![0.0; v.max_width()]);
        test.chunks(16)
            .map(|x| microdnn::argmax(v.run(&mut x.to_vec(), &mut a, &mut b).unwrap()) as u32)
            .collect()
    };
    let c = export::compare(&f32_file, &file, &test, &labels).unwrap();
    assert_eq!(c.samples, 300);
    assert_eq!(c.f32_accuracy, 1.0, "labelled by the f32 file itself");
    assert!(c.same_class >= 285, "{c:?}");
    assert!(c.max_abs_diff < 0.1, "{c:?}");
}

#[test]
fn a_uniform_transform_is_folded_into_the_first_layer() {
    let low = lowered(3, InputTransform::scale_by_max(16, 16.0));
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let calibration = inputs(&mut rng, 16, 300);
    let q = export::quantize(&low, &calibration, CalibrationMethod::Percentile).unwrap();
    assert!(q.transform_folded);
    let file = AlignedModel::new(&q.bytes);
    let view: ModelView<'_> = file.view().unwrap();
    assert!(view.input_transform().is_none(), "raw inputs are quantized");
    // Raw inputs in [0, 16): the input quantization covers them.
    let input = view.input_quantization().unwrap();
    assert!(
        (f64::from(input.scale()) * 255.0 - 16.0).abs() < 0.1,
        "{input:?}"
    );
    let f32_file = AlignedModel::new(&export::encode(&low).unwrap());
    let test = inputs(&mut rng, 16, 200);
    let c = export::compare(&f32_file, &file, &test, &vec![0; 200]).unwrap();
    // Random weights give nearly tied softmax outputs, so classes flip on a few inputs; the
    // outputs themselves stay within a few steps of 1/256.
    assert!(c.max_abs_diff < 0.02 && c.same_class >= 180, "{c:?}");
}

#[test]
fn calibration_data_with_nan_or_the_wrong_width_is_refused() {
    let low = lowered(5, standardize(16));
    let mut x = vec![1.0f32; 16 * 3];
    x[16 + 7] = f32::NAN;
    let e = export::quantize(&low, &x, CalibrationMethod::Minmax).unwrap_err();
    assert!(matches!(e, ExportError::Calibration(_)), "{e}");
    assert!(
        e.to_string()
            .contains("calibration example 1: input 7 is NaN"),
        "{e}"
    );
    x[16 + 7] = f32::INFINITY;
    assert!(export::quantize(&low, &x, CalibrationMethod::Minmax).is_err());
    let e = export::quantize(&low, &x[..15], CalibrationMethod::Minmax).unwrap_err();
    assert!(e.to_string().contains("not a whole number"), "{e}");
    assert!(export::quantize(&low, &[], CalibrationMethod::Minmax).is_err());
}

#[test]
fn layers_int8_cannot_represent_are_named() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let calibration = inputs(&mut rng, 16, 50);
    // A sigmoid whose input range is so narrow that its scale is below what TFLite's logistic
    // algorithm is defined on (about 2^-28).
    let mut low = lowered(7, standardize(16));
    low.layers[3].rows.iter_mut().for_each(|w| *w = 1e-12);
    low.layers[3].bias.iter_mut().for_each(|b| *b = 0.0);
    let e = export::quantize(&low, &calibration, CalibrationMethod::Minmax).unwrap_err();
    assert!(
        e.to_string()
            .contains("layer 3: logistic: input scale outside"),
        "{e}"
    );
    // A softmax too wide for TFLite's fixed-point sum.
    let mut low = lowered(7, standardize(16));
    let last = low.layers.last_mut().unwrap();
    let width = export::MAX_INT8_SOFTMAX + 1;
    last.outputs = width;
    last.rows = vec![0.01; last.inputs * width];
    last.bias = vec![0.0; width];
    last.bias_abs_err = vec![0.0; width];
    let e = export::quantize(&low, &calibration, CalibrationMethod::Minmax).unwrap_err();
    assert!(matches!(e, ExportError::Quantize { layer: 4, .. }), "{e}");
    assert!(e.to_string().contains("softmax over 4096 outputs"), "{e}");
    // A layer whose int32 accumulator could overflow.
    let n = export::MAX_INT8_INPUTS + 1;
    let big = export::Lowered {
        layers: vec![export::DeviceLayer {
            inputs: n,
            outputs: 1,
            rows: vec![0.5; n],
            bias: vec![0.0],
            activation: Activation::Identity,
            dropout_rate: 0.0,
            weight_rel_err: 0.0,
            bias_abs_err: vec![0.0],
        }],
        transform: InputTransform::identity(n),
        input_abs_err: vec![0.0; n],
    };
    let e = export::quantize(&big, &vec![0.5; n], CalibrationMethod::Minmax).unwrap_err();
    assert!(matches!(e, ExportError::Quantize { layer: 0, .. }), "{e}");
    // An f32 network that overflows on the calibration data.
    let mut low = lowered(8, standardize(16));
    low.layers[0].rows[..16].fill(f32::MAX);
    let e = export::quantize(&low, &[16.0; 16], CalibrationMethod::Minmax).unwrap_err();
    assert!(
        e.to_string()
            .contains("device layer 0: output 0 overflows f32 on calibration example 0"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// Against TensorFlow's own post-training quantization and TFLite Micro's outputs
// (`fixtures/tflite_ptq/make_fixture.py`).

fn ptq_fixture() -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tflite_ptq/mlp_12_16_10_6.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn f32_bits(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| f32::from_bits(b.as_u64().unwrap() as u32))
        .collect()
}

fn hex_i8(v: &serde_json::Value) -> Vec<i8> {
    let s = v.as_str().unwrap();
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap() as i8)
        .collect()
}

/// One tensor of the .tflite file: (scales, zero points, constant data).
struct Tensor {
    scales: Vec<f32>,
    zero_points: Vec<i64>,
    data: serde_json::Value,
}

fn tensor(f: &serde_json::Value, index: u64) -> Tensor {
    let t = f["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["index"].as_u64() == Some(index))
        .unwrap();
    Tensor {
        scales: t["scale_bits"]
            .as_array()
            .map(|_| f32_bits(&t["scale_bits"]))
            .unwrap_or_default(),
        zero_points: t["zero_points"]
            .as_array()
            .map(|z| z.iter().map(|v| v.as_i64().unwrap()).collect())
            .unwrap_or_default(),
        data: t["data"].clone(),
    }
}

/// Within `ulps` units in the last place.
fn within_ulps(a: f32, b: f32, ulps: u32) -> bool {
    a.is_sign_positive() && b.is_sign_positive() && a.to_bits().abs_diff(b.to_bits()) <= ulps
}

/// The same float network and calibration examples TensorFlow's converter got: the host's
/// quantization chooses TFLite's parameters (the same input and weight scales, zero points,
/// int8 weights and int32 biases; activation scales within 2 ulp, TensorFlow taking the ranges
/// in f32 where the host takes them in f64), and the core running the file gives TFLite Micro's
/// outputs bit for bit.
#[test]
fn export_quantizes_as_tensorflow_and_runs_as_tflite_micro() {
    let f = ptq_fixture();
    let acts = f["activations"].as_array().unwrap();
    let mut seq = Vec::new();
    for (l, act) in f["layers"].as_array().unwrap().iter().zip(acts) {
        let (i, o) = (
            l["inputs"].as_u64().unwrap() as usize,
            l["outputs"].as_u64().unwrap() as usize,
        );
        let (w, b) = (f32_bits(&l["weight"]), f32_bits(&l["bias"]));
        seq.push(Layer::Linear(Linear::from_parts(i, o, w, b).unwrap()));
        match act.as_str().unwrap() {
            "relu" => seq.push(Layer::Activation(Activation::Relu)),
            "tanh" => seq.push(Layer::Activation(Activation::Tanh)),
            "softmax" => {} // export's output activation
            a => panic!("activation {a}"),
        }
    }
    let model = export::model_from_sequential(Sequential::new(seq), 6);
    let low = export::lower(&model, OutputActivation::Softmax).unwrap();
    let calibration = f32_bits(&f["calibration"]);
    let q = export::quantize(&low, &calibration, CalibrationMethod::Minmax).unwrap();
    assert_eq!(q.calibration_examples, 200);
    let file = AlignedModel::new(&q.bytes);
    let view = file.view().unwrap();

    // The operators: QUANTIZE, then per dense layer FULLY_CONNECTED and its activation
    // operator if it is not fused.
    let ops = f["ops"].as_array().unwrap();
    let idx = |op: &serde_json::Value, key: &str, k: usize| op[key][k].as_u64().unwrap();
    assert_eq!(ops[0]["op"], "QUANTIZE");
    let input = tensor(&f, idx(&ops[0], "outputs", 0));
    let iq = view.input_quantization().unwrap();
    assert_eq!(iq.scale().to_bits(), input.scales[0].to_bits(), "{iq:?}");
    assert_eq!(i64::from(iq.zero_point()), input.zero_points[0]);

    let fcs: Vec<usize> = (0..ops.len())
        .filter(|&k| ops[k]["op"] == "FULLY_CONNECTED")
        .collect();
    assert_eq!(fcs.len(), view.layer_count());
    for (layer, &k) in fcs.iter().enumerate() {
        let l = view.layer(layer).unwrap();
        let LayerParams::Int8(p) = l.params else {
            panic!("int8")
        };
        let (w, b, y) = (
            tensor(&f, idx(&ops[k], "inputs", 1)),
            tensor(&f, idx(&ops[k], "inputs", 2)),
            tensor(&f, idx(&ops[k], "outputs", 0)),
        );
        // Per-channel weight scales and weights, in TFLite's [out, in] order.
        let bits = |v: &[f32]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(p.filter_scales), bits(&w.scales), "layer {layer}");
        let mut rows = vec![0i8; l.inputs * l.outputs];
        microdnn::quant::kernel::unpack(p.weights, l.inputs, l.outputs, &mut rows).unwrap();
        assert_eq!(rows, hex_i8(&w.data), "layer {layer}: weights");
        let tb: Vec<i64> = b
            .data
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let ours: Vec<i64> = p.bias.iter().map(|&v| i64::from(v)).collect();
        assert_eq!(ours, tb, "layer {layer}: biases");
        // The layer's output range (after the fused ReLU).
        assert!(
            within_ulps(p.output.scale(), y.scales[0], 2),
            "layer {layer}: {:?} vs {}",
            p.output,
            y.scales[0]
        );
        assert_eq!(
            i64::from(p.output.zero_point()),
            y.zero_points[0],
            "layer {layer}"
        );
        let fused = ops[k]["activation"].as_str().unwrap();
        assert_eq!(
            fused == "RELU",
            p.fused == FusedActivation::Relu,
            "layer {layer}"
        );
        // The activation operator's fixed output quantization.
        if let Some(next) = ops.get(k + 1).filter(|o| o["op"] != "FULLY_CONNECTED") {
            if next["op"] != "DEQUANTIZE" {
                let a = tensor(&f, idx(next, "outputs", 0));
                assert_eq!(p.activation_output.scale(), a.scales[0], "layer {layer}");
                assert_eq!(
                    i64::from(p.activation_output.zero_point()),
                    a.zero_points[0],
                    "layer {layer}"
                );
            }
        }
    }

    // TFLite Micro's outputs on the test inputs (QUANTIZE ... SOFTMAX, DEQUANTIZE).
    let test = f32_bits(&f["test"]);
    let want = f["tflm_outputs"].as_array().unwrap();
    let (mut a, mut b) = (vec![0.0; view.max_width()], vec![0.0; view.max_width()]);
    let mut identical = 0;
    for (x, w) in test.chunks(12).zip(want) {
        let y = view.run(&mut x.to_vec(), &mut a, &mut b).unwrap();
        let w = f32_bits(w);
        if y.iter()
            .map(|v| v.to_bits())
            .eq(w.iter().map(|v| v.to_bits()))
        {
            identical += 1;
        }
    }
    assert_eq!(identical, want.len(), "outputs identical to TFLite Micro's");
}

//! ONNX and TFLite models made by the real tools (fixtures written by
//! `tests/fixtures/import/make_fixtures.py`: PyTorch → ONNX with onnxruntime's outputs, Keras →
//! TFLite f32 and int8 with TFLite's and TFLite Micro's outputs) import, export and compute what
//! those tools compute: f32 models within a bound derived from f32 rounding, int8 models byte for
//! byte. Graphs with an unsupported construct, and the fixtures truncated or corrupted, give
//! typed errors (never a panic), and the CLI exits with an error naming what is wrong.

mod common;

use std::path::{Path, PathBuf};

use common::{microdnn, run_err, run_ok};
use microdnn::Activation;
use microdnn_host::export::{self, AlignedModel, OutputActivation};
use microdnn_host::import::{onnx, tflite};
use microdnn_host::model::{Layer, Model, Sequential};
use microdnn_host::InputTransform;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

fn json(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

fn matrix<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Vec<Vec<T>> {
    serde_json::from_value(v.clone()).unwrap()
}

/// Unit roundoff of f32.
const U: f64 = f32::EPSILON as f64 / 2.0;

fn gamma(k: usize) -> f64 {
    let k = k as f64;
    k * U / (1.0 - k * U)
}

/// The exact (f64) output of `net` on `x` (already scaled), and a bound on the error of *any*
/// f32 evaluation of the same unfolded network, whatever its summation order or fused
/// multiply-adds (onnxruntime, TFLite): each dot product of `n` terms plus a bias is within
/// `γ(n+2) (Σ|w x| + |b|)`, a batch norm `(x - mean) / sqrt(var + eps) * gamma + beta` within
/// `γ(8)` of its terms' magnitudes, errors propagate through `|W|` and through the activations'
/// Lipschitz constants (1 for ReLU, leaky ReLU and tanh, 1/4 for the sigmoid, 1/2 of the largest
/// input error for softmax), and an activation's own evaluation adds `k u |y|`, with k = 1 for
/// ReLU and leaky ReLU and k = 16 for tanh and the sigmoid (the libraries' vectorised
/// approximations are accurate to a few ulps; 16 is a generous allowance for that).
fn exact_and_bound(net: &Sequential, x: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let mut h: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let mut e = vec![0.0f64; h.len()];
    for l in &net.layers {
        match l {
            Layer::Linear(l) => {
                let (mut y, mut ey) = (vec![0.0; l.out_features], vec![0.0; l.out_features]);
                for o in 0..l.out_features {
                    let row = &l.weight[o * l.in_features..(o + 1) * l.in_features];
                    let b = l.bias[o] as f64;
                    y[o] = row.iter().zip(&h).map(|(w, v)| *w as f64 * v).sum::<f64>() + b;
                    let mag = row
                        .iter()
                        .zip(&h)
                        .map(|(w, v)| (*w as f64 * v).abs())
                        .sum::<f64>()
                        + b.abs();
                    let prop: f64 = row.iter().zip(&e).map(|(w, e)| (*w as f64).abs() * e).sum();
                    ey[o] = prop + gamma(l.in_features + 2) * mag;
                }
                (h, e) = (y, ey);
            }
            Layer::BatchNorm1d(bn) => {
                for c in 0..bn.features {
                    let a = bn.weight[c] as f64 / (bn.running_var[c] as f64 + bn.eps as f64).sqrt();
                    let m = bn.running_mean[c] as f64;
                    let beta = bn.bias[c] as f64;
                    let mag = a.abs() * (h[c].abs() + m.abs()) + beta.abs();
                    h[c] = a * (h[c] - m) + beta;
                    e[c] = a.abs() * e[c] + gamma(8) * mag;
                }
            }
            Layer::Activation(Activation::Softmax) => {
                // ‖J‖∞ of softmax is max_i 2 p_i (1 - p_i) ≤ 1/2, so each output moves by at most
                // half the largest input error; evaluating it (max, exp, a sum of n terms, a
                // division) rounds each output by (16 + n) u of it at most, 16 covering the
                // libraries' vectorised exp.
                let emax = e.iter().cloned().fold(0.0, f64::max);
                let m = h.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = h.iter().map(|v| (v - m).exp()).sum();
                let n = h.len();
                for (v, ev) in h.iter_mut().zip(e.iter_mut()) {
                    *v = (*v - m).exp() / z;
                    *ev = 0.5 * emax + (16 + n) as f64 * U * *v + f32::from_bits(1) as f64;
                }
            }
            Layer::Activation(act) => {
                let k = match act {
                    Activation::Relu | Activation::LeakyRelu { .. } | Activation::Identity => 1.0,
                    Activation::Tanh | Activation::Sigmoid => 16.0,
                    other => panic!("no bound for {other:?} in these fixtures"),
                };
                for (v, ev) in h.iter_mut().zip(e.iter_mut()) {
                    *v = match act {
                        Activation::Relu => v.max(0.0),
                        Activation::LeakyRelu { slope } => {
                            if *v < 0.0 {
                                *v * *slope as f64
                            } else {
                                *v
                            }
                        }
                        Activation::Tanh => v.tanh(),
                        Activation::Sigmoid => 1.0 / (1.0 + (-*v).exp()),
                        _ => *v,
                    };
                    // Lipschitz constants: 1, except the sigmoid's 1/4.
                    if matches!(act, Activation::Sigmoid) {
                        *ev *= 0.25;
                    }
                    *ev += k * U * v.abs() + f32::from_bits(1) as f64;
                }
            }
            Layer::Dropout(_) => {}
        }
    }
    (h, e)
}

fn model_of(net: Sequential, input_scale: f32) -> Model {
    let mut transform = InputTransform::identity(net.in_features());
    transform.scale.fill(input_scale);
    let classes = net.out_features();
    Model {
        net,
        transform,
        classes,
    }
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(0, |m, (i, x)| if *x > v[m] { i } else { m })
}

/// Checks an imported f32 network against a tool's f32 outputs (`tool`) on `inputs` (raw pixels,
/// scaled by `scale` as the tool's inputs were): the tool is within the derived bound of the
/// exact network, the exported file is within its own (checked) bound, and both pick the same
/// class. Returns the largest ratio of the tool's error to its bound.
fn check_f32_import(
    net: Sequential,
    scale: f32,
    inputs: &[Vec<f32>],
    tool: &[Vec<f32>],
    what: &str,
) -> f64 {
    let model = model_of(net, scale);
    let lowered = export::lower(&model, OutputActivation::Identity).unwrap();
    let file = AlignedModel::new(&export::encode(&lowered).unwrap());
    let view = file.view().unwrap();
    let raw: Vec<f32> = inputs.concat();
    let eq = export::check_equivalence(&model, &lowered, &file, &raw).unwrap();
    assert!(eq.max_error_to_bound <= 1.0, "{what}: {eq:?}");
    let (mut a, mut b) = (vec![0.0; view.max_width()], vec![0.0; view.max_width()]);
    let mut worst = 0.0f64;
    for (x, t) in inputs.iter().zip(tool) {
        let scaled: Vec<f32> = x.iter().map(|v| v * scale).collect();
        let (exact, bound) = exact_and_bound(&model.net, &scaled);
        for ((ex, bd), tv) in exact.iter().zip(&bound).zip(t) {
            let err = (*tv as f64 - ex).abs();
            assert!(
                err <= *bd,
                "{what}: tool {tv} vs exact {ex}: error {err:e} over the bound {bd:e}"
            );
            worst = worst.max(err / bd);
        }
        let y = view.run(&mut x.clone(), &mut a, &mut b).unwrap();
        assert_eq!(argmax(y), argmax(t), "{what}: class of {x:?}");
    }
    eprintln!("{what}: largest error / derived bound {worst:.3e}");
    worst
}

#[test]
fn onnx_from_pytorch_imports_and_matches_onnxruntime() {
    let exp = json("onnx_expected.json");
    let imported = onnx::load(&fixture("mlp.onnx")).unwrap();
    assert_eq!(imported.opset, 17);
    let kinds: Vec<String> = imported
        .net
        .layers
        .iter()
        .map(|l| match l {
            Layer::Linear(l) => format!("Linear({}, {})", l.in_features, l.out_features),
            Layer::BatchNorm1d(b) => format!("BatchNorm1d({})", b.features),
            Layer::Activation(a) => a.to_string(),
            Layer::Dropout(p) => format!("Dropout({p})"),
        })
        .collect();
    // The exporter kept the batch norm as a node (do_constant_folding=False), and it is read.
    assert_eq!(
        kinds,
        [
            "Linear(64, 32)",
            "BatchNorm1d(32)",
            "leaky_relu(0.1)",
            "Linear(32, 16)",
            "tanh",
            "Linear(16, 10)"
        ]
    );
    let inputs: Vec<Vec<f32>> = matrix(&exp["inputs"]);
    let scale = exp["input_scale"].as_f64().unwrap() as f32;
    // Our reading of the graph, evaluated exactly, is PyTorch's own f64 forward of the model.
    // The weights are the same f32 values; ONNX stores the leaky-ReLU slope and the batch norm's
    // epsilon as f32 attributes (0.1 becomes 0.100000001490116), PyTorch's f64 forward uses the
    // Python floats, a relative difference of 1.5e-8 on the negative side: hence 1e-7.
    let torch: Vec<Vec<f64>> = matrix(&exp["torch_f64"]);
    for (x, t) in inputs.iter().zip(&torch) {
        let scaled: Vec<f32> = x.iter().map(|v| v * scale).collect();
        let (exact, _) = exact_and_bound(&imported.net, &scaled);
        for (a, b) in exact.iter().zip(t) {
            assert!((a - b).abs() <= 1e-7 * b.abs().max(1.0), "{a} vs torch {b}");
        }
    }
    let ort: Vec<Vec<f32>> = matrix(&exp["onnxruntime_f32"]);
    let worst = check_f32_import(imported.net, scale, &inputs, &ort, "onnxruntime");
    assert!(worst > 0.0, "onnxruntime rounds somewhere");
}

#[test]
fn onnx_with_external_data_matmul_add_and_an_input_batch_norm_matches_onnxruntime() {
    let exp = json("onnx_external_expected.json");
    let ops: Vec<String> = serde_json::from_value(exp["ops"].clone()).unwrap();
    assert_eq!(
        ops,
        [
            "Flatten",
            "BatchNormalization",
            "MatMul",
            "Add",
            "Sigmoid",
            "Gemm",
            "Softmax"
        ]
    );
    // The weights are in mlp_external.onnx.data, beside the model.
    let bytes = std::fs::read(fixture("mlp_external.onnx")).unwrap();
    assert!(bytes.len() < 2000, "the weights are not inline");
    let imported = onnx::load(&fixture("mlp_external.onnx")).unwrap();
    assert!(matches!(imported.net.layers[0], Layer::BatchNorm1d(_)));
    let inputs: Vec<Vec<f32>> = matrix(&exp["inputs"]);
    let scale = exp["input_scale"].as_f64().unwrap() as f32;
    let torch: Vec<Vec<f64>> = matrix(&exp["torch_f64"]);
    for (x, t) in inputs.iter().zip(&torch) {
        let scaled: Vec<f32> = x.iter().map(|v| v * scale).collect();
        let (exact, _) = exact_and_bound(&imported.net, &scaled);
        for (a, b) in exact.iter().zip(t) {
            assert!((a - b).abs() <= 1e-7 * b.abs().max(1.0), "{a} vs torch {b}");
        }
    }
    let ort: Vec<Vec<f32>> = matrix(&exp["onnxruntime_f32"]);
    check_f32_import(
        imported.net,
        scale,
        &inputs,
        &ort,
        "onnxruntime (external data)",
    );
    // Without its data file the model is an error naming the tensor and the file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.onnx"), &bytes).unwrap();
    let e = onnx::load(&dir.path().join("m.onnx")).unwrap_err();
    assert!(
        matches!(e, onnx::OnnxError::ExternalData { .. })
            && e.to_string().contains("mlp_external.onnx.data"),
        "{e}"
    );
    // A location outside the model's folder is refused before anything is opened.
    let (from, to) = (b"mlp_external.onnx.data", b"../../../../etc/passwd");
    assert_eq!(from.len(), to.len());
    let mut escaping = bytes.clone();
    let mut replaced = 0;
    for i in 0..=escaping.len() - from.len() {
        if &escaping[i..i + from.len()] == from {
            escaping[i..i + from.len()].copy_from_slice(to);
            replaced += 1;
        }
    }
    assert!(replaced > 0);
    let e = onnx::from_bytes(&escaping, &fixture("")).unwrap_err();
    assert!(e.to_string().contains("inside the model's folder"), "{e}");
}

#[test]
fn onnx_from_the_dynamo_exporter_with_the_batch_norm_folded_by_pytorch_matches_onnxruntime() {
    let exp = json("onnx_expected.json");
    let ops: Vec<String> = serde_json::from_value(exp["dynamo_ops"].clone()).unwrap();
    assert!(!ops.iter().any(|o| o == "BatchNormalization"), "{ops:?}");
    let imported = onnx::load(&fixture("mlp_dynamo.onnx")).unwrap();
    assert!(
        !imported
            .net
            .layers
            .iter()
            .any(|l| matches!(l, Layer::BatchNorm1d(_))),
        "the exporter folded the batch norm"
    );
    let inputs: Vec<Vec<f32>> = matrix(&exp["inputs"]);
    let scale = exp["input_scale"].as_f64().unwrap() as f32;
    let ort: Vec<Vec<f32>> = matrix(&exp["onnxruntime_f32_dynamo"]);
    check_f32_import(
        imported.net,
        scale,
        &inputs,
        &ort,
        "onnxruntime (dynamo export)",
    );
}

#[test]
fn tflite_f32_from_keras_imports_and_matches_tflite() {
    let exp = json("tflite_expected.json");
    let imported = tflite::load(&fixture("mlp_f32.tflite")).unwrap();
    assert_eq!(imported.net.in_features(), 64);
    assert_eq!(imported.net.out_features(), 10);
    let inputs: Vec<Vec<f32>> = matrix(&exp["inputs"]);
    let scale = exp["input_scale"].as_f64().unwrap() as f32;
    let tf: Vec<Vec<f32>> = matrix(&exp["tflite_f32"]);
    check_f32_import(imported.net, scale, &inputs, &tf, "TFLite f32");
}

#[test]
fn tflite_int8_from_keras_runs_byte_for_byte_as_tflite_micro() {
    let exp = json("tflite_expected.json");
    let bytes = std::fs::read(fixture("mlp_int8.tflite")).unwrap();
    let graph = tflite::Graph::parse(&bytes).unwrap();
    assert!(graph.is_int8().unwrap());
    let scale = exp["input_scale"].as_f64().unwrap() as f32;
    let (s, o) = (vec![scale; 64], vec![0.0; 64]);
    let imported = graph.to_int8(Some((&s, &o))).unwrap();
    assert_eq!(imported.origins.len(), 3, "{:?}", imported.origins);
    let file = AlignedModel::new(&imported.bytes);
    let view = file.view().unwrap();
    let q_in = view.input_quantization().unwrap();
    let q_out = view.output_quantization().unwrap();
    // TFLite's own scales and zero points, kept as they are.
    let iq: (f32, i8) = serde_json::from_value(exp["int8_input_quantization"].clone()).unwrap();
    let oq: (f32, i8) = serde_json::from_value(exp["int8_output_quantization"].clone()).unwrap();
    assert_eq!((q_in.scale(), q_in.zero_point()), iq);
    assert_eq!((q_out.scale(), q_out.zero_point()), oq);
    let inputs: Vec<Vec<f32>> = matrix(&exp["inputs"]);
    let micro_in: Vec<Vec<i8>> = matrix(&exp["tflite_micro_int8_inputs"]);
    let micro_out: Vec<Vec<i8>> = matrix(&exp["tflite_micro_int8_outputs"]);
    let (mut a, mut b) = (vec![0.0; view.max_width()], vec![0.0; view.max_width()]);
    let mut outputs = 0;
    for ((x, qi), qo) in inputs.iter().zip(&micro_in).zip(&micro_out) {
        // The device quantizes the scaled input as TFLite Micro's input was quantized...
        let q: Vec<i8> = x.iter().map(|v| q_in.quantize(v * scale)).collect();
        assert_eq!(&q, qi);
        // ...and its output is TFLite Micro's int8 output, dequantized (one f32 product).
        let y = view.run(&mut x.clone(), &mut a, &mut b).unwrap();
        for (d, t) in y.iter().zip(qo) {
            assert_eq!(
                d.to_bits(),
                q_out.dequantize(*t).to_bits(),
                "{y:?} vs {qo:?}"
            );
            assert_eq!(q_out.quantize(*d), *t);
            outputs += 1;
        }
    }
    assert_eq!(outputs, 24 * 10);
}

#[test]
fn tflite_int8_with_float_edges_and_int8_activations_is_tflite_micro_bit_for_bit() {
    // QUANTIZE and DEQUANTIZE at the edges, LEAKY_RELU, LOGISTIC and SOFTMAX as int8 operators:
    // the device's f32 outputs are TFLite Micro's f32 outputs, bit for bit.
    let exp = json("tflite_float_io_expected.json");
    let bytes = std::fs::read(fixture("mlp_int8_float_io.tflite")).unwrap();
    let graph = tflite::Graph::parse(&bytes).unwrap();
    assert!(graph.is_int8().unwrap());
    let scale = exp["input_scale"].as_f64().unwrap() as f32;
    let (s, o) = (vec![scale; 64], vec![0.0; 64]);
    let imported = graph.to_int8(Some((&s, &o))).unwrap();
    assert_eq!(
        imported.origins,
        [
            "operator 1 (FULLY_CONNECTED) + operator 2 (LEAKY_RELU)",
            "operator 3 (FULLY_CONNECTED) + operator 4 (LOGISTIC)",
            "operator 5 (FULLY_CONNECTED) + operator 6 (SOFTMAX)"
        ]
    );
    let file = AlignedModel::new(&imported.bytes);
    let view = file.view().unwrap();
    let inputs: Vec<Vec<f32>> = matrix(&exp["inputs"]);
    let bits: Vec<Vec<u32>> = matrix(&exp["tflite_micro_output_bits"]);
    let (mut a, mut b) = (vec![0.0; view.max_width()], vec![0.0; view.max_width()]);
    for (x, t) in inputs.iter().zip(&bits) {
        let y = view.run(&mut x.clone(), &mut a, &mut b).unwrap();
        let ours: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
        assert_eq!(&ours, t, "input {x:?}");
    }
}

/// `model` with every operator code rewritten by `edit`, serialized again.
fn with_op_codes(bytes: &[u8], edit: impl Fn(&mut tflite::fb::OperatorCode)) -> Vec<u8> {
    let root = <tflite::fb::ModelRef<'_> as planus::ReadAsRoot<'_>>::read_as_root(bytes).unwrap();
    let mut model = tflite::fb::Model::try_from(root).unwrap();
    for c in model.operator_codes.as_mut().unwrap() {
        edit(c);
    }
    // planus 1.3's Builder::finish writes the file identifier first and the root offset after it
    // (relative to byte 4); FlatBuffers (and planus's own reader) expect the offset at byte 0,
    // relative to byte 0, then the identifier: put them in that order.
    let mut out = planus::Builder::new()
        .finish(&model, Some(*b"TFL3"))
        .to_vec();
    assert_eq!(&out[..4], b"TFL3");
    let root = u32::from_le_bytes([out[4], out[5], out[6], out[7]]) + 4;
    out[..4].copy_from_slice(&root.to_le_bytes());
    out[4..8].copy_from_slice(b"TFL3");
    out
}

#[test]
fn tflite_op_codes_are_read_from_either_of_their_two_fields() {
    // Converters before TF 2.4 wrote only `deprecated_builtin_code` (an int8, so codes up to
    // 127); later ones write `builtin_code` and put 127 (PLACEHOLDER_FOR_GREATER_OP_CODES) in the
    // old field for larger codes. The importer takes the larger of the two, as TFLite does.
    let bytes = std::fs::read(fixture("mlp_f32.tflite")).unwrap();
    let original = tflite::load(&fixture("mlp_f32.tflite")).unwrap().net;
    let old_converter = with_op_codes(&bytes, |c| {
        c.deprecated_builtin_code = c.builtin_code as i8;
        c.builtin_code = 0;
    });
    let new_converter = with_op_codes(&bytes, |c| c.deprecated_builtin_code = 0);
    for (what, b) in [("old", old_converter), ("new", new_converter)] {
        let g = tflite::Graph::parse(&b).unwrap();
        assert_eq!(
            g.to_float().unwrap().net,
            original,
            "{what} converter's op codes"
        );
    }
}

#[test]
fn unsupported_onnx_graphs_name_the_node_and_why() {
    let cases = [
        ("conv.onnx", "node `conv0` (Conv)"),
        ("two_inputs.onnx", "2 inputs"),
        ("computed_weight.onnx", "node `matmul0` (MatMul)"),
        ("opset99.onnx", "opset 99"),
        (
            "reshape_rows.onnx",
            "node `reshape0` (Reshape): reshaping to [-1, 2]",
        ),
        (
            "softmax_axis0.onnx",
            "node `softmax0` (Softmax): softmax over axis 0",
        ),
        ("gemm_transa.onnx", "node `gemm0` (Gemm): transA = 1"),
    ];
    for (file, says) in cases {
        let e = onnx::load(&fixture(file)).unwrap_err();
        assert!(e.to_string().contains(says), "{file}: {e}");
        match (file, &e) {
            ("conv.onnx", onnx::OnnxError::Node { .. })
            | ("two_inputs.onnx", onnx::OnnxError::Graph(_))
            | ("computed_weight.onnx", onnx::OnnxError::Node { .. })
            | ("opset99.onnx", onnx::OnnxError::Opset(_))
            | (
                "reshape_rows.onnx" | "softmax_axis0.onnx" | "gemm_transa.onnx",
                onnx::OnnxError::Node { .. },
            ) => {}
            _ => panic!("{file}: unexpected error kind {e:?}"),
        }
        // The CLI exits with an error saying the same, and writes nothing.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let err = run_err(
            microdnn()
                .arg("export")
                .arg(fixture(file))
                .arg("--out")
                .arg(&out),
        );
        assert!(err.contains(says) && !err.contains("panicked"), "{err}");
        assert!(!out.exists(), "{file}: an export folder was written");
    }
}

#[test]
fn unsupported_tflite_models_name_the_operator_and_why() {
    let cases = [
        ("conv.tflite", "operator 0 (CONV_2D)"),
        ("two_inputs.tflite", "2 inputs"),
        ("relu6_f32.tflite", "fused RELU6 clips at 6"),
    ];
    for (file, says) in cases {
        let e = tflite::load(&fixture(file)).unwrap_err();
        assert!(e.to_string().contains(says), "{file}: {e}");
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let err = run_err(
            microdnn()
                .arg("export")
                .arg(fixture(file))
                .arg("--out")
                .arg(&out),
        );
        assert!(err.contains(says) && !err.contains("panicked"), "{err}");
        assert!(!out.exists(), "{file}: an export folder was written");
    }
}

/// A deterministic xorshift generator for the mutations.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Imports `bytes` as the format of `name` the way `microdnn export` does.
fn import(name: &str, bytes: &[u8]) -> Result<(), String> {
    if name.ends_with(".onnx") {
        onnx::from_bytes(bytes, Path::new("/nonexistent"))
            .map(|_| ())
            .map_err(|e| e.to_string())
    } else {
        let g = tflite::Graph::parse(bytes).map_err(|e| e.to_string())?;
        if g.is_int8().map_err(|e| e.to_string())? {
            g.to_int8(None).map(|_| ()).map_err(|e| e.to_string())
        } else {
            g.to_float().map(|_| ()).map_err(|e| e.to_string())
        }
    }
}

#[test]
fn truncated_and_corrupted_files_are_typed_errors() {
    for name in [
        "mlp.onnx",
        "mlp_dynamo.onnx",
        "mlp_f32.tflite",
        "mlp_int8.tflite",
        "mlp_int8_float_io.tflite",
    ] {
        let good = std::fs::read(fixture(name)).unwrap();
        import(name, &good).unwrap();
        let mut rng = Xorshift(0x9E37_79B9_7F4A_7C15 ^ good.len() as u64);
        // Every truncation is refused (each cuts a length-delimited field or a table).
        let mut cuts: Vec<usize> = (0..good.len()).step_by(7).collect();
        cuts.extend([1, 4, 8, good.len() - 1]);
        for n in cuts {
            let e = import(name, &good[..n]);
            assert!(e.is_err(), "{name} cut to {n} bytes imports");
        }
        // Corruptions: bytes overwritten, runs of bytes zeroed or set to 0xff, bytes swapped.
        // Each either imports (a weight changed) or is an error; none panics.
        let (mut errors, mut accepted) = (0, 0);
        for _ in 0..3000 {
            let mut bad = good.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(bad.len());
                match rng.below(4) {
                    0 => bad[i] = rng.next() as u8,
                    1 => bad[i] ^= 1 << rng.below(8),
                    2 => {
                        let end = (i + 1 + rng.below(16)).min(bad.len());
                        let v = if rng.below(2) == 0 { 0 } else { 0xff };
                        bad[i..end].fill(v);
                    }
                    _ => {
                        let j = rng.below(bad.len());
                        bad.swap(i, j);
                    }
                }
            }
            match import(name, &bad) {
                Ok(()) => accepted += 1,
                Err(e) => {
                    assert!(!e.is_empty());
                    errors += 1;
                }
            }
        }
        assert!(
            errors > 100,
            "{name}: only {errors} of 3000 mutations refused"
        );
        assert!(accepted > 0, "{name}: no mutation of a weight was accepted");
    }
}

#[test]
fn the_cli_exports_onnx_and_tflite_models() {
    let dir = tempfile::tempdir().unwrap();
    for (name, dtype) in [
        ("mlp.onnx", "f32 weights"),
        ("mlp_f32.tflite", "f32 weights"),
        ("mlp_int8.tflite", "int8 weights"),
    ] {
        let out = dir.path().join(name);
        let stdout = run_ok(
            microdnn()
                .arg("export")
                .arg(fixture(name))
                .arg("--out")
                .arg(&out)
                .args(["--input-scale", "0.0625"])
                .args(if dtype == "f32 weights" {
                    &["--output", "identity"][..]
                } else {
                    &[][..]
                }),
        );
        assert!(stdout.contains(dtype), "{name}: {stdout}");
        let bytes = std::fs::read(out.join("model.udnn")).unwrap();
        let view_file = AlignedModel::new(&bytes);
        assert_eq!(view_file.view().unwrap().inputs(), 64);
    }
    // Settings that do not apply are refused, not ignored.
    let err = run_err(
        microdnn()
            .arg("export")
            .arg(fixture("mlp.onnx"))
            .args(["--arch", "Linear(64, 10)", "--out"])
            .arg(dir.path().join("x")),
    );
    assert!(
        err.contains("is an ONNX model, which carries its own architecture: drop --arch"),
        "{err}"
    );
    let err = run_err(
        microdnn()
            .arg("export")
            .arg(fixture("mlp_int8.tflite"))
            .args(["--quantize", "int8", "--out"])
            .arg(dir.path().join("y")),
    );
    assert!(err.contains("TFLite's"), "{err}");
    let err = run_err(
        microdnn()
            .arg("export")
            .arg(fixture("mlp_int8.tflite"))
            .args(["--output", "softmax", "--out"])
            .arg(dir.path().join("z")),
    );
    assert!(err.contains("its own last operator"), "{err}");
    // A missing file is named once, with its cause.
    let err = run_err(
        microdnn()
            .arg("export")
            .arg(dir.path().join("missing.onnx"))
            .arg("--out")
            .arg(dir.path().join("w")),
    );
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
    assert!(err.contains("missing.onnx"), "{err}");
    // eval --outputs writes plain inferences; with --mc it is refused before anything runs.
    let err = run_err(
        microdnn()
            .args(["eval", "--device", "qemu", "--mc", "4", "--outputs"])
            .arg(dir.path().join("o.csv"))
            .arg("--model")
            .arg(dir.path().join("mlp.onnx")),
    );
    assert!(err.contains("--outputs") && err.contains("--mc"), "{err}");
    assert!(!dir.path().join("o.csv").exists());
}

//! Every output byte of TensorFlow Lite Micro, reproduced.
//!
//! The fixtures in `fixtures/tflm/` (made by `make_fixtures.py` with TensorFlow's converter and
//! TFLite Micro's Python interpreter) hold small int8 models: the operators, each tensor's
//! float scales and zero points, the weights and biases, the inputs and the bytes TFLite Micro
//! wrote into every operator output. This test derives every integer parameter (multipliers,
//! shifts, clamps, radii) from the float scales with `microdnn::quant`, runs the operators in
//! order on its own outputs, and compares each output byte with TFLite Micro's. Dense layers
//! run twice, with the reference kernel (TFLite's loop) and with the fast packed kernel.

use microdnn::quant::{
    kernel, per_channel_multipliers, per_tensor_multiplier, FusedActivation, QActivation, QDense,
    QLayer, QLeakyRelu, QLogistic, QRelu, QRelu6, QSoftmax, QTanh, QuantParams, Requantize,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tflm")
}

fn fixtures() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(fixture_dir())
        .expect("fixture directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                serde_json::from_str(&text).unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture_dir().join(format!("{name}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn hex_i8(v: &Value) -> Vec<i8> {
    let s = v.as_str().expect("hex string");
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap() as i8)
        .collect()
}

fn f32_list(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| f32::from_bits(b.as_u64().unwrap() as u32))
        .collect()
}

/// A tensor of the fixture: shape, quantization and constant data.
struct Tensor {
    shape: Vec<usize>,
    scales: Vec<f32>,
    zero_points: Vec<i64>,
    data: Option<Value>,
}

impl Tensor {
    fn params(&self) -> QuantParams {
        let zp = i8::try_from(self.zero_points[0]).expect("int8 zero point");
        QuantParams::new(self.scales[0], zp).expect("valid scale")
    }
    fn width(&self) -> usize {
        *self.shape.last().unwrap()
    }
}

fn tensors(f: &Value) -> BTreeMap<i64, Tensor> {
    f["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let scales = t.get("scale_bits").map(f32_list).unwrap_or_default();
            let zero_points = t
                .get("zero_points")
                .map(|z| {
                    z.as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_i64().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            let shape = t["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            let tensor = Tensor {
                shape,
                scales,
                zero_points,
                data: t.get("data").cloned(),
            };
            (t["index"].as_i64().unwrap(), tensor)
        })
        .collect()
}

/// Values flowing through the graph.
#[derive(Clone, Debug, PartialEq)]
enum Data {
    I8(Vec<i8>),
    F32(Vec<u32>),
}

/// Counts compared bytes and collects the first mismatches.
#[derive(Default)]
struct Report {
    compared: usize,
    mismatches: Vec<String>,
}

impl Report {
    fn compare(&mut self, what: &str, ours: &Data, theirs: &Data, input: Option<&[i8]>) {
        match (ours, theirs) {
            (Data::I8(a), Data::I8(b)) => {
                assert_eq!(a.len(), b.len(), "{what}: length");
                self.compared += a.len();
                for (k, (x, y)) in a.iter().zip(b).enumerate() {
                    if x != y && self.mismatches.len() < 20 {
                        let inp = input
                            .and_then(|i| i.get(k))
                            .map(|v| format!(" (input {v})"))
                            .unwrap_or_default();
                        self.mismatches
                            .push(format!("{what}[{k}]: ours {x}, TFLM {y}{inp}"));
                    }
                }
            }
            (Data::F32(a), Data::F32(b)) => {
                assert_eq!(a.len(), b.len(), "{what}: length");
                self.compared += 4 * a.len();
                for (k, (x, y)) in a.iter().zip(b).enumerate() {
                    if x != y && self.mismatches.len() < 20 {
                        self.mismatches.push(format!(
                            "{what}[{k}]: ours {} TFLM {}",
                            f32::from_bits(*x),
                            f32::from_bits(*y)
                        ));
                    }
                }
            }
            _ => self.mismatches.push(format!("{what}: type mismatch")),
        }
    }
}

fn fused(name: &str) -> FusedActivation {
    match name {
        "NONE" => FusedActivation::None,
        "RELU" => FusedActivation::Relu,
        "RELU_N1_TO_1" => FusedActivation::ReluN1To1,
        "RELU6" => FusedActivation::Relu6,
        other => panic!("fused activation {other}"),
    }
}

/// Runs one fully-connected operator with both kernels; returns (reference, fast) outputs.
fn fully_connected(op: &Value, t: &BTreeMap<i64, Tensor>, x: &[i8]) -> (Vec<i8>, Vec<i8>) {
    let ins: Vec<i64> = op["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let (ti, tw, tout) = (
        &t[&ins[0]],
        &t[&ins[1]],
        &t[&op["outputs"][0].as_i64().unwrap()],
    );
    let (o, i) = (tw.shape[0], tw.shape[1]);
    let rows = hex_i8(tw.data.as_ref().unwrap());
    let bias: Vec<i32> = match ins.get(2).filter(|&&b| b >= 0) {
        Some(b) => t[b]
            .data
            .as_ref()
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap() as i32)
            .collect(),
        None => vec![0; o],
    };
    assert!(tw.zero_points.iter().all(|&z| z == 0), "symmetric weights");
    let (input, output) = (ti.params(), tout.params());
    let (mut m, mut s) = (vec![0; o], vec![0; o]);
    if tw.scales.len() > 1 {
        per_channel_multipliers(input, &tw.scales, output, &mut m, &mut s).unwrap();
    } else {
        let q = per_tensor_multiplier(input, tw.scales[0], output).unwrap();
        m.truncate(1);
        s.truncate(1);
        m[0] = q.multiplier();
        s[0] = q.shift();
    }
    let (lo, hi) = fused(op["activation"].as_str().unwrap())
        .range(output)
        .unwrap();
    let rq = Requantize::new(&m, &s, output.zero_point(), lo, hi).unwrap();
    let mut packed = vec![0i8; i * o];
    kernel::pack(&rows, i, o, &mut packed).unwrap();
    let mut kb = vec![0i32; o];
    kernel::kernel_bias(&rows, i, &bias, input.zero_point(), &mut kb).unwrap();
    let (mut reference, mut fast) = (Vec::new(), Vec::new());
    for xr in x.chunks(i) {
        let (mut yr, mut yf) = (vec![0i8; o], vec![0i8; o]);
        kernel::dense_reference(&rows, &bias, input.zero_point(), &rq, xr, &mut yr).unwrap();
        kernel::dense(&packed, &kb, &rq, xr, &mut yf).unwrap();
        reference.extend(yr);
        fast.extend(yf);
    }
    (reference, fast)
}

/// The int8 activation operator of a fixture op (None for other operators).
fn activation(op: &Value, t: &BTreeMap<i64, Tensor>) -> Option<QActivation> {
    let ti = &t[&op["inputs"][0].as_i64().unwrap()];
    let to = &t[&op["outputs"][0].as_i64().unwrap()];
    let (input, output) = (ti.params(), to.params());
    Some(match op["op"].as_str().unwrap() {
        "RELU" => QActivation::Relu(QRelu::prepare(input, output).unwrap()),
        "RELU6" => QActivation::Relu6(QRelu6::prepare(input)),
        "LEAKY_RELU" => {
            let alpha = f32::from_bits(op["alpha_bits"].as_u64().unwrap() as u32);
            QActivation::LeakyRelu(QLeakyRelu::prepare(input, output, alpha).unwrap())
        }
        "LOGISTIC" => QActivation::Logistic(QLogistic::prepare(input, output).unwrap()),
        "TANH" => QActivation::Tanh(QTanh::prepare(input, output).unwrap()),
        "SOFTMAX" => {
            let beta = f32::from_bits(op["beta_bits"].as_u64().unwrap() as u32);
            QActivation::Softmax(QSoftmax::prepare(beta, input, output).unwrap())
        }
        _ => return None,
    })
}

/// Runs a fixture's graph on our own outputs and compares every operator output with TFLM's.
fn run_fixture(name: &str, f: &Value) -> Report {
    let t = tensors(f);
    let mut report = Report::default();
    let mut values: BTreeMap<i64, Data> = BTreeMap::new();
    for inp in f["inputs"].as_array().unwrap() {
        let d = &inp["data"];
        let data = if d.is_string() {
            Data::I8(hex_i8(d))
        } else {
            Data::F32(f32_list(d).iter().map(|v| v.to_bits()).collect())
        };
        values.insert(inp["tensor"].as_i64().unwrap(), data);
    }
    let tflm: BTreeMap<i64, Data> = f["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let d = &o["data"];
            let data = if d.is_string() {
                Data::I8(hex_i8(d))
            } else {
                Data::F32(f32_list(d).iter().map(|v| v.to_bits()).collect())
            };
            (o["tensor"].as_i64().unwrap(), data)
        })
        .collect();
    for (k, op) in f["ops"].as_array().unwrap().iter().enumerate() {
        let kind = op["op"].as_str().unwrap();
        let tin = op["inputs"][0].as_i64().unwrap();
        let tout = op["outputs"][0].as_i64().unwrap();
        let what = format!("{name} op {k} {kind} -> tensor {tout}");
        let input = values[&tin].clone();
        let out = match (kind, &input) {
            ("FULLY_CONNECTED", Data::I8(x)) => {
                let (reference, fast) = fully_connected(op, &t, x);
                report.compare(
                    &format!("{what} (reference kernel)"),
                    &Data::I8(reference),
                    &tflm[&tout],
                    None,
                );
                Data::I8(fast)
            }
            ("QUANTIZE", Data::F32(x)) => {
                let p = t[&tout].params();
                Data::I8(x.iter().map(|&b| p.quantize(f32::from_bits(b))).collect())
            }
            ("DEQUANTIZE", Data::I8(x)) => {
                let p = t[&tin].params();
                Data::F32(x.iter().map(|&q| p.dequantize(q).to_bits()).collect())
            }
            (_, Data::I8(x)) => {
                let act = activation(op, &t).unwrap_or_else(|| panic!("{what}: unsupported"));
                let mut y = x.clone();
                // Softmax normalises each row (the last dimension); the others are element-wise.
                for row in y.chunks_mut(t[&tin].width()) {
                    act.apply(row);
                }
                Data::I8(y)
            }
            _ => panic!("{what}: unexpected input type"),
        };
        let x8 = if let Data::I8(x) = &input {
            Some(x.as_slice())
        } else {
            None
        };
        report.compare(&what, &out, &tflm[&tout], x8);
        values.insert(tout, out);
    }
    report
}

#[test]
fn every_operator_output_byte_matches_tflite_micro() {
    let all = fixtures();
    assert!(
        all.len() >= 60,
        "expected the committed fixtures, found {}",
        all.len()
    );
    let (mut compared, mut failures) = (0, Vec::new());
    let mut ops = BTreeMap::<String, usize>::new();
    for (name, f) in &all {
        for op in f["ops"].as_array().unwrap() {
            *ops.entry(op["op"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        let r = run_fixture(name, f);
        assert!(r.compared > 0, "{name}: nothing compared");
        compared += r.compared;
        failures.extend(r.mismatches);
    }
    println!(
        "{} fixtures, {compared} output bytes compared, operators {ops:?}",
        all.len()
    );
    for op in [
        "FULLY_CONNECTED",
        "RELU",
        "RELU6",
        "LEAKY_RELU",
        "LOGISTIC",
        "TANH",
        "SOFTMAX",
        "QUANTIZE",
        "DEQUANTIZE",
    ] {
        assert!(ops.contains_key(op), "no fixture exercises {op}");
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The fixtures reach the corners they were made for: saturated outputs at both ends and, in
/// the power-of-two model, accumulators whose requantization is an exact tie.
#[test]
fn fixtures_cover_saturation_and_rounding_ties() {
    let (mut low, mut high) = (0, 0);
    for (name, f) in fixtures() {
        if !name.starts_with("fc_") {
            continue;
        }
        for o in f["outputs"].as_array().unwrap() {
            let y = hex_i8(&o["data"]);
            low += y.iter().filter(|&&v| v == -128).count();
            high += y.iter().filter(|&&v| v == 127).count();
        }
    }
    assert!(
        low > 50 && high > 50,
        "saturated outputs: {low} at -128, {high} at 127"
    );

    // fc_pot_ties: every multiplier is 2^30 with shift s, so acc * 2^(s-1) is a tie of the
    // second rounding when acc is an odd multiple of 2^(-s) (after the first halving).
    let f = fixture("fc_pot_ties");
    let t = tensors(&f);
    let op = &f["ops"][0];
    let ins: Vec<i64> = op["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let (ti, tw) = (&t[&ins[0]], &t[&ins[1]]);
    let rows = hex_i8(tw.data.as_ref().unwrap());
    let bias: Vec<i64> = t[&ins[2]]
        .data
        .as_ref()
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let x = hex_i8(&f["inputs"][0]["data"]);
    let (i, o) = (tw.shape[1], tw.shape[0]);
    let zx = ti.zero_points[0];
    let mut ties = 0;
    for xr in x.chunks(i) {
        for (r, row) in rows.chunks(i).enumerate() {
            let acc: i64 = row
                .iter()
                .zip(xr)
                .map(|(&w, &x)| w as i64 * (x as i64 - zx))
                .sum::<i64>()
                + bias[r];
            // real multiplier 2^e with e = log2(in * w / out) (exact powers of two)
            let e = (ti.scales[0] as f64 * tw.scales[r] as f64 / 0.25)
                .log2()
                .round() as i32;
            if e < 0 && acc.rem_euclid(1 << -e) == 1 << (-e - 1) {
                ties += 1;
            }
        }
        let _ = o;
    }
    assert!(ties > 20, "only {ties} exact ties in fc_pot_ties");
}

microdnn::qnetwork! {
    /// The fixture MLP: 20-16(relu)-12(leaky)-9(tanh)-8(sigmoid)-10(softmax).
    pub struct Mlp(MlpBuffers) {
        l1: QDense<20, 16>,
        l2: QDense<16, 12>,
        l3: QDense<12, 9>,
        l4: QDense<9, 8>,
        l5: QDense<8, 10>,
    }
}

/// Owned parameters of one dense layer of a fixture (packed weights, biases, requantization).
struct DenseParts {
    packed: Vec<i8>,
    bias: Vec<i32>,
    kernel_bias: Vec<i32>,
    m: Vec<i32>,
    s: Vec<i32>,
    input_zero_point: i8,
    output_zero_point: i8,
    range: (i8, i8),
}

impl DenseParts {
    fn new(op: &Value, t: &BTreeMap<i64, Tensor>) -> Self {
        let ins: Vec<i64> = op["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let (ti, tw, to) = (
            &t[&ins[0]],
            &t[&ins[1]],
            &t[&op["outputs"][0].as_i64().unwrap()],
        );
        let (o, i) = (tw.shape[0], tw.shape[1]);
        let rows = hex_i8(tw.data.as_ref().unwrap());
        let bias: Vec<i32> = t[&ins[2]]
            .data
            .as_ref()
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap() as i32)
            .collect();
        let (input, output) = (ti.params(), to.params());
        let (mut m, mut s) = (vec![0; o], vec![0; o]);
        per_channel_multipliers(input, &tw.scales, output, &mut m, &mut s).unwrap();
        let mut packed = vec![0; i * o];
        kernel::pack(&rows, i, o, &mut packed).unwrap();
        let mut kernel_bias = vec![0; o];
        kernel::kernel_bias(&rows, i, &bias, input.zero_point(), &mut kernel_bias).unwrap();
        let range = fused(op["activation"].as_str().unwrap())
            .range(output)
            .unwrap();
        DenseParts {
            packed,
            bias,
            kernel_bias,
            m,
            s,
            input_zero_point: input.zero_point(),
            output_zero_point: output.zero_point(),
            range,
        }
    }

    fn layer<const I: usize, const O: usize>(&self, activation: QActivation) -> QLayer<'_, I, O> {
        let rq = Requantize::new(
            &self.m,
            &self.s,
            self.output_zero_point,
            self.range.0,
            self.range.1,
        )
        .unwrap();
        let dense = QDense::<I, O>::from_slices(
            &self.packed,
            &self.bias,
            &self.kernel_bias,
            self.input_zero_point,
            rq,
        )
        .unwrap();
        QLayer::new(dense, activation)
    }
}

/// The typed API end to end: a `qnetwork!` built from the fixture MLP gives TFLM's bytes in
/// every layer buffer, with the fast kernel, and the reference path of each `QDense` agrees.
#[test]
fn qnetwork_reproduces_the_tflite_micro_mlp() {
    let f = fixture("mlp_20_16_12_9_8_10");
    let t = tensors(&f);
    let ops = f["ops"].as_array().unwrap();
    let tflm: BTreeMap<i64, Vec<i8>> = f["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["tensor"].as_i64().unwrap(), hex_i8(&o["data"])))
        .collect();
    // ops: FC(relu), FC, LEAKY, FC, TANH, FC, LOGISTIC, FC, SOFTMAX
    let fc: Vec<DenseParts> = [0, 1, 3, 5, 7]
        .iter()
        .map(|&k| DenseParts::new(&ops[k], &t))
        .collect();
    let act = |k: usize| activation(&ops[k], &t).unwrap();
    let net = Mlp {
        l1: fc[0].layer(QActivation::Identity),
        l2: fc[1].layer(act(2)),
        l3: fc[2].layer(act(4)),
        l4: fc[3].layer(act(6)),
        l5: fc[4].layer(act(8)),
    };
    assert_eq!(Mlp::RAM_BYTES, 16 + 12 + 9 + 8 + 10);
    assert_eq!(net.flash_bytes(), Mlp::MACS + 16 * (16 + 12 + 9 + 8 + 10));
    let out_of = |k: usize| op_out(&ops[k]);
    let x = hex_i8(&f["inputs"][0]["data"]);
    let mut bufs = MlpBuffers::new();
    for (b, xr) in x.chunks(20).enumerate() {
        let xr: &[i8; 20] = xr.try_into().unwrap();
        let y = *net.forward(xr, &mut bufs);
        let row = |k: usize, w: usize| tflm[&out_of(k)][b * w..(b + 1) * w].to_vec();
        assert_eq!(bufs.l1.to_vec(), row(0, 16), "row {b} layer 1");
        assert_eq!(bufs.l2.to_vec(), row(2, 12), "row {b} layer 2");
        assert_eq!(bufs.l3.to_vec(), row(4, 9), "row {b} layer 3");
        assert_eq!(bufs.l4.to_vec(), row(6, 8), "row {b} layer 4");
        assert_eq!(y.to_vec(), row(8, 10), "row {b} output");
        assert_eq!(
            net.predict(xr, &mut bufs),
            microdnn::quant::network::argmax(&row(8, 10))
        );
        let mut r = [0i8; 16];
        net.l1.dense.forward_reference(xr, &mut r);
        assert_eq!(r.to_vec(), row(0, 16), "row {b} reference path");
    }
}

fn op_out(op: &Value) -> i64 {
    op["outputs"][0].as_i64().unwrap()
}

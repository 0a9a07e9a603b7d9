//! int8 model files (format version 1.1): a round trip through the typed `qnetwork!` and the
//! dynamic `ModelView::run` against TFLite Micro's reference loop, and one test per class of
//! invalid int8 file, each a typed error naming the layer (never a panic), from the reader and
//! from the encoder alike.

use microdnn::model::{
    self, header, record, Int8EncodeLayer, Int8ModelSpec, LayerParams, ModelError, ModelView,
    Tensor, WeightType,
};
use microdnn::quant::{
    self, kernel as qkernel, FusedActivation, QActivation, QuantError, QuantParams,
};
use microdnn::{Activation, Rng};

mod fuzz_bodies;
use fuzz_bodies::{int8_file, QSmall, QSmallBuffers, Small};

/// A 16-byte-aligned copy of a file (what `include_bytes!` in an aligned wrapper gives a device).
struct Aligned(Vec<u128>, usize);

impl Aligned {
    fn new(bytes: &[u8]) -> Self {
        Aligned(fuzz_bodies::aligned(bytes), bytes.len())
    }
    fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u128, u8>(&self.0)[..self.1]
    }
}

fn check(bytes: &[u8]) -> Result<(), ModelError> {
    let a = Aligned::new(bytes);
    ModelView::new_checked(a.bytes()).map(|_| ())
}

fn get32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn fix_crc(b: &mut [u8]) {
    let crc = model::file_crc(b);
    put32(b, header::CRC, crc);
}

/// Offset of layer `i`'s record in a file the encoder wrote.
fn rec(i: usize) -> usize {
    model::HEADER_LEN + i * model::LAYER_RECORD_LEN
}

/// The test network: 10-8-3, ReLU fused into layer 0, softmax after layer 1, per-channel.
fn small() -> Vec<u8> {
    int8_file(
        31,
        &[10, 8, 3],
        &[Activation::Relu, Activation::Softmax],
        false,
        false,
    )
}

/// 10-8-3 with a leaky ReLU operator after layer 0 (its output quantization is free) and no
/// operator after layer 1.
fn leaky() -> Vec<u8> {
    int8_file(
        32,
        &[10, 8, 3],
        &[Activation::LeakyRelu { slope: 0.1 }, Activation::Identity],
        false,
        false,
    )
}

fn quant_err(layer: u16, error: QuantError) -> Result<(), ModelError> {
    Err(ModelError::Quant { layer, error })
}

#[test]
fn round_trip_typed_and_dynamic_equal_tflite_micros_loop() {
    for (file, name) in [
        (small(), "small"),
        (leaky(), "leaky"),
        (
            int8_file(
                33,
                &[10, 8, 3],
                &[Activation::Tanh, Activation::Sigmoid],
                true,
                false,
            ),
            "per-tensor tanh sigmoid",
        ),
    ] {
        let a = Aligned::new(&file);
        let view = ModelView::new_checked(a.bytes()).unwrap();
        assert_eq!(view.version_minor(), 1, "{name}");
        assert_eq!(view.weight_type(), WeightType::Int8);
        assert_eq!((view.inputs(), view.outputs(), view.macs()), (10, 3, 104));
        let input = view.input_quantization().unwrap();
        let output = view.output_quantization().unwrap();
        let net = QSmall::from_model(&view).unwrap();
        // Zero-copy: the weights point into the file.
        let LayerParams::Int8(p0) = view.layer(0).unwrap().params else {
            panic!("int8")
        };
        assert!(a
            .bytes()
            .as_ptr_range()
            .contains(&(p0.weights.as_ptr() as *const u8)));
        let mut rng = Rng::new(5);
        for _ in 0..300 {
            let x: [f32; 10] = core::array::from_fn(|_| rng.uniform(-3.0, 3.0));
            let xq = x.map(|v| input.quantize(v));
            // The typed network (fast kernel) ...
            let mut bufs = QSmallBuffers::new();
            let typed = *net.forward(&xq, &mut bufs);
            // ... TFLite Micro's loop over the unpacked weights, layer by layer ...
            let mut h = xq.to_vec();
            for l in view.layers() {
                let LayerParams::Int8(p) = l.params else {
                    panic!("int8")
                };
                let mut rows = vec![0i8; l.inputs * l.outputs];
                qkernel::unpack(p.weights, l.inputs, l.outputs, &mut rows).unwrap();
                let mut y = vec![0i8; l.outputs];
                qkernel::dense_reference(
                    &rows,
                    p.bias,
                    p.input.zero_point(),
                    &p.requantize,
                    &h,
                    &mut y,
                )
                .unwrap();
                p.activation.apply(&mut y);
                h = y;
            }
            assert_eq!(typed.to_vec(), h, "{name}: typed vs reference");
            // ... and the dynamic path from f32 inputs, dequantized.
            let (mut xr, mut ab, mut bb) = (x, [0.0f32; 8], [0.0f32; 8]);
            let y = view.run(&mut xr, &mut ab, &mut bb).unwrap();
            let want: Vec<u32> = typed
                .iter()
                .map(|&q| output.dequantize(q).to_bits())
                .collect();
            assert_eq!(
                y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want,
                "{name}"
            );
        }
    }
}

#[test]
fn the_input_transform_comes_before_the_quantization() {
    let file = int8_file(
        34,
        &[10, 8, 3],
        &[Activation::Relu, Activation::Softmax],
        false,
        true,
    );
    let a = Aligned::new(&file);
    let view = ModelView::new_checked(a.bytes()).unwrap();
    let (scale, offset) = view.input_transform().unwrap();
    let input = view.input_quantization().unwrap();
    let net = QSmall::from_model(&view).unwrap();
    let x: [f32; 10] = core::array::from_fn(|i| i as f32 * 0.37 - 1.5);
    let xq: [i8; 10] = core::array::from_fn(|i| input.quantize(x[i] * scale[i] + offset[i]));
    let typed = *net.forward(&xq, &mut QSmallBuffers::new());
    let (mut xr, mut ab, mut bb) = (x, [0.0f32; 8], [0.0f32; 8]);
    let y = view.run(&mut xr, &mut ab, &mut bb).unwrap().to_vec();
    let output = view.output_quantization().unwrap();
    assert_eq!(y, typed.map(|q| output.dequantize(q)).to_vec());
}

#[test]
fn network_types_refuse_the_other_weight_type() {
    let a = Aligned::new(&small());
    let view = ModelView::new_checked(a.bytes()).unwrap();
    assert_eq!(
        Small::from_model(&view).unwrap_err(),
        ModelError::WeightType {
            layer: 0,
            expected: "f32",
            found: "int8"
        }
    );
    let f32_file = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/corpus/model_view/seed-small.udnn"),
    )
    .unwrap();
    let b = Aligned::new(&f32_file);
    let f32_view = ModelView::new_checked(b.bytes()).unwrap();
    assert_eq!(
        f32_view.version_minor(),
        0,
        "a committed version-1.0 file still loads"
    );
    let e = QSmall::from_model(&f32_view).unwrap_err();
    assert_eq!(
        e,
        ModelError::WeightType {
            layer: 0,
            expected: "int8",
            found: "f32"
        }
    );
    assert_eq!(
        e.to_string(),
        "layer 0 has f32 weights where int8 weights are required"
    );
}

#[test]
fn monte_carlo_dropout_refuses_an_int8_model() {
    // small() ends in softmax, which Monte-Carlo dropout takes; int8 files keep no dropout.
    let a = Aligned::new(&small());
    let view = ModelView::new_checked(a.bytes()).unwrap();
    let mut x = [0.5f32; 10];
    let before = x;
    let (mut ab, mut bb) = ([0.0f32; 8], [0.0f32; 8]);
    let (mut m, mut s, mut p) = (
        vec![0.0; view.outputs()],
        vec![0.0; view.outputs()],
        vec![0.0; view.outputs()],
    );
    let passes = core::num::NonZeroU32::new(3).unwrap();
    let e = view
        .mc(&mut x, &mut ab, &mut bb, passes, 1, &mut m, &mut s, &mut p)
        .unwrap_err();
    assert_eq!(
        e,
        microdnn::Error::Int8Unsupported {
            what: "Monte-Carlo dropout"
        }
    );
    assert_eq!(
        e.to_string(),
        "Monte-Carlo dropout needs an f32 model; this one is int8"
    );
    assert_eq!(x, before, "the input is left as given");
    let e = view
        .run_mc(&x, &mut ab, &mut bb, &mut Rng::new(1))
        .unwrap_err();
    assert!(matches!(e, microdnn::Error::Int8Unsupported { .. }));
}

/// Mutates one field of `file` (CRC repaired) and returns the reader's verdict.
fn mutated(file: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> Result<(), ModelError> {
    let mut g = file.to_vec();
    f(&mut g);
    fix_crc(&mut g);
    check(&g)
}

#[test]
fn scales_zero_negative_or_not_finite_are_typed_errors() {
    let f = small();
    let scale_at = |g: &mut Vec<u8>, at: usize, v: f32| put32(g, at, v.to_bits());
    for bad in [0.0f32, -0.5, f32::NAN, f32::INFINITY, -0.0] {
        assert_eq!(
            mutated(&f, |g| scale_at(g, rec(1) + record::INPUT_SCALE, bad)),
            quant_err(
                1,
                QuantError::InvalidScale {
                    what: "input",
                    channel: None
                }
            ),
            "{bad}"
        );
        assert_eq!(
            mutated(&f, |g| scale_at(g, rec(0) + record::OUTPUT_SCALE, bad)),
            quant_err(
                0,
                QuantError::InvalidScale {
                    what: "output",
                    channel: None
                }
            )
        );
        assert_eq!(
            mutated(&f, |g| scale_at(g, rec(1) + record::ACT_OUTPUT_SCALE, bad)),
            quant_err(
                1,
                QuantError::InvalidScale {
                    what: "activation output",
                    channel: None
                }
            )
        );
        // A filter scale of channel 3 of layer 0.
        let r = if bad.is_finite() {
            quant_err(
                0,
                QuantError::InvalidScale {
                    what: "filter",
                    channel: Some(3),
                },
            )
        } else {
            Err(ModelError::NonFinite {
                layer: Some(0),
                tensor: Tensor::Scales,
                index: 3,
            })
        };
        assert_eq!(
            mutated(&f, |g| {
                let at = get32(g, rec(0) + record::SCALES) as usize + 12;
                scale_at(g, at, bad)
            }),
            r,
            "{bad}"
        );
    }
    let e = ModelError::Quant {
        layer: 0,
        error: QuantError::InvalidScale {
            what: "filter",
            channel: Some(3),
        },
    };
    assert_eq!(
        e.to_string(),
        "layer 0: filter scale must be positive and finite (channel 3)"
    );
}

#[test]
fn stored_multipliers_and_shifts_must_be_tflites() {
    let f = small();
    for (delta_at, layer, channel) in [(0usize, 0u16, 0usize), (5, 0, 5), (1, 1, 1)] {
        let rq = |g: &Vec<u8>| get32(g, rec(layer as usize) + record::REQUANT) as usize;
        let channels = [8usize, 3][layer as usize];
        // The multiplier one unit off.
        let r = mutated(&f, |g| {
            let at = rq(g) + 4 * delta_at;
            let m = get32(g, at);
            put32(g, at, m + 1);
        });
        assert_eq!(r, Err(ModelError::StoredMultiplier { layer, channel }));
        // The shift one off.
        let r = mutated(&f, |g| {
            let at = rq(g) + 4 * (channels + delta_at);
            let s = get32(g, at);
            put32(g, at, s.wrapping_sub(1));
        });
        assert_eq!(r, Err(ModelError::StoredMultiplier { layer, channel }));
    }
    // A multiplier TFLite's arithmetic cannot apply is refused before it is compared.
    let r = mutated(&f, |g| {
        let at = get32(g, rec(0) + record::REQUANT) as usize;
        put32(g, at, u32::MAX); // -1
    });
    assert_eq!(
        r,
        quant_err(0, QuantError::InvalidRequantization { channel: 0 })
    );
}

#[test]
fn kernel_bias_must_match_the_weights() {
    let f = small();
    let r = mutated(&f, |g| {
        let at = get32(g, rec(0) + record::KERNEL_BIAS) as usize + 4 * 6;
        let v = get32(g, at);
        put32(g, at, v ^ 1);
    });
    assert_eq!(r, quant_err(0, QuantError::KernelBias { row: 6 }));
    // A changed weight breaks it too: the row whose weight changed is named.
    let r = mutated(&f, |g| {
        let w = get32(g, rec(1) + record::WEIGHTS) as usize;
        // Packed layout, 8 inputs x 3 outputs: block 0 holds rows 0..3; byte 4 is row 1's
        // first group.
        g[w + 4] = g[w + 4].wrapping_add(1);
    });
    assert_eq!(r, quant_err(1, QuantError::KernelBias { row: 1 }));
}

#[test]
fn fixed_output_quantizations_of_logistic_tanh_softmax() {
    let f = small();
    assert_eq!(
        mutated(&f, |g| g[rec(1) + record::ACT_OUTPUT_ZP] = 0),
        quant_err(1, QuantError::OutputQuantization { op: "softmax" })
    );
    let t = int8_file(
        35,
        &[10, 8, 3],
        &[Activation::Tanh, Activation::Sigmoid],
        false,
        false,
    );
    assert_eq!(
        mutated(&t, |g| put32(
            g,
            rec(1) + record::ACT_OUTPUT_SCALE,
            (1.0f32 / 128.0).to_bits()
        )),
        quant_err(1, QuantError::OutputQuantization { op: "logistic" })
    );
    // Layer 0's tanh output is layer 1's input: change both so only the tanh rule is broken.
    assert_eq!(
        mutated(&t, |g| {
            g[rec(0) + record::ACT_OUTPUT_ZP] = 3;
            g[rec(1) + record::INPUT_ZP] = 3;
        }),
        quant_err(0, QuantError::OutputQuantization { op: "tanh" })
    );
}

#[test]
fn quantizations_chain_and_identity_keeps_the_dense_output() {
    let f = leaky();
    // Layer 0's leaky ReLU output scale changed: layer 1 now receives another quantization.
    assert_eq!(
        mutated(&f, |g| {
            let s = f32::from_bits(get32(g, rec(0) + record::ACT_OUTPUT_SCALE));
            put32(g, rec(0) + record::ACT_OUTPUT_SCALE, (s * 1.5).to_bits());
        }),
        Err(ModelError::QuantMismatch {
            layer: 1,
            what: "the input quantization differs from the previous layer's output"
        })
    );
    // Layer 1 has no operator: its activation output must be its dense output.
    let r = mutated(&f, |g| g[rec(1) + record::ACT_OUTPUT_ZP] ^= 1);
    assert!(
        matches!(r, Err(ModelError::QuantMismatch { layer: 1, .. })),
        "{r:?}"
    );
    // The same refused by the encoder.
    let a = Aligned::new(&f);
    let view = ModelView::new_checked(a.bytes()).unwrap();
    let (l0, l1) = (view.layer(0).unwrap(), view.layer(1).unwrap());
    let (LayerParams::Int8(p0), LayerParams::Int8(p1)) = (l0.params, l1.params) else {
        panic!("int8")
    };
    fn layer<'a>(l: &model::LayerView<'a>, p: &model::Int8Params<'a>) -> Int8EncodeLayer<'a> {
        Int8EncodeLayer {
            inputs: l.inputs,
            outputs: l.outputs,
            activation: l.activation,
            softmax_beta: 0.0,
            input: p.input,
            output: p.output,
            activation_output: p.activation_output,
            fused: p.fused,
            filter_scales: p.filter_scales,
            packed_weights: p.weights,
            bias: p.bias,
            kernel_bias: p.kernel_bias,
            multipliers: p.requantize.multipliers(),
            shifts: p.requantize.shifts(),
        }
    }
    let good = [layer(&l0, &p0), layer(&l1, &p1)];
    let spec = |layers: &[Int8EncodeLayer<'_>]| -> Result<Vec<u8>, ModelError> {
        let s = Int8ModelSpec {
            inputs: 10,
            layers,
            input_transform: None,
        };
        let mut out = vec![0u8; model::encoded_len_int8(&s)];
        model::encode_int8(&s, &mut out).map(|_| out)
    };
    assert_eq!(
        spec(&good).unwrap(),
        f,
        "the encoder writes the same bytes back"
    );
    let mut bad = good;
    bad[0].activation_output = QuantParams::new(p0.activation_output.scale() * 1.5, 0).unwrap();
    assert!(matches!(
        spec(&bad),
        Err(ModelError::QuantMismatch { layer: 1, .. })
    ));
    let mut bad = good;
    bad[1].activation_output = QuantParams::new(1.0, 0).unwrap();
    assert!(matches!(
        spec(&bad),
        Err(ModelError::QuantMismatch { layer: 1, .. })
    ));
    let mut bad = good;
    let zero_scale = [0.0f32; 8];
    bad[0].filter_scales = &zero_scale;
    assert_eq!(
        spec(&bad),
        Err(ModelError::Quant {
            layer: 0,
            error: QuantError::InvalidScale {
                what: "filter",
                channel: Some(0)
            }
        })
    );
    let mut bad = good;
    let m: Vec<i32> = p1.requantize.multipliers().iter().map(|m| m + 1).collect();
    bad[1].multipliers = &m;
    assert_eq!(
        spec(&bad),
        Err(ModelError::StoredMultiplier {
            layer: 1,
            channel: 0
        })
    );
    let mut bad = good;
    let kb: Vec<i32> = p1.kernel_bias.iter().map(|k| k ^ 4).collect();
    bad[1].kernel_bias = &kb;
    assert_eq!(
        spec(&bad),
        Err(ModelError::Quant {
            layer: 1,
            error: QuantError::KernelBias { row: 0 }
        })
    );
    let mut bad = good;
    bad[1].filter_scales = &p1.filter_scales[..2];
    assert!(matches!(
        spec(&bad),
        Err(ModelError::TensorLength {
            layer: Some(1),
            tensor: Tensor::Scales,
            ..
        })
    ));
    let mut bad = good;
    bad[0].softmax_beta = 1.0;
    assert!(matches!(
        spec(&bad),
        Err(ModelError::Reserved { layer: Some(0), .. })
    ));
}

#[test]
fn fused_activations_dropout_and_lengths() {
    let f = small();
    assert_eq!(
        mutated(&f, |g| g[rec(0) + record::FUSED] = 9),
        Err(ModelError::UnknownFusedActivation { layer: 0, code: 9 })
    );
    // ReLU6's clamp does not exist at a tiny output scale (TFLite refuses the model too).
    let r = mutated(&f, |g| {
        g[rec(0) + record::FUSED] = 3;
        put32(g, rec(0) + record::OUTPUT_SCALE, 1e-12f32.to_bits());
        put32(g, rec(0) + record::ACT_OUTPUT_SCALE, 1e-12f32.to_bits());
    });
    assert_eq!(r, quant_err(0, QuantError::ActivationBoundOverflow));
    assert_eq!(
        mutated(&f, |g| put32(
            g,
            rec(0) + record::DROPOUT,
            0.25f32.to_bits()
        )),
        Err(ModelError::Reserved {
            layer: Some(0),
            field: "dropout rate (int8 layers have no Monte-Carlo dropout)"
        })
    );
    // 12 bytes of scales for 8 outputs: neither per-tensor (4) nor per-channel (32).
    assert_eq!(
        mutated(&f, |g| put32(g, rec(0) + record::SCALES_LEN, 12)),
        Err(ModelError::TensorLength {
            layer: Some(0),
            tensor: Tensor::Scales,
            expected: 32,
            found: 12
        })
    );
    assert!(matches!(
        mutated(&f, |g| put32(g, rec(1) + record::REQUANT_LEN, 16)),
        Err(ModelError::TensorLength {
            layer: Some(1),
            tensor: Tensor::Requantization,
            ..
        })
    ));
    assert!(matches!(
        mutated(&f, |g| put32(g, rec(1) + record::KERNEL_BIAS, 16)),
        Err(ModelError::Overlap {
            layer: Some(1),
            tensor: Tensor::KernelBias,
            ..
        })
    ));
    // int8 weights with the f32 layout code.
    assert_eq!(
        mutated(&f, |g| g[rec(0) + record::LAYOUT] = 0),
        Err(ModelError::UnsupportedLayout { layer: 0, code: 0 })
    );
    // A softmax's beta must let TFLite's algorithm run.
    assert_eq!(
        mutated(&f, |g| put32(
            g,
            rec(1) + record::ACT_PARAM,
            f32::NAN.to_bits()
        )),
        Err(ModelError::NonFinite {
            layer: Some(1),
            tensor: Tensor::ActivationParameter,
            index: 0
        })
    );
    assert!(matches!(
        mutated(&f, |g| put32(
            g,
            rec(1) + record::ACT_PARAM,
            (-1.0f32).to_bits()
        )),
        Err(ModelError::Quant {
            layer: 1,
            error: QuantError::InputScaleOutOfRange { op: "softmax" }
        })
    ));
}

#[test]
fn one_weight_type_per_file() {
    // Layer 1 of an int8 file turned into a valid-looking f32 layer (f32 weights appended at
    // the end, its int32 bias zeroed and read as floats).
    let f = small();
    let r = mutated(&f, |g| {
        let at = g.len();
        g.extend(std::iter::repeat_n(0u8, 8 * 3 * 4));
        let n = g.len() as u32;
        put32(g, header::FILE_LEN, n);
        let r1 = rec(1);
        g[r1 + record::DTYPE] = 0;
        g[r1 + record::LAYOUT] = 0;
        put32(g, r1 + record::ACT_PARAM, 0);
        put32(g, r1 + record::WEIGHTS, at as u32);
        put32(g, r1 + record::WEIGHTS_LEN, 96);
        for field in [record::SCALES, record::SCALES_LEN] {
            put32(g, r1 + field, 0);
        }
        g[r1 + model::LAYER_RECORD_LEN_1_0..r1 + model::LAYER_RECORD_LEN].fill(0);
        let b = get32(g, r1 + record::BIAS) as usize;
        g[b..b + 12].fill(0);
    });
    assert_eq!(
        r,
        Err(ModelError::WeightType {
            layer: 1,
            expected: "int8",
            found: "f32"
        })
    );
}

#[test]
fn info_of_an_int8_layer() {
    let a = Aligned::new(&small());
    let view = ModelView::new_checked(a.bytes()).unwrap();
    let l0 = view.layer(0).unwrap();
    let LayerParams::Int8(p) = l0.params else {
        panic!("int8")
    };
    assert_eq!(l0.activation, Activation::Identity);
    assert_eq!(p.fused, FusedActivation::Relu);
    assert_eq!(p.filter_scales.len(), 8);
    assert_eq!(p.requantize.channels(), 8);
    assert_eq!(p.requantize.activation_range().0, p.output.zero_point());
    let LayerParams::Int8(p1) = view.layer(1).unwrap().params else {
        panic!("int8")
    };
    assert!(matches!(p1.activation, QActivation::Softmax(_)));
    // The multipliers are TFLite's, recomputed here from the scales.
    let (mut m, mut s) = ([0; 8], [0; 8]);
    quant::per_channel_multipliers(p.input, p.filter_scales, p.output, &mut m, &mut s).unwrap();
    assert_eq!(
        (&m[..], &s[..]),
        (p.requantize.multipliers(), p.requantize.shifts())
    );
}

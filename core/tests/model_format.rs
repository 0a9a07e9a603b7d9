//! The model format: a round trip, one test per class of malformed file, and a mutation fuzz test
//! (random byte flips, field overwrites, truncations and extensions of valid files, 100k cases,
//! a million and more with `cargo xtask mutate`) asserting that validation never panics and that
//! whatever it accepts is well-formed and runs.

use microdnn::model::{
    self, header, record, EncodeLayer, LayerParams, ModelError, ModelSpec, ModelView, Tensor,
    WeightType,
};
use microdnn::{kernel, Activation, Rng};

mod fuzz_bodies;

use fuzz_bodies::Aligned;

microdnn::network! {
    /// The network type the test files are compiled against.
    pub struct Small(SmallBuffers) {
        hidden: Dense<10, 8>,
        out: Dense<8, 3>,
    }
}

microdnn::network! {
    /// Same depth, different output width: must be rejected with a typed error.
    pub struct Wider(WiderBuffers) {
        hidden: Dense<10, 8>,
        out: Dense<8, 4>,
    }
}

microdnn::network! {
    /// One layer more.
    pub struct Deeper(DeeperBuffers) {
        hidden: Dense<10, 8>,
        mid: Dense<8, 8>,
        out: Dense<8, 3>,
    }
}

struct Params {
    w1: Vec<f32>,
    b1: Vec<f32>,
    w2: Vec<f32>,
    b2: Vec<f32>,
    scale: Vec<f32>,
    offset: Vec<f32>,
}

fn params(seed: u64) -> Params {
    let mut rng = Rng::new(seed);
    let packed = |i: usize, o: usize, rng: &mut Rng| {
        let rows: Vec<f32> = (0..i * o).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let mut p = vec![0.0; i * o];
        kernel::pack(&rows, i, o, &mut p).unwrap();
        p
    };
    Params {
        w1: packed(10, 8, &mut rng),
        b1: (0..8).map(|_| rng.uniform(-0.1, 0.1)).collect(),
        w2: packed(8, 3, &mut rng),
        b2: (0..3).map(|_| rng.uniform(-0.1, 0.1)).collect(),
        scale: (0..10).map(|_| rng.uniform(0.5, 2.0)).collect(),
        offset: (0..10).map(|_| rng.uniform(-1.0, 1.0)).collect(),
    }
}

fn encode(p: &Params) -> Vec<u8> {
    let layers = [
        EncodeLayer {
            inputs: 10,
            outputs: 8,
            activation: Activation::LeakyRelu { slope: 0.05 },
            dropout_rate: 0.25,
            packed_weights: &p.w1,
            bias: &p.b1,
        },
        EncodeLayer {
            inputs: 8,
            outputs: 3,
            activation: Activation::Softmax,
            dropout_rate: 0.0,
            packed_weights: &p.w2,
            bias: &p.b2,
        },
    ];
    let spec = ModelSpec {
        inputs: 10,
        layers: &layers,
        input_transform: Some((&p.scale, &p.offset)),
    };
    let mut out = vec![0u8; model::encoded_len(&spec)];
    let n = model::encode(&spec, &mut out).unwrap();
    assert_eq!(n, out.len());
    out
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn get32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

/// Recomputes the CRC so a test reaches the check it is about.
fn fix_crc(b: &mut [u8]) {
    let c = model::file_crc(b);
    put32(b, header::CRC, c);
}

fn check(bytes: &[u8]) -> Result<(), ModelError> {
    let a = Aligned::new(bytes);
    ModelView::new_checked(a.bytes()).map(|_| ())
}

const L0: usize = model::HEADER_LEN;
const L1: usize = model::HEADER_LEN + model::LAYER_RECORD_LEN_1_0;

#[test]
fn round_trip_runs_like_the_typed_network() {
    let p = params(1);
    let file = Aligned::new(&encode(&p));
    let view = ModelView::new_checked(file.bytes()).unwrap();
    assert_eq!(
        (view.inputs(), view.outputs(), view.layer_count()),
        (10, 3, 2)
    );
    assert_eq!(view.macs(), 10 * 8 + 8 * 3);
    assert_eq!(view.params(), 11 * 8 + 9 * 3);
    let l0 = view.layer(0).unwrap();
    assert_eq!(l0.activation, Activation::LeakyRelu { slope: 0.05 });
    assert_eq!(l0.dropout_rate, 0.25);
    let LayerParams::F32 { weights, .. } = l0.params else {
        panic!("f32 layer")
    };
    assert_eq!(weights, &p.w1[..]);
    assert_eq!(view.weight_type(), WeightType::F32);
    assert_eq!(
        view.version_minor(),
        0,
        "f32 models are written as version 1.0"
    );
    assert!(view.input_quantization().is_none() && view.output_quantization().is_none());
    assert!(view.layer(2).is_none());
    // Zero-copy: the weights point into the file.
    let range = file.bytes().as_ptr_range();
    assert!(range.contains(&(weights.as_ptr() as *const u8)));

    let net = Small::from_model(&view).unwrap();
    let x0: [f32; 10] = core::array::from_fn(|i| i as f32 * 0.3 - 1.0);
    let mut x = x0;
    view.transform_input(&mut x);
    for i in 0..10 {
        assert_eq!(x[i], x0[i] * p.scale[i] + p.offset[i]);
    }
    let mut bufs = SmallBuffers::new();
    let typed = *net.forward(&x, &mut bufs);
    let (mut a, mut b) = ([0.0; 8], [0.0; 8]);
    let mut xr = x0;
    let dynamic = view.run(&mut xr, &mut a, &mut b).unwrap().to_vec();
    assert_eq!(
        dynamic,
        typed.to_vec(),
        "run() and the typed network agree bit for bit"
    );
    assert!(view.run(&mut [0.0; 9], &mut a, &mut b).is_err());
    assert!(view.run(&mut xr, &mut [0.0; 7], &mut b).is_err());
}

#[test]
fn truncated() {
    let f = encode(&params(2));
    for len in [
        0,
        3,
        10,
        model::HEADER_LEN - 1,
        model::HEADER_LEN,
        f.len() / 2,
        f.len() - 1,
    ] {
        let e = check(&f[..len]).unwrap_err();
        assert!(
            matches!(e, ModelError::Truncated { .. }),
            "len {len}: {e:?}"
        );
    }
    let e = check(&f[..f.len() - 1]).unwrap_err();
    assert_eq!(
        e,
        ModelError::Truncated {
            needed: f.len(),
            found: f.len() - 1
        }
    );
}

#[test]
fn trailing_bytes() {
    let mut f = encode(&params(2));
    f.push(0);
    assert!(matches!(check(&f), Err(ModelError::TrailingBytes { .. })));
}

#[test]
fn wrong_magic() {
    let mut f = encode(&params(3));
    f[0] = b'x';
    assert_eq!(check(&f), Err(ModelError::BadMagic));
    assert_eq!(check(b"PK\x03\x04 not a model"), Err(ModelError::BadMagic));
}

#[test]
fn newer_version() {
    let mut f = encode(&params(4));
    f[header::VERSION_MAJOR..header::VERSION_MAJOR + 2].copy_from_slice(&2u16.to_le_bytes());
    fix_crc(&mut f);
    assert_eq!(
        check(&f),
        Err(ModelError::UnsupportedVersion { major: 2, minor: 0 })
    );
    // A newer *minor* version is readable (its records have at least the 1.1 fields).
    let mut f = encode(&params(4));
    move_table(&mut f, model::LAYER_RECORD_LEN, 0);
    f[header::VERSION_MINOR..header::VERSION_MINOR + 2].copy_from_slice(&7u16.to_le_bytes());
    fix_crc(&mut f);
    let a = Aligned::new(&f);
    assert_eq!(
        ModelView::new_checked(a.bytes()).unwrap().version_minor(),
        7
    );
}

#[test]
fn wrong_endianness() {
    let mut f = encode(&params(5));
    put32(
        &mut f,
        header::BYTE_ORDER,
        model::BYTE_ORDER_MARK.swap_bytes(),
    );
    fix_crc(&mut f);
    assert_eq!(check(&f), Err(ModelError::WrongEndianness));
}

#[test]
fn bad_crc() {
    let mut f = encode(&params(6));
    let n = f.len();
    f[n - 20] ^= 0x40; // a bit of the last bias
    assert!(matches!(check(&f), Err(ModelError::BadChecksum { .. })));
}

#[test]
fn shape_mismatch_against_the_compiled_network() {
    let f = Aligned::new(&encode(&params(7)));
    let view = ModelView::new_checked(f.bytes()).unwrap();
    assert_eq!(
        Wider::from_model(&view).unwrap_err(),
        ModelError::LayerShape {
            layer: 1,
            dimension: "outputs",
            expected: 4,
            found: 3
        }
    );
    assert_eq!(
        Deeper::from_model(&view).unwrap_err(),
        ModelError::LayerCount {
            expected: 3,
            found: 2
        }
    );
    let msg = Wider::from_model(&view).unwrap_err().to_string();
    assert_eq!(
        msg,
        "layer 1 has 3 outputs, the network type compiled in has 4"
    );
}

#[test]
fn shape_chain_in_the_file() {
    let mut f = encode(&params(8));
    // Layer 1 claims 9 inputs (and the matching weight length) while layer 0 gives 8.
    put32(&mut f, L1 + record::INPUTS, 9);
    put32(&mut f, L1 + record::WEIGHTS + 4, 9 * 3 * 4);
    fix_crc(&mut f);
    let e = check(&f).unwrap_err();
    // The weights no longer fit where they are or the chain breaks: both are typed errors.
    assert!(
        matches!(
            e,
            ModelError::ShapeChain {
                layer: 1,
                expected: 8,
                found: 9
            } | ModelError::OutOfRange { .. }
        ),
        "{e:?}"
    );
    let mut f = encode(&params(8));
    put32(&mut f, L0 + record::WEIGHTS + 4, 4);
    fix_crc(&mut f);
    assert_eq!(
        check(&f),
        Err(ModelError::TensorLength {
            layer: Some(0),
            tensor: Tensor::Weights,
            expected: 320,
            found: 4
        })
    );
}

#[test]
fn misaligned() {
    // The file itself at an odd address.
    let f = encode(&params(9));
    let a = Aligned::new(&[&[0u8][..], &f[..]].concat());
    assert_eq!(
        ModelView::new_checked(&a.bytes()[1..]).unwrap_err(),
        ModelError::Misaligned {
            layer: None,
            tensor: Tensor::File
        }
    );
    // A tensor offset that is not a multiple of 16.
    let mut f = encode(&params(9));
    let off = get32(&f, L1 + record::BIAS);
    put32(&mut f, L1 + record::BIAS, off + 4);
    fix_crc(&mut f);
    assert_eq!(
        check(&f),
        Err(ModelError::Misaligned {
            layer: Some(1),
            tensor: Tensor::Bias
        })
    );
}

#[test]
fn non_finite_weights() {
    let p = params(10);
    let mut f = encode(&p);
    let off = get32(&f, L0 + record::WEIGHTS) as usize;
    f[off + 4 * 17..off + 4 * 18].copy_from_slice(&f32::NAN.to_le_bytes());
    fix_crc(&mut f);
    assert_eq!(
        check(&f),
        Err(ModelError::NonFinite {
            layer: Some(0),
            tensor: Tensor::Weights,
            index: 17
        })
    );
    let mut f = encode(&p);
    let off = get32(&f, header::TRANSFORM) as usize;
    f[off..off + 4].copy_from_slice(&f32::INFINITY.to_le_bytes());
    fix_crc(&mut f);
    assert!(matches!(
        check(&f),
        Err(ModelError::NonFinite {
            tensor: Tensor::InputTransform,
            ..
        })
    ));
    // The encoder refuses to write such a network in the first place.
    let mut bad = p;
    bad.b2[1] = f32::NAN;
    let layers = [EncodeLayer {
        inputs: 8,
        outputs: 3,
        activation: Activation::Softmax,
        dropout_rate: 0.0,
        packed_weights: &bad.w2,
        bias: &bad.b2,
    }];
    let spec = ModelSpec {
        inputs: 8,
        layers: &layers,
        input_transform: None,
    };
    let mut out = vec![0xAAu8; model::encoded_len(&spec)];
    assert_eq!(
        model::encode(&spec, &mut out),
        Err(ModelError::NonFinite {
            layer: Some(0),
            tensor: Tensor::Bias,
            index: 1
        })
    );
    assert!(out.iter().all(|&b| b == 0xAA), "nothing written on error");
}

#[test]
fn offsets_out_of_range() {
    let mut f = encode(&params(11));
    let n = f.len() as u32;
    put32(&mut f, L1 + record::WEIGHTS, n.next_multiple_of(16));
    fix_crc(&mut f);
    assert_eq!(
        check(&f),
        Err(ModelError::OutOfRange {
            layer: Some(1),
            tensor: Tensor::Weights
        })
    );
    let mut f = encode(&params(11));
    put32(&mut f, L0 + record::BIAS, u32::MAX - 15);
    fix_crc(&mut f);
    assert!(matches!(
        check(&f),
        Err(ModelError::OutOfRange { layer: Some(0), .. })
    ));
    let mut f = encode(&params(11));
    put32(&mut f, header::LAYER_TABLE, n);
    fix_crc(&mut f);
    assert!(matches!(
        check(&f),
        Err(ModelError::OutOfRange {
            tensor: Tensor::LayerTable,
            ..
        })
    ));
}

#[test]
fn unknown_codes() {
    type Expect = fn(&ModelError) -> bool;
    let cases: [(usize, u8, Expect); 4] = [
        (record::KIND, 9, |e| {
            matches!(e, ModelError::UnknownLayerKind { layer: 0, kind: 9 })
        }),
        (record::ACTIVATION, 42, |e| {
            matches!(e, ModelError::UnknownActivation { layer: 0, code: 42 })
        }),
        (record::DTYPE, 1, |e| {
            matches!(
                e,
                ModelError::UnsupportedWeightType {
                    layer: 0,
                    code: 1,
                    known: true
                }
            )
        }),
        (record::LAYOUT, 3, |e| {
            matches!(e, ModelError::UnsupportedLayout { layer: 0, code: 3 })
        }),
    ];
    for (field, value, ok) in cases {
        let mut f = encode(&params(12));
        f[L0 + field] = value;
        fix_crc(&mut f);
        let e = check(&f).unwrap_err();
        assert!(ok(&e), "field {field}: {e:?}");
    }
    let mut f = encode(&params(12));
    put32(&mut f, L0 + record::DROPOUT, 1.5f32.to_bits());
    fix_crc(&mut f);
    assert_eq!(check(&f), Err(ModelError::BadDropoutRate { layer: 0 }));
}

/// Offsets in the file `encode(&params(_))` writes: header 0..64, layer table 64..160, input
/// transform 160..240, layer 0 weights 240..560 and bias 560..592, layer 1 weights 592..688 and
/// bias 688..700, padding to 704.
#[test]
fn layout_of_the_test_file() {
    let f = encode(&params(20));
    assert_eq!(get32(&f, header::LAYER_TABLE), 64);
    assert_eq!(get32(&f, header::TRANSFORM), 160);
    assert_eq!(get32(&f, L0 + record::WEIGHTS), 240);
    assert_eq!(get32(&f, L0 + record::BIAS), 560);
    assert_eq!(get32(&f, L1 + record::WEIGHTS), 592);
    assert_eq!(get32(&f, L1 + record::BIAS), 688);
    assert_eq!(f.len(), 704);
}

/// Moves the layer table to the end of the file, each record padded to `record_len` bytes with
/// `pad`, and fixes the file length (not the CRC). Returns the table's new offset.
fn move_table(f: &mut Vec<u8>, record_len: usize, pad: u8) -> usize {
    let layers = usize::from(u16::from_le_bytes([
        f[header::LAYER_COUNT],
        f[header::LAYER_COUNT + 1],
    ]));
    let old = get32(f, header::LAYER_TABLE) as usize;
    let old_len = usize::from(u16::from_le_bytes([
        f[header::RECORD_LEN],
        f[header::RECORD_LEN + 1],
    ]));
    let table: Vec<u8> = (0..layers)
        .flat_map(|i| {
            let r = &f[old + i * old_len..][..old_len];
            let mut r = r.to_vec();
            r.resize(record_len, pad);
            r
        })
        .collect();
    let at = f.len();
    f.extend(table);
    f.resize(f.len().next_multiple_of(16), 0);
    put32(f, header::LAYER_TABLE, at as u32);
    f[header::RECORD_LEN..header::RECORD_LEN + 2]
        .copy_from_slice(&(record_len as u16).to_le_bytes());
    let n = f.len() as u32;
    put32(f, header::FILE_LEN, n);
    at
}

fn overlap(
    layer: Option<u16>,
    tensor: Tensor,
    other_layer: Option<u16>,
    other: Tensor,
) -> ModelError {
    ModelError::Overlap {
        layer,
        tensor,
        other_layer,
        other,
    }
}

#[test]
fn tensor_overlapping_the_header() {
    // A tensor inside the 64-byte header.
    let mut f = encode(&params(21));
    put32(&mut f, L0 + record::BIAS, 16);
    fix_crc(&mut f);
    assert_eq!(
        check(&f),
        Err(overlap(Some(0), Tensor::Bias, None, Tensor::Header))
    );
    // A longer header (a later minor version) that covers the input transform.
    let mut f = encode(&params(21));
    move_table(&mut f, model::LAYER_RECORD_LEN, 0);
    f[header::VERSION_MINOR] = 2;
    put32(&mut f, header::HEADER_LEN, 176);
    fix_crc(&mut f);
    assert_eq!(
        check(&f),
        Err(overlap(None, Tensor::InputTransform, None, Tensor::Header))
    );
    // The layer table inside the header.
    let mut f = encode(&params(21));
    put32(&mut f, header::LAYER_TABLE, 32);
    fix_crc(&mut f);
    assert_eq!(
        check(&f),
        Err(overlap(None, Tensor::LayerTable, None, Tensor::Header))
    );
}

#[test]
fn tensor_overlapping_the_layer_table() {
    // Layer 1's bias (12 bytes) on the first record: its bytes decode as finite floats.
    let mut f = encode(&params(22));
    put32(&mut f, L1 + record::BIAS, 64);
    fix_crc(&mut f);
    assert_eq!(
        check(&f),
        Err(overlap(Some(1), Tensor::Bias, None, Tensor::LayerTable))
    );
    // The input transform (80 bytes) over the records.
    let mut f = encode(&params(22));
    put32(&mut f, header::TRANSFORM, 80);
    fix_crc(&mut f);
    assert_eq!(
        check(&f),
        Err(overlap(
            None,
            Tensor::InputTransform,
            None,
            Tensor::LayerTable
        ))
    );
}

#[test]
fn tensors_overlapping_each_other() {
    type Case = (usize, u32, ModelError);
    let cases: [Case; 4] = [
        // Layer 1's bias inside its own weights.
        (
            L1 + record::BIAS,
            592,
            overlap(Some(1), Tensor::Bias, Some(1), Tensor::Weights),
        ),
        // Layer 1's weights on layer 0's (a shared tensor).
        (
            L1 + record::WEIGHTS,
            240,
            overlap(Some(1), Tensor::Weights, Some(0), Tensor::Weights),
        ),
        // Layer 0's bias over the last 16 bytes of its weights and the first 16 of its slot.
        (
            L0 + record::BIAS,
            544,
            overlap(Some(0), Tensor::Bias, Some(0), Tensor::Weights),
        ),
        // The input transform on layer 0's weights: reported when the weights are reached.
        (
            header::TRANSFORM,
            240,
            overlap(Some(0), Tensor::Weights, None, Tensor::InputTransform),
        ),
    ];
    for (field, value, expect) in cases {
        let mut f = encode(&params(23));
        put32(&mut f, field, value);
        fix_crc(&mut f);
        assert_eq!(check(&f), Err(expect), "field {field} = {value}");
    }
    let msg = overlap(Some(1), Tensor::Bias, None, Tensor::LayerTable).to_string();
    assert_eq!(msg, "layer 1 bias overlaps layer table");
}

#[test]
fn reserved_bytes_must_be_zero() {
    let reserved = |layer, field| Err(ModelError::Reserved { layer, field });
    let mut f = encode(&params(24));
    f[header::RESERVED + 2] = 7;
    fix_crc(&mut f);
    assert_eq!(check(&f), reserved(None, "header bytes 48..64 (reserved)"));
    let mut f = encode(&params(24));
    f[L1 + record::RESERVED + 2] = 1;
    fix_crc(&mut f);
    assert_eq!(
        check(&f),
        reserved(Some(1), "record bytes 44..48 (reserved)")
    );
    // f32 weights have no per-channel scales: (offset, length) is (0, 0).
    let mut f = encode(&params(24));
    put32(&mut f, L0 + record::SCALES, 704);
    fix_crc(&mut f);
    assert_eq!(
        check(&f),
        reserved(Some(0), "scales offset (f32 weights have no scales)")
    );
    let mut f = encode(&params(24));
    put32(&mut f, L0 + record::SCALES + 4, 32);
    fix_crc(&mut f);
    assert!(matches!(
        check(&f),
        Err(ModelError::TensorLength {
            layer: Some(0),
            tensor: Tensor::Scales,
            expected: 0,
            found: 32
        })
    ));
    // Softmax has no parameter; -0.0 is not zero bits either.
    for v in [1.0f32, -0.0] {
        let mut f = encode(&params(24));
        put32(&mut f, L1 + record::ACT_PARAM, v.to_bits());
        fix_crc(&mut f);
        assert_eq!(
            check(&f),
            reserved(Some(1), "activation parameter (only leaky ReLU has one)"),
            "{v}"
        );
    }
    // A version-1.0 file has exactly the 1.0 header and record lengths.
    let mut f = encode(&params(24));
    move_table(&mut f, model::LAYER_RECORD_LEN_1_0 + 8, 0);
    fix_crc(&mut f);
    assert_eq!(
        check(&f),
        Err(ModelError::BadHeader {
            field: "layer record length"
        })
    );
    let mut f = encode(&params(24));
    move_table(&mut f, model::LAYER_RECORD_LEN_1_0, 0);
    put32(&mut f, header::HEADER_LEN, 80);
    fix_crc(&mut f);
    assert_eq!(
        check(&f),
        Err(ModelError::BadHeader {
            field: "header length"
        })
    );
}

#[test]
fn a_later_minor_version_may_grow_the_header_and_records_and_use_reserved_bytes() {
    let p = params(25);
    let base = Aligned::new(&encode(&p));
    let base = ModelView::new_checked(base.bytes()).unwrap();
    // Version 1.3: a 144-byte header (covering the old table), 88-byte records, and every
    // reserved byte and record extension (beyond the 1.1 fields) set. A 1.1 reader ignores all
    // of it.
    let mut f = encode(&p);
    move_table(&mut f, 88, 0);
    f[header::VERSION_MINOR] = 3;
    put32(&mut f, header::HEADER_LEN, 144);
    f[header::RESERVED..model::HEADER_LEN].fill(0xA5);
    let table = get32(&f, header::LAYER_TABLE) as usize;
    for i in 0..2 {
        f[table + i * 88 + record::RESERVED..][..4].fill(0xC3);
        f[table + i * 88 + model::LAYER_RECORD_LEN..][..8].fill(0x5A);
    }
    fix_crc(&mut f);
    let a = Aligned::new(&f);
    let view = ModelView::new_checked(a.bytes()).unwrap();
    assert_eq!(view.version_minor(), 3);
    let (mut x0, mut x1) = ([0.75f32; 10], [0.75f32; 10]);
    let (mut a0, mut b0, mut a1, mut b1) = ([0.0; 8], [0.0; 8], [0.0; 8], [0.0; 8]);
    assert_eq!(
        base.run(&mut x0, &mut a0, &mut b0).unwrap(),
        view.run(&mut x1, &mut a1, &mut b1).unwrap()
    );
    // What would change the computation is still refused: scales on an f32 layer, or int8
    // fields.
    let mut g = f.clone();
    put32(&mut g, table + 88 + record::SCALES, 704);
    fix_crc(&mut g);
    assert_eq!(
        check(&g),
        Err(ModelError::Reserved {
            layer: Some(1),
            field: "scales offset (f32 weights have no scales)"
        })
    );
    let mut g = f.clone();
    g[table + 88 + record::FUSED] = 1;
    fix_crc(&mut g);
    assert_eq!(
        check(&g),
        Err(ModelError::Reserved {
            layer: Some(1),
            field: "record bytes 48..80 (int8 fields: f32 weights have none)"
        })
    );
    // A later minor's records hold at least the 1.1 fields.
    let mut g = encode(&p);
    move_table(&mut g, 56, 0);
    g[header::VERSION_MINOR] = 3;
    fix_crc(&mut g);
    assert_eq!(
        check(&g),
        Err(ModelError::BadHeader {
            field: "layer record length"
        })
    );
    // The same bytes in a 1.0 file are rejected.
    f[header::VERSION_MINOR] = 0;
    fix_crc(&mut f);
    assert_eq!(
        check(&f),
        Err(ModelError::BadHeader {
            field: "header length"
        })
    );
}

/// Random mutations of valid files: validation must never panic, and whatever it accepts must
/// be well-formed (checked from the raw bytes by `fuzz_bodies::assert_well_formed`) and run
/// (through both the dynamic path and the typed network when the shapes allow it).
///
/// 100k cases by default; `MICRODNN_MUTATION_CASES=N` sets the count (`cargo xtask mutate
/// --cases N` runs a million and more, in debug so overflow checks are on).
#[test]
fn fuzz_mutations_never_panic() {
    let cases: u64 = std::env::var("MICRODNN_MUTATION_CASES")
        .map(|v| {
            v.parse()
                .expect("MICRODNN_MUTATION_CASES: a number of cases")
        })
        .unwrap_or(100_000);
    // The test file and the committed seed corpus: several shapes, with and without transform.
    let mut bases = vec![encode(&params(13))];
    let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/model_view");
    for e in std::fs::read_dir(&seeds).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")
        {
            bases.push(std::fs::read(p).unwrap());
        }
    }
    let mut rng = Rng::new(2024);
    let mut accepted = 0u64;
    let mut rejected = std::collections::BTreeMap::<String, u64>::new();
    for case in 0..cases {
        let base = &bases[rng.next_u32() as usize % bases.len()];
        let mut f = base.clone();
        let len = f.len();
        match rng.next_u32() % 8 {
            0 => {
                let cut = rng.next_u32() as usize % len;
                f.truncate(cut);
            }
            1 => {
                let extra = 1 + rng.next_u32() as usize % 32;
                f.extend((0..extra).map(|_| rng.next_u32() as u8));
                if rng.next_u32().is_multiple_of(2) {
                    let n = f.len() as u32;
                    put32(&mut f, header::FILE_LEN, n);
                }
            }
            2..=4 => {
                // Set 1-3 header or record fields (u32 at 4-byte offsets) to values that sit
                // on boundaries: another field's value (an offset elsewhere: overlaps), the
                // file length, 0, 1, one past, u32 extremes.
                let table = get32(&f, header::LAYER_TABLE) as usize;
                let record_len = usize::from(f[header::RECORD_LEN]);
                let fields = table + usize::from(f[header::LAYER_COUNT]) * record_len;
                for _ in 0..1 + rng.next_u32() % 3 {
                    let at = (rng.next_u32() as usize % (fields / 4)) * 4;
                    let other = (rng.next_u32() as usize % (fields / 4)) * 4;
                    let old = get32(&f, at);
                    let v = match rng.next_u32() % 10 {
                        0 => 0,
                        1 => 1,
                        2 => get32(&f, other),
                        3 => get32(&f, other).wrapping_add(16),
                        4 => len as u32,
                        5 => (len as u32).wrapping_sub(16),
                        6 => u32::MAX,
                        7 => u32::MAX - 15,
                        8 => old ^ (1 << (rng.next_u32() % 32)),
                        _ => rng.next_u32(),
                    };
                    put32(&mut f, at, v);
                }
            }
            _ => {
                // Flip 1-8 bytes, biased toward the header and layer table.
                for _ in 0..1 + rng.next_u32() % 8 {
                    let span = if rng.next_u32().is_multiple_of(2) {
                        160
                    } else {
                        len
                    };
                    let at = rng.next_u32() as usize % span.min(len);
                    f[at] = rng.next_u32() as u8;
                }
            }
        }
        // Most of the time, repair the CRC so the mutation reaches the deeper checks.
        if case % 4 != 0 && f.len() >= model::HEADER_LEN {
            fix_crc(&mut f);
        }
        let a = Aligned::new(&f);
        match ModelView::new_checked(a.bytes()) {
            Ok(_) => {
                accepted += 1;
                // Well-formed, runs, typed and dynamic paths agree.
                fuzz_bodies::model_view(&f);
            }
            Err(e) => {
                let name = format!("{e:?}");
                let name = name.split([' ', '(']).next().unwrap().to_owned();
                *rejected.entry(name).or_default() += 1;
            }
        }
    }
    println!("{cases} mutated files: {accepted} accepted; rejected: {rejected:?}");
    // Mutations that only touch padding or weight values (with a repaired CRC) stay valid.
    assert!(accepted > 0 && accepted < cases, "accepted {accepted}");
}

#[test]
fn declared_len_reads_only_the_header() {
    let p = params(3);
    let file = encode(&p);
    assert_eq!(model::declared_len(&file), Ok(file.len()));
    assert_eq!(
        model::declared_len(&file[..model::HEADER_LEN]),
        Ok(file.len())
    );
    // What new_checked says about the same header problems, said from 64 bytes.
    let mut h = file[..model::HEADER_LEN].to_vec();
    h[header::VERSION_MAJOR] = 2;
    assert!(matches!(
        model::declared_len(&h),
        Err(ModelError::UnsupportedVersion { major: 2, .. })
    ));
    let mut h = file[..model::HEADER_LEN].to_vec();
    h[header::BYTE_ORDER..header::BYTE_ORDER + 4].reverse();
    assert_eq!(model::declared_len(&h), Err(ModelError::WrongEndianness));
    let mut h = file[..model::HEADER_LEN].to_vec();
    h[0] = b'x';
    assert_eq!(model::declared_len(&h), Err(ModelError::BadMagic));
    assert!(matches!(
        model::declared_len(&file[..40]),
        Err(ModelError::Truncated {
            needed: 64,
            found: 40
        })
    ));
    // A header declaring 3 GB is read as such (the caller compares it with the file).
    let mut h = file[..model::HEADER_LEN].to_vec();
    put32(&mut h, header::FILE_LEN, 3_000_000_000);
    assert_eq!(model::declared_len(&h), Ok(3_000_000_000));
}

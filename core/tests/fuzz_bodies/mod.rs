//! The bodies of the fuzz targets, shared by cargo-fuzz (`core/fuzz/fuzz_targets/*.rs` include
//! this file) and the normal test suite (`core/tests/fuzz_corpus.rs` runs them over the committed
//! corpus in `core/tests/corpus/`, and `model_format.rs` over a million mutated files), so the
//! properties fuzzing checks are checked on stable, in debug and release, on every run.
//!
//! Each body panics only when a property fails: never on a malformed input.

#![allow(dead_code)] // each includer uses some of the bodies

use microdnn::link::{self, DeviceInfo, FrameDecoder, InferResult, McAnswer, McResult, Responder};
use microdnn::model::{self, header, record, LayerParams, ModelView, WeightType};
use microdnn::quant::{self, kernel as qkernel, FusedActivation, QuantParams};
use microdnn::{Activation, Rng};

microdnn::network! {
    /// The network type the fuzzed files are tried against (the shape of the seed files).
    pub struct Small(SmallBuffers) {
        a: Dense<10, 8>,
        b: Dense<8, 3>,
    }
}

microdnn::qnetwork! {
    /// The int8 network type the fuzzed files are tried against.
    pub struct QSmall(QSmallBuffers) {
        a: QDense<10, 8>,
        b: QDense<8, 3>,
    }
}

/// The quantization an activation operator's output has in an int8 file: TFLite's fixed one
/// for logistic, tanh and softmax; `free` otherwise.
fn activation_output(act: Activation, free: QuantParams) -> QuantParams {
    match act {
        Activation::Sigmoid | Activation::Softmax => QuantParams::new(1.0 / 256.0, -128).unwrap(),
        Activation::Tanh => QuantParams::new(1.0 / 128.0, 0).unwrap(),
        _ => free,
    }
}

/// An int8 model file with the given widths and activations (`Relu` fused into the dense
/// clamp; the others as activation operators), random int8 weights, per-channel or per-tensor
/// scales, every derived value computed the way TFLite does, and an optional input transform.
pub fn int8_file(
    seed: u64,
    widths: &[usize],
    acts: &[Activation],
    per_tensor: bool,
    transform: bool,
) -> Vec<u8> {
    struct L {
        packed: Vec<i8>,
        bias: Vec<i32>,
        kb: Vec<i32>,
        scales: Vec<f32>,
        m: Vec<i32>,
        s: Vec<i32>,
        input: QuantParams,
        output: QuantParams,
        act_out: QuantParams,
    }
    let mut rng = Rng::new(seed);
    let zp = |rng: &mut Rng, r: u32| (rng.next_u32() % (2 * r + 1)) as i32 - r as i32;
    let mut input = QuantParams::new(rng.uniform(0.01, 0.05), zp(&mut rng, 20) as i8).unwrap();
    let mut layers = Vec::new();
    for (io, &act) in widths.windows(2).zip(acts) {
        let (i, o) = (io[0], io[1]);
        let rows: Vec<i8> = (0..i * o).map(|_| zp(&mut rng, 127) as i8).collect();
        let channels = if per_tensor { 1 } else { o };
        let scales: Vec<f32> = (0..channels).map(|_| rng.uniform(0.004, 0.02)).collect();
        let bias: Vec<i32> = (0..o).map(|_| zp(&mut rng, 3000)).collect();
        let out_scale = input.scale() * 0.02 * (i as f32).sqrt() * rng.uniform(4.0, 12.0) / 127.0;
        let output = QuantParams::new(out_scale, zp(&mut rng, 10) as i8).unwrap();
        let free =
            QuantParams::new(out_scale * rng.uniform(0.5, 1.5), zp(&mut rng, 10) as i8).unwrap();
        let act_out = match act {
            Activation::Identity | Activation::Relu => output,
            a => activation_output(a, free),
        };
        let (mut m, mut s) = (vec![0; channels], vec![0; channels]);
        quant::per_channel_multipliers(input, &scales, output, &mut m, &mut s).unwrap();
        let mut packed = vec![0i8; i * o];
        qkernel::pack(&rows, i, o, &mut packed).unwrap();
        let mut kb = vec![0; o];
        qkernel::kernel_bias(&rows, i, &bias, input.zero_point(), &mut kb).unwrap();
        layers.push(L {
            packed,
            bias,
            kb,
            scales,
            m,
            s,
            input,
            output,
            act_out,
        });
        input = act_out;
    }
    let enc: Vec<model::Int8EncodeLayer<'_>> = layers
        .iter()
        .zip(widths.windows(2))
        .zip(acts)
        .map(|((l, io), &act)| model::Int8EncodeLayer {
            inputs: io[0],
            outputs: io[1],
            activation: if act == Activation::Relu {
                Activation::Identity
            } else {
                act
            },
            softmax_beta: if act == Activation::Softmax { 1.0 } else { 0.0 },
            input: l.input,
            output: l.output,
            activation_output: l.act_out,
            fused: if act == Activation::Relu {
                FusedActivation::Relu
            } else {
                FusedActivation::None
            },
            filter_scales: &l.scales,
            packed_weights: &l.packed,
            bias: &l.bias,
            kernel_bias: &l.kb,
            multipliers: &l.m,
            shifts: &l.s,
        })
        .collect();
    let scale: Vec<f32> = (0..widths[0]).map(|_| rng.uniform(0.5, 2.0)).collect();
    let offset: Vec<f32> = (0..widths[0]).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let spec = model::Int8ModelSpec {
        inputs: widths[0],
        layers: &enc,
        input_transform: transform.then_some((&scale[..], &offset[..])),
    };
    let mut out = vec![0u8; model::encoded_len_int8(&spec)];
    let n = model::encode_int8(&spec, &mut out).unwrap();
    assert_eq!(n, out.len());
    out
}

/// `bytes` copied to the start of 16-byte-aligned memory, as a device holds a model in flash.
pub fn aligned(bytes: &[u8]) -> Vec<u128> {
    let mut words = vec![0u128; bytes.len().div_ceil(16) + 1];
    bytemuck::cast_slice_mut::<u128, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
    words
}

/// A 16-byte-aligned copy of a model file (what `include_bytes!` in an aligned wrapper gives a
/// device): the core's tests' one aligned-bytes helper.
pub struct Aligned(Vec<u128>, usize);

impl Aligned {
    /// `bytes`, copied to aligned memory.
    pub fn new(bytes: &[u8]) -> Self {
        Aligned(aligned(bytes), bytes.len())
    }

    /// The copy, as bytes.
    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u128, u8>(&self.0)[..self.1]
    }
}

fn get32(b: &[u8], off: usize) -> usize {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap()) as usize
}

fn get16(b: &[u8], off: usize) -> usize {
    usize::from(u16::from_le_bytes(b[off..off + 2].try_into().unwrap()))
}

/// Checks, from the raw bytes and independently of the validator, that an accepted file is
/// well-formed: the header, the layer table and every tensor lie inside the file and share no
/// byte; every tensor is aligned; every layer chains; every weight is finite; the 1.0 reserved
/// bytes are zero.
pub fn assert_well_formed(bytes: &[u8], view: &ModelView<'_>) {
    let len = bytes.len();
    assert_eq!(get32(bytes, header::FILE_LEN), len);
    let header_len = get32(bytes, header::HEADER_LEN);
    let layers = get16(bytes, header::LAYER_COUNT);
    let record_len = get16(bytes, header::RECORD_LEN);
    let table = get32(bytes, header::LAYER_TABLE);
    let inputs = get32(bytes, header::INPUTS);
    let minor = get16(bytes, header::VERSION_MINOR);
    assert_eq!(view.layer_count(), layers);
    assert_eq!(view.inputs(), inputs);
    if minor <= 1 {
        let expected = if minor == 0 {
            model::LAYER_RECORD_LEN_1_0
        } else {
            model::LAYER_RECORD_LEN
        };
        assert_eq!((header_len, record_len), (model::HEADER_LEN, expected));
        assert!(bytes[header::RESERVED..model::HEADER_LEN]
            .iter()
            .all(|&b| b == 0));
    } else {
        assert!(record_len >= model::LAYER_RECORD_LEN);
    }
    let mut parts = vec![
        ("header", 0, header_len),
        ("table", table, table + layers * record_len),
    ];
    let transform = get32(bytes, header::TRANSFORM);
    if transform != 0 {
        parts.push(("transform", transform, transform + inputs * 8));
    }
    let mut width = inputs;
    let first_dtype = bytes[table + record::DTYPE];
    let mut previous_output: Option<(u32, i8)> = None;
    for i in 0..layers {
        let r = &bytes[table + i * record_len..][..record_len];
        let (li, lo) = (get32(r, record::INPUTS), get32(r, record::OUTPUTS));
        assert_eq!(li, width, "layer {i} chains");
        assert!(li > 0 && lo > 0);
        width = lo;
        let int8 = r[record::DTYPE] == 1;
        assert_eq!(r[record::DTYPE], first_dtype, "one weight type per file");
        let tensor = |at: usize| (get32(r, at), get32(r, at + 4));
        let (w, wl) = tensor(record::WEIGHTS);
        let (b, bl) = tensor(record::BIAS);
        let (sc, sl) = tensor(record::SCALES);
        assert_eq!((wl, bl), (li * lo * if int8 { 1 } else { 4 }, lo * 4));
        if minor <= 1 {
            assert!(r[record::RESERVED..model::LAYER_RECORD_LEN_1_0]
                .iter()
                .all(|&b| b == 0));
        }
        parts.push(("weights", w, w + wl));
        parts.push(("bias", b, b + bl));
        let l = view.layer(i).unwrap();
        if !int8 {
            assert_eq!((sc, sl), (0, 0));
            if record_len > model::LAYER_RECORD_LEN_1_0 {
                assert!(r[model::LAYER_RECORD_LEN_1_0..model::LAYER_RECORD_LEN]
                    .iter()
                    .all(|&b| b == 0));
            }
            let LayerParams::F32 { weights, bias } = l.params else {
                panic!("layer {i} is f32 in the file")
            };
            assert!(weights.iter().chain(bias).all(|v| v.is_finite()));
            continue;
        }
        // int8, from the raw bytes: lengths, scales, the chained quantizations, the kernel
        // bias and the multipliers recomputed here.
        assert!(minor >= 1);
        let channels = sl / 4;
        assert!(channels == 1 || channels == lo, "{channels} filter scales");
        let (kb, kbl) = tensor(record::KERNEL_BIAS);
        let (rq, rql) = tensor(record::REQUANT);
        assert_eq!((kbl, rql), (lo * 4, channels * 8));
        assert_eq!(r[record::DROPOUT..record::DROPOUT + 4], [0; 4]);
        parts.push(("scales", sc, sc + sl));
        parts.push(("kernel bias", kb, kb + kbl));
        parts.push(("requantization", rq, rq + rql));
        let f32s = |at: usize, n: usize| -> Vec<f32> {
            (0..n)
                .map(|k| f32::from_bits(get32(bytes, at + 4 * k) as u32))
                .collect()
        };
        let i32s = |at: usize, n: usize| -> Vec<i32> {
            (0..n)
                .map(|k| get32(bytes, at + 4 * k) as u32 as i32)
                .collect()
        };
        let scale = |at: usize| f32::from_bits(get32(r, at) as u32);
        let (si, so) = (scale(record::INPUT_SCALE), scale(record::OUTPUT_SCALE));
        let sa = scale(record::ACT_OUTPUT_SCALE);
        let zi = r[record::INPUT_ZP] as i8;
        for s in [si, so, sa] {
            assert!(s.is_finite() && s > 0.0);
        }
        if let Some(prev) = previous_output {
            assert_eq!(
                prev,
                (si.to_bits(), zi),
                "layer {i}: input = previous output"
            );
        }
        previous_output = Some((sa.to_bits(), r[record::ACT_OUTPUT_ZP] as i8));
        let filter = f32s(sc, channels);
        let (m, sh) = (i32s(rq, channels), i32s(rq + 4 * channels, channels));
        for c in 0..channels {
            assert!(filter[c].is_finite() && filter[c] > 0.0);
            let real = f64::from(si) * f64::from(filter[c]) / f64::from(so);
            assert_eq!(
                quant::quantize_multiplier(real),
                Ok((m[c], sh[c])),
                "layer {i} channel {c}"
            );
        }
        let packed: Vec<i8> = bytes[w..w + wl].iter().map(|&b| b as i8).collect();
        let mut rows = vec![0i8; wl];
        qkernel::unpack(&packed, li, lo, &mut rows).unwrap();
        let (bias, kbias) = (i32s(b, lo), i32s(kb, lo));
        for o in 0..lo {
            let sum: i64 = rows[o * li..(o + 1) * li].iter().map(|&v| v as i64).sum();
            assert_eq!(
                kbias[o] as i64,
                (bias[o] as i64 - zi as i64 * sum) as i32 as i64
            );
        }
        let LayerParams::Int8(p) = l.params else {
            panic!("layer {i} is int8 in the file")
        };
        assert_eq!(
            (p.weights.len(), p.bias.len(), p.kernel_bias.len()),
            (wl, lo, lo)
        );
        assert_eq!(p.requantize.channels(), channels);
    }
    assert_eq!(view.outputs(), width);
    for (k, &(name, start, end)) in parts.iter().enumerate() {
        assert!(end <= len, "{name} ends at {end}, past {len}");
        if name != "header" && name != "table" {
            assert_eq!(start % model::TENSOR_ALIGN, 0, "{name} aligned");
        }
        for &(other, s, e) in &parts[..k] {
            assert!(
                end <= s || e <= start,
                "{name} {start}..{end} overlaps {other} {s}..{e}"
            );
        }
    }
}

/// Any bytes given to `ModelView::new_checked` get a typed error or a view that is well-formed
/// and whose every accessor, `run` and typed `from_model` work without panicking. Tried twice:
/// as given, and with the CRC field repaired, so that mutations reach the checks behind the
/// checksum (a fuzzer rarely guesses a CRC).
pub fn model_view(data: &[u8]) {
    model_view_once(data);
    if data.len() >= model::HEADER_LEN {
        let mut fixed = data.to_vec();
        let crc = model::file_crc(&fixed);
        fixed[header::CRC..header::CRC + 4].copy_from_slice(&crc.to_le_bytes());
        model_view_once(&fixed);
    }
}

fn model_view_once(data: &[u8]) {
    let words = aligned(data);
    let all: &[u8] = bytemuck::cast_slice(&words);
    // Misaligned by one byte: must be an error (or a clean rejection before the address check).
    let _ = ModelView::new_checked(&all[1..=data.len()]);
    let bytes = &all[..data.len()];
    let Ok(view) = ModelView::new_checked(bytes) else {
        return;
    };
    assert_well_formed(bytes, &view);
    let mut macs = 0usize;
    let mut params = 0usize;
    for l in view.layers() {
        match l.params {
            LayerParams::F32 { weights, bias } => {
                assert_eq!(weights.len(), l.inputs * l.outputs);
                assert_eq!(bias.len(), l.outputs);
            }
            LayerParams::Int8(p) => {
                assert_eq!(p.weights.len(), l.inputs * l.outputs);
                assert_eq!(p.bias.len(), l.outputs);
            }
        }
        macs += l.inputs * l.outputs;
        params += (l.inputs + 1) * l.outputs;
    }
    let int8 = view.weight_type() == WeightType::Int8;
    assert_eq!(view.input_quantization().is_some(), int8);
    assert_eq!(view.output_quantization().is_some(), int8);
    assert_eq!((view.macs(), view.params()), (macs, params));
    assert!(view.layer(view.layer_count()).is_none());
    if view.inputs() <= 4096 && view.max_width() <= 4096 {
        let mut x = vec![0.25f32; view.inputs()];
        let (mut a, mut b) = (vec![0.0; view.max_width()], vec![0.0; view.max_width()]);
        let y = view
            .run(&mut x, &mut a, &mut b)
            .expect("a validated model runs");
        assert_eq!(y.len(), view.outputs());
    }
    match Small::from_model(&view) {
        Ok(net) => {
            let mut bufs = SmallBuffers::new();
            let typed = *net.forward(&[0.5; 10], &mut bufs);
            let (mut x, mut a, mut b) = ([0.5f32; 10], [0.0; 8], [0.0; 8]);
            // The typed network does not apply the input transform: compare without one.
            if view.input_transform().is_none() {
                let y = view.run(&mut x, &mut a, &mut b).unwrap();
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(y), bits(&typed), "typed and dynamic paths agree");
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    match QSmall::from_model(&view) {
        Ok(net) => {
            let mut bufs = QSmallBuffers::new();
            let xq = [7i8, -3, 0, 100, -128, 127, 1, 2, 3, -50];
            let typed = *net.forward(&xq, &mut bufs);
            // The dynamic path quantizes f32 inputs: feed it inputs that quantize to `xq`.
            let input = view.input_quantization().expect("an int8 model");
            let output = view.output_quantization().expect("an int8 model");
            if view.input_transform().is_none() {
                let mut x = xq.map(|q| input.dequantize(q));
                if x.iter().zip(&xq).all(|(v, q)| input.quantize(*v) == *q) {
                    let (mut a, mut b) = ([0.0f32; 8], [0.0; 8]);
                    let y = view.run(&mut x, &mut a, &mut b).unwrap();
                    let want: Vec<u32> = typed
                        .iter()
                        .map(|&q| output.dequantize(q).to_bits())
                        .collect();
                    let got: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
                    assert_eq!(got, want, "typed and dynamic int8 paths agree");
                }
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// A device whose inputs and outputs are the first bytes of the fuzz input (so the fuzzer also
/// explores odd `info()` values), answering with its inputs' first values.
struct Echo {
    inputs: u32,
    y: [f32; 4],
    mean: [f32; 4],
    std: [f32; 4],
    pass: [f32; 4],
}

impl Responder for Echo {
    fn info(&self) -> DeviceInfo {
        DeviceInfo {
            inputs: self.inputs,
            outputs: 4,
            layers: 1,
            macs: 16,
            ..Default::default()
        }
    }
    fn infer(&mut self, x: &mut [f32]) -> (u16, u64, &[f32]) {
        assert_eq!(
            x.len(),
            self.inputs as usize,
            "respond passes exactly `inputs` values"
        );
        assert!(
            x.iter().all(|v| v.is_finite()),
            "respond filters non-finite inputs"
        );
        for (y, x) in self.y.iter_mut().zip(x.iter()) {
            *y = *x;
        }
        (microdnn::argmax(x) as u16, 7, &self.y)
    }
    fn mc(
        &mut self,
        x: &mut [f32],
        passes: core::num::NonZeroU16,
        seed: u64,
    ) -> Result<McAnswer<'_>, link::ErrorCode> {
        assert_eq!(x.len(), self.inputs as usize);
        assert!(x.iter().all(|v| v.is_finite()));
        assert!(
            passes.get() <= link::MAX_MC_PASSES,
            "respond checks the passes"
        );
        // Logits from the inputs and the generator: softmax per pass, as for a logits model.
        let summary = microdnn::mc::run::<link::ErrorCode>(
            microdnn::mc::McOutputs::Logits,
            passes.into(),
            seed,
            &mut self.mean,
            &mut self.std,
            &mut self.pass,
            |rng, out| {
                for (o, x) in out.iter_mut().zip(x.iter().chain([0.0; 4].iter())) {
                    *o = *x * rng.next_f32();
                }
                Ok(())
            },
        )?;
        Ok(McAnswer {
            summary,
            instructions: u64::from(passes.get()),
            mean: &self.mean,
            std: &self.std,
        })
    }
}

/// Any byte stream fed to the link's frame decoder and `respond` produces exactly one
/// well-formed answer per frame, echoing the request's sequence number when the request was
/// intact; the host-side payload parsers accept or refuse any bytes without panicking.
pub fn link_decoder(data: &[u8]) {
    let (config, stream) = data.split_first().map_or((0, data), |(c, s)| (*c, s));
    // Mostly 4 inputs (what the seeds use); sometimes an odd or huge claim.
    let inputs = match config % 8 {
        0 => u32::MAX,
        1 => (1 << 30) + 1,
        2 => 0,
        3 => 65,
        _ => 4,
    };
    let mut dev = Echo {
        inputs,
        y: [0.0; 4],
        mean: [0.0; 4],
        std: [0.0; 4],
        pass: [0.0; 4],
    };
    let mut dec = FrameDecoder::<{ link::decoder_capacity(64) }>::new();
    let (mut scratch, mut payload, mut tx) = ([0.0f32; 16], [0u8; 64], [0u8; 256]);
    let mut answers = FrameDecoder::<256>::new();
    for &b in stream {
        let Some(received) = dec.push(b) else {
            continue;
        };
        let seq = received.as_ref().ok().map(|f| f.seq);
        let n = link::respond(&mut dev, received, &mut scratch, &mut payload, &mut tx);
        assert!(n > 0, "every frame gets an answer");
        let mut got = 0;
        for &c in &tx[..n] {
            if let Some(a) = answers.push(c) {
                let a = a.expect("the device's answer decodes");
                assert_eq!(
                    a.seq,
                    seq.unwrap_or(0),
                    "the answer echoes the sequence number"
                );
                got += 1;
            }
        }
        assert_eq!(got, 1, "exactly one answer per frame");
    }
    // The host-side parsers, on the raw bytes.
    if let Some(r) = InferResult::parse(stream) {
        let mut y = [0.0f32; 8];
        assert_eq!(
            link::read_f32s(r.outputs, &mut y),
            (r.outputs.len() / 4).min(8)
        );
    }
    let _ = DeviceInfo::from_bytes(stream);
    if let Some(r) = McResult::parse(stream) {
        assert_eq!(r.mean.len(), r.std.len());
    }
    let _ = link::McRequest::parse(stream);
}

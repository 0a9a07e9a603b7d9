//! The bodies of the fuzz targets, shared by cargo-fuzz (`core/fuzz/fuzz_targets/*.rs` include
//! this file) and the normal test suite (`core/tests/fuzz_corpus.rs` runs them over the committed
//! corpus in `core/tests/corpus/`, and `model_format.rs` over a million mutated files), so the
//! properties fuzzing checks are checked on stable, in debug and release, on every run.
//!
//! Each body panics only when a property fails: never on a malformed input.

#![allow(dead_code)] // each includer uses some of the bodies

use microdnn::link::{self, DeviceInfo, FrameDecoder, InferResult, McAnswer, McResult, Responder};
use microdnn::model::{self, header, record, ModelView};

microdnn::network! {
    /// The network type the fuzzed files are tried against (the shape of the seed files).
    pub struct Small(SmallBuffers) {
        a: Dense<10, 8>,
        b: Dense<8, 3>,
    }
}

/// `bytes` copied to the start of 16-byte-aligned memory, as a device holds a model in flash.
pub fn aligned(bytes: &[u8]) -> Vec<u128> {
    let mut words = vec![0u128; bytes.len().div_ceil(16) + 1];
    bytemuck::cast_slice_mut::<u128, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
    words
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
    if minor == 0 {
        assert_eq!(
            (header_len, record_len),
            (model::HEADER_LEN, model::LAYER_RECORD_LEN)
        );
        assert!(bytes[header::RESERVED..model::HEADER_LEN]
            .iter()
            .all(|&b| b == 0));
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
    for i in 0..layers {
        let r = &bytes[table + i * record_len..][..record_len];
        let (li, lo) = (get32(r, record::INPUTS), get32(r, record::OUTPUTS));
        assert_eq!(li, width, "layer {i} chains");
        assert!(li > 0 && lo > 0);
        width = lo;
        let (w, wl) = (get32(r, record::WEIGHTS), get32(r, record::WEIGHTS_LEN));
        let (b, bl) = (get32(r, record::BIAS), get32(r, record::BIAS_LEN));
        assert_eq!((wl, bl), (li * lo * 4, lo * 4));
        assert_eq!(
            (get32(r, record::SCALES), get32(r, record::SCALES_LEN)),
            (0, 0)
        );
        if minor == 0 {
            assert!(r[record::RESERVED..model::LAYER_RECORD_LEN]
                .iter()
                .all(|&b| b == 0));
        }
        parts.push(("weights", w, w + wl));
        parts.push(("bias", b, b + bl));
        let l = view.layer(i).unwrap();
        assert!(l.weights.iter().chain(l.bias).all(|v| v.is_finite()));
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
        assert_eq!(l.weights.len(), l.inputs * l.outputs);
        assert_eq!(l.bias.len(), l.outputs);
        macs += l.inputs * l.outputs;
        params += (l.inputs + 1) * l.outputs;
    }
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
    fn infer(&mut self, x: &[f32]) -> (u16, u64, &[f32]) {
        assert_eq!(
            x.len(),
            self.inputs as usize,
            "respond passes exactly `inputs` values"
        );
        assert!(
            x.iter().all(|v| v.is_finite()),
            "respond filters non-finite inputs"
        );
        for (y, x) in self.y.iter_mut().zip(x) {
            *y = *x;
        }
        (microdnn::argmax(x) as u16, 7, &self.y)
    }
    fn mc(
        &mut self,
        x: &[f32],
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

//! The fuzz targets' bodies (`fuzz_bodies/`) over the committed corpus in `core/tests/corpus/`:
//! the seeds cargo-fuzz starts from, and every input a fuzzer ever found a problem with
//! (`regression-*`). Runs on stable, in debug and release, with every `cargo test`.
//!
//! The seeds are written by `cargo test -p microdnn --test fuzz_corpus -- --ignored
//! write_seed_corpus` (deterministic; rerun it when the format changes).

mod fuzz_bodies;

use std::path::{Path, PathBuf};

use microdnn::link::{self, kind};
use microdnn::model::{self, EncodeLayer, ModelSpec, ModelView};
use microdnn::{kernel, Activation, Rng};

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(target)
}

/// Every file of a target's corpus, sorted by name.
fn files(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn model_view_over_the_corpus() {
    let files = files("model_view");
    let seeds = files.iter().filter(|(n, _)| n.starts_with("seed-")).count();
    assert!(seeds >= 4, "the seed corpus is missing ({seeds} seeds)");
    for (name, bytes) in &files {
        fuzz_bodies::model_view(bytes);
        if name.starts_with("seed-") {
            // A seed is a valid file, so fuzzing starts from deep inside the validator.
            let words = fuzz_bodies::aligned(bytes);
            let view = ModelView::new_checked(&bytemuck::cast_slice(&words)[..bytes.len()]);
            assert!(view.is_ok(), "{name}: {view:?}");
        }
    }
}

#[test]
fn link_decoder_over_the_corpus() {
    let files = files("link_decoder");
    assert!(files.iter().filter(|(n, _)| n.starts_with("seed-")).count() >= 3);
    for (_, bytes) in &files {
        fuzz_bodies::link_decoder(bytes);
    }
}

fn packed(rng: &mut Rng, inputs: usize, outputs: usize) -> Vec<f32> {
    let rows: Vec<f32> = (0..inputs * outputs)
        .map(|_| rng.uniform(-1.0, 1.0))
        .collect();
    let mut p = vec![0.0; rows.len()];
    kernel::pack(&rows, inputs, outputs, &mut p).unwrap();
    p
}

/// A model file with the given widths, activations and optional input transform.
fn model_file(seed: u64, widths: &[usize], acts: &[Activation], transform: bool) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let params: Vec<(Vec<f32>, Vec<f32>)> = widths
        .windows(2)
        .map(|w| {
            let b = (0..w[1]).map(|_| rng.uniform(-0.1, 0.1)).collect();
            (packed(&mut rng, w[0], w[1]), b)
        })
        .collect();
    let layers: Vec<EncodeLayer<'_>> = params
        .iter()
        .zip(widths.windows(2))
        .zip(acts)
        .map(|(((w, b), io), act)| EncodeLayer {
            inputs: io[0],
            outputs: io[1],
            activation: *act,
            dropout_rate: if matches!(act, Activation::Relu) {
                0.25
            } else {
                0.0
            },
            packed_weights: w,
            bias: b,
        })
        .collect();
    let scale: Vec<f32> = (0..widths[0]).map(|_| rng.uniform(0.5, 2.0)).collect();
    let offset: Vec<f32> = (0..widths[0]).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let spec = ModelSpec {
        inputs: widths[0],
        layers: &layers,
        input_transform: transform.then_some((&scale[..], &offset[..])),
    };
    let mut out = vec![0u8; model::encoded_len(&spec)];
    model::encode(&spec, &mut out).unwrap();
    out
}

fn frame(k: u8, seq: u8, payload: &[u8]) -> Vec<u8> {
    let mut w = vec![0u8; link::max_encoded_len(payload.len())];
    let n = link::encode_frame(k, seq, payload, &mut w).unwrap();
    w.truncate(n);
    w
}

/// Writes the seed corpus (run by hand, see the module docs).
#[test]
#[ignore]
fn write_seed_corpus() {
    use Activation::*;
    let models: [(&str, Vec<u8>); 5] = [
        (
            "seed-small-transform.udnn",
            model_file(1, &[10, 8, 3], &[LeakyRelu { slope: 0.05 }, Softmax], true),
        ),
        (
            "seed-small.udnn",
            model_file(2, &[10, 8, 3], &[Relu, Identity], false),
        ),
        (
            "seed-one-layer.udnn",
            model_file(3, &[7, 6], &[Sigmoid], true),
        ),
        (
            "seed-three-layers.udnn",
            model_file(4, &[5, 13, 4, 2], &[Tanh, Relu, Softmax], false),
        ),
        (
            "seed-single-unit.udnn",
            model_file(5, &[1, 1], &[Identity], false),
        ),
    ];
    let dir = corpus("model_view");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in &models {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    // Link streams: a configuration byte (4 inputs: `config % 8 >= 4`), then frames.
    let mut x = [0u8; 16];
    link::write_f32s(&[1.0, -2.0, 0.5, 3.0], &mut x);
    let mut requests = vec![4u8];
    requests.extend(frame(kind::PING, 1, b"ping\0with a zero"));
    requests.extend(frame(kind::INFO, 2, &[]));
    requests.extend(frame(kind::INFER, 3, &x));
    requests.extend(frame(kind::INFER_U8, 4, &[0, 1, 128, 255]));
    let mut errors = vec![5u8];
    errors.extend(frame(kind::INFER, 5, &x[..12])); // too short
    let mut bad_crc = frame(kind::PING, 6, b"abc");
    bad_crc[2] ^= 0x10;
    errors.extend(bad_crc);
    errors.extend([0x07, 0xFF, 0x00]); // garbage
    errors.extend(frame(0x42, 7, &[])); // unknown kind
    errors.extend(frame(kind::PING, 8, &[0x55; 120])); // longer than the decoder's buffer
    errors.extend(frame(kind::PING, 9, b"still alive"));
    let mut nan = x;
    nan[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
    let mut odd = vec![1u8]; // a device claiming 2^30 + 1 inputs
    odd.extend(frame(kind::INFER, 10, &nan));
    odd.extend(frame(kind::INFER_U8, 11, &[9; 4]));
    // Monte-Carlo requests: f32 and u8 inputs, passes out of range, a reserved byte set.
    let mut mc = vec![6u8];
    let mc_frame = |seq, passes, enc, seed: u64, inputs: &[u8]| {
        let mut p = link::McRequest::header(passes, enc, seed).to_vec();
        p.extend_from_slice(inputs);
        frame(kind::MC, seq, &p)
    };
    mc.extend(mc_frame(12, 8, link::InputEncoding::F32, 3, &x));
    mc.extend(mc_frame(
        13,
        1,
        link::InputEncoding::U8,
        u64::MAX,
        &[0, 1, 128, 255],
    ));
    mc.extend(mc_frame(14, 0, link::InputEncoding::U8, 0, &[1, 2, 3, 4]));
    mc.extend(mc_frame(
        15,
        1025,
        link::InputEncoding::U8,
        0,
        &[1, 2, 3, 4],
    ));
    let mut reserved = link::McRequest::header(2, link::InputEncoding::U8, 0).to_vec();
    reserved[3] = 1;
    reserved.extend_from_slice(&[1, 2, 3, 4]);
    mc.extend(frame(kind::MC, 16, &reserved));
    let dir = corpus("link_decoder");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in [
        ("seed-requests", &requests),
        ("seed-errors", &errors),
        ("seed-huge-device", &odd),
        ("seed-monte-carlo", &mc),
    ] {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

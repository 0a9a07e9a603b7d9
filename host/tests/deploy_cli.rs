//! `microdnn info` and `microdnn eval` on model files: the header is read before the file, the
//! device's needs (flash, RAM, stack bound) are printed, and the Monte-Carlo flags are checked.

mod common;

use common::{microdnn, run_err, run_ok};

/// A small model file: 8-6-3, dropout on the hidden layer, softmax output.
fn small_model(dir: &std::path::Path) -> std::path::PathBuf {
    use microdnn::model::{encode, encoded_len, EncodeLayer, ModelSpec};
    let (w1, b1, w2, b2) = (
        vec![0.1f32; 48],
        vec![0.0f32; 6],
        vec![0.2f32; 18],
        vec![0.0f32; 3],
    );
    let layers = [
        EncodeLayer {
            inputs: 8,
            outputs: 6,
            activation: microdnn::Activation::Relu,
            dropout_rate: 0.25,
            packed_weights: &w1,
            bias: &b1,
        },
        EncodeLayer {
            inputs: 6,
            outputs: 3,
            activation: microdnn::Activation::Softmax,
            dropout_rate: 0.0,
            packed_weights: &w2,
            bias: &b2,
        },
    ];
    let spec = ModelSpec {
        inputs: 8,
        layers: &layers,
        input_transform: None,
    };
    let mut bytes = vec![0u8; encoded_len(&spec)];
    encode(&spec, &mut bytes).unwrap();
    let path = dir.join("model.udnn");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn info_prints_the_device_needs_and_the_stack_bound() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path());
    let out = run_ok(microdnn().arg("info").arg(&model));
    let bound = microdnn_targets::fit::EVAL_STACK_BYTES;
    assert!(
        out.contains(&format!("a stack bound of {bound} bytes")),
        "{out}"
    );
    assert!(out.contains("the same for any model"), "{out}");
    // The RAM line adds up what microdnn-targets' fit check counts for this model.
    let view_bytes = std::fs::read(&model).unwrap();
    let aligned = microdnn_host::export::AlignedModel::new(&view_bytes);
    let needs = microdnn_targets::fit::eval_needs(&aligned.view().unwrap(), view_bytes.len());
    assert!(
        out.contains(&format!(
            "RAM {} bytes: {} of buffers",
            needs.ram_bytes, needs.buffer_bytes
        )),
        "{out}"
    );
}

#[test]
fn info_reads_the_header_before_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path());
    let good = std::fs::read(&model).unwrap();

    // One byte more than the header declares.
    let longer = dir.path().join("longer.udnn");
    std::fs::write(&longer, [&good[..], &[0]].concat()).unwrap();
    let err = run_err(microdnn().arg("info").arg(&longer));
    assert!(
        err.contains(&format!(
            "its header declares {} bytes but the file has {}",
            good.len(),
            good.len() + 1
        )),
        "{err}"
    );

    // A 3 GB file (sparse) whose header declares 3 GB: refused from its 64-byte header, within
    // an address space of 512 MiB (reading it first would abort: "memory allocation failed").
    let huge = dir.path().join("huge.udnn");
    let mut header = good[..64].to_vec();
    header[16..20].copy_from_slice(&3_000_000_000u32.to_le_bytes());
    std::fs::write(&huge, &header).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&huge)
        .unwrap()
        .set_len(3_000_000_000)
        .unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 524288; exec {} info {}",
            env!("CARGO_BIN_EXE_microdnn"),
            huge.display()
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a clean error exit: {err}");
    assert!(
        err.contains(
            "declares 3000000000 bytes, more than the 268435456 bytes a model file may have"
        ),
        "{err}"
    );

    // Not a model at all, and a file shorter than a header.
    let text = dir.path().join("notes.udnn");
    std::fs::write(
        &text,
        "these are my notes, not a model; long enough for a header......",
    )
    .unwrap();
    let err = run_err(microdnn().arg("info").arg(&text));
    assert!(
        err.contains("is not a valid device model") && err.contains("magic"),
        "{err}"
    );
    std::fs::write(&text, &good[..20]).unwrap();
    let err = run_err(microdnn().arg("info").arg(&text));
    assert!(err.contains("is not a valid device model"), "{err}");
}

#[test]
fn eval_checks_the_monte_carlo_flags() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path());
    for (flags, says) in [
        (&["--mc", "0"][..], "0 is not in 1..=1024"),
        (&["--mc", "1025"][..], "1025 is not in 1..=1024"),
        (&["--seed", "3"][..], "--mc <K>"),
    ] {
        let err = run_err(
            microdnn()
                .args(["eval", "--device", "qemu", "--model"])
                .arg(&model)
                .args(flags),
        );
        assert!(err.contains(says), "{flags:?}: {err}");
    }
}

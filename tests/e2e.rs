//! End to end, on the emulated Cortex-M4F: train a tiny network (with batch norm and dropout),
//! export it, build the firmware with it, run it in QEMU and compare every output with the core
//! running the same file on the host; then throw garbage at the firmware's serial link and check
//! that it keeps answering.
//!
//! Needs `qemu-system-arm` (`cargo xtask test` installs it first).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use microdnn::link::{self, kind, ErrorCode};
use microdnn_host::config::TrainConfig;
use microdnn_host::device::{self, DeviceError, Qemu};
use microdnn_host::export::{self, AlignedModel, OutputActivation};
use microdnn_host::train::{self, RunOptions};

fn firmware_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../firmware")
}

/// Builds the firmware's `eval` program with `model` compiled in.
fn build_eval(model: &std::path::Path) -> PathBuf {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(firmware_dir())
        .args(["build", "--release", "--quiet", "--bin", "eval"])
        .env("MICRODNN_MODEL", model)
        .env("CARGO_TARGET_DIR", firmware_dir().join("target"))
        .env_remove("RUSTFLAGS")
        .status()
        .expect("run cargo for the firmware");
    assert!(status.success(), "building the firmware failed");
    firmware_dir().join("target/thumbv7em-none-eabihf/release/eval")
}

fn qemu_available() {
    let ok = Command::new("qemu-system-arm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "qemu-system-arm is not installed: run `cargo xtask test` (installs it) or `apt-get install qemu-system-arm`");
}

#[test]
fn train_export_run_in_qemu_and_compare() {
    qemu_available();
    let mut cfg = TrainConfig {
        epochs: 15,
        threads: 1,
        ..Default::default()
    };
    cfg.model.hidden = vec![16];
    cfg.model.activation = "tanh".into();
    cfg.model.batch_norm = true;
    let outcome = train::train_from_config(
        &cfg,
        &RunOptions {
            out_dir: None,
            resume: false,
            progress: false,
            stop_after: None,
        },
    )
    .expect("training");
    let model = outcome.model;

    let lowered = export::lower(&model, OutputActivation::Softmax).expect("lower");
    assert_eq!(lowered.layers.len(), 2, "batch norm folded");
    let bytes = export::encode(&lowered).expect("encode");
    let file = AlignedModel::new(&bytes);
    let view = file.view().expect("valid model");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.udnn");
    std::fs::write(&path, &bytes).unwrap();

    // The run's test split, untransformed (the device applies the model's input transform).
    let test = train::raw_test_split(&cfg)
        .expect("data")
        .expect("a test split");
    let elf = build_eval(&path);
    let mut q = Qemu::start(&elf, 300, Duration::from_secs(30)).expect("start QEMU");
    let info = q.link.info().expect("info");
    assert_eq!(
        (info.inputs, info.outputs, info.macs as usize),
        (64, 10, view.macs())
    );

    let r = device::evaluate(&mut q.link, &view, &test.x, &test.y, |_| {}).expect("evaluate");
    assert_eq!(r.samples, test.len());
    assert_eq!(r.identical, r.samples, "every output bit-identical: {r:?}");
    assert_eq!(r.host_accuracy, r.device_accuracy);
    assert!(
        r.device_accuracy > 0.85,
        "a 64-16-10 network learns digits: {r:?}"
    );
    assert!(
        r.instructions_min > 0 && r.instructions_max < 20_000,
        "{r:?}"
    );

    // Bad bytes never stop the firmware: each gets an error frame, then it still answers.
    q.link.send_raw(&[0x05, 0x11, 0x22, 0x00]).unwrap(); // garbage
    let (k, _, p) = q.link.receive().unwrap();
    assert_eq!(k, kind::ERROR);
    assert!(ErrorCode::from_u8(p[0]).is_some());
    let mut frame = vec![0u8; link::max_encoded_len(8)];
    let n = link::encode_frame(kind::INFER, 9, &[0u8; 8], &mut frame).unwrap();
    q.link.send_raw(&frame[..n / 2]).unwrap(); // truncated: the rest never comes...
    q.link.send_raw(&[0]).unwrap(); // ...the delimiter ends it
    let (k, _, _) = q.link.receive().unwrap();
    assert_eq!(k, kind::ERROR);
    match q.link.infer(&[0.5; 63]) {
        Err(DeviceError::Rejected {
            code: ErrorCode::BadLength,
            detail: 64,
        }) => {}
        other => panic!("wrong input count: {other:?}"),
    }
    match q.link.infer(&[f32::NAN; 64]) {
        Err(DeviceError::Rejected {
            code: ErrorCode::NonFiniteInput,
            ..
        }) => {}
        other => panic!("NaN input: {other:?}"),
    }
    let long = vec![0u8; 4000]; // longer than the device's receive buffer
    match q.link.ping(&long) {
        Err(DeviceError::Rejected {
            code: ErrorCode::TooLong,
            ..
        }) => {}
        other => panic!("over-long frame: {other:?}"),
    }
    assert_eq!(q.link.ping(b"still here").unwrap(), b"still here");
    let again = q.link.infer(&test.x[..64]).unwrap();
    assert_eq!(again.outputs.len(), 10);

    // The emulator does not outlive its handle.
    let pid = q.pid();
    drop(q);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "QEMU {pid} still running"
    );
}

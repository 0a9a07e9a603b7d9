//! End to end, on an emulated board: train a tiny network (with batch norm and dropout), export
//! it, build the firmware with it, run it in QEMU and compare every output with the core running
//! the same file on the host, NaNs included; then throw garbage at the firmware's serial link and
//! check that it keeps answering. The Cortex-M4F (`mps2-an386`, CMSDK UART) and the STM32F405 on
//! its HAL (`netduinoplus2`, USART1: the host waits for the firmware's hello) both run it.
//!
//! Needs `qemu-system-arm` (`cargo xtask test` installs it first) and the thumb targets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use microdnn::link::{self, kind, ErrorCode};
use microdnn_host::device::{self, DeviceError, Qemu};
use microdnn_host::export::{self, AlignedModel, OutputActivation};
use microdnn_host::train::config::TrainConfig;
use microdnn_host::train::{self, RunOptions};
use microdnn_targets::{firmware, Target};

/// Builds the firmware's `eval` program for `target` with `model` compiled in (the one firmware
/// build of `microdnn-targets`, as `microdnn eval` and `cargo xtask` do).
fn build_eval(target: &Target, model: &Path) -> PathBuf {
    microdnn_targets::rustup::ensure_targets(&[target.triple]).expect("the thumb target");
    microdnn_targets::fit::check_file(target, model).expect("the model fits");
    firmware::build(
        target,
        &firmware::Build {
            bins: &["eval"],
            model: Some(model),
            quiet: true,
        },
    )
    .expect("building the firmware")
    .remove(0)
}

/// Raw inputs (finite, +-f32::MAX) that drive two hidden units to `+inf` and so the output
/// layer to NaN (see the test); the first pair of units for which the host computes a NaN.
fn nan_input(view: &microdnn::ModelView<'_>) -> Vec<f32> {
    let l0 = view.layer(0).unwrap();
    let (n, units) = (l0.inputs, l0.outputs);
    let mut rows = vec![0.0f32; n * units];
    let microdnn::model::LayerParams::F32 { weights, .. } = l0.params else {
        panic!("the run's model is f32")
    };
    microdnn::kernel::unpack(weights, n, units, &mut rows).unwrap();
    let (scale, _) = view
        .input_transform()
        .expect("the run's model has an input transform");
    let (mut a, mut b) = (vec![0.0; view.max_width()], vec![0.0; view.max_width()]);
    for p in 0..units {
        for q in p + 1..units {
            let x: Vec<f32> = (0..n)
                .map(|c| {
                    let w = (rows[p * n + c] + rows[q * n + c]) * scale[c];
                    f32::MAX * if w < 0.0 { -1.0 } else { 1.0 }
                })
                .collect();
            let y = view.run(&mut x.clone(), &mut a, &mut b).unwrap();
            if y.iter().any(|v| v.is_nan()) {
                return x;
            }
        }
    }
    panic!("no pair of hidden units overflows into a NaN");
}

fn qemu_available() {
    let ok = microdnn_targets::qemu::version().is_some();
    assert!(ok, "qemu-system-arm is not installed: run `cargo xtask test` (installs it) or `apt-get install qemu-system-arm`");
}

#[test]
fn train_export_run_in_qemu_and_compare_cortex_m4f() {
    train_export_run_in_qemu_and_compare("cortex-m4f");
}

#[test]
fn train_export_run_in_qemu_and_compare_stm32f405_hal() {
    train_export_run_in_qemu_and_compare("stm32f405");
}

fn train_export_run_in_qemu_and_compare(target: &str) {
    let target = microdnn_targets::find(target).unwrap();
    qemu_available();
    let mut cfg = TrainConfig {
        epochs: 15,
        threads: 1,
        ..Default::default()
    };
    cfg.model.hidden = vec![16];
    // ReLU: unbounded, so a huge input can reach the output layer as infinity (see
    // `nan_input`); tanh's device parity is checked by the on-target self-test.
    cfg.model.activation = "relu".into();
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

    // Identity output (logits): softmax would replace a NaN by the core's canonical NaN, and
    // this test wants the raw NaN bits of each machine to reach the comparison.
    let lowered = export::lower(&model, OutputActivation::Identity).expect("lower");
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
    let elf = build_eval(target, &path);
    let mut q = Qemu::start(target, &elf, 300, Duration::from_secs(30)).expect("start QEMU");
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

    // Finite inputs that make the network produce NaN: every input at +-f32::MAX along the
    // signs of two hidden units' weights, so both units overflow to +inf; ReLU keeps them, and
    // an output unit that weighs one positively and the other negatively computes
    // `inf + (-inf)`: NaN. x86-64 (host) and ARM (device) produce different NaN bits for it
    // (0xffc0_0000 and 0x7fc0_0000), and the comparison must call them identical.
    let huge = nan_input(&view);
    let (mut a, mut b) = (vec![0.0; view.max_width()], vec![0.0; view.max_width()]);
    let host_nan = view
        .run(&mut huge.clone(), &mut a, &mut b)
        .unwrap()
        .to_vec();
    assert!(
        host_nan.iter().any(|v| v.is_nan()),
        "the input produces a NaN: {host_nan:?}"
    );
    let dev_nan = q.link.infer(&huge).expect("device answers");
    assert!(
        dev_nan.outputs.iter().any(|v| v.is_nan()),
        "{:?}",
        dev_nan.outputs
    );
    let r = device::evaluate(&mut q.link, &view, &huge, &[0], |_| {}).expect("evaluate NaNs");
    assert_eq!(
        (r.samples, r.identical),
        (1, 1),
        "NaN outputs compare identical: {r:?}"
    );
    let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let (host_bits, dev_bits) = (bits(&host_nan), bits(&dev_nan.outputs));
    assert!(
        dev_bits.contains(&0x7fc0_0000),
        "ARM's default NaN: {dev_bits:08x?}"
    );
    if cfg!(target_arch = "x86_64") {
        assert!(
            host_bits.contains(&0xffc0_0000) && host_bits != dev_bits,
            "x86-64's default NaN differs from ARM's: host {host_bits:08x?}, device {dev_bits:08x?}"
        );
    }

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

//! End to end, on an emulated board: train a tiny network with batch norm and dropout, export
//! it, build the firmware with it, run it in QEMU and compare every output with the core running
//! the same file on the host, NaNs included; run Monte-Carlo dropout passes on the device through
//! the link, bit-identical to the same passes on the host; then throw every kind of bad byte
//! stream at the firmware's serial link (garbage, oversized frames, bad CRCs, truncated frames,
//! interleaved with valid requests) and check that it answers every valid request at once, and
//! that the host's waits end with a typed timeout when the device is frozen. The Cortex-M4F
//! (`mps2-an386`, CMSDK UART) and the STM32F405 on its HAL (`netduinoplus2`, USART1: the host
//! waits for the firmware's hello) both run it.
//!
//! Needs `qemu-system-arm` (`cargo xtask test` installs it first) and the thumb targets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use microdnn::link::{self, kind, ErrorCode};
use microdnn::Rng;
use microdnn_host::device::{self, DeviceError, Link, Qemu};
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
    microdnn::kernel::unpack(l0.weights, n, units, &mut rows).unwrap();
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
    cfg.model.dropout = microdnn_host::train::config::Rates::All(0.2);
    let outcome = train::train_from_config(
        &cfg,
        &RunOptions {
            out_dir: None,
            resume: false,
            force: false,
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
    assert_eq!(
        lowered.layers[0].dropout_rate, 0.2,
        "dropout kept for Monte-Carlo passes"
    );
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
    let plain_instructions = r.instructions_min;

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

    monte_carlo_passes_match_the_host(&mut q.link, &view, &test.x, &test.y, plain_instructions);
    bad_bytes_never_stop_the_firmware(&mut q.link, &test.x[..64]);
    let info = q.link.info().expect("info");
    assert!(
        info.stack_peak_bytes > 0
            && u64::from(info.stack_peak_bytes) <= microdnn_targets::fit::EVAL_STACK_BYTES,
        "peak stack within the bound after every request above: {info:?}"
    );
    a_frozen_device_gives_a_typed_timeout(&mut q);

    // The emulator does not outlive its handle.
    let pid = q.pid();
    drop(q);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "QEMU {pid} still running"
    );
}

/// Monte-Carlo dropout through the link: every summary bit-identical to the host's passes, the
/// passes differ (dropout is on), and the instructions grow with the passes.
fn monte_carlo_passes_match_the_host<T: std::io::Read + std::io::Write>(
    link: &mut Link<T>,
    view: &microdnn::ModelView<'_>,
    x: &[f32],
    y: &[u32],
    plain_instructions: u64,
) {
    let n = 20.min(y.len());
    let (x, y) = (&x[..n * 64], &y[..n]);
    let one = device::mc::evaluate_mc(link, view, x, y, 1, 7, |_| {}).expect("1 pass");
    let r = device::mc::evaluate_mc(link, view, x, y, 12, 7, |_| {}).expect("12 passes");
    let more = device::mc::evaluate_mc(link, view, x, y, 23, 7, |_| {}).expect("23 passes");
    assert_eq!(
        (one.identical, r.identical, more.identical),
        (n, n, n),
        "Monte-Carlo summaries bit-identical to the host's: {r:?}"
    );
    assert!(
        r.mutual_information_mean > 0.0,
        "the passes disagree somewhere: {r:?}"
    );
    assert!(r.device_accuracy > 0.7, "{r:?}");
    // The cost grows linearly with the passes, and a pass costs more than a plain inference
    // (its forward pass, the dropout masks, softmax and entropy of its outputs).
    let (d1, d2) = (
        r.instructions_mean - one.instructions_mean,
        more.instructions_mean - r.instructions_mean,
    );
    assert!(
        (d1 - d2).abs() < 0.05 * d1,
        "11 passes cost {d1}, the next 11 {d2}"
    );
    assert!(
        d1 / 11.0 > plain_instructions as f64,
        "a pass {} vs an inference {plain_instructions}",
        d1 / 11.0
    );
    // The same seed gives the same summary; another seed other masks.
    let a = link.mc(&x[..64], 12, 99).unwrap();
    let b = link.mc(&x[..64], 12, 99).unwrap();
    let c = link.mc(&x[..64], 12, 100).unwrap();
    assert!(a.same_bits(&b) && !a.same_bits(&c));
    // Out of range: a typed refusal, and the link goes on.
    for passes in [0, link::MAX_MC_PASSES + 1] {
        match link.mc(&x[..64], passes, 0) {
            Err(DeviceError::Rejected {
                code: ErrorCode::BadPasses,
                detail,
            }) => assert_eq!(detail, link::MAX_MC_PASSES),
            other => panic!("{passes} passes: {other:?}"),
        }
    }
    match link.mc(&x[..63], 3, 0) {
        Err(DeviceError::Rejected {
            code: ErrorCode::BadLength,
            detail: 64,
        }) => {}
        other => panic!("63 inputs: {other:?}"),
    }
}

/// One piece of a hostile byte stream.
fn junk(rng: &mut Rng, k: u32) -> Vec<u8> {
    let frame = |kind: u8, payload: &[u8]| {
        let mut w = vec![0u8; link::max_encoded_len(payload.len())];
        // Sequence number 0: their answers can never be taken for the answer to a request.
        let n = link::encode_frame(kind, 0, payload, &mut w).unwrap();
        w.truncate(n);
        w
    };
    let random = |rng: &mut Rng, n: usize| -> Vec<u8> {
        (0..n).map(|_| (rng.next_u32() >> 24) as u8).collect()
    };
    match k % 6 {
        // Garbage, zeros included.
        0 => {
            let n = 1 + rng.next_u32() as usize % 300;
            random(rng, n)
        }
        // Oversized: longer than the device's receive buffer.
        1 => frame(kind::PING, &random(rng, 3000)),
        // A flipped byte: a CRC (or COBS) error.
        2 => {
            let mut f = frame(kind::PING, &random(rng, 40));
            let i = rng.next_u32() as usize % (f.len() - 1);
            f[i] ^= 1 << (rng.next_u32() % 8);
            f
        }
        // Truncated, ended by a delimiter or by nothing (the next request's delimiter ends it).
        3 => {
            let f = frame(kind::INFER_U8, &random(rng, 64));
            let mut t = f[..1 + rng.next_u32() as usize % (f.len() - 2)].to_vec();
            if rng.next_u32().is_multiple_of(2) {
                t.push(0);
            }
            t
        }
        // Well-formed but wrong: unknown kind, wrong input count, an MC request for 0 passes.
        4 => match rng.next_u32() % 3 {
            0 => frame(0x7e, b"?"),
            1 => frame(kind::INFER, &[0u8; 12]),
            _ => frame(
                kind::MC,
                &link::McRequest::header(0, link::InputEncoding::U8, 0),
            ),
        },
        // Nothing but delimiters.
        _ => vec![0; 1 + rng.next_u32() as usize % 5],
    }
}

/// Garbage, oversized, corrupted and truncated frames interleaved with valid requests: every
/// valid request is answered correctly at the first attempt (the device resynchronises at the
/// delimiter the host sends first; the host skips the error frames for the junk).
fn bad_bytes_never_stop_the_firmware<T: std::io::Read + std::io::Write>(
    link: &mut Link<T>,
    x: &[f32],
) {
    let expected = link.infer(x).expect("a first answer").outputs;
    let retries = link.retries();
    let mut rng = Rng::new(2024);
    for round in 0..120u32 {
        for _ in 0..1 + rng.next_u32() % 3 {
            let k = rng.next_u32();
            link.send_raw(&junk(&mut rng, k)).unwrap();
        }
        if round % 3 == 0 {
            let a = link.infer(x).expect("the device answers after junk");
            assert_eq!(a.outputs, expected, "round {round}");
        } else {
            // Pings the answer buffer holds (the model-sized payload plus 64 bytes).
            let payload: Vec<u8> = (0..rng.next_u32() % 96).map(|i| i as u8).collect();
            assert_eq!(link.ping(&payload).expect("pong"), payload, "round {round}");
        }
    }
    assert_eq!(
        link.retries(),
        retries,
        "every valid request was answered at the first attempt"
    );
    // The device's own checks, one by one.
    match link.infer(&[0.5; 63]) {
        Err(DeviceError::Rejected {
            code: ErrorCode::BadLength,
            detail: 64,
        }) => {}
        other => panic!("wrong input count: {other:?}"),
    }
    match link.infer(&[f32::NAN; 64]) {
        Err(DeviceError::Rejected {
            code: ErrorCode::NonFiniteInput,
            ..
        }) => {}
        other => panic!("NaN input: {other:?}"),
    }
    let long = vec![0u8; 4000]; // longer than the device's receive buffer
    match link.ping(&long) {
        Err(DeviceError::Rejected {
            code: ErrorCode::TooLong,
            ..
        }) => {}
        other => panic!("over-long frame: {other:?}"),
    }
    assert_eq!(link.ping(b"still here").unwrap(), b"still here");
}

/// The emulator stopped (SIGSTOP): a request ends with a typed timeout after its bounded waits
/// (the first attempt and one retry); once it runs again, the late answers are skipped and the
/// link works.
fn a_frozen_device_gives_a_typed_timeout(q: &mut Qemu) {
    let pid = q.pid().to_string();
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    };
    let timeout = Duration::from_millis(500);
    let before = q.link.timeout();
    q.link.set_timeout(timeout);
    signal("-STOP");
    let t = std::time::Instant::now();
    let r = q.link.ping(b"anyone?");
    let waited = t.elapsed();
    signal("-CONT");
    assert!(matches!(r, Err(DeviceError::Timeout(_))), "{r:?}");
    assert!(
        waited >= 2 * timeout && waited < 6 * timeout,
        "two bounded waits: {waited:?}"
    );
    q.link.set_timeout(before);
    assert_eq!(q.link.ping(b"back").unwrap(), b"back");
}

//! The `microdnn` binary end to end: train (with flags over a config), the run folder's files,
//! resume, score (and its former spelling `evaluate`), and clear errors for bad input.

mod common;
use common::{microdnn, run_err, run_ok};

#[test]
fn train_resume_and_score_digits() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/digits.toml");
    let out = run_ok(
        microdnn()
            .args([
                "train", "--config", config, "--epochs", "3", "--quiet", "--out",
            ])
            .arg(&run),
    );
    assert!(out.contains("trained 3 epochs"), "{out}");
    for f in [
        "model.safetensors",
        "metrics.json",
        "config.toml",
        "train_state.safetensors",
    ] {
        assert!(run.join(f).exists(), "{f}");
    }
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        cfg.contains("epochs = 3"),
        "resolved config records the flag: {cfg}"
    );
    // Extend the run by 2 epochs.
    let out = run_ok(
        microdnn()
            .args(["train", "--resume", "--epochs", "5", "--quiet", "--out"])
            .arg(&run),
    );
    assert!(out.contains("trained 5 epochs"), "{out}");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["epochs"].as_array().unwrap().len(), 5);
    assert!(m["test_accuracy"].as_f64().unwrap() > 0.8);
    let json = dir.path().join("eval.json");
    let out = run_ok(
        microdnn()
            .args(["score", "--model"])
            .arg(&run)
            .arg("--json")
            .arg(&json),
    );
    // The former spelling runs the same command.
    let old = run_ok(microdnn().args(["evaluate", "--model"]).arg(&run));
    assert_eq!(old, out);
    assert!(
        out.contains("accuracy:") && out.contains("(360 examples)"),
        "{out}"
    );
    assert!(out.contains("precision") && out.contains("recall"), "{out}");
    let e: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(e["confusion"].as_array().unwrap().len(), 10);
    assert!((e["accuracy"].as_f64().unwrap() - m["test_accuracy"].as_f64().unwrap()).abs() < 1e-9);
}

#[test]
fn bad_data_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("broken.csv");
    std::fs::write(&csv, "1,2,0\n3,4,1\n5,1\n").unwrap();
    let out = microdnn()
        .args(["train", "--dataset", "csv", "--quiet", "--data"])
        .arg(&csv)
        .arg("--out")
        .arg(dir.path().join("run"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.csv line 3: expected 3 columns, found 2"),
        "{err}"
    );
}

/// A 784-128-64-10 model file (zero weights): MNIST-sized, 437 KB.
fn mnist_sized_model(dir: &std::path::Path) -> std::path::PathBuf {
    use microdnn::model::{encode, encoded_len, EncodeLayer, ModelSpec};
    let shapes = [(784usize, 128usize), (128, 64), (64, 10)];
    let weights: Vec<Vec<f32>> = shapes.iter().map(|&(i, o)| vec![0.0; i * o]).collect();
    let biases: Vec<Vec<f32>> = shapes.iter().map(|&(_, o)| vec![0.0; o]).collect();
    let layers: Vec<EncodeLayer<'_>> = shapes
        .iter()
        .zip(weights.iter().zip(&biases))
        .map(|(&(inputs, outputs), (w, b))| EncodeLayer {
            inputs,
            outputs,
            activation: microdnn::Activation::Relu,
            dropout_rate: 0.0,
            packed_weights: w,
            bias: b,
        })
        .collect();
    let spec = ModelSpec {
        inputs: 784,
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
fn eval_names_the_known_targets_for_an_unknown_one() {
    let dir = tempfile::tempdir().unwrap();
    let model = mnist_sized_model(dir.path());
    let err = run_err(
        microdnn()
            .args([
                "eval",
                "--device",
                "qemu",
                "--target",
                "cortex-m99",
                "--model",
            ])
            .arg(&model),
    );
    assert!(err.contains("unknown target `cortex-m99`"), "{err}");
    for known in [
        "cortex-m0",
        "cortex-m3",
        "cortex-m4f",
        "cortex-m7",
        "cortex-m33",
        "cortex-m55",
        "stm32f405",
    ] {
        assert!(err.contains(known), "{known} missing from: {err}");
    }
}

#[test]
fn eval_refuses_a_model_too_large_for_the_board_before_building() {
    let dir = tempfile::tempdir().unwrap();
    let model = mnist_sized_model(dir.path());
    let file_bytes = std::fs::metadata(&model).unwrap().len();
    let err = run_err(
        microdnn()
            .args([
                "eval",
                "--device",
                "qemu",
                "--target",
                "cortex-m0",
                "--model",
            ])
            .arg(&model)
            .args(["--dataset", "mnist", "--data", "/nonexistent"]),
    );
    // The micro:bit has 256 KiB of flash: the sizes are named. The check comes first: the
    // data folder does not exist, and that is not what the error is about.
    assert!(err.contains("does not fit target `cortex-m0`"), "{err}");
    assert!(err.contains(&format!("model file {file_bytes}")), "{err}");
    assert!(err.contains("the board has 262144"), "{err}");
    assert!(!err.contains("nonexistent"), "{err}");
}

/// A CSV of `classes` separable blobs, 4 inputs each, `per_class` rows per class.
fn blobs_csv(per_class: usize, classes: usize) -> String {
    let mut s = String::new();
    for i in 0..per_class * classes {
        let c = i % classes;
        let j = (i / classes) as f32;
        let v: Vec<String> = (0..4)
            .map(|k| {
                format!(
                    "{:.3}",
                    c as f32 * 2.0 + ((j * 0.37 + k as f32) % 1.0) - 0.5
                )
            })
            .collect();
        s.push_str(&format!("{},{c}\n", v.join(",")));
    }
    s
}

/// An IDX file: big-endian magic, dimensions, then `data`.
fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

/// A folder of the four MNIST files: training images `train` (n, rows, cols) and test images
/// `test`, with data of the sizes the headers announce unless `train_bytes` says otherwise.
fn mnist_dir(dir: &std::path::Path, train: [u32; 3], test: [u32; 3], train_bytes: Option<usize>) {
    std::fs::create_dir_all(dir).unwrap();
    let bytes = |d: [u32; 3]| (d[0] as usize) * (d[1] as usize) * (d[2] as usize);
    let labels = |n: u32| (0..n).map(|i| (i % 10) as u8).collect::<Vec<u8>>();
    let w = |name: &str, b: Vec<u8>| std::fs::write(dir.join(name), b).unwrap();
    let tb = train_bytes.unwrap_or_else(|| bytes(train));
    w("train-images-idx3-ubyte", idx(0x803, &train, &vec![7; tb]));
    w(
        "train-labels-idx1-ubyte",
        idx(0x801, &[train[0]], &labels(train[0])),
    );
    w(
        "t10k-images-idx3-ubyte",
        idx(0x803, &test, &vec![7; bytes(test)]),
    );
    w(
        "t10k-labels-idx1-ubyte",
        idx(0x801, &[test[0]], &labels(test[0])),
    );
}

/// A microdnn checkpoint (two layers, 4 inputs, 3 classes) with one metadata entry replaced and
/// a valid checksum: what a buggy or hostile writer can produce.
fn checkpoint_with(key: &str, value: &str, nan_weight: bool) -> Vec<u8> {
    use microdnn_host::model::checkpoint::{model_metadata, state_dict, to_bytes};
    use microdnn_host::model::{Layer, Linear, Model, Sequential};
    let mut w = vec![0.5f32; 12];
    if nan_weight {
        w[3] = f32::NAN;
    }
    let model = Model {
        net: Sequential::new(vec![
            Layer::Linear(Linear::from_parts(4, 3, w, vec![0.0; 3]).unwrap()),
            Layer::Activation(microdnn::Activation::Relu),
            Layer::Linear(Linear::from_parts(3, 3, vec![0.1; 9], vec![0.0; 3]).unwrap()),
        ]),
        transform: microdnn_host::InputTransform::identity(4),
        classes: 3,
    };
    let mut meta = model_metadata(&model);
    if !key.is_empty() {
        meta.insert(key.into(), value.into());
    }
    to_bytes(&state_dict(&model.net, ""), meta)
}

/// Runs `microdnn ARGS` in `dir` under a 4 GB address-space limit (an allocation sized by
/// hostile input aborts rather than swapping); returns (exit code, stdout + stderr).
fn run_limited(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 4000000 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_microdnn"))
        .args(args)
        .current_dir(dir)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// The input classes of docs/robustness.md that end in an error: each must exit 1 (2 for a flag
/// clap refuses) with a message saying what is wrong and where, never a panic or an abort.
/// Before issue 10's fixes, 8 of them panicked, 9 aborted and the rest trained or scored garbage
/// with exit 0.
#[test]
fn hostile_inputs_end_in_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let files: &[(&str, Vec<u8>)] = &[
        ("hidden0.toml", b"epochs=1\n[model]\nhidden=[0]\n".to_vec()),
        (
            "hiddenbig.toml",
            b"epochs=1\n[model]\nhidden=[1000000000]\n".to_vec(),
        ),
        (
            "tf15.toml",
            b"epochs=1\n[data]\ntest_fraction=1.5\n".to_vec(),
        ),
        (
            "tfneg.toml",
            b"epochs=1\n[data]\ntest_fraction=-0.1\n".to_vec(),
        ),
        (
            "vfnan.toml",
            b"epochs=1\n[data]\nvalidation_fraction=nan\n".to_vec(),
        ),
        ("hiden.toml", b"epochs=1\n[model]\nhiden=[4]\n".to_vec()),
        ("lr0.toml", b"epochs=1\nlr=0.0\n".to_vec()),
        ("l2.toml", b"epochs=1\n[regularization]\nl2=-1.0\n".to_vec()),
        (
            "maxnorm.toml",
            b"epochs=1\n[regularization]\nmax_norm=0.0\n".to_vec(),
        ),
        (
            "mom.toml",
            b"epochs=1\n[optimizer]\nkind=\"sgd\"\nmomentum=-0.5\n".to_vec(),
        ),
        (
            "bnm.toml",
            b"epochs=1\n[model]\nbatch_norm=true\nbn_momentum=2.0\n".to_vec(),
        ),
        (
            "corr.toml",
            b"epochs=1\n[pretrain]\ncorruption_level=2.0\n".to_vec(),
        ),
        (
            "cdk.toml",
            b"[model]\nactivation=\"sigmoid\"\n[pretrain]\nmethod=\"rbm\"\ncd_k=0\n".to_vec(),
        ),
        ("threads.toml", b"epochs=1\nthreads=100000000\n".to_vec()),
        (
            "cls3.toml",
            b"epochs=1\n[data]\ndataset=\"csv\"\nclasses=3\n".to_vec(),
        ),
        (
            "hfalse.toml",
            b"epochs=1\n[data]\ndataset=\"csv\"\nheader=false\n".to_vec(),
        ),
        ("big.csv", b"1,2,0\n3,4,4000000000\n5,6,1\n".to_vec()),
        ("tiny.csv", b"1,2,0\n3,4,1\n".to_vec()),
        (
            "header.csv",
            format!("a,b,c,d,label\n{}", blobs_csv(10, 3)).into_bytes(),
        ),
        (
            "stray.csv",
            format!("{}1,1,1,1,7\n", blobs_csv(10, 3)).into_bytes(),
        ),
        ("run/model.safetensors", checkpoint_with("", "", false)),
        (
            "cls0.safetensors",
            checkpoint_with("microdnn.classes", "0", false),
        ),
        (
            "cls1e8.safetensors",
            checkpoint_with("microdnn.classes", "100000000", false),
        ),
        (
            "in1e12.safetensors",
            checkpoint_with(
                "microdnn.architecture",
                r#"[{"kind":"linear","in_features":1000000000000,"out_features":3},{"kind":"activation","activation":"relu"},{"kind":"linear","in_features":3,"out_features":3}]"#,
                false,
            ),
        ),
        ("nan.safetensors", checkpoint_with("", "", true)),
        ("notadir", b"".to_vec()),
    ];
    for (name, bytes) in files {
        let p = d.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    let mut flipped = checkpoint_with("", "", false);
    let n = flipped.len();
    flipped[n - 5] ^= 0x10;
    std::fs::write(d.join("flip.safetensors"), flipped).unwrap();
    mnist_dir(&d.join("m0rows"), [20, 0, 5], [10, 4, 4], None);
    mnist_dir(&d.join("mwrap"), [4, 1 << 31, 1 << 31], [10, 4, 4], Some(0));
    mnist_dir(&d.join("mzero"), [0, 100_000, 100_000], [10, 4, 4], None);
    mnist_dir(&d.join("mdiff"), [50, 4, 4], [20, 5, 5], None);
    let pytorch = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/pytorch/model.safetensors"
    );
    let q = "--quiet";
    let cases: &[(&[&str], &str)] = &[
        // The four probes of the review hook.
        (&["train", "--config", "hidden0.toml", "--out", "r1", q], "model.hidden[0] = 0: expected a width of at least 1"),
        (&["train", "--config", "tf15.toml", "--out", "r2", q], "data.test_fraction = 1.5: expected a number in [0, 1)"),
        (&["train", "--config", "hiden.toml", "--out", "r3", q], "hiden.toml line 3: unknown key `hiden` in [model]; did you mean `hidden`?"),
        (&["train", "--dataset", "csv", "--data", "big.csv", "--out", "r4", q], "big.csv line 2: label 4000000000 is too large"),
        // Sizes from the config.
        (&["train", "--config", "hiddenbig.toml", "--out", "r5", q], "the network's parameters would need 75000000010 values"),
        (&["train", "--config", "threads.toml", "--out", "r6", q], "threads = 100000000: expected at most 1024"),
        // Values that trained garbage.
        (&["train", "--config", "tfneg.toml", "--out", "r7", q], "data.test_fraction = -0.1"),
        (&["train", "--config", "vfnan.toml", "--out", "r8", q], "data.validation_fraction = NaN"),
        (&["train", "--config", "lr0.toml", "--out", "r9", q], "lr = 0: expected a finite number > 0"),
        (&["train", "--config", "l2.toml", "--out", "r10", q], "regularization.l2 = -1"),
        (&["train", "--config", "maxnorm.toml", "--out", "r11", q], "regularization.max_norm = 0"),
        (&["train", "--config", "mom.toml", "--out", "r12", q], "optimizer.momentum = -0.5"),
        (&["train", "--config", "bnm.toml", "--out", "r13", q], "model.bn_momentum = 2: expected a number in [0, 1]"),
        (&["train", "--config", "corr.toml", "--out", "r14", q], "pretrain.corruption_level = 2"),
        (&["train", "--config", "cdk.toml", "--out", "r15", q], "pretrain.cd_k = 0"),
        (&["train", "--epochs", "0", "--out", "r16", q], "epochs = 0: expected at least 1"),
        (&["train", "--lr", "-1", "--out", "r17", q], "lr = -1"),
        // Data.
        (&["train", "--config", "cls3.toml", "--data", "stray.csv", "--out", "r18", q], "stray.csv line 31: label 7 is not below data.classes = 3"),
        (&["train", "--config", "hfalse.toml", "--data", "header.csv", "--out", "r19", q], "header.csv line 1: column 1: expected a number, found \"a\""),
        (&["train", "--dataset", "csv", "--data", "tiny.csv", "--out", "r20", q], "the training split is empty: 2 rows"),
        (&["train", "--dataset", "mnist", "--data", "m0rows", "--out", "r21", q], "dimensions 20 x 0 x 5: expected at least one image, row and column"),
        (&["train", "--dataset", "mnist", "--data", "mwrap", "--out", "r22", q], "describe more bytes than a file can hold"),
        (&["train", "--dataset", "mnist", "--data", "mzero", "--out", "r23", q], "dimensions 0 x 100000 x 100000"),
        (&["train", "--dataset", "mnist", "--data", "mdiff", "--out", "r24", q], "has 25 inputs per example but"),
        (&["train", "--dataset", "mnist", "--data", "tiny.csv", "--out", "r25", q], "MNIST is read from a folder"),
        (&["train", "--dataset", "csv", "--data", "header.csv", "--out", "notadir", q], "notadir: exists and is not a folder"),
        // Checkpoints.
        (&["score", "--model", "cls0.safetensors", "--data", "tiny.csv"], "0 classes, but the network has 3 outputs"),
        (&["score", "--model", "cls1e8.safetensors", "--data", "tiny.csv"], "100000000 classes, but the network has 3 outputs"),
        (&["score", "--model", "in1e12.safetensors", "--data", "tiny.csv"], "declare 3000000000015 parameters but the file holds only"),
        (&["score", "--model", "nan.safetensors", "--data", "tiny.csv"], "tensor 0.weight: element 3 is NaN"),
        (&["score", "--model", "flip.safetensors", "--data", "tiny.csv"], "checksum mismatch"),
        (&["score", "--model", "run"], "does not record the data it was trained on"),
        (&["eval", "--model", "run"], "run is a trained model, not a device model file: export it first with `microdnn export run --out DIR`"),
        // Run folders.
        (&["train", "--resume", "--out", "run", "--lr", "0.5", q], "--lr cannot change it"),
        (&["train", "--resume", "--out", "nothing", q], "nothing holds no run to resume"),
        // The PyTorch import.
        (&["export", pytorch, "--out", "e1"], "not a microdnn checkpoint (no microdnn metadata): to export a PyTorch state dict, pass its architecture with --arch"),
        (&["export", pytorch, "--arch", "Linear(64, 64", "--out", "e2"], "unterminated `(`"),
        (&["export", pytorch, "--arch", "Linear(64, 32)", "--out", "e3"], "14 tensors the architecture does not use"),
        (&["export", pytorch, "--arch", "Linear(100000, 100000)", "--out", "e4"], "shape [32, 64], the architecture needs [100000, 100000]"),
        (&["export", "run", "--out", "e5", "--check-samples", "100000000000"], "100000000000 is not in 1..=1000000"),
    ];
    for (args, says) in cases {
        let (code, text) = run_limited(d, args);
        let clap = args.contains(&"--check-samples");
        assert_eq!(code, Some(if clap { 2 } else { 1 }), "{args:?}:\n{text}");
        assert!(
            !text.contains("panicked") && !text.contains("memory allocation"),
            "{args:?}:\n{text}"
        );
        assert!(text.contains(says), "{args:?} should say {says:?}:\n{text}");
    }
}

/// `microdnn score` on a run: the test split is rebuilt from the checkpoint's own record, so a
/// lost config.toml, a moved run folder or moved data change nothing, and other data is refused
/// (it used to fall back to the whole data set, scoring training rows).
#[test]
fn scoring_rebuilds_the_run_test_split_or_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("blobs.csv"), blobs_csv(40, 3)).unwrap();
    std::fs::write(d.join("other.csv"), blobs_csv(41, 3)).unwrap();
    run_ok(microdnn().current_dir(d).args([
        "train",
        "--data",
        "blobs.csv",
        "--epochs",
        "3",
        "--out",
        "run",
        "--quiet",
    ]));
    let score = |args: &[&str]| {
        let out = microdnn().current_dir(d).args(args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let accuracy = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("accuracy:"))
            .unwrap_or_else(|| panic!("{text}"))
            .to_string()
    };
    let (ok, first) = score(&["score", "--model", "run"]);
    assert!(ok, "{first}");
    assert!(
        first.contains("scoring on the run's test split: 24 of 120 rows of")
            && first.contains("(24 examples)"),
        "{first}"
    );
    // Without config.toml (or with an empty one) the same split, not every row.
    std::fs::remove_file(d.join("run/config.toml")).unwrap();
    let (ok, text) = score(&["score", "--model", "run"]);
    assert!(ok && accuracy(&text) == accuracy(&first), "{text}");
    // The run folder and the data moved: the data's new place is given, and checked.
    std::fs::rename(d.join("run"), d.join("moved-run")).unwrap();
    std::fs::rename(d.join("blobs.csv"), d.join("blobs-moved.csv")).unwrap();
    let (ok, text) = score(&["score", "--model", "moved-run"]);
    assert!(
        !ok && text.contains("if it moved, give its new place with --data"),
        "{text}"
    );
    let (ok, text) = score(&["score", "--model", "moved-run", "--data", "blobs-moved.csv"]);
    assert!(ok && accuracy(&text) == accuracy(&first), "{text}");
    // Other data is refused, unless every row is asked for.
    let (ok, text) = score(&["score", "--model", "moved-run", "--data", "other.csv"]);
    assert!(
        !ok && text.contains("is not the one the model was tested on"),
        "{text}"
    );
    let (ok, text) = score(&[
        "score",
        "--model",
        "moved-run",
        "--data",
        "other.csv",
        "--all",
    ]);
    assert!(ok && text.contains("(123 examples)"), "{text}");
}

/// `microdnn eval` chooses its data from the export's record of the run (model.json): moving
/// the run and the export together changes nothing; data that moved is asked for.
#[test]
fn eval_takes_the_run_test_split_from_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("blobs.csv"), blobs_csv(40, 3)).unwrap();
    run_ok(microdnn().current_dir(d).args([
        "train",
        "--data",
        "blobs.csv",
        "--epochs",
        "2",
        "--out",
        "w/run",
        "--quiet",
    ]));
    run_ok(
        microdnn()
            .current_dir(d)
            .args(["export", "w/run", "--out", "w/export"]),
    );
    std::fs::rename(d.join("w"), d.join("moved")).unwrap();
    // No firmware: eval stops after choosing its data, when QEMU cannot start.
    let out = microdnn()
        .current_dir(d)
        .args([
            "eval",
            "--model",
            "moved/export",
            "--firmware",
            "missing.elf",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("evaluating on the run's test split: 24 of 120 rows of"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(d.join("blobs.csv"), d.join("elsewhere.csv")).unwrap();
    let err = run_err(microdnn().current_dir(d).args([
        "eval",
        "--model",
        "moved/export",
        "--firmware",
        "missing.elf",
    ]));
    assert!(
        err.contains("loading the run's data") && err.contains("give its new place with --data"),
        "{err}"
    );
}

/// A run folder holds one run: a second training into it is refused (replaced with --force),
/// and while one run writes into it another cannot.
#[test]
fn a_run_folder_is_locked_and_never_replaced_silently() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("blobs.csv"), blobs_csv(40, 3)).unwrap();
    let train = |extra: &[&str]| {
        let mut c = microdnn();
        c.current_dir(d)
            .args(["train", "--data", "blobs.csv", "--out", "run", "--quiet"])
            .args(extra);
        c
    };
    run_ok(&mut train(&["--epochs", "1"]));
    let model = std::fs::read(d.join("run/model.safetensors")).unwrap();
    let err = run_err(&mut train(&["--epochs", "1", "--seed", "3"]));
    assert!(
        err.contains("already holds a run") && err.contains("--force to replace it"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(d.join("run/model.safetensors")).unwrap(),
        model
    );
    run_ok(&mut train(&["--epochs", "1", "--seed", "3", "--force"]));
    assert_ne!(
        std::fs::read(d.join("run/model.safetensors")).unwrap(),
        model
    );
    // A long run holds the lock; a second one into the same folder is refused.
    std::fs::write(
        d.join("long.toml"),
        "epochs = 100000\n[early_stopping]\npatience = 100000\n",
    )
    .unwrap();
    let long_run = |extra: &[&str]| {
        let mut c = microdnn();
        c.current_dir(d)
            .args(["train", "--data", "blobs.csv", "--out", "long", "--quiet"])
            .args(extra);
        c
    };
    let mut long = long_run(&["--config", "long.toml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let history = d.join("long/history.jsonl");
    let t = std::time::Instant::now();
    while !history.exists() && t.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let err = run_err(&mut long_run(&["--epochs", "1", "--force"]));
    long.kill().unwrap();
    long.wait().unwrap();
    assert!(
        err.contains("another microdnn process is writing into this run folder"),
        "{err}"
    );
    // The killed run left an unlocked folder: --resume continues it.
    let out = run_ok(&mut long_run(&["--resume", "--epochs", "1"]));
    assert!(out.contains("wrote long"), "{out}");
}

/// What reading the data found is said: a header row skipped, the dataset inferred from
/// --data, the classes inferred and those without examples; --resume refuses flags that
/// would change the run.
#[test]
fn what_the_data_reading_decided_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("stray.csv"),
        format!("x1,x2,x3,x4,label\n{}1,1,1,1,7\n", blobs_csv(20, 3)),
    )
    .unwrap();
    let out = microdnn()
        .current_dir(d)
        .args([
            "train",
            "--data",
            "stray.csv",
            "--epochs",
            "1",
            "--out",
            "run",
            "--quiet",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for says in [
        "note: dataset Csv, inferred from stray.csv (a file)",
        "the first row is a header (\"x1,x2,x3,x4,label\"), skipped",
        "8 classes, inferred from the labels (the largest, 7, is on line 62)",
        // The stray row went to the test split: class 7 has no training example either.
        "warning: classes 3, 4, 5, 6, 7 of 0..7 have no training examples",
    ] {
        assert!(err.contains(says), "{says:?} missing from:\n{err}");
    }
    let cfg = std::fs::read_to_string(d.join("run/config.toml")).unwrap();
    assert!(cfg.contains("dataset = \"csv\""), "{cfg}");
    for flag in [
        ["--seed", "4"],
        ["--batch-size", "8"],
        ["--dataset", "digits"],
    ] {
        let err = run_err(
            microdnn()
                .current_dir(d)
                .args(["train", "--resume", "--out", "run"])
                .args(flag),
        );
        assert!(
            err.contains(&format!("{} cannot change it", flag[0])),
            "{err}"
        );
    }
    // Editing the run's config.toml does not get around it.
    std::fs::write(
        d.join("run/config.toml"),
        cfg.replace("seed = 0", "seed = 4"),
    )
    .unwrap();
    let err = run_err(
        microdnn()
            .current_dir(d)
            .args(["train", "--resume", "--epochs", "2", "--out", "run"]),
    );
    assert!(
        err.contains("seed was 0 when the run started and is 4 now"),
        "{err}"
    );
}

//! The `microdnn` binary end to end: train (with flags over a config), the run folder's files,
//! resume, score (and its former spelling `evaluate`), and clear errors for bad input.

mod common;
use common::{microdnn, run_ok};

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

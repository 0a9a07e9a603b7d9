//! The cost model (`microdnn_targets::cost`, what `microdnn info --target NAME` prints) against
//! the instructions QEMU measured (`-icount`) for the firmware's `cost` networks, committed by
//! `cargo xtask cost-fixtures` in `tests/fixtures/cost/TARGET.json`.
//!
//! Networks 1 to 16 are the ones the coefficients were fitted on; 17 to 22 were not (held out).
//! Every network's prediction must be within its target's [`tolerance`] of its measurement, on
//! every target that has a fixture; every QEMU target must have a fixture and coefficients.
//!
//! Measured with `cargo xtask cost-fixtures --all`: on the hard-float cores (Cortex-M4F, M7,
//! M33, STM32F405) the held-out networks are within 1.94% and the fitted ones within 2.67%;
//! the Cortex-M55 within 2.48% and 3.06%. The soft-float Cortex-M0/M3 run every f32 operation
//! in library code whose path depends on the values (and the M0 builds only 12 small networks):
//! up to 15% there. The goal, 2% everywhere, is not met.

use microdnn::Activation;
use microdnn_targets::cost;

/// Largest relative error of a prediction this test allows on `target` (see the module docs).
fn tolerance(target: &str) -> f64 {
    match target {
        "cortex-m0" | "cortex-m3" => 0.15,
        "cortex-m55" => 0.035,
        _ => 0.03,
    }
}

fn activation(name: &str) -> Activation {
    match name {
        "identity" => Activation::Identity,
        "relu" => Activation::Relu,
        "leaky_relu" => Activation::LeakyRelu { slope: 0.01 },
        "sigmoid" => Activation::Sigmoid,
        "tanh" => Activation::Tanh,
        "softmax" => Activation::Softmax,
        other => panic!("unknown activation {other}"),
    }
}

#[test]
fn predictions_match_qemu_measurements() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cost");
    let mut targets = 0;
    let mut worst: (f64, String) = (0.0, String::new());
    for entry in std::fs::read_dir(&dir).expect("the cost fixtures") {
        let path = entry.unwrap().path();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let target = v["target"].as_str().unwrap();
        assert!(
            cost::coefficients(target).is_some(),
            "{target} has a fixture but no coefficients: run `cargo xtask cost-fixtures --refit`"
        );
        targets += 1;
        let layers = v["layers"].as_array().unwrap();
        let networks = v["networks"].as_array().unwrap();
        assert!(
            networks.len() >= 12,
            "{target}: {} networks",
            networks.len()
        );
        for n in networks {
            let net = n["net"].as_u64().unwrap();
            let shape: Vec<(usize, usize, Activation)> = layers
                .iter()
                .filter(|l| l["net"].as_u64() == Some(net))
                .map(|l| {
                    (
                        l["inputs"].as_u64().unwrap() as usize,
                        l["outputs"].as_u64().unwrap() as usize,
                        activation(l["activation"].as_str().unwrap()),
                    )
                })
                .collect();
            assert!(!shape.is_empty());
            let measured = n["instructions"].as_f64().unwrap();
            let predicted = cost::predict(target, &shape).unwrap();
            let error = (predicted - measured).abs() / measured;
            let what = format!(
                "{target} network {net} {shape:?}: predicted {predicted:.0}, measured {measured:.0}"
            );
            if error > worst.0 {
                worst = (error, what.clone());
            }
            assert!(
                error <= tolerance(target),
                "{what}: {:.2}% off",
                100.0 * error
            );
        }
    }
    for t in microdnn_targets::qemu_targets() {
        assert!(
            dir.join(format!("{}.json", t.name)).exists(),
            "no cost fixture for {}: run `cargo xtask cost-fixtures --target {}`",
            t.name,
            t.name
        );
    }
    assert!(targets >= 1, "no cost fixture in {}", dir.display());
    println!("worst: {:.2}% ({})", 100.0 * worst.0, worst.1);
}

//! Cost per element of ReLU, leaky ReLU, sigmoid and tanh: on the host (wall time of
//! `microdnn::Activation::apply`, ratios to ReLU measured in the same run) and, when
//! `cargo xtask lab` has measured it, on the Cortex-M4F under QEMU `-icount` (`mcu.json` in the
//! report folder: instructions per element for the libm and micromath back ends).

use std::hint::black_box;
use std::time::Instant;

use microdnn::Activation;
use serde_json::{json, Value};

use super::{LabOptions, Report};

const ACTS: [Activation; 4] = [
    Activation::Relu,
    Activation::LEAKY_RELU,
    Activation::Sigmoid,
    Activation::Tanh,
];

/// Nanoseconds per element of `act.apply` on 4096 values in [-6, 6] (best of `reps` rounds of
/// `iters` calls; the copy that restores the input is measured alone and subtracted).
fn ns_per_element(act: Activation, iters: usize, reps: usize) -> f64 {
    let mut rng = microdnn::Rng::new(2);
    let x: Vec<f32> = (0..4096).map(|_| rng.uniform(-6.0, 6.0)).collect();
    let mut y = x.clone();
    let mut best = f64::INFINITY;
    let mut best_copy = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        for _ in 0..iters {
            y.copy_from_slice(black_box(&x));
            black_box(&mut y);
        }
        best_copy = best_copy.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        for _ in 0..iters {
            y.copy_from_slice(black_box(&x));
            act.apply(black_box(&mut y));
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    ((best - best_copy).max(0.0) * 1e9) / (iters * x.len()) as f64
}

pub(super) fn run(opts: &LabOptions, r: &mut Report) -> anyhow::Result<()> {
    let (iters, reps) = if opts.quick { (200, 3) } else { (5000, 7) };
    let ns: Vec<f64> = ACTS
        .iter()
        .map(|&a| ns_per_element(a, iters, reps))
        .collect();
    let backend = "libm";
    r.p(format!(
        "Host: `microdnn::Activation::apply` on 4,096 values uniform in [-6, 6], {iters} calls, \
         best of {reps} rounds, the input copy subtracted; core math back end `{backend}` (the \
         host build's). Timings on this shared 2-core machine wobble; the ratios are measured in \
         one run. The lecture: ReLU is about 6 times cheaper than sigmoid."
    ));
    let mut rows = Vec::new();
    for (a, &t) in ACTS.iter().zip(&ns) {
        rows.push(vec![
            a.name().to_string(),
            format!("{t:.3}"),
            format!("{:.1}", t / ns[0].max(1e-6)),
        ]);
        r.set(
            &format!("host_{}", a.name()),
            json!({"ns_per_element": t, "ratio_to_relu": t / ns[0].max(1e-6)}),
        );
    }
    r.table(&["activation", "host ns / element", "× ReLU"], &rows);
    r.p(format!(
        "Host sigmoid / ReLU: {:.1}× (ReLU vectorises; sigmoid calls `expf` per element).",
        ns[2] / ns[0].max(1e-6)
    ));
    let mcu = r.dir.join("mcu.json");
    if let Ok(text) = std::fs::read_to_string(&mcu) {
        let v: Value = serde_json::from_str(&text)?;
        let mut rows = Vec::new();
        for a in ACTS {
            let get = |b: &str| v[b][a.name()].as_f64();
            let relu = |b: &str| v[b]["relu"].as_f64();
            let cell = |b: &str| match (get(b), relu(b)) {
                (Some(x), Some(base)) => format!("{x:.1} ({:.1}×)", x / base),
                _ => "-".into(),
            };
            rows.push(vec![a.name().to_string(), cell("libm"), cell("micromath")]);
        }
        r.p("Cortex-M4F (QEMU `mps2-an386`, `-icount`, exactly repeatable): executed instructions per element over a 256-element buffer, loop included, from `firmware/src/bin/activations.rs`:");
        r.table(
            &[
                "activation",
                "libm: instructions / element (× ReLU)",
                "micromath",
            ],
            &rows,
        );
        r.set("mcu", v);
    } else {
        r.p("Cortex-M4F figures: not measured in this run (`cargo xtask lab` runs the firmware's `activations` program under QEMU `-icount` and writes `mcu.json` here first).");
    }
    Ok(())
}

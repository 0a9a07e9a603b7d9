//! Helpers shared by the integration tests (each test file includes this module).
#![allow(dead_code)] // each test file uses a part

use std::process::Command;

use microdnn_host::random::{uniform01, TrainRng};

/// `n` values uniform in `[lo, hi)` from `rng`.
pub fn rand_vec(n: usize, rng: &mut TrainRng, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| lo + (hi - lo) * uniform01(rng)).collect()
}

/// Asserts that a finite-difference derivative `num` matches the analytic `ana` within 2% of the
/// larger plus `abs` (the floor where both are near zero and the difference quotient's own
/// rounding dominates).
pub fn close(num: f64, ana: f64, abs: f64, what: &str) {
    let tol = 0.02 * num.abs().max(ana.abs()) + abs;
    assert!(
        (num - ana).abs() <= tol,
        "{what}: numeric {num} vs analytic {ana}"
    );
}

/// The `microdnn` binary of this build (it needs the `cli` feature).
#[cfg(feature = "cli")]
pub fn microdnn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_microdnn"))
}

/// Runs `cmd`, asserts success (showing its output otherwise) and returns its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail; returns its standard error.
pub fn run_err(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "{cmd:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

//! `cargo xtask test`: every check, in order, stopping at the first failure.

use std::process::Command;
use std::time::Instant;

use anyhow::Result;

use crate::cargo::{self, THUMB_TARGET};
use crate::qemu;

/// One check.
struct Step {
    name: String,
    action: Box<dyn Fn() -> Result<()>>,
}

impl Step {
    fn new(name: impl Into<String>, action: impl Fn() -> Result<()> + 'static) -> Self {
        Step {
            name: name.into(),
            action: Box::new(action),
        }
    }

    /// A step that runs one command and succeeds if it exits with success.
    fn command(name: impl Into<String>, make: impl Fn() -> Command + 'static) -> Self {
        Step::new(name, move || {
            let mut cmd = make();
            println!("xtask: $ {}", cargo::describe(&cmd));
            cargo::run_status(&mut cmd)
        })
    }
}

fn root_cargo(args: &'static [&'static str]) -> impl Fn() -> Command {
    move || {
        let mut cmd = cargo::cargo_in_root();
        cmd.args(args);
        cmd
    }
}

fn firmware_cargo(args: &'static [&'static str]) -> impl Fn() -> Command {
    move || {
        let mut cmd = cargo::cargo_in_firmware();
        cmd.args(args);
        cmd
    }
}

/// The core's feature sets checked on the thumb target.
const CORE_FEATURE_SETS: [&[&str]; 3] =
    [&[], &["--features", "defmt"], &["--features", "micromath"]];

fn feature_label(set: &[&str]) -> &'static str {
    match set.get(1).copied() {
        None => "no features",
        Some("defmt") => "defmt",
        Some("micromath") => "micromath",
        Some(_) => "features",
    }
}

fn steps() -> Vec<Step> {
    let mut steps = vec![
        // First: the host tests include an end-to-end test in QEMU.
        Step::new("qemu-system-arm available", qemu::ensure_installed),
        Step::command(
            "rustfmt (workspace)",
            root_cargo(&["fmt", "--all", "--check"]),
        ),
        Step::command("rustfmt (firmware)", firmware_cargo(&["fmt", "--check"])),
        Step::command(
            "rustfmt (xtask)",
            root_cargo(&["fmt", "--manifest-path", "xtask/Cargo.toml", "--check"]),
        ),
        Step::command(
            "clippy (xtask)",
            root_cargo(&[
                "clippy",
                "--manifest-path",
                "xtask/Cargo.toml",
                "--",
                "-D",
                "warnings",
            ]),
        ),
        Step::command(
            "clippy (workspace, host, release)",
            root_cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--release",
                "--",
                "-D",
                "warnings",
            ]),
        ),
    ];
    for set in CORE_FEATURE_SETS {
        steps.push(Step::command(
            format!("clippy (core, {THUMB_TARGET}, {})", feature_label(set)),
            move || {
                let mut cmd = cargo::cargo_in_root();
                cmd.args(["clippy", "-p", "microdnn", "--target", THUMB_TARGET])
                    .args(set)
                    .args(["--", "-D", "warnings"]);
                cmd
            },
        ));
    }
    steps.push(Step::command(
        "clippy (firmware, release)",
        firmware_cargo(&["clippy", "--release", "--", "-D", "warnings"]),
    ));
    steps.push(Step::command(
        "tests (workspace, release)",
        root_cargo(&["test", "--workspace", "--release"]),
    ));
    steps.push(Step::command(
        "tests (core, debug: overflow checks on)",
        root_cargo(&["test", "-p", "microdnn"]),
    ));
    steps.push(Step::new(
        "tests (core, i686-unknown-linux-gnu, debug: 32-bit usize)",
        crate::fuzz::test_core_32bit,
    ));
    steps.push(Step::command(
        "tests (core, micromath, release)",
        root_cargo(&[
            "test",
            "-p",
            "microdnn",
            "--release",
            "--features",
            "micromath",
        ]),
    ));
    for set in CORE_FEATURE_SETS {
        steps.push(Step::command(
            format!("build (core, {THUMB_TARGET}, {})", feature_label(set)),
            move || {
                let mut cmd = cargo::cargo_in_root();
                cmd.args(["build", "-p", "microdnn", "--target", THUMB_TARGET])
                    .args(set);
                cmd
            },
        ));
    }
    steps.push(Step::command(
        "build (firmware, release)",
        firmware_cargo(&["build", "--release", "--bins"]),
    ));
    steps.push(Step::new("firmware self-test in QEMU", || {
        run_firmware("selftest")
    }));
    steps.push(Step::new("firmware demo in QEMU", || run_firmware("demo")));
    steps.push(Step::new(
        "firmware benchmark in QEMU (-icount)",
        crate::bench_mcu::run,
    ));
    steps.push(Step::new(
        "cargo xtask demo (digits: train, export, QEMU, compare)",
        || crate::demo::run(&crate::demo::parse(&[])?),
    ));
    steps.push(Step::new(
        "cargo xtask lab --quick (every experiment, reduced size; Cortex-M4F activation costs)",
        || {
            let out = cargo::root().join("target").join("lab-quick");
            crate::lab::run(&["--quick".into(), "--out".into(), out.display().to_string()])
        },
    ));
    steps
}

fn run_firmware(bin: &str) -> Result<()> {
    let elf = cargo::firmware_elf(bin);
    let run = qemu::run(&elf, &qemu::RunOptions::default())?;
    run.print_log();
    println!(
        "xtask: {bin} ran for {:.1} s in QEMU",
        run.elapsed.as_secs_f64()
    );
    run.check()
}

/// Runs the steps; prints `xtask: N passed, M failed` last and exits with failure if a step
/// failed. Stops at the first failure unless `keep_going` (then every step runs).
pub fn run(keep_going: bool) -> Result<()> {
    let steps = steps();
    let total = steps.len();
    let mut passed = 0;
    let mut failures = Vec::new();
    let mut stopped_at = None;
    for (i, step) in steps.iter().enumerate() {
        println!("\nxtask: [{}/{total}] {}", i + 1, step.name);
        let start = Instant::now();
        match (step.action)() {
            Ok(()) => {
                passed += 1;
                println!(
                    "xtask: [{}/{total}] ok: {} ({:.1} s)",
                    i + 1,
                    step.name,
                    start.elapsed().as_secs_f64()
                );
            }
            Err(e) => {
                println!("xtask: [{}/{total}] FAILED: {}: {e:#}", i + 1, step.name);
                failures.push(step.name.clone());
                if !keep_going {
                    stopped_at = Some(i);
                    break;
                }
            }
        }
    }
    println!();
    for name in &failures {
        println!("xtask: failed: {name}");
    }
    if let Some(i) = stopped_at {
        println!(
            "xtask: stopped at step {}/{total}; {} later steps not run (--keep-going runs them all)",
            i + 1,
            total - i - 1
        );
    }
    println!("xtask: {passed} passed, {} failed", failures.len());
    if !failures.is_empty() {
        // The summary stays the last line of the output.
        std::process::exit(1);
    }
    Ok(())
}

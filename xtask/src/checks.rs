//! `cargo xtask test`: every check, in order, stopping at the first failure.

use std::process::Command;
use std::time::Instant;

use anyhow::Result;

use microdnn_targets::{firmware, Target, TARGETS};

use crate::cargo;
use crate::{qemu, setup};

/// The triple the core's feature sets are checked on (the default board's).
const THUMB_TARGET: &str = "thumbv7em-none-eabihf";

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

/// One target per distinct firmware build (the Cortex-M7 runs the Cortex-M4F's ELF).
fn distinct_builds() -> Vec<&'static Target> {
    let mut seen = Vec::new();
    TARGETS
        .iter()
        .filter(|t| {
            let id = t.build_id();
            let new = !seen.contains(&id);
            seen.push(id);
            new
        })
        .collect()
}

/// Functions allowed to reach a panic in `target`'s programs: on the real Nucleo-F446RE, the
/// HAL's clock-tree solver (`RCC.freeze` with HSE and PLL; unreachable for its fixed
/// configuration, see `firmware/boards/nucleo-f446re/mod.rs`). Nothing on the emulated boards.
fn allowed_panic_entries(target: &Target) -> &'static [&'static str] {
    match target.runner {
        microdnn_targets::Runner::ProbeRs { .. } if target.board == "nucleo-f446re" => &[
            "stm32f4xx_hal::rcc::",
            "microdnn_firmware::board::freeze_clocks",
        ],
        _ => &[],
    }
}

/// Every program of `firmware/src/bin/`.
const FIRMWARE_PROGRAMS: [&str; 5] = ["eval", "selftest", "bench", "demo", "activations"];

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
        // First: everything later steps build with (a fresh machine has no thumb targets).
        Step::new(
            "Rust targets and components of the pinned toolchain",
            setup::everything,
        ),
        // The host tests include an end-to-end test in QEMU.
        Step::new("qemu-system-arm available", qemu::ensure_installed),
        Step::command(
            "rustfmt (workspace)",
            root_cargo(&["fmt", "--all", "--check"]),
        ),
        Step::command(
            "rustfmt (firmware)",
            root_cargo(&["fmt", "--manifest-path", "firmware/Cargo.toml", "--check"]),
        ),
        // The board folders are compiled in through a generated `#[path]`, which `cargo fmt`
        // does not follow.
        Step::command("rustfmt (firmware boards)", || {
            let mut cmd = Command::new("rustfmt");
            cmd.current_dir(cargo::root())
                .args(["--edition", "2021", "--check"]);
            let boards = firmware::firmware_dir().join("boards");
            for t in distinct_builds() {
                let dir = boards.join(t.board);
                for file in ["mod.rs", "uart.rs"] {
                    if dir.join(file).is_file() {
                        cmd.arg(dir.join(file));
                    }
                }
            }
            cmd
        }),
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
        Step::command(
            "docs (core, host, targets: cargo doc, warnings denied)",
            || {
                let mut cmd = cargo::cargo_in_root();
                cmd.args([
                    "doc",
                    "--no-deps",
                    "-p",
                    "microdnn",
                    "-p",
                    "microdnn-host",
                    "-p",
                    "microdnn-targets",
                ])
                .env("RUSTDOCFLAGS", "-D warnings");
                cmd
            },
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
    // The core on the other cores' triples, with defmt (heapless, critical-section and defmt
    // on the Cortex-M0, which has no compare-and-swap).
    for triple in [
        "thumbv6m-none-eabi",
        "thumbv7m-none-eabi",
        "thumbv8m.main-none-eabihf",
    ] {
        steps.push(Step::command(
            format!("clippy (core, {triple}, defmt)"),
            move || {
                let mut cmd = cargo::cargo_in_root();
                cmd.args(["clippy", "-p", "microdnn", "--target", triple])
                    .args(["--features", "defmt", "--", "-D", "warnings"]);
                cmd
            },
        ));
    }
    // The core's Helium build (its one `unsafe` module), in a target directory of its own so
    // the flags do not rebuild the host's dependencies.
    steps.push(Step::command(
        "clippy (core, thumbv8m.main-none-eabihf, target-cpu=cortex-m55: Helium, defmt)",
        || {
            let mut cmd = cargo::cargo_in_root();
            cmd.args([
                "clippy",
                "-p",
                "microdnn",
                "--target",
                "thumbv8m.main-none-eabihf",
            ])
            .args(["--features", "defmt", "--", "-D", "warnings"])
            .env("CARGO_TARGET_DIR", cargo::root().join("target/helium"))
            .env("CARGO_ENCODED_RUSTFLAGS", "-C\x1ftarget-cpu=cortex-m55");
            cmd
        },
    ));
    for t in distinct_builds() {
        steps.push(Step::command(
            format!("clippy (firmware, {}, release)", t.build_id()),
            move || {
                let mut cmd = firmware::cargo(t, "clippy");
                cmd.args(["--release", "--bins", "--", "-D", "warnings"]);
                cmd
            },
        ));
    }
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
    for t in distinct_builds() {
        steps.push(Step::new(
            format!(
                "build (firmware, {}, release) and no panic path in its ELFs",
                t.build_id()
            ),
            move || {
                let mut cmd = firmware::cargo(t, "build");
                cmd.args(["--release", "--bins"]);
                println!("xtask: $ {}", cargo::describe(&cmd));
                cargo::run_status(&mut cmd)?;
                // No panic path in any program (the `eval` with a trained model is checked by
                // the demo steps).
                let elfs: Vec<_> = FIRMWARE_PROGRAMS
                    .iter()
                    .map(|bin| firmware::elf(t, bin))
                    .collect();
                crate::panic_check::check_allowing(
                    elfs.iter().map(|p| p.as_path()),
                    allowed_panic_entries(t),
                )
            },
        ));
    }
    for t in microdnn_targets::qemu_targets() {
        steps.push(Step::new(
            format!(
                "firmware self-test and demo in QEMU: {} ({})",
                t.name, t.core
            ),
            move || {
                run_firmware(t, "selftest")?;
                run_firmware(t, "demo")
            },
        ));
    }
    steps.push(Step::new(
        "cargo xtask bench-mcu --all (-icount: every QEMU target)",
        || crate::bench_mcu::run(&["--all".into()]),
    ));
    steps.push(Step::new(
        "cargo xtask demo --target all (digits: train, export, every QEMU target, compare)",
        || crate::demo::run(&crate::demo::parse(&["--target".into(), "all".into()])?),
    ));
    steps.push(Step::new(
        "cargo xtask demo --quantize int8 --target all (digits, int8: every QEMU target, compare)",
        || {
            crate::demo::run(&crate::demo::parse(&[
                "--quantize".into(),
                "int8".into(),
                "--target".into(),
                "all".into(),
            ])?)
        },
    ));
    steps.push(Step::new(
        "cargo xtask demo --dataset mnist --limit 500 --target all (MNIST from ../shared/data/mnist or $MICRODNN_MNIST)",
        || {
            // The project's shared data folder beside the repository (as on CI), or elsewhere.
            let mnist = std::env::var_os("MICRODNN_MNIST")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| cargo::root().join("../shared/data/mnist"));
            if !mnist.is_dir() {
                println!(
                    "xtask: no MNIST at {}: skipped (the digits demo above covers every target)",
                    mnist.display()
                );
                return Ok(());
            }
            let mut args: Vec<String> = ["--dataset", "mnist", "--limit", "500", "--target", "all"]
                .map(String::from)
                .to_vec();
            args.extend(["--data-dir".to_owned(), mnist.display().to_string()]);
            crate::demo::run(&crate::demo::parse(&args)?)
        },
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

fn run_firmware(target: &Target, bin: &str) -> Result<()> {
    let elf = firmware::elf(target, bin);
    let run = qemu::run(target, &elf, &qemu::RunOptions::default())?;
    run.print_log();
    println!(
        "xtask: {bin} ran for {:.1} s in QEMU ({})",
        run.elapsed.as_secs_f64(),
        target.name
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

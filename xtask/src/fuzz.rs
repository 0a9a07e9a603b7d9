//! The core's robustness checks that take longer than a test run: `cargo xtask mutate` (the
//! model-file mutation test with a million cases and more) and `cargo xtask fuzz` (cargo-fuzz on
//! nightly); and the 32-bit run of core's tests that `cargo xtask test` makes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::cargo;

/// The cargo-fuzz targets in `core/fuzz/fuzz_targets/` (bodies in `core/tests/fuzz_bodies/`).
pub const TARGETS: [&str; 2] = ["model_view", "link_decoder"];

/// A target where `usize` has 32 bits, as on the Cortex-M, that runs natively on x86-64.
const TARGET_32BIT: &str = "i686-unknown-linux-gnu";

fn value<T: std::str::FromStr>(flag: &str, v: Option<&String>) -> Result<T> {
    let v = v.with_context(|| format!("{flag} needs a value"))?;
    v.parse()
        .map_err(|_| anyhow::anyhow!("{flag}: `{v}` is not a valid number"))
}

/// `cargo xtask mutate [--cases N] [--release]`: the model-format mutation test
/// (`core/tests/model_format.rs`, `fuzz_mutations_never_panic`) with `N` cases (default
/// 1,000,000), in debug unless `--release`, so overflow checks are on.
pub fn mutate(args: &[String]) -> Result<()> {
    let mut cases: u64 = 1_000_000;
    let mut release = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--cases" => cases = value("--cases", it.next())?,
            "--release" => release = true,
            other => bail!("mutate: unknown argument `{other}` (usage: cargo xtask mutate [--cases N] [--release])"),
        }
    }
    if cases == 0 {
        bail!("mutate: --cases must be at least 1");
    }
    let mut cmd = cargo::cargo_in_root();
    cmd.args(["test", "-p", "microdnn", "--test", "model_format"]);
    if release {
        cmd.arg("--release");
    }
    cmd.args(["--", "--exact", "fuzz_mutations_never_panic", "--nocapture"])
        .env("MICRODNN_MUTATION_CASES", cases.to_string());
    println!(
        "xtask: $ MICRODNN_MUTATION_CASES={cases} {}",
        cargo::describe(&cmd)
    );
    let start = Instant::now();
    cargo::run_status(&mut cmd)?;
    println!(
        "mutate: {cases} cases ({}) passed in {:.1} s",
        if release {
            "release"
        } else {
            "debug, overflow checks on"
        },
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `cargo xtask fuzz [--seconds N] [TARGET...]`: runs each cargo-fuzz target (default: all) for
/// `N` seconds (default 60) with address sanitizer, debug assertions and overflow checks,
/// starting from the committed seeds (`core/tests/corpus/TARGET`); new corpus entries go to
/// `core/fuzz/corpus/TARGET` (ignored by git), crashes to `core/fuzz/artifacts/TARGET`.
pub fn fuzz(args: &[String]) -> Result<()> {
    let mut seconds: u64 = 60;
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => seconds = value("--seconds", it.next())?,
            t if TARGETS.contains(&t) => targets.push(t),
            other => bail!(
                "fuzz: unknown argument `{other}` (usage: cargo xtask fuzz [--seconds N] [{}])",
                TARGETS.join("|")
            ),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    let nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output();
    if !nightly.is_ok_and(|o| o.status.success()) {
        bail!("fuzz: cargo-fuzz needs a nightly toolchain: `rustup toolchain install nightly`");
    }
    let has_fuzz = Command::new("rustup")
        .args(["run", "nightly", "cargo", "fuzz", "--version"])
        .env_remove("CARGO")
        .output();
    if !has_fuzz.is_ok_and(|o| o.status.success()) {
        bail!("fuzz: cargo-fuzz is not installed: `cargo install cargo-fuzz`");
    }
    let core = cargo::root().join("core");
    let mut summary = Vec::new();
    for target in targets {
        let work = core.join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&work)
            .with_context(|| format!("cannot create {}", work.display()))?;
        let seeds = core.join("tests/corpus").join(target);
        let mut cmd = Command::new("rustup");
        cmd.current_dir(&core)
            .env_remove("CARGO")
            .env_remove("RUSTUP_TOOLCHAIN")
            .args([
                "run",
                "nightly",
                "cargo",
                "fuzz",
                "run",
                "--debug-assertions",
            ])
            .arg(target)
            .arg(&work)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg("-print_final_stats=1");
        println!("xtask: $ {}", cargo::describe(&cmd));
        let (status, runs) = run_counting(&mut cmd)?;
        let runs = runs.map_or("?".to_owned(), |n| n.to_string());
        if !status.success() {
            bail!(
                "fuzz: {target} failed after {runs} runs ({status}): the crashing input is in \
                 core/fuzz/artifacts/{target}/; after fixing the bug, commit it as \
                 core/tests/corpus/{target}/regression-NAME so every test run replays it"
            );
        }
        summary.push(format!("{target} {runs} runs"));
    }
    println!(
        "fuzz: {seconds} s per target, no crash: {}",
        summary.join(", ")
    );
    Ok(())
}

/// Runs a libFuzzer command, passing its output through, and returns its status and the number
/// of inputs it executed (`stat::number_of_executed_units`).
fn run_counting(cmd: &mut Command) -> Result<(std::process::ExitStatus, Option<u64>)> {
    let mut child = cmd
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", cargo::describe(cmd)))?;
    let mut runs = None;
    if let Some(err) = child.stderr.take() {
        for line in BufReader::new(err).lines() {
            let line = line.context("reading the fuzzer's output")?;
            eprintln!("{line}");
            if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
                runs = n.trim().parse().ok();
            }
        }
    }
    Ok((child.wait().context("waiting for the fuzzer")?, runs))
}

/// Whether a program runs (`--version`).
fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The step of `cargo xtask test` that runs core's tests (debug: overflow checks on) where
/// `usize` has 32 bits, as on the Cortex-M: size arithmetic that fits in 64 bits but not in 32
/// is caught there. Installs the `i686-unknown-linux-gnu` target with rustup and a 32-bit C
/// runtime (`gcc-multilib`) with apt-get when missing (as root; otherwise says what to install).
pub fn test_core_32bit() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("cannot run rustup")?;
    if !String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == TARGET_32BIT)
    {
        println!("xtask: adding the {TARGET_32BIT} target with rustup");
        let mut cmd = Command::new("rustup");
        cmd.args(["target", "add", TARGET_32BIT]);
        cargo::run_status(&mut cmd)?;
    }
    // The 32-bit C runtime the linker needs (Debian/Ubuntu: gcc-multilib).
    if !runs("dpkg", &["-s", "gcc-multilib"]) && runs("apt-get", &["--version"]) {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        if !root {
            bail!("linking 32-bit test binaries needs gcc-multilib: `sudo apt-get install gcc-multilib`");
        }
        println!("xtask: installing gcc-multilib with apt-get (running as root)");
        for args in [&["update"][..], &["install", "-y", "gcc-multilib"][..]] {
            let mut cmd = Command::new("apt-get");
            cmd.args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null());
            cargo::run_status(&mut cmd)?;
        }
    }
    let mut cmd = cargo::cargo_in_root();
    cmd.args(["test", "-p", "microdnn", "--target", TARGET_32BIT]);
    println!("xtask: $ {}", cargo::describe(&cmd));
    cargo::run_status(&mut cmd)
}

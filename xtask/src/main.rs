//! Project automation for microdnn, run as `cargo xtask <command>` from anywhere in the repo.
//!
//! | command | what it does |
//! |---|---|
//! | `test` | every check CI runs, in order, stopping at the first failure: formatting, clippy (host and thumb), host tests, thumb builds of the core per feature set, then the firmware self-test and demo in QEMU |
//! | `demo [--dataset digits\|mnist] [--data-dir PATH] [--limit N]` | the main job: trains on the host, exports the model, builds the firmware with it, runs it in QEMU over the whole held-out set through the serial link and compares every output with the host's; last line `demo: host_acc=… device_acc=… identical=N/N instr_per_inference=… flash=… ram=…` |
//! | `bench-mcu` | runs the benchmark firmware under `-icount shift=3,sleep=off` and reports instructions per inference and per MAC, flash, static RAM and peak stack; writes `target/bench/mcu.json` |
//! | `bench-train [args]` | `cargo run --release -p microdnn-host -- bench-train [args]` |
//! | `lab [--quick] [--out DIR] [NAME...]` | the lecture's experiments (`microdnn lab`), with the Cortex-M4F activation costs measured under QEMU `-icount` first; reports in `target/lab/` |
//! | `run <bin>` | builds and runs any firmware binary (`demo`, `selftest`, `bench`) in QEMU, with its decoded log |
//!
//! QEMU (`qemu-system-arm`) is installed with apt when missing and running as root (CI);
//! otherwise the command stops and says what to install.

mod bench_mcu;
mod cargo;
mod checks;
mod defmt_log;
mod demo;
mod elf_size;
mod lab;
mod qemu;
mod setup;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test [--keep-going]  run every check (fmt, clippy, tests, thumb builds, firmware in QEMU),
                       stopping at the first failure (--keep-going: run them all)
  demo [--dataset digits|mnist] [--data-dir PATH] [--limit N]
                       train on the host, export, run on the emulated Cortex-M4F over the
                       serial link, compare host and device outputs bit for bit
  bench-mcu            instruction counts, flash, RAM and stack of the firmware (QEMU -icount);
                       writes target/bench/mcu.json
  bench-train [args]   cargo run --release -p microdnn-host -- bench-train [args]
  lab [--quick] [--out DIR] [NAME...]
                       the lecture's experiments (microdnn lab; Cortex-M4F activation costs
                       under QEMU -icount first); reports in target/lab/NAME/report.md
  run <bin>            build and run any firmware binary (demo, selftest, bench) in QEMU
";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    let result = match command.as_deref() {
        Some("test") => match rest.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            [] => checks::run(false),
            ["--keep-going"] => checks::run(true),
            _ => Err(anyhow::anyhow!("usage: cargo xtask test [--keep-going]")),
        },
        Some("demo") => demo::parse(&rest).and_then(|o| demo::run(&o)),
        Some("run") => match rest.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            [bin] => run_firmware(bin, microdnn_targets::DEFAULT_TARGET),
            [bin, "--target", target] => run_firmware(bin, target),
            _ => Err(anyhow::anyhow!(
                "usage: cargo xtask run <demo|selftest|bench|eval> [--target NAME]"
            )),
        },
        Some("bench-mcu") => bench_mcu::run(&rest),
        Some("bench-train") => bench_train(&rest),
        Some("lab") => lab::run(&rest),
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            if let Some(other) = other {
                eprintln!("xtask: unknown command `{other}`\n");
            }
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask run BIN [--target NAME]`: build a firmware program and run it, in QEMU with
/// its decoded log, or on a real board with `probe-rs run` (defmt over RTT).
fn run_firmware(bin: &str, target: &str) -> anyhow::Result<()> {
    let target = microdnn_targets::find(target)?;
    setup::rust_targets([target])?;
    if let microdnn_targets::Runner::ProbeRs { chip } = target.runner {
        let elf = cargo::build_firmware(target, &[bin])?.remove(0);
        let mut cmd = std::process::Command::new("probe-rs");
        cmd.args(["run", "--chip", chip]).arg(&elf);
        println!("xtask: $ {}", cargo::describe(&cmd));
        return cargo::run_status(&mut cmd);
    }
    qemu::ensure_installed()?;
    let elf = cargo::build_firmware(target, &[bin])?.remove(0);
    let run = qemu::run(target, &elf, &qemu::RunOptions::default())?;
    run.print_log();
    run.check()
}

/// `cargo xtask bench-train [args]`: the trainer's own benchmark.
fn bench_train(args: &[String]) -> anyhow::Result<()> {
    let mut cmd = cargo::cargo_in_root();
    cmd.args([
        "run",
        "--release",
        "-p",
        "microdnn-host",
        "--",
        "bench-train",
    ])
    .args(args);
    cargo::run_status(&mut cmd)
}

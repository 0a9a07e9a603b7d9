//! Project automation for microdnn, run as `cargo xtask <command>` from anywhere in the repo.
//!
//! | command | what it does |
//! |---|---|
//! | `test` | every check CI runs, in order, stopping at the first failure: the Rust targets, formatting, clippy (host, core on every thumb triple, firmware per board), `cargo doc` with warnings denied, host tests (core also in debug and on a 32-bit target), thumb builds, then on every QEMU board the firmware self-test and demo, the benchmark and the demo's bit-identical evaluation |
//! | `demo [--dataset digits\|mnist] [--data-dir PATH] [--limit N] [--target NAME\|all] [--quantize int8]` | the main job: trains on the host, exports the model (int8 with `--quantize int8`), builds the firmware with it for each target, runs it in QEMU over the whole held-out set through the serial link and compares every output with the host's; a line per target `demo: target=… host_acc=… device_acc=… identical=N/N instr_per_inference=… flash=… ram=…` (plus `dtype=int8`), and with `all` a table |
//! | `bench-mcu [--target NAME\|--all]` | runs the benchmark firmware under `-icount shift=3,sleep=off` and reports instructions per inference and per MAC, flash, static RAM and peak stack; writes `target/bench/mcu.json` (keyed by target) |
//! | `cost-fixtures [--target NAME\|--all]` | runs the firmware's `cost` program (22 f32 networks) under QEMU `-icount` on each target, writes `targets/tests/fixtures/cost/TARGET.json`, fits the cost model of `microdnn info --target` (`targets/src/cost_table.rs`) and prints predictions against measurements |
//! | `bench-train [--torch PYTHON] [args]` | `cargo run --release -p microdnn-host -- bench-train [args]`, writing `target/bench/train.json`; with `--torch PYTHON`, also runs `shared/bench/pytorch_mlp.py` in the same invocation and writes the ratios |
//! | `lab [--quick\|--full] [--report-only] [--resume] [--out DIR] [--mnist DIR] [--threads N] [NAME...]` | the lecture's experiments (`microdnn lab`), with the Cortex-M4F activation costs measured under QEMU `-icount` first; reports in `target/lab/` |
//! | `run <bin> [--target NAME] [--model FILE]` | builds and runs any firmware program (`demo`, `selftest`, `bench`, `eval`) in QEMU with its decoded log, or flashes it to a real board with `probe-rs run` |
//! | `panic-check ELF...` | lists the panic-path functions (`core::panicking::*`, `panic_bounds_check`, the panic handler, ...) linked into firmware ELFs, with their callers; fails if there is one (`test` runs it on every program of every board) |
//! | `mutate [--cases N] [--release]` | the model-file mutation test with `N` cases (default 1,000,000), in debug (overflow checks) |
//! | `fuzz [--seconds N] [TARGET...]` | cargo-fuzz on the core's targets (`model_view`, `link_decoder`) for `N` s each (nightly) |
//!
//! Before building, every command adds the Rust targets it needs to the pinned toolchain
//! (`rustup target add`, and rustfmt/clippy for `test`), saying so. QEMU (`qemu-system-arm`) is
//! installed with apt when missing and running as root (CI); otherwise the command stops and
//! says what to install.

mod bench_mcu;
mod cargo;
mod checks;
mod cost;
mod defmt_log;
mod demo;
mod elf_size;
mod fuzz;
mod lab;
mod panic_check;
mod qemu;
mod setup;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test [--keep-going]  run every check (fmt, clippy, tests, thumb builds, firmware in QEMU),
                       stopping at the first failure (--keep-going: run them all)
  demo [--dataset digits|mnist] [--data-dir PATH] [--limit N] [--target NAME|all] [--quantize int8]
                       train on the host, export, run on an emulated board (default cortex-m4f;
                       all: every QEMU target) over the serial link, compare host and device
                       outputs bit for bit
  bench-mcu [--target NAME | --all]
                       instruction counts, flash, RAM and stack of the firmware (QEMU -icount);
                       writes target/bench/mcu.json (an object keyed by target)
  cost-fixtures [--target NAME | --all]
                       measure the firmware's `cost` networks (QEMU -icount) into
                       targets/tests/fixtures/cost/, fit the cost model (targets/src/cost_table.rs)
  bench-train [--torch PYTHON] [args]
                       cargo run --release -p microdnn-host -- bench-train [args], writes
                       target/bench/train.json; --torch PYTHON: PyTorch's baseline in the same
                       run, ratios in train.json
  lab [--quick|--full] [--report-only] [--resume] [--out DIR] [--mnist DIR] [--threads N] [NAME...]
                       the lecture's experiments (microdnn lab; Cortex-M4F activation costs
                       under QEMU -icount first); reports in target/lab/NAME/report.md
  run <bin> [--target NAME] [--model FILE]
                       build and run a firmware program (demo, selftest, bench, eval) in QEMU,
                       or flash and run it on a real board with probe-rs (--target nucleo-f446re)
  panic-check ELF...   list the panic-path functions linked into firmware ELFs and their
                       callers; fails if there is one (`test` checks every program)
  mutate [--cases N] [--release]
                       the model-file mutation test with N cases (default 1000000), in debug
  fuzz [--seconds N] [model_view|link_decoder]...
                       cargo-fuzz on the core's targets, N s each (default 60; needs nightly
                       and cargo-fuzz), from the seeds in core/tests/corpus/
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
        Some("run") => parse_run(&rest)
            .and_then(|(bin, target, model)| run_firmware(&bin, &target, model.as_deref())),
        Some("bench-mcu") => bench_mcu::run(&rest),
        Some("cost-fixtures") => cost::run(&rest),
        Some("bench-train") => bench_train(&rest),
        Some("lab") => lab::run(&rest),
        Some("mutate") => fuzz::mutate(&rest),
        Some("panic-check") if !rest.is_empty() => {
            panic_check::check(rest.iter().map(std::path::Path::new))
        }
        Some("fuzz") => fuzz::fuzz(&rest),
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

const RUN_USAGE: &str =
    "usage: cargo xtask run <demo|selftest|bench|eval> [--target NAME] [--model FILE]";

/// `run BIN [--target NAME] [--model FILE]`.
fn parse_run(args: &[String]) -> anyhow::Result<(String, String, Option<std::path::PathBuf>)> {
    let mut it = args.iter();
    let Some(bin) = it.next().filter(|b| !b.starts_with('-')) else {
        anyhow::bail!("{RUN_USAGE}");
    };
    let (mut target, mut model) = (microdnn_targets::DEFAULT_TARGET.to_owned(), None);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value\n{RUN_USAGE}"))?;
        match flag.as_str() {
            "--target" => target = value.clone(),
            "--model" => model = Some(std::path::PathBuf::from(value)),
            _ => anyhow::bail!("unknown option `{flag}`\n{RUN_USAGE}"),
        }
    }
    Ok((bin.clone(), target, model))
}

/// `cargo xtask run BIN [--target NAME] [--model FILE]`: build a firmware program (the `eval`
/// program with the model file compiled in, if given) and run it, in QEMU with its decoded log,
/// or on a real board with `probe-rs run` (flashes it; defmt over RTT).
fn run_firmware(bin: &str, target: &str, model: Option<&std::path::Path>) -> anyhow::Result<()> {
    let target = microdnn_targets::find(target)?;
    setup::rust_targets([target])?;
    let build = |target| -> anyhow::Result<std::path::PathBuf> {
        if let Some(m) = model {
            microdnn_targets::fit::check_file(target, m).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let mut elfs = microdnn_targets::firmware::build(
            target,
            &microdnn_targets::firmware::Build {
                bins: &[bin],
                model,
                quiet: false,
            },
        )
        .map_err(anyhow::Error::msg)?;
        Ok(elfs.remove(0))
    };
    if let microdnn_targets::Runner::ProbeRs { chip } = target.runner {
        let elf = build(target)?;
        let mut cmd = std::process::Command::new("probe-rs");
        cmd.args(["run", "--chip", chip]).arg(&elf);
        println!("xtask: $ {}", cargo::describe(&cmd));
        return cargo::run_status(&mut cmd);
    }
    qemu::ensure_installed()?;
    let elf = build(target)?;
    let run = qemu::run(target, &elf, &qemu::RunOptions::default())?;
    run.print_log();
    run.check()
}

/// `cargo xtask bench-train [--torch PYTHON] [args]`: the trainer's own benchmark
/// (`microdnn bench-train`), its JSON written to `target/bench/train.json` unless `--json` says
/// where. With `--torch PYTHON`, the PyTorch baseline `shared/bench/pytorch_mlp.py` (found in an
/// ancestor folder of the repository, or named by `MICRODNN_PYTORCH_BENCH`) runs right after in
/// the same invocation with the same threads, and `train.json` gets its figures under `pytorch`
/// and the ratios (microdnn / PyTorch) under `vs_pytorch`.
fn bench_train(args: &[String]) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut rest = Vec::new();
    let (mut torch, mut json, mut threads) = (None, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--torch" => {
                torch = Some(
                    it.next()
                        .context("--torch needs the Python interpreter that has torch")?
                        .clone(),
                )
            }
            "--json" => json = Some(it.next().context("--json needs a path")?.clone()),
            "--threads" => {
                let t = it.next().context("--threads needs a number")?.clone();
                threads = Some(t.clone());
                rest.extend(["--threads".to_owned(), t]);
            }
            _ => rest.push(a.clone()),
        }
    }
    let root = cargo::root();
    let json = json
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target/bench/train.json"));
    let mut cmd = cargo::cargo_in_root();
    cmd.args([
        "run",
        "--release",
        "-p",
        "microdnn-host",
        "--",
        "bench-train",
    ])
    .args(&rest)
    .arg("--json")
    .arg(&json);
    cargo::run_status(&mut cmd)?;
    let Some(python) = torch else {
        println!("wrote {}", json.display());
        return Ok(());
    };
    let script = match std::env::var_os("MICRODNN_PYTORCH_BENCH") {
        Some(p) => std::path::PathBuf::from(p),
        None => root
            .ancestors()
            .map(|d| d.join("shared/bench/pytorch_mlp.py"))
            .find(|p| p.exists())
            .context(
                "--torch: no shared/bench/pytorch_mlp.py in a folder above the repository (set \
                 MICRODNN_PYTORCH_BENCH to its path)",
            )?,
    };
    let torch_json = json.with_file_name("pytorch.json");
    // The same threads as microdnn's run (its default, 0, is every core).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match threads.as_deref() {
        None | Some("0") => cores.to_string(),
        Some(t) => t.to_owned(),
    };
    println!(
        "xtask: running the PyTorch baseline {} with {python} ({threads} threads)",
        script.display()
    );
    let status = std::process::Command::new(&python)
        .arg(&script)
        .args(["--threads", &threads, "--json"])
        .arg(&torch_json)
        .status()
        .with_context(|| format!("cannot run {python}"))?;
    if !status.success() {
        anyhow::bail!("the PyTorch baseline failed ({status})");
    }
    let read = |p: &std::path::Path| -> anyhow::Result<serde_json::Value> {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
    };
    let mut ours = read(&json)?;
    let theirs = read(&torch_json)?;
    let mut ratios = serde_json::Map::new();
    // (microdnn's figure, PyTorch's): the zero-skipping batch-1 path does less work than
    // PyTorch's dense one; its ratio is reported apart.
    for (key, theirs_key) in [
        ("train_samples_per_s", "train_samples_per_s"),
        ("infer_b1_samples_per_s", "infer_b1_samples_per_s"),
        ("infer_b1_sparse_samples_per_s", "infer_b1_samples_per_s"),
        ("infer_b256_samples_per_s", "infer_b256_samples_per_s"),
    ] {
        if let (Some(a), Some(b)) = (ours[key].as_f64(), theirs[theirs_key].as_f64()) {
            let r = a / b;
            ratios.insert(
                key.to_owned(),
                serde_json::json!((r * 100.0).round() / 100.0),
            );
            println!("{key}: microdnn {a:.0}, PyTorch ({theirs_key}) {b:.0}: {r:.2}x");
        }
    }
    if let serde_json::Value::Object(o) = &mut ours {
        o.insert("pytorch".into(), theirs);
        o.insert("vs_pytorch".into(), serde_json::Value::Object(ratios));
    }
    std::fs::write(&json, serde_json::to_string_pretty(&ours)? + "\n")
        .with_context(|| format!("writing {}", json.display()))?;
    println!("wrote {}", json.display());
    Ok(())
}

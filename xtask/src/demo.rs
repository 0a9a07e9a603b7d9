//! `cargo xtask demo`: the main job, from a dataset to a microcontroller and back.
//!
//! 1. trains a network on the host (`microdnn train`),
//! 2. exports it as a device model (`microdnn export`: batch norm folded, dropout dropped,
//!    weights packed; checked against the trained network),
//! 3. for each target (`--target NAME`, default `cortex-m4f`; `--target all`: every QEMU board),
//!    builds the firmware's `eval` program with the model compiled in (`MICRODNN_MODEL`), unless
//!    the model does not fit the board (then says so, with the sizes, and goes on),
//! 4. runs it in QEMU (`-icount`) and streams the whole held-out set through the emulated serial
//!    port (`microdnn eval --device qemu --target NAME`), comparing every output with the core
//!    running the same file on the host,
//! 5. checks the peak stack the device reports (stack painting) against the bound of
//!    `microdnn_targets::fit::EVAL_STACK_BYTES`,
//! 6. with the digits (whose network has dropout), runs Monte-Carlo dropout requests on the
//!    device (`microdnn eval --mc 10` on the first 20 test images; on the Cortex-M4F also 1, 5
//!    and 20 passes), each summary bit-identical to the host's,
//! 7. prints a summary line per target, machine-readable:
//!    `demo: target=… host_acc=… device_acc=… identical=N/N instr_per_inference=… flash=… ram=… stack=…`,
//!    and with several targets the tables of the README.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use microdnn_targets::{firmware, Target};

use crate::{cargo, elf_size, qemu, setup};

/// Which data set the demo runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dataset {
    /// The bundled UCI digits (8x8): trains in seconds.
    Digits,
    /// MNIST (28x28), from `--data-dir`: 784-128-64-10 on the full 10,000-image test set.
    Mnist,
}

/// Options of `cargo xtask demo`.
pub struct Options {
    /// Data set.
    pub dataset: Dataset,
    /// MNIST folder (the four IDX files).
    pub data_dir: Option<PathBuf>,
    /// Evaluate at most this many test examples on the device.
    pub limit: Option<usize>,
    /// The targets to run on.
    pub targets: Vec<&'static Target>,
}

const USAGE: &str = "usage: cargo xtask demo [--dataset digits|mnist] [--data-dir PATH] [--limit N] [--target NAME|all]";

/// Parses `demo` arguments: `[--dataset digits|mnist] [--data-dir PATH] [--limit N]`.
pub fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        dataset: Dataset::Digits,
        data_dir: None,
        limit: None,
        targets: vec![microdnn_targets::find(microdnn_targets::DEFAULT_TARGET)?],
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .with_context(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--dataset" => {
                o.dataset = match value("--dataset")?.as_str() {
                    "digits" => Dataset::Digits,
                    "mnist" => Dataset::Mnist,
                    other => bail!("unknown data set `{other}` (digits or mnist)"),
                }
            }
            "--data-dir" => o.data_dir = Some(PathBuf::from(value("--data-dir")?)),
            "--limit" => {
                o.limit = Some(
                    value("--limit")?
                        .parse()
                        .context("--limit needs a whole number")?,
                )
            }
            "--target" => {
                o.targets = match value("--target")?.as_str() {
                    "all" => microdnn_targets::qemu_targets().collect(),
                    name => vec![microdnn_targets::find(name)?],
                }
            }
            other => bail!("unknown option `{other}`\n{USAGE}"),
        }
    }
    if o.dataset == Dataset::Mnist && o.data_dir.is_none() {
        let default = cargo::root().join("../shared/data/mnist");
        if default.is_dir() {
            o.data_dir = Some(default);
        } else {
            bail!("--dataset mnist needs --data-dir PATH (a folder with the four MNIST IDX files)");
        }
    }
    Ok(o)
}

/// `cargo run --release -p microdnn-host -- ARGS` from the repository root.
fn microdnn(args: &[&str]) -> Result<()> {
    let mut cmd = cargo::cargo_in_root();
    cmd.args(["run", "--release", "--quiet", "-p", "microdnn-host", "--"])
        .args(args);
    cargo::run_status(&mut cmd)
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

/// One target's outcome.
struct Row {
    target: &'static Target,
    /// `None`: the model does not fit (the reason).
    result: std::result::Result<TargetResult, String>,
}

struct TargetResult {
    report: serde_json::Value,
    flash: u64,
    ram: u64,
    ok: bool,
    /// Monte-Carlo runs: passes and the `eval --mc` report.
    mc: Vec<(u16, serde_json::Value)>,
}

/// Monte-Carlo passes run on every target (digits), and on the Cortex-M4F the cost per K.
const MC_PASSES: u16 = 10;
const MC_COST_PASSES: [u16; 4] = [1, 5, 10, 20];
/// Test images per Monte-Carlo run.
const MC_LIMIT: usize = 20;

/// Runs the demo.
pub fn run(o: &Options) -> Result<()> {
    setup::rust_targets(o.targets.iter().copied())?;
    qemu::ensure_installed()?;
    let root = cargo::root();
    let (name, config) = match o.dataset {
        Dataset::Digits => ("digits", root.join("host/configs/digits.toml")),
        Dataset::Mnist => ("mnist", root.join("host/configs/mnist-device.toml")),
    };
    let run_dir = root.join("target/demo").join(name);
    let device_dir = run_dir.join("device");
    let run_s = path_arg(&run_dir);
    let device_s = path_arg(&device_dir);

    println!("== 1/4 train ({name}) ==");
    let mut train = vec!["train", "--config"];
    let config_s = path_arg(&config);
    train.push(&config_s);
    // The demo replaces its previous run.
    train.extend(["--out", &run_s, "--force"]);
    let data_s = o.data_dir.as_deref().map(path_arg);
    if let Some(d) = &data_s {
        train.extend(["--data", d]);
    }
    microdnn(&train)?;

    println!("\n== 2/4 export ==");
    microdnn(&["export", &run_s, "--out", &device_s])?;
    let model = device_dir.join("model.udnn");

    let mut rows = Vec::new();
    for (k, &target) in o.targets.iter().enumerate() {
        let step = if o.targets.len() > 1 {
            format!(" [{}/{}]", k + 1, o.targets.len())
        } else {
            String::new()
        };
        println!(
            "\n== 3/4 build the firmware with the model: {} ({} on {}){step} ==",
            target.name, target.core, target.board_name
        );
        let result = run_target(
            target,
            &model,
            &run_dir,
            &device_s,
            data_s.as_deref(),
            o.limit,
            o.dataset == Dataset::Digits,
        );
        match &result {
            Ok(r) => println!(
                "\ndemo: target={} host_acc={:.4} device_acc={:.4} identical={}/{} instr_per_inference={:.0} flash={} ram={} stack={}",
                target.name,
                num(&r.report, "host_accuracy"),
                num(&r.report, "device_accuracy"),
                num(&r.report, "identical"),
                num(&r.report, "samples"),
                num(&r.report, "instructions_mean"),
                r.flash,
                r.ram,
                num(&r.report, "stack_peak_bytes")
            ),
            Err(why) => println!("\ndemo: target={} skipped: {why}", target.name),
        }
        rows.push(Row { target, result });
    }
    if rows.len() > 1 {
        print_table(&rows, name);
    }
    print_mc_tables(&rows);
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| matches!(&r.result, Ok(t) if !t.ok))
        .map(|r| r.target.name)
        .collect();
    if !failed.is_empty() {
        bail!("the evaluation failed on {}", failed.join(", "));
    }
    if rows.iter().all(|r| r.result.is_err()) {
        bail!("the model fits none of the targets");
    }
    Ok(())
}

fn num(report: &serde_json::Value, k: &str) -> f64 {
    report
        .get(k)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(f64::NAN)
}

/// Builds, sizes and evaluates one target. `Err`: the model does not fit (said before building).
fn run_target(
    target: &'static Target,
    model: &Path,
    run_dir: &Path,
    device_s: &str,
    data_s: Option<&str>,
    limit: Option<usize>,
    monte_carlo: bool,
) -> std::result::Result<TargetResult, String> {
    microdnn_targets::fit::check_file(target, model).map_err(|e| e.to_string())?;
    let fail = |e: anyhow::Error| TargetResult {
        report: serde_json::json!({ "error": format!("{e:#}") }),
        flash: 0,
        ram: 0,
        ok: false,
        mc: Vec::new(),
    };
    let elf = match firmware::build(
        target,
        &firmware::Build {
            bins: &["eval"],
            model: Some(model),
            quiet: false,
        },
    ) {
        Ok(mut e) => e.remove(0),
        Err(e) => return Ok(fail(anyhow::anyhow!(e))),
    };
    if let Err(e) = crate::panic_check::check([elf.as_path()]) {
        return Ok(fail(e));
    }
    let fp = match elf_size::footprint(&elf) {
        Ok(f) => f,
        Err(e) => return Ok(fail(e)),
    };
    println!(
        "firmware {}: flash {} bytes (.text+.rodata, model included), static RAM {} bytes (.data+.bss)",
        elf.display(),
        fp.flash_bytes(),
        fp.static_ram_bytes()
    );
    println!(
        "\n== 4/4 evaluate on the device (QEMU {}, {}) over the serial link ==",
        target.qemu_machine().map(|m| m.0).unwrap_or("?"),
        target.core
    );
    let eval = Eval {
        target,
        run_dir,
        device_s,
        elf: &elf,
        data_s,
    };
    let (report, mut ok) = eval.run("eval", limit, &[]);
    let stack = report
        .get("stack_peak_bytes")
        .and_then(serde_json::Value::as_u64);
    match stack {
        Some(s) if s <= microdnn_targets::fit::EVAL_STACK_BYTES => {}
        other => {
            println!(
                "xtask: {}: the device's peak stack {other:?} is not within the bound of {} bytes (microdnn_targets::fit::EVAL_STACK_BYTES)",
                target.name,
                microdnn_targets::fit::EVAL_STACK_BYTES
            );
            ok = false;
        }
    }
    let mut mc = Vec::new();
    if monte_carlo {
        let passes: &[u16] = if target.name == "cortex-m4f" {
            &MC_COST_PASSES
        } else {
            &[MC_PASSES]
        };
        for &k in passes {
            let k_s = k.to_string();
            let (r, good) = eval.run(
                &format!("eval-mc{k}"),
                Some(MC_LIMIT),
                &["--mc", &k_s, "--seed", "1"],
            );
            ok &= good;
            mc.push((k, r));
        }
    }
    Ok(TargetResult {
        report,
        flash: fp.flash_bytes(),
        ram: fp.static_ram_bytes(),
        ok,
        mc,
    })
}

/// `microdnn eval` on one target's firmware.
struct Eval<'a> {
    target: &'static Target,
    run_dir: &'a Path,
    device_s: &'a str,
    elf: &'a Path,
    data_s: Option<&'a str>,
}

impl Eval<'_> {
    /// Runs `microdnn eval` with `extra` arguments; returns its JSON report (written to
    /// `RUN_DIR/NAME-TARGET.json`) and whether it succeeded.
    fn run(&self, name: &str, limit: Option<usize>, extra: &[&str]) -> (serde_json::Value, bool) {
        let report_path = self
            .run_dir
            .join(format!("{name}-{}.json", self.target.name));
        let _ = std::fs::remove_file(&report_path);
        let elf_s = path_arg(self.elf);
        let report_s = path_arg(&report_path);
        let mut args = vec![
            "eval",
            "--device",
            "qemu",
            "--target",
            self.target.name,
            "--model",
            self.device_s,
            "--firmware",
            &elf_s,
            "--json",
            &report_s,
        ];
        if let Some(d) = self.data_s {
            args.extend(["--data", d]);
        }
        let limit_s = limit.map(|l| l.to_string());
        if let Some(l) = &limit_s {
            args.extend(["--limit", l]);
        }
        args.extend(extra);
        let result = microdnn(&args);
        let report: serde_json::Value = std::fs::read_to_string(&report_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        if let Err(e) = &result {
            println!("xtask: {name} on {}: {e:#}", self.target.name);
        }
        (report, result.is_ok())
    }
}

/// The Monte-Carlo tables: every target at [`MC_PASSES`], and the Cortex-M4F's cost per K.
fn print_mc_tables(rows: &[Row]) {
    let with_mc: Vec<(&Row, &TargetResult)> = rows
        .iter()
        .filter_map(|r| r.result.as_ref().ok().map(|t| (r, t)))
        .filter(|(_, t)| !t.mc.is_empty())
        .collect();
    if with_mc.is_empty() {
        return;
    }
    println!("\nMonte-Carlo dropout on the device (`microdnn eval --mc {MC_PASSES}`, first {MC_LIMIT} test images; summaries compared bit for bit with the host's):\n");
    println!("| target | passes | identical | instructions / request | per pass | one inference |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (r, t) in &with_mc {
        for (k, mc) in t.mc.iter().filter(|(k, _)| *k == MC_PASSES) {
            let per_request = num(mc, "instructions_mean");
            println!(
                "| {} | {k} | {}/{} | {per_request:.0} | {:.0} | {:.0} |",
                r.target.name,
                num(mc, "identical"),
                num(mc, "samples"),
                per_request / f64::from(*k),
                num(&t.report, "instructions_mean")
            );
        }
    }
    for (r, t) in with_mc.iter().filter(|(_, t)| t.mc.len() > 1) {
        let one = num(&t.report, "instructions_mean");
        println!(
            "\nMonte-Carlo cost on {} ({}), per request of K passes (QEMU -icount; one plain inference: {one:.0}):\n",
            r.target.name, r.target.core
        );
        println!("| K | instructions / request | per pass | vs one inference | identical |");
        println!("|---:|---:|---:|---:|---:|");
        for (k, mc) in &t.mc {
            let per_request = num(mc, "instructions_mean");
            println!(
                "| {k} | {per_request:.0} | {:.0} | {:.2}x | {}/{} |",
                per_request / f64::from(*k),
                per_request / one,
                num(mc, "identical"),
                num(mc, "samples")
            );
        }
    }
}

/// The README's table: one row per target.
fn print_table(rows: &[Row], dataset: &str) {
    println!("\n{dataset} model on every target (`eval` firmware with the model; executed instructions, QEMU -icount):\n");
    println!("| target | core | board (QEMU machine) | flash | RAM | peak stack | instructions / inference | per MAC | identical |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let t = r.target;
        let machine = t.qemu_machine().map(|m| m.0).unwrap_or("-");
        match &r.result {
            Ok(res) => {
                let macs = num(&res.report, "macs");
                let ipi = num(&res.report, "instructions_mean");
                println!(
                    "| {} | {} | {} (`{machine}`) | {} | {} | {} | {:.0} | {:.2} | {}/{} |",
                    t.name,
                    t.core,
                    t.board_name,
                    res.flash,
                    res.ram,
                    num(&res.report, "stack_peak_bytes"),
                    ipi,
                    ipi / macs,
                    num(&res.report, "identical"),
                    num(&res.report, "samples")
                );
            }
            Err(why) => println!(
                "| {} | {} | {} (`{machine}`) | - | - | - | - | - | does not fit: {why} |",
                t.name, t.core, t.board_name
            ),
        }
    }
}

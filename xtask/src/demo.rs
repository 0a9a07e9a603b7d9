//! `cargo xtask demo`: the main job, from a dataset to a microcontroller and back.
//!
//! 1. trains a network on the host (`microdnn train`),
//! 2. exports it as a device model (`microdnn export`: batch norm folded, dropout dropped,
//!    weights packed; checked against the trained network),
//! 3. builds the firmware's `eval` program with the model compiled in (`MICRODNN_MODEL`),
//! 4. runs it in QEMU (Cortex-M4F, `mps2-an386`, `-icount`) and streams the whole held-out set
//!    through the emulated UART (`microdnn eval --device qemu`), comparing every output with the
//!    core running the same file on the host,
//! 5. prints a summary whose last line is machine-readable:
//!    `demo: host_acc=… device_acc=… identical=N/N instr_per_inference=… flash=… ram=…`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::{cargo, elf_size, qemu};

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
}

/// Parses `demo` arguments: `[--dataset digits|mnist] [--data-dir PATH] [--limit N]`.
pub fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        dataset: Dataset::Digits,
        data_dir: None,
        limit: None,
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
            other => bail!(
                "unknown option `{other}`\nusage: cargo xtask demo [--dataset digits|mnist] [--data-dir PATH] [--limit N]"
            ),
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

/// Runs the demo.
pub fn run(o: &Options) -> Result<()> {
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
    train.extend(["--out", &run_s]);
    let data_s = o.data_dir.as_deref().map(path_arg);
    if let Some(d) = &data_s {
        train.extend(["--data", d]);
    }
    microdnn(&train)?;

    println!("\n== 2/4 export ==");
    microdnn(&["export", &run_s, "--out", &device_s])?;

    println!("\n== 3/4 build the firmware with the model ==");
    let model = device_dir.join("model.udnn");
    let mut build = cargo::cargo_in_firmware();
    build
        .args(["build", "--release", "--bin", "eval"])
        .env("MICRODNN_MODEL", &model);
    cargo::run_status(&mut build)?;
    let elf = cargo::firmware_elf("eval");
    let fp = elf_size::footprint(&elf)?;
    println!(
        "firmware {}: flash {} bytes (.text+.rodata, model included), static RAM {} bytes (.data+.bss)",
        elf.display(),
        fp.flash_bytes(),
        fp.static_ram_bytes()
    );

    println!(
        "\n== 4/4 evaluate on the device (QEMU mps2-an386, Cortex-M4F) over the serial link =="
    );
    let report_path = run_dir.join("eval.json");
    let _ = std::fs::remove_file(&report_path);
    let elf_s = path_arg(&elf);
    let report_s = path_arg(&report_path);
    let mut eval = vec![
        "eval",
        "--device",
        "qemu",
        "--model",
        &device_s,
        "--firmware",
        &elf_s,
        "--json",
        &report_s,
    ];
    if let Some(d) = &data_s {
        eval.extend(["--data", d]);
    }
    let limit_s = o.limit.map(|l| l.to_string());
    if let Some(l) = &limit_s {
        eval.extend(["--limit", l]);
    }
    let eval_result = microdnn(&eval);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).with_context(|| {
            format!("the evaluation wrote no report ({})", report_path.display())
        })?)?;
    let num = |k: &str| {
        report
            .get(k)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(f64::NAN)
    };
    println!(
        "\ndemo: host_acc={:.4} device_acc={:.4} identical={}/{} instr_per_inference={:.0} flash={} ram={}",
        num("host_accuracy"),
        num("device_accuracy"),
        num("identical"),
        num("samples"),
        num("instructions_mean"),
        fp.flash_bytes(),
        fp.static_ram_bytes()
    );
    eval_result
}

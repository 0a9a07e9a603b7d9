//! `cargo xtask lab [--quick|--full] [--report-only] [--resume] [--out DIR] [--mnist DIR]
//! [--threads N] [NAME...]`: the lecture's experiments (`microdnn lab`), with the Cortex-M4F half
//! of `activation-cost` measured first. `--full` is the default size; `--report-only` rebuilds the
//! `regularizers` table from its finished runs without training; `--resume` continues an
//! interrupted quick `regularizers` (the full one always continues).
//!
//! 1. Builds the firmware's `activations` program twice (core math back end `libm`, and
//!    `--features micromath` in a target directory of its own), runs both under QEMU
//!    `-icount shift=3,sleep=off` and writes the executed instructions per element to
//!    `DIR/activation-cost/mcu.json`.
//! 2. Runs `microdnn lab NAME --out DIR [--quick]` for each experiment (default: all of them),
//!    which reads that file into its report. Fails if any experiment errors.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::{cargo, qemu};

/// The experiments of `microdnn lab`, in order.
const EXPERIMENTS: [&str; 14] = [
    "regularizers",
    "dead-relu",
    "vanishing",
    "batchnorm",
    "l2-boundary",
    "parity",
    "early-stopping",
    "activation-cost",
    "relu-init",
    "exploding",
    "l1-sparsity",
    "classic-vs-inverted",
    "mc-ood",
    "dropout-size",
];

#[derive(Debug)]
struct Options {
    quick: bool,
    out: PathBuf,
    names: Vec<String>,
    /// Flags passed to `microdnn lab` as they are (`--full`, `--report-only`, `--resume`,
    /// `--mnist DIR`, `--threads N`).
    pass: Vec<String>,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        quick: false,
        out: cargo::root().join("target").join("lab"),
        names: Vec::new(),
        pass: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--full" | "--report-only" | "--resume" => o.pass.push(a.clone()),
            "--mnist" | "--threads" => {
                let v = it.next().with_context(|| format!("{a} needs a value"))?;
                o.pass.extend([a.clone(), v.clone()]);
            }
            "--out" => {
                let dir = PathBuf::from(it.next().context("--out needs a folder")?);
                o.out = if dir.is_absolute() {
                    dir
                } else {
                    std::env::current_dir()?.join(dir)
                };
            }
            n if EXPERIMENTS.contains(&n) => o.names.push(n.to_owned()),
            other => bail!(
                "usage: cargo xtask lab [--quick|--full] [--report-only] [--resume] [--out DIR] \
                 [--mnist DIR] [--threads N] [{}]... (unknown `{other}`)",
                EXPERIMENTS.join("|")
            ),
        }
    }
    if o.names.is_empty() {
        o.names = EXPERIMENTS.iter().map(|s| s.to_string()).collect();
    }
    Ok(o)
}

/// Instructions per element of each activation for one build of the `activations` program.
fn measure_mcu(micromath: bool) -> Result<BTreeMap<String, f64>> {
    let target = microdnn_targets::find(microdnn_targets::DEFAULT_TARGET)?;
    let mut cmd = cargo::cargo_in_firmware(target, "build");
    cmd.args(["--release", "--bin", "activations"]);
    let elf = if micromath {
        // A target directory of its own: the feature changes the core's build for every binary.
        let dir = microdnn_targets::firmware::target_dir(target).join("micromath");
        cmd.env("CARGO_TARGET_DIR", &dir)
            .args(["--features", "micromath"]);
        dir.join(target.triple).join("release").join("activations")
    } else {
        microdnn_targets::firmware::elf(target, "activations")
    };
    println!("xtask: $ {}", cargo::describe(&cmd));
    cargo::run_status(&mut cmd)?;
    let run = qemu::run(
        target,
        &elf,
        &qemu::RunOptions {
            icount: true,
            timeout: Duration::from_secs(120),
        },
    )?;
    if let Err(e) = run.check() {
        run.print_log();
        return Err(e);
    }
    let mut out = BTreeMap::new();
    for line in &run.log {
        let Some(rest) = line.message.strip_prefix("ACT ") else {
            continue;
        };
        let f: BTreeMap<&str, &str> = rest
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .collect();
        let num = |k: &str| -> Result<f64> {
            f.get(k)
                .with_context(|| format!("`ACT` line without `{k}`: {rest}"))?
                .parse::<f64>()
                .with_context(|| format!("`ACT` line: `{k}` is not a number"))
        };
        let per = (num("instructions")? - num("copy_instructions")?) / num("elements")?;
        out.insert(
            f.get("name")
                .context("`ACT` line without a name")?
                .to_string(),
            (per * 100.0).round() / 100.0,
        );
    }
    if out.len() != 4 {
        run.print_log();
        bail!(
            "the activations firmware logged {} `ACT` lines, not 4",
            out.len()
        );
    }
    Ok(out)
}

pub fn run(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    let t = Instant::now();
    if o.names.iter().any(|n| n == "activation-cost") {
        qemu::ensure_installed()?;
        let libm = measure_mcu(false)?;
        let micromath = measure_mcu(true)?;
        for (name, m) in [("libm", &libm), ("micromath", &micromath)] {
            let relu = m["relu"].max(1e-9);
            let line: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={v} ({:.1}x relu)", v / relu))
                .collect();
            println!(
                "xtask: Cortex-M4F instructions/element, {name}: {}",
                line.join(", ")
            );
        }
        let dir = o.out.join("activation-cost");
        std::fs::create_dir_all(&dir)?;
        let v = json!({"elements": 256, "libm": libm, "micromath": micromath,
                       "unit": "executed instructions per element (QEMU -icount), copy subtracted"});
        std::fs::write(dir.join("mcu.json"), serde_json::to_string_pretty(&v)?)?;
    }
    for name in &o.names {
        let mut cmd = cargo::cargo_in_root();
        cmd.args([
            "run",
            "--release",
            "-p",
            "microdnn-host",
            "--",
            "lab",
            name,
            "--out",
        ])
        .arg(&o.out);
        if o.quick {
            cmd.arg("--quick");
        }
        cmd.args(&o.pass);
        println!("xtask: $ {}", cargo::describe(&cmd));
        cargo::run_status(&mut cmd).with_context(|| format!("lab experiment {name}"))?;
    }
    println!(
        "xtask: lab: {} experiment(s) in {:.0} s; reports in {}",
        o.names.len(),
        t.elapsed().as_secs_f64(),
        o.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_regulariser_flags_reach_microdnn_lab() {
        let o = parse(&args(&[
            "--full",
            "--mnist",
            "/data/mnist",
            "--resume",
            "regularizers",
            "--threads",
            "2",
        ]))
        .unwrap();
        assert_eq!(o.names, ["regularizers"]);
        assert!(!o.quick);
        assert_eq!(
            o.pass,
            [
                "--full",
                "--mnist",
                "/data/mnist",
                "--resume",
                "--threads",
                "2"
            ]
        );
        let e = parse(&args(&["regularizers", "--mnist"])).unwrap_err();
        assert!(e.to_string().contains("--mnist needs a value"), "{e}");
        let e = parse(&args(&["--epochs", "3"])).unwrap_err();
        assert!(e.to_string().contains("unknown `--epochs`"), "{e}");
        assert_eq!(parse(&[]).unwrap().names.len(), EXPERIMENTS.len());
    }
}

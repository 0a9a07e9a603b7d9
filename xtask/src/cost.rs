//! `cargo xtask cost-fixtures [--target NAME | --all]`: measures the firmware's `cost` program
//! (22 f32 networks, per layer and whole) under QEMU `-icount` on each target, commits the
//! measurements to `targets/tests/fixtures/cost/TARGET.json`, fits the cost model's coefficients
//! of every target that has a fixture (`microdnn_targets::cost::fit` on networks 1 to 16, their
//! layers and the whole networks) and writes them to `targets/src/cost_table.rs`.
//! Prints each network's prediction against its measurement. `--refit` only fits the committed
//! fixtures again.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use microdnn::Activation;
use microdnn_targets::cost;
use microdnn_targets::Target;
use serde_json::json;

use crate::{cargo, qemu, setup};

/// Networks `1..=FIT_NETWORKS` are fitted; the others are held out.
pub const FIT_NETWORKS: u64 = 16;

fn activation(name: &str) -> Result<Activation> {
    Ok(match name {
        "identity" => Activation::Identity,
        "relu" => Activation::Relu,
        "leaky_relu" => Activation::LeakyRelu { slope: 0.01 },
        "sigmoid" => Activation::Sigmoid,
        "tanh" => Activation::Tanh,
        "softmax" => Activation::Softmax,
        other => bail!("unknown activation `{other}` in a BENCH cost line"),
    })
}

fn field<'a>(fields: &'a BTreeMap<&str, &str>, key: &str) -> Result<&'a str> {
    fields
        .get(key)
        .copied()
        .ok_or_else(|| anyhow!("a BENCH cost line has no `{key}`"))
}

fn num(fields: &BTreeMap<&str, &str>, key: &str) -> Result<u64> {
    field(fields, key)?
        .parse()
        .with_context(|| format!("`{key}` is not a number"))
}

/// Runs `cost` on `target`; returns its fixture (`layers`, `networks`, per-sample averages).
fn measure(target: &'static Target) -> Result<serde_json::Value> {
    let elf = cargo::build_firmware(target, &["cost"])?.remove(0);
    let run = qemu::run(
        target,
        &elf,
        &qemu::RunOptions {
            icount: true,
            timeout: Duration::from_secs(600),
        },
    )?;
    if let Err(e) = run.check() {
        run.print_log();
        return Err(e);
    }
    let mut layers = Vec::new();
    let mut networks = Vec::new();
    for line in &run.log {
        let Some(rest) = line.message.strip_prefix("BENCH ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let kind = words.next().unwrap_or_default();
        let fields: BTreeMap<&str, &str> = words.filter_map(|w| w.split_once('=')).collect();
        match kind {
            "cost_layer" => {
                let samples = num(&fields, "samples")?.max(1);
                layers.push(json!({
                    "net": num(&fields, "net")?,
                    "layer": num(&fields, "layer")?,
                    "inputs": num(&fields, "inputs")?,
                    "outputs": num(&fields, "outputs")?,
                    "activation": field(&fields, "act")?,
                    "instructions": num(&fields, "instructions")? as f64 / samples as f64,
                }))
            }
            "cost_network" => {
                let samples = num(&fields, "samples")?.max(1);
                networks.push(json!({
                    "net": num(&fields, "net")?,
                    "instructions": num(&fields, "instructions")? as f64 / samples as f64,
                }))
            }
            _ => {}
        }
    }
    if networks.is_empty() {
        bail!("the cost firmware logged no `BENCH cost_network` line");
    }
    Ok(json!({
        "target": target.name,
        "measure": "executed instructions per forward pass (mean over the samples), QEMU -icount shift=3,sleep=off, firmware/src/bin/cost.rs",
        "fit_networks": format!("1..={FIT_NETWORKS}"),
        "layers": layers,
        "networks": networks,
    }))
}

/// A fixture's networks: number, layers and measured instructions.
pub struct Measured {
    pub net: u64,
    pub layers: Vec<(usize, usize, Activation)>,
    pub layer_instructions: Vec<f64>,
    pub instructions: f64,
}

/// Reads a fixture written by [`measure`].
pub fn read_fixture(v: &serde_json::Value) -> Result<Vec<Measured>> {
    let mut out: BTreeMap<u64, Measured> = BTreeMap::new();
    for n in v["networks"].as_array().into_iter().flatten() {
        let net = n["net"].as_u64().context("network number")?;
        out.insert(
            net,
            Measured {
                net,
                layers: Vec::new(),
                layer_instructions: Vec::new(),
                instructions: n["instructions"].as_f64().context("instructions")?,
            },
        );
    }
    for l in v["layers"].as_array().into_iter().flatten() {
        let net = l["net"].as_u64().context("layer's network")?;
        let m = out
            .get_mut(&net)
            .ok_or_else(|| anyhow!("a layer of network {net}, which has no total"))?;
        m.layers.push((
            l["inputs"].as_u64().context("inputs")? as usize,
            l["outputs"].as_u64().context("outputs")? as usize,
            activation(l["activation"].as_str().context("activation")?)?,
        ));
        m.layer_instructions
            .push(l["instructions"].as_f64().context("instructions")?);
    }
    Ok(out.into_values().collect())
}

/// Fits one target's coefficients by least squares on the fitted networks: each layer measured
/// alone (no per-network constant) and each whole network (its layers' features summed, plus
/// the per-network constant).
pub fn fit(measured: &[Measured]) -> Result<[f64; cost::N]> {
    let mut rows: Vec<([f64; cost::N], f64)> = Vec::new();
    for m in measured.iter().filter(|m| m.net <= FIT_NETWORKS) {
        for (&(i, o, a), &y) in m.layers.iter().zip(&m.layer_instructions) {
            rows.push((cost::features(i, o, a), y));
        }
        rows.push((cost::network_features(&m.layers), m.instructions));
    }
    cost::fit(&rows).ok_or_else(|| anyhow!("the cost model's system is singular"))
}

/// `cargo xtask cost-fixtures [--target NAME | --all]`.
pub fn run(args: &[String]) -> Result<()> {
    let targets: Vec<&'static Target> = match args.iter().map(String::as_str).collect::<Vec<_>>()[..]
    {
        [] | ["--all"] => microdnn_targets::qemu_targets().collect(),
        ["--target", name] => vec![microdnn_targets::find(name)?],
        // Fit the committed fixtures again, measuring nothing.
        ["--refit"] => Vec::new(),
        _ => bail!("usage: cargo xtask cost-fixtures [--target NAME | --all | --refit]"),
    };
    setup::rust_targets(targets.iter().copied())?;
    qemu::ensure_installed()?;
    let dir = cargo::root().join("targets/tests/fixtures/cost");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for t in &targets {
        println!("\n== cost networks on {} ==", t.name);
        let v = measure(t)?;
        let path = dir.join(format!("{}.json", t.name));
        std::fs::write(&path, serde_json::to_string_pretty(&v)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    // Fit every target that has a fixture (in the board table's order).
    let mut table = String::from(
        "// Generated by `cargo xtask cost-fixtures` from targets/tests/fixtures/cost/*.json: do \
         not edit.\n/// Fitted coefficients per target, in the order of [`FEATURES`].\n\
         pub const COSTS: &[(&str, [f64; N])] = &[\n",
    );
    for t in microdnn_targets::qemu_targets() {
        let path = dir.join(format!("{}.json", t.name));
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let measured = read_fixture(&serde_json::from_str(&text)?)?;
        let c = fit(&measured)?;
        writeln!(table, "    (\n        {:?},\n        [", t.name)?;
        for v in c {
            writeln!(table, "            {v:?},")?;
        }
        writeln!(table, "        ],\n    ),")?;
        println!(
            "\n{}: predicted vs measured instructions per forward pass",
            t.name
        );
        for m in &measured {
            let f = cost::network_features(&m.layers);
            let p: f64 = f.iter().zip(&c).map(|(f, c)| f * c).sum();
            println!(
                "  net {:>2} {:<40} measured {:>10.0} predicted {:>10.0} ({:+.2}%){}",
                m.net,
                m.layers
                    .iter()
                    .map(|(i, o, a)| format!("{i}x{o} {}", a.name()))
                    .collect::<Vec<_>>()
                    .join(", "),
                m.instructions,
                p,
                100.0 * (p - m.instructions) / m.instructions,
                if m.net > FIT_NETWORKS {
                    " (held out)"
                } else {
                    ""
                }
            );
        }
    }
    table.push_str("];\n");
    let out = cargo::root().join("targets/src/cost_table.rs");
    std::fs::write(&out, table).with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(())
}

//! `cargo xtask bench-mcu`: executed instructions, flash, RAM and stack of the firmware.
//!
//! The `bench` firmware runs under `-icount shift=3,sleep=off` and logs one line per figure in
//! the form `BENCH <kind> key=value ...`:
//!
//! ```text
//! BENCH layer name=fc1 inputs=784 outputs=128 macs=100352 instructions=... reference_instructions=...
//! BENCH network macs=109184 instructions=... reference_instructions=... oracle_instructions=...
//! BENCH check identical_outputs=10 of=10
//! BENCH stack peak_bytes=... forward_bytes=... capacity_bytes=...
//! BENCH calibration overhead_instructions=...
//! ```
//!
//! This module parses them, adds the ELF section sizes of the `bench` and `demo` images, prints a
//! table and writes `target/bench/mcu.json` under the repository root.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;

use crate::{cargo, elf_size, qemu};

/// Whole-network target in executed instructions per MAC (CMSIS-DSP's f32 kernel does 2.79).
const TARGET_INSTRUCTIONS_PER_MAC: f64 = 2.5;

/// One `BENCH` line: its kind and its `key=value` fields.
struct Record {
    kind: String,
    fields: BTreeMap<String, String>,
}

impl Record {
    fn parse(line: &str) -> Option<Record> {
        let mut words = line.strip_prefix("BENCH ")?.split_whitespace();
        let kind = words.next()?.to_owned();
        let fields = words
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Some(Record { kind, fields })
    }

    fn str(&self, key: &str) -> Result<&str> {
        self.fields
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("`BENCH {}` line has no `{key}`", self.kind))
    }

    fn u64(&self, key: &str) -> Result<u64> {
        self.str(key)?
            .parse()
            .with_context(|| format!("`BENCH {}`: `{key}` is not a number", self.kind))
    }
}

struct Layer {
    name: String,
    inputs: u64,
    outputs: u64,
    macs: u64,
    instructions: u64,
    reference_instructions: u64,
}

fn per_mac(instructions: u64, macs: u64) -> f64 {
    instructions as f64 / macs.max(1) as f64
}

/// Rounds to 3 decimals for the JSON file.
fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub fn run() -> Result<()> {
    qemu::ensure_installed()?;
    let demo_elf = cargo::build_firmware("demo")?;
    let bench_elf = cargo::build_firmware("bench")?;
    let run = qemu::run(
        &bench_elf,
        &qemu::RunOptions {
            icount: true,
            timeout: Duration::from_secs(300),
        },
    )?;
    if let Err(e) = run.check() {
        run.print_log();
        return Err(e);
    }
    let records: Vec<Record> = run
        .log
        .iter()
        .filter_map(|l| Record::parse(&l.message))
        .collect();
    let find = |kind: &str| {
        records
            .iter()
            .find(|r| r.kind == kind)
            .ok_or_else(|| anyhow!("the bench firmware logged no `BENCH {kind}` line"))
    };
    let mut layers = Vec::new();
    for r in records.iter().filter(|r| r.kind == "layer") {
        layers.push(Layer {
            name: r.str("name")?.to_owned(),
            inputs: r.u64("inputs")?,
            outputs: r.u64("outputs")?,
            macs: r.u64("macs")?,
            instructions: r.u64("instructions")?,
            reference_instructions: r.u64("reference_instructions")?,
        });
    }
    if layers.is_empty() {
        bail!("the bench firmware logged no `BENCH layer` line");
    }
    let network = find("network")?;
    let stack = find("stack")?;
    let calibration = find("calibration")?;
    let macs = network.u64("macs")?;
    let instructions = network.u64("instructions")?;
    let reference = network.u64("reference_instructions")?;
    let oracle = network.u64("oracle_instructions")?;
    let check = find("check")?;
    if check.u64("identical_outputs")? != check.u64("of")? {
        bail!("the benchmarked forward pass did not reproduce the host's output bits");
    }
    let peak_stack = stack.u64("peak_bytes")?;
    let forward_stack = stack.u64("forward_bytes")?;
    let demo = elf_size::footprint(&demo_elf)?;
    let bench = elf_size::footprint(&bench_elf)?;

    println!("microdnn on a Cortex-M4F: QEMU mps2-an386, -icount shift=3,sleep=off");
    println!("(executed guest instructions, counted with SysTick; not cycles)\n");
    println!(
        "{:<12} {:>7} {:>12} {:>7} {:>12} {:>7} {:>8}",
        "layer", "MACs", "instructions", "/MAC", "reference", "/MAC", "speed-up"
    );
    let row = |name: &str, macs: u64, fast: u64, slow: u64| {
        println!(
            "{name:<12} {macs:>7} {fast:>12} {:>7.3} {slow:>12} {:>7.3} {:>7.2}x",
            per_mac(fast, macs),
            per_mac(slow, macs),
            slow as f64 / fast.max(1) as f64
        );
    };
    for l in &layers {
        row(
            &format!("{} {}x{}", l.name, l.inputs, l.outputs)[..],
            l.macs,
            l.instructions,
            l.reference_instructions,
        );
    }
    row("network", macs, instructions, reference);
    println!(
        "(per layer: dense + activation; network: one whole forward pass; reference: the naive"
    );
    println!(" loop `kernel::dense_reference` on row-major copies of the same weights, same run)");
    println!(
        "packed-layout oracle `Dense::forward_reference`, whole network: {oracle} instructions ({:.3}/MAC)\n",
        per_mac(oracle, macs)
    );
    let ipm = per_mac(instructions, macs);
    println!(
        "target <= {TARGET_INSTRUCTIONS_PER_MAC} instructions/MAC: {} ({ipm:.3}); CMSIS-DSP f32 2.79, naive 4.28",
        if ipm <= TARGET_INSTRUCTIONS_PER_MAC {
            "met"
        } else {
            "MISSED"
        }
    );
    for (name, fp) in [("demo", demo), ("bench", bench)] {
        println!(
            "{name:<5} ELF: flash {} B (.text {} + .rodata {} + .vector_table {} + .data {}), static RAM {} B (.data + .bss {} + .uninit {})",
            fp.flash_bytes(),
            fp.text,
            fp.rodata,
            fp.vector_table,
            fp.data,
            fp.static_ram_bytes(),
            fp.bss,
            fp.uninit
        );
    }
    println!(
        "peak stack: {peak_stack} B for the whole bench program, {forward_stack} B for one forward pass"
    );
    println!(
        "measurement overhead subtracted: {} instructions",
        calibration.u64("overhead_instructions")?
    );

    let layer_json: Vec<_> = layers
        .iter()
        .map(|l| {
            json!({
                "name": l.name,
                "inputs": l.inputs,
                "outputs": l.outputs,
                "macs": l.macs,
                "instructions": l.instructions,
                "instructions_per_mac": r3(per_mac(l.instructions, l.macs)),
                "reference_instructions": l.reference_instructions,
                "reference_instructions_per_mac": r3(per_mac(l.reference_instructions, l.macs)),
            })
        })
        .collect();
    let report = json!({
        "measure": "executed instructions, QEMU mps2-an386 (Cortex-M4F), -icount shift=3,sleep=off, SysTick",
        "network": layers.iter().map(|l| format!("{}x{}", l.inputs, l.outputs)).collect::<Vec<_>>(),
        "macs_per_inference": macs,
        "instructions_per_inference": instructions,
        "instructions_per_mac": r3(ipm),
        "target_instructions_per_mac": TARGET_INSTRUCTIONS_PER_MAC,
        "meets_target": ipm <= TARGET_INSTRUCTIONS_PER_MAC,
        "flash_bytes": demo.flash_bytes(),
        "static_ram_bytes": demo.static_ram_bytes(),
        "peak_stack_bytes": peak_stack,
        "forward_stack_bytes": forward_stack,
        "layers": layer_json,
        "reference": {
            "instructions_per_inference": reference,
            "instructions_per_mac": r3(per_mac(reference, macs)),
            "speedup": r3(reference as f64 / instructions.max(1) as f64),
            "kernel": "microdnn::kernel::dense_reference (naive loop, row-major weights)",
        },
        "packed_oracle": {
            "instructions_per_inference": oracle,
            "instructions_per_mac": r3(per_mac(oracle, macs)),
        },
        "elf": { "demo": demo.to_json(), "bench": bench.to_json() },
        "calibration_overhead_instructions": calibration.u64("overhead_instructions")?,
    });
    let dir = cargo::root().join("target").join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("mcu.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

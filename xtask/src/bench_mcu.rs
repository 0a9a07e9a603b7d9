//! `cargo xtask bench-mcu [--target NAME | --all]`: executed instructions, flash, RAM and stack
//! of the firmware's demo network on each target (default `cortex-m4f`).
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
//! The `bench_int8` program does the same for the int8 twin of the network (`BENCH int8_layer`,
//! `BENCH int8_network`, `BENCH int8_check`), run right after `bench` on the same target; its
//! figures go under `int8` in the target's entry, and into the `--all` table beside f32's.
//!
//! This module parses them, adds the ELF section sizes of the `bench` and `demo` images, prints a
//! table and writes `target/bench/mcu.json` under the repository root: one object per target,
//! keyed by its name (`instructions_per_inference`, `instructions_per_mac`, `flash_bytes`,
//! `static_ram_bytes`, `peak_stack_bytes`, and the details), merged into the file's previous
//! content; the Cortex-M4F's figures also stay at the top level, as before.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;

use microdnn_targets::Target;

use crate::{cargo, elf_size, qemu, setup};

/// Whole-network goal in executed instructions per MAC, per target: Helium's vector lanes on the
/// Cortex-M55; the `VLDM`/`VMLA` loop (`core/src/asm/vfp.rs`) on the other hard-float cores,
/// at most 1.6 (the portable loop did 2.39, CMSIS-DSP's f32 kernel does 2.79); none for the
/// soft-float Cortex-M0/M3 (measured and reported).
fn goal(target: &Target) -> Option<f64> {
    match target.name {
        "cortex-m55" => Some(1.0),
        "cortex-m4f" | "cortex-m7" | "cortex-m33" | "stm32f405" => Some(1.6),
        _ => None,
    }
}

/// The int8 goal in executed instructions per MAC: the DSP extension's `SMLAD` kernel on every
/// core that has it (CMSIS-NN's `arm_fully_connected_s8` does 1.97 on the Cortex-M4F); none for
/// the Cortex-M0/M3, which run the portable kernel (measured and reported).
fn int8_goal(target: &Target) -> Option<f64> {
    match target.name {
        "cortex-m4f" | "cortex-m7" | "cortex-m33" | "cortex-m55" | "stm32f405" => Some(1.4),
        _ => None,
    }
}

/// Whether `per_mac` meets `goal`, compared at the goal's precision (two decimals: the
/// Cortex-M4F's 2.390 meets "no worse than 2.39").
fn meets(per_mac: f64, goal: f64) -> bool {
    (per_mac * 100.0).round() <= (goal * 100.0).round()
}

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

/// `cargo xtask bench-mcu [--target NAME | --all]`.
pub fn run(args: &[String]) -> Result<()> {
    let targets: Vec<&'static Target> = match args.iter().map(String::as_str).collect::<Vec<_>>()[..]
    {
        [] => vec![microdnn_targets::find(microdnn_targets::DEFAULT_TARGET)?],
        ["--all"] => microdnn_targets::qemu_targets().collect(),
        ["--target", name] => vec![microdnn_targets::find(name)?],
        _ => bail!("usage: cargo xtask bench-mcu [--target NAME | --all]"),
    };
    setup::rust_targets(targets.iter().copied())?;
    qemu::ensure_installed()?;
    let dir = cargo::root().join("target").join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("mcu.json");
    let mut report: serde_json::Map<String, serde_json::Value> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let mut summary = Vec::new();
    let mut missed = Vec::new();
    for target in &targets {
        println!(
            "\n== {} ({} on {}) ==",
            target.name, target.core, target.board_name
        );
        let entry = measure(target)?;
        let ipm = entry["instructions_per_mac"].as_f64().unwrap_or(f64::NAN);
        if let Some(g) = goal(target) {
            if !meets(ipm, g) {
                missed.push(format!("{} ({ipm:.3} > {g})", target.name));
            }
        }
        if let (Some(g), Some(ipm8)) = (
            int8_goal(target),
            entry["int8"]["instructions_per_mac"].as_f64(),
        ) {
            if !meets(ipm8, g) {
                missed.push(format!("{} int8 ({ipm8:.3} > {g})", target.name));
            }
        }
        summary.push((*target, entry.clone()));
        if target.name == "cortex-m4f" {
            // The figures every earlier report had at the top level.
            if let serde_json::Value::Object(fields) = &entry {
                for (k, v) in fields {
                    report.insert(k.clone(), v.clone());
                }
            }
        }
        report.insert(target.name.to_owned(), entry);
    }
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&serde_json::Value::Object(report))? + "\n",
    )
    .with_context(|| format!("cannot write {}", path.display()))?;
    if summary.len() > 1 {
        println!("\ndemo network on every target (`bench` firmware; executed instructions, QEMU -icount):\n");
        println!("| target | core | network | flash | static RAM | peak stack | instructions / inference | per MAC | goal | int8 instructions / inference | int8 per MAC | int8 goal | int8 / f32 |");
        println!("|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|---:|");
        for (t, e) in &summary {
            let net = e["network"]
                .as_array()
                .map(|a| {
                    let dims: Vec<String> = a
                        .iter()
                        .filter_map(|d| d.as_str())
                        .map(str::to_owned)
                        .collect();
                    dims.join(", ")
                })
                .unwrap_or_default();
            let int8 = &e["int8"];
            let (i8_ipi, i8_ipm, ratio) = match int8["instructions_per_inference"].as_u64() {
                Some(n) => (
                    n.to_string(),
                    format!(
                        "{:.2}",
                        int8["instructions_per_mac"].as_f64().unwrap_or(f64::NAN)
                    ),
                    format!(
                        "{:.2}",
                        n as f64 / e["instructions_per_inference"].as_f64().unwrap_or(f64::NAN)
                    ),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {:.2} | {} | {i8_ipi} | {i8_ipm} | {} | {ratio} |",
                t.name,
                t.core,
                net,
                e["flash_bytes"],
                e["static_ram_bytes"],
                e["peak_stack_bytes"],
                e["instructions_per_inference"],
                e["instructions_per_mac"].as_f64().unwrap_or(f64::NAN),
                goal(t)
                    .map(|g| format!("<= {g}"))
                    .unwrap_or_else(|| "reported".into()),
                int8_goal(t)
                    .map(|g| format!("<= {g}"))
                    .unwrap_or_else(|| "reported".into()),
            );
        }
    }
    println!("wrote {}", path.display());
    if !missed.is_empty() {
        bail!("instructions per MAC above the goal: {}", missed.join(", "));
    }
    Ok(())
}

/// Builds and runs the `bench` program on one target; returns its `mcu.json` entry.
fn measure(target: &'static Target) -> Result<serde_json::Value> {
    let elfs = cargo::build_firmware(target, &["demo", "bench", "bench_int8", "minimal", "eval"])?;
    let (demo_elf, bench_elf, int8_elf, minimal_elf, eval_elf) =
        (&elfs[0], &elfs[1], &elfs[2], &elfs[3], &elfs[4]);
    let run = qemu::run(
        target,
        bench_elf,
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
    let demo = elf_size::footprint(demo_elf)?;
    let bench = elf_size::footprint(bench_elf)?;
    // The smallest inference program: its flash without the network's parameters.
    let minimal = elf_size::footprint(minimal_elf)?;
    let parameters = elf_size::symbol_bytes(minimal_elf, &["microdnn_firmware::model::data::FC"])?;
    let runtime_code = minimal.flash_bytes().saturating_sub(parameters);
    // The eval program (the link server) with the demo network: its RAM.
    let eval = elf_size::footprint(eval_elf)?;
    let (machine, _) = target.qemu_machine().unwrap_or(("?", "?"));

    println!(
        "microdnn on {} ({}): QEMU {machine}, -icount shift=3,sleep=off",
        target.core, target.name
    );
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
    match goal(target) {
        Some(g) => println!(
            "goal <= {g} instructions/MAC: {} ({ipm:.3}); CMSIS-DSP f32 on the M4F 2.79, naive 4.28",
            if meets(ipm, g) { "met" } else { "MISSED" }
        ),
        None => println!("{ipm:.3} instructions/MAC (soft float: measured and reported)"),
    }
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
        "minimal ELF (inference only: no logging, no link): flash {} B = parameters {parameters} B + runtime_code_bytes {runtime_code} B (vector table {} + code {} + constants {} + .data {}, parameters excluded); goal <= 4096: {}",
        minimal.flash_bytes(),
        minimal.vector_table,
        minimal.text,
        minimal.rodata.saturating_sub(parameters),
        minimal.data,
        if runtime_code <= 4096 { "met" } else { "MISSED" }
    );
    println!(
        "eval  ELF (link server, demo network): flash {} B, static RAM {} B (.data + .bss {} + .uninit {}); plus the stack",
        eval.flash_bytes(),
        eval.static_ram_bytes(),
        eval.data + eval.bss,
        eval.uninit
    );
    println!(
        "peak stack: {peak_stack} B for the whole bench program, {forward_stack} B for one forward pass"
    );
    println!(
        "measurement overhead subtracted: {} instructions",
        calibration.u64("overhead_instructions")?
    );

    let int8_run = qemu::run(
        target,
        int8_elf,
        &qemu::RunOptions {
            icount: true,
            timeout: Duration::from_secs(300),
        },
    )?;
    if let Err(e) = int8_run.check() {
        int8_run.print_log();
        return Err(e);
    }
    let int8_records: Vec<Record> = int8_run
        .log
        .iter()
        .filter_map(|l| Record::parse(&l.message))
        .collect();
    let mut int8 = int8_figures(target, &int8_records, instructions)?;
    if let serde_json::Value::Object(fields) = &mut int8 {
        fields.insert("elf".into(), elf_size::footprint(int8_elf)?.to_json());
    }
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
        "target": target.name,
        "core": target.core,
        "measure": format!("executed instructions, QEMU {machine} ({}), -icount shift=3,sleep=off, SysTick", target.core),
        "network": layers.iter().map(|l| format!("{}x{}", l.inputs, l.outputs)).collect::<Vec<_>>(),
        "macs_per_inference": macs,
        "instructions_per_inference": instructions,
        "instructions_per_mac": r3(ipm),
        "goal_instructions_per_mac": goal(target),
        "meets_goal": goal(target).map(|g| meets(ipm, g)),
        "flash_bytes": demo.flash_bytes(),
        "static_ram_bytes": demo.static_ram_bytes(),
        "peak_stack_bytes": peak_stack,
        "forward_stack_bytes": forward_stack,
        "layers": layer_json,
        // No naive baseline where the board's flash holds no row-major copy of the weights.
        "reference": if reference == 0 { serde_json::Value::Null } else { json!({
            "instructions_per_inference": reference,
            "instructions_per_mac": r3(per_mac(reference, macs)),
            "speedup": r3(reference as f64 / instructions.max(1) as f64),
            "kernel": "microdnn::kernel::dense_reference (naive loop, row-major weights)",
        }) },
        "packed_oracle": {
            "instructions_per_inference": oracle,
            "instructions_per_mac": r3(per_mac(oracle, macs)),
        },
        "elf": { "demo": demo.to_json(), "bench": bench.to_json(), "minimal": minimal.to_json(), "eval": eval.to_json() },
        "runtime_code_bytes": runtime_code,
        "runtime_code_goal_bytes": 4096,
        "minimal_parameter_bytes": parameters,
        "eval_static_ram_bytes": eval.static_ram_bytes(),
        "calibration_overhead_instructions": calibration.u64("overhead_instructions")?,
        "int8": int8,
    });
    Ok(report)
}

/// The int8 twin's figures (`BENCH int8_*` lines), printed and returned as the `int8` object
/// of the target's entry; `null` where the board's flash holds no int8 demo network.
fn int8_figures(
    target: &Target,
    records: &[Record],
    f32_instructions: u64,
) -> Result<serde_json::Value> {
    let Some(network) = records.iter().find(|r| r.kind == "int8_network") else {
        println!("int8: no int8 demo network on this board (its flash holds only the f32 one)\n");
        return Ok(serde_json::Value::Null);
    };
    let check = records
        .iter()
        .find(|r| r.kind == "int8_check")
        .ok_or_else(|| anyhow!("the bench firmware logged no `BENCH int8_check` line"))?;
    if check.u64("identical_outputs")? != check.u64("of")?
        || check.u64("reference_identical_outputs")? != check.u64("of")?
    {
        bail!("the benchmarked int8 forward pass did not reproduce the host's output bytes");
    }
    let macs = network.u64("macs")?;
    let instructions = network.u64("instructions")?;
    let reference = network.u64("reference_instructions")?;
    println!(
        "int8 (the same shapes, TFLite Micro's arithmetic; reference: TFLite Micro's loop `quant::kernel::dense_reference`):"
    );
    println!(
        "{:<12} {:>7} {:>12} {:>7} {:>12} {:>7} {:>8}",
        "layer", "MACs", "instructions", "/MAC", "reference", "/MAC", "speed-up"
    );
    let mut layers = Vec::new();
    for r in records.iter().filter(|r| r.kind == "int8_layer") {
        let (name, i, o) = (r.str("name")?, r.u64("inputs")?, r.u64("outputs")?);
        let (m, fast, slow) = (
            r.u64("macs")?,
            r.u64("instructions")?,
            r.u64("reference_instructions")?,
        );
        println!(
            "{:<12} {m:>7} {fast:>12} {:>7.3} {slow:>12} {:>7.3} {:>7.2}x",
            format!("{name} {i}x{o}"),
            per_mac(fast, m),
            per_mac(slow, m),
            slow as f64 / fast.max(1) as f64
        );
        layers.push(json!({
            "name": name, "inputs": i, "outputs": o, "macs": m,
            "instructions": fast,
            "instructions_per_mac": r3(per_mac(fast, m)),
            "reference_instructions": slow,
            "reference_instructions_per_mac": r3(per_mac(slow, m)),
        }));
    }
    println!(
        "{:<12} {macs:>7} {instructions:>12} {:>7.3} {reference:>12} {:>7.3} {:>7.2}x",
        "network",
        per_mac(instructions, macs),
        per_mac(reference, macs),
        reference as f64 / instructions.max(1) as f64
    );
    let ipm = per_mac(instructions, macs);
    match int8_goal(target) {
        Some(g) => println!(
            "int8 goal <= {g} instructions/MAC: {} ({ipm:.3}); CMSIS-NN arm_fully_connected_s8 on the M4F 1.97; {:.2}x fewer instructions than f32 in this run\n",
            if meets(ipm, g) { "met" } else { "MISSED" },
            f32_instructions as f64 / instructions.max(1) as f64
        ),
        None => println!(
            "int8 {ipm:.3} instructions/MAC (portable kernel: measured and reported); {:.2}x fewer instructions than f32 in this run\n",
            f32_instructions as f64 / instructions.max(1) as f64
        ),
    }
    Ok(json!({
        "instructions_per_inference": instructions,
        "instructions_per_mac": r3(ipm),
        "goal_instructions_per_mac": int8_goal(target),
        "meets_goal": int8_goal(target).map(|g| meets(ipm, g)),
        "f32_over_int8_instructions": r3(f32_instructions as f64 / instructions.max(1) as f64),
        "reference_instructions_per_inference": reference,
        "reference_instructions_per_mac": r3(per_mac(reference, macs)),
        "forward_stack_bytes": network.u64("forward_stack_bytes")?,
        "parameter_flash_bytes": network.u64("flash_weight_bytes")?,
        "kernel": if int8_goal(target).is_some() { "QDense::forward, DSP SMLAD loop (core/src/asm/dsp_int8.rs)" } else { "QDense::forward, portable" },
        "layers": layers,
    }))
}

//! `microdnn export`, `microdnn info` and `microdnn eval`: from a trained network to a device, and
//! back to a comparison of the device's answers with the host's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use microdnn::ModelView;
use microdnn_host::device::{self, EvalReport};
use microdnn_host::export::{self, AlignedModel, Equivalence, OutputActivation, Summary};
use microdnn_host::import::pytorch;
use microdnn_host::model::checkpoint::CheckpointError;
use microdnn_host::model::Model;
use microdnn_host::model::{checkpoint, metrics};
use microdnn_host::train::config::DatasetKind;
use microdnn_host::train::{data_record, scoring_data, test_data, DataRecord};
use microdnn_host::InputTransform;

/// File name of the device model inside an export folder.
pub const MODEL_FILE: &str = "model.udnn";
/// File name of the export summary.
pub const SUMMARY_FILE: &str = "model.json";

#[derive(clap::Args)]
pub struct ExportArgs {
    /// A microdnn checkpoint (file or run folder), or with --arch a PyTorch state dict
    /// (safetensors).
    source: PathBuf,
    /// Output folder (gets model.udnn and model.json).
    #[arg(long)]
    out: PathBuf,
    /// PyTorch architecture: the text `print(model)` shows, or a compact form such as
    /// "Linear(64, 32) ReLU() Linear(32, 10)"; `@FILE` reads it from a file.
    #[arg(long)]
    arch: Option<String>,
    /// Tensor-name prefix of the Sequential in a PyTorch state dict (e.g. "net.").
    #[arg(long, default_value = "")]
    prefix: String,
    /// PyTorch import: input transform x' = x * scale + offset applied on the device.
    #[arg(long, default_value_t = 1.0)]
    input_scale: f32,
    /// PyTorch import: see --input-scale.
    #[arg(long, default_value_t = 0.0)]
    input_offset: f32,
    /// What the last layer outputs.
    #[arg(long, value_enum, default_value_t = OutputActivation::Softmax)]
    output: OutputActivation,
    /// Inputs used to check that the exported file computes what the trained network computes
    /// (1 to 1,000,000).
    #[arg(long, default_value_t = 500, value_parser = check_samples_in_range)]
    check_samples: usize,
}

/// The most inputs `--check-samples` may ask for.
const MAX_CHECK_SAMPLES: usize = 1_000_000;

fn check_samples_in_range(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("{e}"))?;
    if (1..=MAX_CHECK_SAMPLES).contains(&n) {
        Ok(n)
    } else {
        Err(format!("{n} is not in 1..={MAX_CHECK_SAMPLES}"))
    }
}

/// What `export` writes to model.json.
#[derive(Serialize, Deserialize)]
pub struct ExportRecord {
    /// The checkpoint or state dict exported (absolute path).
    pub source: PathBuf,
    /// The same, relative to the export folder (found again when both folders moved together).
    #[serde(default)]
    pub source_relative: Option<PathBuf>,
    /// Whether the source was a microdnn checkpoint (so its run's test split is known).
    pub microdnn_checkpoint: bool,
    /// How to rebuild the run's test split (from the checkpoint): what `eval` scores on.
    #[serde(default)]
    pub data: Option<DataRecord>,
    /// Summary of the device model.
    pub summary: serde_json::Value,
    /// The equivalence check.
    pub equivalence: serde_json::Value,
}

pub fn run_export(a: ExportArgs) -> anyhow::Result<()> {
    let (model, source, is_ckpt, samples) = if let Some(arch) = &a.arch {
        let text = match arch.strip_prefix('@') {
            Some(f) => std::fs::read_to_string(f).with_context(|| format!("reading {f}"))?,
            None => arch.clone(),
        };
        let arch = pytorch::parse_architecture(&text)?;
        let net = pytorch::load_state_dict(&a.source, &arch, &a.prefix)?;
        let f = net.in_features();
        let classes = net.out_features();
        let mut transform = InputTransform::identity(f);
        transform.scale.fill(a.input_scale);
        transform.offset.fill(a.input_offset);
        // No data comes with a state dict: check on inputs whose transformed values span
        // [-3, 3], a generous range for a trained network's inputs.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let samples: Vec<f32> = (0..a.check_samples * f)
            .map(|_| {
                let z: f32 = rng.random_range(-3.0..3.0);
                if a.input_scale != 0.0 {
                    (z - a.input_offset) / a.input_scale
                } else {
                    z
                }
            })
            .collect();
        (
            Model {
                net,
                transform,
                classes,
            },
            a.source.clone(),
            false,
            samples,
        )
    } else {
        let path = checkpoint::resolve_model_path(&a.source);
        let model = checkpoint::load_model(&path).map_err(|e| match e {
            CheckpointError::NotACheckpoint { .. } => anyhow::anyhow!(
                "{e}: to export a PyTorch state dict, pass its architecture with --arch (e.g. \
                 --arch \"Linear(64, 32) ReLU() Linear(32, 10)\", or --arch @FILE with what \
                 print(model) shows)"
            ),
            e => e.into(),
        })?;
        let samples = match test_data(Some(&path), None, None, false) {
            Ok(d) if d.features == model.transform.features() => {
                let n = d.len().min(a.check_samples);
                d.x[..n * d.features].to_vec()
            }
            _ => {
                eprintln!("note: the run's data is not available; checking on random inputs");
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
                (0..a.check_samples * model.transform.features())
                    .map(|_| rng.random_range(0.0..1.0))
                    .collect()
            }
        };
        (model, path, true, samples)
    };
    let lowered = export::lower(&model, a.output)?;
    let bytes = export::encode(&lowered)?;
    let file = AlignedModel::new(&bytes);
    let view = file.view()?;
    let eq = export::check_equivalence(&model, &lowered, &file, &samples)?;
    if eq.max_error_to_bound > 1.0 {
        bail!(
            "the exported model does not compute what the trained network computes: an output \
             differs by {:e}, {:.1}x the bound derived from f32 rounding (please report this)",
            eq.max_abs_error,
            eq.max_error_to_bound
        );
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let model_path = a.out.join(MODEL_FILE);
    export::write_atomic(&model_path, &bytes)?;
    let summary = export::summarize(&view);
    let source = std::fs::canonicalize(&source).unwrap_or(source);
    let record = ExportRecord {
        source_relative: std::fs::canonicalize(&a.out)
            .ok()
            .and_then(|out| relative_to(&source, &out)),
        data: if is_ckpt { data_record(&source)? } else { None },
        source,
        microdnn_checkpoint: is_ckpt,
        summary: serde_json::to_value(&summary)?,
        equivalence: serde_json::to_value(eq)?,
    };
    export::write_atomic(
        &a.out.join(SUMMARY_FILE),
        serde_json::to_string_pretty(&record)?.as_bytes(),
    )?;
    print_summary(&model_path, &summary);
    print_equivalence(&eq);
    Ok(())
}

/// `path` relative to the folder `base` (both absolute): `../run/model.safetensors`.
fn relative_to(path: &Path, base: &Path) -> Option<PathBuf> {
    let (p, b): (Vec<_>, Vec<_>) = (path.components().collect(), base.components().collect());
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if common == 0 {
        return None;
    }
    let mut rel = PathBuf::new();
    for _ in common..b.len() {
        rel.push("..");
    }
    for c in &p[common..] {
        rel.push(c);
    }
    Some(rel)
}

fn print_summary(path: &Path, s: &Summary) {
    println!("{}", path.display());
    println!("  layer  inputs  outputs  activation      dropout(MC)");
    for (i, (inp, out, act, d)) in s.layers.iter().enumerate() {
        println!("  {i:>5}  {inp:>6}  {out:>7}  {act:<14}  {d}");
    }
    println!(
        "  parameters {}  multiply-accumulates {}  flash (file) {} bytes  RAM {} bytes activations + {} bytes input",
        s.params, s.macs, s.file_bytes, s.ram_bytes, s.input_bytes
    );
}

fn print_equivalence(eq: &Equivalence) {
    println!(
        "  folded model vs trained network (exact): {} inputs, max |difference| {:.3e}, {:.1}% of \
         the derived f32 bound, {} class disagreements",
        eq.samples,
        eq.max_abs_error,
        100.0 * eq.max_error_to_bound,
        eq.argmax_disagreements
    );
}

#[derive(clap::Args)]
pub struct InfoArgs {
    /// A device model file (or an export folder holding model.udnn).
    file: PathBuf,
}

/// The device model file of an export folder (or the file given). A training run's folder or
/// checkpoint is an error saying to export it first.
fn model_file(p: &Path) -> anyhow::Result<PathBuf> {
    let path = if p.is_dir() {
        p.join(MODEL_FILE)
    } else {
        p.to_path_buf()
    };
    let checkpoint = if p.is_dir() {
        p.join(checkpoint::MODEL_FILE)
    } else {
        p.to_path_buf()
    };
    if !path.is_file() || path == checkpoint {
        let is_run =
            checkpoint.is_file() && checkpoint.extension().is_some_and(|e| e == "safetensors");
        if is_run {
            bail!(
                "{} is a trained model, not a device model file: export it first with \
                 `microdnn export {} --out DIR`, then give DIR",
                p.display(),
                p.display()
            );
        }
    }
    Ok(path)
}

/// Reads a model file (or an export folder's): its header and declared length are checked
/// before the file is read, and it is read once, straight into aligned memory.
fn read_model(p: &Path) -> anyhow::Result<(PathBuf, AlignedModel)> {
    let path = model_file(p)?;
    let file = AlignedModel::read(&path)?;
    Ok((path, file))
}

pub fn run_info(a: InfoArgs) -> anyhow::Result<()> {
    let (path, file) = read_model(&a.file)?;
    let view = file.view()?;
    print_summary(&path, &export::summarize(&view));
    match view.input_transform() {
        Some((s, o)) => println!(
            "  input transform: x' = x * scale + offset (scale {:.4}..{:.4}, offset {:.4}..{:.4})",
            s.iter().cloned().fold(f32::INFINITY, f32::min),
            s.iter().cloned().fold(f32::NEG_INFINITY, f32::max),
            o.iter().cloned().fold(f32::INFINITY, f32::min),
            o.iter().cloned().fold(f32::NEG_INFINITY, f32::max)
        ),
        None => println!("  input transform: none"),
    }
    println!(
        "  format version {}.{}",
        microdnn::model::VERSION_MAJOR,
        view.version_minor()
    );
    print_device_needs(&view, file.bytes().len());
    Ok(())
}

/// What the `eval` firmware needs for this model on any board: flash, static RAM and the stack
/// bound, with how each is derived.
fn print_device_needs(view: &ModelView<'_>, file_bytes: usize) {
    use microdnn_targets::fit;
    let n = fit::eval_needs(view, file_bytes);
    println!(
        "  on a device (the eval firmware): flash {} bytes (the file + at most {} of program); \
         RAM {} bytes: {} of buffers sized by this model (activations, inputs, outputs, \
         Monte-Carlo vectors, link frames) + at most {} of runtime statics + a stack bound of \
         {} bytes",
        n.flash_bytes,
        fit::EVAL_PROGRAM_FLASH,
        n.ram_bytes,
        n.buffer_bytes,
        fit::EVAL_RUNTIME_RAM,
        fit::EVAL_STACK_BYTES
    );
    println!(
        "  stack: the eval program keeps every buffer sized by the model in statics, so its stack \
         is its call chain alone (serving loop, request, forward or Monte-Carlo pass, kernel, \
         activations), the same for any model; {} bytes bounds the peak that stack painting \
         measures on every board (`cargo xtask test` checks it; `microdnn eval` prints this \
         model's peak from the device)",
        fit::EVAL_STACK_BYTES
    );
}

#[derive(clap::Args)]
pub struct DeviceEvalArgs {
    /// `qemu` (the firmware in QEMU, on the board of --target) or a serial port such as
    /// /dev/ttyACM0.
    #[arg(long, default_value = "qemu")]
    device: String,
    /// The board (see microdnn-targets): cortex-m0, cortex-m3, cortex-m4f, cortex-m7,
    /// cortex-m33, cortex-m55, stm32f405 (QEMU), nucleo-f446re (hardware).
    #[arg(long, default_value = microdnn_targets::DEFAULT_TARGET)]
    target: String,
    /// Export folder (or model.udnn).
    #[arg(long)]
    model: PathBuf,
    /// Firmware ELF with this model compiled in (QEMU); default: build firmware/ `eval` for
    /// --target with it.
    #[arg(long)]
    firmware: Option<PathBuf>,
    /// Data set (default: the exported run's).
    #[arg(long, value_enum)]
    dataset: Option<DatasetKind>,
    /// Data file or folder (default: the exported run's).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Evaluate at most this many examples.
    #[arg(long)]
    limit: Option<usize>,
    /// Serial baud rate (real boards).
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Monte-Carlo dropout: K stochastic passes per example on the device (1 to 1024), compared
    /// bit for bit with the same passes on the host; reports the class of the mean
    /// probabilities, the entropies and the instructions per request.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u16).range(1..=microdnn::link::MAX_MC_PASSES as i64))]
    mc: Option<u16>,
    /// Seed of the Monte-Carlo dropout masks (example i uses seed + i).
    #[arg(long, default_value_t = 0, requires = "mc")]
    seed: u64,
}

/// Builds the firmware's `eval` program for `target` with `model` compiled in; returns the ELF.
/// The model must fit the board: checked before building (`microdnn_targets::fit`).
pub fn build_eval_firmware(
    target: &microdnn_targets::Target,
    model: &Path,
) -> anyhow::Result<PathBuf> {
    microdnn_targets::fit::check_file(target, model).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut elfs = microdnn_targets::firmware::build(
        target,
        &microdnn_targets::firmware::Build {
            bins: &["eval"],
            model: Some(model),
            quiet: true,
        },
    )
    .map_err(anyhow::Error::msg)?;
    Ok(elfs.remove(0))
}

pub fn run_eval(a: DeviceEvalArgs) -> anyhow::Result<()> {
    let target = microdnn_targets::find(&a.target)?;
    let (path, file) = read_model(&a.model)?;
    let view = file.view()?;
    if a.device == "qemu" && target.qemu_machine().is_none() {
        bail!(
            "target `{}` ({}) runs on hardware only: flash it (`cargo xtask run eval --target {}`) \
             and give its serial port, e.g. --device /dev/ttyACM0",
            target.name,
            target.board_name,
            target.name
        );
    }
    if a.device == "qemu" && a.firmware.is_none() {
        // Before anything is loaded or built: a model too large for the board is refused here.
        let needs =
            microdnn_targets::fit::check_file(target, &path).map_err(|e| anyhow::anyhow!("{e}"))?;
        let memory = target.memory().map_err(anyhow::Error::msg)?;
        println!(
            "{}: the model needs about {} of {} bytes of flash and {} of {} bytes of RAM",
            target.name, needs.flash_bytes, memory.flash_bytes, needs.ram_bytes, memory.ram_bytes
        );
    }
    let export_dir = path.parent().unwrap_or(Path::new("."));
    let record: Option<ExportRecord> = std::fs::read_to_string(export_dir.join(SUMMARY_FILE))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let run_data = record.as_ref().and_then(|r| r.data.as_ref());
    let scoring = scoring_data(run_data, a.dataset, a.data.clone(), run_data.is_none())
        .with_context(|| format!("choosing the data to evaluate {} on", path.display()))?;
    println!("evaluating on {}", scoring.what);
    let data = scoring.data;
    if data.features != view.inputs() {
        bail!(
            "the data has {} inputs but the model takes {}",
            data.features,
            view.inputs()
        );
    }
    let n = a.limit.unwrap_or(usize::MAX).min(data.len());
    let x = &data.x[..n * data.features];
    let y = &data.y[..n];
    let nonfinite = nonfinite_outputs(&view, x)?;
    if nonfinite > 0 {
        bail!(
            "{nonfinite} of {n} examples give NaN or infinite outputs on the host already: the \
             model file computes nothing meaningful on this data (check the data and the input \
             transform)"
        );
    }
    let trainer_accuracy = record
        .as_ref()
        .filter(|r| r.microdnn_checkpoint)
        .and_then(|r| {
            let found = [
                Some(r.source.clone()),
                r.source_relative.as_ref().map(|p| export_dir.join(p)),
            ]
            .into_iter()
            .flatten()
            .find_map(|c| checkpoint::load_model(&c).ok());
            if found.is_none() {
                eprintln!(
                    "note: the exported checkpoint {} is not found: no trainer accuracy",
                    r.source.display()
                );
            }
            found.map(|m| {
                let mut d = data.clone();
                d.x.truncate(n * d.features);
                d.y.truncate(n);
                metrics::evaluate(&m, &d).accuracy
            })
        });

    let bar = indicatif::ProgressBar::new(n as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} {bar:40} {pos}/{len} {per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let answer_timeout = Duration::from_secs(30);
    let (outcome, info) = if a.device == "qemu" {
        let elf = match &a.firmware {
            Some(e) => e.clone(),
            None => {
                println!(
                    "building the eval firmware for {} with this model (the first build of a \
                     target takes up to a minute)...",
                    target.name
                );
                build_eval_firmware(target, &path)?
            }
        };
        let per_example = 1 + u64::from(a.mc.unwrap_or(0)) / 4;
        let mut q =
            device::Qemu::start(target, &elf, 600 + n as u64 * per_example, answer_timeout)?;
        bar.set_prefix(format!(
            "device ({}, QEMU {})",
            target.name,
            target.qemu_machine().map(|m| m.0).unwrap_or("?")
        ));
        evaluate_on(&mut q.link, &view, x, y, &a, &bar)?
    } else {
        let mut link = device::open_serial(&a.device, a.baud, answer_timeout)?;
        bar.set_prefix(format!("device ({})", a.device));
        evaluate_on(&mut link, &view, x, y, &a, &bar)?
    };
    bar.finish_and_clear();
    let name = if a.device == "qemu" {
        target.name
    } else {
        a.device.as_str()
    };
    let stack = info.filter(|i| i.stack_peak_bytes > 0);
    match outcome {
        Outcome::Plain(mut report) => {
            report.trainer_accuracy = trainer_accuracy;
            report.stack_peak_bytes = stack.map(|i| i.stack_peak_bytes);
            print_report(&report);
            print_stack(stack);
            write_json(a.json.as_deref(), &report)?;
            println!(
                "eval: target={name} host_acc={:.4} device_acc={:.4} identical={}/{} max_diff={:e} instr_per_inference={:.0}",
                report.host_accuracy, report.device_accuracy, report.identical, report.samples, report.max_abs_diff, report.instructions_mean
            );
            if report.identical != report.samples {
                bail!(
                    "{} of {} outputs differ between host and device",
                    report.samples - report.identical,
                    report.samples
                );
            }
        }
        Outcome::Mc(mut report) => {
            report.stack_peak_bytes = stack.map(|i| i.stack_peak_bytes);
            print_mc_report(&report);
            print_stack(stack);
            write_json(a.json.as_deref(), &report)?;
            println!(
                "eval-mc: target={name} passes={} identical={}/{} max_diff={:e} device_acc={:.4} entropy_mean={:.4} mutual_information_mean={:.4} instr_per_request={:.0} instr_per_pass={:.0}",
                report.passes, report.identical, report.samples, report.max_abs_diff, report.device_accuracy, report.entropy_mean, report.mutual_information_mean, report.instructions_mean, report.instructions_mean / f64::from(report.passes)
            );
            if report.identical != report.samples {
                bail!(
                    "{} of {} Monte-Carlo summaries differ between host and device",
                    report.samples - report.identical,
                    report.samples
                );
            }
        }
    }
    Ok(())
}

/// What `eval` measured: plain inferences or Monte-Carlo requests.
enum Outcome {
    Plain(EvalReport),
    Mc(device::mc::McEvalReport),
}

/// Checks the device's model, evaluates (plainly or with `--mc`), then asks the device for its
/// peak stack, which by then covers every request of the evaluation.
fn evaluate_on<T: std::io::Read + std::io::Write>(
    link: &mut device::Link<T>,
    view: &ModelView<'_>,
    x: &[f32],
    y: &[u32],
    a: &DeviceEvalArgs,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<(Outcome, Option<microdnn::link::DeviceInfo>)> {
    check_device(link, view)?;
    let progress = |i: usize| bar.set_position(i as u64);
    let outcome = match a.mc {
        Some(passes) => {
            // Each request runs `passes` inferences: give it time in proportion.
            let t = link.timeout();
            link.set_timeout(t * (1 + u32::from(passes) / 8));
            Outcome::Mc(device::mc::evaluate_mc(
                link, view, x, y, passes, a.seed, progress,
            )?)
        }
        None => Outcome::Plain(device::evaluate(link, view, x, y, progress)?),
    };
    let info = link.info().ok();
    Ok((outcome, info))
}

fn write_json(path: Option<&Path>, report: &impl Serialize) -> anyhow::Result<()> {
    if let Some(j) = path {
        std::fs::write(j, serde_json::to_string_pretty(report)?)
            .with_context(|| format!("writing {}", j.display()))?;
    }
    Ok(())
}

fn print_stack(info: Option<microdnn::link::DeviceInfo>) {
    match info {
        Some(i) => println!(
            "peak stack                   {} of {} bytes (stack painting on the device, after every request above; bound {} for any model)",
            i.stack_peak_bytes,
            i.stack_bytes,
            microdnn_targets::fit::EVAL_STACK_BYTES
        ),
        None => println!("peak stack                   not reported by this device"),
    }
}

fn print_mc_report(r: &device::mc::McEvalReport) {
    println!("examples                     {}", r.samples);
    println!(
        "Monte-Carlo passes           {} per example (masks from seed {} + example index)",
        r.passes, r.seed
    );
    println!(
        "bit-identical summaries      {}/{} (mean and std per class, entropies, class)",
        r.identical, r.samples
    );
    println!("largest |host - device|      {:e}", r.max_abs_diff);
    println!(
        "accuracy of the mean         {:.4} (device), {:.4} (host)",
        r.device_accuracy, r.host_accuracy
    );
    println!(
        "mean predictive entropy      {:.4} nats (mutual information {:.4})",
        r.entropy_mean, r.mutual_information_mean
    );
    println!(
        "instructions per request     {:.0} (min {}, max {}; {:.0} per pass; QEMU -icount)",
        r.instructions_mean,
        r.instructions_min,
        r.instructions_max,
        r.instructions_mean / f64::from(r.passes.max(1))
    );
    if r.retries > 0 {
        println!("link retries                 {}", r.retries);
    }
}

/// The examples of `x` for which the core, running the model file on the host, gives a NaN or
/// infinite output.
fn nonfinite_outputs(view: &ModelView<'_>, x: &[f32]) -> anyhow::Result<usize> {
    let w = view.max_width();
    let (mut a, mut b) = (vec![0.0f32; w], vec![0.0f32; w]);
    let mut count = 0;
    for row in x.chunks_exact(view.inputs().max(1)) {
        let mut xi = row.to_vec();
        let out = view
            .run(&mut xi, &mut a, &mut b)
            .map_err(|e| anyhow::anyhow!("running the model on the host: {e}"))?;
        if out.iter().any(|v| !v.is_finite()) {
            count += 1;
        }
    }
    Ok(count)
}

/// Checks that the device runs a model of this file's shape.
fn check_device<T: std::io::Read + std::io::Write>(
    link: &mut device::Link<T>,
    view: &ModelView<'_>,
) -> anyhow::Result<()> {
    let info = link.info().context("asking the device for its model")?;
    if info.inputs as usize != view.inputs()
        || info.outputs as usize != view.outputs()
        || info.macs as usize != view.macs()
    {
        bail!(
            "the device runs a {}-input {}-output model ({} MACs), the file is {}-{} ({} MACs): \
             flash the firmware built with this model",
            info.inputs,
            info.outputs,
            info.macs,
            view.inputs(),
            view.outputs(),
            view.macs()
        );
    }
    Ok(())
}

fn print_report(r: &EvalReport) {
    println!("examples                     {}", r.samples);
    println!("host accuracy (core, file)   {:.4}", r.host_accuracy);
    println!("device accuracy              {:.4}", r.device_accuracy);
    if let Some(t) = r.trainer_accuracy {
        println!("trainer accuracy (batched)   {t:.4}");
    }
    println!("bit-identical outputs        {}/{}", r.identical, r.samples);
    println!("largest |host - device|      {:e}", r.max_abs_diff);
    println!(
        "instructions per inference   {:.0} (min {}, max {}; QEMU -icount)",
        r.instructions_mean, r.instructions_min, r.instructions_max
    );
}

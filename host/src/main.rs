//! `microdnn`: train, evaluate and benchmark fully-connected networks for microdnn devices.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use microdnn_host::bench::{self, BenchOptions};
use microdnn_host::model::checkpoint;
use microdnn_host::model::metrics;
use microdnn_host::train::config::{DatasetKind, TrainConfig};
use microdnn_host::train::{self, RunOptions, CONFIG_FILE};

mod deploy;

#[derive(Parser)]
#[command(
    name = "microdnn",
    version,
    about = "Train fully-connected networks for microcontrollers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a network (settings from a TOML config, overridden by flags).
    Train(TrainArgs),
    /// Greedy layer-wise pretraining only (the config's [pretrain] section): writes a checkpoint
    /// to fine-tune with `train --config FILE --init DIR`.
    Pretrain(PretrainArgs),
    /// Evaluate a checkpoint: accuracy, confusion matrix, per-class precision and recall.
    Evaluate(EvalArgs),
    /// Measure training and inference throughput on MNIST (784-256-128-10).
    BenchTrain(BenchArgs),
    /// Export a checkpoint (or a PyTorch state dict) as a device model file: batch norm folded,
    /// dropout dropped, weights packed for the kernel.
    Export(deploy::ExportArgs),
    /// Describe a device model file: layers, parameters, flash, RAM, multiply-accumulates.
    Info(deploy::InfoArgs),
    /// Run an exported model on a device (QEMU or a serial port) over the test set and compare
    /// its outputs with the host's, bit for bit.
    Eval(deploy::DeviceEvalArgs),
    /// Draw PNG charts of a run folder's metrics.json (loss, accuracy, per-layer diagnostics).
    Plot(PlotArgs),
    /// Run a lab experiment (regularizers, dead-relu, vanishing, batchnorm, l2-boundary, parity,
    /// early-stopping, activation-cost, or all): report.md and PNGs in OUT/NAME/.
    Lab(LabArgs),
}

#[derive(clap::Args)]
struct PlotArgs {
    /// Run folder (with metrics.json).
    run_dir: PathBuf,
    /// Folder for the PNGs (default: the run folder).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(clap::Args)]
struct LabArgs {
    /// Experiment name, or `all`.
    name: String,
    /// Reduced size: small networks on the bundled digits, seconds per experiment.
    #[arg(long)]
    quick: bool,
    /// Parent folder of the reports.
    #[arg(long, default_value = "target/lab")]
    out: PathBuf,
    /// MNIST folder for the full runs.
    #[arg(long)]
    mnist: Option<PathBuf>,
    /// Override the epochs of the experiments that train for a number of epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(clap::Args)]
struct TrainArgs {
    /// TOML config (see host/configs/); defaults apply without one.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Base learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Mini-batch size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Threads (0 = all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Data set.
    #[arg(long, value_enum)]
    dataset: Option<DatasetKind>,
    /// Data file (digits, csv) or folder (mnist).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Run folder for the checkpoint, metrics and resolved config.
    #[arg(long, default_value = "runs/latest")]
    out: PathBuf,
    /// Continue the run in --out from its last completed epoch (uses its config.toml; --epochs
    /// may extend it).
    #[arg(long)]
    resume: bool,
    /// Start from this checkpoint or run folder (e.g. written by `microdnn pretrain`) and
    /// fine-tune it; [pretrain] is not run again.
    #[arg(long)]
    init: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

#[derive(clap::Args)]
struct PretrainArgs {
    /// TOML config with a [pretrain] section (the same file then fine-tunes with --init).
    #[arg(long)]
    config: PathBuf,
    /// Seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Threads (0 = all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Data file (digits, csv) or folder (mnist).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Folder for model.safetensors, metrics.json (pretraining losses) and config.toml.
    #[arg(long, default_value = "runs/pretrained")]
    out: PathBuf,
}

#[derive(clap::Args)]
struct EvalArgs {
    /// Checkpoint file or run folder.
    #[arg(long)]
    model: PathBuf,
    /// Data set (default: the one in the run folder's config.toml, else digits).
    #[arg(long, value_enum)]
    dataset: Option<DatasetKind>,
    /// Data file or folder.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Evaluate the whole file (CSV) instead of the run's test split.
    #[arg(long)]
    all: bool,
    /// Write the evaluation as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// MNIST folder.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Training steps (default: two epochs).
    #[arg(long)]
    steps: Option<usize>,
    /// Threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Train(a) => run_train(a),
        Command::Pretrain(a) => run_pretrain(a),
        Command::Evaluate(a) => run_evaluate(a),
        Command::BenchTrain(a) => run_bench(a),
        Command::Export(a) => deploy::run_export(a),
        Command::Info(a) => deploy::run_info(a),
        Command::Eval(a) => deploy::run_eval(a),
        Command::Plot(a) => {
            for f in microdnn_host::plot::plot_run(&a.run_dir, a.out.as_deref())? {
                println!("wrote {}", f.display());
            }
            Ok(())
        }
        Command::Lab(a) => {
            let opts = microdnn_host::lab::LabOptions {
                quick: a.quick,
                out: a.out,
                mnist: a.mnist,
                epochs: a.epochs,
                threads: a.threads,
                verbose: true,
            };
            for f in microdnn_host::lab::run(&a.name, &opts)? {
                println!("wrote {}", f.display());
            }
            Ok(())
        }
    }
}

fn run_train(a: TrainArgs) -> anyhow::Result<()> {
    let mut cfg = if a.resume {
        TrainConfig::from_file(&a.out.join(CONFIG_FILE))
            .context("--resume needs the run's config.toml")?
    } else if let Some(p) = &a.config {
        TrainConfig::from_file(p)?
    } else {
        TrainConfig::default()
    };
    if let Some(v) = a.epochs {
        cfg.epochs = v;
    }
    if !a.resume {
        if let Some(v) = a.lr {
            cfg.lr = v;
        }
        if let Some(v) = a.batch_size {
            cfg.batch_size = v;
        }
        if let Some(v) = a.seed {
            cfg.seed = v;
        }
        if let Some(v) = a.dataset {
            cfg.data.dataset = v;
        }
    }
    if let Some(v) = a.threads {
        cfg.threads = v;
    }
    if let Some(v) = a.data {
        cfg.data.path = Some(v);
    }
    if let Some(v) = a.init {
        cfg.init = Some(v);
    }
    let data = train::prepare_data(&cfg).context("preparing the data")?;
    eprintln!(
        "data: {} train, {} validation, {} test examples, {} inputs, {} classes; {} threads",
        data.train.len(),
        data.val.as_ref().map_or(0, |d| d.len()),
        data.test.as_ref().map_or(0, |d| d.len()),
        data.train.features,
        data.train.classes,
        cfg.thread_count()
    );
    let opts = RunOptions {
        out_dir: Some(a.out.clone()),
        resume: a.resume,
        progress: !a.quiet,
        stop_after: None,
    };
    let t = std::time::Instant::now();
    let out = train::train(&cfg, &data, &opts)?;
    if a.resume {
        // Record the possibly extended epoch count.
        checkpoint::atomic_write(&a.out.join(CONFIG_FILE), cfg.to_toml().as_bytes())?;
    }
    let m = &out.metrics;
    let last = m.epochs.last();
    for l in &m.pretraining {
        println!(
            "pretrained layer {}: reconstruction error {:.5} -> {:.5}",
            l.layer,
            l.losses.first().copied().unwrap_or(f64::NAN),
            l.losses.last().copied().unwrap_or(f64::NAN)
        );
    }
    println!(
        "trained {} epochs in {:.1} s",
        m.epochs.len(),
        t.elapsed().as_secs_f64()
    );
    if let Some(l) = last {
        println!(
            "last epoch: train loss {:.4}, accuracy {:.2}%{}",
            l.train_loss,
            100.0 * l.train_accuracy,
            l.val_accuracy.map_or(String::new(), |v| format!(
                ", validation accuracy {:.2}%",
                100.0 * v
            ))
        );
    }
    if let Some(b) = m.best_epoch {
        println!(
            "early stopping: restored epoch {b}{}",
            if m.stopped_early {
                " (stopped early)"
            } else {
                ""
            }
        );
    }
    if let (Some(l), Some(acc)) = (m.test_loss, m.test_accuracy) {
        println!("test: loss {l:.4}, accuracy {:.2}%", 100.0 * acc);
    }
    println!("wrote {}", a.out.display());
    Ok(())
}

fn run_pretrain(a: PretrainArgs) -> anyhow::Result<()> {
    let mut cfg = TrainConfig::from_file(&a.config)?;
    if let Some(v) = a.seed {
        cfg.seed = v;
    }
    if let Some(v) = a.threads {
        cfg.threads = v;
    }
    if let Some(v) = a.data {
        cfg.data.path = Some(v);
    }
    let data = train::prepare_data(&cfg).context("preparing the data")?;
    let t = std::time::Instant::now();
    let (_, report) = microdnn_host::train::pretrain_only(&cfg, &data, Some(&a.out))?;
    for l in &report {
        println!(
            "layer {}: reconstruction error {:.5} -> {:.5} ({} epochs)",
            l.layer,
            l.losses.first().copied().unwrap_or(f64::NAN),
            l.losses.last().copied().unwrap_or(f64::NAN),
            l.losses.len()
        );
    }
    println!(
        "pretrained {} layers in {:.1} s; wrote {}; fine-tune with: microdnn train --config {} \
         --init {}",
        report.len(),
        t.elapsed().as_secs_f64(),
        a.out.display(),
        a.config.display(),
        a.out.display()
    );
    Ok(())
}

fn run_evaluate(a: EvalArgs) -> anyhow::Result<()> {
    let path = checkpoint::resolve_model_path(&a.model);
    let model = checkpoint::load_model(&path)?;
    let data = test_data(&path, a.dataset, a.data, a.all)?;
    anyhow::ensure!(
        data.features == model.transform.features(),
        "the data has {} inputs but the model expects {}",
        data.features,
        model.transform.features()
    );
    let e = metrics::evaluate(&model, &data);
    print!("{}", e.report());
    if let Some(j) = a.json {
        std::fs::write(&j, serde_json::to_string_pretty(&e)?)
            .with_context(|| format!("writing {}", j.display()))?;
    }
    Ok(())
}

/// The data to evaluate a checkpoint on: the test split of its run (same seed and fractions,
/// from the run folder's config.toml), or the whole file with `all` (or without a run config).
/// `dataset` and `data` override the run's.
pub(crate) fn test_data(
    checkpoint: &std::path::Path,
    dataset: Option<DatasetKind>,
    data: Option<PathBuf>,
    all_of_it: bool,
) -> anyhow::Result<microdnn_host::Dataset> {
    let run_cfg = checkpoint
        .parent()
        .map(|d| d.join(CONFIG_FILE))
        .filter(|p| p.exists())
        .map(|p| TrainConfig::from_file(&p))
        .transpose()?;
    let mut cfg = run_cfg.clone().unwrap_or_default();
    if let Some(d) = dataset {
        if d != cfg.data.dataset {
            cfg.data.path = None;
        }
        cfg.data.dataset = d;
    }
    if let Some(p) = data {
        cfg.data.path = Some(p);
    }
    let whole = all_of_it || run_cfg.is_none();
    match (whole, train::raw_test_split(&cfg)?) {
        (false, Some(test)) => Ok(test),
        (_, Some(test)) if cfg.data.dataset == DatasetKind::Mnist => Ok(test),
        _ => Ok(train::load_raw(&cfg)?.0),
    }
}

fn run_bench(a: BenchArgs) -> anyhow::Result<()> {
    let r = bench::run(&BenchOptions {
        data_dir: a.data_dir,
        steps: a.steps,
        threads: a.threads,
        seed: 0,
    })?;
    println!(
        "training:             {:>10.0} samples/s ({} steps, {} threads)",
        r.train_samples_per_s, r.steps, r.threads
    );
    println!(
        "inference, batch 1:   {:>10.0} samples/s",
        r.infer_b1_samples_per_s
    );
    println!(
        "inference, batch 256: {:>10.0} samples/s",
        r.infer_b256_samples_per_s
    );
    println!(
        "test accuracy after the benchmark's training: {:.2}%",
        100.0 * r.test_accuracy
    );
    let json = serde_json::to_string_pretty(&r)?;
    println!("{json}");
    if let Some(p) = a.json {
        if let Some(d) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(&p, json).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

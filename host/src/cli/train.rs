//! `microdnn train` and `microdnn pretrain`: flags over the config, then a summary of the run.

use std::path::PathBuf;

use anyhow::Context;

use microdnn_host::train::config::{DatasetKind, TrainConfig};
use microdnn_host::train::{self, RunOptions, CONFIG_FILE};

#[derive(clap::Args)]
pub struct TrainArgs {
    /// TOML config (see host/configs/); defaults apply without one.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Base learning rate.
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Mini-batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Threads (0 = all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Data set.
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetKind>,
    /// Data file (digits, csv) or folder (mnist).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Run folder for the checkpoint, metrics and resolved config.
    #[arg(long, default_value = "runs/latest")]
    pub out: PathBuf,
    /// Continue the run in --out from its last completed epoch, as it was configured (its
    /// config.toml; --epochs may extend it, --threads and --data, for moved data, may change).
    #[arg(long)]
    pub resume: bool,
    /// Replace the run already in --out (without it, a folder holding a run is refused).
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// Start from this checkpoint or run folder (e.g. written by `microdnn pretrain`) and
    /// fine-tune it; `[pretrain]` is not run again.
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(clap::Args)]
pub struct PretrainArgs {
    /// TOML config with a `[pretrain]` section (the same file then fine-tunes with --init).
    #[arg(long)]
    pub config: PathBuf,
    /// Seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Threads (0 = all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Data file (digits, csv) or folder (mnist).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Folder for model.safetensors, metrics.json (pretraining losses) and config.toml.
    #[arg(long, default_value = "runs/pretrained")]
    pub out: PathBuf,
    /// Replace what is already in --out.
    #[arg(long)]
    pub force: bool,
}

/// The flags a resumed run refuses: it continues as it was configured.
fn refuse_changes_on_resume(a: &TrainArgs) -> anyhow::Result<()> {
    let changed = [
        ("--config", a.config.is_some()),
        ("--lr", a.lr.is_some()),
        ("--batch-size", a.batch_size.is_some()),
        ("--seed", a.seed.is_some()),
        ("--dataset", a.dataset.is_some()),
        ("--init", a.init.is_some()),
    ];
    let given: Vec<&str> = changed.iter().filter(|c| c.1).map(|c| c.0).collect();
    anyhow::ensure!(
        given.is_empty(),
        "--resume continues the run in {} as it was configured (its {CONFIG_FILE}): {} cannot \
         change it; start a new run (another --out, or --force) to change {}",
        a.out.display(),
        given.join(", "),
        if given.len() == 1 { "it" } else { "them" }
    );
    Ok(())
}

/// The run's config: the folder's on resume, else the file given (or the defaults), with the
/// flags applied.
fn resolve_config(a: &TrainArgs) -> anyhow::Result<TrainConfig> {
    let mut cfg = if a.resume {
        refuse_changes_on_resume(a)?;
        let path = a.out.join(CONFIG_FILE);
        anyhow::ensure!(
            path.exists(),
            "{} holds no run to resume (no {CONFIG_FILE})",
            a.out.display()
        );
        TrainConfig::from_file(&path)?
    } else if let Some(p) = &a.config {
        TrainConfig::from_file(p)?
    } else {
        TrainConfig::default()
    };
    if let Some(v) = a.epochs {
        cfg.epochs = v;
    }
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
        cfg.data.dataset = Some(v);
    }
    if let Some(v) = a.threads {
        cfg.threads = v;
    }
    if let Some(v) = &a.data {
        cfg.data.path = Some(v.clone());
    }
    if let Some(v) = &a.init {
        cfg.init = Some(v.clone());
    }
    if cfg.data.dataset.is_none() {
        if let Some(p) = &cfg.data.path {
            eprintln!(
                "note: dataset {:?}, inferred from {} ({}); --dataset or data.dataset to choose",
                cfg.data.dataset(),
                p.display(),
                if p.is_dir() { "a folder" } else { "a file" }
            );
        }
    }
    Ok(cfg)
}

/// `microdnn train`.
pub fn run_train(a: TrainArgs) -> anyhow::Result<()> {
    let cfg = resolve_config(&a)?;
    let data = train::prepare_data(&cfg).context("preparing the data")?;
    for n in &data.notes {
        eprintln!(
            "{}",
            if n.starts_with("warning") {
                n.clone()
            } else {
                format!("note: {n}")
            }
        );
    }
    eprintln!(
        "data: {} train, {} validation, {} test examples, {} inputs, {} classes; {} threads",
        data.train.len(),
        data.val.as_ref().map_or(0, |d| d.len()),
        data.test.as_ref().map_or(0, |d| d.len()),
        data.train.features,
        data.train.classes,
        cfg.thread_count()
    );
    if cfg.batch_size > data.train.len() {
        eprintln!(
            "note: batch_size {} is larger than the training split: one batch of {} per epoch",
            cfg.batch_size,
            data.train.len()
        );
    }
    let opts = RunOptions {
        out_dir: Some(a.out.clone()),
        resume: a.resume,
        force: a.force,
        progress: !a.quiet,
        stop_after: None,
    };
    let t = std::time::Instant::now();
    let out = train::train(&cfg, &data, &opts)?;
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

/// `microdnn pretrain`.
pub fn run_pretrain(a: PretrainArgs) -> anyhow::Result<()> {
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
    let (_, report) = microdnn_host::train::pretrain_only(&cfg, &data, Some(&a.out), a.force)?;
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

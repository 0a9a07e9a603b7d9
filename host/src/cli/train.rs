//! `microdnn train` and `microdnn pretrain`: flags over the config, then a summary of the run.

use std::path::PathBuf;

use anyhow::Context;

use microdnn_host::model::checkpoint;
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
    #[arg(long)]
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
    /// Continue the run in --out from its last completed epoch (uses its config.toml; --epochs
    /// may extend it).
    #[arg(long)]
    pub resume: bool,
    /// Start from this checkpoint or run folder (e.g. written by `microdnn pretrain`) and
    /// fine-tune it; [pretrain] is not run again.
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(clap::Args)]
pub struct PretrainArgs {
    /// TOML config with a [pretrain] section (the same file then fine-tunes with --init).
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
}

/// `microdnn train`.
pub fn run_train(a: TrainArgs) -> anyhow::Result<()> {
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

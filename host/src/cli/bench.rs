//! `microdnn bench-train`: training and inference throughput on MNIST.

use std::path::PathBuf;

use anyhow::Context;

use microdnn_host::bench::{self, BenchOptions};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// MNIST folder.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Training steps (default: two epochs).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// `microdnn bench-train`.
pub fn run_bench(a: BenchArgs) -> anyhow::Result<()> {
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
        "inference, batch 1:   {:>10.0} samples/s (dense: every input multiplied)",
        r.infer_b1_samples_per_s
    );
    println!(
        "inference, batch 1:   {:>10.0} samples/s (zero inputs skipped: less work, reported apart)",
        r.infer_b1_sparse_samples_per_s
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

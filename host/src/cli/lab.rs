//! `microdnn plot` (charts of a run) and `microdnn lab` (the lecture's experiments).

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct PlotArgs {
    /// Run folder (with metrics.json).
    pub run_dir: PathBuf,
    /// Folder for the PNGs (default: the run folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct LabArgs {
    /// Experiment name, or `all`.
    pub name: String,
    /// Reduced size: small networks on the bundled digits, seconds per experiment.
    #[arg(long, conflicts_with = "full")]
    pub quick: bool,
    /// Full size (the default; says so explicitly).
    #[arg(long)]
    pub full: bool,
    /// `regularizers`: rebuild the table from the finished runs in the output folder, marking
    /// the unfinished ones, without training.
    #[arg(long)]
    pub report_only: bool,
    /// `regularizers --quick`: continue an interrupted run instead of starting over (the full
    /// experiment always continues where it stopped).
    #[arg(long)]
    pub resume: bool,
    /// Parent folder of the reports.
    #[arg(long, default_value = "target/lab")]
    pub out: PathBuf,
    /// MNIST folder for the full runs.
    #[arg(long)]
    pub mnist: Option<PathBuf>,
    /// Override the epochs of the experiments that train for a number of epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// `microdnn plot`.
pub fn run_plot(a: PlotArgs) -> anyhow::Result<()> {
    for f in microdnn_host::plot::plot_run(&a.run_dir, a.out.as_deref())? {
        println!("wrote {}", f.display());
    }
    Ok(())
}

/// `microdnn lab`.
pub fn run_lab(a: LabArgs) -> anyhow::Result<()> {
    let opts = microdnn_host::lab::LabOptions {
        quick: a.quick,
        out: a.out,
        mnist: a.mnist,
        epochs: a.epochs,
        threads: a.threads,
        verbose: true,
        report_only: a.report_only,
        resume: a.resume,
        stop_after: None,
    };
    for f in microdnn_host::lab::run(&a.name, &opts)? {
        println!("wrote {}", f.display());
    }
    Ok(())
}

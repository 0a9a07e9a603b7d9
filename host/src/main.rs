//! `microdnn`: train, score and benchmark fully-connected networks, export them for microdnn
//! devices and run them there. Each command's flags and printing
//! live in `cli/`; the work is done by the library.

use clap::{Parser, Subcommand};

mod cli;

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
    Train(cli::train::TrainArgs),
    /// Greedy layer-wise pretraining only (the config's `[pretrain]` section): writes a checkpoint
    /// to fine-tune with `train --config FILE --init DIR`.
    Pretrain(cli::train::PretrainArgs),
    /// Score a checkpoint on the host: accuracy, confusion matrix, per-class precision and
    /// recall on its run's test split (also spelled `evaluate`).
    #[command(alias = "evaluate")]
    Score(cli::score::ScoreArgs),
    /// Measure training and inference throughput on MNIST (784-256-128-10).
    BenchTrain(cli::bench::BenchArgs),
    /// Export a checkpoint (or a PyTorch state dict) as a device model file: batch norm folded,
    /// dropout dropped, weights packed for the kernel.
    Export(cli::deploy::ExportArgs),
    /// Describe a device model file: layers, parameters, flash, RAM, multiply-accumulates.
    Info(cli::deploy::InfoArgs),
    /// Run an exported model on a device (QEMU or a serial port) over the test set and compare
    /// its outputs with the host's, bit for bit.
    Eval(cli::deploy::DeviceEvalArgs),
    /// Draw PNG charts of a run folder's metrics.json (loss, accuracy, per-layer diagnostics).
    Plot(cli::lab::PlotArgs),
    /// Run a lab experiment (regularizers, dead-relu, vanishing, batchnorm, l2-boundary, parity,
    /// early-stopping, activation-cost, or all): report.md and PNGs in OUT/NAME/.
    Lab(cli::lab::LabArgs),
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The error and its causes on one line: `error: preparing the data: FILE line 3: ...`.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Train(a) => cli::train::run_train(a),
        Command::Pretrain(a) => cli::train::run_pretrain(a),
        Command::Score(a) => cli::score::run_score(a),
        Command::BenchTrain(a) => cli::bench::run_bench(a),
        Command::Export(a) => cli::deploy::run_export(a),
        Command::Info(a) => cli::deploy::run_info(a),
        Command::Eval(a) => cli::deploy::run_eval(a),
        Command::Plot(a) => cli::lab::run_plot(a),
        Command::Lab(a) => cli::lab::run_lab(a),
    }
}

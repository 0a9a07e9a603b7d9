//! What a run shows while it trains: a [`TrainObserver`] receives the loop's events. `()` shows
//! nothing; [`TextProgress`] prints one line per epoch; with the `progress` feature (part of
//! `cli`, the default) [`ProgressBars`] draws `indicatif` bars, as `microdnn train` does. Both
//! print the diagnostics summary and warnings (with the lecture's advice, once per run).
//!
//! [`crate::train::train`] picks [`default_observer`] when [`crate::train::RunOptions::progress`]
//! is set; [`crate::train::train_with_observer`] takes any observer.

use crate::train::diagnostics::{self as diag, LayerDiagnostics};
use crate::train::metrics::EpochMetrics;

/// Receives a run's progress. Every method does nothing by default. `Send`: the run calls it
/// from its thread pool.
pub trait TrainObserver: Send {
    /// The diagnostics before the first step (not on resume), with their warnings.
    fn at_init(&mut self, _diagnostics: &[LayerDiagnostics], _warnings: &[String]) {}
    /// Epoch `epoch` (1-based) of `epochs` starts, over `samples` training examples.
    fn epoch_start(&mut self, _epoch: usize, _epochs: usize, _samples: usize) {}
    /// Within an epoch (every 16 batches and after the last): `done` examples so far, their
    /// summed loss and correct count, `seconds` since the epoch started.
    fn batches(&mut self, _done: usize, _loss_sum: f64, _correct: usize, _seconds: f64) {}
    /// The epoch's metrics (diagnostics and warnings included).
    fn epoch_end(&mut self, _metrics: &EpochMetrics) {}
    /// The loss or the weights stopped being finite: the run ends with an error.
    fn diverged(&mut self) {}
}

impl TrainObserver for () {}

/// The observer `RunOptions { progress: true, .. }` gets: [`ProgressBars`] with the `progress`
/// feature, else [`TextProgress`].
pub fn default_observer() -> Box<dyn TrainObserver> {
    #[cfg(feature = "progress")]
    return Box::new(ProgressBars::default());
    #[cfg(not(feature = "progress"))]
    return Box::new(TextProgress::default());
}

/// `loss 0.1234 acc 97.50% | val loss 0.0900 acc 98.00% 81234 samples/s`: an epoch in one line.
pub fn epoch_summary(m: &EpochMetrics) -> String {
    format!(
        "loss {:.4} acc {:.2}%{} {:.0} samples/s",
        m.train_loss,
        100.0 * m.train_accuracy,
        match (m.val_loss, m.val_accuracy) {
            (Some(l), Some(a)) => format!(" | val loss {l:.4} acc {:.2}%", 100.0 * a),
            _ => String::new(),
        },
        m.samples_per_s
    )
}

/// Prints diagnostics to stderr: the summary line, each warning, and the lecture's advice the
/// first time a warning appears.
#[derive(Clone, Debug, Default)]
pub struct DiagnosticsPrinter {
    advised: bool,
}

impl DiagnosticsPrinter {
    /// Prints the diagnostics of `when` (`init`, `epoch 3`); nothing when there are none.
    pub fn print(&mut self, when: &str, d: &[LayerDiagnostics], warnings: &[String]) {
        if d.is_empty() {
            return;
        }
        eprintln!("  diagnostics ({when}): {}", diag::summary(d));
        for w in warnings {
            eprintln!("  warning: {w}");
        }
        if !warnings.is_empty() && !self.advised {
            eprintln!("  {}", diag::ADVICE);
            self.advised = true;
        }
    }
}

/// One line per epoch on stderr, and the diagnostics.
#[derive(Clone, Debug, Default)]
pub struct TextProgress {
    epochs: usize,
    diagnostics: DiagnosticsPrinter,
}

impl TrainObserver for TextProgress {
    fn at_init(&mut self, d: &[LayerDiagnostics], warnings: &[String]) {
        self.diagnostics.print("init", d, warnings);
    }

    fn epoch_start(&mut self, _epoch: usize, epochs: usize, _samples: usize) {
        self.epochs = epochs;
    }

    fn epoch_end(&mut self, m: &EpochMetrics) {
        eprintln!("epoch {:>3}/{} {}", m.epoch, self.epochs, epoch_summary(m));
        let when = format!("epoch {}", m.epoch);
        self.diagnostics.print(&when, &m.diagnostics, &m.warnings);
    }
}

/// A progress bar per epoch (`indicatif`), and the diagnostics.
#[cfg(feature = "progress")]
#[derive(Debug, Default)]
pub struct ProgressBars {
    bar: Option<indicatif::ProgressBar>,
    diagnostics: DiagnosticsPrinter,
}

#[cfg(feature = "progress")]
impl TrainObserver for ProgressBars {
    fn at_init(&mut self, d: &[LayerDiagnostics], warnings: &[String]) {
        self.diagnostics.print("init", d, warnings);
    }

    fn epoch_start(&mut self, epoch: usize, epochs: usize, samples: usize) {
        let bar = indicatif::ProgressBar::new(samples as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("epoch {epoch:>3}/{epochs}"));
        self.bar = Some(bar);
    }

    fn batches(&mut self, done: usize, loss_sum: f64, correct: usize, seconds: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            bar.set_message(format!(
                "loss {:.4} acc {:.2}% {:.0} samples/s",
                loss_sum / done as f64,
                100.0 * correct as f64 / done as f64,
                done as f64 / seconds
            ));
        }
    }

    fn epoch_end(&mut self, m: &EpochMetrics) {
        if let Some(bar) = self.bar.take() {
            bar.finish_with_message(epoch_summary(m));
        }
        let when = format!("epoch {}", m.epoch);
        self.diagnostics.print(&when, &m.diagnostics, &m.warnings);
    }

    fn diverged(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
    }
}

//! The lecture's regulariser table (Srivastava et al. 2014, MNIST 784-1024-1024-2048-10 ReLU),
//! every row trained with the same budget.

use serde_json::json;

use super::{pct, LabOptions, Report};
use crate::nn::optim::OptimizerConfig;
use crate::nn::schedule::Schedule;
use crate::plot::{Chart, Series};
use crate::train::config::{Rates, TrainConfig};
use crate::train::{train, RunOptions};

/// `(name, paper's test error %, l2, l1, max-norm, dropout)`.
type Row = (&'static str, f64, f32, f32, Option<f32>, bool);
const ROWS: [Row; 5] = [
    ("L2", 1.62, 1e-4, 0.0, None, false),
    ("L2 + L1", 1.60, 1e-4, 1e-5, None, false),
    ("max-norm", 1.35, 0.0, 0.0, Some(3.0), false),
    ("dropout + L2", 1.25, 1e-4, 0.0, None, true),
    ("dropout + max-norm", 1.05, 0.0, 0.0, Some(3.0), true),
];

pub(super) fn run(opts: &LabOptions, r: &mut Report) -> anyhow::Result<()> {
    let (data, hidden, epochs) = if opts.quick {
        (super::digits(0)?, vec![128, 128, 256], 30)
    } else {
        (
            super::mnist(opts, 60_000, 10_000, false)?,
            vec![1024, 1024, 2048],
            10,
        )
    };
    let epochs = opts.epochs(epochs);
    let arch = std::iter::once(data.train.features)
        .chain(hidden.iter().copied())
        .chain(std::iter::once(data.train.classes))
        .map(|w| w.to_string())
        .collect::<Vec<_>>()
        .join("-");
    r.p(format!(
        "{arch} ReLU, He init, batch 100, SGD momentum 0.95, lr 0.02 × 0.95 per epoch, \
         {epochs} epochs for every row ({} training, {} test examples). L2 λ = 1e-4, L1 1e-5 \
         (applied throughout, the paper applied it towards the end of training), max-norm c = 3 \
         on every unit's incoming weights, dropout 0.2 on the inputs and 0.5 on the hidden \
         units. The paper trained for far longer (and tuned each row): compare the ordering, not \
         the values.",
        data.train.len(),
        data.test.as_ref().map_or(0, |t| t.len())
    ));
    let mut rows = Vec::new();
    let mut curves = Vec::new();
    let mut ours = Vec::new();
    for (i, (name, paper, l2, l1, max_norm, dropout)) in ROWS.into_iter().enumerate() {
        let mut cfg = TrainConfig::default();
        cfg.epochs = epochs;
        cfg.batch_size = 100;
        cfg.lr = 0.02;
        cfg.threads = opts.threads;
        cfg.model.hidden = hidden.clone();
        cfg.optimizer = OptimizerConfig::Sgd {
            momentum: 0.95,
            nesterov: false,
        };
        cfg.schedule = Schedule::Exponential { gamma: 0.95 };
        cfg.regularization.l2 = l2;
        cfg.regularization.l1 = l1;
        cfg.regularization.max_norm = max_norm;
        if dropout {
            cfg.model.input_dropout = 0.2;
            cfg.model.dropout = Rates::All(0.5);
        }
        cfg.early_stopping = None;
        opts.log(format!("regularizers: {name}"));
        let t = std::time::Instant::now();
        let out = train(
            &cfg,
            &data,
            &RunOptions {
                progress: opts.verbose && !opts.quick,
                ..RunOptions::default()
            },
        )?;
        let secs = t.elapsed().as_secs_f64();
        let err = 1.0 - out.metrics.test_accuracy.unwrap_or(f64::NAN);
        ours.push(err);
        curves.push(Series::new(
            name,
            i,
            out.metrics
                .epochs
                .iter()
                .map(|e| (e.epoch as f64, e.train_loss))
                .collect(),
        ));
        rows.push(vec![
            name.to_string(),
            format!("{paper:.2}%"),
            pct(err),
            format!(
                "{:.4}",
                out.metrics.epochs.last().map_or(f64::NAN, |e| e.train_loss)
            ),
            format!("{secs:.0} s"),
        ]);
        r.set(
            name,
            json!({"paper_error_pct": paper, "test_error": err, "seconds": secs}),
        );
    }
    r.table(
        &[
            "regulariser",
            "paper (test error)",
            "ours (test error)",
            "final training loss",
            "time",
        ],
        &rows,
    );
    // The paper's ordering is strictly decreasing down the table.
    let inversions: Vec<String> = (0..ours.len())
        .flat_map(|i| (i + 1..ours.len()).map(move |j| (i, j)))
        .filter(|&(i, j)| ours[j] > ours[i])
        .map(|(i, j)| format!("{} beats {}", ROWS[i].0, ROWS[j].0))
        .collect();
    let holds = inversions.is_empty();
    r.p(if holds {
        "The paper's ordering holds: every row is at least as good as the rows above it."
            .to_string()
    } else {
        format!(
            "The paper's ordering does not fully hold here ({} of 10 pairs inverted: {}).",
            inversions.len(),
            inversions.join("; ")
        )
    });
    r.set("ordering_holds", json!(holds));
    r.chart(
        "train_loss.png",
        &Chart {
            title: "Training loss (training mode: with dropout where used)".into(),
            x_label: "epoch".into(),
            y_label: "cross-entropy".into(),
            series: curves,
            ..Chart::default()
        },
    )?;
    Ok(())
}

//! Training vs validation loss on a small training set, the stopping point, and test error with
//! and without early stopping.

use serde_json::json;

use super::{pct, LabOptions, Report};
use crate::plot::{Chart, Series};
use crate::train::config::{EarlyStopping, StopMetric, TrainConfig};
use crate::train::{train, RunOptions};

pub(super) fn run(opts: &LabOptions, r: &mut Report) -> anyhow::Result<()> {
    let (mut data, hidden, epochs, n_train) = if opts.quick {
        (super::digits(0)?, vec![256, 256], 120, 150)
    } else {
        let mut d = super::mnist(opts, 1000, 10_000, true)?;
        // 2,000 of the 5,000 validation images: evaluated every epoch.
        d.val = d
            .val
            .map(|v| v.subset(&(0..2000.min(v.len())).collect::<Vec<_>>()));
        (d, vec![500, 500], 150, 1000)
    };
    let epochs = opts.epochs(epochs);
    let n = data.train.len().min(n_train);
    data.train = data.train.subset(&(0..n).collect::<Vec<_>>());
    let mut cfg = TrainConfig::default();
    cfg.epochs = epochs;
    cfg.batch_size = 32;
    cfg.lr = 0.05;
    cfg.threads = opts.threads;
    cfg.model.hidden = hidden.clone();
    cfg.early_stopping = None;
    let patience = if opts.quick { 10 } else { 20 };
    r.p(format!(
        "{} training examples, validation {} and test {} examples; {}-{}-{} ReLU, no \
         regulariser, SGD momentum 0.9, lr 0.05, batch 32, {epochs} epochs. Without early \
         stopping the last epoch's weights are tested; with it (validation loss, patience \
         {patience}) the best epoch's weights. Both runs share every random draw, so their curves \
         coincide until the stop.",
        n,
        data.val.as_ref().map_or(0, |v| v.len()),
        data.test.as_ref().map_or(0, |v| v.len()),
        data.train.features,
        hidden
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>()
            .join("-"),
        data.train.classes,
    ));
    let full = train(&cfg, &data, &RunOptions::default())?;
    let mut es_cfg = cfg.clone();
    es_cfg.early_stopping = Some(EarlyStopping {
        metric: StopMetric::ValLoss,
        patience,
        min_delta: 0.0,
    });
    let es = train(&es_cfg, &data, &RunOptions::default())?;
    let m = &full.metrics;
    let best = es.metrics.best_epoch.unwrap_or(0);
    let stopped_at = es.metrics.epochs.len();
    let curve = |f: &dyn Fn(&crate::train::EpochMetrics) -> Option<f64>| {
        m.epochs
            .iter()
            .filter_map(|e| Some((e.epoch as f64, f(e)?)))
            .collect::<Vec<_>>()
    };
    r.chart(
        "loss.png",
        &Chart {
            title: "Training vs validation loss".into(),
            x_label: "epoch".into(),
            y_label: "cross-entropy".into(),
            series: vec![
                Series::new("training", 0, curve(&|e| Some(e.train_loss))),
                Series::new("validation", 1, curve(&|e| e.val_loss)).dashed(),
            ],
            vlines: vec![
                (best as f64, format!("best epoch {best}")),
                (stopped_at as f64, format!("stopped at {stopped_at}")),
            ],
            ..Chart::default()
        },
    )?;
    let err = |a: Option<f64>| a.map_or(f64::NAN, |a| 1.0 - a);
    let (e_full, e_es) = (err(m.test_accuracy), err(es.metrics.test_accuracy));
    r.table(
        &[
            "run",
            "epochs trained",
            "weights tested",
            "test error",
            "test loss",
        ],
        &[
            vec![
                "no early stopping".into(),
                epochs.to_string(),
                format!("epoch {epochs}"),
                pct(e_full),
                format!("{:.4}", m.test_loss.unwrap_or(f64::NAN)),
            ],
            vec![
                "early stopping".into(),
                stopped_at.to_string(),
                format!("epoch {best}"),
                pct(e_es),
                format!("{:.4}", es.metrics.test_loss.unwrap_or(f64::NAN)),
            ],
        ],
    );
    let min_val = m
        .epochs
        .iter()
        .filter_map(|e| e.val_loss)
        .fold(f64::INFINITY, f64::min);
    let last_val = m.epochs.last().and_then(|e| e.val_loss).unwrap_or(f64::NAN);
    r.p(format!(
        "Validation loss: minimum {min_val:.4}, {last_val:.4} at the last epoch. Early stopping \
         {} the test error ({} → {}), trained {stopped_at} instead of {epochs} epochs.",
        if e_es < e_full {
            "lowered"
        } else if e_es > e_full {
            "raised"
        } else {
            "did not change"
        },
        pct(e_full),
        pct(e_es)
    ));
    r.set(
        "early_stopping",
        json!({"best_epoch": best, "stopped_at": stopped_at, "epochs": epochs,
               "test_error_without": e_full, "test_error_with": e_es,
               "min_val_loss": min_val, "last_val_loss": last_val}),
    );
    Ok(())
}

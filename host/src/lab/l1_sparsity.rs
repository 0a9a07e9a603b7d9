//! Weight sparsity under L1 and L2: how many weights end near zero, and how the first layer's
//! weight is shared out over the inputs.
//!
//! The lecture: L1 "leads most weights very close to zero" and chooses "a small subset of most
//! important inputs"; L2 "encourages using all of its inputs a little".

use serde_json::json;

use super::{pct, LabOptions, Report};
use crate::model::{Layer, Sequential};
use crate::nn::optim::OptimizerConfig;
use crate::plot::{Chart, Series};
use crate::train::config::TrainConfig;
use crate::train::{train, RunOptions};

/// The thresholds of the table (absolute weight values).
pub const THRESHOLDS: [f64; 4] = [1e-4, 1e-3, 1e-2, 3e-2];

/// Share of `w` whose absolute value is below each threshold (strictly).
pub fn share_below(w: &[f32], thresholds: &[f64]) -> Vec<f64> {
    thresholds
        .iter()
        .map(|&t| w.iter().filter(|v| (v.abs() as f64) < t).count() as f64 / w.len().max(1) as f64)
        .collect()
}

/// Every dense weight of `seq` (biases excluded), and the first dense layer's.
pub fn dense_weights(seq: &Sequential) -> (Vec<f32>, Vec<f32>) {
    let mut all = Vec::new();
    let mut first = Vec::new();
    for l in &seq.layers {
        if let Layer::Linear(l) = l {
            if first.is_empty() {
                first = l.weight.clone();
            }
            all.extend_from_slice(&l.weight);
        }
    }
    (all, first)
}

/// Share of the first layer's squared weight held by the `top` fraction of inputs with the
/// largest column norms (1 = all the weight on those inputs; `top` alone = spread evenly).
pub fn top_input_share(seq: &Sequential, top: f64) -> f64 {
    let Some(l) = seq.layers.iter().find_map(|l| match l {
        Layer::Linear(l) => Some(l),
        _ => None,
    }) else {
        return f64::NAN;
    };
    let mut col: Vec<f64> = vec![0.0; l.in_features];
    for row in l.weight.chunks_exact(l.in_features) {
        for (c, &w) in col.iter_mut().zip(row) {
            *c += (w as f64) * (w as f64);
        }
    }
    let total: f64 = col.iter().sum();
    col.sort_by(|a, b| b.total_cmp(a));
    let k = ((l.in_features as f64 * top).round() as usize).max(1);
    col[..k].iter().sum::<f64>() / total.max(f64::MIN_POSITIVE)
}

pub(super) fn run(opts: &LabOptions, r: &mut Report) -> anyhow::Result<()> {
    let (data, hidden, epochs, lr, l1, l2) = if opts.quick {
        (super::digits(0)?, vec![128], 30, 0.05, 1e-3f32, 1e-2f32)
    } else {
        (
            super::mnist(opts, 20_000, 10_000, false)?,
            vec![256, 256],
            5,
            0.05,
            1e-4f32,
            1e-3f32,
        )
    };
    let epochs = opts.epochs(epochs);
    let rows_cfg: [(&str, f32, f32); 4] = [
        ("none", 0.0, 0.0),
        ("L2", 0.0, l2),
        ("L1", l1, 0.0),
        ("L1 + L2", l1, l2),
    ];
    r.p(format!(
        "{} training examples, {}-{}-{} ReLU network, He init, SGD momentum 0.9, lr {lr}, batch \
         32, {epochs} epochs, no dropout; L1 = {l1} (penalty l1·Σ|w|), L2 = {l2} (penalty \
         (l2/2)·Σw²), on the dense weights only. The tables count the weights whose absolute \
         value is below each threshold (He init draws N(0, 2/fan_in): std {:.3} in the first \
         layer). \"Top 10% of inputs\": the share of the first layer's squared weight on the 10% \
         of inputs with the largest column norms (10% if spread evenly).",
        data.train.len(),
        data.train.features,
        hidden
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>()
            .join("-"),
        data.train.classes,
        (2.0 / data.train.features as f64).sqrt()
    ));
    let mut rows = Vec::new();
    let mut series = Vec::new();
    for (k, (name, c1, c2)) in rows_cfg.into_iter().enumerate() {
        let mut cfg = TrainConfig::default();
        cfg.epochs = epochs;
        cfg.batch_size = 32;
        cfg.lr = lr;
        cfg.threads = opts.threads;
        cfg.model.hidden = hidden.clone();
        cfg.optimizer = OptimizerConfig::Sgd {
            momentum: 0.9,
            nesterov: false,
        };
        cfg.early_stopping = None;
        cfg.regularization.l1 = c1;
        cfg.regularization.l2 = c2;
        opts.log(format!("l1-sparsity: {name}"));
        let out = train(&cfg, &data, &RunOptions::default())?;
        let seq = &out.model.net;
        let (all, first) = dense_weights(seq);
        let below = share_below(&all, &THRESHOLDS);
        let below_first = share_below(&first, &THRESHOLDS);
        let zeros = all.iter().filter(|&&w| w == 0.0).count() as f64 / all.len() as f64;
        let top = top_input_share(seq, 0.1);
        let acc = out.metrics.test_accuracy.unwrap_or(f64::NAN);
        let fmt = |v: &[f64]| v.iter().map(|&x| pct(x)).collect::<Vec<_>>().join(" / ");
        rows.push(vec![
            name.to_string(),
            fmt(&below),
            fmt(&below_first),
            pct(zeros),
            pct(top),
            pct(acc),
        ]);
        // Cumulative distribution of log10 |w| over every dense weight.
        let mut logs: Vec<f64> = all
            .iter()
            .map(|w| (w.abs() as f64).max(1e-8).log10())
            .collect();
        logs.sort_by(|a, b| a.total_cmp(b));
        let pts: Vec<(f64, f64)> = (0..=60)
            .map(|i| {
                let x = -6.0 + i as f64 * 0.1;
                let c = logs.partition_point(|&v| v < x);
                (x, 100.0 * c as f64 / logs.len() as f64)
            })
            .collect();
        series.push(Series::new(name, k, pts));
        r.set(
            name,
            json!({"l1": c1, "l2": c2, "thresholds": THRESHOLDS, "share_below": below,
                   "share_below_first_layer": below_first, "exact_zeros": zeros,
                   "top10_input_share": top, "test_accuracy": acc}),
        );
    }
    let th = THRESHOLDS
        .iter()
        .map(|t| format!("{t}"))
        .collect::<Vec<_>>()
        .join(" / ");
    r.table(
        &[
            "regulariser",
            &format!("|w| below {th} (all layers)"),
            "the same, first layer",
            "exactly 0",
            "top 10% of inputs",
            "test accuracy",
        ],
        &rows,
    );
    r.chart(
        "weights_cdf.png",
        &Chart {
            title: "Cumulative distribution of |w| (all dense weights)".into(),
            x_label: "log10 |w|".into(),
            y_label: "weights below (%)".into(),
            series,
            y_range: Some((0.0, 100.0)),
            ..Chart::default()
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Linear;

    #[test]
    fn shares_by_hand() {
        let w = [0.0, -5e-5, 5e-4, -0.02, 0.5];
        assert_eq!(
            share_below(&w, &THRESHOLDS),
            vec![0.4, 0.6, 0.6, 0.8],
            "1e-4: 0 and 5e-5; 1e-3: + 5e-4; 3e-2: + 0.02"
        );
        // Columns: input 0 has 3² + 4² = 25, input 1 has 0, input 2 has 1 + 1 + ... = 2.
        let seq = Sequential::new(vec![Layer::Linear(
            Linear::from_parts(3, 2, vec![3.0, 0.0, 1.0, 4.0, 0.0, 1.0], vec![0.0; 2]).unwrap(),
        )]);
        assert!((top_input_share(&seq, 0.34) - 25.0 / 27.0).abs() < 1e-12);
        let (all, first) = dense_weights(&seq);
        assert_eq!((all.len(), first.len()), (6, 6));
    }
}

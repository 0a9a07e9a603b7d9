//! Dead ReLU units after training at increasing learning rates, and the same with leaky ReLU.

use serde_json::json;

use super::probe::hidden_stats;
use super::{pct, LabOptions, Report};
use crate::nn::optim::OptimizerConfig;
use crate::plot::{Chart, Series};
use crate::train::config::TrainConfig;
use crate::train::{train, RunOptions};

pub(super) fn run(opts: &LabOptions, r: &mut Report) -> anyhow::Result<()> {
    let (data, hidden, epochs, rates): (_, _, _, &[f64]) = if opts.quick {
        (
            super::digits(0)?,
            vec![128, 128, 128],
            10,
            &[0.01, 0.1, 0.3, 1.0],
        )
    } else {
        (
            super::mnist(opts, 20_000, 10_000, false)?,
            vec![256, 256, 256],
            5,
            &[0.01, 0.03, 0.1, 0.3, 0.5, 1.0],
        )
    };
    let epochs = opts.epochs(epochs);
    r.p(format!(
        "{} training examples, {}-{}-{} network, He init, plain SGD (no momentum), batch 32, \
         {epochs} epochs per learning rate. A unit is dead when its input is ≤ 0 on every \
         training example (so a ReLU outputs 0 for all of them and never receives a gradient \
         again); for leaky ReLU the same count says how many units sit in the negative regime \
         everywhere, where they still learn with slope 0.01. The lecture: \"as much as 40% of \
         your network can be dead if the learning rate is set too high\".",
        data.train.len(),
        data.train.features,
        hidden
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>()
            .join("-"),
        data.train.classes
    ));
    let probe_n = data.train.len().min(10_000);
    let mut rows = Vec::new();
    let mut series = Vec::new();
    for (k, act) in ["relu", "leaky_relu"].into_iter().enumerate() {
        let mut pts = Vec::new();
        for &lr in rates {
            let mut cfg = TrainConfig::default();
            cfg.epochs = epochs;
            cfg.batch_size = 32;
            cfg.lr = lr;
            cfg.threads = opts.threads;
            cfg.model.hidden = hidden.clone();
            cfg.model.activation = act.into();
            cfg.optimizer = OptimizerConfig::Sgd {
                momentum: 0.0,
                nesterov: false,
            };
            cfg.early_stopping = None;
            opts.log(format!("dead-relu: {act} lr {lr}"));
            match train(&cfg, &data, &RunOptions::default()) {
                Ok(out) => {
                    let st = hidden_stats(&out.model.net, &data.train, probe_n);
                    let per: Vec<f64> = st.iter().map(|s| s.dead_fraction.unwrap_or(0.0)).collect();
                    let units: usize = hidden.iter().sum();
                    let dead = st
                        .iter()
                        .zip(&hidden)
                        .map(|(s, &h)| s.dead_fraction.unwrap_or(0.0) * h as f64)
                        .sum::<f64>()
                        / units as f64;
                    let acc = out.metrics.test_accuracy.unwrap_or(f64::NAN);
                    pts.push((lr.log10(), 100.0 * dead));
                    rows.push(vec![
                        act.into(),
                        format!("{lr}"),
                        pct(dead),
                        per.iter().map(|&d| pct(d)).collect::<Vec<_>>().join(" / "),
                        pct(acc),
                    ]);
                    r.set(
                        &format!("{act}_lr_{lr}"),
                        json!({"dead": dead, "per_layer": per, "test_accuracy": acc}),
                    );
                }
                Err(crate::train::TrainError::Diverged { epoch, .. }) => {
                    rows.push(vec![
                        act.into(),
                        format!("{lr}"),
                        format!("diverged (epoch {epoch})"),
                        "-".into(),
                        "-".into(),
                    ]);
                    r.set(&format!("{act}_lr_{lr}"), json!({"diverged": true}));
                }
                Err(e) => return Err(e.into()),
            }
        }
        series.push(Series::new(act, k, pts).markers());
    }
    r.table(
        &[
            "activation",
            "learning rate",
            "dead units (all layers)",
            "per layer",
            "test accuracy",
        ],
        &rows,
    );
    r.chart(
        "dead_fraction.png",
        &Chart {
            title: "Units never active on the training set".into(),
            x_label: "log10 learning rate".into(),
            y_label: "dead units (%)".into(),
            series,
            ..Chart::default()
        },
    )?;
    Ok(())
}

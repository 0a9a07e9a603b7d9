//! Decision boundaries of a small network on two interleaved moons for L2 strengths 0.01, 0.1
//! and 1 (the lecture's figure, from the CS231n ConvNetJS demo).

use serde_json::json;

use super::toy::{bounds, rasterise, two_moons};
use super::{prepared, LabOptions, Report};
use crate::nn::optim::OptimizerConfig;
use crate::plot::{boundary_chart, BoundaryPlot};
use crate::train::config::TrainConfig;
use crate::train::{train, RunOptions};

pub(super) fn run(opts: &LabOptions, r: &mut Report) -> anyhow::Result<()> {
    let (n, epochs) = if opts.quick { (200, 150) } else { (400, 600) };
    let epochs = opts.epochs(epochs);
    let data = two_moons(n, 0.2, 0);
    let test = two_moons(1000, 0.2, 1);
    let rect = bounds(&data, 0.5);
    let points: Vec<(f32, f32, u32)> = data
        .x
        .chunks_exact(2)
        .zip(&data.y)
        .map(|(p, &c)| (p[0], p[1], c))
        .collect();
    r.p(format!(
        "Two interleaved moons ({n} training points, noise 0.2, seed 0), a 2-64-64-2 ReLU \
         network, full-batch-ish SGD (batch 20, momentum 0.9, lr 0.05) for {epochs} epochs, \
         the penalty `(λ/2)·Σw²` on the weights (gradient `λw`, PyTorch's `weight_decay = λ`). \
         Test accuracy on 1,000 fresh points from the same distribution."
    ));
    let mut rows = Vec::new();
    for (i, l2) in [0.01f32, 0.1, 1.0].into_iter().enumerate() {
        let mut cfg = TrainConfig::default();
        cfg.epochs = epochs;
        cfg.batch_size = 20;
        cfg.lr = 0.05;
        cfg.threads = 1;
        cfg.model.hidden = vec![64, 64];
        cfg.optimizer = OptimizerConfig::Sgd {
            momentum: 0.9,
            nesterov: false,
        };
        cfg.regularization.l2 = l2;
        cfg.early_stopping = None;
        let d = prepared(data.clone(), None, Some(test.clone()));
        let out = train(&cfg, &d, &RunOptions::default())?;
        let raster = rasterise(&out.model.net, rect, 150, 150);
        let file = format!("boundary_l2_{l2}.png");
        boundary_chart(
            &r.dir.join(&file),
            &BoundaryPlot {
                title: format!("L2 λ = {l2}"),
                raster: &raster,
                points: &points,
            },
        )?;
        let m = &out.metrics;
        let train_acc = m.epochs.last().map_or(f64::NAN, |e| e.train_accuracy);
        let w: f64 = out
            .model
            .net
            .layers
            .iter()
            .filter_map(|l| match l {
                crate::model::Layer::Linear(l) => {
                    Some(l.weight.iter().map(|&w| (w as f64).powi(2)).sum::<f64>())
                }
                _ => None,
            })
            .sum::<f64>()
            .sqrt();
        rows.push(vec![
            format!("{l2}"),
            super::pct(train_acc),
            super::pct(m.test_accuracy.unwrap_or(f64::NAN)),
            format!("{w:.2}"),
            format!("![λ = {l2}]({file})"),
        ]);
        r.set(
            &format!("l2_{l2}"),
            json!({"train_accuracy": train_acc, "test_accuracy": m.test_accuracy, "weight_norm": w,
                   "class1_share": raster.class1_share()}),
        );
        let _ = i;
    }
    r.table(
        &["λ", "training accuracy", "test accuracy", "‖W‖", "boundary"],
        &rows,
    );
    r.p(
        "The lecture's figure shows the boundary getting smoother as λ grows from 0.01 to 1. Read \
         the pictures above for ours: with λ = 1 the weights are squeezed towards zero and the \
         boundary can become almost straight (or the network can stop fitting the moons at all).",
    );
    Ok(())
}

//! Ioffe & Szegedy's figure 1: validation accuracy against training steps with and without batch
//! norm, and the 15/50/85th percentiles of one sigmoid unit's input over training.

use serde_json::json;

use super::probe::{hidden_stats, initial_network, Trainer};
use super::{pct, LabOptions, Report};
use crate::nn::init::Init;
use crate::nn::optim::OptimizerConfig;
use crate::plot::{Chart, Series};
use crate::train::config::TrainConfig;

pub(super) fn run(opts: &LabOptions, r: &mut Report) -> anyhow::Result<()> {
    let (data, steps, every) = if opts.quick {
        (super::digits(0)?, 1200, 10)
    } else {
        (super::mnist(opts, 55_000, 10_000, true)?, 20_000, 100)
    };
    let steps = opts
        .epochs
        .map_or(steps, |e| e * data.train.len().div_ceil(60));
    let val = data.val.clone().unwrap_or_else(|| data.train.clone());
    r.p(format!(
        "As in Ioffe & Szegedy (2015), figure 1: {}-100-100-100-{} with sigmoid hidden units, \
         batch 60, plain SGD lr 0.5, the paper's \"small random Gaussian\" init (N(0, 0.01²)), \
         {steps} steps on {} training examples; \
         validation accuracy on {} held-out examples every {every} steps. The unit is unit 0 of \
         the last hidden layer; its input is what enters its sigmoid (after batch norm when there \
         is one), over the validation examples, evaluation mode.",
        data.train.features,
        data.train.classes,
        data.train.len(),
        val.len()
    ));
    let mut acc_series = Vec::new();
    let mut rows = Vec::new();
    for (k, bn) in [false, true].into_iter().enumerate() {
        let name = if bn {
            "with batch norm"
        } else {
            "without batch norm"
        };
        let mut cfg = TrainConfig::default();
        cfg.batch_size = 60;
        cfg.lr = 0.5;
        cfg.epochs = steps.div_ceil(data.train.len().div_ceil(60));
        cfg.threads = opts.threads;
        cfg.model.hidden = vec![100, 100, 100];
        cfg.model.activation = "sigmoid".into();
        cfg.model.init = Init::SmallNormal;
        cfg.model.batch_norm = bn;
        cfg.optimizer = OptimizerConfig::Sgd {
            momentum: 0.0,
            nesterov: false,
        };
        cfg.early_stopping = None;
        opts.log(format!("batchnorm: {name}"));
        let seq = initial_network(&cfg, &data)?;
        let mut t = Trainer::new(&cfg, seq);
        let mut acc = Vec::new();
        let mut q = [Vec::new(), Vec::new(), Vec::new()];
        let mut record = |t: &mut Trainer| {
            let a = t.evaluate(&val).1;
            acc.push((t.steps as f64, 100.0 * a));
            let st = hidden_stats(&t.net.seq, &val, 2000);
            if let Some(last) = st.last() {
                for (v, x) in q.iter_mut().zip(last.unit0_input) {
                    v.push((t.steps as f64, x));
                }
            }
        };
        record(&mut t);
        while t.steps < steps {
            let loss = t.epoch(&data.train, |t| {
                if t.steps % every == 0 && t.steps <= steps {
                    record(t);
                }
            });
            anyhow::ensure!(loss.is_finite(), "{name}: training diverged");
        }
        let final_acc = acc.last().map_or(f64::NAN, |a| a.1 / 100.0);
        let half = acc
            .iter()
            .find(|(_, a)| *a >= 0.9 * 100.0 * final_acc.max(0.0))
            .map_or(f64::NAN, |a| a.0);
        rows.push(vec![
            name.into(),
            pct(final_acc),
            format!("{half:.0}"),
            format!(
                "{:.2} / {:.2} / {:.2}",
                q[0].first().map_or(f64::NAN, |p| p.1),
                q[1].first().map_or(f64::NAN, |p| p.1),
                q[2].first().map_or(f64::NAN, |p| p.1)
            ),
            format!(
                "{:.2} / {:.2} / {:.2}",
                q[0].last().map_or(f64::NAN, |p| p.1),
                q[1].last().map_or(f64::NAN, |p| p.1),
                q[2].last().map_or(f64::NAN, |p| p.1)
            ),
        ]);
        acc_series.push(Series::new(name, k, acc.clone()));
        r.chart(
            &format!("unit_input_{}.png", if bn { "bn" } else { "no_bn" }),
            &Chart {
                title: format!("Input of a sigmoid unit, {name}: 15th, 50th, 85th percentiles"),
                x_label: "training steps".into(),
                y_label: "unit input".into(),
                series: vec![
                    Series::new("85th", 1, q[2].clone()),
                    Series::new("50th", 0, q[1].clone()),
                    Series::new("15th", 2, q[0].clone()),
                ],
                ..Chart::default()
            },
        )?;
        r.set(
            name,
            json!({"accuracy": acc, "p15": q[0], "p50": q[1], "p85": q[2], "final_accuracy": final_acc}),
        );
    }
    r.chart(
        "accuracy.png",
        &Chart {
            title: "Validation accuracy".into(),
            x_label: "training steps".into(),
            y_label: "accuracy (%)".into(),
            series: acc_series,
            legend_lower: true,
            ..Chart::default()
        },
    )?;
    r.table(
        &[
            "network",
            "final validation accuracy",
            "steps to 90% of it",
            "unit input p15 / p50 / p85 at start",
            "at the end",
        ],
        &rows,
    );
    r.p("Ioffe & Szegedy: with batch norm the network trains faster and reaches higher accuracy, and the unit's input distribution stays put; without it the percentiles drift over training.");
    Ok(())
}

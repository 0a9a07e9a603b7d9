//! Dropout's gain against the size of the training set: the same network with and without
//! dropout on nested subsets of the training data, the same number of examples seen by every run.
//!
//! The lecture (Srivastava et al. 2014, section 7.4): dropout gives no gain on very small data
//! sets, its largest gains on medium ones, and smaller gains as the data set grows.

use serde_json::json;

use super::{pct, LabOptions, Report};
use crate::nn::optim::OptimizerConfig;
use crate::plot::{Chart, Series};
use crate::train::config::{Rates, TrainConfig};
use crate::train::{train, RunOptions};

/// Epochs that show a training set of `size` examples about `seen` examples in total (at least
/// one).
pub fn epochs_for(size: usize, seen: usize) -> usize {
    seen.div_ceil(size.max(1)).max(1)
}

pub(super) fn run(opts: &LabOptions, r: &mut Report) -> anyhow::Result<()> {
    let (data, hidden, sizes, seen): (_, _, &[usize], _) = if opts.quick {
        (super::digits(0)?, vec![128, 128], &[100, 300, 1293], 40_000)
    } else {
        (
            super::mnist(opts, 60_000, 10_000, false)?,
            vec![128, 128],
            &[1_000, 3_000, 10_000, 30_000, 60_000],
            150_000,
        )
    };
    let test = data.test.as_ref().unwrap_or(&data.train);
    r.p(format!(
        "{}-{}-{} ReLU network, He init, SGD momentum 0.9, lr 0.05, batch 32, trained on the \
         first N training examples (nested subsets) until it has seen about {seen} examples \
         (N = {} gets {} epochs, N = {} gets {}); without dropout, and with dropout 0.2 on the \
         inputs and 0.5 on the hidden layers. No early stopping: the test error after the last \
         epoch, on {} test examples. Gain = error without dropout − error with dropout \
         (percentage points). One seed per cell: at a 2% error on 10,000 test images the \
         binomial standard error is 0.14 points.",
        data.train.features,
        hidden
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>()
            .join("-"),
        data.train.classes,
        sizes[0],
        epochs_for(sizes[0], seen),
        sizes[sizes.len() - 1],
        epochs_for(sizes[sizes.len() - 1], seen),
        test.len()
    ));
    let mut rows = Vec::new();
    let mut plain_pts = Vec::new();
    let mut drop_pts = Vec::new();
    for &size in sizes {
        let n = size.min(data.train.len());
        let mut sub = data.clone();
        sub.train = data.train.subset(&(0..n).collect::<Vec<_>>());
        let mut errors = [0.0f64; 2];
        for (k, dropout) in [false, true].into_iter().enumerate() {
            let mut cfg = TrainConfig::default();
            cfg.epochs = epochs_for(n, seen);
            cfg.batch_size = 32;
            cfg.lr = 0.05;
            cfg.threads = opts.threads;
            cfg.model.hidden = hidden.clone();
            if dropout {
                cfg.model.input_dropout = 0.2;
                cfg.model.dropout = Rates::All(0.5);
            }
            cfg.optimizer = OptimizerConfig::Sgd {
                momentum: 0.9,
                nesterov: false,
            };
            cfg.early_stopping = None;
            opts.log(format!("dropout-size: {n} examples, dropout {dropout}"));
            let out = train(&cfg, &sub, &RunOptions::default())?;
            errors[k] = 1.0 - out.metrics.test_accuracy.unwrap_or(f64::NAN);
        }
        let gain = errors[0] - errors[1];
        rows.push(vec![
            n.to_string(),
            epochs_for(n, seen).to_string(),
            pct(errors[0]),
            pct(errors[1]),
            format!("{:+.2}", 100.0 * gain),
        ]);
        plain_pts.push(((n as f64).log10(), 100.0 * errors[0]));
        drop_pts.push(((n as f64).log10(), 100.0 * errors[1]));
        r.set(
            &format!("n_{n}"),
            json!({"epochs": epochs_for(n, seen), "error_plain": errors[0],
                   "error_dropout": errors[1], "gain": gain}),
        );
    }
    r.table(
        &[
            "training examples",
            "epochs",
            "test error, no dropout",
            "test error, dropout",
            "gain (points)",
        ],
        &rows,
    );
    r.chart(
        "error_vs_size.png",
        &Chart {
            title: "Test error against training-set size".into(),
            x_label: "log10 training examples".into(),
            y_label: "test error (%)".into(),
            series: vec![
                Series::new("no dropout", 0, plain_pts).markers(),
                Series::new("dropout", 1, drop_pts).markers(),
            ],
            ..Chart::default()
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_sees_about_the_same_examples() {
        assert_eq!(epochs_for(1000, 150_000), 150);
        assert_eq!(epochs_for(60_000, 150_000), 3);
        assert_eq!(epochs_for(1293, 40_000), 31);
        assert_eq!(epochs_for(100_000, 10), 1);
        assert_eq!(epochs_for(0, 10), 10);
    }
}

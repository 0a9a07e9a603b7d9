//! n-bit parity: how many hidden units a shallow (one hidden layer) and a deep narrow network
//! need to fit all 2^n patterns.

use serde_json::json;

use super::{prepared, LabOptions, Report};
use crate::data::Dataset;
use crate::nn::optim::OptimizerConfig;
use crate::plot::{Chart, Series};
use crate::train::config::{EarlyStopping, StopMetric, TrainConfig};
use crate::train::{train, RunOptions};

/// All `2^n` patterns of `n` bits as ±1 inputs, labelled with their parity.
pub(crate) fn parity_set(n: usize) -> Dataset {
    let mut x = Vec::new();
    let mut y = Vec::new();
    for v in 0..1u32 << n {
        for b in 0..n {
            x.push(if v >> b & 1 == 1 { 1.0 } else { -1.0 });
        }
        y.push(v.count_ones() % 2);
    }
    Dataset {
        features: n,
        classes: 2,
        x,
        y,
    }
}

/// Best training accuracy over `seeds` runs of `hidden`.
fn fit(
    n: usize,
    hidden: &[usize],
    epochs: usize,
    seeds: u64,
    opts: &LabOptions,
) -> anyhow::Result<f64> {
    let d = parity_set(n);
    let mut best: f64 = 0.0;
    for seed in 0..seeds {
        let mut cfg = TrainConfig::default();
        cfg.seed = seed;
        cfg.epochs = epochs;
        cfg.batch_size = 16;
        cfg.lr = 0.01;
        cfg.threads = 1;
        cfg.model.hidden = hidden.to_vec();
        cfg.model.activation = "tanh".into();
        cfg.model.init = crate::nn::init::Init::XavierUniform;
        cfg.optimizer = OptimizerConfig::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
        // Validation = the training set: stop once it has not improved for a while.
        cfg.early_stopping = Some(EarlyStopping {
            metric: StopMetric::ValAccuracy,
            patience: epochs / 4,
            min_delta: 0.0,
        });
        let data = prepared(d.clone(), Some(d.clone()), None);
        let out = train(&cfg, &data, &RunOptions::default())?;
        let acc = out
            .metrics
            .epochs
            .iter()
            .filter_map(|e| e.val_accuracy)
            .fold(0.0, f64::max);
        best = best.max(acc);
        opts.log(format!("parity {n}: {hidden:?} seed {seed}: {acc:.4}"));
        if best >= 1.0 {
            break;
        }
    }
    Ok(best)
}

fn params(n: usize, hidden: &[usize]) -> usize {
    let mut w = n;
    let mut p = 0;
    for &h in hidden.iter().chain(std::iter::once(&2)) {
        p += w * h + h;
        w = h;
    }
    p
}

pub(super) fn run(opts: &LabOptions, r: &mut Report) -> anyhow::Result<()> {
    let (ns, epochs, seeds, depth): (&[usize], usize, u64, usize) = if opts.quick {
        (&[4, 6], 400, 2, 3)
    } else {
        (&[6, 8, 10], 800, 2, 4)
    };
    let epochs = opts.epochs(epochs);
    r.p(format!(
        "All 2^n patterns of n bits (±1) are the training set; the question is only whether a \
         network can represent parity and SGD finds it: 100% training accuracy. tanh units, \
         Xavier init, Adam lr 0.01, batch 16, up to {epochs} epochs (stopping when accuracy has \
         not improved for {} epochs), best of {seeds} seeds. Shallow: one hidden layer of w \
         units; deep: {depth} hidden layers of w units each. Hastad/the lecture: a shallow \
         network may need exponentially many units, a deep one polynomially many. (With \
         threshold units one hidden layer of n units suffices for n-bit parity, so at these \
         sizes the difference is modest: this measures what training finds.)",
        epochs / 4
    ));
    let mut rows = Vec::new();
    let mut sh_pts = Vec::new();
    let mut dp_pts = Vec::new();
    for &n in ns {
        let first = |deep: bool| -> anyhow::Result<Option<(usize, usize)>> {
            let widths: Vec<usize> = if deep {
                (1..=2 * n).collect()
            } else {
                (1..=4 * n).chain([6 * n, 8 * n, 16 * n]).collect()
            };
            for w in widths {
                let hidden = if deep { vec![w; depth] } else { vec![w] };
                if fit(n, &hidden, epochs, seeds, opts)? >= 1.0 {
                    return Ok(Some((hidden.iter().sum(), params(n, &hidden))));
                }
            }
            Ok(None)
        };
        let shallow = first(false)?;
        let deep = first(true)?;
        let show = |v: Option<(usize, usize)>| {
            v.map_or("not reached".to_string(), |(u, p)| {
                format!("{u} units ({p} parameters)")
            })
        };
        rows.push(vec![n.to_string(), show(shallow), show(deep)]);
        if let Some((u, _)) = shallow {
            sh_pts.push((n as f64, u as f64));
        }
        if let Some((u, _)) = deep {
            dp_pts.push((n as f64, u as f64));
        }
        r.set(
            &format!("n{n}"),
            json!({"shallow_units": shallow.map(|s| s.0), "shallow_params": shallow.map(|s| s.1),
                   "deep_units": deep.map(|s| s.0), "deep_params": deep.map(|s| s.1)}),
        );
    }
    r.table(
        &[
            "n",
            "shallow: fewest units reaching 100%",
            &format!("deep ({depth} layers)"),
        ],
        &rows,
    );
    r.chart(
        "units.png",
        &Chart {
            title: "Hidden units needed for 100% on n-bit parity".into(),
            x_label: "n (bits)".into(),
            y_label: "hidden units".into(),
            series: vec![
                Series::new("shallow (1 layer)", 0, sh_pts).markers(),
                Series::new(format!("deep ({depth} layers)"), 1, dp_pts).markers(),
            ],
            ..Chart::default()
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn parity_set_labels() {
        let d = super::parity_set(3);
        assert_eq!(d.len(), 8);
        assert_eq!(d.y, vec![0, 1, 1, 0, 1, 0, 0, 1]);
        assert_eq!(&d.x[3 * 3..4 * 3], &[1.0, 1.0, -1.0]);
    }
}

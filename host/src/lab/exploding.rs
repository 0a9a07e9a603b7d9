//! Exploding gradients in a deep ReLU network at a large learning rate, and what a smaller rate,
//! clipping and the initialisation change; then a deep sigmoid network at small and large rates
//! ("a small learning rate aggravates gradient vanishing").
//!
//! Every arm trains with the trainer's own step ([`super::probe::Trainer`]) and records, at every
//! step, the norm of each dense layer's loss gradient before clipping.

use serde_json::json;

use super::probe::{initial_network, Trainer};
use super::{pct, LabOptions, Report};
use crate::model::Layer;
use crate::nn::init::Init;
use crate::nn::optim::OptimizerConfig;
use crate::plot::{Chart, Series};
use crate::train::config::TrainConfig;
use crate::train::PreparedData;

/// One arm of the ReLU experiment.
struct Arm {
    name: &'static str,
    lr: f64,
    clip: Option<f32>,
    init: Init,
    /// Multiplies the initial weights (1 = the scheme as it is).
    gain: f32,
}

/// What one arm measured.
#[derive(Debug, serde::Serialize)]
pub struct Trace {
    /// Per dense layer (1 = next to the input): gradient norm at the first step.
    pub first_step: Vec<f64>,
    /// Global gradient norm (all dense weights) at every step until the end or divergence.
    pub global: Vec<f64>,
    /// Largest per-layer gradient norm seen at any step, per layer.
    pub max_per_layer: Vec<f64>,
    /// The step (1-based) at which the loss or the weights stopped being finite.
    pub diverged_at: Option<usize>,
    /// Test accuracy (None if diverged).
    pub accuracy: Option<f64>,
    /// ‖W_l(end) − W_l(0)‖ / ‖W_l(0)‖ per dense layer (None if diverged).
    pub relative_change: Option<Vec<f64>>,
}

/// `‖a − b‖ / ‖b‖` for each dense layer's weights.
fn relative_changes(a: &crate::model::Sequential, b: &crate::model::Sequential) -> Vec<f64> {
    a.layers
        .iter()
        .zip(&b.layers)
        .filter_map(|(x, y)| match (x, y) {
            (Layer::Linear(x), Layer::Linear(y)) => {
                let d: f64 = x
                    .weight
                    .iter()
                    .zip(&y.weight)
                    .map(|(p, q)| ((p - q) as f64).powi(2))
                    .sum();
                let n: f64 = y.weight.iter().map(|&q| (q as f64).powi(2)).sum();
                Some((d / n.max(f64::MIN_POSITIVE)).sqrt())
            }
            _ => None,
        })
        .collect()
}

/// `cfg`'s initial network with every weight × `gain`.
fn start_network(
    cfg: &TrainConfig,
    data: &PreparedData,
    gain: f32,
) -> anyhow::Result<crate::model::Sequential> {
    let mut seq = initial_network(cfg, data)?;
    for l in &mut seq.layers {
        if let Layer::Linear(l) = l {
            l.weight.iter_mut().for_each(|w| *w *= gain);
        }
    }
    Ok(seq)
}

/// Per dense layer, the gradient norm at initialisation (weights × `gain`), mean over 8
/// batches of 32.
pub fn init_gradients(
    cfg: &TrainConfig,
    data: &PreparedData,
    gain: f32,
) -> anyhow::Result<Vec<f64>> {
    let mut t = Trainer::new(cfg, start_network(cfg, data, gain)?);
    let n = data.train.len();
    let mut out: Vec<f64> = Vec::new();
    for b in 0..8 {
        let rows: Vec<usize> = (b * 32..(b + 1) * 32).map(|i| i % n).collect();
        let g = t.gradient_norms(&data.train, &rows);
        if out.is_empty() {
            out = vec![0.0; g.len()];
        }
        for (o, v) in out.iter_mut().zip(g) {
            *o += v / 8.0;
        }
    }
    Ok(out)
}

/// Trains `cfg` (weights × `gain` at the start) for its epochs, recording gradients per step.
pub fn trace(cfg: &TrainConfig, data: &PreparedData, gain: f32) -> anyhow::Result<Trace> {
    let seq = start_network(cfg, data, gain)?;
    let start = seq.clone();
    let mut t = Trainer::new(cfg, seq);
    t.track_grads = true;
    let mut global = Vec::new();
    let mut first_step = Vec::new();
    let mut max_per_layer: Vec<f64> = Vec::new();
    let mut diverged_at = None;
    for _ in 0..cfg.epochs {
        let loss = t.epoch(&data.train, |t| {
            let g = &t.grad_norms;
            if first_step.is_empty() {
                first_step = g.clone();
                max_per_layer = g.clone();
            }
            for (m, v) in max_per_layer.iter_mut().zip(g) {
                *m = m.max(*v);
            }
            global.push(g.iter().map(|v| v * v).sum::<f64>().sqrt());
        });
        if !loss.is_finite() {
            // The failing step is not counted by the hook: it is the one after the last.
            diverged_at = Some(t.steps + 1);
            break;
        }
    }
    let (accuracy, relative_change) = if diverged_at.is_some() {
        (None, None)
    } else {
        let acc = t.evaluate(data.test.as_ref().unwrap_or(&data.train)).1;
        (Some(acc), Some(relative_changes(&t.net.seq, &start)))
    };
    Ok(Trace {
        first_step,
        global,
        max_per_layer,
        diverged_at,
        accuracy,
        relative_change,
    })
}

fn config(
    opts: &LabOptions,
    act: &str,
    width: usize,
    depth: usize,
    epochs: usize,
    lr: f64,
    init: Init,
) -> TrainConfig {
    let mut cfg = TrainConfig::default();
    cfg.epochs = epochs;
    cfg.batch_size = 32;
    cfg.lr = lr;
    cfg.threads = opts.threads;
    cfg.model.hidden = vec![width; depth];
    cfg.model.activation = act.into();
    cfg.model.init = init;
    cfg.optimizer = OptimizerConfig::Sgd {
        momentum: 0.9,
        nesterov: false,
    };
    cfg.early_stopping = None;
    cfg
}

pub(super) fn run(opts: &LabOptions, r: &mut Report) -> anyhow::Result<()> {
    let (data, width, depth, epochs) = if opts.quick {
        (super::digits(0)?, 64, 12, 3)
    } else {
        (super::mnist(opts, 10_000, 10_000, false)?, 128, 16, 3)
    };
    let epochs = opts.epochs(epochs);
    // Part 0: gradient norms at initialisation against depth.
    let depths: &[usize] = if opts.quick {
        &[2, 4, 8, 12]
    } else {
        &[2, 4, 8, 12, 16]
    };
    let schemes: [(&str, Init, f32); 3] = [
        ("He", Init::HeNormal, 1.0),
        ("He ×1.5", Init::HeNormal, 1.5),
        ("Xavier", Init::XavierNormal, 1.0),
    ];
    r.p(format!(
        "Gradient norms at initialisation against depth: hidden ReLU layers of {width} units on \
         {} training examples, zero biases, ‖∂L/∂W‖ of the first dense layer (next to the \
         input) and of the output layer, mean over 8 batches of 32. \"He ×1.5\" is He init with \
         every weight multiplied by 1.5: each layer then multiplies the signal by about 1.5 (He \
         keeps it, Xavier multiplies it by about √(1/2) for ReLUs).",
        data.train.len()
    ));
    let mut rows = Vec::new();
    let mut depth_series = Vec::new();
    for (k, (name, init, gain)) in schemes.into_iter().enumerate() {
        let mut pts = Vec::new();
        let mut row = vec![name.to_string()];
        for &d in depths {
            let cfg = config(opts, "relu", width, d, 1, 0.01, init);
            let g = init_gradients(&cfg, &data, gain)?;
            row.push(format!("{:.2e} / {:.2e}", g[0], g[g.len() - 1]));
            pts.push((d as f64, g[0].max(1e-30).log10()));
            r.set(&format!("init_{name}_depth_{d}"), json!(g));
        }
        rows.push(row);
        depth_series.push(Series::new(name, k, pts).markers());
    }
    let header: Vec<String> = std::iter::once("initialisation".to_string())
        .chain(
            depths
                .iter()
                .map(|d| format!("{d} hidden: ‖∂L/∂W₁‖ / ‖∂L/∂W_out‖")),
        )
        .collect();
    r.table(
        &header.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        &rows,
    );
    r.chart(
        "depth.png",
        &Chart {
            title: "First layer's gradient norm at initialisation".into(),
            x_label: "hidden layers".into(),
            y_label: "log10 ‖∂L/∂W₁‖".into(),
            series: depth_series,
            legend_lower: true,
            ..Chart::default()
        },
    )?;

    let big = 0.1;
    let arm = |name, lr, clip, gain| Arm {
        name,
        lr,
        clip,
        init: Init::HeNormal,
        gain,
    };
    let arms = [
        arm("He, lr 0.1", big, None, 1.0),
        arm("He, lr 0.01", 0.01, None, 1.0),
        arm("He ×1.5, lr 0.1", big, None, 1.5),
        arm("He ×1.5, lr 0.01", 0.01, None, 1.5),
        arm("He ×1.5, lr 0.001", 0.001, None, 1.5),
        arm("He ×1.5, lr 0.1, clip 1", big, Some(1.0), 1.5),
        arm("He ×1.5, lr 0.01, clip 1", 0.01, Some(1.0), 1.5),
    ];
    r.p(format!(
        "Training: {depth} hidden ReLU layers of {width} units, SGD momentum 0.9, batch 32, \
         {epochs} epochs. Clipping rescales all gradients together to a global norm of at most 1 \
         (norms are recorded before clipping)."
    ));
    let mut rows = Vec::new();
    let mut series = Vec::new();
    for (k, a) in arms.iter().enumerate() {
        let mut cfg = config(opts, "relu", width, depth, epochs, a.lr, a.init);
        cfg.regularization.clip_grad_norm = a.clip;
        opts.log(format!("exploding: {}", a.name));
        let t = trace(&cfg, &data, a.gain)?;
        let l = t.first_step.len();
        rows.push(vec![
            a.name.to_string(),
            format!(
                "{:.2e} / {:.2e} ({:.2e})",
                t.first_step[0],
                t.first_step[l - 2],
                t.first_step[0] / t.first_step[l - 2]
            ),
            format!("{:.2e}", t.global.iter().cloned().fold(0.0, f64::max)),
            format!("{:.2e}", t.max_per_layer[0]),
            match t.diverged_at {
                Some(s) => format!("diverged at step {s}"),
                None => pct(t.accuracy.unwrap_or(f64::NAN)),
            },
        ]);
        series.push(Series::new(
            a.name,
            k,
            t.global
                .iter()
                .enumerate()
                .map(|(s, g)| ((s + 1) as f64, g.max(1e-30).log10()))
                .collect(),
        ));
        r.set(a.name, json!(t));
    }
    r.table(
        &[
            "network, learning rate",
            "‖∂L/∂W₁‖ / ‖∂L/∂W_last hidden‖ at step 1 (ratio)",
            "largest global gradient norm",
            "largest ‖∂L/∂W₁‖",
            "result",
        ],
        &rows,
    );
    r.chart(
        "global_gradient.png",
        &Chart {
            title: "Global gradient norm per step (ReLU)".into(),
            x_label: "step".into(),
            y_label: "log10 ‖∂L/∂W‖ (all layers)".into(),
            series,
            ..Chart::default()
        },
    )?;

    // Part 2: sigmoid networks of two depths, small vs larger rates.
    let (s_depths, s_epochs): (&[usize], usize) = if opts.quick {
        (&[3, 5], 20)
    } else {
        (&[3, 5], 3)
    };
    let s_epochs = opts.epochs(s_epochs);
    let rates: &[f64] = &[0.001, 0.01, 0.1, 0.3, 1.0];
    r.p(format!(
        "Part 2, vanishing: sigmoid networks of {s_depths:?} hidden layers of {width} units, \
         Xavier init, the same optimiser, {s_epochs} epochs, no clipping. Relative change = \
         ‖W(end) − W(0)‖ / ‖W(0)‖ of a layer's weights over the whole run: how far training \
         moved it. An update of layer 1 is the rate times its gradient, so the vanishing factor \
         (second column) and a small rate multiply."
    ));
    let mut rows = Vec::new();
    for &s_depth in s_depths {
        for &lr in rates {
            let cfg = config(
                opts,
                "sigmoid",
                width,
                s_depth,
                s_epochs,
                lr,
                Init::XavierNormal,
            );
            opts.log(format!("exploding: sigmoid depth {s_depth} lr {lr}"));
            let t = trace(&cfg, &data, 1.0)?;
            let l = t.first_step.len();
            let rc = t.relative_change.clone();
            rows.push(vec![
                format!("{s_depth}"),
                format!("{lr}"),
                format!("{:.2e}", t.first_step[0] / t.first_step[l - 2]),
                rc.as_ref()
                    .map_or("-".into(), |c| format!("{:.2e} / {:.2e}", c[0], c[l - 2])),
                match t.diverged_at {
                    Some(s) => format!("diverged at step {s}"),
                    None => pct(t.accuracy.unwrap_or(f64::NAN)),
                },
            ]);
            r.set(&format!("sigmoid_depth_{s_depth}_lr_{lr}"), json!(t));
        }
    }
    r.table(
        &[
            "sigmoid layers",
            "learning rate",
            "‖∂L/∂W₁‖ / ‖∂L/∂W_last hidden‖ at step 1",
            "relative change of W₁ / of the last hidden layer",
            "test accuracy",
        ],
        &rows,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Linear, Sequential};

    #[test]
    fn relative_change_by_hand() {
        let a = Sequential::new(vec![Layer::Linear(
            Linear::from_parts(2, 1, vec![3.0, 4.0], vec![0.0]).unwrap(),
        )]);
        let b = Sequential::new(vec![Layer::Linear(
            Linear::from_parts(2, 1, vec![3.0, 8.0], vec![1.0]).unwrap(),
        )]);
        // ‖(0, -4)‖ / ‖(3, 8)‖; the bias does not count.
        let c = relative_changes(&a, &b);
        assert_eq!(c.len(), 1);
        assert!((c[0] - 4.0 / 73f64.sqrt()).abs() < 1e-12);
    }

    /// Gradients grow with depth when each layer amplifies the signal (He × 1.5), and stay of
    /// the same order with He's gain.
    #[test]
    fn gradients_grow_with_depth_when_each_layer_amplifies() {
        let data = crate::lab::digits(0).unwrap();
        let opts = LabOptions::default();
        let g = |depth: usize, gain: f32| {
            let mut cfg = config(&opts, "relu", 64, depth, 1, 0.01, Init::HeNormal);
            cfg.threads = 1;
            init_gradients(&cfg, &data, gain).unwrap()[0]
        };
        let (he4, he12) = (g(4, 1.0), g(12, 1.0));
        let (big4, big12) = (g(4, 1.5), g(12, 1.5));
        // 8 more layers at gain 1.5: 1.5^8 = 26 in the signal (the softmax error stays O(1)).
        assert!(big12 / big4 > 10.0, "gain 1.5: {big4} -> {big12}");
        assert!((0.2..5.0).contains(&(he12 / he4)), "He: {he4} -> {he12}");
    }
}

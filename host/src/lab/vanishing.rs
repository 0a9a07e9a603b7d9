//! Per-layer gradient norms in a deep sigmoid network vs ReLU, at initialisation and during
//! training, with and without greedy layer-wise pretraining.

use serde_json::json;

use super::probe::{initial_network, Trainer};
use super::{pct, LabOptions, Report};
use crate::nn::init::Init;
use crate::nn::optim::OptimizerConfig;
use crate::plot::{Chart, Series};
use crate::train::config::PretrainConfig;
use crate::train::config::TrainConfig;
use crate::train::PreparedData;

pub(super) fn run(opts: &LabOptions, r: &mut Report) -> anyhow::Result<()> {
    let (data, width, depth, epochs, pre_epochs) = if opts.quick {
        (super::digits(0)?, 32, 10, 8, 3)
    } else {
        (super::mnist(opts, 10_000, 10_000, true)?, 100, 12, 20, 5)
    };
    let epochs = opts.epochs(epochs);
    r.p(format!(
        "{depth} hidden layers of {width} units on {} training examples; sigmoid with Xavier \
         init, ReLU with He init; SGD momentum 0.9, lr 0.02, batch 32, gradients clipped to a global norm of 5 (the 12-layer ReLU net diverges at lr 0.05 without it; norms are recorded before clipping), {epochs} epochs. \
         Pretraining: the trainer's greedy layer-wise `[pretrain]`, denoising autoencoders \
         (masking 0.1) or RBMs (CD-1), {pre_epochs} epochs per layer, lr 0.1 (0.05 for ReLU layers: 0.1 \
         killed them). Gradient norm = ‖∂L/∂W‖ of each \
         dense layer's weights for the mean loss of a batch; at initialisation averaged over 8 \
         batches, during training over every step of the epoch. Layer 1 is next to the input.",
        data.train.len()
    ));
    let mut rows = Vec::new();
    let mut init_series = Vec::new();
    for (variant, (act, pre)) in VARIANTS.into_iter().enumerate() {
        let name = match pre {
            None => act.to_string(),
            Some(m) => format!("{act} + {m} pretraining"),
        };
        let cfg = config(opts, act, pre, width, depth, epochs, pre_epochs)?;
        opts.log(format!("vanishing: {name}"));
        let g = measure(&cfg, &data, depth, epochs)?;
        let ratio = g.at_init[0] / g.at_init[depth - 1];
        rows.push(vec![
            name.clone(),
            format!("{:.2e}", g.at_init[0]),
            format!("{:.2e}", g.at_init[depth - 1]),
            format!("{ratio:.2e}"),
            g.per_epoch.last().map_or("-".into(), |e| {
                format!("{:.2e} / {:.2e}", e[0], e[depth - 1])
            }),
            if g.diverged {
                "diverged".into()
            } else {
                pct(g.accuracy)
            },
        ]);
        init_series.push(
            Series::new(
                name.clone(),
                variant,
                g.at_init
                    .iter()
                    .enumerate()
                    .map(|(i, g)| ((i + 1) as f64, g.max(1e-30).log10()))
                    .collect(),
            )
            .markers(),
        );
        let file = format!(
            "training_{}.png",
            name.replace(" + ", "_").replace(' ', "_")
        );
        r.chart(&file, &training_chart(&name, &g, depth))?;
        r.set(
            &name,
            json!({"at_init": g.at_init, "per_epoch": g.per_epoch, "test_accuracy": g.accuracy,
                   "first_over_last_hidden_at_init": ratio, "diverged": g.diverged}),
        );
    }
    r.table(
        &[
            "network",
            "‖∂L/∂W₁‖ at init",
            &format!("‖∂L/∂W{depth}‖ at init"),
            "first / last hidden",
            "first / last hidden, last epoch",
            "test accuracy",
        ],
        &rows,
    );
    r.chart(
        "at_init.png",
        &Chart {
            title: "Gradient norm per layer at initialisation".into(),
            x_label: "dense layer (1 = next to the input)".into(),
            y_label: "log10 ‖∂L/∂W‖".into(),
            series: init_series,
            legend_lower: true,
            ..Chart::default()
        },
    )?;
    r.p("A ratio far below 1 in the fourth column means the gradient vanishes on its way down to the first layers.");
    Ok(())
}

/// (hidden activation, pretraining method): RBMs only for sigmoid units.
const VARIANTS: [(&str, Option<&str>); 5] = [
    ("sigmoid", None),
    ("sigmoid", Some("denoising")),
    ("sigmoid", Some("rbm")),
    ("relu", None),
    ("relu", Some("denoising")),
];

/// The run of one variant: `depth` hidden layers of `width`, SGD with momentum, clipping, and
/// the trainer's `[pretrain]` when `pre` names a method.
fn config(
    opts: &LabOptions,
    act: &str,
    pre: Option<&str>,
    width: usize,
    depth: usize,
    epochs: usize,
    pre_epochs: usize,
) -> anyhow::Result<TrainConfig> {
    let mut cfg = TrainConfig::default();
    cfg.epochs = epochs;
    cfg.batch_size = 32;
    cfg.lr = 0.02;
    cfg.regularization.clip_grad_norm = Some(5.0);
    cfg.threads = opts.threads;
    cfg.model.hidden = vec![width; depth];
    cfg.model.activation = act.into();
    cfg.model.init = if act == "relu" {
        Init::HeNormal
    } else {
        Init::XavierNormal
    };
    cfg.optimizer = OptimizerConfig::Sgd {
        momentum: 0.9,
        nesterov: false,
    };
    cfg.early_stopping = None;
    if let Some(method) = pre {
        // Through TOML, so the lab follows the `[pretrain]` section as it evolves.
        let pre_lr = if act == "relu" { 0.05 } else { 0.1 };
        let p: PretrainConfig = toml::from_str(&format!(
            "method = \"{method}\"\nepochs = {pre_epochs}\nlr = {pre_lr}\n\
             corruption_level = 0.1\n"
        ))?;
        cfg.pretrain = Some(p);
    }
    Ok(cfg)
}

/// The gradient norms of one variant.
struct Gradients {
    /// Per dense layer, at initialisation (mean over 8 batches).
    at_init: Vec<f64>,
    /// Per epoch, per dense layer (mean over the epoch's steps).
    per_epoch: Vec<Vec<f64>>,
    diverged: bool,
    /// Test accuracy (NaN if diverged).
    accuracy: f64,
}

/// Trains `cfg` step by step, recording every dense layer's gradient norm.
fn measure(
    cfg: &TrainConfig,
    data: &PreparedData,
    depth: usize,
    epochs: usize,
) -> anyhow::Result<Gradients> {
    let seq = initial_network(cfg, data)?;
    let mut t = Trainer::new(cfg, seq);
    let mut at_init = vec![0.0; depth + 1];
    let n = data.train.len();
    for b in 0..8 {
        let rows: Vec<usize> = (b * 32..(b + 1) * 32).map(|i| i % n).collect();
        for (a, g) in at_init.iter_mut().zip(t.gradient_norms(&data.train, &rows)) {
            *a += g / 8.0;
        }
    }
    t.track_grads = true;
    let mut per_epoch: Vec<Vec<f64>> = Vec::new();
    let mut diverged = false;
    for _ in 0..epochs {
        let mut sum = vec![0.0; depth + 1];
        let mut steps = 0usize;
        let loss = t.epoch(&data.train, |t| {
            for (s, g) in sum.iter_mut().zip(&t.grad_norms) {
                *s += g;
            }
            steps += 1;
        });
        if !loss.is_finite() {
            diverged = true;
            break;
        }
        per_epoch.push(sum.iter().map(|s| s / steps.max(1) as f64).collect());
    }
    let accuracy = if diverged {
        f64::NAN
    } else {
        t.evaluate(data.test.as_ref().unwrap_or(&data.train)).1
    };
    Ok(Gradients {
        at_init,
        per_epoch,
        diverged,
        accuracy,
    })
}

/// Gradient norms during training: one line per layer (every third layer, to stay readable).
fn training_chart(name: &str, g: &Gradients, depth: usize) -> Chart {
    let series = (0..=depth)
        .step_by(3)
        .enumerate()
        .map(|(k, l)| {
            Series::new(
                if l == depth {
                    "output layer".to_string()
                } else {
                    format!("layer {}", l + 1)
                },
                k,
                std::iter::once((0.0, g.at_init[l]))
                    .chain(
                        g.per_epoch
                            .iter()
                            .enumerate()
                            .map(|(e, p)| ((e + 1) as f64, p[l])),
                    )
                    .map(|(x, y)| (x, y.max(1e-30).log10()))
                    .collect(),
            )
            .markers()
        })
        .collect();
    Chart {
        title: format!("Gradient norms during training: {name}"),
        x_label: "epoch (0 = initialisation)".into(),
        y_label: "log10 ‖∂L/∂W‖".into(),
        series,
        ..Chart::default()
    }
}

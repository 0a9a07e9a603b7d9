//! Per-layer gradient norms in a deep sigmoid network vs ReLU, at initialisation and during
//! training, with and without greedy layer-wise pretraining.

use serde_json::json;

use super::probe::{initial_network, Trainer};
use super::{pct, LabOptions, Report};
use crate::nn::init::Init;
use crate::nn::optim::OptimizerConfig;
use crate::plot::{Chart, Series};
use crate::train::config::TrainConfig;

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
    let mut variant = 0;
    // (activation, pretraining method): RBMs only for sigmoid units.
    let variants = [
        ("sigmoid", None),
        ("sigmoid", Some("denoising")),
        ("sigmoid", Some("rbm")),
        ("relu", None),
        ("relu", Some("denoising")),
    ];
    {
        for (act, pre) in variants {
            let name = match pre {
                None => act.to_string(),
                Some(m) => format!("{act} + {m} pretraining"),
            };
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
                let p: crate::train::pretrain::PretrainConfig = toml::from_str(&format!(
                    "method = \"{method}\"\nepochs = {pre_epochs}\nlr = {pre_lr}\n\
                     corruption_level = 0.1\nnoise = 0.1\n"
                ))?;
                cfg.pretrain = Some(p);
            }
            opts.log(format!("vanishing: {name}"));
            let seq = initial_network(&cfg, &data)?;
            let mut t = Trainer::new(&cfg, seq);
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
            let acc = if diverged {
                f64::NAN
            } else {
                t.evaluate(data.test.as_ref().unwrap_or(&data.train)).1
            };
            let ratio = at_init[0] / at_init[depth - 1];
            rows.push(vec![
                name.clone(),
                format!("{:.2e}", at_init[0]),
                format!("{:.2e}", at_init[depth - 1]),
                format!("{ratio:.2e}"),
                per_epoch.last().map_or("-".into(), |g| {
                    format!("{:.2e} / {:.2e}", g[0], g[depth - 1])
                }),
                if diverged {
                    "diverged".into()
                } else {
                    pct(acc)
                },
            ]);
            init_series.push(
                Series::new(
                    name.clone(),
                    variant,
                    at_init
                        .iter()
                        .enumerate()
                        .map(|(i, g)| ((i + 1) as f64, g.max(1e-30).log10()))
                        .collect(),
                )
                .markers(),
            );
            // Training: one line per layer (every other layer, to stay readable).
            let layers: Vec<usize> = (0..=depth).step_by(3).collect();
            let series = layers
                .iter()
                .enumerate()
                .map(|(k, &l)| {
                    Series::new(
                        if l == depth {
                            "output layer".to_string()
                        } else {
                            format!("layer {}", l + 1)
                        },
                        k,
                        std::iter::once((0.0, at_init[l]))
                            .chain(
                                per_epoch
                                    .iter()
                                    .enumerate()
                                    .map(|(e, g)| ((e + 1) as f64, g[l])),
                            )
                            .map(|(x, y)| (x, y.max(1e-30).log10()))
                            .collect(),
                    )
                    .markers()
                })
                .collect();
            let file = format!(
                "training_{}.png",
                name.replace(" + ", "_").replace(' ', "_")
            );
            r.chart(
                &file,
                &Chart {
                    title: format!("Gradient norms during training: {name}"),
                    x_label: "epoch (0 = initialisation)".into(),
                    y_label: "log10 ‖∂L/∂W‖".into(),
                    series,
                    ..Chart::default()
                },
            )?;
            r.set(
                &name,
                json!({"at_init": at_init, "per_epoch": per_epoch, "test_accuracy": acc,
                       "first_over_last_hidden_at_init": ratio, "diverged": diverged}),
            );
            variant += 1;
        }
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

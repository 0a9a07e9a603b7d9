//! How many ReLUs are active at random initialisation, per layer: He, Xavier and a small
//! Gaussian, on the data's own inputs and on symmetric Gaussian inputs.
//!
//! The lecture: "in a randomly initialised network, only about 50% of hidden units are
//! activated". With zero biases and weights drawn symmetrically about 0, a unit's input `w·x` is
//! as likely to be positive as negative for any fixed `x ≠ 0`, whatever the scale of the
//! weights: the expected active fraction is 1/2 for every initialisation. What the scale changes
//! is the size of the activations (and so of the gradients), and what the data change is how the
//! activity is shared out: on inputs that are all positive (pixels) many units are active on
//! almost every example or on almost none.

use serde_json::json;

use super::{pct, LabOptions, Report};
use crate::model::{Layer, Sequential};
use crate::nn::init::Init;
use crate::plot::{Chart, Series};
use crate::random::{normal, rng_for};
use crate::train::config::TrainConfig;
use crate::train::init_weights;

/// The activity of one hidden layer of ReLUs over a set of examples.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LayerActivity {
    /// Share of (unit, example) pairs whose input is > 0.
    pub active: f64,
    /// Share of units whose input is ≤ 0 on every example.
    pub never_active: f64,
    /// Share of units whose input is > 0 on every example.
    pub always_active: f64,
    /// Standard deviation of the units' inputs (over units and examples).
    pub input_std: f64,
}

/// The activity of every ReLU layer of `seq` (a `Linear` followed by a ReLU) on the `n` rows of
/// `x`, in order from the input. Other layers are applied as they are (evaluation mode:
/// dropout is the identity).
pub fn relu_activity(seq: &Sequential, x: &[f32], n: usize) -> Vec<LayerActivity> {
    let mut cur = x.to_vec();
    let mut out = Vec::new();
    for (i, l) in seq.layers.iter().enumerate() {
        let next = match l {
            // Row by row (softmax needs its row); `Sequential::predict` needs a dense layer.
            Layer::Activation(a) if n > 0 => {
                let mut y = cur.clone();
                let w = y.len() / n;
                y.chunks_exact_mut(w.max(1)).for_each(|r| a.apply(r));
                y
            }
            Layer::Dropout(_) => cur.clone(),
            _ => Sequential::new(vec![l.clone()]).predict(&cur, n),
        };
        let relu_next = matches!(
            seq.layers.get(i + 1),
            Some(Layer::Activation(microdnn::Activation::Relu))
        );
        if matches!(l, Layer::Linear(_)) && relu_next && n > 0 {
            let w = next.len() / n;
            let mut on = vec![0usize; w];
            for row in next.chunks_exact(w) {
                for (c, &v) in on.iter_mut().zip(row) {
                    *c += usize::from(v > 0.0);
                }
            }
            let total: usize = on.iter().sum();
            let mean = next.iter().map(|&v| v as f64).sum::<f64>() / next.len() as f64;
            let var =
                next.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / next.len() as f64;
            out.push(LayerActivity {
                active: total as f64 / (w * n) as f64,
                never_active: on.iter().filter(|&&c| c == 0).count() as f64 / w as f64,
                always_active: on.iter().filter(|&&c| c == n).count() as f64 / w as f64,
                input_std: var.sqrt(),
            });
        }
        cur = next;
    }
    out
}

/// A `features`-`width`×`depth`-`classes` ReLU network with `init`'s weights (zero biases) from
/// `seed`.
pub fn relu_net(
    features: usize,
    classes: usize,
    width: usize,
    depth: usize,
    init: Init,
    seed: u64,
) -> anyhow::Result<Sequential> {
    let mut cfg = TrainConfig::default();
    cfg.model.hidden = vec![width; depth];
    cfg.model.activation = "relu".into();
    let mut seq = cfg.model.build(features, classes)?;
    init_weights(&mut seq, init, &mut rng_for(seed, 1));
    Ok(seq)
}

const INITS: [(Init, &str); 4] = [
    (Init::HeNormal, "He N(0, 2/fan_in)"),
    (Init::HeUniform, "He uniform U(±√(6/fan_in))"),
    (Init::XavierNormal, "Xavier N(0, 2/(fan_in+fan_out))"),
    (Init::SmallNormal, "small Gaussian N(0, 0.01²)"),
];

pub(super) fn run(opts: &LabOptions, r: &mut Report) -> anyhow::Result<()> {
    let (data, width, depth, n, seeds) = if opts.quick {
        (super::digits(0)?.train, 128, 6, 1000, 3u64)
    } else {
        (
            super::mnist(opts, 10_000, 0, false)?.train,
            512,
            8,
            5000,
            5u64,
        )
    };
    let n = n.min(data.len());
    let f = data.features;
    let gauss: Vec<f32> = {
        let mut g = rng_for(99, 0);
        (0..n * f).map(|_| normal(&mut g)).collect()
    };
    r.p(format!(
        "{}-{}×{depth}-{} ReLU networks, zero biases, weights from each initialisation with \
         seeds 0..{seeds} (figures: the mean over the seeds). Probed on two inputs: the first \
         {n} training images as the trainer sees them (scaled to [0, 1], all ≥ 0) and {n} \
         vectors of independent N(0, 1) inputs (symmetric). A unit is active on an example when \
         its input is > 0. \"Never\" and \"always\": units active on none or on all of the {n} \
         examples. For the first layer on the Gaussian inputs every (unit, example) pair is a fair \
         coin, pairwise uncorrelated, so its active share has standard error √(1/4 / ({width}·{n})) \
         = {:.4}.",
        f,
        width,
        data.classes,
        (0.25 / (width * n) as f64).sqrt()
    ));
    let mut rows = Vec::new();
    let mut series = Vec::new();
    for (k, (init, name)) in INITS.into_iter().enumerate() {
        for (input, x) in [("images", &data.x[..n * f]), ("Gaussian", &gauss[..])] {
            let mut sum: Vec<LayerActivity> = Vec::new();
            for seed in 0..seeds {
                let seq = relu_net(f, data.classes, width, depth, init, seed)?;
                let a = relu_activity(&seq, x, n);
                if sum.is_empty() {
                    sum = a;
                } else {
                    for (s, v) in sum.iter_mut().zip(&a) {
                        s.active += v.active;
                        s.never_active += v.never_active;
                        s.always_active += v.always_active;
                        s.input_std += v.input_std;
                    }
                }
            }
            let k_seeds = seeds as f64;
            for s in &mut sum {
                s.active /= k_seeds;
                s.never_active /= k_seeds;
                s.always_active /= k_seeds;
                s.input_std /= k_seeds;
            }
            let overall = sum.iter().map(|s| s.active).sum::<f64>() / sum.len() as f64;
            rows.push(vec![
                name.to_string(),
                input.to_string(),
                pct(overall),
                sum.iter()
                    .map(|s| format!("{:.1}", 100.0 * s.active))
                    .collect::<Vec<_>>()
                    .join(" / "),
                format!(
                    "{} / {}",
                    pct(sum.iter().map(|s| s.never_active).sum::<f64>() / sum.len() as f64),
                    pct(sum.iter().map(|s| s.always_active).sum::<f64>() / sum.len() as f64)
                ),
                format!(
                    "{:.2e} → {:.2e}",
                    sum[0].input_std,
                    sum[sum.len() - 1].input_std
                ),
            ]);
            series.push(
                Series::new(
                    format!("{name}, {input}"),
                    2 * k + usize::from(input == "Gaussian"),
                    sum.iter()
                        .enumerate()
                        .map(|(l, s)| ((l + 1) as f64, 100.0 * s.active))
                        .collect(),
                )
                .markers(),
            );
            r.set(
                &format!("{init:?}_{input}"),
                json!({"layers": sum, "active_mean": overall}),
            );
        }
    }
    r.table(
        &[
            "initialisation",
            "inputs",
            "active (all layers)",
            "active per layer (%), layer 1 first",
            "units never / always active (mean over layers)",
            "std of a unit's input, layer 1 → last",
        ],
        &rows,
    );
    r.chart(
        "active.png",
        &Chart {
            title: "ReLUs active at initialisation".into(),
            x_label: "hidden layer (1 = next to the input)".into(),
            y_label: "active (unit, example) pairs (%)".into(),
            series,
            y_range: Some((0.0, 100.0)),
            legend_lower: true,
            ..Chart::default()
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Linear;
    use microdnn::Activation;

    #[test]
    fn activity_of_a_hand_made_layer() {
        // Unit 0 passes x (active for x > 0), unit 1 is 1 - x (active for x < 1), unit 2 is -1.
        let seq = Sequential::new(vec![
            Layer::Linear(
                Linear::from_parts(1, 3, vec![1.0, -1.0, 0.0], vec![0.0, 1.0, -1.0]).unwrap(),
            ),
            Layer::Activation(Activation::Relu),
            Layer::Linear(Linear::from_parts(3, 1, vec![1.0, 1.0, 1.0], vec![0.0]).unwrap()),
        ]);
        let x = [-1.0, 0.0, 0.5, 2.0];
        let a = relu_activity(&seq, &x, 4);
        assert_eq!(a.len(), 1, "the output layer has no ReLU");
        // Unit 0: 0.5, 2 → 2 of 4; unit 1: -1, 0, 0.5 → 3 of 4; unit 2: none.
        assert_eq!(a[0].active, 5.0 / 12.0);
        assert_eq!(a[0].never_active, 1.0 / 3.0);
        assert_eq!(a[0].always_active, 0.0);
        // Inputs: x, 1 - x, -1 over the 12 pairs.
        let v = [
            -1.0, 2.0, -1.0, 0.0, 1.0, -1.0, 0.5, 0.5, -1.0, 2.0, -1.0, -1.0f64,
        ];
        let m = v.iter().sum::<f64>() / 12.0;
        let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 12.0).sqrt();
        assert!((a[0].input_std - sd).abs() < 1e-6);
    }

    /// The Gaussian schemes draw the same N(0, 1) numbers times a per-layer scale, and a ReLU
    /// network with zero biases is positively homogeneous: the same units are active.
    #[test]
    fn the_scale_of_the_weights_does_not_change_which_units_are_active() {
        let (f, n) = (64, 50);
        let mut g = rng_for(6, 0);
        let x: Vec<f32> = (0..n * f).map(|_| normal(&mut g)).collect();
        let he = relu_activity(&relu_net(f, 10, 32, 5, Init::HeNormal, 1).unwrap(), &x, n);
        let small = relu_activity(
            &relu_net(f, 10, 32, 5, Init::SmallNormal, 1).unwrap(),
            &x,
            n,
        );
        for (a, b) in he.iter().zip(&small) {
            assert_eq!(
                (a.active, a.never_active, a.always_active),
                (b.active, b.never_active, b.always_active)
            );
            assert!(b.input_std < a.input_std);
        }
    }

    #[test]
    fn about_half_the_relus_are_active_at_he_init_on_symmetric_inputs() {
        let (f, width, n) = (64, 256, 400);
        let mut g = rng_for(5, 0);
        let x: Vec<f32> = (0..n * f).map(|_| normal(&mut g)).collect();
        for seed in 0..3 {
            let seq = relu_net(f, 10, width, 4, Init::HeNormal, seed).unwrap();
            let a = relu_activity(&seq, &x, n);
            assert_eq!(a.len(), 4);
            // Layer 1: pairwise uncorrelated fair coins; 4.5 standard errors.
            let se = (0.25 / (width * n) as f64).sqrt();
            assert!(
                (a[0].active - 0.5).abs() < 4.5 * se,
                "seed {seed}: layer 1 active {} (se {se})",
                a[0].active
            );
            // He init keeps the scale of the units' inputs from layer to layer (within a factor
            // of 2 here), where the small Gaussian shrinks it by about 0.01·√(width/2) = 0.11
            // per layer.
            for l in 1..4 {
                let ratio = a[l].input_std / a[l - 1].input_std;
                assert!((0.5..2.0).contains(&ratio), "He layer {l}: ratio {ratio}");
            }
            let small = relu_net(f, 10, width, 4, Init::SmallNormal, seed).unwrap();
            let s = relu_activity(&small, &x, n);
            assert!(
                (s[0].active - 0.5).abs() < 4.5 * se,
                "small: {}",
                s[0].active
            );
            for l in 1..4 {
                let ratio = s[l].input_std / s[l - 1].input_std;
                let expect = 0.01 * (width as f64 / 2.0).sqrt();
                assert!(
                    (ratio / expect - 1.0).abs() < 0.3,
                    "small layer {l}: ratio {ratio}, expected about {expect}"
                );
            }
        }
    }
}

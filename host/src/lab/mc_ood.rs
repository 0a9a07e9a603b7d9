//! Monte-Carlo dropout as an out-of-distribution detector: a dropout network trained on digits,
//! exported to the device format, and run by the core ([`microdnn::ModelView::mc`], the code the
//! `eval` firmware runs for the link's `MC` request, bit for bit) on in-distribution test images
//! and on out-of-distribution inputs (uniform noise, inverted images, images rotated by 90°).
//! The score is the predictive entropy `H[mean of K passes]`; the figure is its AUROC (the
//! probability that a random out-of-distribution input scores higher than a random test image)
//! for K = 1, 5, 10, 20 and for the deterministic network (dropout's mean-weight rule, K = 0).
//!
//! The full run also measures what each K costs on the Cortex-M4F: it builds the firmware's
//! `eval` program with the exported model, runs it in QEMU (`-icount`, exact instruction
//! counts), sends link `MC` requests for the first test images and checks every answer bit for
//! bit against the host's (`device::mc`). Quick mode skips it (no firmware build in seconds).

use std::num::NonZeroU32;

use serde_json::json;

use super::{pct, LabOptions, Report};
use crate::data::Dataset;
use crate::export::{self, AlignedModel, OutputActivation};
use crate::nn::optim::OptimizerConfig;
use crate::train::config::{Rates, TrainConfig};
use crate::train::{train, RunOptions};

/// Area under the ROC curve of `score` separating `positive` from `negative` examples: the
/// probability that a random positive scores higher than a random negative, ties counting one
/// half (the Mann–Whitney statistic). NaN if either set is empty.
pub fn auroc(negative: &[f64], positive: &[f64]) -> f64 {
    if negative.is_empty() || positive.is_empty() {
        return f64::NAN;
    }
    // (score, is positive), sorted; average ranks over ties.
    let mut all: Vec<(f64, bool)> = negative
        .iter()
        .map(|&s| (s, false))
        .chain(positive.iter().map(|&s| (s, true)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j+1, averaged.
        let avg = (i + j + 2) as f64 / 2.0;
        rank_sum += avg * all[i..=j].iter().filter(|e| e.1).count() as f64;
        i = j + 1;
    }
    let (np, nn) = (positive.len() as f64, negative.len() as f64);
    (rank_sum - np * (np + 1.0) / 2.0) / (np * nn)
}

/// The out-of-distribution sets made from `d` (square images of side `side`, values in [0, 1]):
/// uniform noise, inverted (1 − x), rotated by 90° clockwise.
pub fn ood_sets(d: &Dataset, side: usize, seed: u64) -> Vec<(&'static str, Vec<f32>)> {
    let f = d.features;
    let mut rng = crate::random::rng_for(seed, 0);
    let noise: Vec<f32> = (0..d.x.len())
        .map(|_| crate::random::uniform01(&mut rng))
        .collect();
    let inverted: Vec<f32> = d.x.iter().map(|&v| 1.0 - v).collect();
    let mut rotated = vec![0.0; d.x.len()];
    for (src, dst) in d.x.chunks_exact(f).zip(rotated.chunks_exact_mut(f)) {
        for r in 0..side {
            for c in 0..side {
                // Clockwise: the pixel at (r, c) goes to (c, side-1-r).
                dst[c * side + (side - 1 - r)] = src[r * side + c];
            }
        }
    }
    vec![
        ("uniform noise", noise),
        ("inverted", inverted),
        ("rotated 90°", rotated),
    ]
}

/// Predictive entropy of each row of `x` under `passes` Monte-Carlo passes (row `i` with seed
/// `i`), or of the deterministic network when `passes` is 0.
fn entropies(view: &microdnn::ModelView<'_>, x: &[f32], passes: u32) -> anyhow::Result<Vec<f64>> {
    let w = view.max_width();
    let c = view.outputs();
    let (mut a, mut b) = (vec![0.0; w], vec![0.0; w]);
    let (mut mean, mut std, mut pass) = (vec![0.0; c], vec![0.0; c], vec![0.0; c]);
    let mut out = Vec::new();
    for (i, row) in x.chunks_exact(view.inputs()).enumerate() {
        let mut xi = row.to_vec();
        let h = match NonZeroU32::new(passes) {
            Some(k) => {
                view.mc(
                    &mut xi, &mut a, &mut b, k, i as u64, &mut mean, &mut std, &mut pass,
                )
                .map_err(|e| anyhow::anyhow!("Monte-Carlo passes: {e}"))?
                .entropy
            }
            None => {
                let y = view
                    .run(&mut xi, &mut a, &mut b)
                    .map_err(|e| anyhow::anyhow!("inference: {e}"))?;
                microdnn::math::entropy(y)
            }
        };
        out.push(h as f64);
    }
    Ok(out)
}

pub(super) fn run(opts: &LabOptions, r: &mut Report) -> anyhow::Result<()> {
    let (data, hidden, epochs, n) = if opts.quick {
        (super::digits(0)?, vec![128, 128], 30, 360)
    } else {
        (
            super::mnist(opts, 20_000, 10_000, false)?,
            vec![256, 256],
            10,
            2000,
        )
    };
    let epochs = opts.epochs(epochs);
    let test = data.test.as_ref().unwrap_or(&data.train);
    let n = n.min(test.len());
    let test = test.subset(&(0..n).collect::<Vec<_>>());
    let side = (test.features as f64).sqrt().round() as usize;
    anyhow::ensure!(side * side == test.features, "the images are not square");
    let mut cfg = TrainConfig::default();
    cfg.epochs = epochs;
    cfg.batch_size = 32;
    cfg.lr = 0.05;
    cfg.threads = opts.threads;
    cfg.model.hidden = hidden.clone();
    cfg.model.dropout = Rates::All(0.5);
    cfg.optimizer = OptimizerConfig::Sgd {
        momentum: 0.9,
        nesterov: false,
    };
    cfg.early_stopping = None;
    opts.log("mc-ood: training");
    let out = train(&cfg, &data, &RunOptions::default())?;
    // The data are already transformed: export with the identity transform.
    let model = export::model_from_sequential(out.model.net.clone(), out.model.classes);
    let bytes = export::encode(&export::lower(&model, OutputActivation::Softmax)?)?;
    let aligned = AlignedModel::new(&bytes);
    let view = aligned.view().map_err(|e| anyhow::anyhow!("{e}"))?;
    r.p(format!(
        "{}-{}-{} ReLU network, dropout 0.5 after each hidden layer, trained on {} examples \
         ({epochs} epochs, SGD momentum 0.9, lr 0.05, batch 32; test accuracy {}), exported \
         with a softmax output ({} bytes) and run by the core's `ModelView::mc` (the device's \
         code: same masks from the same seed, same bits). In-distribution: the first {n} test \
         images. Out-of-distribution, {n} each: uniform noise in [0, 1], the test images \
         inverted (1 − x), the test images rotated by 90°. Score: predictive entropy (nats) of \
         the mean of K passes, image i with seed i; K = 0 is the deterministic network \
         (dropout's mean-weight rule). AUROC 0.5 = no better than chance, 1 = every \
         out-of-distribution input scores above every test image.",
        test.features,
        hidden
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>()
            .join("-"),
        test.classes,
        data.train.len(),
        pct(out.metrics.test_accuracy.unwrap_or(f64::NAN)),
        bytes.len()
    ));
    let ood = ood_sets(&test, side, 7);
    let ks = [0u32, 1, 5, 10, 20];
    let mut rows = Vec::new();
    for &k in &ks {
        opts.log(format!("mc-ood: K = {k}"));
        let t0 = std::time::Instant::now();
        let h_in = entropies(&view, &test.x, k)?;
        let mut row = vec![
            if k == 0 {
                "0 (deterministic)".to_string()
            } else {
                k.to_string()
            },
            format!("{:.3}", h_in.iter().sum::<f64>() / n as f64),
        ];
        let mut res = serde_json::Map::new();
        for (name, x) in &ood {
            let h_out = entropies(&view, x, k)?;
            let a = auroc(&h_in, &h_out);
            row.push(format!(
                "{a:.3} (H {:.3})",
                h_out.iter().sum::<f64>() / n as f64
            ));
            res.insert(
                name.to_string(),
                json!({"auroc": a, "mean_entropy": h_out.iter().sum::<f64>() / n as f64}),
            );
        }
        let secs = t0.elapsed().as_secs_f64();
        res.insert(
            "in_distribution_mean_entropy".into(),
            json!(h_in.iter().sum::<f64>() / n as f64),
        );
        res.insert("host_seconds".into(), json!(secs));
        r.set(&format!("K_{k}"), serde_json::Value::Object(res));
        rows.push(row);
    }
    let header: Vec<String> = ["K passes".to_string(), "test images: mean H".to_string()]
        .into_iter()
        .chain(
            ood.iter()
                .map(|(name, _)| format!("{name}: AUROC (mean H)")),
        )
        .collect();
    r.table(
        &header.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        &rows,
    );
    r.set("test_accuracy", json!(out.metrics.test_accuracy));
    r.set("model_bytes", json!(bytes.len()));
    if !opts.quick {
        device_costs(opts, r, &bytes, &test, &ks[1..])?;
    }
    Ok(())
}

/// Instructions per `MC` request on the Cortex-M4F (QEMU) for each K, on the first test
/// images, with the device's answers compared bit for bit with the host's.
#[cfg(feature = "device")]
fn device_costs(
    opts: &LabOptions,
    r: &mut Report,
    bytes: &[u8],
    test: &Dataset,
    ks: &[u32],
) -> anyhow::Result<()> {
    use crate::device::mc::host_mc;
    let images = 5.min(test.len());
    let target = microdnn_targets::find(microdnn_targets::DEFAULT_TARGET)?;
    let path = r.dir.join("model.udnn");
    export::write_atomic(&path, bytes)?;
    opts.log("mc-ood: building the eval firmware with the model");
    let elf = microdnn_targets::firmware::build(
        target,
        &microdnn_targets::firmware::Build {
            bins: &["eval"],
            model: Some(&path),
            quiet: true,
        },
    )
    .map_err(anyhow::Error::msg)?
    .remove(0);
    let mut q =
        crate::device::Qemu::start(target, &elf, 1800, std::time::Duration::from_secs(300))?;
    let aligned = AlignedModel::new(bytes);
    let view = aligned.view().map_err(|e| anyhow::anyhow!("{e}"))?;
    let plain: Vec<u64> = test
        .x
        .chunks_exact(test.features)
        .take(images)
        .map(|x| q.link.infer(x).map(|a| a.instructions))
        .collect::<Result<_, _>>()?;
    let plain_mean = plain.iter().sum::<u64>() as f64 / images as f64;
    let mut rows = vec![vec![
        "0 (plain inference)".to_string(),
        format!("{plain_mean:.0}"),
        "1.00".into(),
        "-".into(),
    ]];
    let mut res = serde_json::Map::new();
    res.insert("plain_instructions".into(), json!(plain));
    for &k in ks {
        opts.log(format!("mc-ood: device K = {k}"));
        let mut ins = Vec::new();
        let mut identical = 0;
        for (i, x) in test.x.chunks_exact(test.features).take(images).enumerate() {
            let dev = q.link.mc(x, k as u16, i as u64)?;
            let host = host_mc(&view, x, k as u16, i as u64)?;
            identical += usize::from(dev.same_bits(&host));
            ins.push(dev.instructions);
        }
        let mean = ins.iter().sum::<u64>() as f64 / images as f64;
        rows.push(vec![
            k.to_string(),
            format!("{mean:.0}"),
            format!("{:.2}", mean / plain_mean),
            format!("{identical}/{images}"),
        ]);
        res.insert(
            format!("K_{k}"),
            json!({"instructions": ins, "identical_to_host": identical}),
        );
    }
    r.p(format!(
        "Cost on the {} ({}, QEMU `-icount`: exact instruction counts) of one request for each \
         of the first {images} test images: the firmware's `eval` program built with this model \
         (`model.udnn` here), `MC` requests over the link with seed = image index, compared bit \
         for bit with the host's `ModelView::mc`.",
        target.core, target.board_name
    ));
    r.table(
        &[
            "K passes",
            "instructions per request (mean)",
            "× plain inference",
            "answers bit-identical to the host",
        ],
        &rows,
    );
    r.set("device", serde_json::Value::Object(res));
    Ok(())
}

#[cfg(not(feature = "device"))]
fn device_costs(
    _: &LabOptions,
    r: &mut Report,
    _: &[u8],
    _: &Dataset,
    _: &[u32],
) -> anyhow::Result<()> {
    r.p("Device costs: not measured (this build has no `device` feature).");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_by_hand() {
        // Pairs (neg, pos): 0.1 < 0.35 ✓, 0.1 < 0.8 ✓, 0.4 > 0.35 ✗, 0.4 < 0.8 ✓,
        // 0.35 = 0.35 ½, 0.35 < 0.8 ✓ → 4.5 of 6.
        assert!((auroc(&[0.1, 0.4, 0.35], &[0.35, 0.8]) - 4.5 / 6.0).abs() < 1e-12);
        assert_eq!(auroc(&[0.0, 1.0], &[2.0, 3.0]), 1.0);
        assert_eq!(auroc(&[2.0, 3.0], &[0.0, 1.0]), 0.0);
        assert_eq!(auroc(&[1.0; 3], &[1.0; 4]), 0.5);
        assert!(auroc(&[], &[1.0]).is_nan());
    }

    #[test]
    fn ood_sets_by_hand() {
        // One 2×2 image [a b; c d] (values exact in f32).
        let d = Dataset {
            features: 4,
            classes: 2,
            x: vec![0.125, 0.25, 0.5, 0.75],
            y: vec![0],
        };
        let sets = ood_sets(&d, 2, 1);
        assert_eq!(sets[1].1, vec![0.875, 0.75, 0.5, 0.25]);
        // Clockwise: [c a; d b].
        assert_eq!(sets[2].1, vec![0.5, 0.125, 0.75, 0.25]);
        assert!(sets[0].1.iter().all(|v| (0.0..1.0).contains(v)));
    }
}

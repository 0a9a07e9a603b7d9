//! `microdnn plot`: the charts of a run folder's `metrics.json`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use super::{line_chart, Chart, Series};

fn num(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

/// Per-layer values of one diagnostics key: `(layer index, [(epoch, value)])`, epoch 0 being
/// `diagnostics_at_init`.
fn diag_series(m: &Value, key: &str) -> Vec<(i64, Vec<(f64, f64)>)> {
    let mut out: Vec<(i64, Vec<(f64, f64)>)> = Vec::new();
    let mut add = |epoch: f64, list: &Value| {
        for d in list.as_array().into_iter().flatten() {
            let (Some(layer), Some(v)) = (d.get("layer").and_then(Value::as_i64), num(d, key))
            else {
                continue;
            };
            match out.iter_mut().find(|(l, _)| *l == layer) {
                Some((_, pts)) => pts.push((epoch, v)),
                None => out.push((layer, vec![(epoch, v)])),
            }
        }
    };
    if let Some(init) = m.get("diagnostics_at_init") {
        add(0.0, init);
    }
    for e in m["epochs"].as_array().into_iter().flatten() {
        if let (Some(ep), Some(d)) = (num(e, "epoch"), e.get("diagnostics")) {
            add(ep, d);
        }
    }
    out.sort_by_key(|(l, _)| *l);
    out
}

/// Draws the charts of a run folder's `metrics.json` (for a run still going, its
/// `history.jsonl`) into `out` (default: the run folder) and returns the files written. Charts
/// whose data the metrics lack are skipped.
pub fn plot_run(run_dir: &Path, out: Option<&Path>) -> anyhow::Result<Vec<PathBuf>> {
    let m: Value = crate::train::read_run_metrics(run_dir)?;
    let out = out.unwrap_or(run_dir);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    plot_metrics(&m, out)
}

/// [`plot_run`] on parsed metrics.
pub fn plot_metrics(m: &Value, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut charts = epoch_charts(m)?;
    charts.extend(diagnostics_charts(m));
    let mut written = Vec::new();
    for (name, chart) in charts {
        let p = out.join(name);
        line_chart(&p, &chart)?;
        written.push(p);
    }
    Ok(written)
}

/// Loss and accuracy per epoch (training, and validation when there is one), with the epoch
/// early stopping kept marked.
fn epoch_charts(m: &Value) -> anyhow::Result<Vec<(&'static str, Chart)>> {
    let epochs = m["epochs"]
        .as_array()
        .context("metrics.json has no \"epochs\" list")?;
    let curve = |key: &str| -> Vec<(f64, f64)> {
        epochs
            .iter()
            .filter_map(|e| Some((num(e, "epoch")?, num(e, key)?)))
            .collect()
    };
    let mut vlines = Vec::new();
    if let Some(b) = m.get("best_epoch").and_then(Value::as_f64) {
        let stopped = m.get("stopped_early").and_then(Value::as_bool) == Some(true);
        vlines.push((
            b,
            if stopped {
                format!("early stop: kept epoch {b}")
            } else {
                format!("best epoch {b}")
            },
        ));
    }
    let pct = |pts: Vec<(f64, f64)>| pts.into_iter().map(|(x, y)| (x, 100.0 * y)).collect();
    let mut loss = vec![Series::new("training", 0, curve("train_loss"))];
    let val_loss = curve("val_loss");
    if !val_loss.is_empty() {
        loss.push(Series::new("validation", 1, val_loss).dashed());
    }
    let mut acc = vec![Series::new("training", 0, pct(curve("train_accuracy")))];
    let val_acc = curve("val_accuracy");
    if !val_acc.is_empty() {
        acc.push(Series::new("validation", 1, pct(val_acc)).dashed());
    }
    Ok(vec![
        (
            "loss.png",
            Chart {
                title: "Loss".into(),
                x_label: "epoch".into(),
                y_label: "cross-entropy".into(),
                series: loss,
                vlines: vlines.clone(),
                ..Chart::default()
            },
        ),
        (
            "accuracy.png",
            Chart {
                title: "Accuracy".into(),
                x_label: "epoch".into(),
                y_label: "accuracy (%)".into(),
                series: acc,
                vlines,
                legend_lower: true,
                ..Chart::default()
            },
        ),
    ])
}

/// One series per dense layer of a diagnostics key, its values mapped by `f`.
fn per_layer(m: &Value, key: &str, f: &dyn Fn(f64) -> f64) -> Vec<Series> {
    diag_series(m, key)
        .into_iter()
        .enumerate()
        .map(|(i, (layer, pts))| {
            Series::new(
                format!("layer {layer}"),
                i,
                pts.into_iter().map(|(x, y)| (x, f(y))).collect(),
            )
            .markers()
        })
        .collect()
}

/// The per-layer diagnostics charts the metrics have data for: gradient norms, dead units,
/// activation and unit-0 input percentiles.
fn diagnostics_charts(m: &Value) -> Vec<(&'static str, Chart)> {
    let mut charts = Vec::new();
    let grads = per_layer(m, "grad_norm", &|v| v.max(1e-30).log10());
    if !grads.is_empty() {
        charts.push((
            "grad_norms.png",
            Chart {
                title: "Gradient norm per layer (epoch 0 = initialisation)".into(),
                x_label: "epoch".into(),
                y_label: "log10 ‖∂L/∂W‖".into(),
                series: grads,
                ..Chart::default()
            },
        ));
    }
    let dead = per_layer(m, "dead_fraction", &|v| 100.0 * v);
    if !dead.is_empty() {
        charts.push((
            "dead_units.png",
            Chart {
                title: "Dead ReLU units per layer".into(),
                x_label: "epoch".into(),
                y_label: "dead units (%)".into(),
                series: dead,
                ..Chart::default()
            },
        ));
    }
    for (file, prefix, title) in [
        (
            "activations.png",
            "act",
            "Activations per layer: 15th, 50th, 85th percentiles",
        ),
        (
            "unit_input.png",
            "unit0_input",
            "Input of unit 0 per layer: 15th, 50th, 85th percentiles",
        ),
    ] {
        let series = percentile_series(m, prefix);
        if !series.is_empty() {
            charts.push((
                file,
                Chart {
                    title: title.into(),
                    x_label: "epoch (solid: median, dashed: 15th and 85th)".into(),
                    y_label: "value".into(),
                    series,
                    ..Chart::default()
                },
            ));
        }
    }
    charts
}

/// The median (solid, labelled) and 15th/85th percentiles (dashed) of `{prefix}_p*` per layer,
/// one colour per layer.
fn percentile_series(m: &Value, prefix: &str) -> Vec<Series> {
    let mut series = Vec::new();
    for (k, (q, dashed)) in [("p50", false), ("p15", true), ("p85", true)]
        .into_iter()
        .enumerate()
    {
        for (i, mut s) in per_layer(m, &format!("{prefix}_{q}"), &|v| v)
            .into_iter()
            .enumerate()
        {
            s.color = i;
            s.markers = false;
            if dashed {
                s = s.dashed();
            }
            if k > 0 {
                s.label.clear();
            }
            series.push(s);
        }
    }
    series
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_png(p: &Path) -> bool {
        let b = std::fs::read(p).unwrap();
        b.len() > 5000 && b.starts_with(b"\x89PNG\r\n\x1a\n")
    }

    #[test]
    fn plots_a_small_run_with_diagnostics() {
        let diag = |k: f64| {
            serde_json::json!([
                {"layer": 0, "grad_norm": 0.1 * k, "weight_norm": 3.0, "update_ratio": 1e-3,
                 "dead_fraction": 0.05 * k, "act_mean": 0.5, "act_std": 0.3, "act_p15": 0.0,
                 "act_p50": 0.4, "act_p85": 0.9, "unit0_input_p15": -1.0, "unit0_input_p50": 0.0,
                 "unit0_input_p85": 1.0 * k},
                {"layer": 3, "grad_norm": 0.01 * k, "weight_norm": 2.0, "update_ratio": 1e-3,
                 "dead_fraction": null, "act_mean": 0.5, "act_std": 0.3, "act_p15": 0.1,
                 "act_p50": 0.5, "act_p85": 0.8, "unit0_input_p15": -2.0,
                 "unit0_input_p50": 0.1, "unit0_input_p85": 2.0}
            ])
        };
        let epochs: Vec<Value> = (1..=6)
            .map(|e| {
                let e = e as f64;
                serde_json::json!({"epoch": e, "train_loss": 1.0 / e, "train_accuracy": 1.0 - 0.3 / e,
                    "val_loss": 1.0 / e + 0.02 * e, "val_accuracy": 0.9 - 0.2 / e, "lr": 0.1,
                    "seconds": 1.0, "samples_per_s": 1000.0, "diagnostics": diag(e)})
            })
            .collect();
        let m = serde_json::json!({"epochs": epochs, "test_loss": 0.3, "test_accuracy": 0.9,
            "best_epoch": 4, "stopped_early": true, "diagnostics_at_init": diag(0.5)});
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("metrics.json"), m.to_string()).unwrap();
        let files = plot_run(dir.path(), None).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "loss.png",
                "accuracy.png",
                "grad_norms.png",
                "dead_units.png",
                "activations.png",
                "unit_input.png"
            ]
        );
        for f in &files {
            assert!(
                is_png(f),
                "{} is not a PNG of a reasonable size",
                f.display()
            );
        }
    }

    #[test]
    fn plots_metrics_without_diagnostics() {
        let m = serde_json::json!({"epochs": [
            {"epoch": 1, "train_loss": 0.5, "train_accuracy": 0.8, "val_loss": null,
             "val_accuracy": null, "lr": 0.1, "seconds": 1.0, "samples_per_s": 10.0}],
            "best_epoch": null, "stopped_early": false});
        let dir = tempfile::tempdir().unwrap();
        let files = plot_metrics(&m, dir.path()).unwrap();
        assert_eq!(files.len(), 2);
        assert!(files.iter().all(|f| is_png(f)));
    }
}

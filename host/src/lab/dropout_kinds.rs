//! Classic dropout (units kept unscaled in training, weights × p at test time: the lecture's and
//! the papers') against inverted dropout (kept units × 1/p in training, nothing at test time:
//! PyTorch's and the trainer's default), trained side by side from the same start with the same
//! shuffles and the same dropout masks.
//!
//! With keep probability `q`, the two compute the same function when the weights fed by a
//! dropout layer are `W_inv = q·W_classic` ([`crate::nn::dropout`]); training maps when those
//! weights get learning rate `q²η`, L2 `λ/q²` and max-norm `q·c` (biases and other tensors keep
//! `η`). Each arm here updates tensor by tensor with its own settings, so the mapping can be
//! applied exactly where it belongs; the "unmapped" arm trains inverted dropout with the classic
//! settings as they are.

use serde_json::json;

use super::{pct, LabOptions, Report};
use crate::data::Dataset;
use crate::model::{Layer, Sequential};
use crate::nn::dropout::{self, DropoutKind};
use crate::nn::loss::Loss;
use crate::nn::network::{Network, ParamKind};
use crate::nn::optim::{Optimizer, OptimizerConfig};
use crate::nn::regularize::Regularization;
use crate::random::{rng_for, shuffle, TrainRng};
use crate::train::config::{Rates, TrainConfig};
use crate::train::init_weights;
use crate::train::step::{gradients, load_batch};

/// Learning rate, L2 and max-norm of one parameter tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TensorSettings {
    /// Learning rate.
    pub lr: f32,
    /// L2 coefficient (weights only).
    pub l2: f32,
    /// Max-norm bound on each row (weights only).
    pub max_norm: Option<f32>,
}

/// The settings of each parameter tensor of `seq` (in `Network::params` order: weight then bias
/// of each `Linear`) for the classic settings `(lr, l2, max_norm)`; `mapped` gives inverted
/// dropout's equivalent (weights fed by a dropout layer of keep probability `q`: `q²·lr`,
/// `l2/q²`, `q·max_norm`).
pub fn tensor_settings(
    seq: &Sequential,
    lr: f32,
    l2: f32,
    max_norm: Option<f32>,
    mapped: bool,
) -> Vec<TensorSettings> {
    let mut out = Vec::new();
    for (i, l) in seq.layers.iter().enumerate() {
        if !matches!(l, Layer::Linear(_)) {
            continue;
        }
        let q = match i.checked_sub(1).map(|j| &seq.layers[j]) {
            Some(Layer::Dropout(r)) if mapped => 1.0 - r,
            _ => 1.0,
        };
        out.push(TensorSettings {
            lr: q * q * lr,
            l2: l2 / (q * q),
            max_norm: max_norm.map(|c| q * c),
        });
        out.push(TensorSettings {
            lr,
            l2: 0.0,
            max_norm: None,
        });
    }
    out
}

/// A network trained tensor by tensor with [`TensorSettings`].
struct Arm {
    net: Network,
    opts: Vec<Optimizer>,
    settings: Vec<TensorSettings>,
    rng: TrainRng,
    labels: Vec<u32>,
    diverged: bool,
}

impl Arm {
    fn new(
        seq: Sequential,
        kind: DropoutKind,
        settings: Vec<TensorSettings>,
        opt: OptimizerConfig,
        seed: u64,
        batch: usize,
        threads: usize,
    ) -> Self {
        let mut net = Network::new(seq, Loss::CrossEntropy, batch, threads);
        net.set_dropout_kind(kind);
        let opts = net
            .param_sizes()
            .iter()
            .map(|&n| Optimizer::new(opt, &[n]))
            .collect();
        Self {
            net,
            opts,
            settings,
            rng: rng_for(seed, 2),
            labels: vec![0; batch],
            diverged: false,
        }
    }

    /// One epoch: a shuffle, then for each batch the gradients (masks from the arm's stream),
    /// each tensor's L2, optimiser step and max-norm.
    fn epoch(&mut self, d: &Dataset, batch: usize) {
        if self.diverged {
            return;
        }
        let mut order: Vec<usize> = (0..d.len()).collect();
        shuffle(&mut order, &mut self.rng);
        for idx in order.chunks(batch) {
            load_batch(&mut self.net, d, idx, &mut self.labels);
            let loss = gradients(&mut self.net, &self.labels[..idx.len()], &mut self.rng);
            if !loss.sum.is_finite() {
                self.diverged = true;
                return;
            }
            let mut params = self.net.params();
            for ((p, opt), s) in params.iter_mut().zip(&mut self.opts).zip(&self.settings) {
                let reg = Regularization {
                    l2: if p.kind == ParamKind::Weight {
                        s.l2
                    } else {
                        0.0
                    },
                    max_norm: s.max_norm.filter(|_| p.kind == ParamKind::Weight),
                    ..Default::default()
                };
                let one = std::slice::from_mut(p);
                reg.add_grads(one);
                opt.step(one, s.lr);
                reg.apply_max_norm(one);
            }
        }
    }

    /// Test-time class probabilities on `d` (the arm's own kind of dropout at test time).
    fn probabilities(&mut self, d: &Dataset, batch: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(d.len() * d.classes);
        let mut eval_rng = rng_for(0, 3);
        for rows in d.x.chunks(batch * d.features) {
            let b = rows.len() / d.features;
            self.net.input_mut(b).copy_from_slice(rows);
            let y = self.net.forward(b, false, &mut eval_rng);
            for logits in y.chunks(d.classes) {
                let mut p = logits.to_vec();
                microdnn::math::softmax(&mut p);
                out.extend_from_slice(&p);
            }
        }
        out
    }
}

/// Comparison of two arms' test-time probabilities.
#[derive(Debug, serde::Serialize)]
pub struct Agreement {
    /// Largest |p_a − p_b| over every class of every example.
    pub max_abs_diff: f64,
    /// Share of examples with the same predicted class.
    pub same_class: f64,
    /// Accuracy of `a` and of `b`.
    pub accuracy: (f64, f64),
}

/// Compares probabilities `a` and `b` (`classes` per example) against `labels`.
pub fn agreement(a: &[f32], b: &[f32], classes: usize, labels: &[u32]) -> Agreement {
    let am: Vec<usize> = a.chunks(classes).map(microdnn::argmax).collect();
    let bm: Vec<usize> = b.chunks(classes).map(microdnn::argmax).collect();
    let n = labels.len().max(1) as f64;
    let acc = |m: &[usize]| {
        m.iter()
            .zip(labels)
            .filter(|(p, &y)| **p == y as usize)
            .count() as f64
            / n
    };
    Agreement {
        max_abs_diff: a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs() as f64)
            .fold(0.0, f64::max),
        same_class: am.iter().zip(&bm).filter(|(x, y)| x == y).count() as f64 / n,
        accuracy: (acc(&am), acc(&bm)),
    }
}

/// Largest `‖W_b − q·W_a‖ / ‖W_b‖` over the dense layers (`a` classic, `b` inverted).
fn weight_gap(classic: &Sequential, inverted: &Sequential) -> f64 {
    let mapped = dropout::to_inverted(classic);
    mapped
        .layers
        .iter()
        .zip(&inverted.layers)
        .filter_map(|(a, b)| match (a, b) {
            (Layer::Linear(a), Layer::Linear(b)) => {
                let d: f64 = a
                    .weight
                    .iter()
                    .zip(&b.weight)
                    .map(|(x, y)| ((x - y) as f64).powi(2))
                    .sum();
                let n: f64 = b.weight.iter().map(|&y| (y as f64).powi(2)).sum();
                Some((d / n.max(f64::MIN_POSITIVE)).sqrt())
            }
            _ => None,
        })
        .fold(0.0, f64::max)
}

pub(super) fn run(opts: &LabOptions, r: &mut Report) -> anyhow::Result<()> {
    let (data, hidden, epochs) = if opts.quick {
        (super::digits(0)?, vec![128, 128], 10)
    } else {
        (
            super::mnist(opts, 20_000, 10_000, false)?,
            vec![256, 256],
            5,
        )
    };
    let epochs = opts.epochs(epochs);
    let (lr, l2, c, batch, p_in, p_h) = (0.05f32, 1e-4f32, 3.0f32, 32usize, 0.2f32, 0.5f32);
    let opt = OptimizerConfig::Sgd {
        momentum: 0.9,
        nesterov: false,
    };
    let mut cfg = TrainConfig::default();
    cfg.model.hidden = hidden.clone();
    cfg.model.input_dropout = p_in;
    cfg.model.dropout = Rates::All(p_h);
    let mut classic_start = cfg.model.build(data.train.features, data.train.classes)?;
    init_weights(&mut classic_start, cfg.model.init, &mut rng_for(0, 1));
    let inverted_start = dropout::to_inverted(&classic_start);
    let threads = cfg_threads(opts);
    let test = data.test.as_ref().unwrap_or(&data.train);
    r.p(format!(
        "{} training examples, {}-{}-{} ReLU network, dropout {p_in} on the inputs and {p_h} on \
         each hidden layer, He init (classic weights; the inverted arms start from W_inv = \
         q·W_classic, the same function), SGD momentum 0.9 (PyTorch's form), batch {batch}, \
         {epochs} epochs. Classic settings: lr η = {lr}, L2 λ = {l2}, max-norm c = {c}. Every \
         arm draws its shuffles and masks from the same seeded stream, so the same units are \
         dropped at every step. Compared on the {} test examples after each epoch: the largest \
         difference of a class probability and the share of examples with the same predicted \
         class; weight gap = max over layers of ‖W_inv − q·W_classic‖ / ‖W_inv‖. The control \
         trains the classic arm a second time from a start that differs in one output-layer \
         weight by one f32 ulp: how far rounding-sized differences grow on their own.",
        data.train.len(),
        data.train.features,
        hidden
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>()
            .join("-"),
        data.train.classes,
        test.len()
    ));
    let settings_mapped = tensor_settings(&classic_start, lr, l2, Some(c), true);
    let settings_plain = tensor_settings(&classic_start, lr, l2, Some(c), false);
    let mut map_rows = Vec::new();
    let mut li = 0;
    for (i, l) in classic_start.layers.iter().enumerate() {
        if let Layer::Linear(_) = l {
            let q = match i.checked_sub(1).map(|j| &classic_start.layers[j]) {
                Some(Layer::Dropout(r)) => 1.0 - r,
                _ => 1.0,
            };
            let s = settings_mapped[2 * li];
            map_rows.push(vec![
                format!("dense {}", li + 1),
                format!("{q}"),
                format!("{lr} / {l2} / {c}"),
                format!(
                    "{:.4} / {:.3e} / {:.2}",
                    s.lr,
                    s.l2,
                    s.max_norm.unwrap_or(f32::NAN)
                ),
                format!("{lr} (both)"),
            ]);
            li += 1;
        }
    }
    r.table(
        &[
            "weights",
            "keep q of the dropout feeding them",
            "classic lr / L2 / max-norm",
            "inverted equivalent q²η / λ/q² / q·c",
            "bias lr",
        ],
        &map_rows,
    );
    // The control: the classic arm again, from a start one f32 ulp away in a single weight
    // (of the output layer: every image reaches it, unlike a first-layer weight on a border
    // pixel that is always 0).
    let mut nudged = classic_start.clone();
    if let Some(Layer::Linear(l)) = nudged
        .layers
        .iter_mut()
        .rev()
        .find(|l| matches!(l, Layer::Linear(_)))
    {
        l.weight[0] = f32::from_bits(l.weight[0].to_bits() + 1);
    }
    let mut arms = [
        Arm::new(
            nudged,
            DropoutKind::Classic,
            settings_plain.clone(),
            opt,
            0,
            batch,
            threads,
        ),
        Arm::new(
            classic_start.clone(),
            DropoutKind::Classic,
            settings_plain.clone(),
            opt,
            0,
            batch,
            threads,
        ),
        Arm::new(
            inverted_start.clone(),
            DropoutKind::Inverted,
            settings_mapped,
            opt,
            0,
            batch,
            threads,
        ),
        Arm::new(
            inverted_start,
            DropoutKind::Inverted,
            settings_plain,
            opt,
            0,
            batch,
            threads,
        ),
    ];
    let mut rows = Vec::new();
    let mut per_epoch = Vec::new();
    for e in 1..=epochs {
        opts.log(format!("classic-vs-inverted: epoch {e}"));
        for a in &mut arms {
            a.epoch(&data.train, batch);
        }
        let [n, c, m, u] = &mut arms;
        if c.diverged || m.diverged {
            anyhow::bail!("the classic or the mapped inverted arm diverged in epoch {e}");
        }
        let pc = c.probabilities(test, 256.min(batch));
        let pm = m.probabilities(test, 256.min(batch));
        let mapped = agreement(&pc, &pm, test.classes, &test.y);
        let gap = weight_gap(&c.net.seq, &m.net.seq);
        let control = if n.diverged {
            None
        } else {
            let pn = n.probabilities(test, 256.min(batch));
            Some((
                agreement(&pc, &pn, test.classes, &test.y),
                weight_gap(&c.net.seq, &dropout::to_inverted(&n.net.seq)),
            ))
        };
        let unmapped = if u.diverged {
            None
        } else {
            let pu = u.probabilities(test, 256.min(batch));
            Some((
                agreement(&pc, &pu, test.classes, &test.y),
                weight_gap(&c.net.seq, &u.net.seq),
            ))
        };
        rows.push(vec![
            format!("{e}"),
            pct(mapped.accuracy.0),
            pct(mapped.accuracy.1),
            format!("{:.2e}", mapped.max_abs_diff),
            pct(mapped.same_class),
            format!("{gap:.2e}"),
            control.as_ref().map_or("diverged".into(), |(a, g)| {
                format!("{:.2e} / {} / {:.2e}", a.max_abs_diff, pct(a.same_class), g)
            }),
            unmapped.as_ref().map_or("diverged".into(), |(a, g)| {
                format!(
                    "{} acc., {} same class, max Δp {:.2}, weight gap {:.2}",
                    pct(a.accuracy.1),
                    pct(a.same_class),
                    a.max_abs_diff,
                    g
                )
            }),
        ]);
        per_epoch.push(json!({"epoch": e, "mapped": mapped, "weight_gap": gap,
            "control": control.map(|(a, g)| json!({"agreement": a, "weight_gap": g})),
            "unmapped": unmapped.map(|(a, g)| json!({"agreement": a, "weight_gap": g}))}));
    }
    r.table(
        &[
            "epoch",
            "classic: test accuracy",
            "inverted, mapped: test accuracy",
            "max |Δp| classic vs mapped",
            "same class",
            "weight gap",
            "control: classic from a start 1 ulp away, max |Δp| / same class / weight gap",
            "inverted with the classic settings unmapped",
        ],
        &rows,
    );
    r.set(
        "settings",
        json!({"lr": lr, "l2": l2, "max_norm": c, "input_dropout": p_in, "hidden_dropout": p_h}),
    );
    r.set("per_epoch", json!(per_epoch));
    Ok(())
}

fn cfg_threads(opts: &LabOptions) -> usize {
    let mut cfg = TrainConfig::default();
    cfg.threads = opts.threads;
    cfg.thread_count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Linear;

    #[test]
    fn settings_map_only_the_weights_fed_by_dropout() {
        let seq = Sequential::new(vec![
            Layer::Dropout(0.2),
            Layer::Linear(Linear::zeros(4, 3)),
            Layer::Activation(microdnn::Activation::Relu),
            Layer::Linear(Linear::zeros(3, 3)),
            Layer::Activation(microdnn::Activation::Relu),
            Layer::Dropout(0.5),
            Layer::Linear(Linear::zeros(3, 2)),
        ]);
        let s = tensor_settings(&seq, 1.0, 0.01, Some(4.0), true);
        assert_eq!(s.len(), 6);
        let q = 0.8f32;
        assert_eq!(s[0].lr, q * q);
        assert_eq!(s[0].l2, 0.01 / (q * q));
        assert_eq!(s[0].max_norm, Some(q * 4.0));
        // Biases and the layer without dropout before it: unchanged.
        for k in [1, 2, 3, 5] {
            assert_eq!(s[k].lr, 1.0, "tensor {k}");
        }
        assert_eq!(s[2].l2, 0.01);
        assert_eq!(s[4].lr, 0.25);
        assert_eq!(s[4].max_norm, Some(2.0));
        let plain = tensor_settings(&seq, 1.0, 0.01, Some(4.0), false);
        assert!(plain.iter().step_by(2).all(|t| t.lr == 1.0 && t.l2 == 0.01));
    }

    #[test]
    fn agreement_by_hand() {
        let a = [0.9, 0.1, 0.4, 0.6, 0.5, 0.5];
        let b = [0.8, 0.2, 0.7, 0.3, 0.5, 0.5];
        let g = agreement(&a, &b, 2, &[0, 1, 0]);
        assert!((g.max_abs_diff - 0.3).abs() < 1e-6);
        // Classes: a 0,1,0 (a tie goes to the first); b 0,0,0.
        assert!((g.same_class - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(g.accuracy, (1.0, 2.0 / 3.0));
    }

    /// A few epochs on the digits: the mapped inverted arm predicts what the classic arm
    /// predicts, up to f32 rounding; the unmapped one does not.
    #[test]
    fn classic_and_mapped_inverted_training_agree_on_the_digits() {
        let data = crate::lab::digits(0).unwrap();
        let mut cfg = TrainConfig::default();
        cfg.model.hidden = vec![32];
        cfg.model.input_dropout = 0.2;
        cfg.model.dropout = Rates::All(0.5);
        let mut start = cfg.model.build(64, 10).unwrap();
        init_weights(&mut start, cfg.model.init, &mut rng_for(3, 1));
        let opt = OptimizerConfig::Sgd {
            momentum: 0.9,
            nesterov: false,
        };
        let (lr, l2, c) = (0.05, 1e-3, 1.0);
        let mk = |seq: Sequential, kind, mapped| {
            let s = tensor_settings(&start, lr, l2, Some(c), mapped);
            Arm::new(seq, kind, s, opt, 3, 32, 1)
        };
        let inv = dropout::to_inverted(&start);
        let mut c_arm = mk(start.clone(), DropoutKind::Classic, false);
        let mut m_arm = mk(inv.clone(), DropoutKind::Inverted, true);
        let mut u_arm = mk(inv, DropoutKind::Inverted, false);
        for _ in 0..3 {
            c_arm.epoch(&data.train, 32);
            m_arm.epoch(&data.train, 32);
            u_arm.epoch(&data.train, 32);
        }
        let test = data.test.as_ref().unwrap();
        let pc = c_arm.probabilities(test, 32);
        let pm = m_arm.probabilities(test, 32);
        let pu = u_arm.probabilities(test, 32);
        let m = agreement(&pc, &pm, 10, &test.y);
        let u = agreement(&pc, &pu, 10, &test.y);
        assert!(m.max_abs_diff < 1e-3, "mapped: {m:?}");
        assert!(weight_gap(&c_arm.net.seq, &m_arm.net.seq) < 1e-3);
        assert!(u.max_abs_diff > 0.05, "unmapped: {u:?}");
        assert!(m.accuracy.0 > 0.8, "{m:?}");
    }
}

//! The lecture's regulariser table (Srivastava et al. 2014, table 9: MNIST 784-1024-1024-2048-10
//! ReLU), row by row with the papers' recipe, resumable.
//!
//! Every row is one or more training runs (seeds) of the trainer with committed settings
//! ([`row_config`]). Each run lives in `OUT/regularizers/ROW-sSEED/`: `run/` is an ordinary run
//! folder (checkpoint of model, optimiser and random stream after every epoch, written
//! atomically), and a finished run writes `results.json` and `report.md` there. Running the
//! experiment again skips finished runs (after checking that their settings are the committed
//! ones) and resumes an interrupted run from its last epoch, bit for bit; `--report-only`
//! rebuilds the table from the finished runs it finds, marking the others. The full table is
//! rewritten after every finished run.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{pct, LabOptions, Report};
use crate::model::checkpoint::atomic_write;
use crate::nn::dropout::DropoutKind;
use crate::nn::init::Init;
use crate::nn::optim::OptimizerConfig;
use crate::nn::schedule::{MomentumSchedule, Schedule};
use crate::nn::sparsity::KlSparsity;
use crate::plot::{Chart, Series};
use crate::train::config::{DatasetKind, Rates, TrainConfig};
use crate::train::{train, PreparedData, RunOptions, TrainError, METRICS_FILE, TRAIN_STATE_FILE};

/// A row of the table: the regulariser and its strengths. Every row shares the optimiser
/// recipe of its mode ([`Budget`]); rows with dropout use their own learning rate.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    /// Folder name.
    pub id: &'static str,
    /// The paper's name for the row.
    pub name: &'static str,
    /// The paper's test error (%).
    pub paper: f64,
    /// Seeds in the full experiment (the quick one runs as many).
    pub seeds: u64,
    /// Classic dropout 0.2 on the inputs and 0.5 on the hidden units.
    pub dropout: bool,
    /// L2 coefficient (on the classic weights).
    pub l2: f32,
    /// L1 coefficient, switched on for the last fifth of the epochs.
    pub l1: f32,
    /// KL-sparsity penalty on the hidden units' mean activations.
    pub kl: Option<KlSparsity>,
    /// Max-norm bound on every unit's incoming weights (classic parameterisation).
    pub max_norm: Option<f32>,
}

/// Hinton et al. 2012's squared length limit 15 on each hidden unit's incoming weights.
const MAX_NORM: f32 = 3.873; // √15

/// L2 coefficient of the rows that use it (not tuned: the paper tuned it on validation data).
const L2: f32 = 1e-4;

/// L1 coefficient of "L2 + L1 towards the end" (10× L2's: with the rate decayed by then, a
/// smaller one would not move the weights; not tuned).
const L1: f32 = 1e-4;

/// The table, in the paper's order (best last).
pub const ROWS: [Row; 6] = [
    Row {
        id: "l2",
        name: "L2",
        paper: 1.62,
        seeds: 1,
        dropout: false,
        l2: L2,
        l1: 0.0,
        kl: None,
        max_norm: None,
    },
    Row {
        id: "l2-l1",
        name: "L2 + L1 towards the end",
        paper: 1.60,
        seeds: 1,
        dropout: false,
        l2: L2,
        l1: L1,
        kl: None,
        max_norm: None,
    },
    Row {
        id: "l2-kl",
        name: "L2 + KL-sparsity",
        paper: 1.55,
        seeds: 1,
        dropout: false,
        l2: L2,
        l1: 0.0,
        kl: Some(KlSparsity {
            target: 0.1,
            weight: 1e-3,
        }),
        max_norm: None,
    },
    Row {
        id: "max-norm",
        name: "max-norm",
        paper: 1.35,
        seeds: 3,
        dropout: false,
        l2: 0.0,
        l1: 0.0,
        kl: None,
        max_norm: Some(MAX_NORM),
    },
    Row {
        id: "dropout-l2",
        name: "dropout + L2",
        paper: 1.25,
        seeds: 3,
        dropout: true,
        l2: L2,
        l1: 0.0,
        kl: None,
        max_norm: None,
    },
    Row {
        id: "dropout-max-norm",
        name: "dropout + max-norm",
        paper: 1.05,
        seeds: 3,
        dropout: true,
        l2: 0.0,
        l1: 0.0,
        kl: None,
        max_norm: Some(MAX_NORM),
    },
];

/// The order in which the full experiment trains its runs: the most informative first (seed 0 of
/// each row, the dropout rows first), then the extra seeds.
pub fn run_order() -> Vec<(usize, u64)> {
    let first = [5, 4, 3, 0, 2, 1];
    let mut v: Vec<(usize, u64)> = first.iter().map(|&r| (r, 0)).collect();
    for seed in 1..3 {
        for &r in &first {
            if seed < ROWS[r].seeds {
                v.push((r, seed));
            }
        }
    }
    v
}

/// What a mode trains for: the schedules of Hinton et al. (2012) compressed to the budget.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Epochs of every run.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch: usize,
    /// Epochs of the momentum ramp 0.5 → 0.99.
    pub ramp: usize,
    /// Learning-rate decay per epoch.
    pub gamma: f64,
    /// ε of the rows with dropout (and of max-norm alone: the constraint keeps it stable).
    pub lr_dropout: f64,
    /// ε of the rows without dropout or max-norm.
    pub lr_plain: f64,
}

/// The full experiment: 300 epochs (180,000 updates of 100 images), Hinton et al.'s 3,000-epoch
/// schedule compressed 10×: momentum 0.5 → 0.99 over 50 epochs, ε × 0.98 per epoch (their
/// 0.998 per epoch, ten times over: the same total decay, 0.0025).
pub const FULL: Budget = Budget {
    epochs: 300,
    batch: 100,
    ramp: 50,
    gamma: 0.98,
    lr_dropout: 1.0,
    lr_plain: 0.1,
};

/// The quick experiment (digits, seconds): the same recipe over 30 epochs of smaller batches
/// (the digits' 1,293 training images make 13 batches of 100).
pub const QUICK: Budget = Budget {
    epochs: 30,
    batch: 32,
    ramp: 10,
    gamma: 0.9,
    lr_dropout: 1.0,
    lr_plain: 0.1,
};

/// The training settings of `row`, seed `seed`, for a mode's budget and network. `threads` and
/// the data path are left at their defaults: they do not change the result (one seed gives the
/// same bits with any thread count), and the run's folder records them where it runs.
pub fn row_config(row: &Row, seed: u64, b: &Budget, quick: bool) -> TrainConfig {
    let mut cfg = TrainConfig::default();
    cfg.seed = seed;
    cfg.epochs = b.epochs;
    cfg.batch_size = b.batch;
    cfg.diagnostics = false;
    cfg.early_stopping = None;
    if quick {
        cfg.model.hidden = vec![128, 128, 256];
    } else {
        cfg.data.dataset = Some(DatasetKind::Mnist);
        // All 60,000 training images: the paper merged its validation images back for the
        // final runs.
        cfg.data.validation_fraction = Some(0.0);
        cfg.model.hidden = vec![1024, 1024, 2048];
    }
    cfg.model.activation = "relu".into();
    cfg.model.init = Init::HeNormal;
    cfg.optimizer = OptimizerConfig::SgdHinton { momentum: 0.5 };
    cfg.momentum_schedule = Some(MomentumSchedule::Linear {
        start: 0.5,
        end: 0.99,
        epochs: b.ramp,
    });
    cfg.schedule = Schedule::Exponential { gamma: b.gamma };
    cfg.lr = if row.dropout || row.max_norm.is_some() {
        b.lr_dropout
    } else {
        b.lr_plain
    };
    if row.dropout {
        cfg.model.input_dropout = 0.2;
        cfg.model.dropout = Rates::All(0.5);
        cfg.model.dropout_kind = DropoutKind::Classic;
    }
    let r = &mut cfg.regularization;
    r.l2 = row.l2;
    r.l1 = row.l1;
    if row.l1 > 0.0 {
        r.l1_from_epoch = b.epochs - b.epochs / 5;
    }
    r.sparsity = row.kl;
    r.max_norm = row.max_norm;
    cfg
}

/// The settings as compared between runs: the config without the data path and thread count.
fn canonical(cfg: &TrainConfig) -> String {
    let mut c = cfg.clone();
    c.data.path = None;
    c.threads = 0;
    c.to_toml()
}

/// [`canonical`] of a run folder's `config.toml` text (compared as TOML text, not parsed into a
/// config: a config without early stopping has no TOML spelling that parses back to `None`).
fn canonical_text(toml_text: &str) -> anyhow::Result<String> {
    let mut v: toml::Table = toml::from_str(toml_text)?;
    v.insert("threads".into(), toml::Value::Integer(0));
    if let Some(toml::Value::Table(d)) = v.get_mut("data") {
        d.remove("path");
    }
    Ok(toml::to_string(&v)?)
}

/// What a finished run records (`results.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResult {
    /// Row id.
    pub row: String,
    /// Seed.
    pub seed: u64,
    /// The settings (canonical TOML).
    pub settings: String,
    /// Test error of the final network, or `None` if training diverged.
    pub test_error: Option<f64>,
    /// Test loss.
    pub test_loss: Option<f64>,
    /// Test images.
    pub test_images: usize,
    /// Why the run stopped early (divergence), if it did.
    pub diverged: Option<String>,
    /// Epochs trained.
    pub epochs: usize,
    /// Mean training loss of each epoch (training mode).
    pub train_loss: Vec<f64>,
    /// Learning rate of each epoch.
    pub lr: Vec<f64>,
    /// Momentum of each epoch.
    pub momentum: Vec<f64>,
    /// Seconds of training, summed over the epochs (across interruptions).
    pub seconds: f64,
    /// Indices of the test images the final network gets wrong (for paired tests between
    /// rows).
    pub misclassified: Vec<u32>,
}

/// Where a run stands.
#[derive(Clone, Debug)]
enum Status {
    Finished(Box<RunResult>),
    /// Epochs done so far (0: not started) and the last training loss.
    Unfinished(usize, Option<f64>),
    /// A `results.json` with other settings than the committed ones.
    Stale,
}

fn run_dir(exp: &Path, row: &Row, seed: u64) -> PathBuf {
    exp.join(format!("{}-s{seed}", row.id))
}

/// The status of a run from its folder.
fn status(exp: &Path, row: &Row, seed: u64, cfg: &TrainConfig) -> anyhow::Result<Status> {
    let dir = run_dir(exp, row, seed);
    let res = dir.join("results.json");
    if res.exists() {
        let text = std::fs::read_to_string(&res).with_context(|| format!("{}", res.display()))?;
        let r: RunResult =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", res.display()))?;
        return Ok(if r.settings == canonical(cfg) {
            Status::Finished(Box::new(r))
        } else {
            Status::Stale
        });
    }
    let metrics = dir.join("run").join(METRICS_FILE);
    let (done, last) = match std::fs::read_to_string(&metrics) {
        Ok(text) => {
            let m: crate::train::RunMetrics = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", metrics.display()))?;
            (m.epochs.len(), m.epochs.last().map(|e| e.train_loss))
        }
        Err(_) => (0, None),
    };
    Ok(Status::Unfinished(done, last))
}

/// Trains (or resumes) one run and, when it finishes, writes its `results.json` and
/// `report.md`. Returns `None` when stopped before the last epoch (`opts.stop_after`).
fn train_run(
    exp: &Path,
    row: &Row,
    seed: u64,
    cfg: &TrainConfig,
    data: &PreparedData,
    opts: &LabOptions,
) -> anyhow::Result<Option<RunResult>> {
    let dir = run_dir(exp, row, seed);
    let folder = dir.join("run");
    let resume = folder.join(TRAIN_STATE_FILE).exists();
    if resume {
        let path = folder.join(crate::train::CONFIG_FILE);
        let saved =
            std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
        if canonical_text(&saved)? != canonical_text(&cfg.to_toml())? {
            bail!(
                "{} was started with other settings than the committed ones; delete the folder \
                 to train this run again",
                folder.display()
            );
        }
    }
    let mut run_cfg = cfg.clone();
    run_cfg.threads = opts.threads;
    run_cfg.data.path = opts.mnist.clone().filter(|_| !opts.quick);
    opts.log(format!(
        "regularizers: {} seed {seed}{}",
        row.name,
        if resume { " (resuming)" } else { "" }
    ));
    let run_opts = RunOptions {
        out_dir: Some(folder.clone()),
        resume,
        progress: opts.verbose && !opts.quick,
        stop_after: opts.stop_after,
        // No training state: whatever the folder holds is from a run killed before its first
        // checkpoint.
        force: !resume,
    };
    let (metrics, model, diverged) = match train(&run_cfg, data, &run_opts) {
        Ok(out) => (out.metrics, Some(out.model), None),
        Err(e @ TrainError::Diverged { .. }) => {
            let text = std::fs::read_to_string(folder.join(METRICS_FILE)).unwrap_or_default();
            let m = serde_json::from_str(&text).unwrap_or(crate::train::RunMetrics {
                epochs: Vec::new(),
                test_loss: None,
                test_accuracy: None,
                best_epoch: None,
                stopped_early: false,
                pretraining: Vec::new(),
                diagnostics_at_init: Vec::new(),
            });
            (m, None, Some(e.to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    if diverged.is_none() && metrics.epochs.len() < cfg.epochs {
        return Ok(None);
    }
    let test = data
        .test
        .as_ref()
        .context("the experiment needs a test split")?;
    let misclassified = match &model {
        Some(m) => m
            .net
            .predict(&test.x, test.len())
            .chunks(test.classes)
            .zip(&test.y)
            .enumerate()
            .filter(|(_, (out, &y))| microdnn::argmax(out) != y as usize)
            .map(|(i, _)| i as u32)
            .collect(),
        None => Vec::new(),
    };
    let e = &metrics.epochs;
    let result = RunResult {
        row: row.id.into(),
        seed,
        settings: canonical(cfg),
        test_error: metrics.test_accuracy.map(|a| 1.0 - a),
        test_loss: metrics.test_loss,
        test_images: test.len(),
        diverged,
        epochs: e.len(),
        train_loss: e.iter().map(|m| m.train_loss).collect(),
        lr: e.iter().map(|m| m.lr).collect(),
        momentum: e.iter().map(|m| m.momentum.unwrap_or(f64::NAN)).collect(),
        seconds: e.iter().map(|m| m.seconds).sum(),
        misclassified,
    };
    atomic_write(&dir.join("report.md"), run_report(row, &result).as_bytes())?;
    atomic_write(
        &dir.join("results.json"),
        serde_json::to_string(&result)?.as_bytes(),
    )?;
    Ok(Some(result))
}

/// One run's `report.md`.
fn run_report(row: &Row, r: &RunResult) -> String {
    let outcome = match (&r.diverged, r.test_error) {
        (Some(d), _) => format!("**diverged**: {d}"),
        (None, Some(e)) => format!(
            "test error **{}** ({} of {} images; the paper: {:.2}%)",
            pct(e),
            (e * r.test_images as f64).round(),
            r.test_images,
            row.paper
        ),
        (None, None) => "no test error".into(),
    };
    format!(
        "# {} (seed {})\n\n{outcome}; {} epochs, final training loss {:.4}, {:.0} s of \
         training.\n\nSettings:\n\n```toml\n{}```\n",
        row.name,
        r.seed,
        r.epochs,
        r.train_loss.last().copied().unwrap_or(f64::NAN),
        r.seconds,
        r.settings
    )
}

/// Runs (or, with `report_only`, only reports) the table.
pub(super) fn run(opts: &LabOptions, r: &mut Report) -> anyhow::Result<()> {
    if opts.epochs.is_some() {
        bail!(
            "the regulariser table trains for its committed budget ({} epochs full, {} quick); \
             --epochs would make it another experiment",
            FULL.epochs,
            QUICK.epochs
        );
    }
    let budget = if opts.quick { QUICK } else { FULL };
    let exp = r.dir.clone();
    if opts.quick && !opts.resume && !opts.report_only {
        for row in &ROWS {
            for seed in 0..row.seeds {
                let _ = std::fs::remove_dir_all(run_dir(&exp, row, seed));
            }
        }
    }
    if !opts.report_only {
        let data = if opts.quick {
            super::digits(0)?
        } else {
            super::mnist(opts, 60_000, 10_000, false)?
        };
        for (ri, seed) in run_order() {
            let row = &ROWS[ri];
            let cfg = row_config(row, seed, &budget, opts.quick);
            match status(&exp, row, seed, &cfg)? {
                Status::Finished(_) => continue,
                Status::Stale => bail!(
                    "{} holds results of other settings than the committed ones; delete it to \
                     train this run again",
                    run_dir(&exp, row, seed).display()
                ),
                Status::Unfinished(..) => {}
            }
            let t = std::time::Instant::now();
            let done = train_run(&exp, row, seed, &cfg, &data, opts)?;
            if done.is_some() {
                // The table so far, for whoever looks while the next run trains.
                let mut interim = Report::new(exp.clone(), super::title("regularizers"), opts);
                table(opts, &budget, &mut interim)?;
                interim.finish(t.elapsed().as_secs_f64())?;
            } else {
                break; // stopped by `stop_after`
            }
        }
    }
    table(opts, &budget, r)
}

/// The statistics of a row's finished runs.
#[derive(Clone, Debug, Default)]
struct RowStats {
    errors: Vec<f64>,
    seeds_planned: u64,
    unfinished: Vec<String>,
    diverged: Vec<String>,
    stale: Vec<u64>,
    seed0: Option<RunResult>,
}

impl RowStats {
    fn mean(&self) -> Option<f64> {
        (!self.errors.is_empty())
            .then(|| self.errors.iter().sum::<f64>() / self.errors.len() as f64)
    }

    /// Standard error of the mean over seeds (`None` with fewer than two).
    fn seed_se(&self) -> Option<f64> {
        let n = self.errors.len();
        let m = self.mean()?;
        (n >= 2).then(|| {
            let var = self.errors.iter().map(|e| (e - m).powi(2)).sum::<f64>() / (n - 1) as f64;
            (var / n as f64).sqrt()
        })
    }
}

fn gather(exp: &Path, budget: &Budget, quick: bool) -> anyhow::Result<Vec<RowStats>> {
    let mut out = Vec::new();
    for row in &ROWS {
        let mut s = RowStats {
            seeds_planned: row.seeds,
            ..RowStats::default()
        };
        for seed in 0..row.seeds {
            let cfg = row_config(row, seed, budget, quick);
            match status(exp, row, seed, &cfg)? {
                Status::Finished(res) => {
                    match (&res.diverged, res.test_error) {
                        (Some(_), _) | (None, None) => s.diverged.push(format!("seed {seed}")),
                        (None, Some(e)) => s.errors.push(e),
                    }
                    if seed == 0 {
                        s.seed0 = Some(*res);
                    }
                }
                Status::Unfinished(done, last) => s.unfinished.push(match last {
                    Some(l) => format!(
                        "seed {seed}: {done}/{} epochs, training loss {l:.4}",
                        budget.epochs
                    ),
                    None => format!("seed {seed}: not started"),
                }),
                Status::Stale => s.stale.push(seed),
            }
        }
        out.push(s);
    }
    Ok(out)
}

/// Two-sided exact McNemar test on the discordant pairs `b` and `c`: the probability, with
/// `b + c` fair coin flips, of a split at least as uneven.
pub fn mcnemar_p(b: usize, c: usize) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // log P(X = i) for X ~ Bin(n, 1/2), summed for i ≤ k in log space.
    let mut log_term = -(n as f64) * std::f64::consts::LN_2;
    let mut terms = vec![log_term];
    for i in 1..=k {
        log_term += ((n - i + 1) as f64 / i as f64).ln();
        terms.push(log_term);
    }
    let max = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let tail = max.exp() * terms.iter().map(|t| (t - max).exp()).sum::<f64>();
    (2.0 * tail).min(1.0)
}

/// A comparison of two rows the paper orders (`better` below `worse` in the table).
#[derive(Clone, Debug, Serialize)]
struct Pair {
    worse: &'static str,
    better: &'static str,
    /// Mean error of `worse` minus mean error of `better` (positive: the paper's order).
    difference: f64,
    /// McNemar's p on the seed-0 runs' test errors.
    mcnemar_p: f64,
    /// Images only `worse`'s / only `better`'s seed-0 run gets right.
    only_worse_right: usize,
    only_better_right: usize,
    /// Standard error of the difference of the means over seeds (both rows with ≥ 2 seeds).
    seed_se: Option<f64>,
    /// Whether the difference is larger than the noise (see the report).
    real: bool,
}

fn compare(stats: &[RowStats], i: usize, j: usize) -> Option<Pair> {
    let (a, b) = (&stats[i], &stats[j]);
    let (ma, mb) = (a.mean()?, b.mean()?);
    let (ra, rb) = (a.seed0.as_ref()?, b.seed0.as_ref()?);
    if ra.test_images != rb.test_images {
        return None;
    }
    let wrong_a: std::collections::BTreeSet<u32> = ra.misclassified.iter().copied().collect();
    let wrong_b: std::collections::BTreeSet<u32> = rb.misclassified.iter().copied().collect();
    let only_a = wrong_b.difference(&wrong_a).count();
    let only_b = wrong_a.difference(&wrong_b).count();
    let p = mcnemar_p(only_a, only_b);
    let seed_se = match (a.seed_se(), b.seed_se()) {
        (Some(x), Some(y)) => Some((x * x + y * y).sqrt()),
        _ => None,
    };
    let d = ma - mb;
    let seed0_d = ra.test_error? - rb.test_error?;
    let real = p < 0.05 && seed_se.is_none_or(|s| d.abs() > 2.0 * s) && d * seed0_d > 0.0;
    Some(Pair {
        worse: ROWS[i].id,
        better: ROWS[j].id,
        difference: d,
        mcnemar_p: p,
        only_worse_right: only_a,
        only_better_right: only_b,
        seed_se,
        real,
    })
}

/// Writes the table of whatever runs are finished into `r`.
fn table(opts: &LabOptions, budget: &Budget, r: &mut Report) -> anyhow::Result<()> {
    let stats = gather(&r.dir.clone(), budget, opts.quick)?;
    describe(opts, budget, r);
    let n_test = stats
        .iter()
        .find_map(|s| s.seed0.as_ref().map(|r| r.test_images))
        .unwrap_or(1) as f64;
    let mut rows = Vec::new();
    for (row, s) in ROWS.iter().zip(&stats) {
        let ours = match s.mean() {
            Some(m) => {
                let bin = (m * (1.0 - m) / n_test).sqrt();
                match s.seed_se() {
                    Some(se) => format!(
                        "**{}** ± {:.2} (seeds) ± {:.2} (test set)",
                        pct(m),
                        100.0 * se,
                        100.0 * bin
                    ),
                    None => format!("**{}** ± {:.2} (test set)", pct(m), 100.0 * bin),
                }
            }
            None => "–".into(),
        };
        let per_seed: Vec<String> = s.errors.iter().map(|&e| pct(e)).collect();
        let mut state = format!("{}/{} runs finished", s.errors.len(), s.seeds_planned);
        for (what, v) in [("unfinished", &s.unfinished), ("diverged", &s.diverged)] {
            if !v.is_empty() {
                state.push_str(&format!("; {what}: {}", v.join(", ")));
            }
        }
        if !s.stale.is_empty() {
            state.push_str(&format!("; other settings (ignored): seeds {:?}", s.stale));
        }
        rows.push(vec![
            row.name.to_string(),
            format!("{:.2}%", row.paper),
            ours,
            per_seed.join(", "),
            state,
        ]);
        r.set(
            row.id,
            json!({
                "name": row.name, "paper_error_pct": row.paper, "errors": s.errors,
                "mean_error": s.mean(), "seed_se": s.seed_se(),
                "seeds_planned": s.seeds_planned, "unfinished": s.unfinished,
                "diverged": s.diverged,
            }),
        );
    }
    r.table(
        &[
            "regulariser",
            "paper",
            "ours: mean test error",
            "per seed",
            "status",
        ],
        &rows,
    );
    verdicts(&stats, n_test, r);
    curves(&stats, r)
}

fn describe(opts: &LabOptions, b: &Budget, r: &mut Report) {
    let (net, data) = if opts.quick {
        ("64-128-128-256-10", "the bundled digits (80/20 split)")
    } else {
        (
            "784-1024-1024-2048-10",
            "MNIST: all 60,000 training images, the 10,000 test images",
        )
    };
    r.p(format!(
        "{net} ReLU, He init, {data}; batch {}, {} epochs for every run. SGD in Hinton et al. \
         (2012)'s form `Δw ← μ Δw − (1 − μ) ε ∇L`, momentum μ rising linearly from 0.5 to 0.99 \
         over the first {} epochs, ε × {} per epoch (Hinton et al.'s 3,000-epoch schedule \
         compressed to this budget), ε₀ = {} with dropout or max-norm, {} otherwise. Dropout is \
         classic (the papers': no rescaling in training, × keep probability at test time; the \
         saved networks are converted to inverted dropout), 0.2 on the inputs and 0.5 on the \
         hidden units, so learning rate, L2 and max-norm act on the paper's weights. Max-norm \
         c = {MAX_NORM} (√15) on every unit's incoming weights; L2 λ = {L2}; L1 {L1} from epoch \
         {}; KL sparsity: target mean activation 0.1, weight 1e-3 (Poisson KL for ReLU \
         units). Regulariser strengths are common values, not tuned (the paper tuned each row on \
         validation data). See docs/lab.md for the sources of each setting.",
        b.batch,
        b.epochs,
        b.ramp,
        b.gamma,
        b.lr_dropout,
        b.lr_plain,
        b.epochs - b.epochs / 5 + 1,
    ));
}

/// The paper's ordering, pair by pair: which differences are larger than the noise.
fn verdicts(stats: &[RowStats], n_test: f64, r: &mut Report) {
    let mut pairs = Vec::new();
    for i in 0..ROWS.len() {
        for j in i + 1..ROWS.len() {
            if let Some(p) = compare(stats, i, j) {
                pairs.push(p);
            }
        }
    }
    if pairs.is_empty() {
        r.p("No two rows are finished yet: no comparison.");
        return;
    }
    let rows: Vec<Vec<String>> = pairs
        .iter()
        .map(|p| {
            let name = |id| ROWS.iter().find(|r| r.id == id).map_or(id, |r| r.name);
            vec![
                format!("{} > {}", name(p.worse), name(p.better)),
                format!("{:+.2}", 100.0 * p.difference),
                format!(
                    "{} / {}, p {}",
                    p.only_worse_right,
                    p.only_better_right,
                    if p.mcnemar_p < 0.001 {
                        "< 0.001".to_string()
                    } else {
                        format!("= {:.3}", p.mcnemar_p)
                    }
                ),
                p.seed_se
                    .map_or("–".into(), |s| format!("{:.2}", 100.0 * s)),
                match (p.difference > 0.0, p.real) {
                    (true, true) => "holds (real)",
                    (true, false) => "holds (within noise)",
                    (false, true) => "**inverted (real)**",
                    (false, false) => "inverted (within noise)",
                }
                .into(),
            ]
        })
        .collect();
    r.p(format!(
        "The paper's ordering, pair by pair (the paper's error is higher for the first row of \
         each pair). A difference is called real when McNemar's exact test on the seed-0 runs' \
         errors on the same test images gives p < 0.05, the seed-0 runs differ in the same \
         direction as the means, and, where both rows have several seeds, the means differ by \
         more than twice the standard error of their difference. The binomial standard error \
         of one error rate near 1.6% on {n_test} images is {:.2} points; the paired test is \
         sharper because both rows see the same images.",
        100.0 * (0.016f64 * 0.984 / n_test).sqrt()
    ));
    r.table(
        &[
            "pair (paper: first is worse)",
            "ours: difference (points)",
            "images only the first / only the second gets right",
            "s.e. over seeds",
            "paper's order",
        ],
        &rows,
    );
    let dropout_ahead = pairs
        .iter()
        .filter(|p| {
            let d = |id| ROWS.iter().any(|r| r.id == id && r.dropout);
            !d(p.worse) && d(p.better)
        })
        .collect::<Vec<_>>();
    let held = dropout_ahead.iter().filter(|p| p.difference > 0.0).count();
    let real = dropout_ahead
        .iter()
        .filter(|p| p.difference > 0.0 && p.real)
        .count();
    r.p(format!(
        "Dropout rows ahead of the rows without dropout: {held} of {} finished pairs ({real} \
         of them beyond the noise).",
        dropout_ahead.len()
    ));
    let goal = stats[5].mean();
    if let Some(m) = goal {
        r.p(format!(
            "Goal, dropout + max-norm ≤ 1.25%: **{}** ({} over {} run(s)).",
            if m <= 0.0125 { "met" } else { "not met" },
            pct(m),
            stats[5].errors.len()
        ));
    }
    r.set("pairs", json!(pairs));
}

fn curves(stats: &[RowStats], r: &mut Report) -> anyhow::Result<()> {
    let series: Vec<Series> = ROWS
        .iter()
        .zip(stats)
        .enumerate()
        .filter_map(|(i, (row, s))| {
            let res = s.seed0.as_ref()?;
            let pts = res
                .train_loss
                .iter()
                .enumerate()
                .filter(|(_, l)| l.is_finite() && **l > 0.0)
                .map(|(e, l)| ((e + 1) as f64, l.log10()))
                .collect();
            Some(Series::new(row.name, i, pts))
        })
        .collect();
    if series.is_empty() {
        return Ok(());
    }
    r.chart(
        "train_loss.png",
        &Chart {
            title: "Training loss, seed 0 (training mode: with dropout where used)".into(),
            x_label: "epoch".into(),
            y_label: "log10 cross-entropy".into(),
            series,
            ..Chart::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcnemar_by_hand() {
        // 0 vs 5 discordant pairs: 2 · (1/2)^5 = 0.0625.
        assert!((mcnemar_p(0, 5) - 0.0625).abs() < 1e-12);
        // 1 vs 9: 2 · (1 + 10) / 1024.
        assert!((mcnemar_p(9, 1) - 22.0 / 1024.0).abs() < 1e-12);
        assert_eq!(mcnemar_p(4, 4), 1.0);
        assert_eq!(mcnemar_p(0, 0), 1.0);
        // Large counts stay finite: 400 vs 600 is far beyond chance.
        let p = mcnemar_p(400, 600);
        assert!(p > 0.0 && p < 1e-9, "{p}");
    }

    /// The quick table, interrupted twice in its first run and continued, equals an
    /// uninterrupted one: every run's results and final model, bit for bit.
    #[test]
    #[cfg_attr(debug_assertions, ignore = "slow in debug builds; run with --release")]
    fn an_interrupted_table_continues_bit_identically() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let opts = |dir: &Path, resume, stop_after| LabOptions {
            out: dir.to_path_buf(),
            resume,
            stop_after,
            ..LabOptions::default()
        };
        crate::lab::run("regularizers", &opts(a.path(), false, None)).unwrap();
        crate::lab::run("regularizers", &opts(b.path(), false, Some(7))).unwrap();
        let exp_b = b.path().join("regularizers");
        let first = run_dir(&exp_b, &ROWS[5], 0);
        assert!(!first.join("results.json").exists(), "stopped at epoch 7");
        assert!(
            !run_dir(&exp_b, &ROWS[4], 0).exists(),
            "the next run has not started"
        );
        let report = std::fs::read_to_string(exp_b.join("report.md")).unwrap();
        assert!(report.contains("seed 0: 7/30 epochs"), "{report}");
        crate::lab::run("regularizers", &opts(b.path(), true, Some(19))).unwrap();
        crate::lab::run("regularizers", &opts(b.path(), true, None)).unwrap();
        let exp_a = a.path().join("regularizers");
        for (ri, seed) in run_order() {
            let read = |exp: &Path| -> RunResult {
                let p = run_dir(exp, &ROWS[ri], seed).join("results.json");
                serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
            };
            let (ra, rb) = (read(&exp_a), read(&exp_b));
            let what = format!("{} seed {seed}", ROWS[ri].id);
            assert_eq!(
                ra.test_error.map(f64::to_bits),
                rb.test_error.map(f64::to_bits),
                "{what}"
            );
            assert_eq!(ra.misclassified, rb.misclassified, "{what}");
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&ra.train_loss), bits(&rb.train_loss), "{what}");
            assert_eq!(ra.settings, rb.settings, "{what}");
            let model = |exp: &Path| {
                let p = run_dir(exp, &ROWS[ri], seed)
                    .join("run")
                    .join("model.safetensors");
                std::fs::read(p).unwrap()
            };
            assert_eq!(model(&exp_a), model(&exp_b), "{what}");
        }
        // The report rebuilt from the finished runs alone has the same table.
        let only = LabOptions {
            report_only: true,
            ..opts(b.path(), false, None)
        };
        crate::lab::run("regularizers", &only).unwrap();
        let table = |exp: &Path| {
            let md = std::fs::read_to_string(exp.join("report.md")).unwrap();
            md.lines()
                .filter(|l| l.starts_with("| "))
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(table(&exp_a), table(&exp_b));
        assert!(table(&exp_a).len() > 8, "{:?}", table(&exp_a));
        // Running again trains nothing: every run is finished.
        let t = std::time::Instant::now();
        crate::lab::run("regularizers", &opts(b.path(), true, None)).unwrap();
        assert!(t.elapsed().as_secs_f64() < 5.0);
    }

    #[test]
    fn rows_and_order() {
        let order = run_order();
        assert_eq!(order[0], (5, 0), "dropout + max-norm seed 0 first");
        let planned: u64 = ROWS.iter().map(|r| r.seeds).sum();
        assert_eq!(order.len() as u64, planned);
        let mut sorted = order.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), order.len(), "every run once");
        // Each row's settings are valid and differ only where the rows do.
        for row in &ROWS {
            let c = row_config(row, 0, &FULL, false);
            c.check_epoch_settings().unwrap();
            assert_eq!(c.model.dropout_kind == DropoutKind::Classic, row.dropout);
        }
        let l1 = row_config(&ROWS[1], 0, &FULL, false);
        assert_eq!(l1.regularization.l1_from_epoch, 240);
    }
}

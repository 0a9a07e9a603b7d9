//! `microdnn bench-train`: training and inference throughput on MNIST with the workload of
//! `shared/bench/pytorch_mlp.py` (784-256-128-10 ReLU, He init, batch 128, SGD momentum 0.9,
//! lr 0.05, softmax cross-entropy, a fresh seeded permutation each epoch, last partial batch
//! kept), so the two can be compared as a ratio.
//!
//! Training throughput is the median over windows of 50 steps after a warm-up window; inference
//! (the trained model, evaluation mode) is the median of 5 repetitions of about one second each,
//! at batch 1 (single-threaded matrix-vector path) and batch 256 (GEMM on the thread pool).

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::model::{argmax, Predictor};
use crate::nn::init::Init;
use crate::nn::network::Network;
use crate::nn::optim::{Optimizer, OptimizerConfig};
use crate::random::{rng_for, shuffle};
use crate::train::config::{DatasetKind, ModelConfig, TrainConfig, TransformKind};
use crate::train::step::{load_batch, step as train_step, StepParams};
use crate::train::{init_weights, prepare_data};

/// Benchmark settings.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// MNIST folder (default: the shared copy).
    pub data_dir: Option<PathBuf>,
    /// Training steps (default: two epochs, 938 steps).
    pub steps: Option<usize>,
    /// Threads (0 = all cores).
    pub threads: usize,
    /// Seed.
    pub seed: u64,
}

/// Benchmark results (the JSON keys the tooling reads).
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    /// Median training throughput, samples/s.
    pub train_samples_per_s: f64,
    /// Median batch-1 inference throughput, samples/s.
    pub infer_b1_samples_per_s: f64,
    /// Median batch-256 inference throughput, samples/s.
    pub infer_b256_samples_per_s: f64,
    /// Training steps run.
    pub steps: usize,
    /// Threads used.
    pub threads: usize,
    /// Test accuracy of the benchmarked model after its short training (sanity check).
    pub test_accuracy: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return 0.0;
    }
    v[v.len() / 2]
}

/// Runs the benchmark.
pub fn run(opts: &BenchOptions) -> anyhow::Result<BenchResult> {
    let mut cfg = TrainConfig {
        seed: opts.seed,
        threads: opts.threads,
        batch_size: 128,
        lr: 0.05,
        ..TrainConfig::default()
    };
    cfg.data.dataset = Some(DatasetKind::Mnist);
    cfg.data.path = opts.data_dir.clone();
    cfg.data.validation_fraction = Some(0.0);
    cfg.data.transform = TransformKind::ScaleByMax;
    cfg.model = ModelConfig {
        hidden: vec![256, 128],
        init: Init::HeNormal,
        ..ModelConfig::default()
    };
    cfg.optimizer = OptimizerConfig::Sgd {
        momentum: 0.9,
        nesterov: false,
    };
    let data = prepare_data(&cfg)?;
    let threads = cfg.thread_count();
    crate::train::thread_pool(threads)?.install(|| run_in_pool(&cfg, &data, opts, threads))
}

fn run_in_pool(
    cfg: &TrainConfig,
    data: &crate::train::PreparedData,
    opts: &BenchOptions,
    threads: usize,
) -> anyhow::Result<BenchResult> {
    let train = &data.train;
    let test = data.test.as_ref().expect("MNIST has a test set");
    let (n, f) = (train.len(), train.features);
    let bs = cfg.batch_size;
    let steps_per_epoch = n.div_ceil(bs);
    let steps = opts.steps.unwrap_or(2 * steps_per_epoch).max(2);
    let mut seq = cfg.model.build(f, train.classes)?;
    init_weights(&mut seq, cfg.model.init, &mut rng_for(cfg.seed, 1));
    let mut net = Network::new(seq, cfg.loss, bs, threads);
    let mut opt = Optimizer::new(cfg.optimizer, &net.param_sizes());
    let mut rng = rng_for(cfg.seed, 2);
    let mut order: Vec<usize> = (0..n).collect();
    let mut labels = vec![0u32; bs];
    let lr = cfg.lr as f32;
    let window = 50usize;
    let mut rates = Vec::new();
    let mut step = 0;
    let (mut w_start, mut w_samples) = (Instant::now(), 0usize);
    'outer: loop {
        shuffle(&mut order, &mut rng);
        for idx in order.chunks(bs) {
            let b = idx.len();
            load_batch(&mut net, train, idx, &mut labels);
            // No regulariser, constant rate: the PyTorch workload.
            let params = StepParams::new(lr, cfg.regularization);
            train_step(&mut net, &mut opt, &params, &labels[..b], &mut rng, &mut ())
                .map_err(|_| anyhow::anyhow!("the benchmark's training diverged"))?;
            step += 1;
            w_samples += b;
            if step % window == 0 {
                rates.push(w_samples as f64 / w_start.elapsed().as_secs_f64());
                w_start = Instant::now();
                w_samples = 0;
            }
            if step >= steps {
                break 'outer;
            }
        }
    }
    // The first window includes warm-up (page faults, caches, thread start-up).
    let steady = if rates.len() > 1 {
        rates[1..].to_vec()
    } else {
        rates
    };
    let train_rate = median(steady);

    let mut p = Predictor::new(&net.seq, 256).with_threads(threads);
    let tf = test.features;
    let mut correct = 0;
    for i in 0..test.len() {
        if argmax(p.predict_one(test.row(i))) == test.y[i] as usize {
            correct += 1;
        }
    }
    let test_accuracy = correct as f64 / test.len() as f64;
    let measure = |p: &mut Predictor, batch: usize| -> f64 {
        let chunks = test.len() / batch;
        let run = |p: &mut Predictor, k: usize| {
            let c = k % chunks;
            let x = &test.x[c * batch * tf..(c + 1) * batch * tf];
            std::hint::black_box(p.predict_batch(x, batch));
        };
        for k in 0..50 {
            run(p, k);
        }
        let mut reps = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let mut k = 0;
            while t.elapsed().as_secs_f64() < 1.0 {
                for _ in 0..8 {
                    run(p, k);
                    k += 1;
                }
            }
            reps.push((k * batch) as f64 / t.elapsed().as_secs_f64());
        }
        median(reps)
    };
    let b1 = measure(&mut p, 1);
    let b256 = measure(&mut p, 256);
    Ok(BenchResult {
        train_samples_per_s: train_rate,
        infer_b1_samples_per_s: b1,
        infer_b256_samples_per_s: b256,
        steps,
        threads,
        test_accuracy,
    })
}

//! The inference paths agree with each other and with an independent f64 reference: batch-1
//! matrix-vector path, batched GEMM path, the batch split across threads, and the training
//! network's evaluation mode (batch norm unfolded).

use microdnn::Activation;
use microdnn_host::model::{BatchNorm1d, Layer, Linear, Predictor, Sequential};
use microdnn_host::nn::loss::Loss;
use microdnn_host::nn::network::Network;
use microdnn_host::random::rng_for;

mod common;

fn rand_vec(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    common::rand_vec(n, &mut rng_for(seed, 4), lo, hi)
}

fn net() -> Sequential {
    let mut bn = BatchNorm1d::new(40, 1e-5, 0.1);
    bn.weight = rand_vec(40, 1, 0.5, 1.5);
    bn.bias = rand_vec(40, 2, -0.2, 0.2);
    bn.running_mean = rand_vec(40, 3, -0.5, 0.5);
    bn.running_var = rand_vec(40, 4, 0.5, 2.0);
    Sequential::new(vec![
        Layer::Dropout(0.2),
        Layer::Linear(
            Linear::from_parts(
                37,
                40,
                rand_vec(37 * 40, 5, -0.3, 0.3),
                rand_vec(40, 6, -0.1, 0.1),
            )
            .unwrap(),
        ),
        Layer::BatchNorm1d(bn),
        Layer::Activation(Activation::LeakyRelu { slope: 0.05 }),
        Layer::Dropout(0.5),
        Layer::Linear(
            Linear::from_parts(
                40,
                19,
                rand_vec(40 * 19, 7, -0.3, 0.3),
                rand_vec(19, 8, -0.1, 0.1),
            )
            .unwrap(),
        ),
        Layer::Activation(Activation::Tanh),
        Layer::Linear(
            Linear::from_parts(
                19,
                7,
                rand_vec(19 * 7, 9, -0.3, 0.3),
                rand_vec(7, 10, -0.1, 0.1),
            )
            .unwrap(),
        ),
    ])
}

/// Evaluation-mode forward pass in f64, written from the layer definitions.
fn reference(seq: &Sequential, x: &[f32]) -> Vec<f64> {
    let mut v: Vec<f64> = x.iter().map(|&x| x as f64).collect();
    for l in &seq.layers {
        v = match l {
            Layer::Linear(l) => (0..l.out_features)
                .map(|o| {
                    l.bias[o] as f64
                        + l.row(o)
                            .iter()
                            .zip(&v)
                            .map(|(&w, &x)| w as f64 * x)
                            .sum::<f64>()
                })
                .collect(),
            Layer::BatchNorm1d(b) => v
                .iter()
                .enumerate()
                .map(|(j, &x)| {
                    (x - b.running_mean[j] as f64) / (b.running_var[j] as f64 + b.eps as f64).sqrt()
                        * b.weight[j] as f64
                        + b.bias[j] as f64
                })
                .collect(),
            Layer::Activation(Activation::LeakyRelu { slope }) => v
                .iter()
                .map(|&x| if x > 0.0 { x } else { *slope as f64 * x })
                .collect(),
            Layer::Activation(Activation::Tanh) => v.iter().map(|x| x.tanh()).collect(),
            Layer::Dropout(_) => v,
            other => panic!("unexpected {other:?}"),
        };
    }
    v
}

#[test]
fn all_inference_paths_agree_with_the_f64_reference() {
    let seq = net();
    let batch = 150;
    let mut x = rand_vec(batch * 37, 11, -1.0, 1.0);
    // Zero inputs take the batch-1 path's skip.
    x.iter_mut().step_by(4).for_each(|v| *v = 0.0);
    let want: Vec<f64> = x
        .chunks_exact(37)
        .flat_map(|r| reference(&seq, r))
        .collect();
    let check = |got: &[f32], what: &str| {
        assert_eq!(got.len(), want.len(), "{what}");
        for (g, w) in got.iter().zip(&want) {
            assert!((*g as f64 - w).abs() < 1e-4, "{what}: {g} vs {w}");
        }
    };
    let mut single = Predictor::new(&seq, batch);
    check(single.predict_batch(&x, batch), "batched, 1 thread");
    let one: Vec<f32> = x
        .chunks_exact(37)
        .flat_map(|r| single.predict_one(r).to_vec())
        .collect();
    check(&one, "batch 1");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let split = pool.install(|| {
        Predictor::new(&seq, batch)
            .with_threads(2)
            .predict_batch(&x, batch)
            .to_vec()
    });
    check(&split, "split over 2 threads");
    check(&seq.predict(&x, batch), "Sequential::predict");
    let mut train_net = Network::new(seq.clone(), Loss::CrossEntropy, 64, 1);
    let mut outs = Vec::new();
    for chunk in x.chunks(64 * 37) {
        let b = chunk.len() / 37;
        train_net.input_mut(b).copy_from_slice(chunk);
        outs.extend_from_slice(train_net.forward(b, false, &mut rng_for(0, 0)));
    }
    check(&outs, "training network, evaluation mode");
}

//! Batch-256 inference of 784-256-128-10 with different ways of using two threads: gemm's own
//! threading on the whole batch, or the batch cut into 2, 4 or 8 blocks of rows each run through
//! the whole network single-threaded. The numbers behind `Predictor::predict_batch`.
use std::time::Instant;

use microdnn_host::nn::matmul::linear_forward;
use rayon::prelude::*;

const DIMS: [usize; 4] = [784, 256, 128, 10];

fn forward(
    ws: &[Vec<f32>],
    bs: &[Vec<f32>],
    x: &[f32],
    rows: usize,
    a: &mut Vec<f32>,
    b: &mut Vec<f32>,
    par: gemm::Parallelism,
) {
    a[..x.len()].copy_from_slice(x);
    for l in 0..3 {
        linear_forward(
            &a[..rows * DIMS[l]],
            &ws[l],
            &bs[l],
            &mut b[..rows * DIMS[l + 1]],
            rows,
            DIMS[l],
            DIMS[l + 1],
            par,
        );
        std::mem::swap(a, b);
        if l < 2 {
            a[..rows * DIMS[l + 1]]
                .iter_mut()
                .for_each(|v| *v = microdnn::math::relu(*v));
        }
    }
}

fn main() {
    let ws: Vec<Vec<f32>> = (0..3)
        .map(|l| vec![0.01f32; DIMS[l] * DIMS[l + 1]])
        .collect();
    let bs: Vec<Vec<f32>> = (0..3).map(|l| vec![0.0f32; DIMS[l + 1]]).collect();
    let x = vec![0.5f32; 256 * 784];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| {
        for parts in [0usize, 1, 2, 4, 8] {
            let rows = 256usize.checked_div(parts).unwrap_or(256);
            let n = parts.max(1);
            let mut bufs: Vec<(Vec<f32>, Vec<f32>)> = (0..n)
                .map(|_| (vec![0.0; rows * 784], vec![0.0; rows * 784]))
                .collect();
            let mut run = || {
                if parts == 0 {
                    let (a, b) = &mut bufs[0];
                    forward(&ws, &bs, &x, 256, a, b, gemm::Parallelism::Rayon(2));
                } else {
                    bufs.par_iter_mut()
                        .zip(x.par_chunks(rows * 784))
                        .for_each(|((a, b), xc)| {
                            forward(&ws, &bs, xc, rows, a, b, gemm::Parallelism::None)
                        });
                }
            };
            for _ in 0..20 {
                run();
            }
            let mut best = Vec::new();
            for _ in 0..5 {
                let t = Instant::now();
                let mut k = 0;
                while t.elapsed().as_secs_f64() < 0.5 {
                    run();
                    k += 1;
                }
                best.push(k as f64 * 256.0 / t.elapsed().as_secs_f64());
            }
            best.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let label = if parts == 0 {
                "gemm Rayon(2), 256 rows".to_string()
            } else {
                format!("{parts} blocks of {rows} rows")
            };
            println!(
                "{label:>26}: median {:>9.0} samples/s (min {:.0}, max {:.0})",
                best[2], best[0], best[4]
            );
        }
    });
}

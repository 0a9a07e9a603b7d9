//! Micro-benchmark of the matrix products of one MNIST training step (784-256-128-10, batch 128)
//! with the `gemm` crate (1 and 2 threads) and `matrixmultiply`: the numbers behind the choice
//! of GEMM backend. Run with `cargo run --release -p microdnn-host --example gemm_shapes`.
use std::time::Instant;

/// (m, n, k, transpose pattern description)
const SHAPES: [(usize, usize, usize); 7] = [
    (128, 256, 784), // fwd 1
    (128, 128, 256), // fwd 2
    (128, 10, 128),  // fwd 3
    (256, 784, 128), // dW1
    (128, 256, 128), // dW2
    (128, 128, 10),  // dX3
    (128, 256, 128), // dX2
];

fn run_gemm(
    par: gemm::Parallelism,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
) {
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        )
    }
}

fn run_mm(a: &[f32], b: &[f32], c: &mut [f32], m: usize, n: usize, k: usize) {
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            n as isize,
            1,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        )
    }
}

fn main() {
    let bufs: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = SHAPES
        .iter()
        .map(|&(m, n, k)| {
            (
                vec![0.5f32; m * k],
                vec![0.25f32; k * n],
                vec![0.0f32; m * n],
            )
        })
        .collect();
    let flops: f64 = SHAPES
        .iter()
        .map(|&(m, n, k)| 2.0 * (m * n * k) as f64)
        .sum();
    let pool2 = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for name in ["gemm-1", "gemm-2", "mm-1"] {
        let mut bufs = bufs.clone();
        let mut step = || {
            for (i, &(m, n, k)) in SHAPES.iter().enumerate() {
                let (a, b, c) = &mut bufs[i];
                match name {
                    "gemm-1" => run_gemm(gemm::Parallelism::None, a, b, c, m, n, k),
                    "gemm-2" => run_gemm(gemm::Parallelism::Rayon(2), a, b, c, m, n, k),
                    _ => run_mm(a, b, c, m, n, k),
                }
            }
        };
        pool2.install(|| {
            for _ in 0..50 {
                step();
            }
            let t = Instant::now();
            let iters = 500;
            for _ in 0..iters {
                step();
            }
            let dt = t.elapsed().as_secs_f64() / iters as f64;
            println!(
                "{name}: {:.1} us/step, {:.1} GFLOP/s, {:.0} samples/s",
                dt * 1e6,
                flops / dt / 1e9,
                128.0 / dt
            );
        });
    }
}

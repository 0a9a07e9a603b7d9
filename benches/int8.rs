//! int8 dense throughput (TFLite Micro arithmetic): the fast packed kernel beside TFLite
//! Micro's reference loop and beside the f32 fast kernel, on the same shapes, in the same run.
//! Throughput is in multiply-accumulates (criterion's "elements"), so the three lines of a group
//! compare directly.
//!
//! Run: `cargo bench -p microdnn-benches --bench int8`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use microdnn::quant::{
    kernel as qkernel, per_channel_multipliers, FusedActivation, QuantParams, Requantize,
};
use microdnn::{kernel, Rng};

const SHAPES: [(usize, usize); 3] = [(784, 128), (128, 64), (64, 10)];

fn dense_int8(c: &mut Criterion) {
    for (i, o) in SHAPES {
        let mut rng = Rng::new(1);
        let mut byte = || rng.next_u32() as u8 as i8;
        let rows: Vec<i8> = (0..i * o).map(|_| byte()).collect();
        let x: Vec<i8> = (0..i).map(|_| byte()).collect();
        let bias: Vec<i32> = (0..o as i32).map(|k| k * 100 - 3000).collect();
        let input = QuantParams::new(0.02, -17).unwrap();
        let output = QuantParams::new(0.1, 5).unwrap();
        let scales: Vec<f32> = (0..o).map(|k| 0.001 + k as f32 * 1e-5).collect();
        let (mut m, mut s) = (vec![0; o], vec![0; o]);
        per_channel_multipliers(input, &scales, output, &mut m, &mut s).unwrap();
        let (lo, hi) = FusedActivation::Relu.range(output).unwrap();
        let rq = Requantize::new(&m, &s, output.zero_point(), lo, hi).unwrap();
        let mut packed = vec![0i8; i * o];
        qkernel::pack(&rows, i, o, &mut packed).unwrap();
        let mut kb = vec![0i32; o];
        qkernel::kernel_bias(&rows, i, &bias, input.zero_point(), &mut kb).unwrap();
        let mut y = vec![0i8; o];

        let mut rngf = Rng::new(2);
        let rows_f: Vec<f32> = (0..i * o).map(|_| rngf.uniform(-0.1, 0.1)).collect();
        let bias_f: Vec<f32> = (0..o).map(|_| rngf.uniform(-0.1, 0.1)).collect();
        let x_f: Vec<f32> = (0..i).map(|_| rngf.next_f32()).collect();
        let mut packed_f = vec![0.0; i * o];
        kernel::pack(&rows_f, i, o, &mut packed_f).unwrap();
        let mut y_f = vec![0.0; o];

        let mut g = c.benchmark_group(format!("dense_{i}x{o}"));
        g.throughput(Throughput::Elements((i * o) as u64)); // multiply-accumulates
        g.bench_function("int8 fast", |b| {
            b.iter(|| qkernel::dense(black_box(&packed), &kb, &rq, black_box(&x), &mut y))
        });
        g.bench_function("int8 reference", |b| {
            b.iter(|| {
                qkernel::dense_reference(
                    black_box(&rows),
                    &bias,
                    input.zero_point(),
                    &rq,
                    black_box(&x),
                    &mut y,
                )
            })
        });
        g.bench_function("f32 fast", |b| {
            b.iter(|| kernel::dense(black_box(&packed_f), &bias_f, black_box(&x_f), &mut y_f))
        });
        g.finish();
    }
}

criterion_group!(benches, dense_int8);
criterion_main!(benches);

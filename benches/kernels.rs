//! Dense kernel throughput: the fast packed kernel beside the naive reference loop, in GFLOP/s
//! (2 flops per multiply-accumulate), for the layer shapes of the reference networks.
//!
//! Run: `cargo bench -p microdnn-benches --bench kernels`. Compare the two lines of each group:
//! they run in the same process, so their ratio is meaningful on a shared machine.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use microdnn::{kernel, Rng};

const SHAPES: [(usize, usize); 4] = [(784, 128), (128, 64), (64, 10), (64, 32)];

fn dense(c: &mut Criterion) {
    for (i, o) in SHAPES {
        let mut rng = Rng::new(1);
        let rows: Vec<f32> = (0..i * o).map(|_| rng.uniform(-0.1, 0.1)).collect();
        let bias: Vec<f32> = (0..o).map(|_| rng.uniform(-0.1, 0.1)).collect();
        let x: Vec<f32> = (0..i).map(|_| rng.next_f32()).collect();
        let mut packed = vec![0.0; i * o];
        kernel::pack(&rows, i, o, &mut packed).unwrap();
        let mut y = vec![0.0; o];

        let mut g = c.benchmark_group(format!("dense_{i}x{o}"));
        g.throughput(Throughput::Elements(2 * (i * o) as u64)); // flops: read as GFLOP/s
        g.bench_function("fast", |b| {
            b.iter(|| kernel::dense(black_box(&packed), &bias, black_box(&x), &mut y))
        });
        g.bench_function("reference", |b| {
            b.iter(|| kernel::dense_reference(black_box(&rows), &bias, black_box(&x), &mut y))
        });
        g.finish();
    }
}

criterion_group!(benches, dense);
criterion_main!(benches);

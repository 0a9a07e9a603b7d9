//! Cost per element of the activations on the host (the lecture claims ReLU is about six times
//! cheaper than sigmoid). Run: `cargo bench -p microdnn-benches --bench activations`
//! (add `--features microdnn/micromath` for the fast-math backend).
//!
//! Each activation runs in place on a fresh copy of the inputs; the copy is made in criterion's
//! untimed set-up (`iter_batched_ref`), so it is not part of the activation's time. The copy's
//! own cost is measured apart (`copy`), as the firmware's activation program does.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use microdnn::{Activation, Rng};

fn activations(c: &mut Criterion) {
    let mut rng = Rng::new(2);
    let x: Vec<f32> = (0..4096).map(|_| rng.uniform(-6.0, 6.0)).collect();
    let mut g = c.benchmark_group("activation_4096");
    g.throughput(Throughput::Elements(x.len() as u64));
    for act in [
        Activation::Relu,
        Activation::LEAKY_RELU,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softmax,
    ] {
        g.bench_function(act.name(), |b| {
            b.iter_batched_ref(
                || x.clone(),
                |y| act.apply(black_box(y.as_mut_slice())),
                BatchSize::SmallInput,
            )
        });
    }
    // What the set-up does, for reference: copying the 4096 inputs.
    let mut y = x.clone();
    g.bench_function("copy", |b| b.iter(|| y.copy_from_slice(black_box(&x))));
    g.finish();
}

criterion_group!(benches, activations);
criterion_main!(benches);

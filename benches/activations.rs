//! Cost per element of the activations on the host (the lecture claims ReLU is about six times
//! cheaper than sigmoid). Run: `cargo bench -p microdnn-benches --bench activations`
//! (add `--features microdnn/micromath` for the fast-math backend).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
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
        let mut y = x.clone();
        g.bench_function(act.name(), |b| {
            b.iter(|| {
                y.copy_from_slice(&x);
                act.apply(black_box(&mut y));
            })
        });
    }
    g.finish();
}

criterion_group!(benches, activations);
criterion_main!(benches);

//! Export: the folded device file computes what the trained (unfolded) network computes, within
//! the error bound derived from the arithmetic, for every place a batch norm can sit.

use microdnn::Activation;
use microdnn_host::export::{self, AlignedModel, OutputActivation};
use microdnn_host::model::{BatchNorm1d, Layer, Linear, Sequential};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn linear(rng: &mut ChaCha8Rng, i: usize, o: usize) -> Layer {
    let a = (6.0 / (i + o) as f32).sqrt();
    let weight = (0..i * o).map(|_| rng.random_range(-a..a)).collect();
    let bias = (0..o).map(|_| rng.random_range(-0.2..0.2)).collect();
    Layer::Linear(Linear::from_parts(i, o, weight, bias).unwrap())
}

fn batchnorm(rng: &mut ChaCha8Rng, n: usize) -> Layer {
    let mut bn = BatchNorm1d::new(n, 1e-5, 0.1);
    for j in 0..n {
        bn.weight[j] = rng.random_range(0.5..2.0);
        bn.bias[j] = rng.random_range(-1.0..1.0);
        bn.running_mean[j] = rng.random_range(-3.0..3.0);
        bn.running_var[j] = rng.random_range(0.05..4.0);
    }
    Layer::BatchNorm1d(bn)
}

fn inputs(rng: &mut ChaCha8Rng, n: usize, count: usize) -> Vec<f32> {
    (0..n * count)
        .map(|_| rng.random_range(0.0..16.0))
        .collect()
}

/// Exports `net` and checks it against the exact network on 200 random inputs.
fn roundtrip(net: Sequential, inputs_n: usize, seed: u64) -> export::Equivalence {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut model = export::model_from_sequential(net, 10);
    model.transform = microdnn_host::InputTransform::scale_by_max(inputs_n, 16.0);
    let lowered = export::lower(&model, OutputActivation::Softmax).unwrap();
    let file = AlignedModel::new(&export::encode(&lowered).unwrap());
    let eq = export::check_equivalence(&model, &lowered, &file, &inputs(&mut rng, inputs_n, 200))
        .unwrap();
    assert_eq!(eq.samples, 200);
    assert!(eq.max_error_to_bound <= 1.0, "{eq:?}");
    assert_eq!(eq.argmax_disagreements, 0, "{eq:?}");
    eq
}

#[test]
fn batch_norm_after_linear_is_folded_into_it() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let net = Sequential::new(vec![
        linear(&mut rng, 64, 32),
        batchnorm(&mut rng, 32),
        Layer::Activation(Activation::Relu),
        Layer::Dropout(0.2),
        linear(&mut rng, 32, 16),
        batchnorm(&mut rng, 16),
        Layer::Activation(Activation::Tanh),
        linear(&mut rng, 16, 10),
    ]);
    let model = export::model_from_sequential(net.clone(), 10);
    let lowered = export::lower(&model, OutputActivation::Softmax).unwrap();
    assert_eq!(
        lowered.layers.len(),
        3,
        "batch norms folded, dropout dropped"
    );
    assert_eq!(lowered.layers[0].activation, Activation::Relu);
    assert_eq!(
        lowered.layers[0].dropout_rate, 0.2,
        "rate kept for Monte-Carlo passes"
    );
    assert_eq!(lowered.layers[1].activation, Activation::Tanh);
    assert_eq!(lowered.layers[2].activation, Activation::Softmax);
    let eq = roundtrip(net, 64, 2);
    assert!(eq.max_abs_error < 1e-5, "{eq:?}");
}

#[test]
fn batch_norm_after_activation_is_folded_into_the_next_linear() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let net = Sequential::new(vec![
        linear(&mut rng, 64, 24),
        Layer::Activation(Activation::LeakyRelu { slope: 0.1 }),
        batchnorm(&mut rng, 24),
        linear(&mut rng, 24, 10),
    ]);
    roundtrip(net, 64, 4);
}

#[test]
fn batch_norm_on_the_input_is_folded_into_the_transform() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let net = Sequential::new(vec![
        batchnorm(&mut rng, 64),
        Layer::Dropout(0.1),
        linear(&mut rng, 64, 20),
        Layer::Activation(Activation::Sigmoid),
        linear(&mut rng, 20, 10),
    ]);
    roundtrip(net, 64, 6);
}

#[test]
fn the_bound_is_tight_enough_to_catch_a_wrong_fold() {
    // Perturb one weight of the last layer (its effect cannot be masked by a ReLU) by a
    // relative 1e-4: the check must notice.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let net = Sequential::new(vec![
        linear(&mut rng, 64, 32),
        batchnorm(&mut rng, 32),
        Layer::Activation(Activation::Relu),
        linear(&mut rng, 32, 10),
    ]);
    let mut model = export::model_from_sequential(net, 10);
    model.transform = microdnn_host::InputTransform::scale_by_max(64, 16.0);
    let mut lowered = export::lower(&model, OutputActivation::Identity).unwrap();
    lowered.layers[1].rows[5] *= 1.0001;
    let file = AlignedModel::new(&export::encode(&lowered).unwrap());
    let eq = export::check_equivalence(&model, &lowered, &file, &inputs(&mut rng, 64, 50)).unwrap();
    assert!(eq.max_error_to_bound > 1.0, "{eq:?}");
}

#[test]
fn unsupported_structures_are_named() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let cases = [
        vec![Layer::Activation(Activation::Relu), linear(&mut rng, 4, 2)],
        vec![
            linear(&mut rng, 4, 3),
            Layer::Activation(Activation::Relu),
            batchnorm(&mut rng, 3),
        ],
        vec![
            linear(&mut rng, 4, 3),
            Layer::Activation(Activation::Relu),
            Layer::Activation(Activation::Tanh),
        ],
    ];
    for layers in cases {
        let model = export::model_from_sequential(Sequential::new(layers), 2);
        let e = export::lower(&model, OutputActivation::Softmax).unwrap_err();
        assert!(matches!(e, export::ExportError::Unsupported { .. }), "{e}");
    }
    // Non-finite weights are refused by the core's encoder, naming the layer.
    let mut net = vec![linear(&mut rng, 4, 3)];
    if let Layer::Linear(l) = &mut net[0] {
        l.weight[2] = f32::NAN;
    }
    let model = export::model_from_sequential(Sequential::new(net), 3);
    let lowered = export::lower(&model, OutputActivation::Softmax).unwrap();
    let e = export::encode(&lowered).unwrap_err();
    assert!(e.to_string().contains("layer 0 weights"), "{e}");
}

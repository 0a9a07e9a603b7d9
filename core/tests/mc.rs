//! Monte-Carlo dropout with run-time shapes (`ModelView::run_mc`, `ModelView::mc`, what the host
//! computes) against the typed network (`forward_mc`, what the `eval` firmware runs): the same
//! masks from the same seed, so the same bits.

mod fuzz_bodies;

use core::num::NonZeroU32;
use fuzz_bodies::Aligned;

use microdnn::mc::{self, McOutputs};
use microdnn::model::{self, EncodeLayer, ModelSpec, ModelView};
use microdnn::{kernel, Activation, Error, Rng};

microdnn::network! {
    pub struct Mc3(Mc3Buffers) {
        a: Dense<6, 9>,
        b: Dense<9, 7>,
        c: Dense<7, 4>,
    }
}

/// A 6-9-7-4 model: dropout after the first two layers, the given last activation.
fn model_file(last: Activation, seed: u64) -> Aligned {
    let mut rng = Rng::new(seed);
    let shapes = [(6usize, 9usize), (9, 7), (7, 4)];
    let weights: Vec<Vec<f32>> = shapes
        .iter()
        .map(|&(i, o)| {
            let rows: Vec<f32> = (0..i * o).map(|_| rng.uniform(-1.0, 1.0)).collect();
            let mut p = vec![0.0; i * o];
            kernel::pack(&rows, i, o, &mut p).unwrap();
            p
        })
        .collect();
    let biases: Vec<Vec<f32>> = shapes
        .iter()
        .map(|&(_, o)| (0..o).map(|_| rng.uniform(-0.2, 0.2)).collect())
        .collect();
    let acts = [Activation::Relu, Activation::Tanh, last];
    let rates = [0.5f32, 0.2, 0.0];
    let layers: Vec<EncodeLayer<'_>> = (0..3)
        .map(|k| EncodeLayer {
            inputs: shapes[k].0,
            outputs: shapes[k].1,
            activation: acts[k],
            dropout_rate: rates[k],
            packed_weights: &weights[k],
            bias: &biases[k],
        })
        .collect();
    let scale: Vec<f32> = (0..6).map(|_| rng.uniform(0.5, 2.0)).collect();
    let offset: Vec<f32> = (0..6).map(|_| rng.uniform(-0.5, 0.5)).collect();
    let spec = ModelSpec {
        inputs: 6,
        layers: &layers,
        input_transform: Some((&scale, &offset)),
    };
    let mut out = vec![0u8; model::encoded_len(&spec)];
    model::encode(&spec, &mut out).unwrap();
    Aligned::new(&out)
}

#[test]
fn run_mc_draws_the_masks_of_the_typed_forward_mc() {
    let file = model_file(Activation::Softmax, 1);
    let view = ModelView::new_checked(file.bytes()).unwrap();
    let net = Mc3::from_model(&view).unwrap();
    let mut bufs = Mc3Buffers::new();
    let (mut a, mut b) = (vec![0.0; view.max_width()], vec![0.0; view.max_width()]);
    let mut data = Rng::new(5);
    let mut differs_from_plain = 0;
    for seed in 0..50u64 {
        let x: [f32; 6] = core::array::from_fn(|_| data.uniform(-2.0, 2.0));
        let (mut r1, mut r2) = (Rng::new(seed), Rng::new(seed));
        for _pass in 0..3 {
            let typed = *net.forward_mc(&x, &mut bufs, &mut r1);
            let dynamic = view.run_mc(&x, &mut a, &mut b, &mut r2).unwrap().to_vec();
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&typed), bits(&dynamic), "seed {seed}");
            if typed != *net.forward(&x, &mut bufs) {
                differs_from_plain += 1;
            }
        }
        assert_eq!(r1, r2, "both consumed the same random words");
    }
    assert!(
        differs_from_plain > 100,
        "dropout is on: {differs_from_plain}"
    );
}

/// The typed side of [`ModelView::mc`], as the firmware runs it.
fn typed_mc(
    net: &Mc3<'_>,
    view: &ModelView<'_>,
    raw: &[f32; 6],
    passes: u32,
    seed: u64,
    outputs: McOutputs,
) -> ([f32; 4], [f32; 4], mc::McSummary) {
    let mut x = *raw;
    view.transform_input(&mut x);
    let mut bufs = Mc3Buffers::new();
    let (mut mean, mut std, mut pass) = ([0.0; 4], [0.0; 4], [0.0; 4]);
    let s = mc::run::<()>(
        outputs,
        NonZeroU32::new(passes).unwrap(),
        seed,
        &mut mean,
        &mut std,
        &mut pass,
        |rng, out| {
            out.copy_from_slice(net.forward_mc(&x, &mut bufs, rng));
            Ok(())
        },
    )
    .unwrap();
    (mean, std, s)
}

#[test]
fn model_view_mc_equals_the_typed_procedure_bit_for_bit() {
    for (last, outputs) in [
        (Activation::Softmax, McOutputs::Probabilities),
        (Activation::Identity, McOutputs::Logits),
    ] {
        let file = model_file(last, 2);
        let view = ModelView::new_checked(file.bytes()).unwrap();
        let net = Mc3::from_model(&view).unwrap();
        let mut data = Rng::new(9);
        for (passes, seed) in [(1u32, 0u64), (5, 7), (20, 123_456_789), (64, u64::MAX)] {
            let raw: [f32; 6] = core::array::from_fn(|_| data.uniform(-2.0, 2.0));
            let (tm, ts, tsum) = typed_mc(&net, &view, &raw, passes, seed, outputs);
            let mut x = raw;
            let (mut a, mut b) = ([0.0; 9], [0.0; 9]);
            let (mut m, mut s, mut p) = ([0.0; 4], [0.0; 4], [0.0; 4]);
            let sum = view
                .mc(
                    &mut x,
                    &mut a,
                    &mut b,
                    NonZeroU32::new(passes).unwrap(),
                    seed,
                    &mut m,
                    &mut s,
                    &mut p,
                )
                .unwrap();
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&m), bits(&tm));
            assert_eq!(bits(&s), bits(&ts));
            assert_eq!(sum.entropy.to_bits(), tsum.entropy.to_bits());
            assert_eq!(
                sum.expected_entropy.to_bits(),
                tsum.expected_entropy.to_bits()
            );
            assert_eq!((sum.class, sum.passes), (tsum.class, passes));
            assert!(
                (m.iter().sum::<f32>() - 1.0).abs() < 1e-5,
                "{last:?}: {m:?}"
            );
            if passes > 1 {
                assert!(s.iter().any(|&v| v > 0.0), "the passes differ");
            }
        }
    }
}

#[test]
fn a_different_seed_gives_different_masks() {
    let file = model_file(Activation::Softmax, 3);
    let view = ModelView::new_checked(file.bytes()).unwrap();
    let run = |seed| {
        let mut x = [0.3, -0.2, 1.0, 0.5, -1.5, 2.0];
        let (mut a, mut b) = ([0.0; 9], [0.0; 9]);
        let (mut m, mut s, mut p) = ([0.0; 4], [0.0; 4], [0.0; 4]);
        let passes = NonZeroU32::new(10).unwrap();
        view.mc(&mut x, &mut a, &mut b, passes, seed, &mut m, &mut s, &mut p)
            .unwrap();
        m
    };
    assert_eq!(run(4), run(4));
    assert_ne!(run(4), run(5));
}

#[test]
fn mc_refuses_outputs_that_are_not_a_distribution_and_wrong_lengths() {
    let file = model_file(Activation::Sigmoid, 4);
    let view = ModelView::new_checked(file.bytes()).unwrap();
    let mut x = [0.0; 6];
    let (mut a, mut b) = ([0.0; 9], [0.0; 9]);
    let (mut m, mut s, mut p) = ([0.0; 4], [0.0; 4], [0.0; 4]);
    let one = NonZeroU32::new(1).unwrap();
    assert_eq!(
        view.mc(&mut x, &mut a, &mut b, one, 0, &mut m, &mut s, &mut p),
        Err(Error::NotADistribution {
            activation: "sigmoid"
        })
    );
    let file = model_file(Activation::Softmax, 4);
    let view = ModelView::new_checked(file.bytes()).unwrap();
    let mut short = [0.0; 3];
    assert!(matches!(
        view.mc(&mut x, &mut a, &mut b, one, 0, &mut short, &mut s, &mut p),
        Err(Error::Shape { what: "mean", .. })
    ));
    let mut x5 = [0.0; 5];
    assert!(matches!(
        view.mc(&mut x5, &mut a, &mut b, one, 0, &mut m, &mut s, &mut p),
        Err(Error::Shape { what: "input", .. })
    ));
}

//! Property tests of the fast dense kernel against its two twins: the scalar spec (same order of
//! additions, must match bit for bit) and the naive reference (different order, must agree
//! within the error bound derived from both orders).

use microdnn::kernel;
use proptest::prelude::*;

/// Shapes up to 70x70, including the awkward ones (tails of 1-3 columns, 1-3 leftover rows).
fn layer() -> impl Strategy<Value = (usize, usize, Vec<f32>, Vec<f32>, Vec<f32>)> {
    (1usize..70, 1usize..70).prop_flat_map(|(i, o)| {
        let val = prop_oneof![
            4 => -2.0f32..2.0,
            1 => -1e4f32..1e4,
            1 => Just(0.0f32),
            1 => -1e-30f32..1e-30,
        ];
        (
            Just(i),
            Just(o),
            proptest::collection::vec(val.clone(), i * o),
            proptest::collection::vec(val.clone(), o),
            proptest::collection::vec(val, i),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn fast_kernel_is_bit_identical_to_the_spec((i, o, rows, bias, x) in layer()) {
        let mut packed = vec![0.0; i * o];
        kernel::pack(&rows, i, o, &mut packed).unwrap();
        let (mut fast, mut spec) = (vec![0.0; o], vec![0.0; o]);
        kernel::dense(&packed, &bias, &x, &mut fast).unwrap();
        kernel::dense_spec(&rows, &bias, &x, &mut spec).unwrap();
        let fb: Vec<u32> = fast.iter().map(|v| v.to_bits()).collect();
        let sb: Vec<u32> = spec.iter().map(|v| v.to_bits()).collect();
        prop_assert_eq!(fb, sb);
    }

    #[test]
    fn fast_kernel_agrees_with_reference_within_the_derived_bound((i, o, rows, bias, x) in layer()) {
        let mut packed = vec![0.0; i * o];
        kernel::pack(&rows, i, o, &mut packed).unwrap();
        let (mut fast, mut naive) = (vec![0.0; o], vec![0.0; o]);
        kernel::dense(&packed, &bias, &x, &mut fast).unwrap();
        kernel::dense_reference(&rows, &bias, &x, &mut naive).unwrap();
        for r in 0..o {
            let row = &rows[r * i..(r + 1) * i];
            let exact: f64 = row.iter().zip(&x).map(|(w, x)| *w as f64 * *x as f64).sum::<f64>()
                + bias[r] as f64;
            let mag: f64 = row.iter().zip(&x).map(|(w, x)| (*w as f64 * *x as f64).abs()).sum::<f64>()
                + (bias[r] as f64).abs();
            // Products of tiny values can underflow: allow one smallest subnormal per term.
            let underflow = (i + 1) as f64 * f64::from(f32::from_bits(1));
            let tf = kernel::error_bound(i) * mag + underflow;
            let tn = kernel::reference_error_bound(i) * mag + underflow;
            prop_assert!((fast[r] as f64 - exact).abs() <= tf, "fast {} exact {}", fast[r], exact);
            prop_assert!((naive[r] as f64 - exact).abs() <= tn, "naive {} exact {}", naive[r], exact);
        }
    }

    #[test]
    fn pack_then_unpack_is_the_identity((i, o, rows, _b, _x) in layer()) {
        let mut packed = vec![0.0; i * o];
        kernel::pack(&rows, i, o, &mut packed).unwrap();
        let mut back = vec![0.0; i * o];
        kernel::unpack(&packed, i, o, &mut back).unwrap();
        prop_assert_eq!(back, rows);
    }
}

/// The kernel is deterministic: the same call twice gives the same bits, and the result does not
/// depend on the memory the output lived in before.
#[test]
fn repeated_calls_are_bit_identical() {
    let mut rng = microdnn::Rng::new(77);
    let (i, o) = (784, 128);
    let rows: Vec<f32> = (0..i * o).map(|_| rng.uniform(-0.1, 0.1)).collect();
    let bias: Vec<f32> = (0..o).map(|_| rng.uniform(-0.1, 0.1)).collect();
    let x: Vec<f32> = (0..i).map(|_| rng.next_f32()).collect();
    let mut packed = vec![0.0; i * o];
    kernel::pack(&rows, i, o, &mut packed).unwrap();
    let mut a = vec![0.0; o];
    let mut b = vec![f32::NAN; o];
    kernel::dense(&packed, &bias, &x, &mut a).unwrap();
    kernel::dense(&packed, &bias, &x, &mut b).unwrap();
    assert!(a.iter().zip(&b).all(|(a, b)| a.to_bits() == b.to_bits()));
}

//! Property tests of the int8 kernels: the fast packed kernel (kernel bias folded in, four-row
//! blocks, four lanes) must equal TFLite Micro's reference loop byte for byte on every input,
//! including accumulators that wrap around `i32`, per-channel and per-tensor requantization,
//! left and right shifts, and every zero point.

use microdnn::quant::{kernel, QDense, Requantize};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Layer {
    i: usize,
    o: usize,
    rows: Vec<i8>,
    bias: Vec<i32>,
    x: Vec<i8>,
    multipliers: Vec<i32>,
    shifts: Vec<i32>,
    input_zero_point: i8,
    output_zero_point: i8,
    range: (i8, i8),
}

fn layer() -> impl Strategy<Value = Layer> {
    (1usize..70, 1usize..70, any::<bool>()).prop_flat_map(|(i, o, per_tensor)| {
        let channels = if per_tensor { 1 } else { o };
        let bias = prop_oneof![
            4 => -100_000i32..100_000,
            1 => any::<i32>(), // large biases make the accumulator wrap
        ];
        let multiplier = prop_oneof![
            4 => (1i32 << 30)..i32::MAX,
            1 => Just(1i32 << 30),
            1 => 0i32..(1 << 30),
            1 => Just(0),
        ];
        (
            Just(i),
            Just(o),
            proptest::collection::vec(any::<i8>(), i * o),
            proptest::collection::vec(bias, o),
            proptest::collection::vec(any::<i8>(), i),
            proptest::collection::vec(multiplier, channels),
            proptest::collection::vec(-31i32..=30, channels),
            any::<i8>(),
            any::<i8>(),
            (any::<i8>(), any::<i8>()),
        )
            .prop_map(
                |(i, o, rows, bias, x, multipliers, shifts, zx, zy, (a, b))| Layer {
                    i,
                    o,
                    rows,
                    bias,
                    x,
                    multipliers,
                    shifts,
                    input_zero_point: zx,
                    output_zero_point: zy,
                    range: (a.min(b), a.max(b)),
                },
            )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn fast_kernel_equals_the_reference(l in layer()) {
        let rq = Requantize::new(&l.multipliers, &l.shifts, l.output_zero_point, l.range.0, l.range.1).unwrap();
        let mut packed = vec![0i8; l.i * l.o];
        kernel::pack(&l.rows, l.i, l.o, &mut packed).unwrap();
        let mut kb = vec![0i32; l.o];
        kernel::kernel_bias(&l.rows, l.i, &l.bias, l.input_zero_point, &mut kb).unwrap();
        let (mut fast, mut reference) = (vec![0i8; l.o], vec![0i8; l.o]);
        kernel::dense(&packed, &kb, &rq, &l.x, &mut fast).unwrap();
        kernel::dense_reference(&l.rows, &l.bias, l.input_zero_point, &rq, &l.x, &mut reference).unwrap();
        prop_assert_eq!(&fast, &reference);
        // The run-time-shape entry of the DSP kernel (portable on this host; on the Cortex-M
        // the firmware's self-test checks its SMLAD loop the same way).
        let mut with_scratch = vec![0i8; l.o];
        let mut scratch = vec![0i16; l.i];
        kernel::dense_with_scratch(&packed, &kb, &rq, &l.x, &mut scratch, &mut with_scratch).unwrap();
        prop_assert_eq!(&with_scratch, &reference);
        if l.i > 0 {
            let e = kernel::dense_with_scratch(&packed, &kb, &rq, &l.x, &mut scratch[1..], &mut with_scratch);
            prop_assert!(e.is_err(), "a scratch shorter than the input is refused");
        }

        // And the reference is TFLite's formula, recomputed here in i64 then wrapped to i32.
        for (o, y) in reference.iter().enumerate() {
            let acc: i64 = (0..l.i)
                .map(|c| l.rows[o * l.i + c] as i64 * (l.x[c] as i64 - l.input_zero_point as i64))
                .sum::<i64>()
                + l.bias[o] as i64;
            let ch = if l.multipliers.len() == 1 { 0 } else { o };
            let expected = rq.apply(ch, acc as i32); // wrapping, as TFLite's int32 accumulator
            prop_assert_eq!(*y, expected);
        }
    }
}

/// The typed layer on a few fixed shapes (one per tail length and block remainder), through
/// `QDense::forward` and `QDense::forward_reference`.
#[test]
fn qdense_forward_equals_forward_reference() {
    fn check<const I: usize, const O: usize>(seed: u64) {
        let mut rng = microdnn::Rng::new(seed);
        let mut byte = || rng.next_u32() as u8 as i8;
        let rows: Vec<i8> = (0..I * O).map(|_| byte()).collect();
        let x: [i8; I] = core::array::from_fn(|_| byte());
        let zx = byte();
        let bias: Vec<i32> = (0..O).map(|k| (k as i32 - 3) * 1234).collect();
        let m: Vec<i32> = (0..O).map(|k| (1 << 30) + k as i32 * 7_777_777).collect();
        let s: Vec<i32> = (0..O).map(|k| -(k as i32 % 12)).collect();
        let mut packed = vec![0i8; I * O];
        kernel::pack(&rows, I, O, &mut packed).unwrap();
        let mut kb = vec![0; O];
        kernel::kernel_bias(&rows, I, &bias, zx, &mut kb).unwrap();
        let rq = Requantize::new(&m, &s, -7, -100, 120).unwrap();
        let layer = QDense::<I, O>::from_slices(&packed, &bias, &kb, zx, rq).unwrap();
        let (mut a, mut b) = ([0i8; O], [0i8; O]);
        layer.forward(&x, &mut a);
        layer.forward_reference(&x, &mut b);
        assert_eq!(a, b, "{I}x{O}");
        let mut c = vec![0i8; O];
        kernel::dense_reference(&rows, &bias, zx, &rq, &x, &mut c).unwrap();
        assert_eq!(a.to_vec(), c, "{I}x{O} against the row-major reference");
        // A wrong kernel bias is refused, naming the row.
        let mut bad = kb.clone();
        bad[O - 1] ^= 1;
        assert!(QDense::<I, O>::from_slices(&packed, &bias, &bad, zx, rq).is_err());
    }
    check::<1, 1>(1);
    check::<4, 4>(2);
    check::<5, 7>(3);
    check::<6, 5>(4);
    check::<7, 9>(5);
    check::<13, 3>(6);
    check::<64, 10>(7);
    check::<784, 13>(8);
}

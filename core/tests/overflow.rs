//! The public API given extreme sizes: every entry point answers with a typed error, `None` or a
//! saturated size, never an arithmetic-overflow panic (debug builds) and never a wrapped,
//! silently wrong number (release builds).
//!
//! Run in debug as well as release: overflow checks exist only in debug
//! (`cargo test -p microdnn --test overflow`). Some cases overflow only where `usize` has 32
//! bits; `cargo xtask test` also runs core's tests on `i686-unknown-linux-gnu` for them.

use microdnn::link::{self, DeviceInfo, ErrorCode, FrameDecoder, Responder};
use microdnn::model::{self, EncodeLayer, ModelError, ModelSpec, ModelView, Tensor};
use microdnn::{kernel, Activation};

/// The packed layout of the kernel's module docs, in `u128` so that nothing can wrap: block
/// `k = row / 5` (height `h`) starts at `5 k I`; inside it, column group `g` of four starts at
/// `4 g h` and holds row `r`'s four lanes at `4 r`; the tail columns follow all groups, `I mod 4`
/// per row.
fn layout_u128(inputs: usize, outputs: usize, row: usize, col: usize) -> u128 {
    let (i, o, r, c) = (inputs as u128, outputs as u128, row as u128, col as u128);
    let start = r / 5 * 5;
    let h = (o - start).min(5);
    let groups = i / 4;
    let base = start * i;
    if c < groups * 4 {
        base + c / 4 * 4 * h + r % 5 * 4 + c % 4
    } else {
        base + groups * 4 * h + r % 5 * (i - groups * 4) + (c - groups * 4)
    }
}

#[test]
fn packed_index_of_a_layer_larger_than_usize_is_none() {
    // `inputs * outputs` does not fit in usize: no slice can hold the layer, so no index.
    assert_eq!(kernel::packed_index(usize::MAX, 6, 5, 0), None);
    assert_eq!(kernel::packed_index(usize::MAX / 3, 4, 3, 7), None);
    assert_eq!(kernel::packed_index(6, usize::MAX, usize::MAX - 1, 5), None);
}

#[test]
fn packed_index_at_the_edge_of_usize_matches_the_layout() {
    // Shapes whose weight count just fits in usize, with rows and columns at every boundary
    // (first, last, block edges, last full group, tail).
    let shapes = [
        (usize::MAX / 7, 7),
        (usize::MAX / 5, 5),
        (usize::MAX / 13, 13),
        (4, usize::MAX / 4),
        (3, usize::MAX / 3),
        (usize::MAX / 2, 2),
    ];
    for (i, o) in shapes {
        let total = i as u128 * o as u128;
        assert!(total <= usize::MAX as u128);
        let g = i / 4 * 4;
        let rows = [
            0,
            1,
            4,
            5,
            o.saturating_sub(6),
            o - 1,
            o / 5 * 5,
            (o / 5 * 5).saturating_sub(1),
        ];
        let cols = [0, 1, 3, g.saturating_sub(1), g, i - 1];
        for &r in rows.iter().filter(|&&r| r < o) {
            for &c in cols.iter().filter(|&&c| c < i) {
                let k = kernel::packed_index(i, o, r, c);
                let expect = layout_u128(i, o, r, c);
                assert!(expect < total, "({i}, {o}) row {r} col {c}");
                assert_eq!(
                    k.map(|k| k as u128),
                    Some(expect),
                    "({i}, {o}) row {r} col {c}"
                );
            }
        }
    }
}

#[test]
fn error_bounds_stay_non_negative_for_any_width() {
    // gamma(k) = k u / (1 - k u) is only a bound while k u < 1; past that nothing is promised,
    // and a negative "bound" would silently pass every comparison.
    let mut last = 0.0;
    for n in [0, 1, 1 << 20, 1 << 26, 1 << 27, usize::MAX / 2, usize::MAX] {
        let (b, r) = (kernel::error_bound(n), kernel::reference_error_bound(n));
        assert!(b >= last, "error_bound({n}) = {b} < {last}");
        assert!(b >= 0.0 && r >= 0.0, "n = {n}: {b}, {r}");
        if n >= 3 {
            assert!(
                r >= b,
                "n = {n}: the naive order is never tighter from 3 inputs on"
            );
        }
        last = b;
    }
    assert_eq!(kernel::error_bound(usize::MAX), f64::INFINITY);
    assert_eq!(kernel::reference_error_bound(1 << 24), f64::INFINITY);
}

fn one_layer<'a>(inputs: usize, outputs: usize, w: &'a [f32], b: &'a [f32]) -> EncodeLayer<'a> {
    EncodeLayer {
        inputs,
        outputs,
        activation: Activation::Identity,
        dropout_rate: 0.0,
        packed_weights: w,
        bias: b,
    }
}

#[test]
fn encode_rejects_layers_too_large_for_the_format() {
    let (w, b) = ([0.0f32; 4], [0.0f32; 2]);
    let mut out = [0u8; 256];
    // inputs * outputs fits in usize, its byte length does not.
    for (inputs, outputs) in [(usize::MAX / 2, 2), (1, usize::MAX / 4 + 1), (3, 1 << 30)] {
        let layers = [one_layer(inputs, outputs, &w, &b)];
        let spec = ModelSpec {
            inputs,
            layers: &layers,
            input_transform: None,
        };
        assert_eq!(
            model::encode(&spec, &mut out),
            Err(ModelError::TooLarge {
                layer: Some(0),
                tensor: Tensor::Weights
            }),
            "{inputs} x {outputs}"
        );
    }
    // Within the format's 32-bit sizes, a wrong slice length is reported in exact bytes.
    let layers = [one_layer(1 << 20, 1 << 8, &w, &b)];
    let spec = ModelSpec {
        inputs: 1 << 20,
        layers: &layers,
        input_transform: None,
    };
    assert_eq!(
        model::encode(&spec, &mut out),
        Err(ModelError::TensorLength {
            layer: Some(0),
            tensor: Tensor::Weights,
            expected: 1 << 30,
            found: 16
        })
    );
}

#[test]
#[cfg(target_pointer_width = "64")]
fn encode_reports_network_inputs_beyond_32_bits_exactly() {
    // 2^32 + 3 inputs declared, the first layer takes 3: the error must not say "receives 3".
    let (w, b) = ([0.0f32; 6], [0.0f32; 2]);
    let layers = [one_layer(3, 2, &w, &b)];
    let spec = ModelSpec {
        inputs: (1 << 32) + 3,
        layers: &layers,
        input_transform: None,
    };
    assert_eq!(
        model::encode(&spec, &mut [0u8; 256]),
        Err(ModelError::ShapeChain {
            layer: 0,
            expected: (1 << 32) + 3,
            found: 3
        })
    );
}

/// A small valid model: 3 inputs, 2 layers (3 -> 4 -> 2).
fn small_model() -> Vec<u128> {
    let (w0, b0, w1, b1) = ([0.5f32; 12], [0.0f32; 4], [0.25f32; 8], [0.0f32; 2]);
    let layers = [one_layer(3, 4, &w0, &b0), one_layer(4, 2, &w1, &b1)];
    let spec = ModelSpec {
        inputs: 3,
        layers: &layers,
        input_transform: None,
    };
    let n = model::encoded_len(&spec);
    let mut words = vec![0u128; n.div_ceil(16)];
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
    assert_eq!(model::encode(&spec, bytes), Ok(n));
    assert_eq!(n % 16, 0);
    words
}

#[test]
fn dense_layer_past_the_last_layer_names_the_layer() {
    let words = small_model();
    let view = ModelView::new_checked(bytemuck::cast_slice(&words)).unwrap();
    for i in [2, 65_537, usize::MAX] {
        assert_eq!(
            view.dense_layer::<3, 4>(i).unwrap_err(),
            ModelError::NoSuchLayer { layer: i, count: 2 }
        );
    }
    // 65,538 layers expected: not "2" after a cast to u16.
    assert_eq!(
        view.expect_layers(65_538),
        Err(ModelError::LayerCount {
            expected: 65_538,
            found: 2
        })
    );
    assert!(view.dense_layer::<3, 4>(0).is_ok());
}

#[test]
#[cfg(target_pointer_width = "64")]
fn dense_layer_reports_compiled_widths_beyond_32_bits_exactly() {
    const WIDE: usize = (1 << 32) + 3;
    let words = small_model();
    let view = ModelView::new_checked(bytemuck::cast_slice(&words)).unwrap();
    assert_eq!(
        view.dense_layer::<WIDE, 4>(0).unwrap_err(),
        ModelError::LayerShape {
            layer: 0,
            dimension: "inputs",
            expected: WIDE,
            found: 3
        }
    );
}

/// A device whose model claims `inputs` inputs.
struct Claims(u32, [f32; 1]);

impl Responder for Claims {
    fn info(&self) -> DeviceInfo {
        DeviceInfo {
            inputs: self.0,
            outputs: 1,
            ..Default::default()
        }
    }
    fn infer(&mut self, _x: &mut [f32]) -> (u16, u64, &[f32]) {
        (0, 0, &self.1)
    }
}

#[test]
fn respond_to_a_device_with_more_inputs_than_usize_bytes() {
    // 2^30 + 1 inputs need 2^32 + 4 payload bytes: on a 32-bit target that product wraps to 4,
    // which a 4-byte INFER payload would match.
    for inputs in [(1 << 30) + 1, u32::MAX] {
        let mut dev = Claims(inputs, [0.0]);
        let mut wire = [0u8; 64];
        let n = link::encode_frame(link::kind::INFER, 9, &[0, 0, 128, 63], &mut wire).unwrap();
        let mut dec = FrameDecoder::<64>::new();
        let mut answer = None;
        let (mut scratch, mut payload, mut tx) = ([0.0f32; 4], [0u8; 64], [0u8; 64]);
        for &b in &wire[..n] {
            if let Some(r) = dec.push(b) {
                let len = link::respond(&mut dev, r, &mut scratch, &mut payload, &mut tx);
                let mut rx = FrameDecoder::<64>::new();
                for &c in &tx[..len] {
                    if let Some(f) = rx.push(c) {
                        let f = f.unwrap();
                        answer = Some((f.kind, f.seq, f.payload.to_vec()));
                    }
                }
            }
        }
        let (k, seq, p) = answer.expect("one answer");
        assert_eq!((k, seq), (link::kind::ERROR, 9));
        assert_eq!(ErrorCode::from_u8(p[0]), Some(ErrorCode::BadLength));
        assert_eq!(u16::from_le_bytes([p[2], p[3]]), u16::MAX);
    }
}

#[test]
fn frame_sizes_saturate_instead_of_wrapping() {
    assert_eq!(link::max_encoded_len(usize::MAX), usize::MAX);
    assert_eq!(link::max_encoded_len(usize::MAX - 8), usize::MAX);
    assert_eq!(link::decoder_capacity(usize::MAX), usize::MAX - 1);
    // Small sizes are exact: 4 + 10 + 4 = 18 raw bytes, one COBS code byte, one delimiter.
    assert_eq!(link::max_encoded_len(10), 20);
}

mod props {
    //! Every public function that takes a size, given sizes from the whole `usize` range
    //! (biased to the edges): an answer, never a panic.

    use super::*;
    use proptest::prelude::*;

    /// Sizes near 0, near powers of two that matter (2^16, 2^30, 2^32), near `usize::MAX`, and
    /// anything.
    fn size() -> impl Strategy<Value = usize> {
        prop_oneof![
            0usize..20,
            (usize::MAX - 20)..=usize::MAX,
            (0u32..40).prop_map(|k| (1usize << (k % usize::BITS)).wrapping_add(3) >> 1),
            any::<usize>().prop_map(|v| v / 5),
            any::<usize>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn packed_index_is_in_range_or_none(i in size(), o in size(), r in size(), c in size()) {
            match kernel::packed_index(i, o, r, c) {
                Some(k) => {
                    prop_assert!(r < o && c < i);
                    prop_assert_eq!(k as u128, layout_u128(i, o, r, c));
                    prop_assert!((k as u128) < i as u128 * o as u128);
                }
                None => prop_assert!(r >= o || c >= i || i.checked_mul(o).is_none()),
            }
        }

        #[test]
        fn kernel_entry_points_check_sizes(i in size(), o in size(), n in 0usize..12) {
            let (rows, mut packed) = (vec![0.5f32; n], vec![0.0f32; n]);
            let fits = i.checked_mul(o) == Some(n);
            prop_assert_eq!(kernel::pack(&rows, i, o, &mut packed).is_ok(), fits);
            prop_assert_eq!(kernel::unpack(&rows, i, o, &mut packed).is_ok(), fits);
            let b = kernel::error_bound(i);
            prop_assert!(b >= 0.0 && b >= kernel::error_bound(i / 2));
        }

        #[test]
        fn encode_takes_any_declared_shape(
            inputs in size(), i0 in size(), o0 in size(), i1 in size(), o1 in size(),
            transform in any::<bool>(),
        ) {
            let (w, b) = ([0.25f32; 16], [0.0f32; 4]);
            let layers = [one_layer(i0, o0, &w, &b), one_layer(i1, o1, &w[..8], &b[..2])];
            let t = [1.0f32; 4];
            let spec = ModelSpec {
                inputs,
                layers: &layers,
                input_transform: transform.then_some((&t[..], &t[..])),
            };
            let mut out = vec![0u8; 1024];
            let n = model::encoded_len(&spec);
            if let Ok(len) = model::encode(&spec, &mut out) {
                prop_assert_eq!(len, n);
                let words = fuzz_like_aligned(&out[..len]);
                prop_assert!(ModelView::new_checked(&bytemuck::cast_slice(&words)[..len]).is_ok());
            }
        }

        #[test]
        fn link_sizes_and_answers(p in size(), inputs in any::<u32>(), len in 0usize..70, k in 0u8..6) {
            prop_assert!(link::max_encoded_len(p) >= p.saturating_add(10));
            prop_assert_eq!(link::decoder_capacity(p), link::max_encoded_len(p) - 1);
            let mut dev = Claims(inputs, [0.0]);
            let payload = vec![0x3Fu8; len];
            let mut wire = vec![0u8; link::max_encoded_len(len)];
            let n = link::encode_frame(k, 1, &payload, &mut wire).unwrap();
            let mut dec = FrameDecoder::<128>::new();
            let (mut scratch, mut buf, mut tx) = ([0.0f32; 20], [0u8; 128], [0u8; 160]);
            for &b in &wire[..n] {
                if let Some(r) = dec.push(b) {
                    prop_assert!(link::respond(&mut dev, r, &mut scratch, &mut buf, &mut tx) > 0);
                }
            }
        }

        #[test]
        fn fold_into_slices_takes_any_lengths(s in 0usize..6, t in 0usize..6, r in 0usize..30, b in 0usize..6) {
            let (scale, shift) = (vec![2.0f32; s], vec![1.0f32; t]);
            let (mut rows, mut bias) = (vec![1.0f32; r], vec![0.0f32; b]);
            let ok = microdnn::batch_norm::fold_into_slices(&scale, &shift, &mut rows, &mut bias).is_ok();
            prop_assert_eq!(ok, t == s && b == s && (if s == 0 { r == 0 } else { r % s == 0 }));
            if !ok {
                prop_assert!(rows.iter().all(|&v| v == 1.0) && bias.iter().all(|&v| v == 0.0));
            }
        }

        #[test]
        fn dense_layer_takes_any_index(i in size()) {
            let words = small_model();
            let view = ModelView::new_checked(bytemuck::cast_slice(&words)).unwrap();
            let r = view.dense_layer::<4, 2>(i);
            prop_assert_eq!(r.is_ok(), i == 1);
        }
    }

    fn fuzz_like_aligned(bytes: &[u8]) -> Vec<u128> {
        let mut words = vec![0u128; bytes.len().div_ceil(16)];
        bytemuck::cast_slice_mut::<u128, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        words
    }
}

//! Any bytes given to `ModelView::new_checked` get a typed error or a view whose every accessor,
//! `run` and typed `from_model` work without panicking.
//!
//! Run: `cd core/fuzz && cargo +nightly fuzz run model_view` (seed the corpus with exported
//! `model.udnn` files for deeper coverage).
#![no_main]

use libfuzzer_sys::fuzz_target;
use microdnn::ModelView;

microdnn::network! {
    struct Small(SmallBuffers) {
        a: Dense<10, 8>,
        b: Dense<8, 3>,
    }
}

fuzz_target!(|data: &[u8]| {
    // Copy into 16-byte-aligned memory, as a device holds the file in flash.
    let mut words = vec![0u128; data.len().div_ceil(16)];
    for (w, c) in words.iter_mut().zip(data.chunks(16)) {
        let mut b = [0u8; 16];
        b[..c.len()].copy_from_slice(c);
        *w = u128::from_le_bytes(b);
    }
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let aligned = &bytes[..data.len()];
    // (The Vec<u8> copy above is only 1-aligned in theory; the allocator gives 16 in practice,
    // and a misaligned start is itself a case new_checked must handle.)
    if let Ok(view) = ModelView::new_checked(aligned) {
        let _ = (view.macs(), view.params(), view.max_width());
        for l in view.layers() {
            let _ = (l.inputs, l.outputs, l.weights.len(), l.bias.len());
        }
        if view.inputs() <= 4096 && view.max_width() <= 4096 {
            let mut x = vec![0.25f32; view.inputs()];
            let (mut a, mut b) = (vec![0.0; view.max_width()], vec![0.0; view.max_width()]);
            let y = view.run(&mut x, &mut a, &mut b).expect("a validated model runs");
            assert_eq!(y.len(), view.outputs());
        }
        if let Ok(net) = Small::from_model(&view) {
            let mut bufs = SmallBuffers::new();
            net.forward(&[0.5; 10], &mut bufs);
        }
    }
});

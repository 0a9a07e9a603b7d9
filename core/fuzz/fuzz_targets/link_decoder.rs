//! Any byte stream fed to the link's frame decoder and `respond` produces well-formed answers and
//! never panics (what the firmware's serial loop does with whatever arrives).
//!
//! Run: `cd core/fuzz && cargo +nightly fuzz run link_decoder`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use microdnn::link::{self, DeviceInfo, FrameDecoder, Responder};

struct Echo([f32; 4]);

impl Responder for Echo {
    fn info(&self) -> DeviceInfo {
        DeviceInfo { inputs: 4, outputs: 4, layers: 1, macs: 16, ..Default::default() }
    }
    fn infer(&mut self, x: &[f32]) -> (u16, u64, &[f32]) {
        self.0.copy_from_slice(x);
        (microdnn::argmax(x) as u16, 0, &self.0)
    }
}

fuzz_target!(|data: &[u8]| {
    let mut dev = Echo([0.0; 4]);
    let mut dec = FrameDecoder::<{ link::decoder_capacity(64) }>::new();
    let (mut inputs, mut payload, mut tx) = ([0.0f32; 4], [0u8; 64], [0u8; 256]);
    let mut answers = FrameDecoder::<256>::new();
    for &b in data {
        if let Some(r) = dec.push(b) {
            let n = link::respond(&mut dev, r, &mut inputs, &mut payload, &mut tx);
            for &c in &tx[..n] {
                if let Some(a) = answers.push(c) {
                    assert!(a.is_ok(), "the device's answer must decode: {a:?}");
                }
            }
        }
    }
});

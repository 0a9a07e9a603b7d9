//! The smallest inference program: the board's demo network (weights in flash), one forward
//! pass on an input buffer in RAM, the predicted class as the exit code's condition. No
//! logging, no link, no instruction counter: what an application that only classifies would
//! link (start-up, vector table, fatal handlers, the network's code).
//!
//! `cargo xtask bench-mcu` builds it and reports its flash without the network's parameters as
//! `runtime_code_bytes` (goal at most 4 KiB).
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use microdnn_firmware::model::{self, DemoBuffers};
use microdnn_firmware::runtime;

#[entry]
fn main() -> ! {
    // The input, as a sensor driver would fill it (zeros here; `black_box` keeps the compiler
    // from computing the forward pass at build time).
    static mut INPUT: [f32; model::INPUTS] = [0.0; model::INPUTS];
    static mut BUFFERS: DemoBuffers = DemoBuffers::new();
    let net = model::network();
    let y = net.forward(black_box(&*INPUT), BUFFERS);
    let class = microdnn::argmax(y);
    runtime::exit(black_box(class) < y.len())
}

//! Runs the board's demo network (784-128-64-10, or 64-32-16-10 on small boards; ReLU, ReLU,
//! softmax) on a fixed input, logs the ten
//! outputs (as floats and raw bit patterns) and the predicted class, and checks that they are
//! bit-identical to what microdnn computed on the host at build time. Exits with failure if not.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use microdnn::argmax;
use microdnn_firmware::model::{self, DemoBuffers, EXPECTED_CLASS, EXPECTED_OUTPUT_BITS};
use microdnn_firmware::{bits, board, runtime};

#[entry]
fn main() -> ! {
    // cortex-m-rt turns this into a `&'static mut`: the activation buffers live in `.bss`, so
    // their RAM is accounted for at link time.
    static mut BUFFERS: DemoBuffers = DemoBuffers::new();

    let net = model::network();
    let s = model::SHAPES;
    defmt::println!(
        "demo on {=str}: {=usize}-{=usize}-{=usize}-{=usize} (relu, relu, softmax), {=usize} MACs, {=usize} parameters, {=usize} bytes of activation buffers",
        board::NAME,
        s[0].0,
        s[1].0,
        s[2].0,
        s[2].1,
        model::Demo::MACS,
        model::Demo::PARAMS,
        model::Demo::RAM_BYTES
    );
    let y = net.forward(&model::INPUT, BUFFERS);
    let mut identical = 0usize;
    for (k, (v, expected)) in y.iter().zip(EXPECTED_OUTPUT_BITS).enumerate() {
        let same = bits::same_as(*v, expected);
        identical += usize::from(same);
        defmt::println!(
            "y[{=usize}] = {=f32} (bits {=u32:#010x}, host {=u32:#010x}) {=str}",
            k,
            *v,
            v.to_bits(),
            expected,
            if same { "same" } else { "DIFFERENT" }
        );
    }
    let class = argmax(y);
    defmt::println!(
        "predicted class {=usize} (host {=usize})",
        class,
        EXPECTED_CLASS
    );
    let ok = identical == EXPECTED_OUTPUT_BITS.len() && class == EXPECTED_CLASS;
    defmt::println!(
        "bit-identical to the host: {=usize} of {=usize} outputs: {=str}",
        identical,
        EXPECTED_OUTPUT_BITS.len(),
        if ok { "PASS" } else { "FAIL" }
    );
    runtime::exit(ok)
}

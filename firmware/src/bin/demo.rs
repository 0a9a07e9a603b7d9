//! Runs the demo network (784-128-64-10, ReLU, ReLU, softmax) on a fixed input, logs the ten
//! outputs (as floats and raw bit patterns) and the predicted class, and checks that they are
//! bit-identical to what microdnn computed on the host at build time. Exits with failure if not.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use microdnn::argmax;
use microdnn_firmware::board;
use microdnn_firmware::model::{self, MnistBuffers, EXPECTED_CLASS, EXPECTED_OUTPUT_BITS};

#[entry]
fn main() -> ! {
    // cortex-m-rt turns this into a `&'static mut`: the activation buffers live in `.bss`, so
    // their RAM is accounted for at link time.
    static mut BUFFERS: MnistBuffers = MnistBuffers::new();

    let net = model::network();
    defmt::println!(
        "demo: 784-128-64-10 (relu, relu, softmax), {=usize} MACs, {=usize} parameters, {=usize} bytes of activation buffers",
        model::Mnist::MACS,
        model::Mnist::PARAMS,
        model::Mnist::RAM_BYTES
    );
    let y = net.forward(&model::INPUT, BUFFERS);
    let mut identical = 0usize;
    for (k, (v, expected)) in y.iter().zip(EXPECTED_OUTPUT_BITS).enumerate() {
        let same = v.to_bits() == expected;
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
    board::exit(ok)
}

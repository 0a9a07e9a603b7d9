//! Instruction counts of the int8 twin of the board's demo network, for
//! `cargo xtask bench-mcu` (beside the f32 figures of `bench`, in the same run).
//!
//! Must run under QEMU `-icount shift=3,sleep=off` (see `microdnn_firmware::icount`). Logs one
//! `BENCH <kind> key=value ...` line per figure (parsed by xtask):
//! - `BENCH int8_layer`: per layer, `QLayer::forward` (the DSP `SMLAD` kernel on the Cortex-M4,
//!   M7, M33 and M55, the portable kernel on the M0/M3) and TFLite Micro's reference loop
//!   (`quant::kernel::dense_reference` on row-major weights, then the same activation);
//! - `BENCH int8_network`: one whole forward pass of each, the stack of the fast one and the
//!   bytes of parameters in flash;
//! - `BENCH int8_check`: how many output bytes of each equal what `build.rs` computed on the
//!   host (TFLite Micro's loop, in microdnn); the program fails unless all do.
//!
//! Boards whose flash cannot hold the int8 network (none today) log no figures and succeed.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use microdnn_firmware::icount::InstructionCounter;
use microdnn_firmware::runtime;

/// Runs `f` three times under the counter; warns if the counts differ, returns the last one.
#[cfg(microdnn_int8_demo)]
fn measure(counter: &InstructionCounter, what: &str, mut f: impl FnMut()) -> u64 {
    let counts = [(); 3].map(|()| counter.measure(&mut f).1);
    if counts.iter().any(|&c| c != counts[0]) {
        defmt::warn!(
            "{=str}: counts differ between runs {=[?]} (not running under -icount?)",
            what,
            counts
        );
    }
    counts[2]
}

#[cfg(microdnn_int8_demo)]
mod int8 {
    use core::hint::black_box;

    use microdnn::quant::{kernel as qkernel, QLayer};
    use microdnn_firmware::icount::InstructionCounter;
    use microdnn_firmware::model::int8::{self, QDemo, QDemoBuffers, QEXPECTED_OUTPUT, QINPUT};
    use microdnn_firmware::model::SHAPES;
    use microdnn_firmware::stack::StackMeter;

    use super::measure;

    /// TFLite Micro's reference loop for one layer (row-major weights), then its activation.
    fn reference<const I: usize, const O: usize>(
        layer: &QLayer<'_, I, O>,
        (rows, bias): (&[i8], &[i32]),
        x: &[i8],
        y: &mut [i8],
    ) {
        let d = &layer.dense;
        if qkernel::dense_reference(rows, bias, d.input_zero_point(), d.requantize(), x, y).is_err()
        {
            defmt::panic!("int8 reference: shape mismatch");
        }
        layer.activation.apply(y);
    }

    /// Measures and logs the figures; returns whether both passes reproduced the host's bytes.
    pub(super) fn bench(counter: &InstructionCounter) -> bool {
        // int8 activations are small (202 bytes for 784-128-64-10): on the stack.
        let (mut fast, mut slow) = (QDemoBuffers::new(), QDemoBuffers::new());
        let (fast, slow) = (&mut fast, &mut slow);
        let net: QDemo<'static> = int8::network();
        let rows = int8::row_major();
        let x = black_box(&QINPUT);
        let layers = [
            measure(counter, "int8 fc1", || {
                net.fc1.forward(black_box(x), black_box(&mut fast.fc1))
            }),
            measure(counter, "int8 fc2", || {
                net.fc2
                    .forward(black_box(&fast.fc1), black_box(&mut fast.fc2))
            }),
            measure(counter, "int8 fc3", || {
                net.fc3
                    .forward(black_box(&fast.fc2), black_box(&mut fast.fc3))
            }),
        ];
        let reference_layers = [
            measure(counter, "int8 reference fc1", || {
                reference(&net.fc1, rows[0], black_box(x), &mut slow.fc1)
            }),
            measure(counter, "int8 reference fc2", || {
                reference(&net.fc2, rows[1], &slow.fc1, &mut slow.fc2)
            }),
            measure(counter, "int8 reference fc3", || {
                reference(&net.fc3, rows[2], &slow.fc2, &mut slow.fc3)
            }),
        ];
        let stack = StackMeter::paint();
        let network = measure(counter, "int8 forward", || {
            black_box(net.forward(black_box(x), black_box(&mut *fast)));
        });
        let stack_bytes = stack.peak_bytes();
        let reference_network = measure(counter, "int8 reference forward", || {
            reference(&net.fc1, rows[0], black_box(x), &mut slow.fc1);
            reference(&net.fc2, rows[1], &slow.fc1, &mut slow.fc2);
            reference(&net.fc3, rows[2], &slow.fc2, &mut slow.fc3);
        });
        for (k, (&(inputs, outputs), name)) in SHAPES.iter().zip(["fc1", "fc2", "fc3"]).enumerate()
        {
            defmt::println!(
                "BENCH int8_layer name={=str} inputs={=usize} outputs={=usize} macs={=usize} instructions={=u64} reference_instructions={=u64}",
                name,
                inputs,
                outputs,
                inputs * outputs,
                layers[k],
                reference_layers[k]
            );
        }
        defmt::println!(
            "BENCH int8_network macs={=usize} instructions={=u64} reference_instructions={=u64} forward_stack_bytes={=usize} flash_weight_bytes={=usize}",
            QDemo::MACS,
            network,
            reference_network,
            stack_bytes,
            net.flash_bytes()
        );
        let same = |y: &[i8]| {
            y.iter()
                .zip(&QEXPECTED_OUTPUT)
                .filter(|(a, b)| a == b)
                .count()
        };
        let (fast_same, slow_same) = (same(&fast.fc3), same(&slow.fc3));
        defmt::println!(
            "BENCH int8_check identical_outputs={=usize} reference_identical_outputs={=usize} of={=usize}",
            fast_same,
            slow_same,
            QEXPECTED_OUTPUT.len()
        );
        fast_same == QEXPECTED_OUTPUT.len() && slow_same == QEXPECTED_OUTPUT.len()
    }
}

#[entry]
fn main() -> ! {
    let Some(p) = cortex_m::Peripherals::take() else {
        defmt::panic!("peripherals already taken")
    };
    let counter = InstructionCounter::start(p.SYST);
    #[cfg(microdnn_int8_demo)]
    let ok = int8::bench(&counter);
    #[cfg(not(microdnn_int8_demo))]
    let ok = {
        let _ = counter;
        defmt::println!("bench_int8: no int8 demo network on this board");
        true
    };
    runtime::exit(ok)
}

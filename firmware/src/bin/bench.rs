//! Instruction counts of the board's demo network, for `cargo xtask bench-mcu --target NAME`.
//!
//! Must run under QEMU `-icount shift=3,sleep=off` (see `microdnn_firmware::icount`). Logs one
//! `BENCH <kind> key=value ...` line per figure (parsed by xtask):
//! - per layer (dense + activation): the fast kernel (`Layer::forward`) and the naive baseline
//!   (`microdnn::kernel::dense_reference` on row-major weights, then the same activation; 0
//!   where the board's flash holds no row-major copy of the weights, see `model`);
//! - the whole forward pass, fast and naive, plus the packed-layout oracle
//!   (`Dense::forward_reference`);
//! - peak stack (whole program and one forward pass) and the calibrated measurement overhead.
//!
//! Each figure is measured three times; under `-icount` the three agree exactly.
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use microdnn::{kernel, Activation};
use microdnn_firmware::icount::InstructionCounter;
use microdnn_firmware::model::{self, DemoBuffers, EXPECTED_OUTPUT_BITS};
use microdnn_firmware::{bits, board, runtime, stack::StackMeter};

/// Runs `f` three times under the counter; warns if the counts differ, returns the last one.
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

/// The naive baseline for one layer: row-major weights, one running sum per row.
fn naive_layer(rows: &[f32], bias: &[f32], x: &[f32], y: &mut [f32], act: Activation) {
    if kernel::dense_reference(rows, bias, x, y).is_err() {
        defmt::error!("naive baseline: shape mismatch");
        runtime::exit(false);
    }
    act.apply(y);
}

#[entry]
fn main() -> ! {
    static mut FAST: DemoBuffers = DemoBuffers::new();
    static mut NAIVE: DemoBuffers = DemoBuffers::new();

    let whole_program = StackMeter::paint();
    let p = runtime::take_peripherals();
    let counter = InstructionCounter::start(p.SYST);
    let net = model::network();
    let rows = model::row_major_weights();
    let bias = model::biases();
    let x = black_box(&model::INPUT);
    let acts = model::ACTIVATIONS;
    let fast = FAST;
    let naive = NAIVE;

    // Per layer, each fed with the previous layer's output of the same kernel.
    let fast_layers = [
        measure(&counter, "fc1", || {
            net.fc1.forward(black_box(x), black_box(&mut fast.fc1))
        }),
        measure(&counter, "fc2", || {
            net.fc2
                .forward(black_box(&fast.fc1), black_box(&mut fast.fc2))
        }),
        measure(&counter, "fc3", || {
            net.fc3
                .forward(black_box(&fast.fc2), black_box(&mut fast.fc3))
        }),
    ];
    let naive_layers = match rows {
        Some(rows) => [
            measure(&counter, "naive fc1", || {
                naive_layer(rows[0], bias[0], black_box(x), &mut naive.fc1, acts[0])
            }),
            measure(&counter, "naive fc2", || {
                naive_layer(rows[1], bias[1], &naive.fc1, &mut naive.fc2, acts[1])
            }),
            measure(&counter, "naive fc3", || {
                naive_layer(rows[2], bias[2], &naive.fc2, &mut naive.fc3, acts[2])
            }),
        ],
        None => [0; 3],
    };

    // Whole forward passes.
    let forward_stack = StackMeter::paint();
    let network = measure(&counter, "forward", || {
        black_box(net.forward(black_box(x), black_box(&mut *fast)));
    });
    let forward_stack_bytes = forward_stack.peak_bytes();
    let naive_network = match rows {
        Some(rows) => measure(&counter, "naive forward", || {
            naive_layer(rows[0], bias[0], black_box(x), &mut naive.fc1, acts[0]);
            naive_layer(rows[1], bias[1], &naive.fc1, &mut naive.fc2, acts[1]);
            naive_layer(rows[2], bias[2], &naive.fc2, &mut naive.fc3, acts[2]);
        }),
        None => 0,
    };
    let oracle_network = measure(&counter, "oracle forward", || {
        let mut bufs = DemoBuffers::new();
        net.fc1.dense.forward_reference(black_box(x), &mut bufs.fc1);
        acts[0].apply(&mut bufs.fc1);
        net.fc2.dense.forward_reference(&bufs.fc1, &mut bufs.fc2);
        acts[1].apply(&mut bufs.fc2);
        net.fc3.dense.forward_reference(&bufs.fc2, &mut bufs.fc3);
        acts[2].apply(&mut bufs.fc3);
        black_box(&bufs);
    });

    let names = ["fc1", "fc2", "fc3"];
    for (k, (&(inputs, outputs), name)) in model::SHAPES.iter().zip(names).enumerate() {
        defmt::println!(
            "BENCH layer name={=str} inputs={=usize} outputs={=usize} macs={=usize} instructions={=u64} reference_instructions={=u64}",
            name,
            inputs,
            outputs,
            inputs * outputs,
            fast_layers[k],
            naive_layers[k]
        );
    }
    defmt::println!(
        "BENCH board name={=str} systick_hz={=u32} flash_bytes={=usize} ram_bytes={=usize}",
        board::NAME,
        board::SYSTICK_HZ,
        microdnn_firmware::memory::FLASH_BYTES,
        microdnn_firmware::memory::RAM_BYTES
    );
    defmt::println!(
        "BENCH network macs={=usize} instructions={=u64} reference_instructions={=u64} oracle_instructions={=u64}",
        model::Demo::MACS,
        network,
        naive_network,
        oracle_network
    );
    defmt::println!(
        "BENCH calibration overhead_instructions={=u64}",
        counter.overhead()
    );

    // The fast pass must still produce the host's bits (guards against measuring a broken build).
    let identical = fast
        .fc3
        .iter()
        .zip(EXPECTED_OUTPUT_BITS)
        .filter(|(v, e)| bits::same_as(**v, *e))
        .count();
    defmt::println!(
        "BENCH check identical_outputs={=usize} of={=usize}",
        identical,
        EXPECTED_OUTPUT_BITS.len()
    );
    defmt::println!(
        "BENCH stack peak_bytes={=usize} forward_bytes={=usize} capacity_bytes={=usize}",
        whole_program.peak_bytes(),
        forward_stack_bytes,
        StackMeter::capacity_bytes()
    );
    runtime::exit(identical == EXPECTED_OUTPUT_BITS.len())
}

//! Executed instructions per element of ReLU, leaky ReLU, sigmoid and tanh on the Cortex-M4F, for
//! `cargo xtask lab` (the `activation-cost` experiment). Build it plain for the `libm` back end
//! and with `--features micromath` for micromath's fast approximations.
//!
//! Must run under QEMU `-icount shift=3,sleep=off` (see `microdnn_firmware::icount`). Logs one
//! line per activation, parsed by xtask:
//!
//! ```text
//! ACT backend=libm name=sigmoid elements=256 instructions=... copy_instructions=...
//! ```
//!
//! `instructions` covers restoring the input (a 256-float copy, measured alone as
//! `copy_instructions`) and `Activation::apply` over the buffer; inputs are uniform in [-6, 6].
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use microdnn::{Activation, Rng};
use microdnn_firmware::icount::InstructionCounter;
use microdnn_firmware::runtime;

const N: usize = 256;

const BACKEND: &str = if cfg!(feature = "micromath") {
    "micromath"
} else {
    "libm"
};

#[entry]
fn main() -> ! {
    static mut X: [f32; N] = [0.0; N];
    static mut Y: [f32; N] = [0.0; N];

    let p = runtime::take_peripherals();
    let counter = InstructionCounter::start(p.SYST);
    let x: &mut [f32; N] = X;
    let y: &mut [f32; N] = Y;
    let mut rng = Rng::new(2);
    for v in x.iter_mut() {
        *v = rng.uniform(-6.0, 6.0);
    }
    let mut measure = |act: Option<Activation>| {
        let counts = [(); 3].map(|()| {
            counter
                .measure(|| {
                    *y = *black_box(&*x);
                    if let Some(a) = act {
                        a.apply(black_box(&mut y[..]));
                    }
                })
                .1
        });
        if counts.iter().any(|&c| c != counts[0]) {
            defmt::warn!("counts differ between runs (not running under -icount?)");
        }
        counts[2]
    };
    let copy = measure(None);
    for act in [
        Activation::Relu,
        Activation::LEAKY_RELU,
        Activation::Sigmoid,
        Activation::Tanh,
    ] {
        let n = measure(Some(act));
        defmt::println!(
            "ACT backend={=str} name={=str} elements={=usize} instructions={=u64} copy_instructions={=u64}",
            BACKEND,
            act.name(),
            N,
            n,
            copy
        );
    }
    runtime::exit(true)
}

//! Measurements for the cost model (`microdnn info --target NAME`, `microdnn_targets::cost`):
//! executed instructions of f32 networks of many shapes and activations, per layer and whole.
//!
//! Must run under QEMU `-icount shift=3,sleep=off` (`cargo xtask cost-fixtures`, which writes
//! `targets/tests/fixtures/cost/TARGET.json` and fits the per-target coefficients). Logs one line
//! per layer and per network:
//!
//! ```text
//! BENCH cost_layer net=3 layer=1 inputs=29 outputs=11 act=relu instructions=... samples=4
//! BENCH cost_network net=3 shapes=37x29,29x11,11x5 acts=leaky_relu,relu,softmax instructions=... samples=4
//! ```
//!
//! Weights and biases are Glorot-uniform, computed at compile time into flash; inputs are
//! uniform in `[0, 1)` like scaled pixels. `instructions` is the sum
//! over `samples` different inputs (soft-float cores take data-dependent paths). Networks are
//! small enough for every board's RAM (the micro:bit's 16 KiB); on boards with less than
//! 512 KiB of flash (the micro:bit: `microdnn_small_demo`) only the networks with at most
//! 10 KB of parameters are built (12 of the 22).
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use microdnn::{Activation, Dense, Layer, Rng};
use microdnn_firmware::icount::InstructionCounter;
use microdnn_firmware::{board, runtime};

/// Inputs measured per network.
const SAMPLES: u32 = 4;

/// `N` weights uniform in `[-a, a)` with Glorot's `a = sqrt(6 / (inputs + outputs))` (so that
/// pre-activations have trained-network magnitudes whatever the width), from a xorshift
/// generator seeded with `seed`, computed at compile time; the last `outputs` floats serve as
/// the bias.
const fn glorot<const N: usize>(seed: u32, inputs: usize, outputs: usize) -> [f32; N] {
    // sqrt by Newton's method (`f32::sqrt` is not `const`).
    let v = 6.0 / (inputs + outputs) as f32;
    let mut a = 1.0f32;
    let mut k = 0;
    while k < 20 {
        a = 0.5 * (a + v / a);
        k += 1;
    }
    let mut p = [0.0f32; N];
    let mut s: u32 = 0x9e37_79b9 ^ seed;
    let mut i = 0;
    while i < N {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        p[i] = (f32::from_bits(0x3f80_0000 | (s >> 9)) - 1.5) * 2.0 * a;
        i += 1;
    }
    p
}

/// A layer over `pool` (`I * O` weights, then `O` biases).
fn layer<const I: usize, const O: usize>(
    pool: &'static [f32],
    act: Activation,
) -> Option<Layer<'static, I, O>> {
    let (rows, rest) = pool.split_at_checked(I * O)?;
    let w: &[[f32; I]; O] = rows.as_chunks::<I>().0.try_into().ok()?;
    let b: &[f32; O] = rest.try_into().ok()?;
    Some(Layer::new(Dense::new(w, b), act))
}

/// Input `k`: uniform in `[0, 1)`.
fn input(x: &mut [f32], k: u32) {
    let mut rng = Rng::new(0xc057 + u64::from(k));
    x.iter_mut().for_each(|v| *v = rng.uniform(0.0, 1.0));
}

/// One network: declares its type, measures each layer (fed the previous layer's output) and
/// the whole forward pass over [`SAMPLES`] inputs, and logs the `BENCH` lines.
macro_rules! cost {
    ($counter:expr, $id:literal, $net:ident($bufs:ident) {
        $first:ident: $fi:literal x $fo:literal $fa:expr
        $(, $l:ident: $i:literal x $o:literal $a:expr)* $(,)?
    }) => {{
        microdnn::network! {
            struct $net($bufs) { $first: Dense<$fi, $fo> $(, $l: Dense<$i, $o>)* }
        }
        let counter: &InstructionCounter = $counter;
        #[allow(non_upper_case_globals)]
        let net = {
            static $first: [f32; ($fi + 1) * $fo] = glorot::<{ ($fi + 1) * $fo }>($id, $fi, $fo);
            $(static $l: [f32; ($i + 1) * $o] = glorot::<{ ($i + 1) * $o }>($id ^ $i, $i, $o);)*
            $net { $first: layer::<$fi, $fo>(&$first, $fa)?, $($l: layer::<$i, $o>(&$l, $a)?,)* }
        };
        let mut b = $bufs::new();
        let mut x = [0.0f32; $fi];
        let mut whole = 0u64;
        let mut layers = [0u64; $net::LAYERS];
        for k in 0..SAMPLES {
            input(&mut x, k);
            whole += counter
                .measure(|| {
                    black_box(net.forward(black_box(&x), black_box(&mut b)));
                })
                .1;
            let mut out = [0.0f32; $fo];
            if let Some(c) = layers.get_mut(0) {
                *c += counter
                    .measure(|| net.$first.forward(black_box(&x), black_box(&mut out)))
                    .1;
            }
            #[allow(unused_mut, unused_variables)]
            let mut n = 0usize;
            #[allow(unused_variables)]
            let h = out;
            $(
                n += 1;
                let mut out = [0.0f32; $o];
                if let Some(c) = layers.get_mut(n) {
                    *c += counter
                        .measure(|| net.$l.forward(black_box(&h), black_box(&mut out)))
                        .1;
                }
                #[allow(unused_variables)]
                let h = out;
            )*
        }
        let shapes = [($fi, $fo, $fa) $(, ($i, $o, $a))*];
        for (k, ((i, o, a), c)) in shapes.iter().zip(layers).enumerate() {
            defmt::println!(
                "BENCH cost_layer net={=u32} layer={=usize} inputs={=usize} outputs={=usize} act={=str} instructions={=u64} samples={=u32}",
                $id, k, *i, *o, a.name(), c, SAMPLES
            );
        }
        defmt::println!(
            "BENCH cost_network net={=u32} layers={=usize} instructions={=u64} samples={=u32}",
            $id, $net::LAYERS, whole, SAMPLES
        );
    }};
}

use Activation::{Identity, Relu, Sigmoid, Softmax, Tanh};
const LEAKY: Activation = Activation::LeakyRelu { slope: 0.01 };

fn run(c: &InstructionCounter) -> Option<()> {
    #[cfg(not(microdnn_small_demo))]
    cost!(c, 1, N1(N1B) { l0: 64 x 32 Relu, l1: 32 x 16 Relu, l2: 16 x 10 Softmax });
    #[cfg(not(microdnn_small_demo))]
    cost!(c, 2, N2(N2B) { l0: 100 x 40 Relu, l1: 40 x 10 Softmax });
    cost!(c, 3, N3(N3B) { l0: 37 x 29 LEAKY, l1: 29 x 11 Relu, l2: 11 x 5 Softmax });
    cost!(c, 4, N4(N4B) { l0: 13 x 7 Tanh, l1: 7 x 3 Identity });
    #[cfg(not(microdnn_small_demo))]
    cost!(c, 5, N5(N5B) { l0: 256 x 16 Relu, l1: 16 x 4 Sigmoid });
    #[cfg(not(microdnn_small_demo))]
    cost!(c, 6, N6(N6B) { l0: 128 x 24 Sigmoid, l1: 24 x 10 Softmax });
    #[cfg(not(microdnn_small_demo))]
    cost!(c, 7, N7(N7B) { l0: 30 x 60 Tanh, l1: 60 x 20 Relu, l2: 20 x 2 Identity });
    cost!(c, 8, N8(N8B) { l0: 9 x 100 Relu, l1: 100 x 9 Identity });
    #[cfg(not(microdnn_small_demo))]
    cost!(c, 9, N9(N9B) { l0: 50 x 50 LEAKY, l1: 50 x 33 Tanh, l2: 33 x 6 Sigmoid });
    cost!(c, 10, N10(N10B) { l0: 21 x 45 Relu, l1: 45 x 19 Relu, l2: 19 x 7 Softmax });
    cost!(c, 11, N11(N11B) { l0: 6 x 14 Sigmoid, l1: 14 x 22 Tanh, l2: 22 x 4 Softmax });
    cost!(c, 12, N12(N12B) { l0: 72 x 12 LEAKY, l1: 12 x 8 Sigmoid });
    cost!(c, 13, N13(N13B) { l0: 44 x 26 Relu, l1: 26 x 13 LEAKY, l2: 13 x 3 Identity });
    cost!(c, 14, N14(N14B) { l0: 150 x 10 Tanh, l1: 10 x 10 Softmax });
    cost!(c, 15, N15(N15B) { l0: 5 x 64 Relu, l1: 64 x 15 Sigmoid, l2: 15 x 10 Softmax });
    cost!(c, 16, N16(N16B) { l0: 27 x 18 Identity, l1: 18 x 35 Tanh, l2: 35 x 1 Sigmoid });
    // Held out of the fit (networks above FIT_NETWORKS in xtask): the checks of the model.
    #[cfg(not(microdnn_small_demo))]
    cost!(c, 17, N17(N17B) { l0: 80 x 48 Relu, l1: 48 x 10 Softmax });
    cost!(c, 18, N18(N18B) { l0: 50 x 30 Relu, l1: 30 x 20 Tanh, l2: 20 x 5 Softmax });
    #[cfg(not(microdnn_small_demo))]
    cost!(c, 19, N19(N19B) { l0: 200 x 20 Relu, l1: 20 x 3 Identity });
    cost!(c, 20, N20(N20B) { l0: 17 x 33 Sigmoid, l1: 33 x 6 Softmax });
    #[cfg(not(microdnn_small_demo))]
    cost!(c, 21, N21(N21B) { l0: 64 x 48 Relu, l1: 48 x 24 LEAKY, l2: 24 x 10 Softmax });
    #[cfg(not(microdnn_small_demo))]
    cost!(c, 22, N22(N22B) { l0: 96 x 32 Tanh, l1: 32 x 10 Softmax });
    Some(())
}

#[entry]
fn main() -> ! {
    let p = runtime::take_peripherals();
    let counter = InstructionCounter::start(p.SYST);
    defmt::println!("cost on {=str}", board::NAME);
    let ok = run(&counter).is_some();
    if !ok {
        defmt::error!("a cost network does not fit the weight pool");
    }
    runtime::exit(ok)
}

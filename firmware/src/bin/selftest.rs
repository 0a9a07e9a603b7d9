//! On-target self-test: the core's checks, run on every board (the kernel shapes that fit the
//! board's RAM; the board's demo network).
//!
//! A plain table of test functions run in sequence (no test framework): each logs `PASS` or
//! `FAIL` with details, then a summary line `N passed, M failed`; the exit code is failure if
//! any test failed. A panic or fault also ends the run with failure (see `board`).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use microdnn::quant::{kernel as qkernel, QDense, Requantize};
use microdnn::{kernel, math, Activation, BatchNorm, Dense, Error, Rng};
use microdnn_firmware::memory::RAM_BYTES;
use microdnn_firmware::model::{self, Demo, DemoBuffers};
use microdnn_firmware::{bits, board, runtime};

/// Largest `inputs * outputs` of a kernel shape tested on this board: every shape below with
/// 2 MiB of RAM or more, up to 128x65 with 128 KiB, up to 65x11 on the smallest boards.
const MAX_WEIGHTS: usize = if RAM_BYTES >= 2 << 20 {
    786 * 131
} else if RAM_BYTES >= 128 << 10 {
    128 * 65
} else {
    65 * 11
};
/// Largest `inputs` or `outputs` of a kernel shape tested on this board.
const MAX_WIDTH: usize = if RAM_BYTES >= 128 << 10 { 1024 } else { 128 };

/// Whether a kernel shape fits this board's scratch memory.
const fn fits(inputs: usize, outputs: usize) -> bool {
    inputs * outputs <= MAX_WEIGHTS && inputs <= MAX_WIDTH && outputs <= MAX_WIDTH
}

/// Kernel shapes `(inputs, outputs)`: odd sizes, every tail of the 4-column groups and 4-row
/// blocks, and the demo network's layers with their neighbours.
const SHAPES: [(usize, usize); 18] = [
    (1, 1),
    (7, 3),
    (3, 7),
    (13, 5),
    (5, 13),
    (4, 4),
    (8, 1),
    (1, 9),
    (2, 6),
    (16, 9),
    (64, 10),
    (65, 11),
    (128, 64),
    (127, 63),
    (784, 128),
    (785, 131),
    (783, 127),
    (786, 130),
];

/// Working memory of the tests (in `.bss`, not on the stack).
struct Scratch {
    rows: [f32; MAX_WEIGHTS],
    packed: [f32; MAX_WEIGHTS],
    bias: [f32; MAX_WIDTH],
    x: [f32; MAX_WIDTH],
    fast: [f32; MAX_WIDTH],
    other: [f32; MAX_WIDTH],
    net: DemoBuffers,
    layers: DemoBuffers,
    qrows: [i8; MAX_WEIGHTS],
    qpacked: QPacked,
    qx: [i8; MAX_WIDTH],
    qbias: [i32; MAX_WIDTH],
    qkb: [i32; MAX_WIDTH],
    qm: [i32; MAX_WIDTH],
    qs: [i32; MAX_WIDTH],
    qscratch: QScratch,
    qfast: [i8; MAX_WIDTH],
    qref: [i8; MAX_WIDTH],
}

/// int8 packed weights, 4-byte aligned plus room to misalign them by one byte (the DSP kernel's
/// fallback path).
#[repr(C, align(4))]
struct QPacked([i8; MAX_WEIGHTS + 4]);

/// The DSP kernel's room for the sign-extended input, 4-byte aligned plus room to misalign it.
#[repr(C, align(4))]
struct QScratch([i16; MAX_WIDTH + 2]);

impl Scratch {
    const fn new() -> Self {
        Scratch {
            rows: [0.0; MAX_WEIGHTS],
            packed: [0.0; MAX_WEIGHTS],
            bias: [0.0; MAX_WIDTH],
            x: [0.0; MAX_WIDTH],
            fast: [0.0; MAX_WIDTH],
            other: [0.0; MAX_WIDTH],
            net: DemoBuffers::new(),
            layers: DemoBuffers::new(),
            qrows: [0; MAX_WEIGHTS],
            qpacked: QPacked([0; MAX_WEIGHTS + 4]),
            qx: [0; MAX_WIDTH],
            qbias: [0; MAX_WIDTH],
            qkb: [0; MAX_WIDTH],
            qm: [0; MAX_WIDTH],
            qs: [0; MAX_WIDTH],
            qscratch: QScratch([0; MAX_WIDTH + 2]),
            qfast: [0; MAX_WIDTH],
            qref: [0; MAX_WIDTH],
        }
    }

    /// Fills a random layer of the given shape (row-major and packed weights, bias, input).
    /// Inputs span several binades so that rounding is exercised.
    fn random_layer(&mut self, inputs: usize, outputs: usize) -> Result<(), &'static str> {
        let mut rng = Rng::new(((inputs as u64) << 32) ^ outputs as u64);
        let v = self.layer(inputs, outputs)?;
        v.rows.iter_mut().for_each(|w| *w = rng.uniform(-1.0, 1.0));
        v.bias.iter_mut().for_each(|b| *b = rng.uniform(-1.0, 1.0));
        for (x, scale) in
            v.x.iter_mut()
                .zip([0.125, 0.5, 1.0, 2.0, 8.0, 0.25, 4.0].into_iter().cycle())
        {
            *x = rng.uniform(-1.0, 1.0) * scale;
        }
        kernel::pack(v.rows, inputs, outputs, v.packed)
            .map_err(|_| "kernel::pack rejected a valid shape")
    }

    /// The scratch memory of one layer shape, or an error if it is larger than the scratch
    /// (`get`, not indexing: the program links no panic path).
    fn layer(&mut self, inputs: usize, outputs: usize) -> Result<LayerScratch<'_>, &'static str> {
        let n = inputs.checked_mul(outputs).ok_or("shape overflows")?;
        let too_big = "shape larger than the scratch memory";
        Ok(LayerScratch {
            rows: self.rows.get_mut(..n).ok_or(too_big)?,
            packed: self.packed.get_mut(..n).ok_or(too_big)?,
            bias: self.bias.get_mut(..outputs).ok_or(too_big)?,
            x: self.x.get_mut(..inputs).ok_or(too_big)?,
            fast: self.fast.get_mut(..outputs).ok_or(too_big)?,
            other: self.other.get_mut(..outputs).ok_or(too_big)?,
        })
    }
}

/// [`Scratch`] cut to one layer shape.
struct LayerScratch<'a> {
    rows: &'a mut [f32],
    packed: &'a mut [f32],
    bias: &'a mut [f32],
    x: &'a mut [f32],
    fast: &'a mut [f32],
    other: &'a mut [f32],
}

/// A test fails with a short reason (details are logged by the test itself).
type TestResult = Result<(), &'static str>;
/// A test function.
type Test = fn(&mut Scratch) -> TestResult;

/// The tests, run in this order.
const TESTS: &[(&str, Test)] = &[
    (
        "kernel::dense is bit-identical to dense_spec",
        dense_matches_spec,
    ),
    (
        "kernel::dense (assembly inner loop where the core has one) equals its portable twin on random shapes and special values",
        assembly_matches_portable,
    ),
    (
        "kernel::dense is within the error bound of dense_reference",
        dense_within_bound_of_reference,
    ),
    (
        "kernel rejects bad shapes without panicking",
        kernel_shape_errors,
    ),
    ("pack/unpack round trip", pack_unpack_round_trip),
    (
        "Dense::forward equals kernel::dense",
        typed_dense_matches_kernel,
    ),
    (
        "sigmoid and tanh are finite and bounded",
        sigmoid_tanh_bounded,
    ),
    ("relu and leaky relu", relu_and_leaky_relu),
    (
        "a log statement leaves the interrupt mask as it found it",
        logging_restores_the_interrupt_mask,
    ),
    ("softmax sums to 1 and is stable", softmax_stable),
    (
        "batch norm folded into dense equals dense then batch norm",
        batch_norm_fold,
    ),
    (
        "network forward equals layer-by-layer forward",
        network_equals_layers,
    ),
    (
        "network output is bit-identical to the host's",
        network_matches_host,
    ),
    (
        "Monte-Carlo dropout pass and PRNG are bit-identical to the host's",
        mc_dropout_matches_host,
    ),
    (
        "a NaN computed here compares equal to the host's NaN bits",
        nan_comparison,
    ),
    (
        "subnormal products and sums: kernel::dense is bit-identical to dense_spec",
        subnormals,
    ),
    (
        "int8 QDense::forward (DSP SMLAD kernel where the core has it) equals TFLite Micro's loop",
        int8_dense_matches_reference,
    ),
];

fn subnormals(s: &mut Scratch) -> TestResult {
    // Products and partial sums below f32::MIN_POSITIVE (no flush to zero, in the scalar FPU
    // and in Helium's vector lanes alike), on every block height and a tail.
    const I: usize = 13;
    const O: usize = 9;
    let mut rng = Rng::new(3);
    s.rows[..I * O]
        .iter_mut()
        .for_each(|w| *w = rng.uniform(-1.0, 1.0) * 1.0e-20);
    s.bias[..O]
        .iter_mut()
        .for_each(|b| *b = rng.uniform(-1.0, 1.0) * 1.0e-39);
    s.x[..I]
        .iter_mut()
        .for_each(|x| *x = rng.uniform(-1.0, 1.0) * 1.0e-19);
    kernel::pack(&s.rows[..I * O], I, O, &mut s.packed[..I * O]).map_err(|_| "pack")?;
    let (x, bias) = (&s.x[..I], &s.bias[..O]);
    kernel::dense(&s.packed[..I * O], bias, x, &mut s.fast[..O]).map_err(|_| "dense")?;
    kernel::dense_spec(&s.rows[..I * O], bias, x, &mut s.other[..O]).map_err(|_| "spec")?;
    let subnormal = s.fast[..O].iter().filter(|v| v.is_subnormal()).count();
    if subnormal == 0 {
        return Err("the case produced no subnormal output");
    }
    if s.fast[..O]
        .iter()
        .zip(&s.other[..O])
        .any(|(a, b)| a.to_bits() != b.to_bits())
    {
        return Err("subnormal results differ from the spec");
    }
    defmt::info!(
        "  {=usize} of {=usize} outputs subnormal, all bit-identical",
        subnormal,
        O
    );
    Ok(())
}

/// The x86-64 host's default NaN (what `inf - inf` gives there).
const HOST_X86_NAN: u32 = 0xffc0_0000;

fn nan_comparison(s: &mut Scratch) -> TestResult {
    // One output, four inputs: lanes 0 + 1 overflow to +inf, lanes 2 + 3 to -inf, and the
    // contract's `(l0 + l1) + (l2 + l3)` is inf + (-inf): NaN.
    let (rows, bias) = ([1.0f32, 1.0, -1.0, -1.0], [0.0f32]);
    let x = [f32::MAX; 4];
    let mut y = [0.0f32];
    kernel::dense_spec(&rows, &bias, &x, &mut y).map_err(|_| "dense_spec")?;
    kernel::pack(&rows, 4, 1, &mut s.packed[..4]).map_err(|_| "pack")?;
    kernel::dense(&s.packed[..4], &bias, &x, &mut s.fast[..1]).map_err(|_| "dense")?;
    defmt::info!(
        "  inf + (-inf) here: {=u32:#010x}, the kernel: {=u32:#010x}",
        y[0].to_bits(),
        s.fast[0].to_bits()
    );
    if !y[0].is_nan() || !s.fast[0].is_nan() {
        return Err("inf + (-inf) is not a NaN");
    }
    if !bits::same_as(y[0], HOST_X86_NAN) || !bits::same(y[0], s.fast[0]) {
        return Err("a NaN does not compare equal to the host's NaN");
    }
    if bits::same(0.0, -0.0) || bits::same(y[0], f32::INFINITY) {
        return Err("the comparison confuses signed zeros or NaN and infinity");
    }
    Ok(())
}

fn logging_restores_the_interrupt_mask(_: &mut Scratch) -> TestResult {
    use cortex_m::register::primask;
    // PRIMASK bit 0 set: interrupts masked. The logger masks them while it writes a frame and
    // must restore what it found (SysTick's wrap count, and so every instruction count, depends
    // on interrupts staying enabled).
    let masked = || primask::read_raw() & 1 == 1;
    if masked() {
        return Err("interrupts are masked before the test");
    }
    defmt::info!("  a log line with interrupts enabled");
    if masked() {
        return Err("a log statement left the interrupts masked");
    }
    let inside = cortex_m::interrupt::free(|_| {
        defmt::info!("  a log line inside a critical section");
        masked()
    });
    if !inside || masked() {
        return Err("a log statement inside a critical section changed the mask");
    }
    Ok(())
}

/// A random operand for [`assembly_matches_portable`]: with probability `special / 64` a signed
/// zero, a subnormal, an infinity, a NaN or a huge value; otherwise uniform in a random binade.
fn operand(rng: &mut Rng, special: u32) -> f32 {
    if rng.next_u32() % 64 < special {
        match rng.next_u32() % 8 {
            0 => 0.0,
            1 => -0.0,
            2 | 3 => rng.uniform(-1.0, 1.0) * 1.0e-39,
            4 => f32::INFINITY,
            5 => f32::NEG_INFINITY,
            6 => f32::NAN,
            _ => rng.uniform(-1.0, 1.0) * 1.0e30,
        }
    } else {
        let scales = [1.0e-20, 0.125, 1.0, 8.0, 1.0e10];
        let scale = scales.get((rng.next_u32() % 5) as usize).copied();
        rng.uniform(-1.0, 1.0) * scale.unwrap_or(1.0)
    }
}

/// Property test of the audited assembly inner loop (`asm/vfp.rs` on the Cortex-M4F/M7/M33,
/// `asm/helium.rs` on the Cortex-M55) against its portable twin (`kernel::dense_portable`, the
/// same blocks in plain Rust) and the contract (`kernel::dense_spec`): random shapes (every
/// block height 1 to 5, odd and even group counts, every column tail, no full group), operands
/// with signed zeros, subnormals, infinities and NaNs, compared bit for bit (NaNs
/// canonicalised). On a core without an assembly loop it checks the portable loop alone.
fn assembly_matches_portable(s: &mut Scratch) -> TestResult {
    const CASES: u32 = 400;
    let (mut heights, mut parity, mut tails) = ([0u32; 5], [0u32; 2], [0u32; 4]);
    let mut rng = Rng::new(0x5eed_0f32);
    for case in 0..CASES {
        let outputs = 1 + (rng.next_u32() % 17) as usize;
        // Up to 48 inputs, within the board's scratch (the micro:bit's: 715 weights).
        let most = (MAX_WEIGHTS / outputs).clamp(1, 48) as u32;
        let inputs = 1 + (rng.next_u32() % most) as usize;
        // A quarter of the cases plain, the others with more and more special values.
        let special = [0, 1, 4, 12].get((case % 4) as usize).copied().unwrap_or(0);
        let v = s.layer(inputs, outputs)?;
        v.packed
            .iter_mut()
            .for_each(|w| *w = operand(&mut rng, special));
        v.bias
            .iter_mut()
            .for_each(|b| *b = operand(&mut rng, special));
        v.x.iter_mut().for_each(|x| *x = operand(&mut rng, special));
        kernel::unpack(v.packed, inputs, outputs, v.rows).map_err(|_| "unpack")?;
        kernel::dense(v.packed, v.bias, v.x, v.fast).map_err(|_| "dense")?;
        kernel::dense_portable(v.packed, v.bias, v.x, v.other).map_err(|_| "dense_portable")?;
        let twin = v
            .fast
            .iter()
            .zip(v.other.iter())
            .all(|(a, b)| bits::same(*a, *b));
        kernel::dense_spec(v.rows, v.bias, v.x, v.other).map_err(|_| "dense_spec")?;
        let spec = v
            .fast
            .iter()
            .zip(v.other.iter())
            .all(|(a, b)| bits::same(*a, *b));
        if !twin || !spec {
            defmt::error!(
                "case {=u32}: {=usize}x{=usize}: the kernel differs from its portable twin ({=bool}) or the spec ({=bool})",
                case,
                inputs,
                outputs,
                !twin,
                !spec
            );
            return Err("kernel::dense differs from dense_portable or dense_spec");
        }
        // Full blocks of 5 rows, then the last block of `outputs % 5` rows.
        for h in [if outputs >= 5 { 5 } else { 0 }, outputs % 5] {
            if let Some(c) = h.checked_sub(1).and_then(|k| heights.get_mut(k)) {
                *c += 1;
            }
        }
        if let Some(c) = parity.get_mut((inputs / 4) % 2) {
            *c += 1;
        }
        if let Some(c) = tails.get_mut(inputs % 4) {
            *c += 1;
        }
    }
    if heights.contains(&0) || parity.contains(&0) || tails.contains(&0) {
        return Err("the random shapes missed a block height, group parity or tail");
    }
    defmt::info!(
        "  {=u32} cases bit-identical; blocks of height 1..5 in {=[?]} cases, even/odd groups {=[?]}, tails 0..3 {=[?]}",
        CASES,
        heights,
        parity,
        tails
    );
    Ok(())
}

fn dense_matches_spec(s: &mut Scratch) -> TestResult {
    for (inputs, outputs) in SHAPES.into_iter().filter(|&(i, o)| fits(i, o)) {
        s.random_layer(inputs, outputs)?;
        let v = s.layer(inputs, outputs)?;
        kernel::dense(v.packed, v.bias, v.x, v.fast).map_err(|_| "dense")?;
        kernel::dense_spec(v.rows, v.bias, v.x, v.other).map_err(|_| "dense_spec")?;
        let differing = v
            .fast
            .iter()
            .zip(v.other.iter())
            .filter(|(a, b)| !bits::same(**a, **b))
            .count();
        if differing > 0 {
            defmt::error!(
                "{=usize}x{=usize}: {=usize} of {=usize} outputs differ from the spec",
                inputs,
                outputs,
                differing,
                outputs
            );
            return Err("fast kernel differs from the spec");
        }
    }
    let tested = SHAPES.iter().filter(|&&(i, o)| fits(i, o)).count();
    defmt::info!(
        "  {=usize} shapes, all outputs bit-identical ({=usize} larger shapes skipped: {=usize} bytes of RAM)",
        tested,
        SHAPES.len() - tested,
        RAM_BYTES
    );
    Ok(())
}

fn dense_within_bound_of_reference(s: &mut Scratch) -> TestResult {
    let mut worst = 0.0f64; // largest |fast - reference| / tolerance seen
    for (inputs, outputs) in SHAPES.into_iter().filter(|&(i, o)| fits(i, o)) {
        s.random_layer(inputs, outputs)?;
        let v = s.layer(inputs, outputs)?;
        let (x, bias) = (&*v.x, &*v.bias);
        kernel::dense(v.packed, bias, x, v.fast).map_err(|_| "dense")?;
        kernel::dense_reference(v.rows, bias, x, v.other).map_err(|_| "dense_reference")?;
        // Both results are within their forward error bounds of the exact value, so they are
        // within the sum of the bounds of each other (see `kernel` docs).
        let factor = kernel::error_bound(inputs) + kernel::reference_error_bound(inputs);
        let width = core::num::NonZeroUsize::new(inputs).ok_or("a layer without inputs")?;
        let rows = v.rows.chunks(width.get());
        for (((row, b), fast), other) in rows.zip(bias).zip(v.fast.iter()).zip(v.other.iter()) {
            let magnitude: f64 = row
                .iter()
                .zip(x)
                .map(|(w, x)| f64::from(w * x).abs())
                .sum::<f64>()
                + f64::from(*b).abs();
            // Products are rounded to f32 by both kernels: that error is common to both.
            let tolerance = factor * magnitude;
            let diff = f64::from(fast - other).abs();
            if diff > tolerance {
                defmt::error!(
                    "{=usize}x{=usize}: fast {=f32} reference {=f32}, difference {=f64} > bound {=f64}",
                    inputs,
                    outputs,
                    fast,
                    other,
                    diff,
                    tolerance
                );
                return Err("fast kernel outside the error bound of the reference");
            }
            if tolerance > 0.0 {
                worst = worst.max(diff / tolerance);
            }
        }
    }
    defmt::info!("  largest difference: {=f64} of the derived bound", worst);
    Ok(())
}

fn kernel_shape_errors(s: &mut Scratch) -> TestResult {
    s.fast[..2].copy_from_slice(&[7.0, 7.0]);
    let e = kernel::dense(&s.packed[..5], &s.bias[..2], &s.x[..3], &mut s.fast[..2]);
    if !matches!(
        e,
        Err(Error::Shape {
            what: "weights",
            expected: 6,
            found: 5
        })
    ) {
        return Err("short weights not reported as a shape error");
    }
    if s.fast[..2] != [7.0, 7.0] {
        return Err("output written despite the error");
    }
    let e = kernel::dense_spec(&s.rows[..6], &s.bias[..1], &s.x[..3], &mut s.fast[..2]);
    if !matches!(e, Err(Error::Shape { what: "bias", .. })) {
        return Err("short bias not reported as a shape error");
    }
    if kernel::pack(&s.rows[..5], 3, 2, &mut s.packed[..6]).is_ok() {
        return Err("pack accepted a short input");
    }
    if Dense::<3, 2>::from_slices(&s.packed[..6], &s.bias[..3]).is_ok() {
        return Err("Dense::from_slices accepted a long bias");
    }
    Ok(())
}

fn pack_unpack_round_trip(s: &mut Scratch) -> TestResult {
    for (inputs, outputs) in SHAPES.into_iter().filter(|&(i, o)| fits(i, o)) {
        s.random_layer(inputs, outputs)?;
        let n = inputs * outputs;
        // Reuse `packed` as the source and `rows` as the destination: compare with a fresh draw.
        kernel::unpack(&s.packed[..n], inputs, outputs, &mut s.rows[..n]).map_err(|_| "unpack")?;
        let mut rng = Rng::new(((inputs as u64) << 32) ^ outputs as u64);
        if s.rows[..n]
            .iter()
            .any(|w| !bits::same(*w, rng.uniform(-1.0, 1.0)))
        {
            defmt::error!("{=usize}x{=usize}: unpack(pack(w)) != w", inputs, outputs);
            return Err("pack/unpack is not a round trip");
        }
    }
    Ok(())
}

fn typed_dense_matches_kernel(s: &mut Scratch) -> TestResult {
    // The demo network's second layer (128x64, or 32x16 on small boards).
    const I: usize = model::SHAPES[1].0;
    const O: usize = model::SHAPES[1].1;
    const _: () = assert!(fits(I, O));
    s.random_layer(I, O)?;
    let (chunks, _) = s.packed[..I * O].as_chunks::<I>();
    let weights: &[[f32; I]; O] = chunks.try_into().map_err(|_| "weights view")?;
    let bias: &[f32; O] = s.bias[..O].try_into().map_err(|_| "bias view")?;
    let x: &[f32; I] = s.x[..I].try_into().map_err(|_| "input view")?;
    let dense = Dense::new(weights, bias);
    let mut y = [0.0f32; O];
    dense.forward(x, &mut y);
    kernel::dense(&s.packed[..I * O], bias, x, &mut s.fast[..O]).map_err(|_| "dense")?;
    if y.iter().zip(&s.fast[..O]).any(|(a, b)| !bits::same(*a, *b)) {
        return Err("Dense::forward differs from kernel::dense");
    }
    // The packed-layout oracle reads the same weights as the naive loop reads row-major.
    let mut oracle = [0.0f32; O];
    dense.forward_reference(x, &mut oracle);
    kernel::dense_reference(&s.rows[..I * O], bias, x, &mut s.other[..O])
        .map_err(|_| "dense_reference")?;
    if oracle
        .iter()
        .zip(&s.other[..O])
        .any(|(a, b)| !bits::same(*a, *b))
    {
        return Err("Dense::forward_reference differs from kernel::dense_reference");
    }
    Ok(())
}

/// Inputs at the edges of the `f32` range.
const EDGE_INPUTS: [f32; 13] = [
    0.0,
    1.0e-45, // smallest subnormal
    1.0e-40, // subnormal
    f32::MIN_POSITIVE,
    1.0,
    10.0,
    20.0,
    88.0,
    89.0,
    100.0,
    1.0e30,
    f32::MAX,
    f32::INFINITY,
];

fn sigmoid_tanh_bounded(_: &mut Scratch) -> TestResult {
    for x in EDGE_INPUTS.iter().flat_map(|&v| [v, -v]) {
        let s = math::sigmoid(x);
        let t = math::tanh(x);
        if !(s.is_finite() && (0.0..=1.0).contains(&s)) {
            defmt::error!("sigmoid({=f32}) = {=f32}", x, s);
            return Err("sigmoid out of [0, 1]");
        }
        if !(t.is_finite() && (-1.0..=1.0).contains(&t)) {
            defmt::error!("tanh({=f32}) = {=f32}", x, t);
            return Err("tanh out of [-1, 1]");
        }
    }
    let exact = [
        (math::sigmoid(0.0), 0.5),
        (math::sigmoid(f32::INFINITY), 1.0),
        (math::sigmoid(f32::NEG_INFINITY), 0.0),
        (math::tanh(0.0), 0.0),
        (math::tanh(f32::INFINITY), 1.0),
        (math::tanh(f32::NEG_INFINITY), -1.0),
        (math::tanh(1.0e-40), 1.0e-40),
    ];
    if exact.iter().any(|(got, want)| got != want) {
        return Err("sigmoid/tanh wrong at 0, ±inf or a subnormal");
    }
    if !math::sigmoid(f32::NAN).is_nan() || !math::tanh(f32::NAN).is_nan() {
        return Err("NaN input must give NaN");
    }
    // Monotone over a sweep.
    let mut prev = (math::sigmoid(-30.0), math::tanh(-30.0));
    for k in -299..=300 {
        let x = k as f32 * 0.1;
        let cur = (math::sigmoid(x), math::tanh(x));
        if cur.0 < prev.0 || cur.1 < prev.1 {
            defmt::error!("not monotone at {=f32}", x);
            return Err("sigmoid/tanh not monotone");
        }
        prev = cur;
    }
    Ok(())
}

fn relu_and_leaky_relu(_: &mut Scratch) -> TestResult {
    let relu_cases = [
        (-1.0f32, 0.0f32),
        (-0.0, 0.0),
        (0.0, 0.0),
        (2.5, 2.5),
        (1.0e-45, 1.0e-45),
        (f32::NEG_INFINITY, 0.0),
        (f32::INFINITY, f32::INFINITY),
    ];
    for (x, want) in relu_cases {
        if !bits::same(math::relu(x), want) {
            defmt::error!("relu({=f32}) = {=f32}", x, math::relu(x));
            return Err("relu");
        }
    }
    if !math::relu(f32::NAN).is_nan() {
        return Err("relu(NaN) must be NaN");
    }
    let slope = math::DEFAULT_LEAKY_SLOPE;
    for (x, want) in [
        (-2.0f32, -2.0 * slope),
        (3.0, 3.0),
        (-1.0e30, -1.0e30 * slope),
    ] {
        if !bits::same(math::leaky_relu(x, slope), want) {
            return Err("leaky relu");
        }
    }
    // The vector form agrees with the scalar form.
    let xs = [-3.0f32, -0.5, -0.0, 0.0, 0.25, 4.0];
    for act in [
        Activation::Relu,
        Activation::LEAKY_RELU,
        Activation::Identity,
    ] {
        let mut y = xs;
        act.apply(&mut y);
        for (x, y) in xs.iter().zip(&y) {
            if !act.apply_scalar(*x).is_some_and(|v| bits::same(v, *y)) {
                return Err("Activation::apply differs from apply_scalar");
            }
        }
    }
    Ok(())
}

fn softmax_checks(y: &[f32]) -> bool {
    let sum: f32 = y.iter().sum();
    let tolerance = y.len() as f32 * f32::EPSILON * 2.0;
    y.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)) && (sum - 1.0).abs() <= tolerance
}

fn softmax_stable(_: &mut Scratch) -> TestResult {
    let mut rng = Rng::new(11);
    for n in [1usize, 2, 10, 64, 128] {
        let mut y = [0.0f32; 128];
        let y = y.get_mut(..n).ok_or("softmax test: length")?;
        y.iter_mut().for_each(|v| *v = rng.uniform(-20.0, 20.0));
        let before = microdnn::argmax(y);
        math::softmax(y);
        if !softmax_checks(y) || microdnn::argmax(y) != before {
            defmt::error!("softmax of {=usize} random values: {=[?]}", n, y);
            return Err("softmax does not sum to 1 or moved the maximum");
        }
    }
    // Shift invariance for large inputs: softmax(x + 1000) == softmax(x) (exactly here, as the
    // shifted maximum is subtracted first and these differences are exact).
    let mut big = [1000.0f32, 999.0, 998.0, 990.0];
    let mut small = [2.0f32, 1.0, 0.0, -8.0];
    math::softmax(&mut big);
    math::softmax(&mut small);
    if big != small || !softmax_checks(&big) {
        return Err("softmax not shift-invariant for large inputs");
    }
    let cases: [([f32; 3], [f32; 3]); 4] = [
        ([1.0e30, 0.0, -1.0e30], [1.0, 0.0, 0.0]),
        ([f32::MAX, f32::MAX, -f32::MAX], [0.5, 0.5, 0.0]),
        ([f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY], [0.0, 1.0, 0.0]),
        ([f32::INFINITY, 1.0, 2.0], [1.0, 0.0, 0.0]),
    ];
    for (x, want) in cases {
        let mut y = x;
        math::softmax(&mut y);
        if y != want {
            defmt::error!("softmax({=[?]}) = {=[?]}, expected {=[?]}", x, y, want);
            return Err("softmax edge case");
        }
    }
    Ok(())
}

fn batch_norm_fold(_: &mut Scratch) -> TestResult {
    const I: usize = 13;
    const N: usize = 7;
    let mut rng = Rng::new(5);
    let mut rows = [[0.0f32; I]; N];
    rows.as_flattened_mut()
        .iter_mut()
        .for_each(|w| *w = rng.uniform(-1.0, 1.0));
    let mut bias = [0.0f32; N];
    bias.iter_mut().for_each(|b| *b = rng.uniform(-1.0, 1.0));
    let x: [f32; I] = core::array::from_fn(|_| rng.uniform(-2.0, 2.0));
    let mut draw = |lo, hi| -> [f32; N] { core::array::from_fn(|_| rng.uniform(lo, hi)) };
    let (gamma, beta, mean, var) = (
        draw(0.5, 2.0),
        draw(-1.0, 1.0),
        draw(-1.0, 1.0),
        draw(0.1, 2.0),
    );
    let bn = BatchNorm::from_stats(&gamma, &beta, &mean, &var, 1.0e-5)
        .map_err(|_| "from_stats rejected valid statistics")?;

    // Dense then batch norm...
    let mut y = [0.0f32; N];
    kernel::dense_spec(rows.as_flattened(), &bias, &x, &mut y).map_err(|_| "dense_spec")?;
    bn.apply(&mut y);
    // ...against batch norm folded into the dense layer.
    let (mut frows, mut fbias) = (rows, bias);
    bn.fold_into(&mut frows, &mut fbias);
    let mut z = [0.0f32; N];
    kernel::dense_spec(frows.as_flattened(), &fbias, &x, &mut z).map_err(|_| "dense_spec")?;
    let u = f64::from(f32::EPSILON) / 2.0;
    for o in 0..N {
        let magnitude: f64 = rows[o]
            .iter()
            .zip(&x)
            .map(|(w, x)| f64::from(*w) * f64::from(*x))
            .map(f64::abs)
            .sum::<f64>()
            + f64::from(bias[o]).abs();
        let scaled = f64::from(bn.scale[o]).abs() * magnitude + f64::from(bn.shift[o]).abs();
        // Both sides: the kernel bound, plus a few roundings for scaling weights, bias and the
        // batch-norm multiply-add.
        let tolerance = (2.0 * kernel::error_bound(I) + 8.0 * u) * scaled;
        let diff = f64::from(y[o] - z[o]).abs();
        if diff > tolerance {
            defmt::error!(
                "unit {=usize}: unfolded {=f32}, folded {=f32}, difference {=f64} > {=f64}",
                o,
                y[o],
                z[o],
                diff,
                tolerance
            );
            return Err("folded batch norm differs beyond rounding");
        }
    }
    let bad_var = [-1.0f32; N];
    if !matches!(
        BatchNorm::from_stats(&gamma, &beta, &mean, &bad_var, 1.0e-5),
        Err(Error::InvalidBatchNorm { unit: 0 })
    ) {
        return Err("negative variance accepted");
    }
    Ok(())
}

/// The demo network run layer by layer by hand.
fn forward_by_layers(net: &Demo<'_>, x: &[f32; model::INPUTS], b: &mut DemoBuffers) {
    net.fc1.dense.forward(x, &mut b.fc1);
    net.fc1.activation.apply(&mut b.fc1);
    net.fc2.dense.forward(&b.fc1, &mut b.fc2);
    net.fc2.activation.apply(&mut b.fc2);
    net.fc3.dense.forward(&b.fc2, &mut b.fc3);
    net.fc3.activation.apply(&mut b.fc3);
}

fn network_equals_layers(s: &mut Scratch) -> TestResult {
    let net = model::network();
    let y = net.forward(&model::INPUT, &mut s.net);
    forward_by_layers(&net, &model::INPUT, &mut s.layers);
    if y.iter()
        .zip(&s.layers.fc3)
        .any(|(a, b)| !bits::same(*a, *b))
    {
        return Err("network forward differs from the layer-by-layer forward");
    }
    let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(a, b)| bits::same(*a, *b));
    if !(same(&s.net.fc1, &s.layers.fc1)
        && same(&s.net.fc2, &s.layers.fc2)
        && same(&s.net.fc3, &s.layers.fc3))
    {
        return Err("hidden activations differ");
    }
    Ok(())
}

fn network_matches_host(s: &mut Scratch) -> TestResult {
    let net = model::network();
    let y = net.forward(&model::INPUT, &mut s.net);
    let same = y
        .iter()
        .zip(model::EXPECTED_OUTPUT_BITS)
        .filter(|(v, e)| bits::same_as(**v, *e))
        .count();
    defmt::info!("  {=usize} of 10 outputs bit-identical to the host", same);
    if same != 10 {
        return Err("device output differs from the host's");
    }
    if net.predict(&model::INPUT, &mut s.net) != model::EXPECTED_CLASS {
        return Err("predicted class differs from the host's");
    }
    Ok(())
}

fn mc_dropout_matches_host(s: &mut Scratch) -> TestResult {
    let mut rng = Rng::new(model::SEED);
    let first: [u32; 4] = core::array::from_fn(|_| rng.next_u32());
    if first != model::EXPECTED_RNG_U32 {
        return Err("Rng sequence differs from the host's");
    }
    let net = model::network();
    let mc = Demo {
        fc1: net.fc1.with_dropout(model::MC_DROPOUT_RATE),
        fc2: net.fc2.with_dropout(model::MC_DROPOUT_RATE),
        fc3: net.fc3,
    };
    let y = mc.forward_mc(&model::INPUT, &mut s.net, &mut Rng::new(model::MC_SEED));
    if y.iter()
        .zip(model::EXPECTED_MC_OUTPUT_BITS)
        .any(|(v, e)| !bits::same_as(*v, e))
    {
        return Err("Monte-Carlo dropout output differs from the host's");
    }
    // Dropout rate 0 everywhere: forward_mc is the plain forward.
    let plain = *net.forward(&model::INPUT, &mut s.layers);
    let y0 = net.forward_mc(&model::INPUT, &mut s.net, &mut Rng::new(1));
    if y0.iter().zip(&plain).any(|(a, b)| !bits::same(*a, *b)) {
        return Err("forward_mc without dropout differs from forward");
    }
    Ok(())
}

/// The int8 fast kernel against TFLite Micro's reference loop, byte for byte: on every kernel
/// shape that fits (all block heights, column tails, odd and even numbers of column groups: the
/// DSP loop runs two per iteration), per-tensor and per-channel requantization, weights and
/// scratch aligned (the `SMLAD` loop) and misaligned (its portable fallback), random values over
/// the whole int8 range: `quant::kernel::dense_with_scratch` (run-time shapes) and, on two
/// shapes, `QDense::forward` and `QDense::forward_reference`, against
/// `quant::kernel::dense_reference` over row-major weights.
fn int8_dense_matches_reference(s: &mut Scratch) -> TestResult {
    let mut tested = 0usize;
    for (inputs, outputs) in SHAPES.into_iter().filter(|&(i, o)| fits(i, o)) {
        for case in 0..6 {
            let rq_len = s.random_qlayer(inputs, outputs, case)?;
            let q = s.qlayer(inputs, outputs, case, rq_len, (-100, 90))?;
            qkernel::dense_with_scratch(q.packed, q.kb, &q.rq, q.x, q.scratch, q.fast)
                .map_err(|_| "int8: dense_with_scratch")?;
            qkernel::dense_reference(q.rows, q.bias, q.zp, &q.rq, q.x, q.reference)
                .map_err(|_| "int8: dense_reference")?;
            let differing = q
                .fast
                .iter()
                .zip(q.reference.iter())
                .filter(|(a, b)| a != b)
                .count();
            if differing > 0 {
                defmt::error!(
                    "{=usize}x{=usize} case {=u32}: {=usize} of {=usize} outputs differ",
                    inputs,
                    outputs,
                    case,
                    differing,
                    outputs
                );
                return Err("int8 fast kernel differs from TFLite Micro's loop");
            }
        }
        tested += 1;
    }
    int8_typed::<13, 5>(s)?;
    int8_typed::<64, 10>(s)?;
    defmt::info!(
        "  {=usize} shapes x 6 cases, and QDense 13x5 and 64x10: all outputs identical",
        tested
    );
    Ok(())
}

impl Scratch {
    /// Fills a random int8 layer (case 0..6: odd cases per-tensor, cases 4 and 5 with packed
    /// weights misaligned by one byte): row-major and packed weights, input, bias, kernel bias,
    /// multipliers and shifts (the input zero point in `qs[MAX_WIDTH - 1]`, the output zero
    /// point in `qm[MAX_WIDTH - 1]`). Returns the number of requantization channels.
    fn random_qlayer(
        &mut self,
        inputs: usize,
        outputs: usize,
        case: u32,
    ) -> Result<usize, &'static str> {
        let n = inputs.checked_mul(outputs).ok_or("int8: shape overflows")?;
        let too_big = "int8: shape larger than the scratch memory";
        let mut rng = Rng::new(((inputs as u64) << 32) ^ ((outputs as u64) << 8) ^ case as u64);
        let mut byte = || rng.next_u32() as i8;
        let rows = self.qrows.get_mut(..n).ok_or(too_big)?;
        rows.iter_mut().for_each(|w| *w = byte());
        let x = self.qx.get_mut(..inputs).ok_or(too_big)?;
        x.iter_mut().for_each(|v| *v = byte());
        let zp = byte();
        let out_zp = byte();
        let bias = self.qbias.get_mut(..outputs).ok_or(too_big)?;
        let m = self.qm.get_mut(..outputs).ok_or(too_big)?;
        let sh = self.qs.get_mut(..outputs).ok_or(too_big)?;
        for ((b, m), sh) in bias.iter_mut().zip(m.iter_mut()).zip(sh.iter_mut()) {
            *b = (rng.next_u32() as i32) >> 11;
            *m = (1 << 30) + (rng.next_u32() >> 2) as i32; // [2^30, 2^31)
            *sh = (rng.next_u32() % 16) as i32 - 13; // [-13, 2]
        }
        self.qs[MAX_WIDTH - 1] = zp as i32;
        self.qm[MAX_WIDTH - 1] = out_zp as i32;
        let off = usize::from(case >= 4);
        let rows = self.qrows.get(..n).ok_or(too_big)?;
        let packed = self.qpacked.0.get_mut(off..off + n).ok_or(too_big)?;
        qkernel::pack(rows, inputs, outputs, packed).map_err(|_| "int8: pack")?;
        let bias = self.qbias.get(..outputs).ok_or(too_big)?;
        let kb = self.qkb.get_mut(..outputs).ok_or(too_big)?;
        qkernel::kernel_bias(rows, inputs, bias, zp, kb).map_err(|_| "int8: kernel bias")?;
        Ok(if case % 2 == 1 { 1 } else { outputs })
    }
}

/// The int8 layer [`Scratch::random_qlayer`] filled, cut to its shape (`get`, not indexing: the
/// program links no panic path), and the outputs it is run into.
struct QLayer<'a> {
    rows: &'a [i8],
    packed: &'a [i8],
    x: &'a [i8],
    bias: &'a [i32],
    kb: &'a [i32],
    rq: Requantize<'a>,
    zp: i8,
    scratch: &'a mut [i16],
    fast: &'a mut [i8],
    reference: &'a mut [i8],
}

impl Scratch {
    /// The layer of `random_qlayer(inputs, outputs, case)` (which returned `rq_len`), with the
    /// output range `[lo, hi]`.
    fn qlayer(
        &mut self,
        inputs: usize,
        outputs: usize,
        case: u32,
        rq_len: usize,
        (lo, hi): (i8, i8),
    ) -> Result<QLayer<'_>, &'static str> {
        let n = inputs.checked_mul(outputs).ok_or("int8: shape overflows")?;
        let off = usize::from(case >= 4);
        let too_big = "int8: shape larger than the scratch memory";
        let (zp, out_zp) = (self.qs[MAX_WIDTH - 1] as i8, self.qm[MAX_WIDTH - 1] as i8);
        let Scratch {
            qrows,
            qpacked,
            qx,
            qbias,
            qkb,
            qm,
            qs,
            qscratch,
            qfast,
            qref,
            ..
        } = self;
        let rq = Requantize::new(
            qm.get(..rq_len).ok_or(too_big)?,
            qs.get(..rq_len).ok_or(too_big)?,
            out_zp,
            lo,
            hi,
        )
        .map_err(|_| "int8: requantize")?;
        Ok(QLayer {
            rows: qrows.get(..n).ok_or(too_big)?,
            packed: qpacked.0.get(off..off + n).ok_or(too_big)?,
            x: qx.get(..inputs).ok_or(too_big)?,
            bias: qbias.get(..outputs).ok_or(too_big)?,
            kb: qkb.get(..outputs).ok_or(too_big)?,
            rq,
            zp,
            scratch: qscratch.0.get_mut(off..).ok_or(too_big)?,
            fast: qfast.get_mut(..outputs).ok_or(too_big)?,
            reference: qref.get_mut(..outputs).ok_or(too_big)?,
        })
    }
}

/// `QDense::<I, O>::forward` (the typed path, its scratch on the stack) and its packed-layout
/// oracle against TFLite Micro's loop.
fn int8_typed<const I: usize, const O: usize>(s: &mut Scratch) -> TestResult {
    for case in 0..6 {
        let rq_len = s.random_qlayer(I, O, case)?;
        let q = s.qlayer(I, O, case, rq_len, (-128, 127))?;
        let dense = QDense::<I, O>::from_slices(q.packed, q.bias, q.kb, q.zp, q.rq)
            .map_err(|_| "int8: QDense::from_slices")?;
        let x: &[i8; I] = q.x.try_into().map_err(|_| "int8: input view")?;
        let (mut fast, mut oracle, mut rows) = ([0i8; O], [0i8; O], [0i8; O]);
        dense.forward(x, &mut fast);
        dense.forward_reference(x, &mut oracle);
        qkernel::dense_reference(q.rows, q.bias, q.zp, &q.rq, x, &mut rows)
            .map_err(|_| "int8: dense_reference")?;
        if fast != rows || oracle != rows {
            defmt::error!(
                "QDense<{=usize}, {=usize}> case {=u32}: outputs differ",
                I,
                O,
                case
            );
            return Err("QDense::forward differs from TFLite Micro's loop");
        }
    }
    Ok(())
}

#[entry]
fn main() -> ! {
    static mut SCRATCH: Scratch = Scratch::new();

    defmt::println!(
        "selftest on {=str}: {=usize} tests",
        board::NAME,
        TESTS.len()
    );
    let (mut passed, mut failed) = (0usize, 0usize);
    for (name, test) in TESTS {
        match test(SCRATCH) {
            Ok(()) => {
                passed += 1;
                defmt::println!("PASS {=str}", name);
            }
            Err(why) => {
                failed += 1;
                defmt::println!("FAIL {=str}: {=str}", name, why);
            }
        }
    }
    defmt::println!("{=usize} passed, {=usize} failed", passed, failed);
    runtime::exit(failed == 0)
}

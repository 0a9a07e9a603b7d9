//! Generates the demo network into `OUT_DIR`, on the host, with microdnn itself:
//!
//! - Glorot-uniform weights and small biases drawn with `microdnn::Rng` (seed `SEED` of
//!   `src/model_shape.rs`), packed with `microdnn::kernel::pack` and written as little-endian
//!   bytes (`fcN.packed.bin`, read in place from flash through `include_bytes!`), plus the
//!   row-major originals (`fcN.rows.bin`, used by the benchmark's naive baseline);
//! - a deterministic input vector;
//! - the output of microdnn's own `forward` for that input, as raw `f32` bit patterns, so the
//!   device can check that it computes bit-identical results;
//! - `model_data.rs`, which `src/model.rs` includes.
//!
//! - `eval_model.rs` and `eval_model.udnn`, the model of the `eval` program: the file named by the
//!   environment variable `MICRODNN_MODEL` (what `microdnn export` writes), or else the demo
//!   network encoded as a model file. The network type is derived from the file's layer shapes,
//!   so the compiled-in type always matches the file it is built with.
//!
//! It also selects the board: `MICRODNN_BOARD` names a folder of `boards/` (default `mps2`, QEMU's
//! Cortex-M4F), whose `mod.rs` becomes the crate's `board` module (through the generated
//! `board.rs`) and whose `memory.x` goes on the linker's search path. The board's flash size
//! picks the demo network (784-128-64-10, or 64-32-16-10 below 512 KiB: cfg
//! `microdnn_small_demo`; a board folder holding a `small-demo` file takes the small network
//! whatever its flash, for boards whose drivers leave the 512 KiB too full for the self-test
//! beside the MNIST weights) and whether a row-major copy of its weights fits beside the packed one
//! for the benchmark's naive baseline (cfg `microdnn_row_major_copy`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

use microdnn::model::{EncodeLayer, ModelSpec, ModelView};
use microdnn::quant::{self, FusedActivation, QSoftmax, QuantParams, Requantize};
use microdnn::{kernel, Dense, Layer, Rng};

#[allow(dead_code)]
mod shape {
    include!("src/model_shape.rs");
}
use shape::{
    Mnist, MnistBuffers, Small, SmallBuffers, ACTIVATIONS, MC_DROPOUT_RATE, MC_SEED, MNIST_SHAPES,
    Q_SEED, SEED, SMALL_SHAPES,
};

/// Boards with less flash than this run the small demo network.
const SMALL_DEMO_BELOW_FLASH: u64 = 512 * 1024;
/// Flash kept free for code when deciding whether a row-major copy of the weights fits.
const CODE_RESERVE: u64 = 128 * 1024;

/// One generated layer: row-major and packed weights, bias.
struct LayerData {
    rows: Vec<f32>,
    packed: Vec<f32>,
    bias: Vec<f32>,
}

fn generate_layer(rng: &mut Rng, inputs: usize, outputs: usize) -> LayerData {
    // Glorot (Xavier) uniform: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)).
    let limit = (6.0 / (inputs + outputs) as f64).sqrt() as f32;
    let rows: Vec<f32> = (0..inputs * outputs)
        .map(|_| rng.uniform(-limit, limit))
        .collect();
    let bias: Vec<f32> = (0..outputs).map(|_| rng.uniform(-0.05, 0.05)).collect();
    let mut packed = vec![0.0; rows.len()];
    kernel::pack(&rows, inputs, outputs, &mut packed).expect("pack");
    LayerData { rows, packed, bias }
}

fn write_f32s(path: &Path, values: &[f32]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    fs::write(path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

fn f32_array_literal(values: &[f32]) -> String {
    let mut s = String::from("[");
    for (i, v) in values.iter().enumerate() {
        if i % 6 == 0 {
            s.push_str("\n    ");
        }
        write!(s, "f32::from_bits({:#010x}), ", v.to_bits()).unwrap();
    }
    s.push_str("\n]");
    s
}

/// Length in bytes of a region of a `memory.x` (`LENGTH = 4M`, `256K`, `0x4000`).
fn region_len(memory_x: &str, region: &str) -> Option<u64> {
    memory_x.lines().find_map(|line| {
        let line = line.split("/*").next()?.trim();
        let (name, rest) = line.split_once(':')?;
        if name.split_whitespace().next() != Some(region) {
            return None;
        }
        let len = rest
            .split("LENGTH")
            .nth(1)?
            .trim_start()
            .strip_prefix('=')?;
        let len = len.trim().trim_end_matches(',').trim();
        let (digits, scale) = match len.as_bytes().last()? {
            b'K' | b'k' => (&len[..len.len() - 1], 1024),
            b'M' | b'm' => (&len[..len.len() - 1], 1024 * 1024),
            _ => (len, 1),
        };
        let value = match digits.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok()?,
            None => digits.trim().parse().ok()?,
        };
        Some(value * scale)
    })
}

/// Selects the board; returns its flash and RAM sizes and whether its folder asks for the small
/// demo network (a `small-demo` file).
fn select_board(out: &Path) -> (u64, u64, bool) {
    println!("cargo:rerun-if-env-changed=MICRODNN_BOARD");
    let board = env::var("MICRODNN_BOARD").unwrap_or_else(|_| "mps2".to_owned());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("boards")
        .join(&board);
    if !dir.join("mod.rs").is_file() {
        let mut known: Vec<String> = fs::read_dir("boards")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        known.sort();
        panic!(
            "MICRODNN_BOARD={board}: no board folder {} (known: {})",
            dir.display(),
            known.join(", ")
        );
    }
    println!("cargo:rerun-if-changed={}", dir.display());
    let memory_x = fs::read_to_string(dir.join("memory.x"))
        .unwrap_or_else(|e| panic!("{}/memory.x: {e}", dir.display()));
    let flash = region_len(&memory_x, "FLASH").expect("memory.x: FLASH region with a LENGTH");
    let ram = region_len(&memory_x, "RAM").expect("memory.x: RAM region with a LENGTH");
    fs::write(out.join("memory.x"), &memory_x).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    // cortex-m-rt's link script (which includes memory.x) and defmt's, for the programs.
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    let code = format!(
        "/// The board: `boards/{board}/`, selected by `MICRODNN_BOARD` at build time.\n\
         #[path = {path:?}]\npub mod board;\n\
         /// The board's memory, from its `memory.x`.\npub mod memory {{\n\
         /// Bytes of flash.\n    pub const FLASH_BYTES: usize = {flash};\n\
         /// Bytes of RAM.\n    pub const RAM_BYTES: usize = {ram};\n}}\n",
        path = dir.join("mod.rs").display().to_string(),
    );
    fs::write(out.join("board.rs"), code).expect("write board.rs");
    (flash, ram, dir.join("small-demo").is_file())
}

/// What the generated `model_data.rs` says about the demo network.
struct Expected {
    y: Vec<f32>,
    class: usize,
    y_mc: Vec<f32>,
}

/// Runs the demo network `$net` (buffers `$bufs`) on `input` with the generated `layers`, plain
/// and with Monte-Carlo dropout, with microdnn's own forward pass.
macro_rules! expected {
    ($net:ident, $bufs:ident, $layers:expr, $input:expr) => {{
        let layers: &[LayerData] = $layers;
        let fc1 = Dense::from_slices(&layers[0].packed, &layers[0].bias).expect("fc1");
        let fc2 = Dense::from_slices(&layers[1].packed, &layers[1].bias).expect("fc2");
        let fc3 = Dense::from_slices(&layers[2].packed, &layers[2].bias).expect("fc3");
        let net = $net {
            fc1: Layer::new(fc1, ACTIVATIONS[0]),
            fc2: Layer::new(fc2, ACTIVATIONS[1]),
            fc3: Layer::new(fc3, ACTIVATIONS[2]),
        };
        let x = $input.as_slice().try_into().expect("input width");
        let mut bufs = $bufs::new();
        let y = net.forward(x, &mut bufs).to_vec();
        let class = net.predict(x, &mut bufs);
        // One Monte-Carlo dropout pass (dropout on fc1 and fc2): the device must reproduce it.
        let mc_net = $net {
            fc1: net.fc1.with_dropout(MC_DROPOUT_RATE),
            fc2: net.fc2.with_dropout(MC_DROPOUT_RATE),
            fc3: net.fc3,
        };
        let y_mc = mc_net
            .forward_mc(x, &mut bufs, &mut Rng::new(MC_SEED))
            .to_vec();
        Expected { y, class, y_mc }
    }};
}

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/model_shape.rs");
    println!("cargo:rustc-check-cfg=cfg(microdnn_small_demo)");
    println!("cargo:rustc-check-cfg=cfg(microdnn_row_major_copy)");
    println!("cargo:rustc-check-cfg=cfg(microdnn_int8_demo)");
    let (flash, _ram, small_demo_file) = select_board(&out);

    let small = flash < SMALL_DEMO_BELOW_FLASH || small_demo_file;
    let shapes = if small { SMALL_SHAPES } else { MNIST_SHAPES };
    if small {
        println!("cargo:rustc-cfg=microdnn_small_demo");
    }
    let weight_bytes: u64 = shapes.iter().map(|&(i, o)| (i * o * 4) as u64).sum();
    let row_major_copy = 2 * weight_bytes + CODE_RESERVE <= flash;
    if row_major_copy {
        println!("cargo:rustc-cfg=microdnn_row_major_copy");
    }

    let mut rng = Rng::new(SEED);
    let layers: Vec<LayerData> = shapes
        .iter()
        .map(|&(i, o)| generate_layer(&mut rng, i, o))
        .collect();
    // Pixel-like input in [0, 1).
    let input: Vec<f32> = (0..shapes[0].0).map(|_| rng.next_f32()).collect();

    // The expected output, computed here with microdnn's own forward pass.
    let Expected { y, class, y_mc } = if small {
        expected!(Small, SmallBuffers, &layers, input)
    } else {
        expected!(Mnist, MnistBuffers, &layers, input)
    };
    let mut check_rng = Rng::new(SEED);
    let rng_check: Vec<String> = (0..4)
        .map(|_| format!("{:#010x}", check_rng.next_u32()))
        .collect();

    let mut code = String::new();
    writeln!(code, "// Generated by build.rs: do not edit.").unwrap();
    for (k, layer) in layers.iter().enumerate() {
        let name = format!("fc{}", k + 1);
        let upper = name.to_uppercase();
        let (inputs, outputs) = shapes[k];
        let kinds: &[(&str, &Vec<f32>)] = if row_major_copy {
            &[("packed", &layer.packed), ("rows", &layer.rows)]
        } else {
            &[("packed", &layer.packed)]
        };
        for &(kind, values) in kinds {
            let path = out.join(format!("{name}.{kind}.bin"));
            write_f32s(&path, values);
            writeln!(
                code,
                "/// `{name}` weights ({inputs} inputs x {outputs} outputs), {kind}, little-endian f32.\n\
                 pub static {upper}_{kind_upper}: Aligned<[u8; {len}]> = Aligned(*include_bytes!({path:?}));",
                kind_upper = kind.to_uppercase(),
                len = values.len() * 4,
            )
            .unwrap();
        }
        writeln!(
            code,
            "/// `{name}` bias.\npub static {upper}_BIAS: [f32; {outputs}] = {};",
            f32_array_literal(&layer.bias)
        )
        .unwrap();
    }
    writeln!(
        code,
        "/// The demo input ({n} values in [0, 1)).\npub static INPUT: [f32; {n}] = {};",
        f32_array_literal(&input),
        n = input.len()
    )
    .unwrap();
    let bits = |y: &[f32]| -> String {
        y.iter()
            .map(|v| format!("{:#010x}", v.to_bits()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    writeln!(
        code,
        "/// Bit patterns of the host's output for [`INPUT`] (microdnn `forward`, computed by build.rs).\n\
         pub const EXPECTED_OUTPUT_BITS: [u32; 10] = [{}];\n\
         /// The host's predicted class for [`INPUT`].\n\
         pub const EXPECTED_CLASS: usize = {class};\n\
         /// Bit patterns of the host's Monte-Carlo dropout pass (`forward_mc`, dropout\n\
         /// `MC_DROPOUT_RATE` on fc1 and fc2, `Rng::new(MC_SEED)`).\n\
         pub const EXPECTED_MC_OUTPUT_BITS: [u32; 10] = [{}];\n\
         /// The first four `next_u32` of `Rng::new(SEED)` on the host.\n\
         pub const EXPECTED_RNG_U32: [u32; 4] = [{}];",
        bits(&y),
        bits(&y_mc),
        rng_check.join(", ")
    )
    .unwrap();
    fs::write(out.join("model_data.rs"), code).expect("write model_data.rs");

    // The int8 twin of the demo network (the `bench_int8` program's; its packed weights and a
    // row-major copy for TFLite Micro's reference loop), where the flash holds it.
    let int8_bytes: u64 = shapes
        .iter()
        .map(|&(i, o)| (2 * i * o + 16 * o) as u64)
        .sum();
    if int8_bytes + CODE_RESERVE <= flash {
        println!("cargo:rustc-cfg=microdnn_int8_demo");
        write_int8_demo(&out, &shapes);
    }

    write_eval_model(&out, &layers, &shapes);
}

/// One generated int8 layer.
struct QLayerData {
    rows: Vec<i8>,
    packed: Vec<i8>,
    bias: Vec<i32>,
    kernel_bias: Vec<i32>,
    multipliers: Vec<i32>,
    shifts: Vec<i32>,
    input: QuantParams,
    output: QuantParams,
    range: (i8, i8),
}

/// Generates one int8 layer for the input `x` (quantized with `input`): weights uniform in
/// [-127, 127], per-channel scales in [0.002, 0.01], a small real bias; the output quantization
/// is calibrated on this input's real outputs, as post-training quantization does (`[0, max]`
/// with the ReLU fused, `[min, max]` otherwise). Returns the layer and its int8 output (TFLite
/// Micro's reference loop, then softmax on the last layer).
fn generate_qlayer(
    rng: &mut Rng,
    x: &[i8],
    input: QuantParams,
    outputs: usize,
    last: bool,
) -> (QLayerData, Vec<i8>) {
    let inputs = x.len();
    let rows: Vec<i8> = (0..inputs * outputs)
        .map(|_| (rng.next_u32() % 255) as i32 - 127)
        .map(|w| w as i8)
        .collect();
    let scales: Vec<f32> = (0..outputs).map(|_| rng.uniform(0.002, 0.01)).collect();
    let bias: Vec<i32> = scales
        .iter()
        .map(|&s| (rng.uniform(-0.05, 0.05) / (input.scale() * s)).round() as i32)
        .collect();
    let real: Vec<f64> = (0..outputs)
        .map(|o| {
            let acc: i64 = (0..inputs)
                .map(|c| rows[o * inputs + c] as i64 * (x[c] as i64 - input.zero_point() as i64))
                .sum::<i64>()
                + bias[o] as i64;
            acc as f64 * input.scale() as f64 * scales[o] as f64
        })
        .collect();
    let hi = real.iter().cloned().fold(0.0, f64::max);
    let lo = if last {
        real.iter().cloned().fold(0.0, f64::min)
    } else {
        0.0
    };
    let scale = ((hi - lo) / 255.0).max(1e-6) as f32;
    let zero_point = (-128.0 - lo / scale as f64).round().clamp(-128.0, 127.0) as i8;
    let output = QuantParams::new(scale, zero_point).expect("output scale");
    let fused = if last {
        FusedActivation::None
    } else {
        FusedActivation::Relu
    };
    let range = fused.range(output).expect("fused range");
    let (mut multipliers, mut shifts) = (vec![0; outputs], vec![0; outputs]);
    quant::per_channel_multipliers(input, &scales, output, &mut multipliers, &mut shifts)
        .expect("multipliers");
    let mut packed = vec![0i8; rows.len()];
    quant::kernel::pack(&rows, inputs, outputs, &mut packed).expect("pack");
    let mut kernel_bias = vec![0; outputs];
    quant::kernel::kernel_bias(&rows, inputs, &bias, input.zero_point(), &mut kernel_bias)
        .expect("kernel bias");
    let rq =
        Requantize::new(&multipliers, &shifts, zero_point, range.0, range.1).expect("requantize");
    let mut y = vec![0i8; outputs];
    quant::kernel::dense_reference(&rows, &bias, input.zero_point(), &rq, x, &mut y)
        .expect("reference");
    if last {
        let softmax_out = QuantParams::new(1.0 / 256.0, -128).expect("softmax output");
        QSoftmax::prepare(1.0, output, softmax_out)
            .expect("softmax")
            .apply(&mut y);
    }
    let layer = QLayerData {
        rows,
        packed,
        bias,
        kernel_bias,
        multipliers,
        shifts,
        input,
        output,
        range,
    };
    (layer, y)
}

fn i32_array_literal(values: &[i32]) -> String {
    let items: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    format!("[{}]", items.join(", "))
}

fn i8_bytes(values: &[i8]) -> Vec<u8> {
    values.iter().map(|&v| v as u8).collect()
}

/// Writes `qmodel_data.rs`: the int8 demo network (packed and row-major weights in flash,
/// biases, kernel biases, multipliers, quantization), its input and the host's output for it
/// (TFLite Micro's reference loop, computed here).
fn write_int8_demo(out: &Path, shapes: &[(usize, usize); 3]) {
    let mut rng = Rng::new(Q_SEED);
    let input_params = QuantParams::new(1.0 / 255.0, -128).expect("input params");
    let input: Vec<i8> = (0..shapes[0].0)
        .map(|_| (rng.next_u32() % 256) as i32 - 128)
        .map(|v| v as i8)
        .collect();
    let mut x = input.clone();
    let mut params = input_params;
    let mut layers = Vec::new();
    for (k, &(_, outputs)) in shapes.iter().enumerate() {
        let (layer, y) = generate_qlayer(&mut rng, &x, params, outputs, k == 2);
        params = layer.output;
        layers.push(layer);
        x = y;
    }
    let mut code = String::new();
    writeln!(code, "// Generated by build.rs: do not edit.").unwrap();
    for (k, l) in layers.iter().enumerate() {
        let name = format!("QFC{}", k + 1);
        let (inputs, outputs) = shapes[k];
        for (kind, bytes) in [("PACKED", i8_bytes(&l.packed)), ("ROWS", i8_bytes(&l.rows))] {
            let path = out.join(format!("q{}.{}.bin", k + 1, kind.to_lowercase()));
            fs::write(&path, &bytes).expect("write int8 weights");
            writeln!(
                code,
                "/// int8 `fc{n}` weights ({inputs} inputs x {outputs} outputs), {kind}.\n\
                 pub static {name}_{kind}: Aligned<[u8; {len}]> = Aligned(*include_bytes!({path:?}));",
                n = k + 1,
                len = bytes.len(),
            )
            .unwrap();
        }
        for (what, values) in [
            ("BIAS", &l.bias),
            ("KERNEL_BIAS", &l.kernel_bias),
            ("MULTIPLIERS", &l.multipliers),
            ("SHIFTS", &l.shifts),
        ] {
            writeln!(
                code,
                "/// int8 `fc{n}` {doc}.\npub static {name}_{what}: [i32; {outputs}] = {};",
                i32_array_literal(values),
                n = k + 1,
                doc = what.to_lowercase().replace('_', " "),
            )
            .unwrap();
        }
        writeln!(
            code,
            "/// int8 `fc{n}`: input zero point, output zero point, clamp.\n\
             pub const {name}_ZERO_POINTS: (i8, i8, i8, i8) = ({}, {}, {}, {});",
            l.input.zero_point(),
            l.output.zero_point(),
            l.range.0,
            l.range.1,
            n = k + 1,
        )
        .unwrap();
    }
    let softmax_in = layers[2].output;
    writeln!(
        code,
        "/// The last layer's output quantization (the softmax's input): scale bits, zero point.\n\
         pub const QFC3_OUTPUT: (u32, i8) = ({:#010x}, {});\n\
         /// The int8 demo input.\npub static QINPUT: [i8; {n}] = {:?};\n\
         /// The host's int8 output for [`QINPUT`] (TFLite Micro's reference loop, softmax).\n\
         pub const QEXPECTED_OUTPUT: [i8; 10] = {:?};",
        softmax_in.scale().to_bits(),
        softmax_in.zero_point(),
        input,
        x,
        n = input.len(),
    )
    .unwrap();
    fs::write(out.join("qmodel_data.rs"), code).expect("write qmodel_data.rs");
}

/// Writes the `eval` program's model and the Rust that names its network type.
fn write_eval_model(out: &Path, demo_layers: &[LayerData], shapes: &[(usize, usize); 3]) {
    println!("cargo:rerun-if-env-changed=MICRODNN_MODEL");
    let (bytes, source) = match env::var_os("MICRODNN_MODEL") {
        Some(p) => {
            let path = PathBuf::from(p);
            println!("cargo:rerun-if-changed={}", path.display());
            let bytes = fs::read(&path).unwrap_or_else(|e| {
                panic!("MICRODNN_MODEL={}: cannot read it: {e}", path.display())
            });
            (bytes, path.display().to_string())
        }
        None => {
            let enc: Vec<EncodeLayer<'_>> = demo_layers
                .iter()
                .zip(shapes.iter().copied())
                .zip(ACTIVATIONS)
                .map(|((l, (inputs, outputs)), activation)| EncodeLayer {
                    inputs,
                    outputs,
                    activation,
                    dropout_rate: 0.0,
                    packed_weights: &l.packed,
                    bias: &l.bias,
                })
                .collect();
            let spec = ModelSpec {
                inputs: shapes[0].0,
                layers: &enc,
                input_transform: None,
            };
            let mut bytes = vec![0u8; microdnn::model::encoded_len(&spec)];
            microdnn::model::encode(&spec, &mut bytes).expect("encode the demo model");
            (
                bytes,
                "the demo network (no MICRODNN_MODEL given)".to_string(),
            )
        }
    };
    // Validate exactly as the device will (from 16-byte-aligned memory).
    let mut words = vec![0u128; bytes.len().div_ceil(16)];
    for (w, c) in words.iter_mut().zip(bytes.chunks(16)) {
        let mut b = [0u8; 16];
        b[..c.len()].copy_from_slice(c);
        *w = u128::from_le_bytes(b);
    }
    let aligned: &[u8] = &bytemuck::cast_slice::<u128, u8>(&words)[..bytes.len()];
    let view = ModelView::new_checked(aligned)
        .unwrap_or_else(|e| panic!("{source}: not a valid microdnn model: {e}"));
    let path = out.join("eval_model.udnn");
    fs::write(&path, &bytes).expect("write eval_model.udnn");

    // An int8 file gets an int8 network type (`qnetwork!`) and cfg `microdnn_eval_int8`.
    let int8 = view.weight_type() == microdnn::model::WeightType::Int8;
    println!("cargo:rustc-check-cfg=cfg(microdnn_eval_int8)");
    if int8 {
        println!("cargo:rustc-cfg=microdnn_eval_int8");
    }
    let (macro_name, dense) = if int8 {
        ("qnetwork", "QDense")
    } else {
        ("network", "Dense")
    };
    let mut code = String::new();
    writeln!(code, "// Generated by build.rs from {source}: do not edit.").unwrap();
    writeln!(
        code,
        "microdnn::{macro_name}! {{\n    /// The network of the compiled-in model ({source}).\n    pub struct Net(NetBuffers) {{"
    )
    .unwrap();
    for (k, l) in view.layers().enumerate() {
        writeln!(code, "        l{k}: {dense}<{}, {}>,", l.inputs, l.outputs).unwrap();
    }
    writeln!(code, "    }}\n}}").unwrap();
    writeln!(
        code,
        "/// The model file, 16-byte aligned in flash.\n\
         pub static MODEL: Aligned<[u8; {len}]> = Aligned(*include_bytes!({path:?}));\n\
         /// Network inputs.\npub const INPUTS: usize = {inputs};\n\
         /// Network outputs.\npub const OUTPUTS: usize = {outputs};\n\
         /// Where the model came from.\npub const SOURCE: &str = {source:?};",
        len = bytes.len(),
        inputs = view.inputs(),
        outputs = view.outputs(),
    )
    .unwrap();
    fs::write(out.join("eval_model.rs"), code).expect("write eval_model.rs");
}

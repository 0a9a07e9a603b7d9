//! Does a model fit a target? Decided from the model file before anything is built.
//!
//! The `eval` program (`firmware/src/bin/eval.rs`) keeps the model file in flash and, in RAM,
//! one buffer per layer output, the input twice (the received values and the transformed copy),
//! a frame decoder for one INFER frame, the answer's payload and encoded frame, a small receive
//! buffer and the stack. [`eval_needs`] adds these up with the link's own size functions;
//! [`EVAL_PROGRAM_FLASH`] and [`EVAL_PROGRAM_RAM`] bound the program itself (code, constants,
//! runtime statics), measured on the largest build (see `cargo xtask bench-mcu`'s table).

use std::fmt;

use microdnn::link;
use microdnn::ModelView;

use crate::Target;

/// Upper bound of the `eval` program's flash without its model (code, constants, vector table).
/// The largest measured is the soft-float Cortex-M0 build with libm and the STM32 HAL build.
pub const EVAL_PROGRAM_FLASH: u64 = 40 * 1024;
/// Upper bound of the `eval` program's RAM besides the model's buffers: runtime statics plus the
/// stack (a forward pass uses under 1 KiB; see `peak_stack_bytes` in `target/bench/mcu.json`).
pub const EVAL_PROGRAM_RAM: u64 = 4 * 1024;

/// Flash and RAM a model needs on a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needs {
    /// Bytes of flash: the model file plus [`EVAL_PROGRAM_FLASH`].
    pub flash_bytes: u64,
    /// Bytes of RAM: the model's buffers plus [`EVAL_PROGRAM_RAM`].
    pub ram_bytes: u64,
    /// The model file's size (part of `flash_bytes`).
    pub model_bytes: u64,
    /// Buffers the eval program allocates for this model (part of `ram_bytes`).
    pub buffer_bytes: u64,
}

/// What the `eval` program needs to serve `model` (a file of `file_bytes` bytes).
pub fn eval_needs(model: &ModelView<'_>, file_bytes: usize) -> Needs {
    let inputs = model.inputs();
    let outputs = model.outputs();
    let activations: usize = model.layers().map(|l| l.outputs * 4).sum();
    let payload = link::RESULT_HEADER_LEN + outputs * 4 + 64;
    let buffers = activations
        + 2 * inputs * 4
        + link::decoder_capacity(inputs * 4)
        + payload
        + link::max_encoded_len(payload)
        + 64;
    Needs {
        flash_bytes: file_bytes as u64 + EVAL_PROGRAM_FLASH,
        ram_bytes: buffers as u64 + EVAL_PROGRAM_RAM,
        model_bytes: file_bytes as u64,
        buffer_bytes: buffers as u64,
    }
}

/// A model too large for a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DoesNotFit {
    /// The target's name.
    pub target: &'static str,
    /// What the model needs.
    pub needs: Needs,
    /// What the board has (from its `memory.x`).
    pub flash_bytes: u64,
    /// RAM of the board.
    pub ram_bytes: u64,
}

impl fmt::Display for DoesNotFit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = &self.needs;
        write!(f, "the model does not fit target `{}`:", self.target)?;
        if n.flash_bytes > self.flash_bytes {
            write!(
                f,
                " flash: needs {} bytes (model file {} + eval program {}), the board has {}",
                n.flash_bytes, n.model_bytes, EVAL_PROGRAM_FLASH, self.flash_bytes
            )?;
        }
        if n.ram_bytes > self.ram_bytes {
            write!(
                f,
                "{} RAM: needs {} bytes (buffers {} + program and stack {}), the board has {}",
                if n.flash_bytes > self.flash_bytes {
                    ";"
                } else {
                    ""
                },
                n.ram_bytes,
                n.buffer_bytes,
                EVAL_PROGRAM_RAM,
                self.ram_bytes
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for DoesNotFit {}

/// Checks that `model` (a file of `file_bytes` bytes) fits `target`'s flash and RAM.
pub fn check(
    target: &Target,
    model: &ModelView<'_>,
    file_bytes: usize,
) -> Result<Needs, Box<dyn std::error::Error + Send + Sync>> {
    let memory = target.memory()?;
    let needs = eval_needs(model, file_bytes);
    if needs.flash_bytes > memory.flash_bytes || needs.ram_bytes > memory.ram_bytes {
        return Err(Box::new(DoesNotFit {
            target: target.name,
            needs,
            flash_bytes: memory.flash_bytes,
            ram_bytes: memory.ram_bytes,
        }));
    }
    Ok(needs)
}

/// [`check`] for a model file on disk (read, validated, then sized).
pub fn check_file(
    target: &Target,
    path: &std::path::Path,
) -> Result<Needs, Box<dyn std::error::Error + Send + Sync>> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    // ModelView wants 16-byte-aligned bytes, as on the device.
    let mut words = vec![0u128; bytes.len().div_ceil(16)];
    for (w, c) in words.iter_mut().zip(bytes.chunks(16)) {
        let mut b = [0u8; 16];
        b[..c.len()].copy_from_slice(c);
        *w = u128::from_le_bytes(b);
    }
    let aligned: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let view = ModelView::new_checked(&aligned[..bytes.len()])
        .map_err(|e| format!("{}: not a valid microdnn model: {e}", path.display()))?;
    check(target, &view, bytes.len())
}

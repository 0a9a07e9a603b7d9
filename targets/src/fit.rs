//! Does a model fit a target? Decided from the model file before anything is built.
//!
//! The `eval` program (`firmware/src/bin/eval.rs`) keeps the model file in flash and, in RAM,
//! one buffer per layer output, the input twice (the received values and the transformed copy),
//! the output, the three Monte-Carlo vectors (mean, standard deviation, one pass), a frame
//! decoder for the largest request (an MC frame with f32 inputs), the answer's payload and
//! encoded frame, a small receive buffer, and the stack. [`eval_needs`] adds these up with the
//! link's own size functions; [`EVAL_PROGRAM_FLASH`] and [`EVAL_RUNTIME_RAM`] bound the program
//! itself (code, constants, runtime statics), measured on the largest build.
//!
//! The stack: every buffer sized by the model is a static (above), so the stack holds only the
//! call chain's frames (serving loop, request, forward or Monte-Carlo pass, kernel, activations),
//! whatever the model. [`EVAL_STACK_BYTES`] bounds it on every board; the firmware measures its
//! own peak by stack painting and reports it in its INFO answer, and `cargo xtask demo` (part of
//! `cargo xtask test`) fails if a board's peak exceeds the bound.

use std::fmt;

use microdnn::link;
use microdnn::ModelView;

use crate::Target;

/// Upper bound of the `eval` program's flash without its model (code, constants, vector table).
/// The largest measured is the soft-float Cortex-M0 build with libm and the STM32 HAL build.
pub const EVAL_PROGRAM_FLASH: u64 = 40 * 1024;
/// Upper bound of the `eval` program's static RAM besides the model's buffers (the logger,
/// the instruction counter, the serial driver, the HAL).
pub const EVAL_RUNTIME_RAM: u64 = 2 * 1024;
/// Upper bound of the `eval` program's stack on every board, for any model (see the module
/// docs).
pub const EVAL_STACK_BYTES: u64 = 2 * 1024;
/// Upper bound of the `eval` program's RAM besides the model's buffers: runtime statics plus the
/// stack.
pub const EVAL_PROGRAM_RAM: u64 = EVAL_RUNTIME_RAM + EVAL_STACK_BYTES;

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
    let payload = link::answer_payload_capacity(outputs) + 64;
    let buffers = activations
        + 2 * inputs * 4
        + outputs * 4
        + 3 * outputs * 4
        + link::decoder_capacity(link::request_payload_capacity(inputs))
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

/// [`check`] for a model file on disk: its header and declared length are checked first, then
/// it is read once into aligned memory, validated and sized.
pub fn check_file(
    target: &Target,
    path: &std::path::Path,
) -> Result<Needs, Box<dyn std::error::Error + Send + Sync>> {
    use std::io::Read;
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let invalid =
        |e: microdnn::ModelError| format!("{}: not a valid microdnn model: {e}", path.display());
    let mut f = std::fs::File::open(path).map_err(cannot)?;
    let actual = f.metadata().map_err(cannot)?.len();
    let mut header = Vec::with_capacity(microdnn::model::HEADER_LEN);
    f.by_ref()
        .take(microdnn::model::HEADER_LEN as u64)
        .read_to_end(&mut header)
        .map_err(cannot)?;
    let declared = microdnn::model::declared_len(&header).map_err(invalid)? as u64;
    if declared != actual {
        return Err(format!(
            "{}: not a valid microdnn model: its header declares {declared} bytes but the file \
             has {actual}",
            path.display()
        )
        .into());
    }
    let memory = target.memory()?;
    if declared + EVAL_PROGRAM_FLASH > memory.flash_bytes {
        // The file alone overflows the flash: said without reading it (a huge file costs
        // nothing); the RAM is not examined.
        return Err(Box::new(DoesNotFit {
            target: target.name,
            needs: Needs {
                flash_bytes: declared + EVAL_PROGRAM_FLASH,
                ram_bytes: 0,
                model_bytes: declared,
                buffer_bytes: 0,
            },
            flash_bytes: memory.flash_bytes,
            ram_bytes: memory.ram_bytes,
        }));
    }
    // At most the board's flash (a few MiB) from here on.
    let mut bytes = header;
    f.read_to_end(&mut bytes).map_err(cannot)?;
    // ModelView wants 16-byte-aligned bytes, as on the device.
    let mut words = vec![0u128; bytes.len().div_ceil(16)];
    for (w, c) in words.iter_mut().zip(bytes.chunks(16)) {
        let mut b = [0u8; 16];
        b[..c.len()].copy_from_slice(c);
        *w = u128::from_le_bytes(b);
    }
    let aligned: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let view = ModelView::new_checked(&aligned[..bytes.len()]).map_err(invalid)?;
    check(target, &view, bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use microdnn::model::{encode, encoded_len, EncodeLayer, ModelSpec};

    /// Writes a model file of the given layer shapes (zero weights); returns its path and size.
    fn model_file(name: &str, shapes: &[(usize, usize)]) -> (std::path::PathBuf, usize) {
        let weights: Vec<Vec<f32>> = shapes.iter().map(|&(i, o)| vec![0.0; i * o]).collect();
        let biases: Vec<Vec<f32>> = shapes.iter().map(|&(_, o)| vec![0.0; o]).collect();
        let layers: Vec<EncodeLayer<'_>> = shapes
            .iter()
            .zip(weights.iter().zip(&biases))
            .map(|(&(inputs, outputs), (w, b))| EncodeLayer {
                inputs,
                outputs,
                activation: microdnn::Activation::Relu,
                dropout_rate: 0.0,
                packed_weights: w,
                bias: b,
            })
            .collect();
        let spec = ModelSpec {
            inputs: shapes[0].0,
            layers: &layers,
            input_transform: None,
        };
        let mut bytes = vec![0u8; encoded_len(&spec)];
        encode(&spec, &mut bytes).unwrap();
        let path = std::env::temp_dir().join(format!(
            "microdnn-targets-{}-{name}.udnn",
            std::process::id()
        ));
        std::fs::write(&path, &bytes).unwrap();
        (path, bytes.len())
    }

    #[test]
    fn mnist_fits_the_m4f_and_m55_not_the_m0_whose_sizes_are_named() {
        let (path, len) = model_file("mnist", &[(784, 128), (128, 64), (64, 10)]);
        let find = |n| crate::find(n).unwrap();
        // 109,386 parameters of 4 bytes, plus the header and layer table.
        assert!(len > 109_386 * 4 && len < 109_386 * 4 + 1024, "{len}");
        let needs = check_file(find("cortex-m4f"), &path).unwrap();
        assert_eq!(needs.flash_bytes, len as u64 + EVAL_PROGRAM_FLASH);
        // Activations (128 + 64 + 10) x 4, inputs twice, one INFER frame of 784 floats, the
        // answer and its frame, the receive chunk.
        assert!(
            needs.buffer_bytes > 808 + 2 * 784 * 4 + 784 * 4,
            "{needs:?}"
        );
        check_file(find("cortex-m55"), &path).unwrap();
        let e = check_file(find("cortex-m0"), &path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not fit target `cortex-m0`"), "{e}");
        assert!(e.contains(&format!("model file {len}")), "{e}");
        assert!(e.contains("the board has 262144"), "{e}");
        assert!(!e.contains("RAM"), "the RAM fits: {e}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_wide_input_overflows_the_m0_ram() {
        // 3000 inputs: 12 KB of weights fit the flash, but the input buffers do not fit 16 KiB.
        let (path, _) = model_file("wide", &[(3000, 1), (1, 2)]);
        let e = check_file(crate::find("cortex-m0").unwrap(), &path)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("RAM: needs") && e.contains("the board has 16384"),
            "{e}"
        );
        assert!(!e.contains("flash:"), "{e}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn the_header_is_checked_before_the_file_is_read() {
        let (path, len) = model_file("header", &[(8, 4), (4, 2)]);
        let m4f = crate::find("cortex-m4f").unwrap();
        // One byte more than the header declares: refused, naming both lengths.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.push(0);
        std::fs::write(&path, &bytes).unwrap();
        let e = check_file(m4f, &path).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "declares {len} bytes but the file has {}",
                len + 1
            )),
            "{e}"
        );
        // A 3 GB file whose header declares 3 GB (sparse: no disk used): refused from its
        // header without reading it.
        let huge = 3_000_000_000u64;
        bytes.truncate(64);
        bytes[16..20].copy_from_slice(&(huge as u32).to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(huge)
            .unwrap();
        let e = check_file(m4f, &path).unwrap_err().to_string();
        assert!(
            e.contains("does not fit target `cortex-m4f`") && e.contains("model file 3000000000"),
            "{e}"
        );
        std::fs::write(
            &path,
            b"not a model at all, not a model at all, not a model at all!!!!",
        )
        .unwrap();
        let e = check_file(m4f, &path).unwrap_err().to_string();
        assert!(e.contains("not a valid microdnn model"), "{e}");
        std::fs::remove_file(&path).unwrap();
    }
}

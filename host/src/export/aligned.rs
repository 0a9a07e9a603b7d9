//! The one aligned-bytes helper of the host: a model file in 16-byte-aligned memory, as the
//! device has it in flash, so [`microdnn::ModelView`] can read its tensors in place.

use microdnn::ModelView;

/// A model file's bytes copied to 16-byte-aligned memory, as a device has them in flash.
pub struct AlignedModel {
    words: Vec<u128>,
    len: usize,
}

impl AlignedModel {
    /// Copies `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        let mut words = vec![0u128; bytes.len().div_ceil(16)];
        for (w, c) in words.iter_mut().zip(bytes.chunks(16)) {
            let mut b = [0u8; 16];
            b[..c.len()].copy_from_slice(c);
            *w = u128::from_ne_bytes(b);
        }
        Self {
            words,
            len: bytes.len(),
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u128, u8>(&self.words)[..self.len]
    }

    /// Validates and views the model.
    pub fn view(&self) -> Result<ModelView<'_>, microdnn::ModelError> {
        ModelView::new_checked(self.bytes())
    }
}

/// Largest model file the host reads (`microdnn info`, `eval`): far more than any
/// microcontroller's flash, small enough to refuse an absurd file before allocating for it.
pub const MAX_MODEL_FILE_BYTES: u64 = 256 << 20;

/// Why a model file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadModelError {
    /// Opening or reading the file.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The header, or the whole file, is not a valid model.
    #[error("{path} is not a valid device model: {source}")]
    Invalid {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        source: microdnn::ModelError,
    },
    /// The header declares another length than the file has.
    #[error(
        "{path} is not a valid device model: its header declares {declared} bytes but the file \
         has {actual} (truncated or extended)"
    )]
    Length {
        /// The file.
        path: std::path::PathBuf,
        /// The length in the header.
        declared: u64,
        /// The file's size.
        actual: u64,
    },
    /// The file is larger than [`MAX_MODEL_FILE_BYTES`].
    #[error(
        "{path} declares {declared} bytes, more than the {max} bytes a model file may have (far \
         beyond any microcontroller's flash): not reading it"
    )]
    TooLarge {
        /// The file.
        path: std::path::PathBuf,
        /// The length in the header.
        declared: u64,
        /// [`MAX_MODEL_FILE_BYTES`].
        max: u64,
    },
}

impl AlignedModel {
    /// Reads and validates the model file at `path`, looking at its 64-byte header first: the
    /// magic, byte order and version, and the declared length, which must equal the file's size
    /// and be at most [`MAX_MODEL_FILE_BYTES`]. Only then is the file read, once, straight into
    /// aligned memory (no second copy), and validated whole ([`ModelView::new_checked`]).
    pub fn read(path: &std::path::Path) -> Result<Self, ReadModelError> {
        use std::io::Read;
        let io = |source| ReadModelError::Io {
            path: path.to_path_buf(),
            source,
        };
        let invalid = |source| ReadModelError::Invalid {
            path: path.to_path_buf(),
            source,
        };
        let mut f = std::fs::File::open(path).map_err(io)?;
        let actual = f.metadata().map_err(io)?.len();
        let mut header = [0u8; microdnn::model::HEADER_LEN];
        let mut filled = 0;
        while filled < header.len() {
            match f.read(&mut header[filled..]).map_err(io)? {
                0 => break,
                n => filled += n,
            }
        }
        let declared = microdnn::model::declared_len(&header[..filled]).map_err(invalid)? as u64;
        if declared > MAX_MODEL_FILE_BYTES {
            return Err(ReadModelError::TooLarge {
                path: path.to_path_buf(),
                declared,
                max: MAX_MODEL_FILE_BYTES,
            });
        }
        if declared != actual {
            return Err(ReadModelError::Length {
                path: path.to_path_buf(),
                declared,
                actual,
            });
        }
        let len = declared as usize;
        let mut words = vec![0u128; len.div_ceil(16)];
        let bytes = &mut bytemuck::cast_slice_mut::<u128, u8>(&mut words)[..len];
        bytes[..filled].copy_from_slice(&header[..filled]);
        f.read_exact(&mut bytes[filled..]).map_err(io)?;
        let model = AlignedModel { words, len };
        model.view().map_err(invalid)?;
        Ok(model)
    }
}

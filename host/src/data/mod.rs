//! Data sets: loaders (MNIST IDX, CSV), seeded splits and the input transform saved with a model.
//!
//! A [`Dataset`] is a row-major `f32` matrix `[len, features]` plus one class label per row.

pub mod csv;
pub mod idx;
pub mod split;
pub mod transform;

use std::io::Read;
use std::path::{Path, PathBuf};

pub use csv::{load_csv, load_csv_with, CsvOptions, CsvReport, Header};
pub use idx::{load_idx_images, load_idx_labels, load_mnist, MnistFiles};
pub use split::{stratified_split, Splits};
pub use transform::InputTransform;

/// The most classes a data set may have (labels are `0..MAX_CLASSES`): a confusion matrix is
/// `classes²` counts.
pub const MAX_CLASSES: usize = 1024;
/// The most inputs per example: 2^24.
pub const MAX_FEATURES: usize = 1 << 24;
/// The largest data file read (after gzip decompression): 1 GiB.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Errors of the data loaders. Each names the file and, where it applies, the line or byte
/// offset and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read (or its gzip stream is corrupt).
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error (shown in the message, not chained: it adds nothing).
        error: std::io::Error,
    },
    /// An IDX file does not start with the expected magic number.
    #[error("{path}: offset 0: expected IDX magic number {expected:#010x} ({what}), found {found:#010x}")]
    IdxMagic {
        /// The file.
        path: PathBuf,
        /// The expected magic number.
        expected: u32,
        /// The magic number found.
        found: u32,
        /// What kind of file was expected (`"images"`, `"labels"`).
        what: &'static str,
    },
    /// An IDX file is shorter or longer than its header says.
    #[error("{path}: offset {offset}: expected {expected} bytes of data after the header ({detail}), found {found}")]
    IdxSize {
        /// The file.
        path: PathBuf,
        /// Offset where the data starts.
        offset: usize,
        /// Bytes the header announces.
        expected: usize,
        /// Bytes present.
        found: usize,
        /// The header's dimensions.
        detail: String,
    },
    /// The image and label files disagree on the number of items.
    #[error("{images} has {n_images} images but {labels} has {n_labels} labels")]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// The label file.
        labels: PathBuf,
        /// Images in it.
        n_images: usize,
        /// Labels in it.
        n_labels: usize,
    },
    /// A malformed CSV line.
    #[error("{path} line {line}: {message}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was expected and what was found.
        message: String,
    },
    /// The file holds no data rows.
    #[error("{path}: no data rows")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file (or its decompressed content) is larger than [`MAX_FILE_BYTES`].
    #[error("{path}: {what} more than the {limit} bytes a data file may hold")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// What is too large (`is`, `decompresses to`).
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// A label outside the classes: at or above the configured class count, or above the
    /// largest class count supported when inferred.
    #[error("{path} {at}: label {label} {why}")]
    Label {
        /// The file.
        path: PathBuf,
        /// Where (`line 57`, `offset 8`).
        at: String,
        /// The label.
        label: u64,
        /// Why it is refused.
        why: String,
    },
    /// Two files of one data set disagree on the number of inputs per example.
    #[error(
        "{test} has {test_features} inputs per example but {train} has {train_features}: the \
         test images must have the training images' size"
    )]
    FeatureMismatch {
        /// The training file.
        train: PathBuf,
        /// Its inputs per example.
        train_features: usize,
        /// The test file.
        test: PathBuf,
        /// Its inputs per example.
        test_features: usize,
    },
    /// An IDX file whose header cannot describe a data set.
    #[error("{path}: {detail}")]
    Idx {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// A labelled data set: `x` is row-major `[len, features]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Inputs per example.
    pub features: usize,
    /// Number of classes (labels are `0..classes`).
    pub classes: usize,
    /// Row-major inputs, `len * features` values.
    pub x: Vec<f32>,
    /// One label per example.
    pub y: Vec<u32>,
}

impl Dataset {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// The inputs of example `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.features..(i + 1) * self.features]
    }

    /// A new data set with the examples at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let mut x = Vec::with_capacity(indices.len() * self.features);
        let mut y = Vec::with_capacity(indices.len());
        for &i in indices {
            x.extend_from_slice(self.row(i));
            y.push(self.y[i]);
        }
        Dataset {
            features: self.features,
            classes: self.classes,
            x,
            y,
        }
    }
}

/// Reads a whole file, transparently decompressing it if it starts with the gzip magic bytes.
/// A file (or decompressed content) larger than [`MAX_FILE_BYTES`] is an error, found before
/// it is all in memory.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    read_limited(path, MAX_FILE_BYTES)
}

/// [`read_maybe_gz`] with another limit.
fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, DataError> {
    let io = |error| DataError::Io {
        path: path.to_path_buf(),
        error,
    };
    let too_large = |what| DataError::TooLarge {
        path: path.to_path_buf(),
        what,
        limit,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    if file.metadata().map_err(io)?.len() > limit {
        return Err(too_large("is"));
    }
    let mut raw = Vec::new();
    file.take(limit + 1).read_to_end(&mut raw).map_err(io)?;
    if raw.len() as u64 > limit {
        return Err(too_large("is"));
    }
    if raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
        let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(1 << 26));
        flate2::read::MultiGzDecoder::new(&raw[..])
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| {
                io(std::io::Error::new(
                    e.kind(),
                    format!("corrupt gzip stream: {e}"),
                ))
            })?;
        if out.len() as u64 > limit {
            return Err(too_large("decompresses to"));
        }
        Ok(out)
    } else {
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_or_gzip_stream_larger_than_the_limit_is_refused_before_it_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.csv");
        std::fs::write(&plain, vec![b'1'; 2000]).unwrap();
        let e = read_limited(&plain, 1000).unwrap_err().to_string();
        assert!(e.contains("plain.csv: is more than the 1000 bytes"), "{e}");
        // A gzip bomb: 30 bytes that decompress to 2000.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&[b'1'; 2000]).unwrap();
        let bomb = dir.path().join("bomb.csv.gz");
        std::fs::write(&bomb, gz.finish().unwrap()).unwrap();
        let e = read_limited(&bomb, 1000).unwrap_err().to_string();
        assert!(
            e.contains("bomb.csv.gz: decompresses to more than the 1000 bytes"),
            "{e}"
        );
        assert_eq!(read_limited(&bomb, 2000).unwrap().len(), 2000);
    }
}

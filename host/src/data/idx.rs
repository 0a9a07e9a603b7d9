//! MNIST's IDX format: a big-endian `u32` magic number (`0x00000803` for images, `0x00000801` for
//! labels), one big-endian `u32` per dimension, then the raw `u8` data. Files may be gzipped
//! (detected by the gzip magic bytes, not by the name).

use std::path::{Path, PathBuf};

use super::{read_maybe_gz, DataError, Dataset, MAX_FEATURES};

/// Magic number of an IDX file of `u8` images (3 dimensions).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of `u8` labels (1 dimension).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn parse_header(
    path: &Path,
    bytes: &[u8],
    magic: u32,
    what: &'static str,
) -> Result<Vec<usize>, DataError> {
    let ndim = (magic & 0xff) as usize;
    let header = 4 + 4 * ndim;
    let found = if bytes.len() >= 4 {
        be_u32(bytes, 0)
    } else {
        0
    };
    if bytes.len() < 4 || found != magic {
        return Err(DataError::IdxMagic {
            path: path.to_path_buf(),
            expected: magic,
            found,
            what,
        });
    }
    if bytes.len() < header {
        return Err(DataError::IdxSize {
            path: path.to_path_buf(),
            offset: 4,
            expected: 4 * ndim,
            found: bytes.len() - 4,
            detail: format!("{ndim} dimension sizes"),
        });
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|d| be_u32(bytes, 4 + 4 * d) as usize)
        .collect();
    // The product is checked: 4 x 2^31 x 2^31 must not wrap to a small number.
    let Some(expected) = dims.iter().try_fold(1usize, |p, &d| p.checked_mul(d)) else {
        return Err(DataError::Idx {
            path: path.to_path_buf(),
            detail: format!(
                "offset 4: dimensions {} describe more bytes than a file can hold (found {})",
                dims_text(&dims),
                bytes.len() - header
            ),
        });
    };
    if bytes.len() - header != expected {
        return Err(DataError::IdxSize {
            path: path.to_path_buf(),
            offset: header,
            expected,
            found: bytes.len() - header,
            detail: format!("dimensions {}", dims_text(&dims)),
        });
    }
    Ok(dims)
}

/// `60000 x 28 x 28`.
fn dims_text(dims: &[usize]) -> String {
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(" x ")
}

/// Loads IDX images (`u8`, `[n, rows, cols]`) as `f32` pixel values 0..255, row-major
/// `[n, rows * cols]`. Returns the pixels and the number of images.
/// Images of 0 rows or columns, no images, or more than [`crate::data::MAX_FEATURES`] pixels are
/// errors.
pub fn load_idx_images(path: &Path) -> Result<(Vec<f32>, usize, usize), DataError> {
    let bytes = read_maybe_gz(path)?;
    let dims = parse_header(path, &bytes, IMAGES_MAGIC, "images")?;
    // The product fits (the data is present); each dimension is at least 1.
    let features = dims[1] * dims[2];
    if dims.contains(&0) || features > MAX_FEATURES {
        return Err(DataError::Idx {
            path: path.to_path_buf(),
            detail: format!(
                "offset 4: dimensions {}: expected at least one image, row and column and at \
                 most {MAX_FEATURES} pixels per image",
                dims_text(&dims)
            ),
        });
    }
    let x = bytes[16..].iter().map(|&b| b as f32).collect();
    Ok((x, dims[0], features))
}

/// Loads IDX labels (`u8`, `[n]`).
pub fn load_idx_labels(path: &Path) -> Result<Vec<u32>, DataError> {
    let bytes = read_maybe_gz(path)?;
    parse_header(path, &bytes, LABELS_MAGIC, "labels")?;
    Ok(bytes[8..].iter().map(|&b| b as u32).collect())
}

/// Loads an images file and its labels file as a [`Dataset`] with 10 classes (or more if a
/// label is larger), checking that the counts agree.
pub fn load_idx_pair(images: &Path, labels: &Path) -> Result<Dataset, DataError> {
    let (x, n, features) = load_idx_images(images)?;
    let y = load_idx_labels(labels)?;
    if y.len() != n {
        return Err(DataError::CountMismatch {
            images: images.to_path_buf(),
            labels: labels.to_path_buf(),
            n_images: n,
            n_labels: y.len(),
        });
    }
    let classes = (y.iter().copied().max().unwrap_or(0) as usize + 1).max(10);
    Ok(Dataset {
        features,
        classes,
        x,
        y,
    })
}

/// The four files of MNIST in a folder, under their official names, gzipped (`.gz`) or not.
#[derive(Clone, Debug)]
pub struct MnistFiles {
    /// Training images.
    pub train_images: PathBuf,
    /// Training labels.
    pub train_labels: PathBuf,
    /// Test images.
    pub test_images: PathBuf,
    /// Test labels.
    pub test_labels: PathBuf,
}

impl MnistFiles {
    /// The files in `dir`, preferring `NAME.gz` and falling back to `NAME`.
    pub fn in_dir(dir: &Path) -> Self {
        let pick = |name: &str| {
            let gz = dir.join(format!("{name}.gz"));
            if gz.exists() {
                gz
            } else {
                dir.join(name)
            }
        };
        Self {
            train_images: pick("train-images-idx3-ubyte"),
            train_labels: pick("train-labels-idx1-ubyte"),
            test_images: pick("t10k-images-idx3-ubyte"),
            test_labels: pick("t10k-labels-idx1-ubyte"),
        }
    }
}

/// Loads MNIST's official training (60,000) and test (10,000) sets from a folder.
/// The images of both sets must have the same number of pixels.
pub fn load_mnist(dir: &Path) -> Result<(Dataset, Dataset), DataError> {
    let f = MnistFiles::in_dir(dir);
    let train = load_idx_pair(&f.train_images, &f.train_labels)?;
    let test = load_idx_pair(&f.test_images, &f.test_labels)?;
    if test.features != train.features {
        return Err(DataError::FeatureMismatch {
            train: f.train_images,
            train_features: train.features,
            test: f.test_images,
            test_features: test.features,
        });
    }
    Ok((train, test))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn loads_raw_and_gzipped_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let img = idx(IMAGES_MAGIC, &[3, 2, 2], &(0..12).collect::<Vec<u8>>());
        let lab = idx(LABELS_MAGIC, &[3], &[4, 0, 9]);
        std::fs::write(dir.path().join("i"), &img).unwrap();
        std::fs::write(dir.path().join("l.gz"), gz(&lab)).unwrap();
        let d = load_idx_pair(&dir.path().join("i"), &dir.path().join("l.gz")).unwrap();
        assert_eq!(d.features, 4);
        assert_eq!(d.len(), 3);
        assert_eq!(d.row(2), &[8.0, 9.0, 10.0, 11.0]);
        assert_eq!(d.y, vec![4, 0, 9]);
        assert_eq!(d.classes, 10);
    }

    #[test]
    fn bad_magic_truncation_and_count_mismatch_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("imgs");
        // Labels magic in an images file.
        std::fs::write(&p, idx(LABELS_MAGIC, &[1, 1, 1], &[0])).unwrap();
        let e = load_idx_images(&p).unwrap_err().to_string();
        assert!(
            e.contains("imgs") && e.contains("0x00000803") && e.contains("0x00000801"),
            "{e}"
        );
        // Truncated data.
        std::fs::write(&p, gz(&idx(IMAGES_MAGIC, &[2, 2, 2], &[0; 7]))).unwrap();
        let e = load_idx_images(&p).unwrap_err().to_string();
        assert!(
            e.contains("offset 16") && e.contains("expected 8 bytes") && e.contains("found 7"),
            "{e}"
        );
        // Truncated header.
        std::fs::write(&p, &IMAGES_MAGIC.to_be_bytes()[..]).unwrap();
        assert!(matches!(
            load_idx_images(&p),
            Err(DataError::IdxSize { .. })
        ));
        // Count mismatch.
        std::fs::write(&p, idx(IMAGES_MAGIC, &[2, 1, 1], &[0, 0])).unwrap();
        let l = dir.path().join("labs");
        std::fs::write(&l, idx(LABELS_MAGIC, &[3], &[0, 0, 0])).unwrap();
        let e = load_idx_pair(&p, &l).unwrap_err().to_string();
        assert!(e.contains("2 images") && e.contains("3 labels"), "{e}");
        // Corrupt gzip and missing file.
        let mut bad = gz(&idx(LABELS_MAGIC, &[3], &[0, 0, 0]));
        let n = bad.len();
        bad.truncate(n - 10);
        std::fs::write(&l, bad).unwrap();
        let e = load_idx_labels(&l).unwrap_err().to_string();
        assert!(e.contains("labs"), "{e}");
        let e = load_idx_labels(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn headers_that_describe_no_data_set_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("imgs");
        // 4 x 2^31 x 2^31 wraps to 0 when multiplied unchecked: a 16-byte file passed.
        std::fs::write(&p, idx(IMAGES_MAGIC, &[4, 1 << 31, 1 << 31], &[])).unwrap();
        let e = load_idx_images(&p).unwrap_err().to_string();
        assert!(
            e.contains("describe more bytes than a file can hold"),
            "{e}"
        );
        // Zero rows or columns, or no images: the transform divided by zero features.
        for dims in [[20, 0, 5], [20, 5, 0], [0, 100_000, 100_000]] {
            std::fs::write(&p, idx(IMAGES_MAGIC, &dims, &[])).unwrap();
            let e = load_idx_images(&p).unwrap_err().to_string();
            assert!(
                e.contains("expected at least one image, row and column"),
                "{e}"
            );
        }
    }

    #[test]
    fn test_images_must_have_the_training_images_size() {
        let dir = tempfile::tempdir().unwrap();
        let w = |name: &str, bytes: Vec<u8>| std::fs::write(dir.path().join(name), bytes).unwrap();
        w(
            "train-images-idx3-ubyte",
            idx(IMAGES_MAGIC, &[2, 2, 2], &[0; 8]),
        );
        w("train-labels-idx1-ubyte", idx(LABELS_MAGIC, &[2], &[0, 1]));
        w(
            "t10k-images-idx3-ubyte",
            idx(IMAGES_MAGIC, &[1, 3, 3], &[0; 9]),
        );
        w("t10k-labels-idx1-ubyte", idx(LABELS_MAGIC, &[1], &[1]));
        // Training ran all its epochs and panicked when it came to the test set.
        let e = load_mnist(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("t10k-images-idx3-ubyte has 9 inputs per example but")
                && e.contains("train-images-idx3-ubyte has 4"),
            "{e}"
        );
    }
}

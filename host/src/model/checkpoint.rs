//! Checkpoints in the safetensors format, laid out like a PyTorch `nn.Sequential` state dict.
//!
//! Tensors are named `{index}.{name}` by the layer's position in the `Sequential`:
//! `Linear` → `i.weight` `[out, in]` f32 and `i.bias` `[out]`; `BatchNorm1d` → `i.weight`
//! (gamma), `i.bias` (beta), `i.running_mean`, `i.running_var` (f32 `[features]`) and
//! `i.num_batches_tracked` (i64, shape `[]`). Activations and dropout have no tensors. So in
//! PyTorch, `model.load_state_dict(safetensors.torch.load_file("model.safetensors"))` works for
//! the same `nn.Sequential`.
//!
//! Metadata (string map): `microdnn.format_version` ([`FORMAT_VERSION`]),
//! `microdnn.architecture` (JSON list of [`LayerSpec`]), `microdnn.input_transform` (JSON
//! `{"scale": [...], "offset": [...]}`), `microdnn.classes` (decimal, the network's outputs),
//! `microdnn.checksum` ([`CHECKSUM_KEY`]: CRC-32 of the other metadata, the tensor index and the
//! tensor bytes, verified on load); a training run adds `microdnn.data` (how to rebuild its test
//! split, see `train::DataRecord`).
//!
//! Loading checks sizes against the bytes actually present before allocating anything, and
//! refuses non-finite values. Every file is written atomically: to a temporary file in the same
//! folder, fsynced, then renamed over the target, so a crash or an error never leaves a partial
//! checkpoint ([`remove_stale_temporaries`] clears what a killed process left behind).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use crate::data::InputTransform;
use crate::model::{ArchitectureError, Layer, LayerSpec, Model, Sequential};

/// Version of the checkpoint layout (2: with [`CHECKSUM_KEY`]; version 1 files, without it, are
/// still read).
pub const FORMAT_VERSION: &str = "2";
/// Metadata key of the checksum: `crc32:` and 8 hex digits.
pub const CHECKSUM_KEY: &str = "microdnn.checksum";
/// File name of the model checkpoint in a run folder.
pub const MODEL_FILE: &str = "model.safetensors";

/// Checkpoint errors.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading or writing failed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error (shown in the message, not chained).
        error: std::io::Error,
    },
    /// Not a valid safetensors file.
    #[error("{path}: not a valid safetensors file: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A metadata entry is missing or malformed.
    #[error("{path}: metadata {key}: {message}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The architecture in the metadata is not a valid layer stack.
    #[error("{path}: metadata microdnn.architecture: {error}")]
    Architecture {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: ArchitectureError,
    },
    /// A safetensors file without microdnn's metadata (e.g. a PyTorch state dict).
    #[error("{path}: not a microdnn checkpoint (no microdnn metadata)")]
    NotACheckpoint {
        /// The file.
        path: PathBuf,
    },
    /// The checksum does not match the content: the file was damaged or edited.
    #[error(
        "{path}: checksum mismatch (stored {stored}, content {computed}): the file is damaged"
    )]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The checksum in the metadata.
        stored: String,
        /// The checksum of the content.
        computed: String,
    },
    /// A tensor is missing or has the wrong type or shape.
    #[error("{path}: tensor {name}: {message}")]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// An owned tensor to write.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<usize>,
    /// Little-endian bytes.
    pub data: Vec<u8>,
}

impl Tensor {
    /// An f32 tensor.
    pub fn f32(shape: Vec<usize>, values: &[f32]) -> Self {
        Self {
            dtype: Dtype::F32,
            shape,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// An i64 scalar (shape `[]`).
    pub fn i64_scalar(v: i64) -> Self {
        Self {
            dtype: Dtype::I64,
            shape: vec![],
            data: v.to_le_bytes().to_vec(),
        }
    }

    /// A u8 vector.
    pub fn u8(values: &[u8]) -> Self {
        Self {
            dtype: Dtype::U8,
            shape: vec![values.len()],
            data: values.to_vec(),
        }
    }
}

/// The state dict of `seq` with names prefixed by `prefix` (empty for a model file).
pub fn state_dict(seq: &Sequential, prefix: &str) -> Vec<(String, Tensor)> {
    let mut out = Vec::new();
    for (i, l) in seq.layers.iter().enumerate() {
        match l {
            Layer::Linear(l) => {
                out.push((
                    format!("{prefix}{i}.weight"),
                    Tensor::f32(vec![l.out_features, l.in_features], &l.weight),
                ));
                out.push((
                    format!("{prefix}{i}.bias"),
                    Tensor::f32(vec![l.out_features], &l.bias),
                ));
            }
            Layer::BatchNorm1d(b) => {
                let f = vec![b.features];
                out.push((
                    format!("{prefix}{i}.weight"),
                    Tensor::f32(f.clone(), &b.weight),
                ));
                out.push((format!("{prefix}{i}.bias"), Tensor::f32(f.clone(), &b.bias)));
                out.push((
                    format!("{prefix}{i}.running_mean"),
                    Tensor::f32(f.clone(), &b.running_mean),
                ));
                out.push((
                    format!("{prefix}{i}.running_var"),
                    Tensor::f32(f, &b.running_var),
                ));
                out.push((
                    format!("{prefix}{i}.num_batches_tracked"),
                    Tensor::i64_scalar(b.num_batches_tracked),
                ));
            }
            _ => {}
        }
    }
    out
}

/// A parsed safetensors file with its path, for typed access and precise errors.
pub struct TensorFile<'a> {
    path: &'a Path,
    st: SafeTensors<'a>,
    metadata: HashMap<String, String>,
    data_len: usize,
}

impl<'a> TensorFile<'a> {
    /// Parses `bytes` read from `path`; a [`CHECKSUM_KEY`] in the metadata is verified.
    pub fn parse(path: &'a Path, bytes: &'a [u8]) -> Result<Self, CheckpointError> {
        let format = |e: safetensors::SafeTensorError| CheckpointError::Format {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let (n, meta) = SafeTensors::read_metadata(bytes).map_err(format)?;
        let metadata = meta.metadata().clone().unwrap_or_default();
        let st = SafeTensors::deserialize(bytes).map_err(format)?;
        let data = &bytes[(8 + n).min(bytes.len())..];
        if let Some(stored) = metadata.get(CHECKSUM_KEY) {
            // Offsets were validated by the parser above.
            let index: Vec<(String, Dtype, Vec<usize>, &[u8])> = meta
                .tensors()
                .into_iter()
                .map(|(name, t)| {
                    let (a, b) = t.data_offsets;
                    (
                        name,
                        t.dtype,
                        t.shape.clone(),
                        data.get(a..b).unwrap_or(&[]),
                    )
                })
                .collect();
            let computed = checksum(&metadata, &index);
            if *stored != computed {
                return Err(CheckpointError::Checksum {
                    path: path.to_path_buf(),
                    stored: stored.clone(),
                    computed,
                });
            }
        }
        Ok(Self {
            path,
            st,
            metadata,
            data_len: data.len(),
        })
    }

    /// Whether the file carries microdnn's metadata and the checksum its version requires.
    pub fn check_microdnn(&self) -> Result<(), CheckpointError> {
        let Ok(version) = self.meta("microdnn.format_version") else {
            return Err(CheckpointError::NotACheckpoint {
                path: self.path.to_path_buf(),
            });
        };
        match version {
            "1" => Ok(()),
            FORMAT_VERSION => self.meta(CHECKSUM_KEY).map(|_| ()),
            other => Err(CheckpointError::Metadata {
                path: self.path.to_path_buf(),
                key: "microdnn.format_version".into(),
                message: format!(
                    "version {other:?}: this microdnn reads versions 1 and {FORMAT_VERSION}"
                ),
            }),
        }
    }

    /// A metadata value.
    pub fn meta(&self, key: &str) -> Result<&str, CheckpointError> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| CheckpointError::Metadata {
                path: self.path.to_path_buf(),
                key: key.into(),
                message: "missing".into(),
            })
    }

    /// A metadata value parsed as JSON.
    pub fn meta_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<T, CheckpointError> {
        serde_json::from_str(self.meta(key)?).map_err(|e| CheckpointError::Metadata {
            path: self.path.to_path_buf(),
            key: key.into(),
            message: e.to_string(),
        })
    }

    fn tensor_err(&self, name: &str, message: String) -> CheckpointError {
        CheckpointError::Tensor {
            path: self.path.to_path_buf(),
            name: name.into(),
            message,
        }
    }

    /// Whether a tensor exists.
    pub fn has(&self, name: &str) -> bool {
        self.st.tensor(name).is_ok()
    }

    /// An f32 tensor of exactly `shape`.
    pub fn f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, CheckpointError> {
        let t = self
            .st
            .tensor(name)
            .map_err(|_| self.tensor_err(name, "missing".into()))?;
        if t.dtype() != Dtype::F32 {
            return Err(self.tensor_err(name, format!("expected dtype F32, found {:?}", t.dtype())));
        }
        if t.shape() != shape {
            return Err(self.tensor_err(
                name,
                format!("expected shape {shape:?}, found {:?}", t.shape()),
            ));
        }
        let v: Vec<f32> = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(self.tensor_err(name, format!("element {i} is {}", v[i])));
        }
        Ok(v)
    }

    /// An i64 scalar (shape `[]`; `[1]` is accepted too).
    pub fn i64_scalar(&self, name: &str) -> Result<i64, CheckpointError> {
        let t = self
            .st
            .tensor(name)
            .map_err(|_| self.tensor_err(name, "missing".into()))?;
        if t.dtype() != Dtype::I64 || t.data().len() != 8 {
            return Err(self.tensor_err(
                name,
                format!(
                    "expected an I64 scalar, found {:?} {:?}",
                    t.dtype(),
                    t.shape()
                ),
            ));
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(t.data());
        Ok(i64::from_le_bytes(b))
    }

    /// A u8 vector.
    pub fn u8(&self, name: &str) -> Result<Vec<u8>, CheckpointError> {
        let t = self
            .st
            .tensor(name)
            .map_err(|_| self.tensor_err(name, "missing".into()))?;
        if t.dtype() != Dtype::U8 {
            return Err(self.tensor_err(name, format!("expected dtype U8, found {:?}", t.dtype())));
        }
        Ok(t.data().to_vec())
    }

    /// Fills the parameters of `seq` (whose architecture is already built) from tensors named
    /// `{prefix}{index}.{name}`.
    pub fn load_into(&self, seq: &mut Sequential, prefix: &str) -> Result<(), CheckpointError> {
        for (i, l) in seq.layers.iter_mut().enumerate() {
            match l {
                Layer::Linear(l) => {
                    l.weight = self.f32(
                        &format!("{prefix}{i}.weight"),
                        &[l.out_features, l.in_features],
                    )?;
                    l.bias = self.f32(&format!("{prefix}{i}.bias"), &[l.out_features])?;
                }
                Layer::BatchNorm1d(b) => {
                    let f = [b.features];
                    b.weight = self.f32(&format!("{prefix}{i}.weight"), &f)?;
                    b.bias = self.f32(&format!("{prefix}{i}.bias"), &f)?;
                    b.running_mean = self.f32(&format!("{prefix}{i}.running_mean"), &f)?;
                    b.running_var = self.f32(&format!("{prefix}{i}.running_var"), &f)?;
                    b.num_batches_tracked =
                        self.i64_scalar(&format!("{prefix}{i}.num_batches_tracked"))?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The architecture stored in the metadata, with zero parameters. Its parameters must fit
    /// in the tensor bytes the file holds (checked before anything is allocated).
    pub fn architecture(&self) -> Result<Sequential, CheckpointError> {
        let specs: Vec<LayerSpec> = self.meta_json("microdnn.architecture")?;
        let architecture = |error| CheckpointError::Architecture {
            path: self.path.to_path_buf(),
            error,
        };
        let declared = specs
            .iter()
            .try_fold(0u64, |sum, s| sum.checked_add(s.parameter_count()?));
        let room = (self.data_len / 4) as u64;
        if declared.is_none_or(|d| d > room) {
            return Err(architecture(ArchitectureError::TooLarge {
                declared: declared.unwrap_or(u64::MAX),
                available: format!("the file holds only {} bytes of tensors", self.data_len),
            }));
        }
        let layers = specs
            .iter()
            .map(Layer::from_spec)
            .collect::<Result<Vec<_>, _>>()
            .map_err(architecture)?;
        let seq = Sequential::new(layers);
        seq.validate().map_err(architecture)?;
        Ok(seq)
    }
}

/// The metadata map of a model.
pub fn model_metadata(model: &Model) -> HashMap<String, String> {
    let mut m = HashMap::new();
    m.insert("microdnn.format_version".into(), FORMAT_VERSION.into());
    m.insert(
        "microdnn.architecture".into(),
        serde_json::to_string(&model.net.specs()).unwrap(),
    );
    m.insert(
        "microdnn.input_transform".into(),
        serde_json::to_string(&model.transform).unwrap(),
    );
    m.insert("microdnn.classes".into(), model.classes.to_string());
    m
}

/// The name safetensors gives a dtype in its header (`F32`, `I64`, ...).
fn dtype_name(d: Dtype) -> String {
    match serde_json::to_value(d) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{d:?}"),
    }
}

/// The checksum of a file's content: CRC-32 of the metadata other than the checksum (sorted by
/// key), then of each tensor sorted by name (name, dtype, shape, bytes), written `crc32:` and 8
/// hex digits. Independent of how the header and the tensors are laid out, so a file written
/// again by another safetensors writer still verifies.
fn checksum(
    metadata: &HashMap<String, String>,
    tensors: &[(String, Dtype, Vec<usize>, &[u8])],
) -> String {
    let mut h = crc32fast::Hasher::new();
    let mut keys: Vec<_> = metadata
        .iter()
        .filter(|(k, _)| *k != CHECKSUM_KEY)
        .collect();
    keys.sort();
    for (k, v) in keys {
        for part in [k.as_bytes(), b"\0", v.as_bytes(), b"\0"] {
            h.update(part);
        }
    }
    let mut tensors: Vec<_> = tensors.iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, dtype, shape, bytes) in tensors {
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        let line = format!("{name}\0{}\0{}\0", dtype_name(*dtype), dims.join(","));
        h.update(line.as_bytes());
        h.update(bytes);
    }
    format!("crc32:{:08x}", h.finalize())
}

/// Serialises named tensors and metadata to safetensors bytes, with the [`CHECKSUM_KEY`] added.
///
/// Written here rather than by `safetensors::serialize` so that the bytes are deterministic
/// (JSON keys sorted; the crate's metadata map has a random order): the same model always gives
/// the same file. Layout: `u64` LE header length, the JSON header padded with spaces to a
/// multiple of 8, then the tensors' bytes in the given order. The result is validated by
/// parsing it back with the `safetensors` crate in tests.
pub fn to_bytes(tensors: &[(String, Tensor)], mut metadata: HashMap<String, String>) -> Vec<u8> {
    let index: Vec<(String, Dtype, Vec<usize>, &[u8])> = tensors
        .iter()
        .map(|(name, t)| (name.clone(), t.dtype, t.shape.clone(), &t.data[..]))
        .collect();
    metadata.insert(CHECKSUM_KEY.into(), checksum(&metadata, &index));
    let mut header = serde_json::Map::new();
    let meta: serde_json::Map<String, serde_json::Value> = metadata
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    header.insert("__metadata__".into(), serde_json::Value::Object(meta));
    let mut offset = 0usize;
    for (name, t) in tensors {
        let end = offset + t.data.len();
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype_name(t.dtype), "shape": t.shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut json = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap_or_default();
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + json.len() + offset);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    for (_, t) in tensors {
        out.extend_from_slice(&t.data);
    }
    out
}

/// The bytes of a model checkpoint.
pub fn model_bytes(model: &Model) -> Vec<u8> {
    model_bytes_with(model, &[])
}

/// The bytes of a model checkpoint with `extra` metadata entries (e.g. a run's data record).
pub fn model_bytes_with(model: &Model, extra: &[(&str, String)]) -> Vec<u8> {
    let mut meta = model_metadata(model);
    for (k, v) in extra {
        meta.insert((*k).to_string(), v.clone());
    }
    to_bytes(&state_dict(&model.net, ""), meta)
}

/// What the temporary files of [`atomic_write`] are called: `.NAME.tmpPID`.
const TMP_MARK: &str = ".tmp";

/// Removes the temporary files of [`atomic_write`] (`.NAME.tmpPID`) that a killed process left
/// in `dir`; returns their names. Call it only while no other process writes into `dir` (a
/// training run holds the folder's lock).
pub fn remove_stale_temporaries(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = name
            .strip_prefix('.')
            .and_then(|n| n.rsplit_once(TMP_MARK))
            .is_some_and(|(base, pid)| {
                !base.is_empty() && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
            });
        if stale && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
            removed.push(name);
        }
    }
    Ok(removed)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, `fsync`, rename.
/// On error the temporary file is removed and any previous file at `path` is untouched.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let io = |error| CheckpointError::Io {
        path: path.to_path_buf(),
        error,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}{TMP_MARK}{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // Make the rename durable (best effort: not every platform can open a folder).
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// `path` itself, or `path/model.safetensors` if `path` is a folder.
pub fn resolve_model_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(MODEL_FILE)
    } else {
        path.to_path_buf()
    }
}

/// Saves a model checkpoint atomically.
pub fn save_model(path: &Path, model: &Model) -> Result<(), CheckpointError> {
    atomic_write(path, &model_bytes(model))
}

/// Saves a model checkpoint with `extra` metadata entries atomically.
pub fn save_model_with(
    path: &Path,
    model: &Model,
    extra: &[(&str, String)],
) -> Result<(), CheckpointError> {
    atomic_write(path, &model_bytes_with(model, extra))
}

/// Loads a model checkpoint (a file, or a run folder holding `model.safetensors`): checksum,
/// sizes, finite values, and a class count equal to the network's outputs are checked.
pub fn load_model(path: &Path) -> Result<Model, CheckpointError> {
    let path = resolve_model_path(path);
    let bytes = std::fs::read(&path).map_err(|error| CheckpointError::Io {
        path: path.clone(),
        error,
    })?;
    let file = TensorFile::parse(&path, &bytes)?;
    file.check_microdnn()?;
    let mut net = file.architecture()?;
    file.load_into(&mut net, "")?;
    let transform: InputTransform = file.meta_json("microdnn.input_transform")?;
    let meta_err = |key: &str, message: String| CheckpointError::Metadata {
        path: path.clone(),
        key: key.into(),
        message,
    };
    let classes: usize = file
        .meta("microdnn.classes")?
        .parse()
        .map_err(|e| meta_err("microdnn.classes", format!("{e}")))?;
    let outputs = net.out_features();
    if classes != outputs || classes > crate::data::MAX_CLASSES {
        return Err(meta_err(
            "microdnn.classes",
            format!(
                "{classes} classes, but the network has {outputs} outputs{}",
                if outputs > crate::data::MAX_CLASSES {
                    format!(
                        " (at most {} classes are supported)",
                        crate::data::MAX_CLASSES
                    )
                } else {
                    String::new()
                }
            ),
        ));
    }
    let inputs = net.in_features();
    if transform.scale.len() != inputs || transform.offset.len() != inputs {
        return Err(meta_err(
            "microdnn.input_transform",
            format!(
                "{} scales and {} offsets for a network of {inputs} inputs",
                transform.scale.len(),
                transform.offset.len()
            ),
        ));
    }
    if let Some(v) = transform
        .scale
        .iter()
        .chain(&transform.offset)
        .find(|v| !v.is_finite())
    {
        return Err(meta_err(
            "microdnn.input_transform",
            format!("a value is {v}"),
        ));
    }
    Ok(Model {
        net,
        transform,
        classes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BatchNorm1d, Linear};
    use microdnn::Activation;

    fn sample_model() -> Model {
        let mut bn = BatchNorm1d::new(3, 1e-5, 0.1);
        bn.running_mean = vec![0.1, 0.2, 0.3];
        bn.num_batches_tracked = 42;
        Model {
            net: Sequential::new(vec![
                Layer::Linear(
                    Linear::from_parts(
                        2,
                        3,
                        vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                        vec![0.5, -0.5, 0.0],
                    )
                    .unwrap(),
                ),
                Layer::BatchNorm1d(bn),
                Layer::Activation(Activation::LeakyRelu { slope: 0.2 }),
                Layer::Dropout(0.25),
                Layer::Linear(Linear::from_parts(3, 2, vec![0.0; 6], vec![1.0, 2.0]).unwrap()),
            ]),
            transform: InputTransform {
                scale: vec![0.5, 2.0],
                offset: vec![1.0, -1.0],
            },
            classes: 2,
        }
    }

    #[test]
    fn checkpoint_round_trip_with_pytorch_names() {
        let dir = tempfile::tempdir().unwrap();
        let m = sample_model();
        save_model(&dir.path().join(MODEL_FILE), &m).unwrap();
        let back = load_model(dir.path()).unwrap();
        assert_eq!(back, m);
        let bytes = std::fs::read(dir.path().join(MODEL_FILE)).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut names = st.names();
        names.sort();
        assert_eq!(
            names,
            [
                "0.bias",
                "0.weight",
                "1.bias",
                "1.num_batches_tracked",
                "1.running_mean",
                "1.running_var",
                "1.weight",
                "4.bias",
                "4.weight"
            ]
        );
        assert_eq!(st.tensor("0.weight").unwrap().shape(), &[3, 2]);
        assert_eq!(
            st.tensor("1.num_batches_tracked").unwrap().dtype(),
            Dtype::I64
        );
        assert_eq!(
            st.tensor("1.num_batches_tracked").unwrap().shape(),
            &[] as &[usize]
        );
        // Deterministic bytes, readable by the reference parser (checked above).
        assert_eq!(model_bytes(&m), bytes);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn atomic_write_leaves_no_partial_file_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join(MODEL_FILE);
        std::fs::write(&target, b"old").unwrap();
        // Renaming a file over a non-empty folder fails: the old target must survive intact
        // and no temporary file may remain.
        let blocked = dir.path().join("sub");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("x"), b"x").unwrap();
        assert!(atomic_write(&blocked, b"new").is_err());
        assert!(atomic_write(&dir.path().join("missing-dir").join("f"), b"new").is_err());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        atomic_write(&target, b"new").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
    }

    #[test]
    fn corrupt_or_mismatched_checkpoints_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.safetensors");
        std::fs::write(&p, b"garbage").unwrap();
        assert!(matches!(
            load_model(&p),
            Err(CheckpointError::Format { .. })
        ));
        let m = sample_model();
        let mut sd = state_dict(&m.net, "");
        sd.retain(|(n, _)| n != "4.bias");
        std::fs::write(&p, to_bytes(&sd, model_metadata(&m))).unwrap();
        let e = load_model(&p).unwrap_err().to_string();
        assert!(e.contains("4.bias") && e.contains("missing"), "{e}");
        let mut sd = state_dict(&m.net, "");
        sd[0].1 = Tensor::f32(vec![2, 3], &[0.0; 6]);
        std::fs::write(&p, to_bytes(&sd, model_metadata(&m))).unwrap();
        let e = load_model(&p).unwrap_err().to_string();
        assert!(
            e.contains("0.weight") && e.contains("expected shape [3, 2]"),
            "{e}"
        );
    }

    /// `m`'s checkpoint with one metadata entry replaced, written with a valid checksum (as a
    /// buggy or hostile writer would).
    fn with_meta(m: &Model, key: &str, value: &str) -> Vec<u8> {
        let mut meta = model_metadata(m);
        meta.insert(key.into(), value.into());
        to_bytes(&state_dict(&m.net, ""), meta)
    }

    #[test]
    fn the_checksum_finds_a_damaged_or_edited_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.safetensors");
        let good = model_bytes(&sample_model());
        let n = good.len();
        for at in [n - 3, n / 2, 20] {
            let mut bad = good.clone();
            bad[at] ^= 0x04;
            std::fs::write(&p, &bad).unwrap();
            match load_model(&p) {
                Err(CheckpointError::Checksum { .. } | CheckpointError::Format { .. }) => {}
                other => panic!("byte {at}: {other:?}"),
            }
        }
        // The checksum does not depend on the header's layout: the reference parser's own
        // serialisation of the same content still verifies.
        let st = SafeTensors::deserialize(&good).unwrap();
        let (_, meta) = SafeTensors::read_metadata(&good).unwrap();
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = st.tensors();
        let again = safetensors::serialize(views, meta.metadata().clone()).unwrap();
        assert_ne!(again, good);
        std::fs::write(&p, &again).unwrap();
        assert_eq!(load_model(&p).unwrap(), sample_model());
        // Without its checksum a version-2 file is refused.
        let mut meta = model_metadata(&sample_model());
        meta.insert("x".into(), "y".into());
        let no_sum = safetensors::serialize(st.tensors(), Some(meta)).unwrap();
        std::fs::write(&p, &no_sum).unwrap();
        let e = load_model(&p).unwrap_err().to_string();
        assert!(e.contains("metadata microdnn.checksum: missing"), "{e}");
    }

    #[test]
    fn hostile_metadata_is_refused_before_anything_is_allocated() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.safetensors");
        let m = sample_model();
        let load = |bytes: Vec<u8>| {
            std::fs::write(&p, bytes).unwrap();
            load_model(&p).unwrap_err().to_string()
        };
        // classes = 0 panicked when scoring; 1e8 aborted (a confusion matrix of 1e16); any
        // other count than the outputs scored silently wrong.
        for c in ["0", "100000000", "5"] {
            let e = load(with_meta(&m, "microdnn.classes", c));
            assert!(
                e.contains(&format!("{c} classes, but the network has 2 outputs")),
                "{e}"
            );
        }
        // in_features = 1e12: 8 TB of zero weights were allocated before the tensors were read.
        let mut specs = m.net.specs();
        specs[0] = LayerSpec::Linear {
            in_features: 1_000_000_000_000,
            out_features: 3,
            dropconnect: 0.0,
        };
        let arch = serde_json::to_string(&specs).unwrap();
        let e = load(with_meta(&m, "microdnn.architecture", &arch));
        assert!(
            e.contains("declare 3000000000023 parameters but the file holds only"),
            "{e}"
        );
        // The transform's length was reported as the network's ("expected 2 inputs, found 2").
        let e = load(with_meta(
            &m,
            "microdnn.input_transform",
            r#"{"scale":[1.0,1.0],"offset":[0.0]}"#,
        ));
        assert!(
            e.contains("2 scales and 1 offsets for a network of 2 inputs"),
            "{e}"
        );
        // Non-finite weights loaded and scored (only export refused them).
        let mut sd = state_dict(&m.net, "");
        sd[0].1 = Tensor::f32(vec![3, 2], &[1.0, f32::NAN, 0.0, 0.0, 0.0, 0.0]);
        let e = load(to_bytes(&sd, model_metadata(&m)));
        assert!(e.contains("tensor 0.weight: element 1 is NaN"), "{e}");
        // A PyTorch state dict is not a microdnn checkpoint.
        let e = load(to_bytes(&state_dict(&m.net, ""), HashMap::new()));
        assert!(e.contains("not a microdnn checkpoint"), "{e}");
    }

    #[test]
    fn any_dtype_is_written_and_stale_temporaries_are_removed() {
        // An unsupported dtype panicked.
        let t = Tensor {
            dtype: Dtype::F16,
            shape: vec![2],
            data: vec![0; 4],
        };
        let bytes = to_bytes(&[("h".into(), t)], HashMap::new());
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("h").unwrap().dtype(), Dtype::F16);
        let dir = tempfile::tempdir().unwrap();
        for f in [
            ".model.safetensors.tmp123",
            ".metrics.json.tmp9",
            ".x.tmpabc",
            "keep",
        ] {
            std::fs::write(dir.path().join(f), b"").unwrap();
        }
        let mut removed = remove_stale_temporaries(dir.path()).unwrap();
        removed.sort();
        assert_eq!(removed, [".metrics.json.tmp9", ".model.safetensors.tmp123"]);
        assert!(dir.path().join(".x.tmpabc").exists() && dir.path().join("keep").exists());
    }
}

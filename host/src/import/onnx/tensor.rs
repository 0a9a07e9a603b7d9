//! Constant tensors of an ONNX graph: initializers and `Constant` nodes, with their data inline
//! (`raw_data` or the typed fields) or in an external-data file beside the model.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use super::pb::{tensor_proto, TensorProto};
use super::OnnxError;

/// The most elements one constant may have (2^28: 1 GiB of f32, far beyond any network that
/// fits a microcontroller), so a corrupted shape cannot make the importer allocate without
/// bound.
pub const MAX_ELEMENTS: usize = 1 << 28;

/// A constant's values, converted to the types the importer uses.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// FLOAT or DOUBLE (rounded to f32).
    Float(Vec<f32>),
    /// INT64 or INT32.
    Int(Vec<i64>),
}

/// A decoded constant: its dimensions and values.
#[derive(Clone, Debug, PartialEq)]
pub struct Constant {
    /// Dimensions (row-major).
    pub dims: Vec<usize>,
    /// Values, `dims.iter().product()` of them.
    pub values: Values,
}

fn data_type_name(t: i32) -> String {
    tensor_proto::DataType::try_from(t)
        .map(|d| d.as_str_name().to_string())
        .unwrap_or_else(|_| format!("data type {t}"))
}

/// Decodes `t` (named `name` in errors); `dir` is the model's folder, where external data lives.
pub fn decode(t: &TensorProto, name: &str, dir: &Path) -> Result<Constant, OnnxError> {
    let err = |why: String| OnnxError::Tensor {
        name: name.to_string(),
        why,
    };
    let mut dims = Vec::with_capacity(t.dims.len().min(8));
    let mut count: usize = 1;
    for &d in &t.dims {
        let d = usize::try_from(d).map_err(|_| err(format!("negative dimension {d}")))?;
        count = count
            .checked_mul(d)
            .filter(|c| *c <= MAX_ELEMENTS)
            .ok_or_else(|| {
                err(format!(
                    "dimensions {:?} exceed {MAX_ELEMENTS} elements",
                    t.dims
                ))
            })?;
        dims.push(d);
    }
    if t.segment.is_some() {
        return Err(err("segmented tensors are not supported".into()));
    }
    use tensor_proto::DataType as D;
    let (width, float) = match D::try_from(t.data_type()).ok() {
        Some(D::Float) => (4, true),
        Some(D::Double) => (8, true),
        Some(D::Int64) => (8, false),
        Some(D::Int32) => (4, false),
        _ => {
            return Err(err(format!(
                "{} is not supported (float32 or float64 weights, int64 shapes); convert the \
                 model to float32",
                data_type_name(t.data_type())
            )))
        }
    };
    let external = t.data_location() == tensor_proto::DataLocation::External;
    let raw: Option<Vec<u8>> = if external {
        Some(read_external(t, name, dir, count * width)?)
    } else {
        t.raw_data.clone()
    };
    let values = match raw {
        Some(bytes) => {
            if bytes.len() != count * width {
                return Err(err(format!(
                    "{} bytes of data for {count} elements of {width} bytes",
                    bytes.len()
                )));
            }
            let c = bytes.chunks_exact(width);
            match (width, float) {
                (4, true) => Values::Float(
                    c.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                ),
                (8, true) => Values::Float(
                    c.map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
                        .collect(),
                ),
                (4, false) => Values::Int(
                    c.map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
                        .collect(),
                ),
                _ => Values::Int(
                    c.map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                        .collect(),
                ),
            }
        }
        None => {
            let v = match (width, float) {
                (4, true) => Values::Float(t.float_data.clone()),
                (8, true) => Values::Float(t.double_data.iter().map(|v| *v as f32).collect()),
                (4, false) => Values::Int(t.int32_data.iter().map(|v| *v as i64).collect()),
                _ => Values::Int(t.int64_data.clone()),
            };
            let n = match &v {
                Values::Float(f) => f.len(),
                Values::Int(i) => i.len(),
            };
            if n != count {
                return Err(err(format!("{n} values for dimensions {:?}", t.dims)));
            }
            v
        }
    };
    if let Values::Float(f) = &values {
        if let Some(i) = f.iter().position(|x| !x.is_finite()) {
            return Err(err(format!("element {i} is {} (in f32)", f[i])));
        }
    }
    Ok(Constant { dims, values })
}

/// Reads an external-data tensor: `location` (relative to the model's folder, inside it),
/// `offset`, `length`, all checked against the file before anything is allocated.
fn read_external(
    t: &TensorProto,
    name: &str,
    dir: &Path,
    expected: usize,
) -> Result<Vec<u8>, OnnxError> {
    let (mut location, mut offset, mut length) = (None, 0u64, None);
    for e in &t.external_data {
        let int = |v: &str| -> Result<u64, OnnxError> {
            v.parse().map_err(|_| OnnxError::ExternalData {
                tensor: name.to_string(),
                path: PathBuf::new(),
                why: format!("`{}` = {v:?} is not a whole number", e.key()),
            })
        };
        match e.key() {
            "location" => location = Some(e.value().to_string()),
            "offset" => offset = int(e.value())?,
            "length" => length = Some(int(e.value())?),
            _ => {} // checksum, basepath: not needed to read the bytes
        }
    }
    let ext_err = |path: &Path, why: String| OnnxError::ExternalData {
        tensor: name.to_string(),
        path: path.to_path_buf(),
        why,
    };
    let location = location.ok_or_else(|| ext_err(dir, "no `location` given".into()))?;
    let rel = Path::new(&location);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(ext_err(
            rel,
            "the location must be a relative path inside the model's folder".into(),
        ));
    }
    let path = dir.join(rel);
    let length = length.unwrap_or(expected as u64);
    if length != expected as u64 {
        return Err(ext_err(
            &path,
            format!("length {length}, but the tensor's shape needs {expected} bytes"),
        ));
    }
    let mut f = std::fs::File::open(&path).map_err(|e| ext_err(&path, e.to_string()))?;
    let size = f
        .metadata()
        .map_err(|e| ext_err(&path, e.to_string()))?
        .len();
    if offset.checked_add(length).is_none_or(|end| end > size) {
        return Err(ext_err(
            &path,
            format!("bytes {offset}..+{length} lie beyond the file's {size} bytes"),
        ));
    }
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| ext_err(&path, e.to_string()))?;
    let mut buf = vec![0u8; expected];
    f.read_exact(&mut buf)
        .map_err(|e| ext_err(&path, e.to_string()))?;
    Ok(buf)
}

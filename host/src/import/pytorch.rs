//! Importing a network trained with PyTorch: a `state_dict` saved with
//! `safetensors.torch.save_file(model.state_dict(), "model.safetensors")` from an `nn.Sequential`
//! of `Linear`, `BatchNorm1d`, `ReLU`, `LeakyReLU`, `Sigmoid`, `Tanh`, `Softmax`, `Dropout`,
//! `Identity` and `Flatten`.
//!
//! A state dict carries parameters but no architecture, so the architecture is given as text:
//! either what `print(model)` shows,
//!
//! ```text
//! Sequential(
//!   (0): Linear(in_features=64, out_features=32, bias=True)
//!   (1): ReLU()
//!   (2): Dropout(p=0.2, inplace=False)
//!   (3): Linear(in_features=32, out_features=10, bias=True)
//! )
//! ```
//!
//! or the same layers written compactly, `Linear(64, 32) ReLU() Dropout(0.2) Linear(32, 10)`.
//! Tensors are looked up by their index in the `Sequential` (`0.weight`, `0.bias`,
//! `1.running_mean`, ...), optionally under a prefix (`--prefix net.` for a Sequential stored in an
//! attribute `net`). F32 and F64 tensors are accepted.

use std::path::Path;

use microdnn::Activation;
use safetensors::{Dtype, SafeTensors};

use crate::model::{BatchNorm1d, Layer, Linear, Sequential};

/// Errors importing a PyTorch network.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The architecture text could not be parsed.
    #[error("architecture, item {item} (`{text}`): {why}")]
    Architecture {
        /// 0-based position of the layer in the Sequential.
        item: usize,
        /// The text of the item.
        text: String,
        /// What is wrong.
        why: String,
    },
    /// Reading the file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not safetensors, or a tensor is missing or has the wrong shape or type.
    #[error("{path}: {why}")]
    Tensor {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// One parsed item of the architecture: its PyTorch name and arguments.
#[derive(Clone, Debug, PartialEq)]
struct Item {
    name: String,
    positional: Vec<String>,
    named: Vec<(String, String)>,
    text: String,
}

impl Item {
    fn arg(&self, pos: usize, key: &str) -> Option<&str> {
        self.named
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .or_else(|| self.positional.get(pos).map(String::as_str))
    }
}

/// Splits architecture text into `Name(args)` items, skipping `Sequential(` wrappers and
/// `(index):` labels.
fn items(text: &str) -> Vec<Item> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_alphabetic() {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            let name = name.rsplit('.').next().unwrap_or(&name).to_string(); // nn.Linear -> Linear
            if i < chars.len() && chars[i] == '(' {
                if name == "Sequential" {
                    i += 1; // step inside
                    continue;
                }
                let open = i;
                let mut depth = 0;
                while i < chars.len() {
                    match chars[i] {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                let args: String = chars[open + 1..i.min(chars.len())].iter().collect();
                let text: String = chars[start..(i + 1).min(chars.len())].iter().collect();
                let (mut positional, mut named) = (Vec::new(), Vec::new());
                for a in args.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                    match a.split_once('=') {
                        Some((k, v)) => named.push((k.trim().to_string(), v.trim().to_string())),
                        None => positional.push(a.to_string()),
                    }
                }
                out.push(Item {
                    name,
                    positional,
                    named,
                    text,
                });
            }
        }
        i += 1;
    }
    out
}

/// Parses the architecture text into layers with zero parameters.
pub fn parse_architecture(text: &str) -> Result<Sequential, ImportError> {
    let mut layers = Vec::new();
    for (idx, it) in items(text).into_iter().enumerate() {
        let err = |why: String| ImportError::Architecture {
            item: idx,
            text: it.text.clone(),
            why,
        };
        let usize_arg = |pos, key: &str| -> Result<usize, ImportError> {
            let v = it
                .arg(pos, key)
                .ok_or_else(|| err(format!("missing `{key}`")))?;
            v.parse()
                .map_err(|_| err(format!("`{key}` = {v:?} is not a whole number")))
        };
        let f32_arg = |pos, key: &str, default: f32| -> Result<f32, ImportError> {
            match it.arg(pos, key) {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .map_err(|_| err(format!("`{key}` = {v:?} is not a number"))),
            }
        };
        let layer = match it.name.as_str() {
            "Linear" => {
                let inf = usize_arg(0, "in_features")?;
                let outf = usize_arg(1, "out_features")?;
                let mut l = Linear::from_parts(inf, outf, vec![0.0; inf * outf], vec![0.0; outf]);
                l.dropconnect = 0.0;
                // `bias=False` is handled when the tensors are read (no `bias` tensor).
                Layer::Linear(l)
            }
            "BatchNorm1d" => {
                let n = usize_arg(0, "num_features")?;
                let eps = f32_arg(1, "eps", 1e-5)?;
                let momentum = f32_arg(2, "momentum", 0.1)?;
                if it.arg(usize::MAX, "affine") == Some("False") {
                    return Err(err(
                        "affine=False is not supported (no weight/bias tensors)".into(),
                    ));
                }
                Layer::BatchNorm1d(BatchNorm1d::new(n, eps, momentum))
            }
            "ReLU" => Layer::Activation(Activation::Relu),
            "LeakyReLU" => Layer::Activation(Activation::LeakyRelu {
                slope: f32_arg(0, "negative_slope", 0.01)?,
            }),
            "Sigmoid" => Layer::Activation(Activation::Sigmoid),
            "Tanh" => Layer::Activation(Activation::Tanh),
            "Softmax" => Layer::Activation(Activation::Softmax),
            "Identity" | "Flatten" => Layer::Activation(Activation::Identity),
            "Dropout" => {
                let p = f32_arg(0, "p", 0.5)?;
                if !(0.0..1.0).contains(&p) {
                    return Err(err(format!("dropout rate {p} is not in [0, 1)")));
                }
                Layer::Dropout(p)
            }
            other => {
                return Err(err(format!(
                    "unsupported layer `{other}` (supported: Linear, BatchNorm1d, ReLU, LeakyReLU, \
                     Sigmoid, Tanh, Softmax, Dropout, Identity, Flatten)"
                )))
            }
        };
        layers.push(layer);
    }
    if layers.is_empty() {
        return Err(ImportError::Architecture {
            item: 0,
            text: text.chars().take(60).collect(),
            why: "no layers found".into(),
        });
    }
    let seq = Sequential::new(layers);
    seq.validate().map_err(|e| ImportError::Architecture {
        item: 0,
        text: "Sequential".into(),
        why: e.to_string(),
    })?;
    Ok(seq)
}

fn read_f32s(
    st: &SafeTensors<'_>,
    path: &Path,
    name: &str,
    shape: &[usize],
) -> Result<Option<Vec<f32>>, ImportError> {
    let t = match st.tensor(name) {
        Ok(t) => t,
        Err(_) => return Ok(None),
    };
    let err = |why: String| ImportError::Tensor {
        path: path.to_path_buf(),
        why: format!("tensor `{name}`: {why}"),
    };
    if t.shape() != shape {
        return Err(err(format!(
            "shape {:?}, the architecture needs {shape:?}",
            t.shape()
        )));
    }
    let v: Vec<f32> = match t.dtype() {
        Dtype::F32 => t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => t
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
            .collect(),
        d => {
            return Err(err(format!(
                "dtype {d:?}; export F32 (model.float()) or F64"
            )))
        }
    };
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(err(format!("element {i} is {}", v[i])));
    }
    Ok(Some(v))
}

/// Loads a PyTorch state dict (safetensors) into the architecture `arch`; tensor names are
/// `{prefix}{index}.{param}`.
pub fn load_state_dict(
    path: &Path,
    arch: &Sequential,
    prefix: &str,
) -> Result<Sequential, ImportError> {
    let bytes = std::fs::read(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| ImportError::Tensor {
        path: path.to_path_buf(),
        why: format!("not a safetensors file: {e}"),
    })?;
    let missing = |name: String| ImportError::Tensor {
        path: path.to_path_buf(),
        why: format!(
            "tensor `{name}` is missing (names in the file: {}); is the architecture right, and \
             does the Sequential sit under a prefix (--prefix)?",
            {
                let mut names: Vec<String> =
                    st.names().into_iter().map(|n| n.to_string()).collect();
                names.sort();
                names.truncate(12);
                names.join(", ")
            }
        ),
    };
    let mut net = arch.clone();
    for (i, l) in net.layers.iter_mut().enumerate() {
        let name = |p: &str| format!("{prefix}{i}.{p}");
        match l {
            Layer::Linear(lin) => {
                let (o, n) = (lin.out_features, lin.in_features);
                lin.weight = read_f32s(&st, path, &name("weight"), &[o, n])?
                    .ok_or_else(|| missing(name("weight")))?;
                lin.bias =
                    read_f32s(&st, path, &name("bias"), &[o])?.unwrap_or_else(|| vec![0.0; o]);
            }
            Layer::BatchNorm1d(bn) => {
                let f = [bn.features];
                let get =
                    |p: &str| read_f32s(&st, path, &name(p), &f)?.ok_or_else(|| missing(name(p)));
                bn.weight = get("weight")?;
                bn.bias = get("bias")?;
                bn.running_mean = get("running_mean")?;
                bn.running_var = get("running_var")?;
            }
            _ => {}
        }
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_printed_and_compact_forms_alike() {
        let printed = "Sequential(\n  (0): Linear(in_features=64, out_features=32, bias=True)\n  (1): BatchNorm1d(32, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n  (2): LeakyReLU(negative_slope=0.2)\n  (3): Dropout(p=0.25, inplace=False)\n  (4): Linear(in_features=32, out_features=10, bias=True)\n)";
        let compact =
            "nn.Linear(64, 32), nn.BatchNorm1d(32), LeakyReLU(0.2), Dropout(0.25), Linear(32, 10)";
        let a = parse_architecture(printed).unwrap();
        let b = parse_architecture(compact).unwrap();
        assert_eq!(a.specs(), b.specs());
        assert_eq!(a.layers.len(), 5);
        assert_eq!(
            a.layers[2],
            Layer::Activation(Activation::LeakyRelu { slope: 0.2 })
        );
        assert_eq!(a.layers[3], Layer::Dropout(0.25));
    }

    #[test]
    fn errors_name_the_item() {
        let e = parse_architecture("Linear(4, 3) Conv2d(3, 8, 3)").unwrap_err();
        assert!(
            e.to_string().contains("item 1") && e.to_string().contains("Conv2d"),
            "{e}"
        );
        let e = parse_architecture("Linear(4, x)").unwrap_err();
        assert!(e.to_string().contains("out_features"), "{e}");
        let e = parse_architecture("Linear(4, 3) Linear(5, 2)").unwrap_err();
        assert!(e.to_string().contains("expects 5 inputs"), "{e}");
        assert!(parse_architecture("nothing here").is_err());
    }
}

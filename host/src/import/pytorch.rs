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

use crate::model::{ArchitectureError, BatchNorm1d, Layer, LayerSpec, Linear, Sequential};

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
/// `(index):` labels. A name without its parentheses, or an unclosed `(`, is an error.
fn items(text: &str) -> Result<Vec<Item>, ImportError> {
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
            if i >= chars.len() || chars[i] != '(' {
                return Err(ImportError::Architecture {
                    item: out.len(),
                    text: name.clone(),
                    why: format!("`{name}` without parentheses (write `{name}(...)`)"),
                });
            }
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
            if depth != 0 {
                return Err(ImportError::Architecture {
                    item: out.len(),
                    text: chars[start..].iter().take(60).collect(),
                    why: "unterminated `(`: a `)` is missing".into(),
                });
            }
            let args: String = chars[open + 1..i].iter().collect();
            let text: String = chars[start..=i].iter().collect();
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
        i += 1;
    }
    Ok(out)
}

/// Parses the architecture text into layer specs (nothing is allocated: the sizes are checked
/// against the state dict's tensors when it is read).
pub fn parse_architecture(text: &str) -> Result<Vec<LayerSpec>, ImportError> {
    let mut layers = Vec::new();
    for (idx, it) in items(text)?.into_iter().enumerate() {
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
        let act = |a: Activation| Layer::Activation(a).spec();
        let layer = match it.name.as_str() {
            "Linear" => {
                let (inf, outf) = (usize_arg(0, "in_features")?, usize_arg(1, "out_features")?);
                if inf == 0 || outf == 0 {
                    return Err(err("a width of 0".into()));
                }
                // `bias=False` is handled when the tensors are read (no `bias` tensor).
                LayerSpec::Linear {
                    in_features: inf,
                    out_features: outf,
                    dropconnect: 0.0,
                }
            }
            "BatchNorm1d" => {
                let features = usize_arg(0, "num_features")?;
                let eps = f32_arg(1, "eps", 1e-5)?;
                let momentum = f32_arg(2, "momentum", 0.1)?;
                if it.arg(usize::MAX, "affine") == Some("False") {
                    return Err(err(
                        "affine=False is not supported (no weight/bias tensors)".into(),
                    ));
                }
                if features == 0 || !(eps.is_finite() && eps > 0.0) {
                    return Err(err("needs num_features >= 1 and eps > 0".into()));
                }
                LayerSpec::BatchNorm1d {
                    features,
                    eps,
                    momentum,
                }
            }
            "ReLU" => act(Activation::Relu),
            "LeakyReLU" => act(Activation::LeakyRelu {
                slope: f32_arg(0, "negative_slope", 0.01)?,
            }),
            "Sigmoid" => act(Activation::Sigmoid),
            "Tanh" => act(Activation::Tanh),
            "Softmax" => act(Activation::Softmax),
            "Identity" | "Flatten" => act(Activation::Identity),
            "Dropout" => {
                let p = f32_arg(0, "p", 0.5)?;
                if !(0.0..1.0).contains(&p) {
                    return Err(err(format!("dropout rate {p} is not in [0, 1)")));
                }
                LayerSpec::Dropout { rate: p }
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
    check_widths(&layers)?;
    Ok(layers)
}

/// Each `Linear` and `BatchNorm1d` receives the width the layer before it gives.
fn check_widths(specs: &[LayerSpec]) -> Result<(), ImportError> {
    let mut width: Option<usize> = None;
    for (layer, s) in specs.iter().enumerate() {
        let (expects, gives) = match *s {
            LayerSpec::Linear {
                in_features,
                out_features,
                ..
            } => (in_features, out_features),
            LayerSpec::BatchNorm1d { features, .. } => (features, features),
            _ => continue,
        };
        if let Some(w) = width.filter(|&w| w != expects) {
            let e = match s {
                LayerSpec::Linear { .. } => ArchitectureError::InputMismatch {
                    layer,
                    expects,
                    receives: w,
                },
                _ => ArchitectureError::FeatureMismatch {
                    layer,
                    features: expects,
                    receives: w,
                },
            };
            return Err(ImportError::Architecture {
                item: layer,
                text: "Sequential".into(),
                why: e.to_string(),
            });
        }
        width = Some(gives);
    }
    Ok(())
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
/// `{prefix}{index}.{param}`. Every tensor's shape is checked before its values are read, and
/// every tensor under `prefix` must be used (BatchNorm's `num_batches_tracked` aside): a state
/// dict with more layers than the architecture is an error, not a silently shorter network.
pub fn load_state_dict(
    path: &Path,
    arch: &[LayerSpec],
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
    let mut names: Vec<String> = st.names().into_iter().map(|n| n.to_string()).collect();
    names.sort();
    let missing =
        |name: String| ImportError::Tensor {
            path: path.to_path_buf(),
            why: format!(
            "tensor `{name}` is missing (names in the file: {}); is the architecture right, and \
             does the Sequential sit under a prefix (--prefix)?",
            names.iter().take(12).cloned().collect::<Vec<_>>().join(", ")
        ),
        };
    let mut used: Vec<String> = Vec::new();
    let mut layers = Vec::with_capacity(arch.len());
    for (i, spec) in arch.iter().enumerate() {
        let name = |p: &str| format!("{prefix}{i}.{p}");
        let mut get = |p: &str, shape: &[usize]| {
            used.push(name(p));
            read_f32s(&st, path, &name(p), shape)
        };
        let layer = match *spec {
            LayerSpec::Linear {
                in_features: n,
                out_features: o,
                ..
            } => {
                let weight = get("weight", &[o, n])?.ok_or_else(|| missing(name("weight")))?;
                let bias = get("bias", &[o])?.unwrap_or_else(|| vec![0.0; o]);
                Layer::Linear(Linear::from_parts(n, o, weight, bias).map_err(|e| {
                    ImportError::Tensor {
                        path: path.to_path_buf(),
                        why: e.to_string(),
                    }
                })?)
            }
            LayerSpec::BatchNorm1d {
                features,
                eps,
                momentum,
            } => {
                let f = [features];
                let mut bn = BatchNorm1d::new(features, eps, momentum);
                for (p, dst) in [
                    ("weight", &mut bn.weight),
                    ("bias", &mut bn.bias),
                    ("running_mean", &mut bn.running_mean),
                    ("running_var", &mut bn.running_var),
                ] {
                    *dst = get(p, &f)?.ok_or_else(|| missing(name(p)))?;
                }
                used.push(name("num_batches_tracked"));
                Layer::BatchNorm1d(bn)
            }
            ref other => Layer::from_spec(other).map_err(|e| ImportError::Tensor {
                path: path.to_path_buf(),
                why: e.to_string(),
            })?,
        };
        layers.push(layer);
    }
    let unused: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with(prefix) && !used.contains(n))
        .collect();
    if !unused.is_empty() {
        return Err(ImportError::Tensor {
            path: path.to_path_buf(),
            why: format!(
                "{} tensor{} the architecture does not use: {}{}; does --arch list every layer \
                 of the Sequential?",
                unused.len(),
                if unused.len() == 1 { "" } else { "s" },
                unused
                    .iter()
                    .take(8)
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if unused.len() > 8 { ", ..." } else { "" }
            ),
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
        assert_eq!(a, b);
        assert_eq!(a.len(), 5);
        assert_eq!(
            a[2],
            Layer::Activation(Activation::LeakyRelu { slope: 0.2 }).spec()
        );
        assert_eq!(a[3], LayerSpec::Dropout { rate: 0.25 });
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
        // An unclosed parenthesis was read to the end of the text and accepted.
        let e = parse_architecture("Linear(64, 64").unwrap_err();
        assert!(e.to_string().contains("unterminated `(`"), "{e}");
        // A layer written without its parentheses was skipped: a ReLU silently missing.
        let e = parse_architecture("Linear(4, 3) ReLU Linear(3, 2)").unwrap_err();
        assert!(e.to_string().contains("`ReLU` without parentheses"), "{e}");
        let e = parse_architecture("Linear(0, 3)").unwrap_err();
        assert!(e.to_string().contains("a width of 0"), "{e}");
    }

    #[test]
    fn the_state_dict_must_match_the_architecture_exactly() {
        use crate::model::checkpoint::{state_dict, to_bytes};
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sd.safetensors");
        let net = Sequential::new(vec![
            Layer::Linear(Linear::from_parts(2, 3, vec![1.0; 6], vec![0.5; 3]).unwrap()),
            Layer::Activation(Activation::Relu),
            Layer::Linear(Linear::from_parts(3, 2, vec![2.0; 6], vec![0.0; 2]).unwrap()),
        ]);
        std::fs::write(&p, to_bytes(&state_dict(&net, ""), Default::default())).unwrap();
        let full = parse_architecture("Linear(2, 3) ReLU() Linear(3, 2)").unwrap();
        assert_eq!(load_state_dict(&p, &full, "").unwrap(), net);
        // One layer of two: the rest of the state dict was ignored and a 2-3 network exported.
        let part = parse_architecture("Linear(2, 3)").unwrap();
        let e = load_state_dict(&p, &part, "").unwrap_err().to_string();
        assert!(
            e.contains("2 tensors the architecture does not use: `2.bias`, `2.weight`"),
            "{e}"
        );
        // A huge layer is refused by the tensor's shape, before anything is allocated (it
        // allocated 40 GB first).
        let huge = parse_architecture("Linear(100000, 100000)").unwrap();
        let e = load_state_dict(&p, &huge, "").unwrap_err().to_string();
        assert!(
            e.contains("shape [3, 2], the architecture needs [100000, 100000]"),
            "{e}"
        );
    }
}

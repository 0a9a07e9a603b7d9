//! The architecture of a layer without its parameters ([`LayerSpec`]): what checkpoint metadata
//! stores and what a layer is rebuilt from.

use microdnn::Activation;
use serde::{Deserialize, Serialize};

use super::{ArchitectureError, BatchNorm1d, Layer, Linear};

/// The architecture of one layer without its parameters, as stored in checkpoint metadata
/// (`microdnn.architecture`, a JSON list of these, tagged by `"kind"`).
///
/// Deserialised through [`RawLayerSpec`] rather than serde's internally tagged representation:
/// that one buffers its input and breaks on numbers when any crate in the build enables
/// `serde_json/arbitrary_precision` (as `defmt-decoder` does in this workspace).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", try_from = "RawLayerSpec")]
pub enum LayerSpec {
    /// Fully connected.
    Linear {
        /// Inputs.
        in_features: usize,
        /// Outputs.
        out_features: usize,
        /// DropConnect rate (training only).
        #[serde(default)]
        dropconnect: f32,
    },
    /// Batch normalisation.
    BatchNorm1d {
        /// Features.
        features: usize,
        /// Variance epsilon.
        eps: f32,
        /// Running-average momentum.
        momentum: f32,
    },
    /// Activation.
    Activation {
        /// `identity`, `relu`, `leaky_relu`, `sigmoid`, `tanh` or `softmax`.
        activation: String,
        /// Negative slope (leaky ReLU only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slope: Option<f32>,
    },
    /// Dropout.
    Dropout {
        /// Drop rate.
        rate: f32,
    },
}

impl LayerSpec {
    /// The number of `f32` parameters (and running statistics) the layer holds; `None` on
    /// overflow.
    pub fn parameter_count(&self) -> Option<u64> {
        match *self {
            LayerSpec::Linear {
                in_features,
                out_features,
                ..
            } => (in_features as u64)
                .checked_mul(out_features as u64)?
                .checked_add(out_features as u64),
            LayerSpec::BatchNorm1d { features, .. } => (features as u64).checked_mul(4),
            LayerSpec::Activation { .. } | LayerSpec::Dropout { .. } => Some(0),
        }
    }
}

/// The flat form [`LayerSpec`] is read through: every field optional, checked per kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLayerSpec {
    kind: String,
    in_features: Option<usize>,
    out_features: Option<usize>,
    dropconnect: Option<f32>,
    features: Option<usize>,
    eps: Option<f32>,
    momentum: Option<f32>,
    activation: Option<String>,
    slope: Option<f32>,
    rate: Option<f32>,
}

impl TryFrom<RawLayerSpec> for LayerSpec {
    type Error = ArchitectureError;

    fn try_from(r: RawLayerSpec) -> Result<Self, ArchitectureError> {
        let missing = |field: &'static str| ArchitectureError::MissingField {
            kind: r.kind.clone(),
            field,
        };
        let need = |v: Option<usize>, field| v.ok_or_else(|| missing(field));
        let needf = |v: Option<f32>, field| v.ok_or_else(|| missing(field));
        Ok(match r.kind.as_str() {
            "linear" => LayerSpec::Linear {
                in_features: need(r.in_features, "in_features")?,
                out_features: need(r.out_features, "out_features")?,
                dropconnect: r.dropconnect.unwrap_or(0.0),
            },
            "batch_norm1d" => LayerSpec::BatchNorm1d {
                features: need(r.features, "features")?,
                eps: needf(r.eps, "eps")?,
                momentum: needf(r.momentum, "momentum")?,
            },
            "activation" => LayerSpec::Activation {
                activation: r.activation.clone().ok_or_else(|| missing("activation"))?,
                slope: r.slope,
            },
            "dropout" => LayerSpec::Dropout {
                rate: needf(r.rate, "rate")?,
            },
            other => return Err(ArchitectureError::UnknownKind(other.into())),
        })
    }
}

/// Parses an activation name (`leaky_relu` takes `slope`, default 0.01).
pub fn activation_from_name(name: &str, slope: Option<f32>) -> Option<Activation> {
    Some(match name {
        "identity" => Activation::Identity,
        "relu" => Activation::Relu,
        "leaky_relu" => Activation::LeakyRelu {
            slope: slope.unwrap_or(microdnn::math::DEFAULT_LEAKY_SLOPE),
        },
        "sigmoid" => Activation::Sigmoid,
        "tanh" => Activation::Tanh,
        "softmax" => Activation::Softmax,
        _ => return None,
    })
}

impl Layer {
    /// The layer's architecture.
    pub fn spec(&self) -> LayerSpec {
        match self {
            Layer::Linear(l) => LayerSpec::Linear {
                in_features: l.in_features,
                out_features: l.out_features,
                dropconnect: l.dropconnect,
            },
            Layer::BatchNorm1d(b) => LayerSpec::BatchNorm1d {
                features: b.features,
                eps: b.eps,
                momentum: b.momentum,
            },
            Layer::Activation(a) => LayerSpec::Activation {
                activation: a.name().to_string(),
                slope: match a {
                    Activation::LeakyRelu { slope } => Some(*slope),
                    _ => None,
                },
            },
            Layer::Dropout(rate) => LayerSpec::Dropout { rate: *rate },
        }
    }

    /// A layer with fresh parameters (zero weights; BN at its PyTorch defaults) for `spec`.
    pub fn from_spec(spec: &LayerSpec) -> Result<Layer, ArchitectureError> {
        Ok(match spec {
            LayerSpec::Linear {
                in_features,
                out_features,
                dropconnect,
            } => Layer::Linear(Linear {
                in_features: *in_features,
                out_features: *out_features,
                weight: vec![0.0; in_features * out_features],
                bias: vec![0.0; *out_features],
                dropconnect: *dropconnect,
            }),
            LayerSpec::BatchNorm1d {
                features,
                eps,
                momentum,
            } => Layer::BatchNorm1d(BatchNorm1d::new(*features, *eps, *momentum)),
            LayerSpec::Activation { activation, slope } => Layer::Activation(
                activation_from_name(activation, *slope)
                    .ok_or_else(|| ArchitectureError::UnknownActivation(activation.clone()))?,
            ),
            LayerSpec::Dropout { rate } => Layer::Dropout(*rate),
        })
    }
}

#[cfg(test)]
mod layer_spec_tests {
    use super::*;

    #[test]
    fn layer_specs_round_trip_through_json() {
        let specs = vec![
            LayerSpec::Linear {
                in_features: 64,
                out_features: 32,
                dropconnect: 0.25,
            },
            LayerSpec::BatchNorm1d {
                features: 32,
                eps: 1e-5,
                momentum: 0.1,
            },
            LayerSpec::Activation {
                activation: "leaky_relu".into(),
                slope: Some(0.2),
            },
            LayerSpec::Dropout { rate: 0.5 },
        ];
        let json = serde_json::to_string(&specs).unwrap();
        assert!(json.contains(r#""kind":"batch_norm1d""#), "{json}");
        let back: Vec<LayerSpec> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, specs);
        let e = serde_json::from_str::<Vec<LayerSpec>>(r#"[{"kind":"linear","in_features":3}]"#);
        assert!(e.unwrap_err().to_string().contains("out_features"));
        let e = serde_json::from_str::<Vec<LayerSpec>>(r#"[{"kind":"conv2d"}]"#);
        assert!(e.unwrap_err().to_string().contains("conv2d"));
    }

    #[test]
    fn layer_stacks_that_do_not_fit_are_typed_errors() {
        use crate::model::Sequential;
        let linear =
            |i, o| Layer::Linear(Linear::from_parts(i, o, vec![0.0; i * o], vec![0.0; o]).unwrap());
        let seq = Sequential::new(vec![linear(4, 3), Layer::Dropout(0.5), linear(2, 1)]);
        assert_eq!(
            seq.validate(),
            Err(ArchitectureError::InputMismatch {
                layer: 2,
                expects: 2,
                receives: 3
            })
        );
        let seq = Sequential::new(vec![linear(4, 3), Layer::Dropout(1.0)]);
        let e = seq.validate().unwrap_err();
        assert_eq!(e.to_string(), "layer 1: dropout rate 1 is not in [0, 1)");
        let mut l = Linear::from_parts(2, 2, vec![0.0; 4], vec![0.0; 2]).unwrap();
        l.dropconnect = -0.1;
        assert!(matches!(
            Sequential::new(vec![Layer::Linear(l)]).validate(),
            Err(ArchitectureError::Rate {
                layer: 0,
                what: "DropConnect",
                ..
            })
        ));
        let spec = LayerSpec::Activation {
            activation: "gelu".into(),
            slope: None,
        };
        assert_eq!(
            Layer::from_spec(&spec),
            Err(ArchitectureError::UnknownActivation("gelu".into()))
        );
    }
}

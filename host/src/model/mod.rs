//! The in-memory model: a PyTorch-like [`Sequential`] of layers with their parameters, the input
//! transform and the class count. This is what checkpoints hold, what the trainer updates and
//! what an exporter reads.
//!
//! Layouts follow PyTorch: a [`Linear`] weight is row-major `[out, in]` (row `o` is the incoming
//! weight vector of unit `o`), so `y = x Wᵀ + b`; tensors are named by the position of their
//! layer in the `Sequential` (`0.weight`, `1.running_mean`, ...).
//!
//! ```
//! use microdnn::Activation;
//! use microdnn_host::model::{Layer, Linear, Sequential};
//! let net = Sequential::new(vec![
//!     Layer::Linear(Linear::from_parts(2, 1, vec![1.0, -1.0], vec![0.5]).unwrap()),
//!     Layer::Activation(Activation::Relu),
//! ]);
//! assert_eq!(net.predict(&[3.0, 1.0, 0.0, 2.0], 2), vec![2.5, 0.0]);
//! ```

pub mod checkpoint;
pub mod metrics;
mod predictor;
mod spec;

pub use predictor::Predictor;
pub use spec::{activation_from_name, LayerSpec, RawLayerSpec};

use microdnn::Activation;

use crate::data::InputTransform;

/// A fully-connected layer, `y = x Wᵀ + b`.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    /// Inputs.
    pub in_features: usize,
    /// Outputs.
    pub out_features: usize,
    /// Row-major `[out_features, in_features]`.
    pub weight: Vec<f32>,
    /// `[out_features]`.
    pub bias: Vec<f32>,
    /// DropConnect rate used in training (0 = none); inference always uses `weight` as is.
    pub dropconnect: f32,
}

impl Linear {
    /// A layer from its weight (`[out, in]` row-major) and bias, without DropConnect; an error if
    /// their lengths do not match the shape.
    pub fn from_parts(
        in_features: usize,
        out_features: usize,
        weight: Vec<f32>,
        bias: Vec<f32>,
    ) -> Result<Self, ArchitectureError> {
        if in_features.checked_mul(out_features) != Some(weight.len()) || bias.len() != out_features
        {
            return Err(ArchitectureError::LinearSizes {
                in_features,
                out_features,
                weights: weight.len(),
                biases: bias.len(),
            });
        }
        Ok(Self {
            in_features,
            out_features,
            weight,
            bias,
            dropconnect: 0.0,
        })
    }

    /// A layer of zero weights and biases. Allocates `in_features × out_features` values: check
    /// sizes that come from outside first.
    pub fn zeros(in_features: usize, out_features: usize) -> Self {
        Self {
            in_features,
            out_features,
            weight: vec![0.0; in_features.saturating_mul(out_features)],
            bias: vec![0.0; out_features],
            dropconnect: 0.0,
        }
    }

    /// The incoming weight vector of unit `o` (row `o`).
    pub fn row(&self, o: usize) -> &[f32] {
        &self.weight[o * self.in_features..(o + 1) * self.in_features]
    }
}

/// Batch normalisation over features (PyTorch's `BatchNorm1d`, affine, tracking running stats).
///
/// Training normalises with the batch mean and the *biased* batch variance and updates
/// `running_var` with the *unbiased* one (`var * n / (n - 1)`), `running = (1 - momentum) *
/// running + momentum * batch`, exactly as PyTorch. Evaluation uses the running averages:
/// `y = (x - running_mean) / sqrt(running_var + eps) * weight + bias`.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm1d {
    /// Features.
    pub features: usize,
    /// Scale (`gamma`), PyTorch's `weight`.
    pub weight: Vec<f32>,
    /// Shift (`beta`), PyTorch's `bias`.
    pub bias: Vec<f32>,
    /// Running mean.
    pub running_mean: Vec<f32>,
    /// Running (unbiased) variance.
    pub running_var: Vec<f32>,
    /// Training batches seen (PyTorch's `num_batches_tracked`, an `i64`).
    pub num_batches_tracked: i64,
    /// Added to the variance (default 1e-5).
    pub eps: f32,
    /// Running-average momentum (default 0.1).
    pub momentum: f32,
}

impl BatchNorm1d {
    /// A fresh layer: weight 1, bias 0, running mean 0, running variance 1.
    pub fn new(features: usize, eps: f32, momentum: f32) -> Self {
        Self {
            features,
            weight: vec![1.0; features],
            bias: vec![0.0; features],
            running_mean: vec![0.0; features],
            running_var: vec![1.0; features],
            num_batches_tracked: 0,
            eps,
            momentum,
        }
    }

    /// The evaluation-mode transform folded into `y = x * scale + shift`, per feature.
    pub fn folded(&self) -> (Vec<f32>, Vec<f32>) {
        let mut scale = Vec::with_capacity(self.features);
        let mut shift = Vec::with_capacity(self.features);
        for j in 0..self.features {
            let s = self.weight[j] / (self.running_var[j] + self.eps).sqrt();
            scale.push(s);
            shift.push(self.bias[j] - self.running_mean[j] * s);
        }
        (scale, shift)
    }
}

/// One layer of a [`Sequential`].
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// Fully connected.
    Linear(Linear),
    /// Batch normalisation.
    BatchNorm1d(BatchNorm1d),
    /// Element-wise activation (from the core crate, so host and device agree).
    Activation(Activation),
    /// Inverted dropout with this drop rate: identity at inference.
    Dropout(f32),
}

/// What is wrong with an architecture: a layer's description (checkpoint metadata), or how the
/// layers of a stack fit together.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ArchitectureError {
    /// A layer description lacks a field its kind needs.
    #[error("{kind} layer without `{field}`")]
    MissingField {
        /// The layer kind (`linear`, `batch_norm1d`, ...).
        kind: String,
        /// The missing field.
        field: &'static str,
    },
    /// A layer kind this crate does not know.
    #[error("unknown layer kind `{0}`")]
    UnknownKind(String),
    /// An activation name this crate does not know.
    #[error("unknown activation {0:?}")]
    UnknownActivation(String),
    /// A `Linear` layer's input width differs from the width it receives.
    #[error("layer {layer}: Linear expects {expects} inputs but receives {receives}")]
    InputMismatch {
        /// Position in the `Sequential`.
        layer: usize,
        /// The layer's `in_features`.
        expects: usize,
        /// The width of the previous layer's output.
        receives: usize,
    },
    /// A `Linear` layer's weight or bias length does not match its shape.
    #[error("layer {layer}: Linear parameter sizes do not match its shape")]
    ParameterSizes {
        /// Position in the `Sequential`.
        layer: usize,
    },
    /// Weights and biases given for a `Linear` layer do not match its shape.
    #[error(
        "Linear({in_features}, {out_features}) needs {in_features} x {out_features} weights and \
         {out_features} biases, got {weights} and {biases}"
    )]
    LinearSizes {
        /// Inputs.
        in_features: usize,
        /// Outputs.
        out_features: usize,
        /// Weights given.
        weights: usize,
        /// Biases given.
        biases: usize,
    },
    /// A layer of width zero.
    #[error("layer {layer}: a width of 0")]
    ZeroWidth {
        /// Position in the `Sequential`.
        layer: usize,
    },
    /// The layers would hold more parameters than the file (or the limit) has room for.
    #[error("the layers declare {declared} parameters but {available}")]
    TooLarge {
        /// Parameters the architecture declares (saturated).
        declared: u64,
        /// What is there instead (`the file holds 1234 bytes of tensors`).
        available: String,
    },
    /// A `BatchNorm1d` layer's width differs from the width it receives.
    #[error("layer {layer}: BatchNorm1d has {features} features but receives {receives}")]
    FeatureMismatch {
        /// Position in the `Sequential`.
        layer: usize,
        /// The layer's `features`.
        features: usize,
        /// The width of the previous layer's output.
        receives: usize,
    },
    /// A dropout or DropConnect rate outside `[0, 1)`.
    #[error("layer {layer}: {what} rate {rate} is not in [0, 1)")]
    Rate {
        /// Position in the `Sequential`.
        layer: usize,
        /// `dropout` or `DropConnect`.
        what: &'static str,
        /// The rate.
        rate: f32,
    },
}

/// A stack of layers applied in order, like PyTorch's `nn.Sequential`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sequential {
    /// The layers, in order.
    pub layers: Vec<Layer>,
}

impl Sequential {
    /// A network from its layers.
    pub fn new(layers: Vec<Layer>) -> Self {
        Self { layers }
    }

    /// Inputs of the first layer with a size (0 if none).
    pub fn in_features(&self) -> usize {
        self.layers
            .iter()
            .find_map(|l| match l {
                Layer::Linear(l) => Some(l.in_features),
                Layer::BatchNorm1d(b) => Some(b.features),
                _ => None,
            })
            .unwrap_or(0)
    }

    /// Outputs of the last layer with a size (0 if none).
    pub fn out_features(&self) -> usize {
        self.layers
            .iter()
            .rev()
            .find_map(|l| match l {
                Layer::Linear(l) => Some(l.out_features),
                Layer::BatchNorm1d(b) => Some(b.features),
                _ => None,
            })
            .unwrap_or(0)
    }

    /// Widths of the activations: the input, then the output of each layer.
    pub fn widths(&self) -> Vec<usize> {
        let mut w = vec![self.in_features()];
        for l in &self.layers {
            let prev = *w.last().unwrap();
            w.push(match l {
                Layer::Linear(l) => l.out_features,
                _ => prev,
            });
        }
        w
    }

    /// The architecture of every layer.
    pub fn specs(&self) -> Vec<LayerSpec> {
        self.layers.iter().map(Layer::spec).collect()
    }

    /// Checks that consecutive sizes agree and rates are in `[0, 1)`; returns the first problem.
    pub fn validate(&self) -> Result<(), ArchitectureError> {
        use ArchitectureError as E;
        let rate_ok = |r: f32| (0.0..1.0).contains(&r);
        let mut width = self.in_features();
        for (layer, l) in self.layers.iter().enumerate() {
            match l {
                Layer::Linear(l) if l.in_features == 0 || l.out_features == 0 => {
                    return Err(E::ZeroWidth { layer });
                }
                Layer::BatchNorm1d(b) if b.features == 0 => {
                    return Err(E::ZeroWidth { layer });
                }
                Layer::Linear(l) => {
                    if l.in_features != width {
                        return Err(E::InputMismatch {
                            layer,
                            expects: l.in_features,
                            receives: width,
                        });
                    }
                    if l.weight.len() != l.in_features * l.out_features
                        || l.bias.len() != l.out_features
                    {
                        return Err(E::ParameterSizes { layer });
                    }
                    if !rate_ok(l.dropconnect) {
                        return Err(E::Rate {
                            layer,
                            what: "DropConnect",
                            rate: l.dropconnect,
                        });
                    }
                    width = l.out_features;
                }
                Layer::BatchNorm1d(b) if b.features != width => {
                    return Err(E::FeatureMismatch {
                        layer,
                        features: b.features,
                        receives: width,
                    });
                }
                Layer::Dropout(r) if !rate_ok(*r) => {
                    return Err(E::Rate {
                        layer,
                        what: "dropout",
                        rate: *r,
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Evaluation-mode forward pass of `batch` examples (row-major `[batch, in_features]`,
    /// already transformed): returns the outputs `[batch, out_features]`. Dropout is the
    /// identity, batch norm uses its running averages. Allocates its buffers; for repeated calls
    /// use [`Predictor`].
    pub fn predict(&self, x: &[f32], batch: usize) -> Vec<f32> {
        Predictor::new(self, batch.max(1))
            .predict_batch(x, batch)
            .to_vec()
    }
}

/// A trained model: network, input transform and class count.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// The network; its outputs are logits (softmax is applied by the loss, not stored).
    pub net: Sequential,
    /// Transform applied to raw inputs before the network.
    pub transform: InputTransform,
    /// Number of classes.
    pub classes: usize,
}

impl Model {
    /// Logits for `batch` raw (untransformed) examples.
    pub fn logits(&self, raw: &[f32], batch: usize) -> Vec<f32> {
        let mut x = raw.to_vec();
        let f = self.transform.features();
        x.chunks_exact_mut(f)
            .for_each(|r| self.transform.apply_row(r));
        self.net.predict(&x, batch)
    }
}

/// The predicted class of a row of outputs: the core's [`microdnn::argmax`], the one rule the
/// trainer, the exporter and the device share (first index on ties; NaNs never chosen unless
/// every output is NaN, then 0).
pub use microdnn::argmax;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_parts_of_the_wrong_size_are_an_error() {
        // These were assert!s: a panic in library code.
        let e = Linear::from_parts(2, 3, vec![0.0; 5], vec![0.0; 3]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Linear(2, 3) needs 2 x 3 weights and 3 biases, got 5 and 3"
        );
        assert!(Linear::from_parts(2, 3, vec![0.0; 6], vec![0.0; 2]).is_err());
        assert!(Linear::from_parts(usize::MAX, 2, vec![], vec![0.0; 2]).is_err());
        let l = Linear::from_parts(2, 1, vec![1.0, 2.0], vec![3.0]).unwrap();
        assert_eq!(l.row(0), &[1.0, 2.0]);
        let zero = Sequential::new(vec![Layer::Linear(Linear::zeros(3, 0))]);
        assert_eq!(
            zero.validate(),
            Err(ArchitectureError::ZeroWidth { layer: 0 })
        );
    }
}

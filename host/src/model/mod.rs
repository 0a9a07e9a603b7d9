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
//!     Layer::Linear(Linear::from_parts(2, 1, vec![1.0, -1.0], vec![0.5])),
//!     Layer::Activation(Activation::Relu),
//! ]);
//! assert_eq!(net.predict(&[3.0, 1.0, 0.0, 2.0], 2), vec![2.5, 0.0]);
//! ```

pub mod checkpoint;
pub mod metrics;

use microdnn::Activation;
use serde::{Deserialize, Serialize};

use crate::data::InputTransform;
use crate::nn::matmul;

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
    /// A layer from its weight (`[out, in]` row-major) and bias, without DropConnect.
    pub fn from_parts(
        in_features: usize,
        out_features: usize,
        weight: Vec<f32>,
        bias: Vec<f32>,
    ) -> Self {
        assert_eq!(weight.len(), in_features * out_features, "weight size");
        assert_eq!(bias.len(), out_features, "bias size");
        Self {
            in_features,
            out_features,
            weight,
            bias,
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
    type Error = String;

    fn try_from(r: RawLayerSpec) -> Result<Self, String> {
        let need = |v: Option<usize>, name: &str| {
            v.ok_or_else(|| format!("{} layer without `{name}`", r.kind))
        };
        let needf = |v: Option<f32>, name: &str| {
            v.ok_or_else(|| format!("{} layer without `{name}`", r.kind))
        };
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
                activation: r
                    .activation
                    .clone()
                    .ok_or("activation layer without `activation`")?,
                slope: r.slope,
            },
            "dropout" => LayerSpec::Dropout {
                rate: needf(r.rate, "rate")?,
            },
            other => return Err(format!("unknown layer kind `{other}`")),
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
    pub fn from_spec(spec: &LayerSpec) -> Result<Layer, String> {
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
                    .ok_or_else(|| format!("unknown activation {activation:?}"))?,
            ),
            LayerSpec::Dropout { rate } => Layer::Dropout(*rate),
        })
    }
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

    /// Checks that consecutive sizes agree; returns a description of the first mismatch.
    pub fn validate(&self) -> Result<(), String> {
        let mut width = self.in_features();
        for (i, l) in self.layers.iter().enumerate() {
            match l {
                Layer::Linear(l) => {
                    if l.in_features != width {
                        return Err(format!(
                            "layer {i}: Linear expects {} inputs but receives {width}",
                            l.in_features
                        ));
                    }
                    if l.weight.len() != l.in_features * l.out_features
                        || l.bias.len() != l.out_features
                    {
                        return Err(format!(
                            "layer {i}: Linear parameter sizes do not match its shape"
                        ));
                    }
                    if !(0.0..1.0).contains(&l.dropconnect) {
                        return Err(format!(
                            "layer {i}: DropConnect rate {} is not in [0, 1)",
                            l.dropconnect
                        ));
                    }
                    width = l.out_features;
                }
                Layer::BatchNorm1d(b) if b.features != width => {
                    return Err(format!(
                        "layer {i}: BatchNorm1d has {} features but receives {width}",
                        b.features
                    ));
                }
                Layer::Dropout(r) if !(0.0..1.0).contains(r) => {
                    return Err(format!("layer {i}: dropout rate {r} is not in [0, 1)"));
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

/// Runs `batch` rows of `x` through `steps` with buffers `a` and `b`; the output is left in
/// `a`. Returns the output width.
fn run_steps(
    steps: &[Step],
    a: &mut Vec<f32>,
    b: &mut Vec<f32>,
    x: &[f32],
    batch: usize,
    par: gemm::Parallelism,
) -> usize {
    let n = x.len();
    a[..n].copy_from_slice(x);
    let mut width = n / batch.max(1);
    for s in steps {
        match s {
            Step::Linear {
                w,
                b: bias,
                inp,
                out,
                ..
            } => {
                matmul::linear_forward(
                    &a[..batch * inp],
                    w,
                    bias,
                    &mut b[..batch * out],
                    batch,
                    *inp,
                    *out,
                    par,
                );
                std::mem::swap(a, b);
                width = *out;
            }
            Step::Affine { scale, shift } => {
                for row in a[..batch * width].chunks_exact_mut(width) {
                    for ((v, s), t) in row.iter_mut().zip(scale).zip(shift) {
                        *v = *v * s + t;
                    }
                }
            }
            Step::Act(act) => {
                if matches!(act, Activation::Softmax) {
                    a[..batch * width]
                        .chunks_exact_mut(width)
                        .for_each(|r| act.apply(r));
                } else {
                    act.apply(&mut a[..batch * width]);
                }
            }
        }
    }
    width
}

/// `[rows, cols]` row-major → `[cols, rows]` row-major.
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; m.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

/// One inference step of a [`Predictor`].
#[derive(Clone, Debug)]
enum Step {
    /// `y = x Wᵀ + b`, weight `[out, in]`.
    Linear {
        w: Vec<f32>,
        /// The same weights transposed, `[in, out]`, for the batch-1 path.
        wt: Vec<f32>,
        b: Vec<f32>,
        inp: usize,
        out: usize,
    },
    /// `y = x * scale + shift` (folded batch norm).
    Affine { scale: Vec<f32>, shift: Vec<f32> },
    /// Element-wise activation.
    Act(Activation),
}

/// Fast evaluation-mode inference with buffers allocated once: batch 1 takes a single-threaded
/// matrix-vector path (no thread pool, no allocation; weights kept transposed so that inputs
/// that are exactly zero, common after ReLU, are skipped), larger batches use GEMM. Batch norm is
/// folded into a per-feature scale and shift, dropout is dropped.
#[derive(Clone, Debug)]
pub struct Predictor {
    steps: Vec<Step>,
    max_batch: usize,
    max_width: usize,
    out_width: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    parallelism: gemm::Parallelism,
    /// Per-thread buffer pairs for split batches (empty when single-threaded).
    workers: Vec<(Vec<f32>, Vec<f32>)>,
    /// Gathered outputs of split batches.
    out: Vec<f32>,
    /// Indices of non-zero inputs (batch-1 path).
    nz: Vec<u32>,
}

impl Predictor {
    /// A predictor for batches of up to `max_batch` examples, single-threaded.
    pub fn new(net: &Sequential, max_batch: usize) -> Self {
        let mut steps = Vec::new();
        for l in &net.layers {
            match l {
                Layer::Linear(l) => steps.push(Step::Linear {
                    wt: transpose(&l.weight, l.out_features, l.in_features),
                    w: l.weight.clone(),
                    b: l.bias.clone(),
                    inp: l.in_features,
                    out: l.out_features,
                }),
                Layer::BatchNorm1d(bn) => {
                    let (scale, shift) = bn.folded();
                    steps.push(Step::Affine { scale, shift });
                }
                Layer::Activation(Activation::Identity) | Layer::Dropout(_) => {}
                Layer::Activation(a) => steps.push(Step::Act(*a)),
            }
        }
        let widths = net.widths();
        let max_width = widths.iter().copied().max().unwrap_or(0);
        Self {
            steps,
            max_batch,
            max_width,
            out_width: *widths.last().unwrap_or(&0),
            a: vec![0.0; max_batch * max_width],
            b: vec![0.0; max_batch * max_width],
            parallelism: gemm::Parallelism::None,
            workers: Vec::new(),
            out: Vec::new(),
            nz: vec![0; max_width],
        }
    }

    /// Uses up to `threads` threads of the current rayon pool for batches (see
    /// [`Predictor::predict_batch`]).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.parallelism = matmul::parallelism(threads);
        self.workers.clear();
        if threads > 1 {
            let rows = self.max_batch.div_ceil(threads);
            self.workers = (0..threads)
                .map(|_| {
                    (
                        vec![0.0; rows * self.max_width],
                        vec![0.0; rows * self.max_width],
                    )
                })
                .collect();
            self.out = vec![0.0; self.max_batch * self.out_width];
        }
        self
    }

    /// Outputs for one example, without allocating.
    pub fn predict_one(&mut self, x: &[f32]) -> &[f32] {
        let n = x.len();
        self.a[..n].copy_from_slice(x);
        let mut width = n;
        for s in &self.steps {
            match s {
                Step::Linear {
                    wt, b, inp, out, ..
                } => {
                    matmul::matvec_t_sparse(
                        wt,
                        b,
                        &self.a[..*inp],
                        &mut self.b[..*out],
                        &mut self.nz,
                    );
                    std::mem::swap(&mut self.a, &mut self.b);
                    width = *out;
                }
                Step::Affine { scale, shift } => {
                    for ((v, s), t) in self.a[..width].iter_mut().zip(scale).zip(shift) {
                        *v = *v * s + t;
                    }
                }
                Step::Act(a) => a.apply(&mut self.a[..width]),
            }
        }
        &self.a[..width]
    }

    /// Outputs `[batch, out]` for `batch <= max_batch` examples (row-major). With several
    /// threads and a large enough batch, the batch is cut into one contiguous block of rows per
    /// thread and each block runs through the whole network on its own thread and buffers
    /// (single-threaded GEMMs: no synchronisation between layers).
    pub fn predict_batch(&mut self, x: &[f32], batch: usize) -> &[f32] {
        assert!(
            batch <= self.max_batch,
            "batch {batch} > max_batch {}",
            self.max_batch
        );
        if batch == 1 {
            let n = self.predict_one(x).len();
            return &self.a[..n];
        }
        let inp = x.len() / batch;
        let threads = self.workers.len();
        if threads > 1 && batch >= 32 * threads {
            use rayon::prelude::*;
            let rows = batch.div_ceil(threads);
            let steps = &self.steps;
            self.workers
                .par_iter_mut()
                .zip(x.par_chunks(rows * inp))
                .for_each(|((a, b), xc)| {
                    run_steps(steps, a, b, xc, xc.len() / inp, gemm::Parallelism::None);
                });
            let ow = self.out_width;
            let mut done = 0;
            for ((a, _), xc) in self.workers.iter().zip(x.chunks(rows * inp)) {
                let n = xc.len() / inp * ow;
                self.out[done..done + n].copy_from_slice(&a[..n]);
                done += n;
            }
            return &self.out[..batch * ow];
        }
        let width = run_steps(
            &self.steps,
            &mut self.a,
            &mut self.b,
            x,
            batch,
            self.parallelism,
        );
        debug_assert_eq!(width, self.out_width);
        &self.a[..batch * width]
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
}

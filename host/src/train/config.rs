//! Training configuration, read from TOML (every field has a default) and written back resolved
//! as `config.toml` in the run folder.
//!
//! ```
//! let cfg: microdnn_host::train::config::TrainConfig = toml::from_str(r#"
//!     epochs = 5
//!     [model]
//!     hidden = [32]
//! "#).unwrap();
//! assert_eq!(cfg.model.hidden, vec![32]);
//! assert_eq!(cfg.data.dataset, microdnn_host::train::config::DatasetKind::Digits);
//! let per_layer: microdnn_host::train::config::TrainConfig = toml::from_str(r#"
//!     [model]
//!     hidden = [32, 16]
//!     dropout = [0.2, 0.5]
//! "#).unwrap();
//! let net = per_layer.model.build(64, 10).unwrap();
//! assert_eq!(net.layers[2], microdnn_host::model::Layer::Dropout(0.2));
//! assert_eq!(net.layers[5], microdnn_host::model::Layer::Dropout(0.5));
//! ```

use std::path::{Path, PathBuf};

use microdnn::Activation;
use serde::{Deserialize, Serialize};

use crate::model::{activation_from_name, BatchNorm1d, Layer, Linear, Sequential};
use crate::nn::dropout::DropoutKind;
use crate::nn::init::Init;
use crate::nn::loss::Loss;
use crate::nn::optim::OptimizerConfig;
use crate::nn::regularize::Regularization;
use crate::nn::schedule::{MomentumSchedule, Schedule};
use crate::nn::sparsity::Divergence;

/// A configuration that cannot be used, and what is wrong with it. Checks of settings belong
/// here, one variant each, so that a caller can tell them apart.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the configuration's schema.
    #[error("parsing {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's error (with the line).
        source: toml::de::Error,
    },
    /// `model.activation` names no hidden activation.
    #[error("unknown hidden activation {0:?}")]
    UnknownActivation(String),
    /// A dropout or DropConnect rate outside `[0, 1)`.
    #[error("dropout/DropConnect rate {0} is not in [0, 1)")]
    Rate(f32),
    /// A per-layer rate list whose length is not the number of hidden layers.
    #[error("{name} has {rates} rates for {hidden} hidden layers")]
    RateCount {
        /// `dropout` or `dropconnect`.
        name: &'static str,
        /// Rates given.
        rates: usize,
        /// Hidden layers.
        hidden: usize,
    },
    /// A zero batch size or an empty training split.
    #[error("batch_size and the training set must be non-empty")]
    NothingToTrain,
    /// The `init` checkpoint does not fit the configuration.
    #[error("init checkpoint {path} has another {what} than this configuration")]
    InitMismatch {
        /// The checkpoint.
        path: PathBuf,
        /// `architecture` or `input transform`.
        what: &'static str,
    },
    /// `microdnn pretrain` without a `[pretrain]` section.
    #[error("the configuration has no [pretrain] section")]
    NoPretrain,
    /// A momentum (of `optimizer` or `momentum_schedule`) outside `[0, 1)`.
    #[error("{name} = {value} is not in [0, 1)")]
    Momentum {
        /// The setting, e.g. `momentum_schedule.end`.
        name: &'static str,
        /// Its value.
        value: f32,
    },
    /// `momentum_schedule` with an optimiser that has no momentum.
    #[error(
        "momentum_schedule needs optimizer.kind = \"sgd\" or \"sgd_hinton\" (Adam has no momentum \
         to schedule)"
    )]
    MomentumScheduleNeedsSgd,
    /// `regularization.l1_from_epoch` that would never take effect.
    #[error(
        "regularization.l1_from_epoch = {from} {why} (epochs = {epochs}, regularization.l1 = {l1})"
    )]
    L1FromEpoch {
        /// The epoch L1 starts (0-based).
        from: usize,
        /// The run's epochs.
        epochs: usize,
        /// The L1 coefficient.
        l1: f32,
        /// What is wrong.
        why: &'static str,
    },
    /// An inverse-time schedule whose half-life is not a positive number.
    #[error("schedule.half_life = {0} must be a positive number of epochs")]
    HalfLife(f64),
    /// `regularization.sparsity` that cannot be used.
    #[error("regularization.sparsity: {0}")]
    Sparsity(String),
}

/// Which data set to train on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    /// The UCI handwritten digits (8x8, 1797 images), a CSV file.
    #[default]
    Digits,
    /// MNIST in IDX format (a folder with the four official files).
    Mnist,
    /// Any CSV file of numeric columns with an integer label column.
    Csv,
}

/// The input transform to fit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransformKind {
    /// Divide by `max_value` (16 for digits, 255 for MNIST by default).
    #[default]
    ScaleByMax,
    /// Zero mean and unit variance per input, fitted on the training split.
    Standardize,
    /// Raw inputs.
    None,
}

/// Data settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataConfig {
    /// Data set kind.
    pub dataset: DatasetKind,
    /// File (digits, csv) or folder (mnist); default: the bundled digits file, or
    /// `../shared/data/mnist` next to the workspace for MNIST.
    pub path: Option<PathBuf>,
    /// CSV label column (negative counts from the end; -1 = last).
    pub label_column: i64,
    /// Share of a CSV data set held out for testing (stratified). MNIST uses its official test
    /// set.
    pub test_fraction: f64,
    /// Share of the training data held out for validation (0 = none). Stratified for CSV data;
    /// for MNIST the last part of the official training set. Default: 0.1, or the last 5,000
    /// images (1/12) for MNIST.
    pub validation_fraction: Option<f64>,
    /// Input transform.
    pub transform: TransformKind,
    /// Divisor for [`TransformKind::ScaleByMax`] (default by data set: 16 digits, 255 MNIST,
    /// else the largest absolute value in the training split).
    pub max_value: Option<f32>,
}

impl DataConfig {
    /// The validation share in force (see [`DataConfig::validation_fraction`]).
    pub fn validation_fraction(&self) -> f64 {
        self.validation_fraction.unwrap_or(match self.dataset {
            DatasetKind::Mnist => 5000.0 / 60000.0,
            _ => 0.1,
        })
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dataset: DatasetKind::Digits,
            path: None,
            label_column: -1,
            test_fraction: 0.2,
            validation_fraction: None,
            transform: TransformKind::ScaleByMax,
            max_value: None,
        }
    }
}

/// Architecture settings: an MLP `inputs - hidden... - classes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelConfig {
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Hidden activation: identity, relu, leaky_relu, sigmoid, tanh.
    pub activation: String,
    /// Leaky ReLU slope.
    pub leaky_slope: f32,
    /// Batch norm between each hidden dense layer and its activation.
    pub batch_norm: bool,
    /// Batch-norm epsilon.
    pub bn_eps: f32,
    /// Batch-norm momentum.
    pub bn_momentum: f32,
    /// Dropout rate on the inputs (0 = none).
    pub input_dropout: f32,
    /// Dropout rate after each hidden activation (0 = none): one rate for all hidden layers
    /// (`dropout = 0.5`) or one per hidden layer (`dropout = [0.2, 0.5]`).
    pub dropout: Rates,
    /// DropConnect rate on the hidden dense layers (0 = none): one rate or one per hidden layer.
    pub dropconnect: Rates,
    /// Weight initialisation.
    pub init: Init,
    /// How dropout scales: `"inverted"` (default; kept units × 1/(1−p) in training) or
    /// `"classic"` (the papers': no rescaling in training, × (1−p) at test time; learning rate,
    /// L2, L1 and max-norm then act on the classic weights, as in Srivastava et al. 2014). A
    /// classic network is saved converted to inverted dropout; see [`crate::nn::dropout`].
    pub dropout_kind: DropoutKind,
}

/// A rate for every hidden layer, or one per hidden layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Rates {
    /// The same rate for every hidden layer.
    All(f32),
    /// One rate per hidden layer, in order.
    PerLayer(Vec<f32>),
}

impl Rates {
    /// The rate of hidden layer `i` (0 past the end of a list).
    pub fn rate(&self, i: usize) -> f32 {
        match self {
            Rates::All(r) => *r,
            Rates::PerLayer(v) => v.get(i).copied().unwrap_or(0.0),
        }
    }
}

impl From<f32> for Rates {
    fn from(r: f32) -> Self {
        Rates::All(r)
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            hidden: vec![64, 32],
            activation: "relu".into(),
            leaky_slope: microdnn::math::DEFAULT_LEAKY_SLOPE,
            batch_norm: false,
            bn_eps: 1e-5,
            bn_momentum: 0.1,
            input_dropout: 0.0,
            dropout: Rates::All(0.0),
            dropconnect: Rates::All(0.0),
            init: Init::HeNormal,
            dropout_kind: DropoutKind::Inverted,
        }
    }
}

impl ModelConfig {
    /// The hidden activation.
    pub fn activation(&self) -> Result<Activation, ConfigError> {
        activation_from_name(&self.activation, Some(self.leaky_slope))
            .filter(|a| *a != Activation::Softmax)
            .ok_or_else(|| ConfigError::UnknownActivation(self.activation.clone()))
    }

    /// The layer stack (zero weights) for `inputs` and `classes`, in PyTorch `Sequential` order:
    /// `[Dropout] (Linear [BatchNorm1d] Activation [Dropout])* Linear`.
    pub fn build(&self, inputs: usize, classes: usize) -> Result<Sequential, ConfigError> {
        let act = self.activation()?;
        let n = self.hidden.len();
        let rates = [self.input_dropout]
            .into_iter()
            .chain((0..n).map(|i| self.dropout.rate(i)))
            .chain((0..n).map(|i| self.dropconnect.rate(i)));
        for r in rates {
            if !(0.0..1.0).contains(&r) {
                return Err(ConfigError::Rate(r));
            }
        }
        for (name, r) in [
            ("dropout", &self.dropout),
            ("dropconnect", &self.dropconnect),
        ] {
            if let Rates::PerLayer(v) = r {
                if v.len() != n {
                    return Err(ConfigError::RateCount {
                        name,
                        rates: v.len(),
                        hidden: n,
                    });
                }
            }
        }
        let mut layers = Vec::new();
        if self.input_dropout > 0.0 {
            layers.push(Layer::Dropout(self.input_dropout));
        }
        let mut width = inputs;
        for (i, &h) in self.hidden.iter().enumerate() {
            let mut l = Linear::from_parts(width, h, vec![0.0; width * h], vec![0.0; h]);
            l.dropconnect = self.dropconnect.rate(i);
            layers.push(Layer::Linear(l));
            if self.batch_norm {
                layers.push(Layer::BatchNorm1d(BatchNorm1d::new(
                    h,
                    self.bn_eps,
                    self.bn_momentum,
                )));
            }
            layers.push(Layer::Activation(act));
            if self.dropout.rate(i) > 0.0 {
                layers.push(Layer::Dropout(self.dropout.rate(i)));
            }
            width = h;
        }
        layers.push(Layer::Linear(Linear::from_parts(
            width,
            classes,
            vec![0.0; width * classes],
            vec![0.0; classes],
        )));
        Ok(Sequential::new(layers))
    }
}

/// The metric early stopping watches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopMetric {
    /// Validation loss (lower is better).
    ValLoss,
    /// Validation accuracy (higher is better).
    #[default]
    ValAccuracy,
}

/// Early stopping: stop after `patience` epochs without improvement and restore the best
/// weights.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EarlyStopping {
    /// Watched metric.
    pub metric: StopMetric,
    /// Epochs without improvement before stopping.
    pub patience: usize,
    /// Smallest change that counts as an improvement.
    pub min_delta: f64,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        Self {
            metric: StopMetric::ValAccuracy,
            patience: 10,
            min_delta: 0.0,
        }
    }
}

/// Everything a training run needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Seed of every random choice (split, initialisation, shuffles, masks).
    pub seed: u64,
    /// Epochs.
    pub epochs: usize,
    /// Mini-batch size (the last partial batch is kept).
    pub batch_size: usize,
    /// Base learning rate.
    pub lr: f64,
    /// Threads (0 = all cores).
    pub threads: usize,
    /// Loss.
    pub loss: Loss,
    /// Data.
    pub data: DataConfig,
    /// Architecture.
    pub model: ModelConfig,
    /// Optimiser.
    pub optimizer: OptimizerConfig,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Momentum schedule (SGD): replaces `optimizer.momentum` epoch by epoch.
    pub momentum_schedule: Option<MomentumSchedule>,
    /// Regularisation.
    pub regularization: Regularization,
    /// Early stopping (needs a validation split).
    pub early_stopping: Option<EarlyStopping>,
    /// Greedy layer-wise autoencoder pretraining of the hidden layers before training.
    pub pretrain: Option<PretrainConfig>,
    /// Start from the weights of this checkpoint or run folder (e.g. written by `microdnn
    /// pretrain`) instead of a fresh initialisation; `[pretrain]` is then not run again.
    pub init: Option<PathBuf>,
    /// Per-layer diagnostics each epoch (gradient and weight norms, update ratios, dead units,
    /// activation percentiles; see [`crate::train::diagnostics`]), saved in `metrics.json`.
    pub diagnostics: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            epochs: 60,
            batch_size: 32,
            lr: 0.05,
            threads: 0,
            loss: Loss::CrossEntropy,
            data: DataConfig::default(),
            model: ModelConfig::default(),
            optimizer: OptimizerConfig::default(),
            schedule: Schedule::Constant,
            momentum_schedule: None,
            regularization: Regularization::default(),
            early_stopping: Some(EarlyStopping::default()),
            pretrain: None,
            init: None,
            diagnostics: true,
        }
    }
}

/// Greedy layer-wise pretraining method (see [`crate::train::pretrain`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Plain autoencoder.
    #[default]
    Autoencoder,
    /// Denoising autoencoder (corrupted input, clean target).
    Denoising,
    /// Sparse autoencoder (KL sparsity penalty; sigmoid hidden units).
    Sparse,
    /// Restricted Boltzmann machine with CD-k (sigmoid hidden units, inputs in [0, 1]).
    Rbm,
}

/// Input corruption of a denoising autoencoder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Corruption {
    /// Zero each input with probability `corruption_level`.
    #[default]
    Masking,
    /// Add Gaussian noise of standard deviation `corruption_level`.
    Gaussian,
}

/// Decoder activation of an autoencoder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecoderActivation {
    /// Sigmoid if the layer's inputs are all in [0, 1], else identity.
    #[default]
    Auto,
    /// Linear decoder (real-valued inputs).
    Identity,
    /// Sigmoid decoder (inputs in [0, 1]).
    Sigmoid,
}

/// Pretraining settings (`[pretrain]` in the config).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PretrainConfig {
    /// Method.
    pub method: Method,
    /// Epochs per layer.
    pub epochs: usize,
    /// Learning rate (SGD with momentum).
    pub lr: f32,
    /// Momentum.
    pub momentum: f32,
    /// Mini-batch size (default: the training batch size).
    pub batch_size: Option<usize>,
    /// Tied decoder weights `W' = Wᵀ` (autoencoders).
    pub tied: bool,
    /// Decoder activation (autoencoders).
    pub decoder_activation: DecoderActivation,
    /// Corruption kind (`denoising`).
    pub corruption: Corruption,
    /// Masking probability or Gaussian standard deviation (`denoising`).
    pub corruption_level: f32,
    /// Target mean activation ρ (`sparse`).
    pub sparsity_target: f32,
    /// Weight β of the KL penalty (`sparse`).
    pub sparsity_weight: f32,
    /// Gibbs steps of contrastive divergence (`rbm`).
    pub cd_k: usize,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        Self {
            method: Method::Autoencoder,
            epochs: 5,
            lr: 0.01,
            momentum: 0.9,
            batch_size: None,
            tied: false,
            decoder_activation: DecoderActivation::Auto,
            corruption: Corruption::Masking,
            corruption_level: 0.25,
            sparsity_target: 0.05,
            sparsity_weight: 0.01,
            cd_k: 1,
        }
    }
}

impl TrainConfig {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The config as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }

    /// Checks the settings that change from epoch to epoch or act on activations: momenta in
    /// `[0, 1)` and a momentum schedule only with SGD, an inverse-time schedule's positive
    /// half-life, an `l1_from_epoch` that takes effect
    /// (L1 set, before the last epoch), and a KL-sparsity penalty with a positive target (below
    /// 1 for sigmoid units), a finite non-negative weight and ReLU or sigmoid hidden units.
    pub fn check_epoch_settings(&self) -> Result<(), ConfigError> {
        let momentum = |name, value: f32| {
            if (0.0..1.0).contains(&value) {
                Ok(())
            } else {
                Err(ConfigError::Momentum { name, value })
            }
        };
        match self.optimizer {
            OptimizerConfig::Sgd { momentum: m, .. } => momentum("optimizer.momentum", m)?,
            OptimizerConfig::SgdHinton { momentum: m } => momentum("optimizer.momentum", m)?,
            OptimizerConfig::Adam { .. } if self.momentum_schedule.is_some() => {
                return Err(ConfigError::MomentumScheduleNeedsSgd)
            }
            OptimizerConfig::Adam { .. } => {}
        }
        if let Some(MomentumSchedule::Linear { start, end, .. }) = self.momentum_schedule {
            momentum("momentum_schedule.start", start)?;
            momentum("momentum_schedule.end", end)?;
        }
        if let Schedule::InverseTime { half_life } = self.schedule {
            if !(half_life > 0.0 && half_life.is_finite()) {
                return Err(ConfigError::HalfLife(half_life));
            }
        }
        let r = &self.regularization;
        if r.l1_from_epoch > 0 {
            let bad = |why| ConfigError::L1FromEpoch {
                from: r.l1_from_epoch,
                epochs: self.epochs,
                l1: r.l1,
                why,
            };
            if r.l1 == 0.0 {
                return Err(bad("is set but L1 is off"));
            }
            if r.l1_from_epoch >= self.epochs {
                return Err(bad("is past the last epoch: L1 would never apply"));
            }
        }
        if let Some(s) = r.sparsity {
            let act = self.model.activation()?;
            let div = Divergence::for_activation(act).ok_or_else(|| {
                ConfigError::Sparsity(format!(
                    "needs relu or sigmoid hidden units (a mean rate of {:?} units can be \
                     negative)",
                    self.model.activation
                ))
            })?;
            let max = if div == Divergence::Bernoulli {
                1.0
            } else {
                f32::INFINITY
            };
            if !(s.target > 0.0 && s.target < max) {
                return Err(ConfigError::Sparsity(format!(
                    "target = {} must be in (0, {max}) for {} units",
                    s.target, self.model.activation
                )));
            }
            if !(s.weight >= 0.0 && s.weight.is_finite()) {
                return Err(ConfigError::Sparsity(format!(
                    "weight = {} must be finite and non-negative",
                    s.weight
                )));
            }
        }
        Ok(())
    }

    /// Threads to use (resolving 0 to the number of cores).
    pub fn thread_count(&self) -> usize {
        if self.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.threads
        }
    }
}

/// The workspace's bundled digits file (`data/digits.csv.gz`), resolved at compile time.
pub fn default_digits_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/digits.csv.gz"
    ))
}

/// The shared MNIST folder next to the workspace (`../shared/data/mnist`), resolved at compile
/// time; pass `--data` to use another copy.
pub fn default_mnist_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/mnist"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_settings_are_typed_errors() {
        let m = ModelConfig {
            activation: "softmax".into(),
            ..ModelConfig::default()
        };
        assert!(matches!(m.build(4, 2), Err(ConfigError::UnknownActivation(a)) if a == "softmax"));
        let m = ModelConfig {
            dropout: Rates::PerLayer(vec![0.1]),
            ..ModelConfig::default()
        };
        assert!(matches!(
            m.build(4, 2),
            Err(ConfigError::RateCount {
                name: "dropout",
                rates: 1,
                hidden: 2
            })
        ));
        let m = ModelConfig {
            input_dropout: 1.0,
            ..ModelConfig::default()
        };
        assert!(matches!(m.build(4, 2), Err(ConfigError::Rate(r)) if r == 1.0));
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.toml");
        let e = TrainConfig::from_file(&missing).unwrap_err();
        assert!(
            matches!(&e, ConfigError::Read { path, .. } if *path == missing),
            "{e}"
        );
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "epochs = \"many\"\n").unwrap();
        let e = TrainConfig::from_file(&bad).unwrap_err();
        assert!(
            matches!(&e, ConfigError::Parse { path, .. } if *path == bad),
            "{e}"
        );
        let cause = std::error::Error::source(&e).unwrap().to_string();
        assert!(cause.contains("epochs"), "{cause}");
    }
}

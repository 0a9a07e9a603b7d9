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

pub use crate::data::Header;
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
    /// An empty training split.
    #[error("the training split is empty: nothing to train on")]
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
    /// A key the configuration does not have (a misspelling is never ignored).
    #[error(
        "{path} line {line}: unknown key `{key}`{}{}",
        section.as_ref().map_or(String::new(), |s| format!(" in [{s}]")),
        suggestion.as_ref().map_or(String::new(), |s| format!("; did you mean `{s}`?"))
    )]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// 1-based line of the key.
        line: usize,
        /// The key as written.
        key: String,
        /// The table it is in (`None`: the top level).
        section: Option<String>,
        /// The nearest valid key, if one is close.
        suggestion: Option<String>,
    },
    /// A setting outside the values it can take.
    #[error("{key} = {value}: expected {expected}")]
    OutOfRange {
        /// The setting (`data.test_fraction`, `model.hidden[1]`, ...).
        key: String,
        /// The value given.
        value: String,
        /// What it must be.
        expected: &'static str,
    },
    /// The network or its training buffers would be larger than the trainer allows.
    #[error(
        "{what} would need {count} values ({}), more than the limit of {limit}: {advice}",
        human_bytes(*count as f64 * 4.0)
    )]
    TooLarge {
        /// What is too large (`the network's parameters`, ...).
        what: &'static str,
        /// What to change.
        advice: &'static str,
        /// Values (f32) needed (saturated at `u64::MAX`).
        count: u64,
        /// The largest count allowed.
        limit: u64,
    },
}

/// `1.5 GiB`, `512 MiB`: a byte count for messages.
pub(crate) fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The most parameters (f32 values) a network may have: 2^28 (1 GiB of weights; training keeps
/// several copies: gradients, optimiser state, the best weights).
pub const MAX_PARAMETERS: u64 = 1 << 28;
/// The most values the per-batch training buffers may hold (`batch × Σ layer widths`, for
/// activations and their gradients): 2^28.
pub const MAX_BATCH_VALUES: u64 = 1 << 28;
/// The most threads a run may ask for.
pub const MAX_THREADS: usize = 1024;

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
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Data set kind (see [`DataConfig::dataset`] when it is not given).
    pub dataset: Option<DatasetKind>,
    /// File (digits, csv) or folder (mnist); default: the bundled digits file, or
    /// `../shared/data/mnist` next to the workspace for MNIST.
    pub path: Option<PathBuf>,
    /// CSV label column (negative counts from the end; -1 = last).
    pub label_column: i64,
    /// Whether a CSV file starts with a header row.
    pub header: Header,
    /// Number of classes: labels must be below it (a larger one is an error naming its line).
    /// Default: the largest label + 1, printed when training starts.
    pub classes: Option<usize>,
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
    /// The data set kind in force: the one given; else, with a `path`, inferred from it (a
    /// folder is MNIST, a file is CSV); else the bundled digits.
    pub fn dataset(&self) -> DatasetKind {
        match (self.dataset, &self.path) {
            (Some(d), _) => d,
            (None, Some(p)) if p.is_dir() => DatasetKind::Mnist,
            (None, Some(_)) => DatasetKind::Csv,
            (None, None) => DatasetKind::Digits,
        }
    }

    /// The validation share in force (see [`DataConfig::validation_fraction`]).
    pub fn validation_fraction(&self) -> f64 {
        self.validation_fraction.unwrap_or(match self.dataset() {
            DatasetKind::Mnist => 5000.0 / 60000.0,
            _ => 0.1,
        })
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dataset: None,
            path: None,
            label_column: -1,
            header: Header::Auto,
            classes: None,
            test_fraction: 0.2,
            validation_fraction: None,
            transform: TransformKind::ScaleByMax,
            max_value: None,
        }
    }
}

/// Architecture settings: an MLP `inputs - hidden... - classes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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

    /// The number of parameters of the network for `inputs` and `classes` (dense weights and
    /// biases, batch-norm scales and shifts), saturating.
    pub fn parameter_count(&self, inputs: usize, classes: usize) -> u64 {
        let mut total = 0u64;
        let mut width = inputs as u64;
        for &h in self.hidden.iter().chain(std::iter::once(&classes)) {
            let h = h as u64;
            total = total
                .saturating_add(width.saturating_mul(h))
                .saturating_add(h);
            width = h;
        }
        if self.batch_norm {
            let widths: u64 = self
                .hidden
                .iter()
                .map(|&h| h as u64)
                .fold(0, u64::saturating_add);
            total = total.saturating_add(widths.saturating_mul(2));
        }
        total
    }

    /// Checks that a network for `inputs` and `classes` stays within [`MAX_PARAMETERS`]
    /// (before anything is allocated).
    pub fn check_size(&self, inputs: usize, classes: usize) -> Result<(), ConfigError> {
        let count = self.parameter_count(inputs, classes);
        if count > MAX_PARAMETERS {
            return Err(ConfigError::TooLarge {
                what: "the network's parameters",
                advice: "make the hidden layers narrower (model.hidden)",
                count,
                limit: MAX_PARAMETERS,
            });
        }
        Ok(())
    }

    /// The layer stack (zero weights) for `inputs` and `classes`, in PyTorch `Sequential` order:
    /// `[Dropout] (Linear [BatchNorm1d] Activation [Dropout])* Linear`.
    pub fn build(&self, inputs: usize, classes: usize) -> Result<Sequential, ConfigError> {
        let act = self.activation()?;
        self.check_rates()?;
        for (i, &h) in self.hidden.iter().enumerate() {
            if h == 0 {
                return Err(ConfigError::OutOfRange {
                    key: format!("model.hidden[{i}]"),
                    value: "0".into(),
                    expected: "a width of at least 1",
                });
            }
        }
        self.check_size(inputs, classes)?;
        let mut layers = Vec::new();
        if self.input_dropout > 0.0 {
            layers.push(Layer::Dropout(self.input_dropout));
        }
        let mut width = inputs;
        for (i, &h) in self.hidden.iter().enumerate() {
            let mut l = Linear::zeros(width, h);
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
        layers.push(Layer::Linear(Linear::zeros(width, classes)));
        Ok(Sequential::new(layers))
    }

    /// Dropout and DropConnect rates in `[0, 1)`, and per-layer lists as long as `hidden`.
    fn check_rates(&self) -> Result<(), ConfigError> {
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
        Ok(())
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
#[serde(default, deny_unknown_fields)]
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
#[serde(default, deny_unknown_fields)]
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
#[serde(default, deny_unknown_fields)]
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
    /// Reads a TOML file. Unknown keys are errors naming the line and the nearest valid key;
    /// values are checked with [`TrainConfig::validate`].
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let cfg: Self = toml::from_str(&text).map_err(|source| {
            unknown_key(path, &text, &source).unwrap_or(ConfigError::Parse {
                path: path.to_path_buf(),
                source,
            })
        })?;
        cfg.validate()?;
        Ok(cfg)
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

/// The error for a key serde did not know, with the nearest valid key (from serde's list of
/// expected fields) and the `[section]` the key sits in.
fn unknown_key(path: &Path, text: &str, e: &toml::de::Error) -> Option<ConfigError> {
    let msg = e.message();
    let rest = msg.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let expected: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    let suggestion = expected
        .iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), *k))
        .filter(|&(d, k)| d <= (k.len().max(key.len()) / 3).max(1) + 1)
        .min()
        .map(|(_, k)| k.to_string());
    let at = e.span().map_or(0, |s| s.start).min(text.len());
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    // The last table header on a line before the key's own line.
    let section = before[..before.rfind('\n').map_or(0, |i| i + 1)]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
        .filter(|s| !s.is_empty());
    Some(ConfigError::UnknownKey {
        path: path.to_path_buf(),
        line,
        key: key.to_string(),
        section,
        suggestion,
    })
}

/// A value as messages show it: integers as they are; floats in plain notation, or in
/// scientific notation when very large or very small (never a 300-digit number).
pub trait Shown {
    /// The text.
    fn shown(&self) -> String;
}

impl Shown for usize {
    fn shown(&self) -> String {
        self.to_string()
    }
}

impl Shown for f64 {
    fn shown(&self) -> String {
        let a = self.abs();
        if a == 0.0 || !a.is_finite() || (1e-4..1e15).contains(&a) {
            format!("{self}")
        } else {
            format!("{self:e}")
        }
    }
}

impl Shown for f32 {
    fn shown(&self) -> String {
        let a = self.abs();
        if a == 0.0 || !a.is_finite() || (1e-4..1e15).contains(&a) {
            format!("{self}")
        } else {
            format!("{self:e}")
        }
    }
}

/// Checks one setting: `Ok` if `ok`, else [`ConfigError::OutOfRange`].
fn check(
    key: &str,
    value: impl Shown,
    ok: bool,
    expected: &'static str,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            key: key.into(),
            value: value.shown(),
            expected,
        })
    }
}

const FRACTION: &str = "a number in [0, 1)";
const POSITIVE: &str = "a finite number > 0";
const NON_NEGATIVE: &str = "a finite number >= 0";
const AT_LEAST_ONE: &str = "at least 1";

fn fraction(v: f64) -> bool {
    (0.0..1.0).contains(&v)
}
fn positive(v: f64) -> bool {
    v.is_finite() && v > 0.0
}
fn non_negative(v: f64) -> bool {
    v.is_finite() && v >= 0.0
}

impl TrainConfig {
    /// Checks every numeric setting against the values it can take (a learning rate is
    /// positive, a fraction lies in `[0, 1)`, a momentum in `[0, 1)`, ...): the first one out of
    /// range is an error naming it. Sizes that depend on the data (the network's parameters,
    /// the labels) are checked when the data is known.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check("epochs", self.epochs, self.epochs >= 1, AT_LEAST_ONE)?;
        check(
            "batch_size",
            self.batch_size,
            self.batch_size >= 1,
            AT_LEAST_ONE,
        )?;
        check("lr", self.lr, positive(self.lr), POSITIVE)?;
        check(
            "threads",
            self.threads,
            self.threads <= MAX_THREADS,
            "at most 1024 (0 = all cores)",
        )?;
        self.data.validate()?;
        self.model.validate()?;
        validate_optimizer(&self.optimizer)?;
        validate_schedule(&self.schedule)?;
        validate_regularization(&self.regularization)?;
        if let Some(es) = &self.early_stopping {
            check(
                "early_stopping.patience",
                es.patience,
                es.patience >= 1,
                AT_LEAST_ONE,
            )?;
            check(
                "early_stopping.min_delta",
                es.min_delta,
                non_negative(es.min_delta),
                NON_NEGATIVE,
            )?;
        }
        if let Some(p) = &self.pretrain {
            p.validate()?;
        }
        Ok(())
    }
}

impl DataConfig {
    /// Checks the fractions, `max_value` and `classes`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(
            "data.test_fraction",
            self.test_fraction,
            fraction(self.test_fraction),
            FRACTION,
        )?;
        if let Some(v) = self.validation_fraction {
            check("data.validation_fraction", v, fraction(v), FRACTION)?;
        }
        if let Some(m) = self.max_value {
            check("data.max_value", m, positive(m as f64), POSITIVE)?;
        }
        if let Some(c) = self.classes {
            check(
                "data.classes",
                c,
                (2..=crate::data::MAX_CLASSES).contains(&c),
                "a class count from 2 to 1024",
            )?;
        }
        Ok(())
    }
}

impl ModelConfig {
    /// Checks widths, rates and the batch-norm and leaky-ReLU settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (i, &h) in self.hidden.iter().enumerate() {
            check(
                &format!("model.hidden[{i}]"),
                h,
                h >= 1,
                "a width of at least 1",
            )?;
        }
        self.activation()?;
        check(
            "model.leaky_slope",
            self.leaky_slope,
            self.leaky_slope.is_finite(),
            "a finite number",
        )?;
        check(
            "model.bn_eps",
            self.bn_eps,
            positive(self.bn_eps as f64),
            POSITIVE,
        )?;
        check(
            "model.bn_momentum",
            self.bn_momentum,
            (0.0..=1.0).contains(&self.bn_momentum),
            "a number in [0, 1]",
        )?;
        self.check_rates()
    }
}

fn validate_optimizer(o: &OptimizerConfig) -> Result<(), ConfigError> {
    match *o {
        OptimizerConfig::Sgd { momentum, .. } | OptimizerConfig::SgdHinton { momentum } => check(
            "optimizer.momentum",
            momentum,
            fraction(momentum as f64),
            FRACTION,
        ),
        OptimizerConfig::Adam { beta1, beta2, eps } => {
            check("optimizer.beta1", beta1, fraction(beta1 as f64), FRACTION)?;
            check("optimizer.beta2", beta2, fraction(beta2 as f64), FRACTION)?;
            check("optimizer.eps", eps, positive(eps as f64), POSITIVE)
        }
    }
}

fn validate_schedule(s: &Schedule) -> Result<(), ConfigError> {
    match *s {
        Schedule::Constant => Ok(()),
        Schedule::Step { step_size, gamma } => {
            check(
                "schedule.step_size",
                step_size,
                step_size >= 1,
                AT_LEAST_ONE,
            )?;
            check("schedule.gamma", gamma, positive(gamma), POSITIVE)
        }
        Schedule::Cosine { min_lr } => check(
            "schedule.min_lr",
            min_lr,
            non_negative(min_lr),
            NON_NEGATIVE,
        ),
        Schedule::Exponential { gamma } => {
            check("schedule.gamma", gamma, positive(gamma), POSITIVE)
        }
        Schedule::InverseTime { half_life } => check(
            "schedule.half_life",
            half_life,
            positive(half_life),
            POSITIVE,
        ),
    }
}

fn validate_regularization(r: &Regularization) -> Result<(), ConfigError> {
    check(
        "regularization.l1",
        r.l1,
        non_negative(r.l1 as f64),
        NON_NEGATIVE,
    )?;
    check(
        "regularization.l2",
        r.l2,
        non_negative(r.l2 as f64),
        NON_NEGATIVE,
    )?;
    if let Some(m) = r.max_norm {
        check("regularization.max_norm", m, positive(m as f64), POSITIVE)?;
    }
    if let Some(c) = r.clip_grad_norm {
        check(
            "regularization.clip_grad_norm",
            c,
            positive(c as f64),
            POSITIVE,
        )?;
    }
    Ok(())
}

impl PretrainConfig {
    /// Checks the pretraining settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(
            "pretrain.epochs",
            self.epochs,
            self.epochs >= 1,
            AT_LEAST_ONE,
        )?;
        check("pretrain.lr", self.lr, positive(self.lr as f64), POSITIVE)?;
        check(
            "pretrain.momentum",
            self.momentum,
            fraction(self.momentum as f64),
            FRACTION,
        )?;
        if let Some(b) = self.batch_size {
            check("pretrain.batch_size", b, b >= 1, AT_LEAST_ONE)?;
        }
        let level = self.corruption_level as f64;
        match self.corruption {
            Corruption::Masking => check(
                "pretrain.corruption_level",
                level,
                fraction(level),
                "a masking probability in [0, 1)",
            )?,
            Corruption::Gaussian => check(
                "pretrain.corruption_level",
                level,
                non_negative(level),
                "a standard deviation >= 0",
            )?,
        }
        let rho = self.sparsity_target as f64;
        check(
            "pretrain.sparsity_target",
            rho,
            rho > 0.0 && rho < 1.0,
            "a number in (0, 1)",
        )?;
        let beta = self.sparsity_weight as f64;
        check(
            "pretrain.sparsity_weight",
            beta,
            non_negative(beta),
            NON_NEGATIVE,
        )?;
        check(
            "pretrain.cd_k",
            self.cd_k,
            (1..=1000).contains(&self.cd_k),
            "from 1 to 1000 Gibbs steps",
        )
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

    /// `text` parsed as a config file named `c.toml`.
    fn from_text(text: &str) -> Result<TrainConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, text).unwrap();
        TrainConfig::from_file(&p)
    }

    #[test]
    fn every_numeric_setting_is_range_checked() {
        // Each of these trained garbage, panicked or aborted before it was checked.
        let cases = [
            ("epochs = 0", "epochs = 0"),
            ("batch_size = 0", "batch_size = 0"),
            ("lr = 0.0", "lr = 0"),
            ("lr = -1.0", "lr = -1"),
            ("lr = nan", "lr = NaN"),
            ("threads = 100000000", "threads = 100000000"),
            ("[data]\ntest_fraction = 1.5", "data.test_fraction = 1.5"),
            ("[data]\ntest_fraction = -0.1", "data.test_fraction = -0.1"),
            ("[data]\ntest_fraction = nan", "data.test_fraction = NaN"),
            (
                "[data]\nvalidation_fraction = 1.0",
                "data.validation_fraction = 1",
            ),
            ("[data]\nmax_value = 0.0", "data.max_value = 0"),
            ("[data]\nclasses = 0", "data.classes = 0"),
            ("[model]\nhidden = [8, 0]", "model.hidden[1] = 0"),
            ("[model]\nbn_momentum = 2.0", "model.bn_momentum = 2"),
            ("[model]\nbn_eps = -1.0", "model.bn_eps = -1"),
            ("[model]\nleaky_slope = nan", "model.leaky_slope = NaN"),
            ("[model]\ndropout = 1.0", "rate 1 is not in [0, 1)"),
            (
                "[optimizer]\nkind = \"sgd\"\nmomentum = -0.5",
                "optimizer.momentum = -0.5",
            ),
            (
                "[optimizer]\nkind = \"sgd\"\nmomentum = 1.5",
                "optimizer.momentum = 1.5",
            ),
            (
                "[optimizer]\nkind = \"adam\"\nbeta2 = 1.0",
                "optimizer.beta2 = 1",
            ),
            (
                "[schedule]\nkind = \"step\"\nstep_size = 0\ngamma = 0.5",
                "schedule.step_size = 0",
            ),
            (
                "[schedule]\nkind = \"exponential\"\ngamma = -1e300",
                "schedule.gamma = -1e300",
            ),
            ("[regularization]\nl2 = -1.0", "regularization.l2 = -1"),
            ("[regularization]\nl1 = -0.5", "regularization.l1 = -0.5"),
            (
                "[regularization]\nmax_norm = 0.0",
                "regularization.max_norm = 0",
            ),
            (
                "[regularization]\nclip_grad_norm = -1.0",
                "regularization.clip_grad_norm = -1",
            ),
            (
                "[early_stopping]\npatience = 0",
                "early_stopping.patience = 0",
            ),
            (
                "[pretrain]\ncorruption_level = 2.0",
                "pretrain.corruption_level = 2",
            ),
            ("[pretrain]\ncd_k = 0", "pretrain.cd_k = 0"),
            ("[pretrain]\nlr = 0.0", "pretrain.lr = 0"),
            (
                "[pretrain]\nsparsity_target = 1.0",
                "pretrain.sparsity_target = 1",
            ),
        ];
        for (text, says) in cases {
            let e = from_text(text).expect_err(text).to_string();
            assert!(e.contains(says), "{text:?}: {e}");
        }
        from_text("[data]\ntest_fraction = 0.0\nvalidation_fraction = 0.0").unwrap();
        let digits = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/digits.toml");
        TrainConfig::from_file(Path::new(digits)).unwrap();
    }

    #[test]
    fn unknown_keys_name_the_line_and_the_nearest_valid_key() {
        let cases = [
            (
                "epochs = 1\n[model]\nhiden = [4]",
                "line 3: unknown key `hiden` in [model]; did you mean `hidden`?",
            ),
            (
                "epochs = 1\n[modle]\nhidden = [4]",
                "line 2: unknown key `modle`; did you mean `model`?",
            ),
            (
                "[optimizer]\nkind = \"sgd\"\nmomentun = 0.5",
                "unknown key `momentun`; did you mean `momentum`?",
            ),
            (
                "[regularization]\nl3 = 0.1",
                "unknown key `l3` in [regularization]; did you mean `l1`?",
            ),
            (
                "[data]\nheader = true\nheadr = false",
                "unknown key `headr` in [data]; did you mean `header`?",
            ),
        ];
        for (text, says) in cases {
            let e = from_text(text).expect_err(text).to_string();
            assert!(e.contains(says), "{text:?}: {e}");
        }
        // Nothing near: no suggestion.
        let e = from_text("zzzzzzzz = 1").unwrap_err().to_string();
        assert!(e.ends_with("unknown key `zzzzzzzz`"), "{e}");
    }

    #[test]
    fn sizes_are_checked_before_anything_is_allocated() {
        let m = ModelConfig {
            hidden: vec![1_000_000_000],
            ..ModelConfig::default()
        };
        assert_eq!(m.parameter_count(64, 10), 75_000_000_010);
        let e = m.build(64, 10).unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::TooLarge {
                    count: 75_000_000_010,
                    ..
                }
            ),
            "{e}"
        );
        let m = ModelConfig {
            hidden: vec![usize::MAX, usize::MAX],
            ..ModelConfig::default()
        };
        assert_eq!(m.parameter_count(usize::MAX, 10), u64::MAX);
        assert!(m.build(64, 10).is_err());
        // The parameter count is exact: 64*64+64 + 64*32+32 + 32*10+10.
        assert_eq!(ModelConfig::default().parameter_count(64, 10), 6570);
        let net = ModelConfig::default().build(64, 10).unwrap();
        let params: usize = net
            .layers
            .iter()
            .map(|l| match l {
                Layer::Linear(l) => l.weight.len() + l.bias.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(params, 6570);
    }

    #[test]
    fn the_dataset_is_inferred_from_the_data_path_and_numbers_are_shown_short() {
        let mut d = DataConfig::default();
        assert_eq!(d.dataset(), DatasetKind::Digits);
        d.path = Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        assert_eq!(d.dataset(), DatasetKind::Mnist);
        d.path = Some(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/Cargo.toml"
        )));
        assert_eq!(d.dataset(), DatasetKind::Csv);
        d.dataset = Some(DatasetKind::Digits);
        assert_eq!(d.dataset(), DatasetKind::Digits);
        assert_eq!(1e300f64.shown(), "1e300");
        assert_eq!(0.05f64.shown(), "0.05");
        assert_eq!(1e-7f32.shown(), "1e-7");
        assert_eq!(f64::NAN.shown(), "NaN");
        for (text, h) in [
            ("true", Header::Yes),
            ("false", Header::No),
            ("\"auto\"", Header::Auto),
        ] {
            let c = from_text(&format!("[data]\nheader = {text}")).unwrap();
            assert_eq!(c.data.header, h);
            assert!(
                c.to_toml().contains(&format!("header = {text}")),
                "{}",
                c.to_toml()
            );
        }
        let e = from_text("[data]\nheader = \"maybe\"").unwrap_err();
        let cause = std::error::Error::source(&e).unwrap().to_string();
        assert!(
            cause.contains("expected true, false or \"auto\""),
            "{cause}"
        );
    }
}

//! Where training starts: a network built from the config and initialised (random stream 1),
//! then either the weights of a checkpoint (`init`) or greedy layer-wise pretraining
//! (`[pretrain]`, random stream 4); and `microdnn pretrain`, which stops there.

use std::path::Path;

use crate::model::checkpoint::{self, MODEL_FILE};
use crate::model::{Layer, Model, Sequential};
use crate::random::{rng_for, TrainRng};
use crate::train::config::{ConfigError, TrainConfig};
use crate::train::folder::{RunFolder, Use};
use crate::train::metrics::{write_metrics, RunMetrics};
use crate::train::pretrain::LayerPretraining;
use crate::train::{thread_pool, PreparedData, TrainError, CONFIG_FILE};

/// Initialises the weights of `seq` (biases zero) from `rng`, layer by layer.
pub fn init_weights(seq: &mut Sequential, init: crate::nn::init::Init, rng: &mut TrainRng) {
    for l in &mut seq.layers {
        if let Layer::Linear(l) = l {
            init.fill(&mut l.weight, l.in_features, l.out_features, rng);
            l.bias.iter_mut().for_each(|b| *b = 0.0);
        }
    }
}

/// The network training starts from: built and initialised (random stream 1), then, if
/// `prepare` (not on resume), either replaced by the weights of the checkpoint `cfg.init` (same
/// architecture and input transform; no pretraining) or pretrained with `[pretrain]`.
pub fn initial_network(
    cfg: &TrainConfig,
    data: &PreparedData,
    threads: usize,
    prepare: bool,
) -> Result<(Sequential, Vec<LayerPretraining>), TrainError> {
    let mut seq = cfg.model.build(data.train.features, data.train.classes)?;
    init_weights(&mut seq, cfg.model.init, &mut rng_for(cfg.seed, 1));
    if !prepare {
        return Ok((seq, Vec::new()));
    }
    if let Some(path) = &cfg.init {
        let m = checkpoint::load_model(path)?;
        let bad = |what| ConfigError::InitMismatch {
            path: path.clone(),
            what,
        };
        if m.net.specs() != seq.specs() {
            return Err(bad("architecture").into());
        }
        if m.transform != data.transform {
            return Err(bad("input transform").into());
        }
        return Ok((m.net, Vec::new()));
    }
    let pretraining = match &cfg.pretrain {
        Some(p) => crate::train::pretrain::pretrain(
            &mut seq,
            &data.train,
            p,
            cfg.seed,
            cfg.batch_size,
            threads,
        )?,
        None => Vec::new(),
    };
    Ok((seq, pretraining))
}

/// [`initial_network`] for a fresh run (`init` or `[pretrain]` applied), on a pool of the
/// config's threads: the network epoch 1 starts from.
pub fn starting_network(
    cfg: &TrainConfig,
    data: &PreparedData,
) -> Result<(Sequential, Vec<LayerPretraining>), TrainError> {
    let threads = cfg.thread_count();
    thread_pool(threads)?.install(|| initial_network(cfg, data, threads, true))
}

/// `microdnn pretrain`: builds and initialises the configured classifier (as `train` does),
/// pretrains its hidden layers with the config's `[pretrain]` section and, with an output
/// folder, writes `model.safetensors` (fine-tune it with `microdnn train --init DIR`, or set
/// `init` in the config), `config.toml` and `metrics.json` (no epochs; the `pretraining`
/// losses). `cfg.init` is ignored. A folder holding a run is refused unless `replace`.
pub fn pretrain_only(
    cfg: &TrainConfig,
    data: &PreparedData,
    out_dir: Option<&Path>,
    replace: bool,
) -> Result<(Model, Vec<LayerPretraining>), TrainError> {
    if cfg.pretrain.is_none() {
        return Err(ConfigError::NoPretrain.into());
    }
    let cfg = TrainConfig {
        init: None,
        ..cfg.clone()
    };
    cfg.validate()?;
    let folder = match out_dir {
        Some(dir) => Some(RunFolder::open(dir, Use::Fresh { replace })?.0),
        None => None,
    };
    let (seq, report) = starting_network(&cfg, data)?;
    let model = Model {
        net: seq,
        transform: data.transform.clone(),
        classes: data.train.classes,
    };
    if let Some(dir) = folder.as_ref().map(RunFolder::dir) {
        checkpoint::atomic_write(&dir.join(CONFIG_FILE), cfg.to_toml().as_bytes())?;
        checkpoint::save_model(&dir.join(MODEL_FILE), &model)?;
        let metrics = RunMetrics {
            epochs: Vec::new(),
            test_loss: None,
            test_accuracy: None,
            best_epoch: None,
            stopped_early: false,
            pretraining: report.clone(),
            diagnostics_at_init: Vec::new(),
        };
        write_metrics(dir, &metrics)?;
    }
    Ok((model, report))
}

//! The data of a run: loaded, split (seeded, stratified) and transformed as its config says.
//!
//! Random stream 0 of the seed draws the splits, so [`raw_test_split`] finds the same test
//! examples [`prepare_data`] held out.

use std::path::{Path, PathBuf};

use crate::data::{self, split, Dataset, InputTransform};
use crate::random::rng_for;
use crate::train::config::{
    default_digits_path, default_mnist_dir, DatasetKind, TrainConfig, TransformKind,
};
use crate::train::CONFIG_FILE;

/// The splits of a run, transformed, and the fitted transform.
#[derive(Clone, Debug)]
pub struct PreparedData {
    /// Training split.
    pub train: Dataset,
    /// Validation split (for early stopping and monitoring).
    pub val: Option<Dataset>,
    /// Test split.
    pub test: Option<Dataset>,
    /// The transform fitted on the training split (already applied to every split).
    pub transform: InputTransform,
}

/// The data file or folder for a config (its `path`, else the built-in default).
pub fn data_path(cfg: &TrainConfig) -> PathBuf {
    cfg.data
        .path
        .clone()
        .unwrap_or_else(|| match cfg.data.dataset {
            DatasetKind::Mnist => default_mnist_dir(),
            _ => default_digits_path(),
        })
}

/// Loads a data set: for CSV data the whole file (test = `None`), for MNIST the official
/// training and test sets.
pub fn load_raw(cfg: &TrainConfig) -> anyhow::Result<(Dataset, Option<Dataset>)> {
    let path = data_path(cfg);
    Ok(match cfg.data.dataset {
        DatasetKind::Mnist => {
            let (tr, te) = data::load_mnist(&path)?;
            (tr, Some(te))
        }
        DatasetKind::Digits | DatasetKind::Csv => {
            (data::load_csv(&path, cfg.data.label_column)?, None)
        }
    })
}

/// The raw (untransformed) test split of a run: MNIST's official test set, or the same seeded
/// stratified split of a CSV file that [`prepare_data`] holds out (`None` without one). What
/// [`test_data`] scores a trained model on.
pub fn raw_test_split(cfg: &TrainConfig) -> anyhow::Result<Option<Dataset>> {
    let (all, official_test) = load_raw(cfg)?;
    Ok(match official_test {
        Some(t) => Some(t),
        None if cfg.data.test_fraction > 0.0 => {
            let mut rng = rng_for(cfg.seed, 0);
            let s = split::stratified_split(&all.y, cfg.data.test_fraction, &mut rng);
            Some(all.split(&s).1)
        }
        None => None,
    })
}

/// The raw (untransformed) examples of a run that are not its test split: the training and
/// validation examples, in file order (MNIST: its official training set). What int8
/// quantization calibrates on (`microdnn export --quantize int8`): never test examples.
pub fn raw_training_split(cfg: &TrainConfig) -> anyhow::Result<Dataset> {
    let (all, official_test) = load_raw(cfg)?;
    Ok(match official_test {
        Some(_) => all,
        None if cfg.data.test_fraction > 0.0 => {
            let mut rng = rng_for(cfg.seed, 0);
            let s = split::stratified_split(&all.y, cfg.data.test_fraction, &mut rng);
            all.split(&s).0
        }
        None => all,
    })
}

/// Loads, splits and transforms the data of a run (deterministic for a seed).
pub fn prepare_data(cfg: &TrainConfig) -> anyhow::Result<PreparedData> {
    let (all, official_test) = load_raw(cfg)?;
    let mut rng = rng_for(cfg.seed, 0);
    let (trainval, test) = match official_test {
        Some(t) => (all, Some(t)),
        None if cfg.data.test_fraction > 0.0 => {
            let s = split::stratified_split(&all.y, cfg.data.test_fraction, &mut rng);
            let (a, b) = all.split(&s);
            (a, Some(b))
        }
        None => (all, None),
    };
    let (mut train, mut val) = if cfg.data.validation_fraction() > 0.0 {
        let s = if cfg.data.dataset == DatasetKind::Mnist {
            split::tail_split(trainval.len(), cfg.data.validation_fraction())
        } else {
            split::stratified_split(&trainval.y, cfg.data.validation_fraction(), &mut rng)
        };
        let (a, b) = trainval.split(&s);
        (a, Some(b))
    } else {
        (trainval, None)
    };
    let mut test = test;
    let classes = [Some(&train), val.as_ref(), test.as_ref()]
        .into_iter()
        .flatten()
        .map(|d| d.classes)
        .max()
        .unwrap_or(0);
    let transform = match cfg.data.transform {
        TransformKind::None => InputTransform::identity(train.features),
        TransformKind::Standardize => InputTransform::standardize(&train),
        TransformKind::ScaleByMax => {
            let max = cfg.data.max_value.unwrap_or(match cfg.data.dataset {
                DatasetKind::Digits => 16.0,
                DatasetKind::Mnist => 255.0,
                DatasetKind::Csv => train
                    .x
                    .iter()
                    .fold(0.0f32, |m, v| m.max(v.abs()))
                    .max(f32::MIN_POSITIVE),
            });
            InputTransform::scale_by_max(train.features, max)
        }
    };
    for d in [Some(&mut train), val.as_mut(), test.as_mut()]
        .into_iter()
        .flatten()
    {
        d.classes = classes;
        transform.apply(d);
    }
    Ok(PreparedData {
        train,
        val,
        test,
        transform,
    })
}

/// The data a trained model is scored on (`microdnn score`, and `microdnn eval` on a device):
/// the raw test split of the run whose `config.toml` sits beside `checkpoint` (same seed and
/// fractions: [`raw_test_split`]); or the whole data file with `whole`, without a checkpoint, or
/// when its folder holds no run config. MNIST always gives its official test set. `dataset` and
/// `data` override the run's (another data set also drops the run's data path).
pub fn test_data(
    checkpoint: Option<&Path>,
    dataset: Option<DatasetKind>,
    data: Option<PathBuf>,
    whole: bool,
) -> anyhow::Result<Dataset> {
    let run_cfg = checkpoint
        .and_then(|c| c.parent())
        .map(|d| d.join(CONFIG_FILE))
        .filter(|p| p.exists())
        .map(|p| TrainConfig::from_file(&p))
        .transpose()?;
    let mut cfg = run_cfg.clone().unwrap_or_default();
    if let Some(d) = dataset {
        if d != cfg.data.dataset {
            cfg.data.path = None;
        }
        cfg.data.dataset = d;
    }
    if let Some(p) = data {
        cfg.data.path = Some(p);
    }
    let whole = whole || run_cfg.is_none();
    match (whole, raw_test_split(&cfg)?) {
        (false, Some(test)) => Ok(test),
        (_, Some(test)) if cfg.data.dataset == DatasetKind::Mnist => Ok(test),
        _ => Ok(load_raw(&cfg)?.0),
    }
}

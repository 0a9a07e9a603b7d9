//! The data of a run: loaded, split (seeded, stratified) and transformed as its config says,
//! and the [`DataRecord`] that rebuilds its test split later.
//!
//! Random stream 0 of the seed draws the splits, so [`raw_test_split`] finds the same test
//! examples [`prepare_data`] held out. A trained model's checkpoint carries the record
//! (metadata `microdnn.data`): where the data was, how it was read and split, and a checksum
//! of the test split, so that [`scoring_data`] rebuilds exactly that split, or refuses.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::data::{self, split, CsvOptions, DataError, Dataset, Header, InputTransform};
use crate::model::checkpoint::{CheckpointError, TensorFile};
use crate::random::rng_for;
use crate::train::config::{
    default_digits_path, default_mnist_dir, DataConfig, DatasetKind, TrainConfig, TransformKind,
};

/// Metadata key of the [`DataRecord`] in a checkpoint.
pub const DATA_RECORD_KEY: &str = "microdnn.data";

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
    /// What rebuilds the data and its test split (saved with the model); `None` for data
    /// assembled by hand.
    pub record: Option<DataRecord>,
    /// What reading the data found that a user should know (a header row skipped, how the
    /// class count was inferred, classes without examples).
    pub notes: Vec<String>,
}

impl PreparedData {
    /// Splits assembled by hand (no [`DataRecord`], no notes).
    pub fn new(
        train: Dataset,
        val: Option<Dataset>,
        test: Option<Dataset>,
        transform: InputTransform,
    ) -> Self {
        Self {
            train,
            val,
            test,
            transform,
            record: None,
            notes: Vec::new(),
        }
    }
}

/// How a run's data was read and split: enough to load it again and rebuild its test split, with
/// checksums that tell whether the data found later is the same.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataRecord {
    /// The data set kind.
    pub dataset: DatasetKind,
    /// The file or folder, as an absolute path when the run started.
    pub path: PathBuf,
    /// CSV label column.
    pub label_column: i64,
    /// Whether the CSV file had a header row (resolved: never `auto`).
    pub header: Header,
    /// Classes.
    pub classes: usize,
    /// The seed of the splits.
    pub seed: u64,
    /// The share held out for testing (CSV data).
    pub test_fraction: f64,
    /// Rows loaded (a CSV file's rows; MNIST's training set).
    pub rows: usize,
    /// Inputs per row.
    pub features: usize,
    /// CRC-32 of every row loaded ([`dataset_crc`]).
    pub data_crc: u32,
    /// Rows of the raw test split (0 without one).
    pub test_rows: usize,
    /// CRC-32 of the raw test split.
    pub test_crc: u32,
}

impl DataRecord {
    /// A config that reads the recorded data from `path` as the run did.
    fn config(&self, path: PathBuf) -> TrainConfig {
        TrainConfig {
            seed: self.seed,
            data: DataConfig {
                dataset: Some(self.dataset),
                path: Some(path),
                label_column: self.label_column,
                header: self.header,
                classes: Some(self.classes),
                test_fraction: self.test_fraction,
                ..DataConfig::default()
            },
            ..TrainConfig::default()
        }
    }
}

/// CRC-32 of a data set: its inputs (f32, little-endian), then its labels (u32, little-endian).
pub fn dataset_crc(d: &Dataset) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for v in &d.x {
        h.update(&v.to_le_bytes());
    }
    for l in &d.y {
        h.update(&l.to_le_bytes());
    }
    h.finalize()
}

/// The data file or folder for a config (its `path`, else the built-in default).
pub fn data_path(cfg: &TrainConfig) -> PathBuf {
    cfg.data
        .path
        .clone()
        .unwrap_or_else(|| match cfg.data.dataset() {
            DatasetKind::Mnist => default_mnist_dir(),
            _ => default_digits_path(),
        })
}

/// What [`load`] read.
struct Loaded {
    /// A CSV file's rows, or MNIST's training set.
    all: Dataset,
    /// MNIST's official test set.
    official_test: Option<Dataset>,
    /// The header skipped (CSV).
    header: Option<String>,
    /// Notes for the user.
    notes: Vec<String>,
}

/// Loads the data of `cfg`: labels checked against `data.classes` (the line or offset of one
/// at or above it is named), else the class count inferred from the largest label.
fn load(cfg: &TrainConfig) -> anyhow::Result<Loaded> {
    let path = data_path(cfg);
    let classes = cfg.data.classes;
    match cfg.data.dataset() {
        DatasetKind::Mnist => {
            if path.is_file() {
                bail!(
                    "{}: MNIST is read from a folder holding its four IDX files, not from a file \
                     (a CSV file? --dataset csv)",
                    path.display()
                );
            }
            let (mut tr, mut te) = data::load_mnist(&path)?;
            if let Some(c) = classes {
                let files = data::MnistFiles::in_dir(&path);
                for (d, file) in [(&tr, &files.train_labels), (&te, &files.test_labels)] {
                    if let Some(i) = d.y.iter().position(|&l| l as usize >= c) {
                        return Err(DataError::Label {
                            path: file.clone(),
                            at: format!("offset {}", 8 + i),
                            label: d.y[i] as u64,
                            why: format!("is not below data.classes = {c}"),
                        }
                        .into());
                    }
                }
                tr.classes = c;
                te.classes = c;
            }
            Ok(Loaded {
                all: tr,
                official_test: Some(te),
                header: None,
                notes: Vec::new(),
            })
        }
        DatasetKind::Digits | DatasetKind::Csv => {
            let opts = CsvOptions {
                label_column: cfg.data.label_column,
                header: cfg.data.header,
                classes,
            };
            let (all, report) = data::load_csv_with(&path, &opts)?;
            let mut notes = Vec::new();
            if let Some(h) = &report.header {
                let shown: String = h.chars().take(60).collect();
                notes.push(format!(
                    "{}: the first row is a header ({shown:?}), skipped{}",
                    path.display(),
                    if cfg.data.header == Header::Auto {
                        " (none of its cells is a number; data.header = false to read it as data)"
                    } else {
                        ""
                    }
                ));
            }
            if classes.is_none() {
                let (label, line) = report.largest_label;
                notes.push(format!(
                    "{} classes, inferred from the labels (the largest, {label}, is on line \
                     {line}); set data.classes to enforce a count",
                    all.classes
                ));
            }
            Ok(Loaded {
                all,
                official_test: None,
                header: report.header,
                notes,
            })
        }
    }
}

/// Loads a data set: for CSV data the whole file (test = `None`), for MNIST the official
/// training and test sets.
pub fn load_raw(cfg: &TrainConfig) -> anyhow::Result<(Dataset, Option<Dataset>)> {
    let l = load(cfg)?;
    Ok((l.all, l.official_test))
}

/// Splits off the test set (MNIST: the official one; CSV: a stratified `test_fraction`, random
/// stream 0 of the seed, whose state then goes on to the validation split).
fn split_test(
    cfg: &TrainConfig,
    all: Dataset,
    official_test: Option<Dataset>,
    rng: &mut crate::random::TrainRng,
) -> (Dataset, Option<Dataset>) {
    match official_test {
        Some(t) => (all, Some(t)),
        None if cfg.data.test_fraction > 0.0 => {
            let s = split::stratified_split(&all.y, cfg.data.test_fraction, rng);
            let (a, b) = all.split(&s);
            (a, Some(b))
        }
        None => (all, None),
    }
}

/// The raw (untransformed) test split of a run: MNIST's official test set, or the same seeded
/// stratified split of a CSV file that [`prepare_data`] holds out (`None` without one). What
/// [`test_data`] scores a trained model on.
pub fn raw_test_split(cfg: &TrainConfig) -> anyhow::Result<Option<Dataset>> {
    let (all, official_test) = load_raw(cfg)?;
    Ok(split_test(cfg, all, official_test, &mut rng_for(cfg.seed, 0)).1)
}

/// Loads, splits and transforms the data of a run (deterministic for a seed). The config is
/// validated first; a training split left empty by the fractions, or a single class, is an
/// error.
pub fn prepare_data(cfg: &TrainConfig) -> anyhow::Result<PreparedData> {
    cfg.validate()?;
    let loaded = load(cfg)?;
    let rows = loaded.all.len();
    let data_crc = dataset_crc(&loaded.all);
    let mut rng = rng_for(cfg.seed, 0);
    let (trainval, test) = split_test(cfg, loaded.all, loaded.official_test, &mut rng);
    let val_fraction = cfg.data.validation_fraction();
    let (mut train, mut val) = if val_fraction > 0.0 {
        let s = if cfg.data.dataset() == DatasetKind::Mnist {
            split::tail_split(trainval.len(), val_fraction)
        } else {
            split::stratified_split(&trainval.y, val_fraction, &mut rng)
        };
        let (a, b) = trainval.split(&s);
        (a, Some(b))
    } else {
        (trainval, None)
    };
    if train.is_empty() {
        bail!(
            "the training split is empty: {rows} rows, of which data.test_fraction = {} and \
             data.validation_fraction = {val_fraction} hold out {} and {}",
            cfg.data.test_fraction,
            test.as_ref().map_or(0, |t| t.len()),
            val.as_ref().map_or(0, |v| v.len())
        );
    }
    let mut test = test;
    let classes = [Some(&train), val.as_ref(), test.as_ref()]
        .into_iter()
        .flatten()
        .map(|d| d.classes)
        .max()
        .unwrap_or(0);
    if classes < 2 {
        bail!(
            "{}: every label is 0: a classifier needs at least 2 classes",
            data_path(cfg).display()
        );
    }
    let mut notes = loaded.notes;
    if let Some(n) = empty_classes_note(&train, classes) {
        notes.push(n);
    }
    let record = Some(DataRecord {
        dataset: cfg.data.dataset(),
        path: absolute(&data_path(cfg)),
        label_column: cfg.data.label_column,
        header: if loaded.header.is_some() {
            Header::Yes
        } else {
            Header::No
        },
        classes,
        seed: cfg.seed,
        test_fraction: cfg.data.test_fraction,
        rows,
        features: train.features,
        data_crc,
        test_rows: test.as_ref().map_or(0, |t| t.len()),
        test_crc: test.as_ref().map_or(0, dataset_crc),
    });
    let transform = fit_transform(cfg, &train);
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
        record,
        notes,
    })
}

/// The input transform of `cfg` fitted on the (raw) training split.
fn fit_transform(cfg: &TrainConfig, train: &Dataset) -> InputTransform {
    match cfg.data.transform {
        TransformKind::None => InputTransform::identity(train.features),
        TransformKind::Standardize => InputTransform::standardize(train),
        TransformKind::ScaleByMax => {
            let max = cfg.data.max_value.unwrap_or(match cfg.data.dataset() {
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
    }
}

/// "classes 3, 4, 5 have no training examples": a stray label, or a class count set too high.
fn empty_classes_note(train: &Dataset, classes: usize) -> Option<String> {
    let mut seen = vec![false; classes];
    for &l in &train.y {
        if let Some(s) = seen.get_mut(l as usize) {
            *s = true;
        }
    }
    let empty: Vec<String> = (0..classes)
        .filter(|&c| !seen[c])
        .map(|c| c.to_string())
        .collect();
    if empty.is_empty() {
        return None;
    }
    let shown = if empty.len() > 12 {
        format!("{}, ... ({} in all)", empty[..12].join(", "), empty.len())
    } else {
        empty.join(", ")
    };
    Some(format!(
        "warning: class{} {shown} of 0..{} {} no training examples (a stray label? set \
         data.classes to enforce a count)",
        if empty.len() == 1 { "" } else { "es" },
        classes - 1,
        if empty.len() == 1 { "has" } else { "have" }
    ))
}

/// `path` made absolute (symbolic links resolved when it exists).
fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// The [`DataRecord`] saved in a checkpoint (`None` if it has none: a checkpoint not written by
/// a training run, or by an older microdnn).
pub fn data_record(checkpoint: &Path) -> Result<Option<DataRecord>, CheckpointError> {
    let bytes = std::fs::read(checkpoint).map_err(|error| CheckpointError::Io {
        path: checkpoint.to_path_buf(),
        error,
    })?;
    let file = TensorFile::parse(checkpoint, &bytes)?;
    if file.meta(DATA_RECORD_KEY).is_err() {
        return Ok(None);
    }
    file.meta_json(DATA_RECORD_KEY).map(Some)
}

/// The data a model is scored on, and what it is (for the user).
#[derive(Clone, Debug)]
pub struct ScoringData {
    /// The examples (raw, untransformed).
    pub data: Dataset,
    /// Which data: `the run's test split: 360 of 1797 rows of /data/digits.csv.gz (seed 0,
    /// test_fraction 0.2)`.
    pub what: String,
}

/// The data a trained model is scored on (`microdnn score`, and `microdnn eval` on a device):
/// the raw test split of the run whose [`data_record`] the checkpoint carries; or the whole
/// data file with `whole` (MNIST: its official test set). `dataset` and `data` override the
/// record's (`data` for a moved file: the split rebuilt from it must match the record's
/// checksum). Without a checkpoint, or one without a record, `data` or `dataset` must say what
/// to score (every row). Never guesses.
pub fn test_data(
    checkpoint: Option<&Path>,
    dataset: Option<DatasetKind>,
    data: Option<PathBuf>,
    whole: bool,
) -> anyhow::Result<Dataset> {
    let record = match checkpoint {
        Some(c) => data_record(c)?,
        None => None,
    };
    Ok(scoring_data(record.as_ref(), dataset, data, whole)?.data)
}

/// [`test_data`] from a record (e.g. one an export kept), with what it is.
pub fn scoring_data(
    record: Option<&DataRecord>,
    dataset: Option<DatasetKind>,
    data: Option<PathBuf>,
    whole: bool,
) -> anyhow::Result<ScoringData> {
    let Some(r) = record else {
        if dataset.is_none() && data.is_none() {
            bail!(
                "the model does not record the data it was trained on (not written by `microdnn \
                 train`, or by an older version): give --data (and --dataset) to score every row \
                 of a data set"
            );
        }
        let mut cfg = TrainConfig::default();
        cfg.data.dataset = dataset;
        cfg.data.path = data;
        return whole_data(&cfg);
    };
    if let Some(d) = dataset.filter(|&d| d != r.dataset) {
        if !whole {
            bail!(
                "the model was trained and tested on {:?} data; to score it on {d:?} data use \
                 --all (every row)",
                r.dataset
            );
        }
        let mut cfg = TrainConfig::default();
        cfg.data.dataset = Some(d);
        cfg.data.path = data;
        return whole_data(&cfg);
    }
    let moved = data.is_some();
    let cfg = r.config(data.unwrap_or_else(|| r.path.clone()));
    if whole {
        return whole_data(&cfg);
    }
    let path = data_path(&cfg);
    let found = raw_test_split(&cfg).with_context(|| {
        format!(
            "loading the run's data {}{}",
            path.display(),
            if moved {
                ""
            } else {
                " (if it moved, give its new place with --data)"
            }
        )
    })?;
    let Some(test) = found.filter(|t| !t.is_empty()) else {
        bail!(
            "the run held out no test split (data.test_fraction = 0): use --all to score every \
             row of {}",
            path.display()
        );
    };
    let crc = dataset_crc(&test);
    if test.len() != r.test_rows || crc != r.test_crc {
        bail!(
            "{}: the test split rebuilt from this data ({} rows, CRC-32 {crc:08x}) is not the \
             one the model was tested on ({} rows, CRC-32 {:08x}): the data changed. Give the \
             run's data with --data, or --all to score every row of this one",
            path.display(),
            test.len(),
            r.test_rows,
            r.test_crc
        );
    }
    let what = match r.dataset {
        DatasetKind::Mnist => format!("the official test set of {}", path.display()),
        _ => format!(
            "the run's test split: {} of {} rows of {} (seed {}, test_fraction {})",
            test.len(),
            r.rows,
            path.display(),
            r.seed,
            r.test_fraction
        ),
    };
    Ok(ScoringData { data: test, what })
}

/// Every row of the data of `cfg` (MNIST: its official test set).
fn whole_data(cfg: &TrainConfig) -> anyhow::Result<ScoringData> {
    let path = data_path(cfg);
    let (all, official_test) = load_raw(cfg)?;
    Ok(match official_test {
        Some(t) => ScoringData {
            data: t,
            what: format!("the official test set of {}", path.display()),
        },
        None => ScoringData {
            what: format!("every row of {} ({} rows)", path.display(), all.len()),
            data: all,
        },
    })
}

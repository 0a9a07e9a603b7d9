//! `microdnn score` (also spelled `evaluate`): a checkpoint's accuracy, confusion matrix and
//! per-class precision and recall on its run's test split.

use std::path::PathBuf;

use anyhow::Context;

use microdnn_host::model::{checkpoint, metrics};
use microdnn_host::train::{self, config::DatasetKind};

#[derive(clap::Args)]
pub struct ScoreArgs {
    /// Checkpoint file or run folder.
    #[arg(long)]
    pub model: PathBuf,
    /// Data set (default: the one the checkpoint records; another one needs --all).
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetKind>,
    /// Data file or folder (default: the one the checkpoint records; give it if it moved: the
    /// test split rebuilt from it must be the one the run held out).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Score every row of the data (CSV; MNIST: its test set) instead of the run's test split.
    #[arg(long)]
    pub all: bool,
    /// Write the evaluation as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// `microdnn score`.
pub fn run_score(a: ScoreArgs) -> anyhow::Result<()> {
    let path = checkpoint::resolve_model_path(&a.model);
    let model = checkpoint::load_model(&path)?;
    let record = train::data_record(&path)?;
    let scoring = train::scoring_data(record.as_ref(), a.dataset, a.data, a.all)?;
    eprintln!("scoring on {}", scoring.what);
    let data = scoring.data;
    anyhow::ensure!(
        data.features == model.transform.features(),
        "the data has {} inputs but the model expects {}",
        data.features,
        model.transform.features()
    );
    let e = metrics::score(&model, &data);
    print!("{}", e.report());
    if let Some(j) = a.json {
        std::fs::write(&j, serde_json::to_string_pretty(&e)?)
            .with_context(|| format!("writing {}", j.display()))?;
    }
    Ok(())
}

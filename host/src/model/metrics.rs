//! Classification metrics: accuracy, confusion matrix, per-class precision and recall.

use std::fmt::Write;

use serde::Serialize;

use crate::data::Dataset;
use crate::model::{argmax, Model, Predictor};

/// Evaluation of a classifier on a data set.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evaluation {
    /// Examples.
    pub count: usize,
    /// Share of correct predictions.
    pub accuracy: f64,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    /// Per class: correct / predicted as the class (0 when never predicted).
    pub precision: Vec<f64>,
    /// Per class: correct / examples of the class (0 when absent).
    pub recall: Vec<f64>,
}

impl Evaluation {
    /// Builds the metrics from labels and predictions.
    pub fn from_predictions(labels: &[u32], predicted: &[usize], classes: usize) -> Self {
        let mut confusion = vec![vec![0usize; classes]; classes];
        for (&t, &p) in labels.iter().zip(predicted) {
            confusion[t as usize][p] += 1;
        }
        let correct: usize = (0..classes).map(|c| confusion[c][c]).sum();
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let precision = (0..classes)
            .map(|c| ratio(confusion[c][c], (0..classes).map(|t| confusion[t][c]).sum()))
            .collect();
        let recall = (0..classes)
            .map(|c| ratio(confusion[c][c], confusion[c].iter().sum()))
            .collect();
        Self {
            count: labels.len(),
            accuracy: ratio(correct, labels.len()),
            confusion,
            precision,
            recall,
        }
    }

    /// A text report: accuracy, the confusion matrix and per-class precision/recall.
    pub fn report(&self) -> String {
        let k = self.confusion.len();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "accuracy: {:.2}% ({} examples)",
            100.0 * self.accuracy,
            self.count
        );
        let _ = writeln!(
            s,
            "confusion matrix (rows: true class, columns: predicted):"
        );
        let _ = write!(s, "{:>6}", "");
        for c in 0..k {
            let _ = write!(s, "{c:>6}");
        }
        s.push('\n');
        for (t, row) in self.confusion.iter().enumerate() {
            let _ = write!(s, "{t:>6}");
            for v in row {
                let _ = write!(s, "{v:>6}");
            }
            s.push('\n');
        }
        let _ = writeln!(s, "{:>6} {:>10} {:>10}", "class", "precision", "recall");
        for c in 0..k {
            let _ = writeln!(
                s,
                "{c:>6} {:>9.2}% {:>9.2}%",
                100.0 * self.precision[c],
                100.0 * self.recall[c]
            );
        }
        s
    }
}

/// Scores `model` on raw (untransformed) `data` (`microdnn score`). The confusion matrix covers
/// the network's outputs and every label present.
pub fn score(model: &Model, data: &Dataset) -> Evaluation {
    let batch = 256;
    let mut p = Predictor::new(&model.net, batch);
    let f = data.features;
    let mut predicted = Vec::with_capacity(data.len());
    let mut x = vec![0.0f32; batch * f];
    let mut start = 0;
    while start < data.len() {
        let b = (data.len() - start).min(batch);
        x[..b * f].copy_from_slice(&data.x[start * f..(start + b) * f]);
        x[..b * f]
            .chunks_exact_mut(f)
            .for_each(|r| model.transform.apply_row(r));
        let out = p.predict_batch(&x[..b * f], b);
        // The network's own output width (a hand-built model may say another class count).
        predicted.extend(out.chunks_exact((out.len() / b).max(1)).map(argmax));
        start += b;
    }
    // The classes the network can predict and the labels present (not `model.classes`, which
    // a hand-built model may get wrong; a loaded checkpoint has it equal to the outputs).
    let classes = data
        .y
        .iter()
        .map(|&y| y as usize + 1)
        .chain([model.net.out_features(), data.classes])
        .max()
        .unwrap_or(0);
    Evaluation::from_predictions(&data.y, &predicted, classes)
}

/// The former name of [`score`].
pub use score as evaluate;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_class_count_does_not_break_scoring() {
        use crate::data::InputTransform;
        use crate::model::{Layer, Linear, Sequential};
        // Two outputs; the model claims 0 classes (chunks_exact(0) panicked) and then a huge
        // count (a confusion matrix of classes² was allocated).
        let net = Sequential::new(vec![Layer::Linear(
            Linear::from_parts(1, 2, vec![1.0, -1.0], vec![0.0, 0.0]).unwrap(),
        )]);
        let data = Dataset {
            features: 1,
            classes: 2,
            x: vec![1.0, -1.0, 2.0],
            y: vec![0, 1, 1],
        };
        for classes in [0, 100_000_000] {
            let m = Model {
                net: net.clone(),
                transform: InputTransform::identity(1),
                classes,
            };
            let e = score(&m, &data);
            assert_eq!(e.confusion, vec![vec![1, 0], vec![1, 1]]);
        }
    }

    #[test]
    fn confusion_precision_recall() {
        let e = Evaluation::from_predictions(&[0, 0, 1, 1, 2], &[0, 1, 1, 1, 1], 3);
        assert_eq!(
            e.confusion,
            vec![vec![1, 1, 0], vec![0, 2, 0], vec![0, 1, 0]]
        );
        assert!((e.accuracy - 0.6).abs() < 1e-12);
        assert_eq!(e.precision, vec![1.0, 0.5, 0.0]);
        assert_eq!(e.recall, vec![0.5, 1.0, 0.0]);
        assert!(e.report().contains("accuracy: 60.00%"));
    }
}

//! Seeded train/validation/test splits.

use std::collections::BTreeMap;

use crate::random::{shuffle, TrainRng};

use super::Dataset;

/// Indices of examples, split in two.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Splits {
    /// The larger part (e.g. training).
    pub first: Vec<usize>,
    /// The held-out part (e.g. test or validation).
    pub second: Vec<usize>,
}

/// A stratified split of `labels` (like scikit-learn's `train_test_split(stratify=...)`):
/// `ceil(fraction * len)` examples go to `second`, shared between classes in proportion to
/// their sizes (floors first, then the largest remainders, ties to the smaller class index);
/// which members of a class go is a seeded shuffle. Both parts are then shuffled, so classes
/// are interleaved.
///
/// `fraction` is clamped to `[0, 1]` (NaN counts as 0); classes are the labels present, however
/// large (nothing is allocated per label value).
pub fn stratified_split(labels: &[u32], fraction: f64, rng: &mut TrainRng) -> Splits {
    let fraction = if fraction.is_nan() {
        0.0
    } else {
        fraction.clamp(0.0, 1.0)
    };
    let mut groups: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, &l) in labels.iter().enumerate() {
        groups.entry(l).or_default().push(i);
    }
    let by_class: Vec<Vec<usize>> = groups.into_values().collect();
    let classes = by_class.len();
    let total = ((fraction * labels.len() as f64).ceil() as usize).min(labels.len());
    let exact: Vec<f64> = by_class.iter().map(|m| fraction * m.len() as f64).collect();
    let mut take: Vec<usize> = exact
        .iter()
        .zip(&by_class)
        .map(|(e, m)| (e.floor() as usize).min(m.len()))
        .collect();
    let mut order: Vec<usize> = (0..classes).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let mut missing = total.saturating_sub(take.iter().sum());
    for &c in order.iter().cycle().take(classes * 2) {
        if missing == 0 {
            break;
        }
        if take[c] < by_class[c].len() {
            take[c] += 1;
            missing -= 1;
        }
    }
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for (mut members, k) in by_class.into_iter().zip(take) {
        shuffle(&mut members, rng);
        second.extend_from_slice(&members[..k]);
        first.extend_from_slice(&members[k..]);
    }
    shuffle(&mut first, rng);
    shuffle(&mut second, rng);
    Splits { first, second }
}

/// Splits off the last `fraction` of the examples (in file order), without shuffling: MNIST's
/// customary validation set is the last 5,000 training images.
pub fn tail_split(len: usize, fraction: f64) -> Splits {
    // A NaN or negative fraction takes nothing (`as` saturates); more than 1 takes everything.
    let k = ((fraction * len as f64).round() as usize).min(len);
    Splits {
        first: (0..len - k).collect(),
        second: (len - k..len).collect(),
    }
}

impl Dataset {
    /// The two data sets of a split.
    pub fn split(&self, s: &Splits) -> (Dataset, Dataset) {
        (self.subset(&s.first), self.subset(&s.second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::rng_for;

    #[test]
    fn stratified_split_keeps_class_shares_and_is_seeded() {
        let labels: Vec<u32> = (0..1000).map(|i| (i % 10) as u32).collect();
        let s = stratified_split(&labels, 0.2, &mut rng_for(0, 0));
        assert_eq!(s.second.len(), 200);
        for c in 0..10 {
            assert_eq!(s.second.iter().filter(|&&i| labels[i] == c).count(), 20);
        }
        let mut all: Vec<usize> = s.first.iter().chain(&s.second).copied().collect();
        all.sort();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert_eq!(s, stratified_split(&labels, 0.2, &mut rng_for(0, 0)));
        assert_ne!(s, stratified_split(&labels, 0.2, &mut rng_for(1, 0)));
        // Uneven classes: the total is ceil(0.2 * 1797) = 360, as scikit-learn's.
        let labels: Vec<u32> = (0..1797)
            .map(|i| ((i * 7) % 10) as u32)
            .chain([3])
            .take(1797)
            .collect();
        let s = stratified_split(&labels, 0.2, &mut rng_for(0, 0));
        assert_eq!(s.second.len(), 360);
    }

    #[test]
    fn tail_split_takes_the_end() {
        let s = tail_split(10, 0.3);
        assert_eq!(s.second, vec![7, 8, 9]);
        assert_eq!(s.first.len(), 7);
    }

    #[test]
    fn any_fraction_and_any_label_is_split_without_panicking() {
        let labels = [0u32, 1, 0, 1, 3_000_000_000];
        for f in [1.5, -0.1, f64::NAN, f64::INFINITY, 1.0] {
            let s = stratified_split(&labels, f, &mut rng_for(0, 0));
            assert_eq!(s.first.len() + s.second.len(), labels.len(), "{f}");
        }
        let s = stratified_split(&labels, 1.5, &mut rng_for(0, 0));
        assert_eq!(s.second.len(), 5);
        let s = tail_split(10, f64::NAN);
        assert_eq!(s.second.len(), 0);
    }
}

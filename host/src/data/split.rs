//! Seeded train/validation/test splits.

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

/// A stratified split of `labels`: in each class, a seeded shuffle of its examples, and
/// `round(fraction * class_size)` of them go to `second`. Both parts are then shuffled, so
/// classes are interleaved. Every class keeps its share in both parts.
pub fn stratified_split(labels: &[u32], fraction: f64, rng: &mut TrainRng) -> Splits {
    let classes = labels.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for mut members in by_class {
        shuffle(&mut members, rng);
        let k = (fraction * members.len() as f64).round() as usize;
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
    }

    #[test]
    fn tail_split_takes_the_end() {
        let s = tail_split(10, 0.3);
        assert_eq!(s.second, vec![7, 8, 9]);
        assert_eq!(s.first.len(), 7);
    }
}

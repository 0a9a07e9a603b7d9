//! Seeded random numbers: the one generator of the crate (ChaCha8) and the few distributions the
//! trainer needs, written out so that results never depend on a `rand` version's algorithms.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The generator used for every random choice (shuffles, initialisation, dropout masks).
pub type TrainRng = ChaCha8Rng;

/// A generator seeded from `seed` and a `stream` number, so that independent uses of one seed
/// (data split, initialisation, training) get independent sequences.
pub fn rng_for(seed: u64, stream: u64) -> TrainRng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Uniform `f32` in `[0, 1)` with 24 random bits.
#[inline]
pub fn uniform01(rng: &mut TrainRng) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Uniform `f64` in `(0, 1]` with 53 random bits (never 0, so safe under `ln`).
#[inline]
fn uniform01_open_f64(rng: &mut TrainRng) -> f64 {
    ((rng.next_u64() >> 11) + 1) as f64 * (1.0 / 9_007_199_254_740_992.0)
}

/// A standard normal sample (Box-Muller in `f64`, one sample per call).
pub fn normal(rng: &mut TrainRng) -> f32 {
    let u1 = uniform01_open_f64(rng);
    let u2 = uniform01_open_f64(rng);
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// An integer uniform in `0..n` (Lemire's nearly-divisionless method, unbiased); `n > 0`.
pub fn below(rng: &mut TrainRng, n: usize) -> usize {
    debug_assert!(n > 0);
    let n = n as u64;
    loop {
        let m = (rng.next_u64() as u128) * (n as u128);
        let low = m as u64;
        if low >= n.wrapping_neg() % n {
            return (m >> 64) as usize;
        }
    }
}

/// Fisher-Yates shuffle in place.
pub fn shuffle<T>(v: &mut [T], rng: &mut TrainRng) {
    for i in (1..v.len()).rev() {
        let j = below(rng, i + 1);
        v.swap(i, j);
    }
}

/// The complete state of a [`TrainRng`] (seed, stream and position), enough to resume it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RngState {
    /// The 32-byte key.
    pub seed: [u8; 32],
    /// Stream number.
    pub stream: u64,
    /// Position in the stream, in 32-bit words.
    pub word_pos: u128,
}

impl RngState {
    /// Captures the state of `rng`.
    pub fn of(rng: &TrainRng) -> Self {
        Self {
            seed: rng.get_seed(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos(),
        }
    }

    /// A generator in exactly this state.
    pub fn restore(&self) -> TrainRng {
        let mut rng = ChaCha8Rng::from_seed(self.seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(self.word_pos);
        rng
    }

    /// Serialises to 64 bytes (seed, stream LE, word position LE, padding).
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[..32].copy_from_slice(&self.seed);
        b[32..40].copy_from_slice(&self.stream.to_le_bytes());
        b[40..56].copy_from_slice(&self.word_pos.to_le_bytes());
        b
    }

    /// Inverse of [`RngState::to_bytes`].
    pub fn from_bytes(b: &[u8; 64]) -> Self {
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&b[..32]);
        Self {
            seed,
            stream: u64::from_le_bytes(b[32..40].try_into().unwrap()),
            word_pos: u128::from_le_bytes(b[40..56].try_into().unwrap()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_state_round_trip_continues_the_sequence() {
        let mut a = rng_for(7, 3);
        for _ in 0..13 {
            a.next_u32();
        }
        let s = RngState::from_bytes(&RngState::of(&a).to_bytes());
        let mut b = s.restore();
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn normal_has_unit_moments_and_below_is_uniform() {
        let mut rng = rng_for(1, 0);
        let n = 200_000;
        let (mut s, mut s2) = (0.0f64, 0.0f64);
        for _ in 0..n {
            let x = normal(&mut rng) as f64;
            s += x;
            s2 += x * x;
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
        let mut counts = [0usize; 7];
        for _ in 0..70_000 {
            counts[below(&mut rng, 7)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_400..10_600).contains(&c)),
            "{counts:?}"
        );
    }
}

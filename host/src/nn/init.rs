//! Weight initialisation (biases start at zero). Fan-in is the number of inputs of a unit, fan-out
//! its number of outputs; all draws come from the run's seeded generator.

use serde::{Deserialize, Serialize};

use crate::random::{normal, uniform01, TrainRng};

/// An initialisation scheme for dense weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// Glorot & Bengio: `U(-a, a)`, `a = sqrt(6 / (fan_in + fan_out))`.
    XavierUniform,
    /// Glorot & Bengio: `N(0, 2 / (fan_in + fan_out))`.
    XavierNormal,
    /// He et al. (fan-in, ReLU gain): `N(0, 2 / fan_in)` (PyTorch `kaiming_normal_`).
    HeNormal,
    /// He et al. (fan-in): `U(-a, a)`, `a = sqrt(6 / fan_in)`.
    HeUniform,
    /// LeCun: `N(0, 1 / fan_in)`.
    LecunNormal,
    /// LeCun: `U(-a, a)`, `a = sqrt(3 / fan_in)`.
    LecunUniform,
    /// A small random Gaussian whatever the fan-in: `N(0, 0.01²)` (Hinton et al. 2012's MNIST
    /// networks, whose large learning rate and max-norm constraint expect small initial weights).
    SmallNormal,
}

impl Init {
    /// The standard deviation of the weights this scheme draws.
    pub fn std(self, fan_in: usize, fan_out: usize) -> f64 {
        let (fi, fo) = (fan_in as f64, fan_out as f64);
        match self {
            Init::XavierUniform | Init::XavierNormal => (2.0 / (fi + fo)).sqrt(),
            Init::HeNormal | Init::HeUniform => (2.0 / fi).sqrt(),
            Init::LecunNormal | Init::LecunUniform => (1.0 / fi).sqrt(),
            Init::SmallNormal => 0.01,
        }
    }

    /// Fills `w` (`[fan_out, fan_in]`).
    pub fn fill(self, w: &mut [f32], fan_in: usize, fan_out: usize, rng: &mut TrainRng) {
        let std = self.std(fan_in, fan_out);
        match self {
            Init::XavierNormal | Init::HeNormal | Init::LecunNormal | Init::SmallNormal => {
                let s = std as f32;
                w.iter_mut().for_each(|v| *v = normal(rng) * s);
            }
            Init::XavierUniform | Init::HeUniform | Init::LecunUniform => {
                // A uniform on (-a, a) has std a / sqrt(3).
                let a = (std * 3f64.sqrt()) as f32;
                w.iter_mut()
                    .for_each(|v| *v = (2.0 * uniform01(rng) - 1.0) * a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::rng_for;

    #[test]
    fn every_scheme_has_its_variance() {
        for init in [
            Init::XavierUniform,
            Init::XavierNormal,
            Init::HeNormal,
            Init::HeUniform,
            Init::LecunNormal,
            Init::LecunUniform,
            Init::SmallNormal,
        ] {
            let (fi, fo) = (300, 100);
            let mut w = vec![0.0; fi * fo];
            init.fill(&mut w, fi, fo, &mut rng_for(4, 1));
            let n = w.len() as f64;
            let mean = w.iter().map(|&v| v as f64).sum::<f64>() / n;
            let std = (w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
            let want = init.std(fi, fo);
            assert!(mean.abs() < 0.01 * want * 10.0, "{init:?} mean {mean}");
            assert!(
                (std / want - 1.0).abs() < 0.02,
                "{init:?} std {std} vs {want}"
            );
        }
    }
}

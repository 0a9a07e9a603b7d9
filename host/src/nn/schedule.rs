//! Learning-rate and momentum schedules, evaluated once per epoch (epoch 0 is the first).

use serde::{Deserialize, Serialize};

/// A learning-rate schedule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// The base rate throughout.
    #[default]
    Constant,
    /// Multiply by `gamma` every `step_size` epochs.
    Step {
        /// Epochs between decays.
        step_size: usize,
        /// Factor.
        gamma: f64,
    },
    /// Cosine annealing from the base rate to `min_lr` over the run's epochs.
    Cosine {
        /// Final rate.
        #[serde(default)]
        min_lr: f64,
    },
    /// Multiply by `gamma` every epoch.
    Exponential {
        /// Factor per epoch.
        gamma: f64,
    },
    /// Inverse-time decay: `lr / (1 + epoch / half_life)`, half the base rate after `half_life`
    /// epochs (Srivastava et al.'s `deepnet`, `epsilon_decay: INVERSE_T`, per epoch instead of
    /// per step).
    InverseTime {
        /// Epochs until the rate is halved (> 0).
        half_life: f64,
    },
}

impl Schedule {
    /// The learning rate of `epoch` (0-based) for base rate `lr` and a run of `epochs` epochs.
    pub fn lr(&self, lr: f64, epoch: usize, epochs: usize) -> f64 {
        match *self {
            Schedule::Constant => lr,
            Schedule::Step { step_size, gamma } => {
                lr * gamma.powi((epoch / step_size.max(1)) as i32)
            }
            Schedule::Cosine { min_lr } => {
                let t = epoch as f64 / epochs.max(1) as f64;
                min_lr + (lr - min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
            Schedule::Exponential { gamma } => lr * gamma.powi(epoch as i32),
            Schedule::InverseTime { half_life } => lr / (1.0 + epoch as f64 / half_life),
        }
    }
}

/// A momentum schedule for SGD (`momentum_schedule` in a training config), evaluated once per
/// epoch; it replaces the optimiser's `momentum`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum MomentumSchedule {
    /// `start` in epoch 0, rising linearly to `end` in epoch `epochs`, then `end`:
    /// `μ(e) = start + (end − start) · min(e, epochs) / epochs` (Hinton et al. 2012, appendix A:
    /// 0.5 to 0.99 over the first 500 of 3000 epochs; Srivastava et al. 2014's `deepnet` ramps
    /// linearly too, per step).
    Linear {
        /// Momentum of the first epoch.
        start: f32,
        /// Momentum from epoch `epochs` on.
        end: f32,
        /// Epochs of the ramp (0: `end` from the start).
        epochs: usize,
    },
}

impl MomentumSchedule {
    /// The momentum of `epoch` (0-based).
    pub fn momentum(&self, epoch: usize) -> f32 {
        match *self {
            MomentumSchedule::Linear { start, end, epochs } => {
                if epoch >= epochs {
                    end
                } else {
                    let t = epoch as f64 / epochs as f64;
                    (start as f64 + (end as f64 - start as f64) * t) as f32
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_momentum_ramp_by_hand() {
        let m = MomentumSchedule::Linear {
            start: 0.5,
            end: 0.99,
            epochs: 500,
        };
        assert_eq!(m.momentum(0), 0.5);
        // Epoch 250: halfway, 0.745; epoch 100: 0.5 + 0.49 / 5 = 0.598.
        assert!((m.momentum(250) - 0.745).abs() < 1e-7);
        assert!((m.momentum(100) - 0.598).abs() < 1e-7);
        assert_eq!(m.momentum(500), 0.99);
        assert_eq!(m.momentum(2999), 0.99);
        let flat = MomentumSchedule::Linear {
            start: 0.5,
            end: 0.9,
            epochs: 0,
        };
        assert_eq!(flat.momentum(0), 0.9);
    }

    #[test]
    fn schedules_follow_their_formulas() {
        assert_eq!(Schedule::Constant.lr(0.1, 7, 10), 0.1);
        let s = Schedule::Step {
            step_size: 3,
            gamma: 0.5,
        };
        assert_eq!(
            [0, 2, 3, 6].map(|e| s.lr(1.0, e, 10)),
            [1.0, 1.0, 0.5, 0.25]
        );
        let c = Schedule::Cosine { min_lr: 0.01 };
        assert!((c.lr(0.1, 0, 10) - 0.1).abs() < 1e-12);
        assert!((c.lr(0.1, 5, 10) - 0.055).abs() < 1e-12);
        assert!(c.lr(0.1, 9, 10) > 0.01);
        let e = Schedule::Exponential { gamma: 0.9 };
        assert!((e.lr(1.0, 2, 10) - 0.81).abs() < 1e-12);
        let t = Schedule::InverseTime { half_life: 4.0 };
        assert_eq!(
            [0, 2, 4, 12].map(|e| t.lr(1.0, e, 100)),
            [1.0, 1.0 / 1.5, 0.5, 0.25]
        );
    }
}

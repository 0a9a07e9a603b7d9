//! Activation functions applied to a whole layer output, in place.

use crate::math;

/// The activation that follows a dense layer.
///
/// Element-wise activations use the scalar functions of [`crate::math`]; [`Activation::Softmax`]
/// normalises the whole vector (numerically stable: the maximum is subtracted first).
///
/// ```
/// use microdnn::Activation;
/// let mut y = [-1.0, 0.5, 2.0];
/// Activation::Relu.apply(&mut y);
/// assert_eq!(y, [0.0, 0.5, 2.0]);
/// let mut z = [-1.0, 2.0];
/// Activation::LeakyRelu { slope: 0.1 }.apply(&mut z);
/// assert_eq!(z, [-0.1, 2.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Activation {
    /// `f(x) = x`.
    Identity,
    /// `f(x) = max(x, 0)` (see [`math::relu`] for the exact convention).
    Relu,
    /// `f(x) = x` for `x > 0`, else `slope * x`.
    LeakyRelu {
        /// Negative slope; PyTorch's and this crate's default is
        /// [`math::DEFAULT_LEAKY_SLOPE`] (0.01).
        slope: f32,
    },
    /// Logistic sigmoid, overflow-free for every input.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// Softmax over the whole layer output.
    Softmax,
}

impl Activation {
    /// Leaky ReLU with the default slope of 0.01.
    pub const LEAKY_RELU: Activation = Activation::LeakyRelu {
        slope: math::DEFAULT_LEAKY_SLOPE,
    };

    /// Applies the activation to `y` in place.
    pub fn apply(&self, y: &mut [f32]) {
        match *self {
            Activation::Identity => {}
            Activation::Relu => y.iter_mut().for_each(|v| *v = math::relu(*v)),
            Activation::LeakyRelu { slope } => {
                y.iter_mut().for_each(|v| *v = math::leaky_relu(*v, slope))
            }
            Activation::Sigmoid => y.iter_mut().for_each(|v| *v = math::sigmoid(*v)),
            Activation::Tanh => y.iter_mut().for_each(|v| *v = math::tanh(*v)),
            Activation::Softmax => math::softmax(y),
        }
    }

    /// Applies the activation to one element; `None` for [`Activation::Softmax`], which is not
    /// element-wise.
    pub fn apply_scalar(&self, x: f32) -> Option<f32> {
        Some(match *self {
            Activation::Identity => x,
            Activation::Relu => math::relu(x),
            Activation::LeakyRelu { slope } => math::leaky_relu(x, slope),
            Activation::Sigmoid => math::sigmoid(x),
            Activation::Tanh => math::tanh(x),
            Activation::Softmax => return None,
        })
    }

    /// A short lowercase name (`"relu"`, `"leaky_relu"`, ...), as used in configs and reports.
    pub const fn name(&self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Relu => "relu",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
        }
    }
}

impl core::fmt::Display for Activation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Activation::LeakyRelu { slope } => write!(f, "leaky_relu({slope})"),
            other => f.write_str(other.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elementwise_matches_scalar_functions() {
        let xs = [-3.0f32, -0.5, 0.0, 0.25, 4.0];
        for act in [
            Activation::Identity,
            Activation::Relu,
            Activation::LEAKY_RELU,
            Activation::Sigmoid,
            Activation::Tanh,
        ] {
            let mut y = xs;
            act.apply(&mut y);
            for (x, y) in xs.iter().zip(y.iter()) {
                assert_eq!(act.apply_scalar(*x), Some(*y), "{act}");
            }
        }
        assert_eq!(Activation::Softmax.apply_scalar(1.0), None);
    }

    #[test]
    fn softmax_sums_to_one() {
        let mut y = [1.0, 2.0, 3.0, 4.0];
        Activation::Softmax.apply(&mut y);
        assert!((y.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(y.windows(2).all(|w| w[0] < w[1]));
    }
}

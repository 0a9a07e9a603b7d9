//! The error type of the inference API.

/// What went wrong when building or running a layer. Small and `Copy`; no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// An operand has the wrong number of elements.
    Shape {
        /// Which operand: `"weights"`, `"bias"`, `"input"`, `"output"`, ...
        what: &'static str,
        /// The number of elements the layer's shape requires.
        expected: usize,
        /// The number of elements given.
        found: usize,
    },
    /// `inputs * outputs` does not fit in `usize`.
    Overflow,
    /// Batch-norm statistics give a variance plus epsilon that is not strictly positive and
    /// finite for this unit, or a scale/shift that is not finite.
    InvalidBatchNorm {
        /// The unit (feature index) whose statistics are invalid.
        unit: usize,
    },
    /// A dropout rate outside `[0, 1)`.
    InvalidDropoutRate,
    /// Monte-Carlo class probabilities were asked of a network whose last activation is
    /// neither softmax nor the identity (logits) (see [`crate::mc::McOutputs`]).
    NotADistribution {
        /// The last layer's activation ([`crate::Activation::name`]).
        activation: &'static str,
    },
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Shape {
                what,
                expected,
                found,
            } => write!(f, "{what} has {found} elements, expected {expected}"),
            Error::Overflow => f.write_str("layer size overflows usize"),
            Error::InvalidBatchNorm { unit } => write!(
                f,
                "batch norm unit {unit}: variance + epsilon must be positive and finite, and \
                 the resulting scale and shift finite"
            ),
            Error::InvalidDropoutRate => f.write_str("dropout rate must be in [0, 1)"),
            Error::NotADistribution { activation } => write!(
                f,
                "Monte-Carlo class probabilities need a last layer with softmax or identity \
                 (logits) outputs; this one ends in {activation}"
            ),
        }
    }
}

impl core::error::Error for Error {}

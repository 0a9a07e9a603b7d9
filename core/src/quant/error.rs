//! The error type of the int8 API.

/// What is wrong with quantization parameters or a quantized layer. Small and `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QuantError {
    /// A tensor scale that is not strictly positive and finite.
    InvalidScale {
        /// Which scale: `"input"`, `"output"`, `"filter"`, ...
        what: &'static str,
        /// The channel, for per-channel scales.
        channel: Option<usize>,
    },
    /// A parameter (leaky ReLU's alpha, softmax's beta) that is not finite.
    NonFinite {
        /// Which parameter.
        what: &'static str,
    },
    /// A real multiplier that TFLite's fixed-point form cannot apply: its power-of-two shift is
    /// above 30 (a multiplier of about `2^30` or more), or it is negative where it must not be.
    MultiplierOutOfRange {
        /// Which multiplier: `"output"`, `"identity"`, `"alpha"`, ...
        what: &'static str,
        /// The channel, for per-channel multipliers.
        channel: Option<usize>,
    },
    /// A stored fixed-point multiplier below 0 or a shift outside `[-31, 30]`.
    InvalidRequantization {
        /// The channel.
        channel: usize,
    },
    /// An operand with the wrong number of elements.
    Shape {
        /// Which operand: `"weights"`, `"bias"`, `"multipliers"`, `"input"`, ...
        what: &'static str,
        /// The number of elements required.
        expected: usize,
        /// The number of elements given.
        found: usize,
    },
    /// `inputs * outputs` does not fit in `usize`.
    Overflow,
    /// An activation clamp whose minimum is above its maximum.
    ActivationRange {
        /// The lower bound.
        min: i8,
        /// The upper bound.
        max: i8,
    },
    /// A fused activation bound (`zero_point + round(bound / scale)`) that does not fit in an
    /// `i32` (TFLite refuses the model in the same case).
    ActivationBoundOverflow,
    /// A precomputed kernel bias that is not `bias - input_zero_point * sum(weights of the row)`.
    KernelBias {
        /// The output row.
        row: usize,
    },
    /// An operator whose output quantization is fixed by TFLite (logistic and softmax: scale
    /// 1/256, zero point -128; tanh: scale 1/128, zero point 0) was given another one.
    OutputQuantization {
        /// The operator: `"logistic"`, `"tanh"`, `"softmax"`.
        op: &'static str,
    },
    /// An input scale outside the range TFLite's fixed-point algorithm for the operator is
    /// defined on (for example a logistic input scale below about `2^-28`).
    InputScaleOutOfRange {
        /// The operator.
        op: &'static str,
    },
}

impl core::fmt::Display for QuantError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let channel = |f: &mut core::fmt::Formatter<'_>, c: &Option<usize>| match c {
            Some(c) => write!(f, " (channel {c})"),
            None => Ok(()),
        };
        match self {
            QuantError::InvalidScale { what, channel: c } => {
                write!(f, "{what} scale must be positive and finite")?;
                channel(f, c)
            }
            QuantError::NonFinite { what } => write!(f, "{what} must be finite"),
            QuantError::MultiplierOutOfRange { what, channel: c } => {
                write!(
                    f,
                    "{what} multiplier cannot be represented as a non-negative Q0.31 \
                     multiplier with a shift in [-31, 30]"
                )?;
                channel(f, c)
            }
            QuantError::InvalidRequantization { channel } => write!(
                f,
                "channel {channel}: multiplier must be >= 0 and shift in [-31, 30]"
            ),
            QuantError::Shape {
                what,
                expected,
                found,
            } => write!(f, "{what} has {found} elements, expected {expected}"),
            QuantError::Overflow => f.write_str("layer size overflows usize"),
            QuantError::ActivationRange { min, max } => {
                write!(f, "activation range [{min}, {max}] is empty")
            }
            QuantError::ActivationBoundOverflow => {
                f.write_str("fused activation bound does not fit in i32 at this output scale")
            }
            QuantError::KernelBias { row } => write!(
                f,
                "row {row}: kernel bias is not bias - input_zero_point * sum(weights)"
            ),
            QuantError::OutputQuantization { op } => write!(
                f,
                "{op}: output quantization must be TFLite's fixed one (logistic/softmax: \
                 scale 1/256, zero point -128; tanh: scale 1/128, zero point 0)"
            ),
            QuantError::InputScaleOutOfRange { op } => {
                write!(
                    f,
                    "{op}: input scale outside the range of TFLite's algorithm"
                )
            }
        }
    }
}

impl core::error::Error for QuantError {}

//! The one error type of the crate.
//!
//! Every function that can receive bad input returns `Result<_, DiceError>`; none panics.
//! Each variant says *what* was wrong (which operand, which parameter) and *where* (the flat
//! element index, the sample and class), so that a message can be acted on without a debugger.

use core::fmt;

/// Which input an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    /// The prediction: probabilities `p` in `[0, 1]`, or a predicted mask or label map.
    Prediction,
    /// The prediction given as logits (any finite value).
    Logits,
    /// The reference: probabilities or one-hot `g` in `[0, 1]`, or a reference mask.
    Target,
    /// An integer label map used as the reference.
    Labels,
    /// A voxel mask (`[N, S]`, non-zero = the voxel counts).
    Mask,
    /// A caller's output buffer (gradient, statistics, per-group values, counts).
    Output,
    /// Per-class weights.
    ClassWeights,
    /// Sufficient statistics handed back in.
    Statistics,
    /// An upstream gradient (one value, or one per group).
    Upstream,
}

impl Operand {
    /// The operand's name as used in messages.
    pub const fn name(self) -> &'static str {
        match self {
            Operand::Prediction => "prediction",
            Operand::Logits => "logits",
            Operand::Target => "target",
            Operand::Labels => "label map",
            Operand::Mask => "mask",
            Operand::Output => "output buffer",
            Operand::ClassWeights => "class weights",
            Operand::Statistics => "statistics",
            Operand::Upstream => "upstream gradient",
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that can be wrong with an input or a parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DiceError {
    /// A slice does not have the length the shape asks for.
    LengthMismatch {
        /// The slice.
        operand: Operand,
        /// The length the shape implies.
        expected: usize,
        /// The length received.
        found: usize,
    },
    /// `N·C·S` (or a derived size) does not fit in `usize`.
    ShapeOverflow {
        /// Batch size N.
        batch: usize,
        /// Channels C.
        channels: usize,
        /// Flattened spatial size S.
        spatial: usize,
    },
    /// A dimension is zero or the input holds no element, so no score is defined.
    Empty {
        /// The empty input.
        operand: Operand,
    },
    /// A NaN or an infinity.
    NonFinite {
        /// The input that holds it.
        operand: Operand,
        /// Flat index of the first such element.
        index: usize,
    },
    /// A probability outside `[0, 1]` (logits passed as probabilities end up here).
    OutOfRange {
        /// The input that holds it.
        operand: Operand,
        /// Flat index of the first such element.
        index: usize,
        /// The value found.
        value: f64,
    },
    /// A label that is neither a class in `0..classes` nor the ignore label.
    LabelOutOfRange {
        /// The label map that holds it.
        operand: Operand,
        /// Flat index of the first such voxel.
        index: usize,
        /// The label found.
        label: i64,
        /// Number of classes the shape declares.
        classes: usize,
    },
    /// A parameter outside its domain (negative smoothing, `α + β = 0`, a threshold outside
    /// `[0, 1]`, a negative or non-finite weight, an option that does not apply, …).
    InvalidParameter {
        /// MONAI-style parameter name.
        name: &'static str,
        /// The value received (`NaN` where the parameter is not a number).
        value: f64,
        /// What the domain is.
        reason: &'static str,
    },
    /// Statistics of different kinds (linear and squared moments) were combined.
    MomentMismatch,
    /// `−ln(score)` was asked for a score that is not positive.
    LogOfNonPositive {
        /// Sample index of the group (`None` for a batch group).
        sample: Option<usize>,
        /// Class index of the group (`None` for a generalized Dice group).
        class: Option<usize>,
        /// The score.
        score: f64,
    },
}

/// The crate's result type.
pub type Result<T> = core::result::Result<T, DiceError>;

impl fmt::Display for DiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DiceError::LengthMismatch { operand, expected, found } => write!(
                f,
                "{operand} has {found} elements but the shape needs {expected}"
            ),
            DiceError::ShapeOverflow { batch, channels, spatial } => write!(
                f,
                "shape [N={batch}, C={channels}, S={spatial}] overflows usize"
            ),
            DiceError::Empty { operand } => write!(f, "{operand} is empty: no score is defined"),
            DiceError::NonFinite { operand, index } => {
                write!(f, "{operand} holds a NaN or infinity at flat index {index}")
            }
            DiceError::OutOfRange { operand, index, value } => write!(
                f,
                "{operand} holds {value} at flat index {index}, outside [0, 1] \
                 (pass logits through the logits API, not as probabilities)"
            ),
            DiceError::LabelOutOfRange { operand, index, label, classes } => write!(
                f,
                "{operand} holds label {label} at flat index {index}; labels must be in 0..{classes} \
                 or equal the ignore label"
            ),
            DiceError::InvalidParameter { name, value, reason } => {
                write!(f, "invalid parameter {name} = {value}: {reason}")
            }
            DiceError::MomentMismatch => f.write_str(
                "statistics of different sums cannot be combined (squared_pred or soft_label differs)",
            ),
            DiceError::LogOfNonPositive { sample, class, score } => {
                write!(f, "-ln(score) is undefined for score {score}")?;
                if let Some(s) = sample {
                    write!(f, " at sample {s}")?;
                }
                if let Some(c) = class {
                    write!(f, " class {c}")?;
                }
                f.write_str(": set smooth_nr > 0")
            }
        }
    }
}

/// `core::error::Error` (so also `std::error::Error`), with or without the `std` feature.
impl core::error::Error for DiceError {}

/// Shorthand used throughout the crate for parameter checks.
pub(crate) fn invalid(name: &'static str, value: f64, reason: &'static str) -> DiceError {
    DiceError::InvalidParameter {
        name,
        value,
        reason,
    }
}

impl DiceError {
    /// The same error with its flat index moved by `by` (for an error found in a part of a
    /// larger input starting at `by`); errors without an index are unchanged.
    pub(crate) fn shifted(self, by: usize) -> DiceError {
        match self {
            DiceError::NonFinite { operand, index } => DiceError::NonFinite {
                operand,
                index: index + by,
            },
            DiceError::OutOfRange {
                operand,
                index,
                value,
            } => DiceError::OutOfRange {
                operand,
                index: index + by,
                value,
            },
            DiceError::LabelOutOfRange {
                operand,
                index,
                label,
                classes,
            } => DiceError::LabelOutOfRange {
                operand,
                index: index + by,
                label,
                classes,
            },
            e => e,
        }
    }
}

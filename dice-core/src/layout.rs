//! Layouts: the `[N, C, S]` shape, the forms a target can take, and a validated input.
//!
//! * Predictions (probabilities or logits) are contiguous `[N, C, S]`: batch, channel,
//!   flattened spatial (row-major, so element `(n, c, s)` is at `(n·C + c)·S + s`). A
//!   `[N, C, D, H, W]` tensor is this layout with `S = D·H·W`.
//! * A target is either dense (`[N, C, S]`, probabilities or one-hot in `[0, 1]`) or an integer
//!   label map `[N, S]` whose voxel `s` of sample `n` means `g(n, c, s) = [label = c]`; the label
//!   map is never expanded to one-hot.
//! * An optional voxel mask `[N, S]` (non-zero = the voxel counts) and an optional ignore label
//!   remove voxels from every sum and give them zero gradient.

use crate::error::{DiceError, Operand, Result};
use crate::Label;

/// The shape `[N, C, S]` of a prediction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    /// N: samples in the batch.
    pub batch: usize,
    /// C: channels (classes).
    pub channels: usize,
    /// S: voxels per sample and channel (the product of the spatial sizes).
    pub spatial: usize,
}

impl Shape {
    /// `[N, C, S]`.
    pub const fn new(batch: usize, channels: usize, spatial: usize) -> Shape {
        Shape {
            batch,
            channels,
            spatial,
        }
    }

    /// `N·C·S`, the length of a prediction, or an error when a dimension is zero or the
    /// product overflows.
    pub fn elements(&self) -> Result<usize> {
        self.nonzero()?;
        self.batch
            .checked_mul(self.channels)
            .and_then(|v| v.checked_mul(self.spatial))
            .ok_or(self.overflow())
    }

    /// `N·S`, the length of a label map or voxel mask.
    pub fn voxels(&self) -> Result<usize> {
        self.nonzero()?;
        self.batch.checked_mul(self.spatial).ok_or(self.overflow())
    }

    /// `N·C`, the number of (sample, class) pairs.
    pub fn pairs(&self) -> Result<usize> {
        self.nonzero()?;
        self.batch.checked_mul(self.channels).ok_or(self.overflow())
    }

    fn nonzero(&self) -> Result<()> {
        if self.batch == 0 || self.channels == 0 || self.spatial == 0 {
            return Err(DiceError::Empty {
                operand: Operand::Prediction,
            });
        }
        Ok(())
    }

    fn overflow(&self) -> DiceError {
        DiceError::ShapeOverflow {
            batch: self.batch,
            channels: self.channels,
            spatial: self.spatial,
        }
    }
}

/// Checks a slice length against the length a shape implies.
pub(crate) fn check_len(operand: Operand, expected: usize, found: usize) -> Result<()> {
    if expected != found {
        return Err(DiceError::LengthMismatch {
            operand,
            expected,
            found,
        });
    }
    Ok(())
}

/// An integer label map `[N, S]` of any supported label type.
#[derive(Clone, Copy, Debug)]
pub enum LabelSlice<'a> {
    /// `u8` labels.
    U8(&'a [u8]),
    /// `u16` labels.
    U16(&'a [u16]),
    /// `u32` labels.
    U32(&'a [u32]),
    /// `i32` labels.
    I32(&'a [i32]),
    /// `i64` labels.
    I64(&'a [i64]),
}

impl LabelSlice<'_> {
    /// Number of voxels.
    pub fn len(&self) -> usize {
        match self {
            LabelSlice::U8(s) => s.len(),
            LabelSlice::U16(s) => s.len(),
            LabelSlice::U32(s) => s.len(),
            LabelSlice::I32(s) => s.len(),
            LabelSlice::I64(s) => s.len(),
        }
    }

    /// `true` when there is no voxel.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

macro_rules! label_from {
    ($($t:ty => $v:ident),*) => {$(
        impl<'a> From<&'a [$t]> for LabelSlice<'a> {
            fn from(s: &'a [$t]) -> Self {
                LabelSlice::$v(s)
            }
        }
    )*};
}
label_from!(u8 => U8, u16 => U16, u32 => U32, i32 => I32, i64 => I64);

/// Calls `$body` with `$s` bound to the typed slice inside a [`LabelSlice`].
macro_rules! with_labels {
    ($ls:expr, $s:ident => $body:expr) => {
        match $ls {
            $crate::layout::LabelSlice::U8($s) => $body,
            $crate::layout::LabelSlice::U16($s) => $body,
            $crate::layout::LabelSlice::U32($s) => $body,
            $crate::layout::LabelSlice::I32($s) => $body,
            $crate::layout::LabelSlice::I64($s) => $body,
        }
    };
}
pub(crate) use with_labels;

/// The reference a prediction is compared with.
#[derive(Debug)]
pub enum Target<'a, T> {
    /// Probabilities or one-hot, `[N, C, S]`, every value in `[0, 1]`.
    Dense(&'a [T]),
    /// An integer label map `[N, S]`: `g(n, c, s) = [labels(n, s) = c]`. Voxels equal to
    /// `ignore_index` are removed from every sum; any other label must be in `0..C`.
    Labels {
        /// The labels.
        labels: LabelSlice<'a>,
        /// The label that marks voxels to leave out (nnU-Net's ignore label, smp's `ignore_index`).
        ignore_index: Option<i64>,
    },
}

impl<T> Clone for Target<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Target<'_, T> {}

impl<'a, T> Target<'a, T> {
    /// A label-map target without an ignore label.
    pub fn labels(labels: impl Into<LabelSlice<'a>>) -> Self {
        Target::Labels {
            labels: labels.into(),
            ignore_index: None,
        }
    }

    /// A label-map target whose voxels equal to `ignore_index` are left out.
    pub fn labels_ignoring(labels: impl Into<LabelSlice<'a>>, ignore_index: i64) -> Self {
        Target::Labels {
            labels: labels.into(),
            ignore_index: Some(ignore_index),
        }
    }
}

/// A prediction with its target, shape and optional voxel mask, with every length checked.
#[derive(Debug)]
pub struct SoftInput<'a, T> {
    shape: Shape,
    pred: &'a [T],
    target: Target<'a, T>,
    mask: Option<&'a [u8]>,
}

impl<T> Clone for SoftInput<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for SoftInput<'_, T> {}

impl<'a, T> SoftInput<'a, T> {
    /// Checks that `pred` has `N·C·S` elements and the target `N·C·S` (dense) or `N·S`
    /// (labels). Values are checked later, while they are summed.
    pub fn new(shape: Shape, pred: &'a [T], target: Target<'a, T>) -> Result<Self> {
        let len = shape.elements()?;
        check_len(Operand::Prediction, len, pred.len())?;
        match &target {
            Target::Dense(g) => check_len(Operand::Target, len, g.len())?,
            Target::Labels { labels, .. } => {
                check_len(Operand::Labels, shape.voxels()?, labels.len())?
            }
        }
        Ok(SoftInput {
            shape,
            pred,
            target,
            mask: None,
        })
    }

    /// Adds a voxel mask `[N, S]`: voxels whose mask byte is 0 are left out of every sum and
    /// get zero gradient.
    pub fn with_mask(mut self, mask: &'a [u8]) -> Result<Self> {
        check_len(Operand::Mask, self.shape.voxels()?, mask.len())?;
        self.mask = Some(mask);
        Ok(self)
    }

    /// The shape.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The prediction (probabilities, or logits for the logits API).
    pub fn pred(&self) -> &'a [T] {
        self.pred
    }

    /// The target.
    pub fn target(&self) -> Target<'a, T> {
        self.target
    }

    /// The voxel mask, if any.
    pub fn mask(&self) -> Option<&'a [u8]> {
        self.mask
    }

    /// The same target and mask with another prediction of the same length.
    pub(crate) fn with_pred<'b>(&self, pred: &'b [T]) -> SoftInput<'b, T>
    where
        'a: 'b,
    {
        SoftInput {
            shape: self.shape,
            pred,
            target: self.target,
            mask: self.mask,
        }
    }
}

/// Checks that every label is in `0..classes` or equals `ignore`; returns the first bad voxel.
pub(crate) fn check_labels<L: Label>(
    labels: &[L],
    classes: usize,
    ignore: Option<i64>,
) -> Result<()> {
    let limit = classes as u64;
    // Fast pass without branches; the slow pass only runs to name the culprit.
    let ok = labels.iter().fold(true, |ok, &l| {
        let v = l.to_i64();
        ok & ((v as u64) < limit || Some(v) == ignore)
    });
    if ok {
        return Ok(());
    }
    for (index, &l) in labels.iter().enumerate() {
        let v = l.to_i64();
        if (v as u64) >= limit && Some(v) != ignore {
            return Err(DiceError::LabelOutOfRange {
                operand: Operand::Labels,
                index,
                label: v,
                classes,
            });
        }
    }
    Ok(())
}

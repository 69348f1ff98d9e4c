//! The enumerations of the C ABI, received as `int32_t` and checked.

use dice_core::hard::{EmptyValue, Metric};

use crate::status::*;

/// `from_i32` for a C enumeration received as `int32_t`: an unknown value is an error.
macro_rules! from_i32 {
    ($name:ident { $($variant:ident),* $(,)? }) => {
        impl $name {
            pub(crate) fn from_i32(v: i32, what: &str) -> FfiResult<$name> {
                $(if v == $name::$variant as i32 {
                    return Ok($name::$variant);
                })*
                Err(err(DiceStatus::InvalidEnum, format!("{what} = {v} is not a {}", stringify!($name))))
            }
        }
    };
}
pub(crate) use from_i32;

/// The soft score of a loss (`DiceSoftParams::score`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceScore {
    /// `(2I + s_nr)/(P + G + s_dr)`.
    Dice = 0,
    /// `(2I + s_nr)/(2(P + G − I) + s_dr)` (MONAI's `jaccard`).
    Jaccard = 1,
    /// `(I + s_nr)/(I + α·FP + β·FN + s_dr)`.
    Tversky = 2,
    /// `(2Σ w_c I_c + s_nr)/(Σ w_c (P_c + G_c) + s_dr)`.
    Generalized = 3,
}

from_i32!(DiceScore {
    Dice,
    Jaccard,
    Tversky,
    Generalized
});

/// Generalized Dice class weights (`DiceSoftParams::weighting`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceWeighting {
    /// `1/G_c²`.
    Square = 0,
    /// `1/G_c`.
    Simple = 1,
    /// `1`.
    Uniform = 2,
}

from_i32!(DiceWeighting {
    Square,
    Simple,
    Uniform
});

/// `1 − score` or `−ln(score)` (`DiceSoftParams::form`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceLossForm {
    /// `1 − score`.
    OneMinus = 0,
    /// `−ln(score)`.
    NegLog = 1,
    /// `−score` (nnU-Net's `−Dice`; not with `gamma != 1`).
    Negative = 2,
}

from_i32!(DiceLossForm {
    OneMinus,
    NegLog,
    Negative
});

/// How group losses combine (`DiceSoftParams::reduction`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceReduction {
    /// Mean over defined groups.
    Mean = 0,
    /// Sum over groups.
    Sum = 1,
    /// One value per group (their number is dice_soft_group_count(); read them with the
    /// `values` output of dice_soft_loss_from_stats()); the scalar is their sum.
    None = 2,
}

from_i32!(DiceReduction { Mean, Sum, None });

/// What an undefined or degenerate score becomes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceEmptyValue {
    /// NaN.
    Nan = 0,
    /// 1.
    One = 1,
    /// 0.
    Zero = 2,
    /// No value (left out of means).
    Skip = 3,
}

from_i32!(DiceEmptyValue {
    Nan,
    One,
    Zero,
    Skip
});

/// What the prediction holds (`DiceSoftParams::activation`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceActivation {
    /// Probabilities in [0, 1].
    None = 0,
    /// Logits, through an element-wise sigmoid.
    Sigmoid = 1,
    /// Logits, through a softmax over the channel axis.
    Softmax = 2,
}

from_i32!(DiceActivation {
    None,
    Sigmoid,
    Softmax
});

/// The form of a target (`DiceTarget::kind`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceTargetKind {
    /// Dense `[N, C, S]` of the prediction's type (float or double).
    Dense = 0,
    /// Label map `[N, S]` of uint8_t.
    LabelsU8 = 1,
    /// Label map `[N, S]` of uint16_t.
    LabelsU16 = 2,
    /// Label map `[N, S]` of uint32_t.
    LabelsU32 = 3,
    /// Label map `[N, S]` of int32_t.
    LabelsI32 = 4,
    /// Label map `[N, S]` of int64_t.
    LabelsI64 = 5,
}

from_i32!(DiceTargetKind {
    Dense,
    LabelsU8,
    LabelsU16,
    LabelsU32,
    LabelsI32,
    LabelsI64
});

/// The element type of a label map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceLabelType {
    /// uint8_t.
    U8 = 0,
    /// uint16_t.
    U16 = 1,
    /// uint32_t.
    U32 = 2,
    /// int32_t.
    I32 = 3,
    /// int64_t.
    I64 = 4,
}

from_i32!(DiceLabelType {
    U8,
    U16,
    U32,
    I32,
    I64
});

/// A hard metric.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceMetric {
    /// `2TP/(2TP + FP + FN)`.
    Dice = 0,
    /// `TP/(TP + FP + FN)`.
    Iou = 1,
    /// `TP/(TP + FP)`.
    Precision = 2,
    /// `TP/(TP + FN)`.
    Recall = 3,
    /// `TN/(TN + FP)`.
    Specificity = 4,
    /// `1 − |FP − FN|/(2TP + FP + FN)`.
    VolumeSimilarity = 5,
}

from_i32!(DiceMetric {
    Dice,
    Iou,
    Precision,
    Recall,
    Specificity,
    VolumeSimilarity
});

impl DiceEmptyValue {
    pub(crate) fn core(self) -> EmptyValue {
        match self {
            DiceEmptyValue::Nan => EmptyValue::Nan,
            DiceEmptyValue::One => EmptyValue::One,
            DiceEmptyValue::Zero => EmptyValue::Zero,
            DiceEmptyValue::Skip => EmptyValue::Skip,
        }
    }
}

impl DiceMetric {
    pub(crate) fn core(self) -> Metric {
        match self {
            DiceMetric::Dice => Metric::Dice,
            DiceMetric::Iou => Metric::Iou,
            DiceMetric::Precision => Metric::Precision,
            DiceMetric::Recall => Metric::Recall,
            DiceMetric::Specificity => Metric::Specificity,
            DiceMetric::VolumeSimilarity => Metric::VolumeSimilarity,
        }
    }
}

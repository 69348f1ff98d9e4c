//! The plain-data structures of the C ABI: shapes, statistics, counts, policies, targets and
//! the soft-loss parameters, with their conversions to `dice-core` types.

use std::ffi::c_void;

use dice_core::hard::{self, EmptyPolicy};
use dice_core::{Activation, LossForm, Reduction, Score, Shape, SoftLoss, SoftStats, Weighting};

use crate::enums::*;
use crate::executor::*;
use crate::panic::*;
use crate::status::*;

/// The shape `[N, C, S]`: batch, channels, flattened spatial size.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiceShape {
    /// N.
    pub batch: usize,
    /// C.
    pub channels: usize,
    /// S.
    pub spatial: usize,
}

impl DiceShape {
    pub(crate) fn core(self) -> Shape {
        Shape::new(self.batch, self.channels, self.spatial)
    }
}

/// Sufficient statistics of one (sample, class): `I = Σp·g`, `P = Σp` (or `Σp²`),
/// `G = Σg` (or `Σg²`), voxels counted; with soft labels also `D = Σ|p − g|`, and then
/// `I = (P + G − D)/2`. Sum them across chunks or processes (for soft-label statistics,
/// recompute `I` from the summed `P`, `G`, `D`), then score.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DiceStats {
    /// `Σ p·g`.
    pub intersection: f64,
    /// `Σ p` or `Σ p²`.
    pub pred: f64,
    /// `Σ g` or `Σ g²`.
    pub target: f64,
    /// Voxels counted.
    pub voxels: u64,
    /// Which sums these are: 0 linear, 1 squares (`squared_pred`), 2 soft label
    /// (`soft_label`: `abs_diff` holds `Σ|p − g|`).
    pub squared: u8,
    /// `D = Σ|p − g|` for soft-label statistics (`squared = 2`), else 0.
    pub abs_diff: f64,
}

impl DiceStats {
    pub(crate) fn from_core(s: &SoftStats) -> DiceStats {
        DiceStats {
            intersection: s.intersection,
            pred: s.pred,
            target: s.target,
            voxels: s.voxels,
            squared: s.moment as u8,
            abs_diff: s.abs_diff,
        }
    }
}

/// Exact confusion counts of one class.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiceConfusion {
    /// True positives.
    pub tp: u64,
    /// False positives.
    pub fp: u64,
    /// False negatives.
    pub fn_: u64,
    /// True negatives.
    pub tn: u64,
}

impl DiceConfusion {
    pub(crate) fn from_core(c: &hard::Confusion) -> Self {
        DiceConfusion {
            tp: c.tp,
            fp: c.fp,
            fn_: c.fn_,
            tn: c.tn,
        }
    }
    pub(crate) fn core(&self) -> hard::Confusion {
        hard::Confusion {
            tp: self.tp,
            fp: self.fp,
            fn_: self.fn_,
            tn: self.tn,
        }
    }
}

/// The values of the two empty cases of hard metrics (each a ::DiceEmptyValue).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiceEmptyPolicy {
    /// Reference empty, prediction not.
    pub reference_empty: i32,
    /// Reference and prediction both empty.
    pub both_empty: i32,
}

impl DiceEmptyPolicy {
    pub(crate) fn core(self) -> FfiResult<EmptyPolicy> {
        Ok(EmptyPolicy {
            reference_empty: DiceEmptyValue::from_i32(self.reference_empty, "reference_empty")?
                .core(),
            both_empty: DiceEmptyValue::from_i32(self.both_empty, "both_empty")?.core(),
        })
    }
}

/// A reduced loss and how many groups defined it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DiceLossValue {
    /// The loss after reduction.
    pub value: f64,
    /// Groups in the batch.
    pub groups: usize,
    /// Groups whose score was defined.
    pub defined: usize,
}

/// A target: dense `[N, C, S]` of the prediction's type, or a label map `[N, S]`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DiceTarget {
    /// `sizeof(DiceTarget)` as the caller was compiled, set by
    /// `dice_target_default(&t, sizeof t)` (see the stability policy).
    pub struct_size: usize,
    /// A ::DiceTargetKind.
    pub kind: i32,
    /// The elements.
    pub data: *const c_void,
    /// Number of elements (`N·C·S` dense, `N·S` labels).
    pub len: usize,
    /// Non-zero when `ignore_index` applies (label maps only).
    pub has_ignore_index: u8,
    /// Voxels whose label equals this are left out of every sum (label maps only).
    pub ignore_index: i64,
}

/// Parameters of a soft loss; get the defaults (MONAI's) from dice_soft_params_default().
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DiceSoftParams {
    /// `sizeof(DiceSoftParams)` as the caller was compiled, set by
    /// `dice_soft_params_default(&p, sizeof p)` (see the stability policy).
    pub struct_size: usize,
    /// A ::DiceScore.
    pub score: i32,
    /// Tversky weight of false positives (`≥ 0`, `alpha + beta > 0`).
    pub alpha: f64,
    /// Tversky weight of false negatives.
    pub beta: f64,
    /// A ::DiceWeighting (generalized Dice).
    pub weighting: i32,
    /// Non-zero: `Σp²`, `Σg²` in the denominator (Dice and Jaccard).
    pub squared_pred: u8,
    /// Numerator smoothing `≥ 0` (default 1e-5).
    pub smooth_nr: f64,
    /// Denominator smoothing `≥ 0` (default 1e-5).
    pub smooth_dr: f64,
    /// A ::DiceLossForm.
    pub form: i32,
    /// Focal exponent `> 0` applied to each group's loss (1 = none).
    pub gamma: f64,
    /// Non-zero: channel 0 is a class (default 1).
    pub include_background: u8,
    /// Non-zero: sum statistics over the batch before scoring.
    pub batch: u8,
    /// A ::DiceReduction.
    pub reduction: i32,
    /// A ::DiceEmptyValue: the score of a group whose denominator is zero (default ONE).
    pub zero_denominator: i32,
    /// A ::DiceActivation: what the prediction holds.
    pub activation: i32,
    /// Per-channel weights multiplying each class's loss (NULL for none).
    pub class_weights: *const f64,
    /// Number of class weights (must be C when `class_weights` is not NULL).
    pub class_weights_len: usize,
    /// Non-zero: the soft-label intersection `(P + G − Σ|p − g|)/2` instead of `Σp·g` (MONAI's
    /// `soft_label`), right for soft targets and identical for binary ones; the statistics
    /// then have `squared = 2` (unless `squared_pred`, where both forms agree).
    pub soft_label: u8,
    /// Threads for passes over at least 2²¹ elements: `≤ 1` (default) the calling thread only;
    /// `n > 1` starts `n − 1` helper threads for each such pass. Results are bit-identical
    /// for any value.
    pub threads: usize,
    /// The caller's thread pool (NULL: see `threads`); when set, `threads` is not used.
    pub executor: *const DiceExecutor,
}

crate::extensible::extensible!(DiceSoftParams, std::mem::size_of::<DiceSoftParams>());
crate::extensible::extensible!(DiceTarget, std::mem::size_of::<DiceTarget>());

impl DiceTarget {
    pub(crate) fn defaults() -> DiceTarget {
        DiceTarget {
            struct_size: std::mem::size_of::<DiceTarget>(),
            kind: DiceTargetKind::Dense as i32,
            data: std::ptr::null(),
            len: 0,
            has_ignore_index: 0,
            ignore_index: 0,
        }
    }
}

impl DiceSoftParams {
    /// What the passes run on: `executor`, else `threads`.
    ///
    /// # Safety
    /// `executor`, if not NULL, must point to a valid ::DiceExecutor for the call.
    pub(crate) unsafe fn pool(&self) -> FfiResult<Pool> {
        // SAFETY: the caller's promise on `executor`.
        unsafe { Pool::new(self.threads, self.executor) }
    }
}

impl DiceSoftParams {
    pub(crate) fn defaults() -> DiceSoftParams {
        let d = SoftLoss::dice();
        DiceSoftParams {
            struct_size: std::mem::size_of::<DiceSoftParams>(),
            score: DiceScore::Dice as i32,
            alpha: 0.5,
            beta: 0.5,
            weighting: DiceWeighting::Square as i32,
            squared_pred: 0,
            smooth_nr: d.smooth_nr,
            smooth_dr: d.smooth_dr,
            form: DiceLossForm::OneMinus as i32,
            gamma: 1.0,
            include_background: 1,
            batch: 0,
            reduction: DiceReduction::Mean as i32,
            zero_denominator: DiceEmptyValue::One as i32,
            activation: DiceActivation::None as i32,
            class_weights: std::ptr::null(),
            class_weights_len: 0,
            soft_label: 0,
            threads: 1,
            executor: std::ptr::null(),
        }
    }

    /// The core loss and activation.
    ///
    /// # Safety
    /// `class_weights`, if non-null, must point to `class_weights_len` doubles.
    pub(crate) unsafe fn core<'w>(&self) -> FfiResult<(SoftLoss<'w>, Option<Activation>)> {
        let weighting = match DiceWeighting::from_i32(self.weighting, "weighting")? {
            DiceWeighting::Square => Weighting::Square,
            DiceWeighting::Simple => Weighting::Simple,
            DiceWeighting::Uniform => Weighting::Uniform,
        };
        let score = match DiceScore::from_i32(self.score, "score")? {
            DiceScore::Dice => Score::Dice,
            DiceScore::Jaccard => Score::Jaccard,
            DiceScore::Tversky => Score::Tversky {
                alpha: self.alpha,
                beta: self.beta,
            },
            DiceScore::Generalized => Score::Generalized(weighting),
        };
        let form = match DiceLossForm::from_i32(self.form, "form")? {
            DiceLossForm::OneMinus => LossForm::OneMinus,
            DiceLossForm::NegLog => LossForm::NegLog,
            DiceLossForm::Negative => LossForm::Negative,
        };
        let reduction = match DiceReduction::from_i32(self.reduction, "reduction")? {
            DiceReduction::Mean => Reduction::Mean,
            DiceReduction::Sum => Reduction::Sum,
            DiceReduction::None => Reduction::None,
        };
        let activation = match DiceActivation::from_i32(self.activation, "activation")? {
            DiceActivation::None => None,
            DiceActivation::Sigmoid => Some(Activation::Sigmoid),
            DiceActivation::Softmax => Some(Activation::Softmax),
        };
        let mut loss = SoftLoss {
            score,
            squared_pred: flag(self.squared_pred),
            soft_label: flag(self.soft_label),
            smooth_nr: self.smooth_nr,
            smooth_dr: self.smooth_dr,
            form,
            gamma: self.gamma,
            include_background: flag(self.include_background),
            batch: flag(self.batch),
            reduction,
            class_weights: None,
            zero_denominator: DiceEmptyValue::from_i32(self.zero_denominator, "zero_denominator")?
                .core(),
            executor: None,
        };
        if !self.class_weights.is_null() || self.class_weights_len != 0 {
            // SAFETY: the caller's promise on `class_weights`.
            loss.class_weights = Some(unsafe {
                slice(self.class_weights, self.class_weights_len, "class_weights")?
            });
        }
        Ok((loss, activation))
    }
}

//! Dice plus cross-entropy or focal loss over logits, fused (MONAI's `DiceCELoss` and
//! `DiceFocalLoss`, nnU-Net's `DC_and_CE_loss`).

use dice_core::compound::{CompoundLoss, Term};

use crate::enums::*;
use crate::extensible::*;
use crate::panic::*;
use crate::params::*;
use crate::soft::{check_pairs, soft_input, stats_out};
use crate::status::*;

/// The voxel-wise term added to the Dice loss (`DiceCompoundParams::term`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceTermKind {
    /// `torch.nn.CrossEntropyLoss` over the channel softmax (`C ≥ 2`), or `BCEWithLogitsLoss`
    /// with `pos_weight = weights[0]` for one channel: MONAI's `DiceCELoss`.
    CrossEntropy = 0,
    /// `BCEWithLogitsLoss` on every element, `weights` as `pos_weight` (multi-label, regions).
    BinaryCrossEntropy = 1,
    /// MONAI's sigmoid focal loss on the channels the Dice loss counts: `DiceFocalLoss`.
    Focal = 2,
}

from_i32!(DiceTermKind {
    CrossEntropy,
    BinaryCrossEntropy,
    Focal
});

/// Parameters of the voxel term and the two weights; defaults (MONAI's `DiceCELoss`) from
/// dice_compound_params_default().
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DiceCompoundParams {
    /// `sizeof(DiceCompoundParams)` as the caller was compiled, set by
    /// `dice_compound_params_default(&p, sizeof p)` (see the stability policy).
    pub struct_size: usize,
    /// A ::DiceTermKind.
    pub term: i32,
    /// Weight of the Dice loss, `≥ 0` (default 1).
    pub lambda_dice: f64,
    /// Weight of the voxel term, `≥ 0` (MONAI's `lambda_ce` / `lambda_focal`, default 1).
    pub lambda_term: f64,
    /// One weight per channel for the voxel term (class weights, or `pos_weight` of binary
    /// cross-entropy); NULL for none.
    pub weights: *const f64,
    /// Number of weights (C when `weights` is not NULL).
    pub weights_len: usize,
    /// Label smoothing `ε ∈ [0, 1]` of the categorical cross-entropy (default 0).
    pub label_smoothing: f64,
    /// Focal exponent `γ ≥ 0` (default 2).
    pub gamma: f64,
    /// Non-zero: α-balanced focal loss with `alpha`.
    pub has_alpha: u8,
    /// `α ∈ [0, 1]` of the focal loss.
    pub alpha: f64,
}

crate::extensible::extensible!(
    DiceCompoundParams,
    std::mem::size_of::<DiceCompoundParams>()
);

impl DiceCompoundParams {
    fn defaults() -> DiceCompoundParams {
        DiceCompoundParams {
            struct_size: std::mem::size_of::<DiceCompoundParams>(),
            term: DiceTermKind::CrossEntropy as i32,
            lambda_dice: 1.0,
            lambda_term: 1.0,
            weights: std::ptr::null(),
            weights_len: 0,
            label_smoothing: 0.0,
            gamma: 2.0,
            has_alpha: 0,
            alpha: 0.25,
        }
    }

    /// The core term.
    ///
    /// # Safety
    /// `weights`, if non-null, must point to `weights_len` doubles.
    unsafe fn core<'w>(&self) -> FfiResult<Term<'w>> {
        let weights = if self.weights.is_null() && self.weights_len == 0 {
            None
        } else {
            // SAFETY: the caller's promise on `weights`.
            Some(unsafe { slice(self.weights, self.weights_len, "weights")? })
        };
        Ok(match DiceTermKind::from_i32(self.term, "term")? {
            DiceTermKind::CrossEntropy => Term::CrossEntropy {
                weight: weights,
                label_smoothing: self.label_smoothing,
            },
            DiceTermKind::BinaryCrossEntropy => Term::BinaryCrossEntropy {
                pos_weight: weights,
            },
            DiceTermKind::Focal => Term::Focal {
                gamma: self.gamma,
                alpha: flag(self.has_alpha).then_some(self.alpha),
                weight: weights,
            },
        })
    }
}

/// The value of a compound loss and of its two terms.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DiceCompoundValue {
    /// `lambda_dice·dice + lambda_term·term`.
    pub value: f64,
    /// The Dice loss, reduced.
    pub dice: f64,
    /// The voxel term, reduced.
    pub term: f64,
    /// Groups of the Dice loss.
    pub groups: usize,
    /// Groups whose Dice score was defined.
    pub defined: usize,
}

/// Writes the defaults of MONAI's `DiceCELoss` into `*out`: cross-entropy, both weights 1,
/// no class weights, no label smoothing (and, for the focal term, `gamma = 2`, no `alpha`).
///
/// `size` is `sizeof *out` as the caller was compiled; `out->struct_size` is set to it (see the
/// stability policy).
///
/// # Safety
/// `out` must be NULL or valid for writing `size` bytes.
#[no_mangle]
pub unsafe extern "C" fn dice_compound_params_default(
    out: *mut DiceCompoundParams,
    size: usize,
) -> DiceStatus {
    // SAFETY: the caller's promise on `out`.
    boundary(|| unsafe { write_defaults(out, size, DiceCompoundParams::defaults(), "out") })
}

/// Shared body of dice_compound_loss_f32() and dice_compound_loss_f64().
///
/// # Safety
/// As documented on dice_compound_loss_f32().
#[allow(clippy::too_many_arguments)]
unsafe fn compound_loss<T: dice_core::Float>(
    dice: *const DiceSoftParams,
    params: *const DiceCompoundParams,
    shape: DiceShape,
    logits: *const T,
    target: *const DiceTarget,
    mask: *const u8,
    stats: *mut DiceStats,
    stats_len: usize,
    grad: *mut T,
    grad_len: usize,
    out: *mut DiceCompoundValue,
) -> FfiResult {
    // SAFETY: every pointer below carries the caller's promise and is checked for NULL,
    // alignment and length before use.
    let (loss, activation) = unsafe { read_in(dice, "dice")?.core()? };
    let Some(activation) = activation else {
        return Err(err(
            DiceStatus::InvalidParameter,
            "dice->activation must be SIGMOID or SOFTMAX: a compound loss takes logits",
        ));
    };
    let p = unsafe { read_in(params, "params")? };
    let term = unsafe { p.core()? };
    let compound = CompoundLoss::dice_ce(loss, activation)
        .term(term)
        .lambdas(p.lambda_dice, p.lambda_term);
    let target = unsafe { read_in(target, "target")? };
    let input = unsafe { soft_input(shape, logits, &target, mask)? };
    check_pairs(shape, stats_len)?;
    let ws = stats_out(unsafe { slice_mut(stats, stats_len, "stats")? });
    if grad.is_null() {
        return Err(err(
            DiceStatus::NullPointer,
            "grad is NULL: it receives the gradient (and first holds the probabilities)",
        ));
    }
    let g = unsafe { slice_mut(grad, grad_len, "grad")? };
    let v = compound.loss_and_gradient(&input, ws, g)?;
    unsafe {
        write(
            out,
            DiceCompoundValue {
                value: v.value,
                dice: v.dice.value,
                term: v.term,
                groups: v.dice.groups,
                defined: v.dice.defined,
            },
            "out",
        )
    }
}

/// Dice plus a voxel term over `float` logits `[N, C, S]`, with `∂loss/∂logits`, in two
/// passes over the data (no probability tensor is kept).
///
/// - `dice`: the Dice-family loss (see ::DiceSoftParams); `activation` must be SIGMOID or
///   SOFTMAX and `reduction` MEAN or SUM (it also reduces the voxel term). Its
///   `class_weights` weigh the Dice loss only; the voxel term's are `params->weights`.
/// - `params`: the voxel term and the two weights (see ::DiceCompoundParams).
/// - `target`, `mask`: as for dice_soft_loss_f32() (an ignore label leaves both terms).
/// - `stats`: workspace of `N·C` ::DiceStats; holds the Dice statistics on return.
/// - `grad`: `N·C·S` floats receiving the gradient (required).
/// - `out`: the loss and its two terms.
///
/// # Safety
/// Every non-NULL pointer must be valid for the number of elements stated, `grad` and `stats`
/// writable and not overlapping any input, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn dice_compound_loss_f32(
    dice: *const DiceSoftParams,
    params: *const DiceCompoundParams,
    shape: DiceShape,
    logits: *const f32,
    target: *const DiceTarget,
    mask: *const u8,
    stats: *mut DiceStats,
    stats_len: usize,
    grad: *mut f32,
    grad_len: usize,
    out: *mut DiceCompoundValue,
) -> DiceStatus {
    // SAFETY: forwarded caller promises.
    boundary(|| unsafe {
        compound_loss(
            dice, params, shape, logits, target, mask, stats, stats_len, grad, grad_len, out,
        )
    })
}

/// dice_compound_loss_f32() for `double` logits (and a `double` dense target).
///
/// # Safety
/// As dice_compound_loss_f32().
#[no_mangle]
pub unsafe extern "C" fn dice_compound_loss_f64(
    dice: *const DiceSoftParams,
    params: *const DiceCompoundParams,
    shape: DiceShape,
    logits: *const f64,
    target: *const DiceTarget,
    mask: *const u8,
    stats: *mut DiceStats,
    stats_len: usize,
    grad: *mut f64,
    grad_len: usize,
    out: *mut DiceCompoundValue,
) -> DiceStatus {
    // SAFETY: forwarded caller promises.
    boundary(|| unsafe {
        compound_loss(
            dice, params, shape, logits, target, mask, stats, stats_len, grad, grad_len, out,
        )
    })
}

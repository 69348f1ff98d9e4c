//! Soft losses and their gradients, over probabilities or logits.

use dice_core::{DiceError, LabelSlice, Moment, Reduction, SoftInput, SoftStats, Target, Upstream};

use crate::enums::*;
use crate::extensible::*;
use crate::panic::*;
use crate::params::*;
use crate::status::*;

/// Writes MONAI's defaults into `*out`: Dice, `smooth_nr = smooth_dr = 1e-5`,
/// `include_background = 1`, `batch = 0`, mean reduction, `1 − score`, `gamma = 1`,
/// probabilities (no activation), zero-denominator ONE, Tversky `alpha = beta = 0.5`,
/// square weighting.
///
/// `size` is `sizeof *out` as the caller was compiled; `out->struct_size` is set to it (see the
/// stability policy).
///
/// # Safety
/// `out` must be NULL or valid for writing `size` bytes.
#[no_mangle]
pub unsafe extern "C" fn dice_soft_params_default(
    out: *mut DiceSoftParams,
    size: usize,
) -> DiceStatus {
    // SAFETY: the caller's promise on `out`.
    boundary(|| unsafe { write_defaults(out, size, DiceSoftParams::defaults(), "out") })
}

/// Writes an empty dense target into `*out` (kind DENSE, no data, no ignore index) with
/// `struct_size = size`, `sizeof *out` as the caller was compiled.
///
/// # Safety
/// `out` must be NULL or valid for writing `size` bytes.
#[no_mangle]
pub unsafe extern "C" fn dice_target_default(out: *mut DiceTarget, size: usize) -> DiceStatus {
    // SAFETY: the caller's promise on `out`.
    boundary(|| unsafe { write_defaults(out, size, DiceTarget::defaults(), "out") })
}

/// The number of groups (values of a `NONE` reduction) for these parameters and shape.
///
/// # Safety
/// `params` and `out` must be NULL or valid; `params->class_weights` as documented there.
#[no_mangle]
pub unsafe extern "C" fn dice_soft_group_count(
    params: *const DiceSoftParams,
    shape: DiceShape,
    out: *mut usize,
) -> DiceStatus {
    boundary(|| {
        // SAFETY: the caller's promises on `params` and `out`.
        let (loss, _) = unsafe { read_in(params, "params")?.core()? };
        loss.validate(shape.core())?;
        unsafe { write(out, loss.group_count(shape.core()), "out") }
    })
}

/// Builds the core input from C buffers of element type `T`.
///
/// # Safety
/// The pointers must satisfy the promises of the calling function.
pub(crate) unsafe fn soft_input<'a, T: dice_core::Float>(
    shape: DiceShape,
    pred: *const T,
    target: &DiceTarget,
    mask: *const u8,
) -> FfiResult<SoftInput<'a, T>> {
    let s = shape.core();
    let len = s.elements()?;
    let voxels = s.voxels()?;
    // SAFETY (all four blocks): the caller's promise that each pointer holds its length.
    let pred = unsafe { slice(pred, len, "pred")? };
    let ignore_index = flag(target.has_ignore_index).then_some(target.ignore_index);
    let kind = DiceTargetKind::from_i32(target.kind, "target.kind")?;
    if kind != DiceTargetKind::Dense && target.len != voxels {
        return Err(DiceError::LengthMismatch {
            operand: dice_core::Operand::Labels,
            expected: voxels,
            found: target.len,
        }
        .into());
    }
    if kind == DiceTargetKind::Dense && target.len != len {
        return Err(DiceError::LengthMismatch {
            operand: dice_core::Operand::Target,
            expected: len,
            found: target.len,
        }
        .into());
    }
    let labels = |l: LabelSlice<'a>| Target::Labels {
        labels: l,
        ignore_index,
    };
    let t = match kind {
        DiceTargetKind::Dense => {
            Target::Dense(unsafe { slice(target.data.cast::<T>(), len, "target.data")? })
        }
        DiceTargetKind::LabelsU8 => labels(LabelSlice::U8(unsafe {
            slice(target.data.cast(), voxels, "target.data")?
        })),
        DiceTargetKind::LabelsU16 => labels(LabelSlice::U16(unsafe {
            slice(target.data.cast(), voxels, "target.data")?
        })),
        DiceTargetKind::LabelsU32 => labels(LabelSlice::U32(unsafe {
            slice(target.data.cast(), voxels, "target.data")?
        })),
        DiceTargetKind::LabelsI32 => labels(LabelSlice::I32(unsafe {
            slice(target.data.cast(), voxels, "target.data")?
        })),
        DiceTargetKind::LabelsI64 => labels(LabelSlice::I64(unsafe {
            slice(target.data.cast(), voxels, "target.data")?
        })),
    };
    let input = SoftInput::new(s, pred, t)?;
    if mask.is_null() {
        Ok(input)
    } else {
        Ok(input.with_mask(unsafe { slice(mask, voxels, "mask")? })?)
    }
}

// `DiceStats` and `SoftStats` have the same layout, so the caller's buffer serves as the core's
// workspace without a copy or an allocation. Checked at compile time, field by field.
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<DiceStats>() == size_of::<SoftStats>());
    assert!(align_of::<DiceStats>() == align_of::<SoftStats>());
    assert!(offset_of!(DiceStats, intersection) == offset_of!(SoftStats, intersection));
    assert!(offset_of!(DiceStats, pred) == offset_of!(SoftStats, pred));
    assert!(offset_of!(DiceStats, target) == offset_of!(SoftStats, target));
    assert!(offset_of!(DiceStats, voxels) == offset_of!(SoftStats, voxels));
    assert!(offset_of!(DiceStats, squared) == offset_of!(SoftStats, moment));
    assert!(offset_of!(DiceStats, abs_diff) == offset_of!(SoftStats, abs_diff));
    assert!(size_of::<Moment>() == 1);
    assert!(Moment::Linear as u8 == 0 && Moment::Squared as u8 == 1);
    assert!(Moment::SoftLabel as u8 == 2);
};

/// The caller's statistics as core statistics, after checking every `squared` byte is 0, 1 or 2
/// (the only valid `Moment` values).
pub(crate) fn stats_in(s: &[DiceStats]) -> FfiResult<&[SoftStats]> {
    if let Some(i) = s.iter().position(|x| x.squared > 2) {
        return Err(err(
            DiceStatus::InvalidEnum,
            format!("stats[{i}].squared = {} is not 0, 1 or 2", s[i].squared),
        ));
    }
    for (i, x) in s.iter().enumerate() {
        possible_stats(i, x)?;
    }
    // SAFETY: identical layout (checked above) and every `squared` byte is a valid `Moment`.
    Ok(unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<SoftStats>(), s.len()) })
}

/// Rejects statistics that no probabilities and targets in [0, 1] can have: a sum that is
/// NaN, infinite or negative, or an intersection `Σp·g` above `Σp` or `Σg` (beyond rounding).
/// With squared moments `Σp·g ≤ √(Σp²·Σg²)` (Cauchy–Schwarz) is the bound; with soft labels
/// `Σ|p − g| ≤ Σp + Σg` (and the core recomputes the intersection from the three sums).
pub(crate) fn possible_stats(i: usize, x: &DiceStats) -> FfiResult {
    let sums = [
        ("intersection", x.intersection),
        ("pred", x.pred),
        ("target", x.target),
        ("abs_diff", x.abs_diff),
    ];
    if let Some((name, v)) = sums.iter().find(|(_, v)| !(v.is_finite() && *v >= 0.0)) {
        return Err(err(
            DiceStatus::InvalidParameter,
            format!("stats[{i}].{name} = {v} is not a finite sum of values in [0, 1]"),
        ));
    }
    let bound = if x.squared == 1 {
        (x.pred * x.target).sqrt()
    } else {
        x.pred.min(x.target)
    };
    // Sums of f32 products carry a relative error of about 1e-6; allow that, no more.
    if x.squared == 2 && x.abs_diff > (x.pred + x.target) * (1.0 + 1e-6) + 1e-9 {
        return Err(err(
            DiceStatus::InvalidParameter,
            format!(
                "stats[{i}] is impossible: abs_diff {} exceeds pred + target ({} + {})",
                x.abs_diff, x.pred, x.target
            ),
        ));
    }
    if x.intersection > bound * (1.0 + 1e-6) + 1e-9 {
        return Err(err(
            DiceStatus::InvalidParameter,
            format!(
                "stats[{i}] is impossible: intersection {} exceeds {} (pred {}, target {})",
                x.intersection,
                if x.squared == 1 {
                    "sqrt(pred * target)"
                } else {
                    "min(pred, target)"
                },
                x.pred,
                x.target
            ),
        ));
    }
    Ok(())
}

/// The caller's statistics buffer as core statistics to write into: reset first, so that
/// every element is a valid `SoftStats` whatever the buffer held.
pub(crate) fn stats_out(s: &mut [DiceStats]) -> &mut [SoftStats] {
    s.fill(DiceStats::default());
    // SAFETY: identical layout (checked above); every element was just made valid.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<SoftStats>(), s.len()) }
}

pub(crate) fn check_pairs(shape: DiceShape, stats_len: usize) -> FfiResult {
    let pairs = shape.core().pairs()?;
    if stats_len != pairs {
        return Err(DiceError::LengthMismatch {
            operand: dice_core::Operand::Statistics,
            expected: pairs,
            found: stats_len,
        }
        .into());
    }
    Ok(())
}

/// Shared body of dice_soft_loss_f32() and dice_soft_loss_f64().
///
/// # Safety
/// As documented on dice_soft_loss_f32().
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn soft_loss<T: dice_core::Float>(
    params: *const DiceSoftParams,
    shape: DiceShape,
    pred: *const T,
    target: *const DiceTarget,
    mask: *const u8,
    stats: *mut DiceStats,
    stats_len: usize,
    grad: *mut T,
    grad_len: usize,
    out: *mut DiceLossValue,
) -> FfiResult {
    // SAFETY: every pointer below carries the caller's promise and is checked for NULL,
    // alignment and length before use.
    let params = unsafe { read_in(params, "params")? };
    let (mut loss, activation) = unsafe { params.core()? };
    let pool = unsafe { params.pool()? };
    loss.executor = pool.executor();
    let target = unsafe { read_in(target, "target")? };
    let input = unsafe { soft_input(shape, pred, &target, mask)? };
    check_pairs(shape, stats_len)?;
    let ws = stats_out(unsafe { slice_mut(stats, stats_len, "stats")? });
    let value = match (activation, grad.is_null()) {
        (Some(act), false) => {
            let g = unsafe { slice_mut(grad, grad_len, "grad")? };
            loss.loss_and_gradient_logits(&input, act, ws, g)?
        }
        (Some(_), true) => {
            return Err(err(
                DiceStatus::NullPointer,
                "logits need the grad buffer (it first holds the probabilities)",
            ))
        }
        (None, false) => {
            let g = unsafe { slice_mut(grad, grad_len, "grad")? };
            loss.loss_and_gradient(&input, ws, g)?
        }
        (None, true) => {
            loss.statistics(&input, ws)?;
            loss.loss(shape.core(), ws)?
        }
    };
    unsafe {
        write(
            out,
            DiceLossValue {
                value: value.value,
                groups: value.groups,
                defined: value.defined,
            },
            "out",
        )
    }
}

/// Soft loss of a batch of `float` predictions `[N, C, S]`, with its gradient.
///
/// - `params`: the loss (see ::DiceSoftParams; `activation` says whether `pred` holds
///   probabilities or logits).
/// - `target`: dense `[N, C, S]` floats or a label map `[N, S]` (see ::DiceTarget).
/// - `mask`: NULL, or `N·S` bytes; voxels whose byte is 0 are left out and get zero gradient.
/// - `stats`: workspace of `stats_len = N·C` ::DiceStats; holds each (sample, class)'s
///   statistics on return (sum them across processes for a distributed loss).
/// - `grad`: NULL for the value only, or `grad_len = N·C·S` floats receiving ∂loss/∂pred
///   (∂loss/∂logits with an activation, which requires it).
/// - `out`: the reduced loss.
///
/// Errors: NULL pointers, lengths, NaN/∞, probabilities outside [0, 1], labels out of range,
/// invalid parameters or enumerations; see dice_last_error_message().
///
/// # Safety
/// Every non-NULL pointer must be valid for the number of elements stated, `grad` and `stats`
/// writable and not overlapping any input, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn dice_soft_loss_f32(
    params: *const DiceSoftParams,
    shape: DiceShape,
    pred: *const f32,
    target: *const DiceTarget,
    mask: *const u8,
    stats: *mut DiceStats,
    stats_len: usize,
    grad: *mut f32,
    grad_len: usize,
    out: *mut DiceLossValue,
) -> DiceStatus {
    // SAFETY: forwarded caller promises.
    boundary(|| unsafe {
        soft_loss(
            params, shape, pred, target, mask, stats, stats_len, grad, grad_len, out,
        )
    })
}

/// dice_soft_loss_f32() for `double` predictions (and dense `double` targets).
///
/// # Safety
/// As dice_soft_loss_f32().
#[no_mangle]
pub unsafe extern "C" fn dice_soft_loss_f64(
    params: *const DiceSoftParams,
    shape: DiceShape,
    pred: *const f64,
    target: *const DiceTarget,
    mask: *const u8,
    stats: *mut DiceStats,
    stats_len: usize,
    grad: *mut f64,
    grad_len: usize,
    out: *mut DiceLossValue,
) -> DiceStatus {
    // SAFETY: forwarded caller promises.
    boundary(|| unsafe {
        soft_loss(
            params, shape, pred, target, mask, stats, stats_len, grad, grad_len, out,
        )
    })
}

/// The reduced loss from statistics (`N·C` of them, e.g. summed across processes), and, when
/// `values` is not NULL, each group's loss (`len` = dice_soft_group_count()) with
/// `defined[g]` = 0 for a group skipped by the zero-denominator policy.
///
/// # Safety
/// `params`, `stats` (`stats_len`), `values` and `defined` (`len` each, or NULL), `out` valid.
#[no_mangle]
pub unsafe extern "C" fn dice_soft_loss_from_stats(
    params: *const DiceSoftParams,
    shape: DiceShape,
    stats: *const DiceStats,
    stats_len: usize,
    values: *mut f64,
    defined: *mut u8,
    len: usize,
    out: *mut DiceLossValue,
) -> DiceStatus {
    boundary(|| {
        // SAFETY: the caller's promises, checked before use.
        let (loss, _) = unsafe { read_in(params, "params")?.core()? };
        check_pairs(shape, stats_len)?;
        let st = stats_in(unsafe { slice(stats, stats_len, "stats")? })?;
        let v = if values.is_null() {
            loss.loss(shape.core(), st)?
        } else {
            let groups = loss.group_count(shape.core());
            if len != groups {
                return Err(DiceError::LengthMismatch {
                    operand: dice_core::Operand::Output,
                    expected: groups,
                    found: len,
                }
                .into());
            }
            let vals = unsafe { slice_mut(values, len, "values")? };
            let def = unsafe { slice_mut(defined, len, "defined")? };
            loss.for_each_group(shape.core(), st, |g, l| {
                vals[g] = l.unwrap_or(f64::NAN);
                def[g] = u8::from(l.is_some());
            })?
        };
        unsafe {
            write(
                out,
                DiceLossValue {
                    value: v.value,
                    groups: v.groups,
                    defined: v.defined,
                },
                "out",
            )
        }
    })
}

/// Shared body of the gradient entry points.
///
/// # Safety
/// As dice_soft_gradient_f32().
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn soft_gradient<T: dice_core::Float>(
    params: *const DiceSoftParams,
    shape: DiceShape,
    pred: *const T,
    target: *const DiceTarget,
    mask: *const u8,
    stats: *const DiceStats,
    stats_len: usize,
    upstream: *const f64,
    upstream_len: usize,
    grad: *mut T,
    grad_len: usize,
) -> FfiResult {
    // SAFETY: every pointer carries the caller's promise and is checked before use.
    let params = unsafe { read_in(params, "params")? };
    let (mut loss, activation) = unsafe { params.core()? };
    let pool = unsafe { params.pool()? };
    loss.executor = pool.executor();
    let target = unsafe { read_in(target, "target")? };
    let input = unsafe { soft_input(shape, pred, &target, mask)? };
    check_pairs(shape, stats_len)?;
    let st = stats_in(unsafe { slice(stats, stats_len, "stats")? })?;
    let up = unsafe { slice(upstream, upstream_len, "upstream")? };
    if loss.reduction != Reduction::None && up.len() != 1 {
        return Err(err(
            DiceStatus::LengthMismatch,
            format!(
                "upstream has {} values: a reduced loss (MEAN or SUM) takes exactly 1; one per \
                 group needs reduction NONE",
                up.len()
            ),
        ));
    }
    let upstream = match up.len() {
        1 if loss.reduction != Reduction::None || loss.group_count(shape.core()) == 1 => {
            Upstream::Scalar(up[0])
        }
        _ => Upstream::PerGroup(up),
    };
    let g = unsafe { slice_mut(grad, grad_len, "grad")? };
    match activation {
        None => Ok(loss.gradient(&input, st, upstream, g)?),
        Some(act) => Ok(loss.gradient_logits(&input, act, st, upstream, g)?),
    }
}

/// ∂loss/∂pred given statistics `stats` (`N·C`, of the probabilities, e.g. all-reduced across
/// processes) and the upstream gradient: one value (`upstream_len = 1`) scaling the reduced
/// loss (or every group's loss with a `NONE` reduction), or one per group with a `NONE`
/// reduction. `pred` holds probabilities, or logits when `params->activation` says so (then
/// the gradient is with respect to the logits). Writes `grad_len = N·C·S` floats.
///
/// # Safety
/// Every non-NULL pointer must be valid for the number of elements stated; `grad` writable
/// and not overlapping any input.
#[no_mangle]
pub unsafe extern "C" fn dice_soft_gradient_f32(
    params: *const DiceSoftParams,
    shape: DiceShape,
    pred: *const f32,
    target: *const DiceTarget,
    mask: *const u8,
    stats: *const DiceStats,
    stats_len: usize,
    upstream: *const f64,
    upstream_len: usize,
    grad: *mut f32,
    grad_len: usize,
) -> DiceStatus {
    // SAFETY: forwarded caller promises.
    boundary(|| unsafe {
        soft_gradient(
            params,
            shape,
            pred,
            target,
            mask,
            stats,
            stats_len,
            upstream,
            upstream_len,
            grad,
            grad_len,
        )
    })
}

/// dice_soft_gradient_f32() for `double`.
///
/// # Safety
/// As dice_soft_gradient_f32().
#[no_mangle]
pub unsafe extern "C" fn dice_soft_gradient_f64(
    params: *const DiceSoftParams,
    shape: DiceShape,
    pred: *const f64,
    target: *const DiceTarget,
    mask: *const u8,
    stats: *const DiceStats,
    stats_len: usize,
    upstream: *const f64,
    upstream_len: usize,
    grad: *mut f64,
    grad_len: usize,
) -> DiceStatus {
    // SAFETY: forwarded caller promises.
    boundary(|| unsafe {
        soft_gradient(
            params,
            shape,
            pred,
            target,
            mask,
            stats,
            stats_len,
            upstream,
            upstream_len,
            grad,
            grad_len,
        )
    })
}

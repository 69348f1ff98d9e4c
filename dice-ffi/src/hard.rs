//! Hard confusion counts (thresholded probabilities, masks, label maps) and the metrics
//! computed from them.

use std::ffi::c_void;

use dice_core::hard::{self};

use crate::enums::*;
use crate::panic::*;
use crate::params::*;
use crate::status::*;

/// Writes this library's default empty policy: reference empty → ZERO, both empty → SKIP.
///
/// # Safety
/// `out` must be NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn dice_empty_policy_default(out: *mut DiceEmptyPolicy) -> DiceStatus {
    let p = DiceEmptyPolicy {
        reference_empty: DiceEmptyValue::Zero as i32,
        both_empty: DiceEmptyValue::Skip as i32,
    };
    // SAFETY: the caller's promise on `out`.
    boundary(|| unsafe { write(out, p, "out") })
}

/// Confusion counts of `pred ≥ threshold` against `target ≥ threshold`, both `len` floats in
/// [0, 1].
///
/// # Safety
/// `pred` and `target` valid for `len` floats, `out` for writing.
#[no_mangle]
pub unsafe extern "C" fn dice_confusion_from_probabilities_f32(
    pred: *const f32,
    target: *const f32,
    len: usize,
    threshold: f64,
    out: *mut DiceConfusion,
) -> DiceStatus {
    boundary(|| {
        // SAFETY: the caller's promises, checked before use.
        let (p, t) = unsafe { (slice(pred, len, "pred")?, slice(target, len, "target")?) };
        let c = hard::confusion_from_probabilities(p, t, threshold)?;
        unsafe { write(out, DiceConfusion::from_core(&c), "out") }
    })
}

/// dice_confusion_from_probabilities_f32() for `double`.
///
/// # Safety
/// As dice_confusion_from_probabilities_f32().
#[no_mangle]
pub unsafe extern "C" fn dice_confusion_from_probabilities_f64(
    pred: *const f64,
    target: *const f64,
    len: usize,
    threshold: f64,
    out: *mut DiceConfusion,
) -> DiceStatus {
    boundary(|| {
        // SAFETY: the caller's promises, checked before use.
        let (p, t) = unsafe { (slice(pred, len, "pred")?, slice(target, len, "target")?) };
        let c = hard::confusion_from_probabilities(p, t, threshold)?;
        unsafe { write(out, DiceConfusion::from_core(&c), "out") }
    })
}

/// Confusion counts of two binary masks of `len` bytes (non-zero = positive).
///
/// # Safety
/// `pred` and `target` valid for `len` bytes, `out` for writing.
#[no_mangle]
pub unsafe extern "C" fn dice_confusion_from_masks_u8(
    pred: *const u8,
    target: *const u8,
    len: usize,
    out: *mut DiceConfusion,
) -> DiceStatus {
    boundary(|| {
        // SAFETY: the caller's promises, checked before use.
        let (p, t) = unsafe { (slice(pred, len, "pred")?, slice(target, len, "target")?) };
        let c = hard::confusion_from_masks(p, t)?;
        unsafe { write(out, DiceConfusion::from_core(&c), "out") }
    })
}

/// Per-label confusion counts of two label maps of `len` voxels of type `label_type` (a
/// ::DiceLabelType), every label in one pass: `out[l]` for `l < labels`. Voxels whose
/// *reference* equals `ignore_index` (when `has_ignore_index`) are left out. `counted`, if
/// not NULL, receives the number of voxels counted.
///
/// # Safety
/// `pred` and `target` valid for `len` elements of the label type, `out` for `labels`
/// writable ::DiceConfusion, `counted` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dice_label_confusion(
    label_type: i32,
    pred: *const c_void,
    target: *const c_void,
    len: usize,
    has_ignore_index: u8,
    ignore_index: i64,
    out: *mut DiceConfusion,
    labels: usize,
    counted: *mut u64,
) -> DiceStatus {
    boundary(|| {
        let ty = DiceLabelType::from_i32(label_type, "label_type")?;
        let ignore = flag(has_ignore_index).then_some(ignore_index);
        // SAFETY: the caller's promises, checked before use.
        let out = unsafe { slice_mut(out, labels, "out")? };
        let n = unsafe { label_confusion_typed(ty, pred, target, len, ignore, out)? };
        if !counted.is_null() {
            unsafe { write(counted, n, "counted")? };
        }
        Ok(())
    })
}

/// Runs `$body` with `$p` and `$t` bound to the two label maps as slices of the type `$ty` (a
/// ::DiceLabelType) names, after the pointer checks. Use inside `unsafe`: the caller promises
/// both pointers hold `$len` elements of that type.
macro_rules! with_label_slices {
    ($ty:expr, $pred:expr, $target:expr, $len:expr, |$p:ident, $t:ident| $body:expr) => {
        match $ty {
            DiceLabelType::U8 => {
                let ($p, $t) = (
                    slice::<u8>($pred.cast(), $len, "pred")?,
                    slice::<u8>($target.cast(), $len, "target")?,
                );
                $body
            }
            DiceLabelType::U16 => {
                let ($p, $t) = (
                    slice::<u16>($pred.cast(), $len, "pred")?,
                    slice::<u16>($target.cast(), $len, "target")?,
                );
                $body
            }
            DiceLabelType::U32 => {
                let ($p, $t) = (
                    slice::<u32>($pred.cast(), $len, "pred")?,
                    slice::<u32>($target.cast(), $len, "target")?,
                );
                $body
            }
            DiceLabelType::I32 => {
                let ($p, $t) = (
                    slice::<i32>($pred.cast(), $len, "pred")?,
                    slice::<i32>($target.cast(), $len, "target")?,
                );
                $body
            }
            DiceLabelType::I64 => {
                let ($p, $t) = (
                    slice::<i64>($pred.cast(), $len, "pred")?,
                    slice::<i64>($target.cast(), $len, "target")?,
                );
                $body
            }
        }
    };
}
pub(crate) use with_label_slices;

/// # Safety
/// `pred` and `target` valid for `len` elements of `ty`.
pub(crate) unsafe fn label_confusion_typed(
    ty: DiceLabelType,
    pred: *const c_void,
    target: *const c_void,
    len: usize,
    ignore: Option<i64>,
    out: &mut [DiceConfusion],
) -> FfiResult<u64> {
    // Counts go straight into the caller's buffer, converted in place: `DiceConfusion` and
    // `hard::Confusion` are four u64 each, but only the latter is the core's type, so convert
    // through a fixed stack chunk to keep the hot path allocation-free.
    pub(crate) fn run<L: dice_core::Label>(
        p: &[L],
        t: &[L],
        ignore: Option<i64>,
        out: &mut [DiceConfusion],
    ) -> FfiResult<u64> {
        let core = confusions_out(out);
        let n = hard::label_confusion(p, t, ignore, core)?;
        Ok(n)
    }
    // SAFETY: the caller's promise that both pointers hold `len` elements of `ty`.
    unsafe { with_label_slices!(ty, pred, target, len, |p, t| run(p, t, ignore, out)) }
}

// `DiceConfusion` and `hard::Confusion` have the same layout (four u64, every bit pattern
// valid), so the caller's buffer holds the core's counts directly.
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<DiceConfusion>() == size_of::<hard::Confusion>());
    assert!(align_of::<DiceConfusion>() == align_of::<hard::Confusion>());
    assert!(offset_of!(DiceConfusion, tp) == offset_of!(hard::Confusion, tp));
    assert!(offset_of!(DiceConfusion, fp) == offset_of!(hard::Confusion, fp));
    assert!(offset_of!(DiceConfusion, fn_) == offset_of!(hard::Confusion, fn_));
    assert!(offset_of!(DiceConfusion, tn) == offset_of!(hard::Confusion, tn));
};

pub(crate) fn confusions_out(s: &mut [DiceConfusion]) -> &mut [hard::Confusion] {
    // SAFETY: identical layout (checked above); every bit pattern of four u64 is valid.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<hard::Confusion>(), s.len()) }
}

/// One hard metric (a ::DiceMetric) of each of `n` confusion counts under `policy`:
/// `values[i]` receives the value (NaN when skipped) and `defined[i]` 1, or 0 when the empty
/// policy skipped it.
///
/// # Safety
/// `counts` valid for `n`, `values` and `defined` writable for `n`.
#[no_mangle]
pub unsafe extern "C" fn dice_metrics(
    counts: *const DiceConfusion,
    n: usize,
    metric: i32,
    policy: DiceEmptyPolicy,
    values: *mut f64,
    defined: *mut u8,
) -> DiceStatus {
    boundary(|| {
        let metric = DiceMetric::from_i32(metric, "metric")?.core();
        let policy = policy.core()?;
        // SAFETY: the caller's promises, checked before use.
        let (c, v, d) = unsafe {
            (
                slice(counts, n, "counts")?,
                slice_mut(values, n, "values")?,
                slice_mut(defined, n, "defined")?,
            )
        };
        if let Some(i) = c.iter().position(|k| k.core().validate().is_err()) {
            let k = c[i];
            return Err(err(
                DiceStatus::InvalidParameter,
                format!(
                    "counts[{i}] = (tp {}, fp {}, fn {}, tn {}) overflow u64 when summed: not the \
                     counts of one set of voxels",
                    k.tp, k.fp, k.fn_, k.tn
                ),
            ));
        }
        for i in 0..n {
            let m = c[i].core().metric(metric, policy);
            v[i] = m.unwrap_or(f64::NAN);
            d[i] = u8::from(m.is_some());
        }
        Ok(())
    })
}

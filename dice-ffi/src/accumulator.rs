//! The streaming accumulator: soft statistics and hard counts over a volume seen chunk by
//! chunk.

use std::ffi::c_void;

use dice_core::hard::{self};
use dice_core::{DiceError, Moment, SoftStats};

use crate::enums::*;
use crate::hard::label_confusion_typed;
use crate::panic::*;
use crate::params::*;
use crate::status::*;

/// An accumulator of per-class soft statistics and hard counts over a volume seen chunk by
/// chunk (slice by slice on a small device). Opaque: create with dice_accumulator_new(), free
/// with dice_accumulator_free().
pub struct DiceAccumulator {
    /// [`ACCUMULATOR_MAGIC`] while live; cleared when freed, so that a freed or foreign pointer
    /// is reported (as long as its memory was not reused) instead of read as counts.
    magic: u64,
    threshold: f64,
    ignore: Option<i64>,
    stats: Vec<SoftStats>,
    counts: Vec<hard::Confusion>,
    // Scratch of the same sizes, allocated once: a chunk is summed here in full, then
    // committed, so that an error leaves the accumulator unchanged.
    chunk_stats: Vec<SoftStats>,
    chunk_counts: Vec<hard::Confusion>,
}

/// "diceacc1" in ASCII: marks a live accumulator.
pub(crate) const ACCUMULATOR_MAGIC: u64 = u64::from_le_bytes(*b"diceacc1");

/// Creates an accumulator for `classes` classes. `threshold` binarises probability chunks for
/// the hard counts; voxels whose reference label equals `ignore_index` (when
/// `has_ignore_index`) are left out of label chunks. The only function that allocates; memory
/// it cannot get is DICE_STATUS_OUT_OF_MEMORY, never an abort of the host.
///
/// # Safety
/// `out` must be NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn dice_accumulator_new(
    classes: usize,
    threshold: f64,
    has_ignore_index: u8,
    ignore_index: i64,
    out: *mut *mut DiceAccumulator,
) -> DiceStatus {
    boundary(|| {
        check_ptr(out, 1, "out")?;
        if classes == 0 {
            return Err(err(
                DiceStatus::Empty,
                "an accumulator needs at least one class",
            ));
        }
        if !(0.0..=1.0).contains(&threshold) {
            return Err(DiceError::InvalidParameter {
                name: "threshold",
                value: threshold,
                reason: "must be in [0, 1]",
            }
            .into());
        }
        if classes
            .checked_mul(2 * std::mem::size_of::<SoftStats>())
            .is_none_or(|b| b > isize::MAX as usize)
        {
            return Err(err(
                DiceStatus::ShapeOverflow,
                format!("{classes} classes overflow the address space"),
            ));
        }
        let zero = SoftStats::zero(Moment::Linear);
        let acc = Box::new(DiceAccumulator {
            magic: ACCUMULATOR_MAGIC,
            threshold,
            ignore: flag(has_ignore_index).then_some(ignore_index),
            stats: try_vec(classes, zero, "statistics")?,
            counts: try_vec(classes, hard::Confusion::default(), "counts")?,
            chunk_stats: try_vec(classes, zero, "statistics")?,
            chunk_counts: try_vec(classes, hard::Confusion::default(), "counts")?,
        });
        // SAFETY: checked non-null and aligned above; writability is the caller's promise.
        unsafe { out.write(Box::into_raw(acc)) };
        Ok(())
    })
}

/// # Safety
/// `acc` NULL or a live accumulator from dice_accumulator_new(), not used by another thread.
pub(crate) unsafe fn accumulator<'a>(
    acc: *mut DiceAccumulator,
) -> FfiResult<&'a mut DiceAccumulator> {
    // SAFETY: forwarded promise; the shared reference ends before the exclusive one.
    unsafe { live_accumulator(acc, "accumulator")? };
    // SAFETY: the caller's promise that it is live and exclusive.
    Ok(unsafe { &mut *acc })
}

/// A shared reference to an accumulator after checking the pointer and its magic value.
///
/// # Safety
/// `acc` NULL or pointing to readable memory of an accumulator's size.
pub(crate) unsafe fn live_accumulator<'a>(
    acc: *const DiceAccumulator,
    what: &str,
) -> FfiResult<&'a DiceAccumulator> {
    check_ptr(acc, 1, what)?;
    // Read the magic value alone first: a foreign pointer's bytes are not an accumulator.
    // SAFETY: non-null and aligned (checked); readable is the caller's promise.
    let magic = unsafe { std::ptr::addr_of!((*acc).magic).read() };
    if magic != ACCUMULATOR_MAGIC {
        return Err(err(
            DiceStatus::InvalidParameter,
            format!(
                "{what} is not a live accumulator (freed, or not made by dice_accumulator_new)"
            ),
        ));
    }
    // SAFETY: the caller's promise that it is live.
    Ok(unsafe { &*acc })
}

/// Adds a chunk of probabilities: `pred` and `target` are `[C, voxels]` (channel-major, `C`
/// the accumulator's classes), floats in [0, 1]. Updates the soft statistics and, thresholded,
/// the hard counts. On an error the accumulator is unchanged.
///
/// # Safety
/// `acc` live and exclusive; `pred` and `target` valid for `C·voxels` floats.
#[no_mangle]
pub unsafe extern "C" fn dice_accumulator_update_probabilities_f32(
    acc: *mut DiceAccumulator,
    pred: *const f32,
    target: *const f32,
    voxels: usize,
) -> DiceStatus {
    boundary(|| {
        // SAFETY: the caller's promises, checked before use.
        let a = unsafe { accumulator(acc)? };
        let classes = a.stats.len();
        let len = classes
            .checked_mul(voxels)
            .ok_or(err(DiceStatus::ShapeOverflow, "classes·voxels overflows"))?;
        let (p, t) = unsafe { (slice(pred, len, "pred")?, slice(target, len, "target")?) };
        if voxels == 0 {
            return Ok(());
        }
        for (c, (s, k)) in a
            .chunk_stats
            .iter_mut()
            .zip(a.chunk_counts.iter_mut())
            .enumerate()
        {
            let r = c * voxels..(c + 1) * voxels;
            *s = SoftStats::of(&p[r.clone()], &t[r.clone()], Moment::Linear)?;
            *k = hard::confusion_from_probabilities(&p[r.clone()], &t[r], a.threshold)?;
        }
        a.commit()
    })
}

/// Adds a chunk of two label maps of `voxels` elements of `label_type` (labels in
/// `0..classes`, or the ignore label in the reference): updates the hard counts only. On an
/// error the accumulator is unchanged.
///
/// # Safety
/// `acc` live and exclusive; `pred` and `target` valid for `voxels` elements.
#[no_mangle]
pub unsafe extern "C" fn dice_accumulator_update_labels(
    acc: *mut DiceAccumulator,
    label_type: i32,
    pred: *const c_void,
    target: *const c_void,
    voxels: usize,
) -> DiceStatus {
    boundary(|| {
        let ty = DiceLabelType::from_i32(label_type, "label_type")?;
        // SAFETY: the caller's promises, checked before use.
        let a = unsafe { accumulator(acc)? };
        if voxels == 0 {
            return Ok(());
        }
        let ignore = a.ignore;
        // The chunk's counts go to the scratch buffer, viewed as the C type the typed helper takes.
        let scratch = confusions_in_out(&mut a.chunk_counts);
        unsafe { label_confusion_typed(ty, pred, target, voxels, ignore, scratch)? };
        a.chunk_stats.fill(SoftStats::zero(Moment::Linear));
        a.commit()
    })
}

pub(crate) fn confusions_in_out(s: &mut [hard::Confusion]) -> &mut [DiceConfusion] {
    // SAFETY: identical layout (checked at compile time above); every bit pattern is valid.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<DiceConfusion>(), s.len()) }
}

impl DiceAccumulator {
    /// Adds the scratch chunk to the totals.
    pub(crate) fn commit(&mut self) -> FfiResult {
        for (s, c) in self.stats.iter_mut().zip(&self.chunk_stats) {
            *s = s.merge(c)?;
        }
        for (k, c) in self.counts.iter_mut().zip(&self.chunk_counts) {
            *k = k.merge(c);
        }
        Ok(())
    }
}

/// Adds everything `src` has seen to `dst` (the union of disjoint chunks, e.g. from two
/// threads or devices). Both must have the same number of classes.
///
/// # Safety
/// `dst` and `src` live accumulators, distinct, neither used by another thread.
#[no_mangle]
pub unsafe extern "C" fn dice_accumulator_merge(
    dst: *mut DiceAccumulator,
    src: *const DiceAccumulator,
) -> DiceStatus {
    boundary(|| {
        check_ptr(dst, 1, "dst")?;
        check_ptr(src, 1, "src")?;
        if std::ptr::eq(dst, src) {
            return Err(err(
                DiceStatus::InvalidParameter,
                "an accumulator cannot be merged into itself",
            ));
        }
        // SAFETY: the caller's promises, checked before use; distinct (checked just above).
        let (d, s) = unsafe { (accumulator(dst)?, live_accumulator(src, "src")?) };
        if d.stats.len() != s.stats.len() {
            return Err(DiceError::LengthMismatch {
                operand: dice_core::Operand::Statistics,
                expected: d.stats.len(),
                found: s.stats.len(),
            }
            .into());
        }
        d.chunk_stats.copy_from_slice(&s.stats);
        d.chunk_counts.copy_from_slice(&s.counts);
        d.commit()
    })
}

/// Copies the totals out: `counts` and `stats` (either may be NULL) have `classes` entries.
/// Score them with dice_metrics() and dice_soft_loss_from_stats() (shape `[1, classes, 1]`).
///
/// # Safety
/// `acc` live; `counts` and `stats` NULL or writable for `classes` entries.
#[no_mangle]
pub unsafe extern "C" fn dice_accumulator_finish(
    acc: *const DiceAccumulator,
    counts: *mut DiceConfusion,
    stats: *mut DiceStats,
    classes: usize,
) -> DiceStatus {
    boundary(|| {
        // SAFETY: the caller's promises, checked before use.
        let a = unsafe { live_accumulator(acc, "accumulator")? };
        if classes != a.stats.len() {
            return Err(DiceError::LengthMismatch {
                operand: dice_core::Operand::Output,
                expected: a.stats.len(),
                found: classes,
            }
            .into());
        }
        if !counts.is_null() {
            let out = unsafe { slice_mut(counts, classes, "counts")? };
            for (o, c) in out.iter_mut().zip(&a.counts) {
                *o = DiceConfusion::from_core(c);
            }
        }
        if !stats.is_null() {
            let out = unsafe { slice_mut(stats, classes, "stats")? };
            for (o, s) in out.iter_mut().zip(&a.stats) {
                *o = DiceStats::from_core(s);
            }
        }
        Ok(())
    })
}

/// Frees an accumulator (NULL is a no-op). A pointer that is not a live accumulator (freed
/// already, or foreign) is not freed: the error is kept for dice_last_error_message().
///
/// # Safety
/// `acc` NULL or a live accumulator from dice_accumulator_new(), not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn dice_accumulator_free(acc: *mut DiceAccumulator) {
    if !acc.is_null() {
        // A panic cannot occur in dropping plain vectors; the boundary still guards it.
        let _ = boundary(|| {
            // SAFETY: the caller's promise; the magic value is checked before anything else.
            let a = unsafe { accumulator(acc)? };
            a.magic = 0;
            // SAFETY: it came from dice_accumulator_new() (magic checked) and the caller does
            // not use it afterwards.
            drop(unsafe { Box::from_raw(acc) });
            Ok(())
        });
    }
}

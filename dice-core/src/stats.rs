//! Sufficient statistics of the soft scores, as a value type that merges.
//!
//! Every soft score of this crate is a function of four numbers per (sample, class):
//! the intersection `I = Σ pᵢ·gᵢ`, the prediction moment `P = Σ pᵢ` (or `Σ pᵢ²` with
//! `squared_pred`), the target moment `G = Σ gᵢ` (or `Σ gᵢ²`) and the voxel count.
//!
//! ## Soft labels
//! With soft targets (label smoothing, mixup, distillation) `Σp·g` is the wrong intersection:
//! for `g = 0.7` it is largest at `p = 1`, so the loss is not minimal at `p = g` (MONAI #8094,
//! smp PR #810). [`Moment::SoftLabel`] keeps `D = Σ|pᵢ − gᵢ|` instead and takes
//! `I = (P + G − D)/2` (Wang & Blaschko's JDT form, MONAI's `soft_label = true`), which equals
//! `Σp·g` wherever `g ∈ {0, 1}` and makes `p = g` the minimum for any `g`. With squared moments
//! the same construction, `(Σp² + Σg² − Σ(p − g)²)/2`, *is* `Σp·g`, so soft labels change
//! nothing there (MONAI computes it that way; we keep `Σp·g`). Sums add, so
//! statistics of the chunks of a volume, merged, equal the statistics of the whole volume (up
//! to the rounding of the sums): this is what makes slice-by-slice evaluation on small devices
//! and the all-reduce of data-parallel training exact. Reduce (sum) the statistics, *then*
//! compute the score; averaging per-process scores is a different, biased quantity.
//!
//! Sums are `f64` whatever the input type, and never stagnate; the error bound is in the docs
//! of [`crate::ACCUMULATION_ROWS`].

use crate::drive::{self, Exec};
use crate::error::{DiceError, Operand, Result};
use crate::kernels::{portable, Bad, Sums};
use crate::layout::{check_labels, check_len, with_labels, SoftInput, Target};
use crate::{Float, Label as _};

/// Which sums the statistics hold (`repr(u8)`: 0 linear, 1 squared, 2 soft label).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Moment {
    /// `I = Σp·g`, `P = Σp`, `G = Σg` (the Dice of Milletari's V-Net paper uses squares instead).
    #[default]
    Linear = 0,
    /// `I = Σp·g`, `P = Σp²`, `G = Σg²`: MONAI's `squared_pred = true`.
    Squared = 1,
    /// `P = Σp`, `G = Σg`, `abs_diff = Σ|p − g|` and `I = (P + G − abs_diff)/2`: MONAI's
    /// `soft_label = true` (see the module docs).
    SoftLabel = 2,
}

/// The sufficient statistics of one (sample, class) or of any union of voxels.
///
/// `intersection = Σ p·g`, `pred = Σ p` or `Σ p²`, `target = Σ g` or `Σ g²`, `voxels` = the
/// number of voxels counted (after masks and ignore labels). With [`Moment::SoftLabel`],
/// `abs_diff = Σ|p − g|` and `intersection = max(0, (pred + target − abs_diff)/2)`, recomputed
/// from the merged sums by [`SoftStats::merge`] so that it stays exact under any grouping.
///
/// `repr(C)`, so that a C caller's buffer of the same layout can hold it (see `dice-ffi`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct SoftStats {
    /// `I = Σ pᵢ·gᵢ`.
    pub intersection: f64,
    /// `P = Σ pᵢ` (linear) or `Σ pᵢ²` (squared).
    pub pred: f64,
    /// `G = Σ gᵢ` (linear) or `Σ gᵢ²` (squared).
    pub target: f64,
    /// Voxels counted.
    pub voxels: u64,
    /// Which sums the fields hold.
    pub moment: Moment,
    /// `D = Σ |pᵢ − gᵢ|` with [`Moment::SoftLabel`]; 0 otherwise.
    pub abs_diff: f64,
}

impl SoftStats {
    /// No voxel yet.
    pub const fn zero(moment: Moment) -> SoftStats {
        SoftStats {
            intersection: 0.0,
            pred: 0.0,
            target: 0.0,
            voxels: 0,
            moment,
            abs_diff: 0.0,
        }
    }

    /// The statistics of a pair of slices (`p` and `g` in `[0, 1]`, same length).
    ///
    /// Errors: [`DiceError::LengthMismatch`] for unequal lengths; [`DiceError::NonFinite`] or
    /// [`DiceError::OutOfRange`] naming the first bad element. An empty pair gives zero
    /// statistics (merging it is a no-op).
    pub fn of<T: Float>(p: &[T], g: &[T], moment: Moment) -> Result<SoftStats> {
        check_len(Operand::Target, p.len(), g.len())?;
        if moment == Moment::SoftLabel {
            let (s, n) = portable::soft_label_sums_where(p, |i| g[i], |_| true)
                .map_err(|b| bad_value(b, p, g, 0))?;
            return Ok(SoftStats::from_sums(s, n, moment));
        }
        let s = T::soft_sums(p, g, moment == Moment::Squared).map_err(|b| bad_value(b, p, g, 0))?;
        Ok(SoftStats::from_sums(s, p.len() as u64, moment))
    }

    /// Adds a further chunk of the same volume (see [`SoftStats::of`]).
    pub fn update<T: Float>(&mut self, p: &[T], g: &[T]) -> Result<()> {
        *self = self.merge(&SoftStats::of(p, g, self.moment)?)?;
        Ok(())
    }

    /// The statistics of the union of two disjoint sets of voxels: every field adds.
    ///
    /// Errors: [`DiceError::MomentMismatch`] when the two hold different sums (linear,
    /// squared or soft-label).
    pub fn merge(&self, other: &SoftStats) -> Result<SoftStats> {
        if self.moment != other.moment {
            return Err(DiceError::MomentMismatch);
        }
        Ok(self.add_unchecked(other))
    }

    /// [`SoftStats::merge`] of statistics known to hold the same sums.
    pub(crate) fn add_unchecked(&self, other: &SoftStats) -> SoftStats {
        let mut s = SoftStats {
            intersection: self.intersection + other.intersection,
            pred: self.pred + other.pred,
            target: self.target + other.target,
            // Counts from C or an all-reduce can be anything: saturate rather than wrap.
            voxels: self.voxels.saturating_add(other.voxels),
            moment: self.moment,
            abs_diff: self.abs_diff + other.abs_diff,
        };
        if s.moment == Moment::SoftLabel {
            s.intersection = soft_label_intersection(s.pred, s.target, s.abs_diff);
        }
        s
    }

    /// Soft false positives `FP = Σ p·(1 − g) = P − I` (linear moments).
    pub fn false_positive(&self) -> f64 {
        self.pred - self.intersection
    }

    /// Soft false negatives `FN = Σ (1 − p)·g = G − I` (linear moments).
    pub fn false_negative(&self) -> f64 {
        self.target - self.intersection
    }

    /// From kernel sums: `s.pg` holds `Σp·g`, or `Σ|p − g|` for [`Moment::SoftLabel`].
    pub(crate) fn from_sums(s: Sums, voxels: u64, moment: Moment) -> SoftStats {
        if moment == Moment::SoftLabel {
            return SoftStats {
                intersection: soft_label_intersection(s.p, s.g, s.pg),
                pred: s.p,
                target: s.g,
                voxels,
                moment,
                abs_diff: s.pg,
            };
        }
        SoftStats {
            intersection: s.pg,
            pred: s.p,
            target: s.g,
            voxels,
            moment,
            abs_diff: 0.0,
        }
    }

    /// Checks the fields are finite and non-negative, as statistics of valid inputs are (for
    /// statistics that come back from an all-reduce or from C).
    pub fn validate(&self) -> Result<()> {
        for v in [self.intersection, self.pred, self.target, self.abs_diff] {
            if !v.is_finite() || v < 0.0 {
                return Err(DiceError::InvalidParameter {
                    name: "statistics",
                    value: v,
                    reason: "sums must be finite and non-negative",
                });
            }
        }
        Ok(())
    }
}

/// The soft-label intersection `I = (P + G − D)/2`, clamped at 0 against rounding
/// (`|p − g| ≤ p + g` for values in `[0, 1]`, so `D ≤ P + G` exactly).
pub fn soft_label_intersection(pred: f64, target: f64, abs_diff: f64) -> f64 {
    (0.5 * (pred + target - abs_diff)).max(0.0)
}

/// Turns a kernel's "first bad element" into the error naming its operand, index and value.
pub(crate) fn bad_value<T: Float>(b: Bad, p: &[T], g: &[T], base: usize) -> DiceError {
    let (operand, i, v) = match b {
        Bad::Pred(i) => (Operand::Prediction, i, p[i]),
        Bad::Target(i) => (Operand::Target, i, g[i]),
    };
    value_error(operand, base + i, v)
}

/// The error for an invalid value `v` of `operand` at flat index `index`.
pub(crate) fn value_error<T: Float>(operand: Operand, index: usize, v: T) -> DiceError {
    if v.is_finite() {
        DiceError::OutOfRange {
            operand,
            index,
            value: v.to_f64(),
        }
    } else {
        DiceError::NonFinite { operand, index }
    }
}

/// The error of a sum over a prediction row against a label map: the first invalid prediction
/// (flat index `base + i`), or a label out of range (voxel `vox + i`; label targets are 0 or 1,
/// so this only names a label the range check let through).
fn label_sums_error<T: Float, L: crate::Label>(
    b: Bad,
    p: &[T],
    l: &[L],
    (base, vox): (usize, usize),
    classes: usize,
) -> DiceError {
    match b {
        Bad::Pred(i) => value_error(Operand::Prediction, base + i, p[i]),
        Bad::Target(i) => DiceError::LabelOutOfRange {
            operand: Operand::Labels,
            index: vox + i,
            label: l[i].to_i64(),
            classes,
        },
    }
}

/// Fills `out[n·C + c]` with the statistics of sample `n`, class `c`, for every pair.
///
/// `out` must have `N·C` entries. Every prediction value must be in `[0, 1]`, every dense
/// target value too, and every label in `0..C` or equal to the ignore label. Voxels masked
/// out or ignored are left out of every sum and of `voxels`.
///
/// Each row is summed in chunks of [`crate::CHUNK`] voxels whose sums are added in order, the
/// same with or without threads (see [`SoftLoss::executor`](crate::SoftLoss::executor)).
pub fn accumulate<T: Float>(
    input: &SoftInput<'_, T>,
    moment: Moment,
    out: &mut [SoftStats],
) -> Result<()> {
    accumulate_in(input, moment, out, None)
}

/// [`accumulate`], its chunks run by `exec` when there is one.
pub(crate) fn accumulate_in<T: Float>(
    input: &SoftInput<'_, T>,
    moment: Moment,
    out: &mut [SoftStats],
    exec: Exec<'_>,
) -> Result<()> {
    let shape = input.shape();
    let pairs = shape.pairs()?;
    check_len(Operand::Output, pairs, out.len())?;
    let (c_n, s_n) = (shape.channels, shape.spatial);
    if let Target::Labels {
        labels,
        ignore_index,
    } = input.target()
    {
        with_labels!(labels, l => check_labels_in(l, c_n, ignore_index, exec))?;
    }
    let per_row = drive::chunks(s_n).max(1);
    let chunk = |pair: usize, k: usize| chunk_sums(input, moment, pair, k);
    let add = |a: (Sums, u64), b: (Sums, u64)| (a.0.add(b.0), a.1 + b.1);
    let zero = (Sums::default(), 0u64);
    #[cfg(feature = "std")]
    if let Some(e) = crate::parallel::pick(exec, pairs.saturating_mul(s_n)) {
        // Every chunk of every row is a task; each row's chunk sums are added in order here.
        let sums = crate::parallel::map(e, pairs * per_row, |t| chunk(t / per_row, t % per_row));
        for (o, row) in out.iter_mut().zip(sums.chunks(per_row)) {
            let (s, count) = row.iter().try_fold(zero, |acc, r| r.map(|r| add(acc, r)))?;
            *o = SoftStats::from_sums(s, count, moment);
        }
        return Ok(());
    }
    let _ = exec;
    for (pair, o) in out.iter_mut().enumerate() {
        let (s, count) =
            (0..per_row).try_fold(zero, |acc, k| chunk(pair, k).map(|r| add(acc, r)))?;
        *o = SoftStats::from_sums(s, count, moment);
    }
    Ok(())
}

/// The sums of chunk `k` of pair `pair`'s row: one task of [`accumulate`].
fn chunk_sums<T: Float>(
    input: &SoftInput<'_, T>,
    moment: Moment,
    pair: usize,
    k: usize,
) -> Result<(Sums, u64)> {
    let shape = input.shape();
    let (c_n, s_n) = (shape.channels, shape.spatial);
    let squared = moment == Moment::Squared;
    let soft = moment == Moment::SoftLabel;
    let r = drive::chunk_range(k, s_n);
    let len = r.len();
    let (n, c) = (pair / c_n, pair % c_n);
    let base = pair * s_n + r.start;
    let p = &input.pred()[base..base + len];
    let vox = n * s_n + r.start;
    let mask = input.mask().map(|m| &m[vox..vox + len]);
    Ok(match (input.target(), mask) {
        (Target::Dense(g), m) if soft => {
            let g = &g[base..base + len];
            portable::soft_label_sums_where(p, |i| g[i], |i| m.is_none_or(|m| m[i] != 0))
                .map_err(|b| bad_value(b, p, g, base))?
        }
        (Target::Dense(g), None) => {
            let g = &g[base..base + len];
            let s = T::soft_sums(p, g, squared).map_err(|b| bad_value(b, p, g, base))?;
            (s, len as u64)
        }
        (Target::Dense(g), Some(m)) => {
            let g = &g[base..base + len];
            portable::soft_sums_where(p, squared, |i| g[i], |i| m[i] != 0)
                .map_err(|b| bad_value(b, p, g, base))?
        }
        (
            Target::Labels {
                labels,
                ignore_index,
            },
            m,
        ) if m.is_none() && !soft => with_labels!(labels, l => {
            let l = &l[vox..vox + len];
            T::label_sums(p, l, c as i64, ignore_index, squared)
                .map_err(|b| label_sums_error(b, p, l, (base, vox), c_n))?
        }),
        (
            Target::Labels {
                labels,
                ignore_index,
            },
            m,
        ) => with_labels!(labels, l => {
            let l = &l[vox..vox + len];
            let class = c as i64;
            let g = |i: usize| if l[i].to_i64() == class { T::ONE } else { T::ZERO };
            let keep = |i: usize| Some(l[i].to_i64()) != ignore_index && m.is_none_or(|m| m[i] != 0);
            if soft {
                portable::soft_label_sums_where(p, g, keep)
            } else {
                portable::soft_sums_where(p, squared, g, keep)
            }
            .map_err(|b| label_sums_error(b, p, l, (base, vox), c_n))?
        }),
    })
}

/// [`check_labels`] over chunks of the label map, by `exec` when there is one (the first bad
/// voxel in index order is named either way).
fn check_labels_in<L: crate::Label>(
    labels: &[L],
    classes: usize,
    ignore: Option<i64>,
    exec: Exec<'_>,
) -> Result<()> {
    let n = labels.len();
    drive::fold(
        exec,
        n,
        drive::chunks(n),
        (),
        |_, _| (),
        |k| {
            let r = drive::chunk_range(k, n);
            check_labels(&labels[r.clone()], classes, ignore).map_err(|e| e.shifted(r.start))
        },
    )
}

//! Hard metrics for evaluation: exact `u64` confusion counts, the scores computed from them,
//! an explicit policy for empty masks, and means that say how many values were defined.
//!
//! A reported segmentation score should be computed here: thresholded or label masks, counts
//! exact at any size (a 512³ volume has 2²⁷ voxels, past the 2²⁴ where `f32` counts stop being
//! exact), no smoothing, and an empty policy chosen on purpose rather than inherited.
//!
//! ## Empty masks
//! Two cases have no natural value, and each gets an [`EmptyValue`] in [`EmptyPolicy`]:
//! * *reference empty, prediction not* (`TP + FN = 0 < FP`): Dice is `0` by its formula, recall
//!   is `0/0`; precision `0/FP = 0` is defined and ignores this policy. MONAI's `ignore_empty = true` makes it NaN, which silently forgives the false
//!   positives; this crate's default scores it `Zero`.
//! * *both empty* (`TP + FP + FN = 0`): every overlap score is `0/0`. The default is `Skip`:
//!   no value, left out of means, and counted as undefined.
//!
//! | tool | reference empty | both empty | preset |
//! | --- | --- | --- | --- |
//! | this crate (default) | 0 | skip | [`EmptyPolicy::DEFAULT`] |
//! | MONAI `DiceMetric(ignore_empty=True)` | NaN | NaN | [`EmptyPolicy::monai`]`(true)` |
//! | MONAI `DiceMetric(ignore_empty=False)` | 0 | 1 | [`EmptyPolicy::monai`]`(false)` |
//! | nnU-Net evaluation | 0 | NaN | [`EmptyPolicy::NNUNET`] |
//! | torchmetrics `DiceScore`, DeepMind surface-distance | 0 | NaN | [`EmptyPolicy::NNUNET`] |
//! | medpy 0.5.2 `dc` (its code means 1, but numpy's division gives NaN) | 0 | NaN | [`EmptyPolicy::NNUNET`] |
//! | MetricsReloaded | 0 | 1 | [`EmptyPolicy::METRICS_RELOADED`] |
//!
//! (The MONAI, nnU-Net, torchmetrics and medpy rows are checked against those libraries' own
//! output in `tests/golden.rs`.)
//!
//! Means ([`mean`], [`class_means`]) leave out skipped values *and* NaN (as `nanmean` does) and
//! report how many values were defined, so "0.91 over 37 of 40 cases" is always visible.

pub use crate::counts::Confusion;
use crate::counts::Counts;
use crate::error::{invalid, DiceError, Operand, Result};
use crate::kernels::{self, portable};
use crate::layout::{check_len, Shape};
use crate::stats::{bad_value, value_error};
use crate::{Float, Label};

/// What an undefined or degenerate score becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EmptyValue {
    /// `NaN` (left out of means, like `nanmean`).
    Nan,
    /// `1`: a perfect score.
    One,
    /// `0`: a failed score.
    Zero,
    /// No value at all (`None`): left out of means and counted as undefined.
    Skip,
}

impl EmptyValue {
    /// The value as a number (`NaN` for `Skip`, which callers handle before).
    pub fn value(self) -> f64 {
        match self {
            EmptyValue::Nan | EmptyValue::Skip => f64::NAN,
            EmptyValue::One => 1.0,
            EmptyValue::Zero => 0.0,
        }
    }

    /// The value as an option (`None` for `Skip`).
    pub fn get(self) -> Option<f64> {
        match self {
            EmptyValue::Skip => None,
            e => Some(e.value()),
        }
    }
}

/// The values of the two empty cases (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EmptyPolicy {
    /// Reference empty, prediction not.
    pub reference_empty: EmptyValue,
    /// Reference and prediction both empty.
    pub both_empty: EmptyValue,
}

impl Default for EmptyPolicy {
    fn default() -> Self {
        EmptyPolicy::DEFAULT
    }
}

impl EmptyPolicy {
    /// This crate's default: false positives on an empty reference score 0; both empty is
    /// skipped.
    pub const DEFAULT: EmptyPolicy = EmptyPolicy {
        reference_empty: EmptyValue::Zero,
        both_empty: EmptyValue::Skip,
    };
    /// nnU-Net's evaluation (NaN only when `TP + FP + FN = 0`), torchmetrics, surface-distance.
    pub const NNUNET: EmptyPolicy = EmptyPolicy {
        reference_empty: EmptyValue::Zero,
        both_empty: EmptyValue::Nan,
    };
    /// MetricsReloaded (both empty is perfect).
    pub const METRICS_RELOADED: EmptyPolicy = EmptyPolicy {
        reference_empty: EmptyValue::Zero,
        both_empty: EmptyValue::One,
    };

    /// MONAI's `DiceMetric(ignore_empty=…)`.
    pub const fn monai(ignore_empty: bool) -> EmptyPolicy {
        if ignore_empty {
            EmptyPolicy {
                reference_empty: EmptyValue::Nan,
                both_empty: EmptyValue::Nan,
            }
        } else {
            EmptyPolicy {
                reference_empty: EmptyValue::Zero,
                both_empty: EmptyValue::One,
            }
        }
    }

    /// Both cases take the same value.
    pub const fn uniform(value: EmptyValue) -> EmptyPolicy {
        EmptyPolicy {
            reference_empty: value,
            both_empty: value,
        }
    }
}

/// A metric computed from confusion counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// [`Confusion::dice`].
    Dice,
    /// [`Confusion::iou`].
    Iou,
    /// [`Confusion::precision`].
    Precision,
    /// [`Confusion::recall`].
    Recall,
    /// [`Confusion::specificity`].
    Specificity,
    /// [`Confusion::volume_similarity`].
    VolumeSimilarity,
}

impl Metric {
    /// Every metric, in display order.
    pub const ALL: [Metric; 6] = [
        Metric::Dice,
        Metric::Iou,
        Metric::Precision,
        Metric::Recall,
        Metric::Specificity,
        Metric::VolumeSimilarity,
    ];

    /// A short lowercase name (`"dice"`, `"iou"`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Metric::Dice => "dice",
            Metric::Iou => "iou",
            Metric::Precision => "precision",
            Metric::Recall => "recall",
            Metric::Specificity => "specificity",
            Metric::VolumeSimilarity => "volume_similarity",
        }
    }
}

/// Which empty case a set of counts is in.
enum Case {
    Normal,
    ReferenceEmpty,
    BothEmpty,
}

impl Confusion {
    fn case(&self) -> Case {
        match (self.reference(), self.prediction()) {
            (0, 0) => Case::BothEmpty,
            (0, _) => Case::ReferenceEmpty,
            _ => Case::Normal,
        }
    }

    /// Applies the empty policy, else `f()`.
    fn with_policy(&self, policy: EmptyPolicy, f: impl FnOnce() -> f64) -> Option<f64> {
        match self.case() {
            Case::BothEmpty => policy.both_empty.get(),
            Case::ReferenceEmpty => policy.reference_empty.get(),
            Case::Normal => Some(f()),
        }
    }

    /// Dice `2TP / (2TP + FP + FN)`. Empty cases follow `policy`. (Sums in `f64`, so even counts
    /// that fail [`Confusion::validate`](crate::hard::Confusion::validate) give a value in `[0, 1]`.)
    pub fn dice(&self, policy: EmptyPolicy) -> Option<f64> {
        self.with_policy(policy, || {
            let tp = self.tp as f64;
            2.0 * tp / (2.0 * tp + self.fp as f64 + self.fn_ as f64)
        })
    }

    /// Jaccard index (IoU) `TP / (TP + FP + FN)`. Empty cases follow `policy`.
    pub fn iou(&self, policy: EmptyPolicy) -> Option<f64> {
        self.with_policy(policy, || {
            let tp = self.tp as f64;
            tp / (tp + self.fp as f64 + self.fn_ as f64)
        })
    }

    /// Precision (positive predictive value) `TP / (TP + FP)`. Defined whenever something was
    /// predicted, so an empty reference does not make it undefined: `FP > 0 = TP` scores `0`
    /// whatever `policy.reference_empty` says (the policy is for the metrics that divide by the
    /// reference). Both empty follows `policy.both_empty`; an empty prediction with a
    /// non-empty reference scores 0 (nothing correct was found).
    pub fn precision(&self, policy: EmptyPolicy) -> Option<f64> {
        match self.case() {
            Case::BothEmpty => policy.both_empty.get(),
            _ => {
                let d = self.tp as f64 + self.fp as f64;
                Some(if d == 0.0 { 0.0 } else { self.tp as f64 / d })
            }
        }
    }

    /// Recall (sensitivity, true positive rate) `TP / (TP + FN)`. Empty cases follow `policy`.
    pub fn recall(&self, policy: EmptyPolicy) -> Option<f64> {
        self.with_policy(policy, || {
            self.tp as f64 / (self.tp as f64 + self.fn_ as f64)
        })
    }

    /// Specificity (true negative rate) `TN / (TN + FP)`, the recall of the background. Its
    /// empty cases are those of the complement: no reference negatives (`TN + FP = 0`) takes
    /// `policy.reference_empty`, or `policy.both_empty` when the prediction has no negatives
    /// either.
    pub fn specificity(&self, policy: EmptyPolicy) -> Option<f64> {
        match (self.tn == 0 && self.fp == 0, self.tn == 0 && self.fn_ == 0) {
            (true, true) => policy.both_empty.get(),
            (true, false) => policy.reference_empty.get(),
            _ => Some(self.tn as f64 / (self.tn as f64 + self.fp as f64)),
        }
    }

    /// Volume similarity `1 − |FP − FN| / (2TP + FP + FN)` (EvaluateSegmentation's VS): 1 when
    /// the volumes agree, whatever the overlap. Empty cases follow `policy`.
    pub fn volume_similarity(&self, policy: EmptyPolicy) -> Option<f64> {
        self.with_policy(policy, || {
            1.0 - self.fp.abs_diff(self.fn_) as f64
                / (2.0 * self.tp as f64 + self.fp as f64 + self.fn_ as f64)
        })
    }

    /// Any [`Metric`].
    pub fn metric(&self, metric: Metric, policy: EmptyPolicy) -> Option<f64> {
        match metric {
            Metric::Dice => self.dice(policy),
            Metric::Iou => self.iou(policy),
            Metric::Precision => self.precision(policy),
            Metric::Recall => self.recall(policy),
            Metric::Specificity => self.specificity(policy),
            Metric::VolumeSimilarity => self.volume_similarity(policy),
        }
    }
}

/// Checks a threshold is a number in `[0, 1]`.
fn check_threshold(t: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&t) {
        return Err(invalid("threshold", t, "must be in [0, 1]"));
    }
    Ok(())
}

/// Confusion counts of `p ≥ threshold` against `g ≥ threshold` (MONAI's `AsDiscrete` rule),
/// for probabilities `p` and a reference `g` (one-hot, or probabilities too), both in `[0, 1]`.
///
/// Errors: lengths differ, an empty pair, NaN/∞ or a value outside `[0, 1]` (naming the first),
/// a threshold outside `[0, 1]`.
pub fn confusion_from_probabilities<T: Float>(
    pred: &[T],
    target: &[T],
    threshold: f64,
) -> Result<Confusion> {
    check_threshold(threshold)?;
    check_len(Operand::Target, pred.len(), target.len())?;
    if pred.is_empty() {
        return Err(DiceError::Empty {
            operand: Operand::Prediction,
        });
    }
    let c = T::threshold_counts(pred, target, T::from_f64(threshold))
        .map_err(|b| bad_value(b, pred, target, 0))?;
    Ok(Confusion::from_counts(c, pred.len() as u64))
}

mod sealed {
    pub trait SealedBinary {}
    impl SealedBinary for u8 {}
    impl SealedBinary for bool {}
}

/// A binary mask element: `u8` (non-zero = positive) or `bool`. Sealed.
pub trait Binary: sealed::SealedBinary + Copy {
    /// `true` for a positive voxel.
    fn positive(self) -> bool;
    /// The slice as bytes when the type is `u8`.
    #[doc(hidden)]
    fn as_bytes(_s: &[Self]) -> Option<&[u8]> {
        None
    }
}

impl Binary for u8 {
    #[inline(always)]
    fn positive(self) -> bool {
        self != 0
    }
    fn as_bytes(s: &[u8]) -> Option<&[u8]> {
        Some(s)
    }
}

impl Binary for bool {
    #[inline(always)]
    fn positive(self) -> bool {
        self
    }
}

/// Confusion counts of two binary masks (`u8`: non-zero is positive; or `bool`).
///
/// Errors: lengths differ, empty masks.
pub fn confusion_from_masks<M: Binary>(pred: &[M], target: &[M]) -> Result<Confusion> {
    check_len(Operand::Target, pred.len(), target.len())?;
    if pred.is_empty() {
        return Err(DiceError::Empty {
            operand: Operand::Prediction,
        });
    }
    let c = match (M::as_bytes(pred), M::as_bytes(target)) {
        (Some(p), Some(t)) => portable::mask_counts(p, t),
        _ => {
            let (mut both, mut np, mut ng) = (0u64, 0u64, 0u64);
            for (&a, &b) in pred.iter().zip(target) {
                let (x, y) = (a.positive() as u64, b.positive() as u64);
                both += x & y;
                np += x;
                ng += y;
            }
            Counts {
                both,
                pred: np,
                target: ng,
            }
        }
    };
    Ok(Confusion::from_counts(c, pred.len() as u64))
}

/// Per-label confusion counts of two label maps in one pass: `out[l]` receives the counts of
/// label `l` against everything else, for `l` in `0..out.len()`. Voxels where *either* map holds
/// `ignore_index` are left out of every count: the reference's is nnU-Net's ignore label, and a
/// prediction may use the same value for "unlabelled" (two annotators both marking 255), which
/// is no claim about any label; every other label of either map must be in `0..out.len()`.
/// Returns the number of voxels counted.
///
/// Errors: lengths differ, empty maps or `out`, a label out of range (naming the map, voxel
/// and label).
pub fn label_confusion<L: Label>(
    pred: &[L],
    target: &[L],
    ignore_index: Option<i64>,
    out: &mut [Confusion],
) -> Result<u64> {
    check_label_pair(pred, target, out)?;
    for o in out.iter_mut() {
        *o = Confusion::default();
    }
    let counted = kernels::label_counts(pred, target, ignore_index, out)
        .map_err(|b| label_pair_error(pred, target, out.len(), b))?;
    finish_label_counts(out, counted);
    Ok(counted)
}

/// [`label_confusion`] with the voxels counted in parts of 2²⁰ by `exec` (inputs of at least
/// its [`crate::parallel::Executor::min_parallel`] voxels): counts are exact integers, so the
/// result is the same for any thread count, and the first bad voxel is named either way.
#[cfg(feature = "std")]
pub fn label_confusion_in<L: Label>(
    pred: &[L],
    target: &[L],
    ignore_index: Option<i64>,
    out: &mut [Confusion],
    exec: &dyn crate::parallel::Executor,
) -> Result<u64> {
    const PART: usize = 1 << 20;
    check_label_pair(pred, target, out)?;
    let n = pred.len();
    if crate::parallel::pick(Some(exec), n).is_none() {
        return label_confusion(pred, target, ignore_index, out);
    }
    let classes = out.len();
    let parts = crate::parallel::map(exec, n.div_ceil(PART), |k| {
        let r = k * PART..((k + 1) * PART).min(n);
        let mut local = std::vec![Confusion::default(); classes];
        kernels::label_counts(
            &pred[r.clone()],
            &target[r.clone()],
            ignore_index,
            &mut local,
        )
        .map(|c| (c, local))
        .map_err(|b| b.shift(r.start))
    });
    for o in out.iter_mut() {
        *o = Confusion::default();
    }
    let mut counted = 0;
    for part in parts {
        let (c, local) = part.map_err(|b| label_pair_error(pred, target, classes, b))?;
        counted += c;
        for (o, l) in out.iter_mut().zip(local) {
            o.tp += l.tp;
            o.fp += l.fp;
            o.fn_ += l.fn_;
        }
    }
    finish_label_counts(out, counted);
    Ok(counted)
}

fn check_label_pair<L: Label>(pred: &[L], target: &[L], out: &[Confusion]) -> Result<()> {
    check_len(Operand::Labels, pred.len(), target.len())?;
    if pred.is_empty() {
        return Err(DiceError::Empty {
            operand: Operand::Labels,
        });
    }
    if out.is_empty() {
        return Err(DiceError::Empty {
            operand: Operand::Output,
        });
    }
    Ok(())
}

/// The error naming the map, voxel and label a count kernel stopped at.
fn label_pair_error<L: Label>(
    pred: &[L],
    target: &[L],
    classes: usize,
    b: kernels::Bad,
) -> DiceError {
    let (operand, i, l) = match b {
        kernels::Bad::Pred(i) => (Operand::Prediction, i, pred[i]),
        kernels::Bad::Target(i) => (Operand::Labels, i, target[i]),
    };
    DiceError::LabelOutOfRange {
        operand,
        index: i,
        label: l.to_i64(),
        classes,
    }
}

/// Every label's true negatives: the counted voxels in neither map's `l`.
fn finish_label_counts(out: &mut [Confusion], counted: u64) {
    for o in out.iter_mut() {
        o.tn = counted - o.tp - o.fp - o.fn_;
    }
}

/// Confusion counts per (sample, channel) of a batch of probabilities `[N, C, S]`, thresholded
/// at `threshold`, against a dense reference `[N, C, S]` thresholded alike, with an optional
/// voxel mask `[N, S]` (non-zero = counted). `out` has `N·C` entries.
pub fn batch_confusion_probabilities<T: Float>(
    shape: Shape,
    pred: &[T],
    target: &[T],
    threshold: f64,
    mask: Option<&[u8]>,
    out: &mut [Confusion],
) -> Result<()> {
    check_threshold(threshold)?;
    let len = shape.elements()?;
    check_len(Operand::Prediction, len, pred.len())?;
    check_len(Operand::Target, len, target.len())?;
    check_len(Operand::Output, shape.pairs()?, out.len())?;
    if let Some(m) = mask {
        check_len(Operand::Mask, shape.voxels()?, m.len())?;
    }
    let s_n = shape.spatial;
    let t = T::from_f64(threshold);
    for (pair, o) in out.iter_mut().enumerate() {
        let n = pair / shape.channels;
        let base = pair * s_n;
        let (p, g) = (&pred[base..base + s_n], &target[base..base + s_n]);
        *o = match mask {
            None => {
                let c = T::threshold_counts(p, g, t).map_err(|b| bad_value(b, p, g, base))?;
                Confusion::from_counts(c, s_n as u64)
            }
            Some(m) => {
                let m = &m[n * s_n..(n + 1) * s_n];
                let mut c = Confusion::default();
                for i in 0..s_n {
                    if !portable::unit(p[i]) {
                        return Err(value_error(Operand::Prediction, base + i, p[i]));
                    }
                    if !portable::unit(g[i]) {
                        return Err(value_error(Operand::Target, base + i, g[i]));
                    }
                    if m[i] == 0 {
                        continue;
                    }
                    match (p[i] >= t, g[i] >= t) {
                        (true, true) => c.tp += 1,
                        (true, false) => c.fp += 1,
                        (false, true) => c.fn_ += 1,
                        (false, false) => c.tn += 1,
                    }
                }
                c
            }
        };
    }
    Ok(())
}

/// Confusion counts per (sample, label) of a batch of label maps `[N, S]` with `C = shape.channels`
/// labels: `out[n·C + l]` for sample `n`, label `l`. Voxels whose reference is `ignore_index`
/// are left out.
pub fn batch_label_confusion<L: Label>(
    shape: Shape,
    pred: &[L],
    target: &[L],
    ignore_index: Option<i64>,
    out: &mut [Confusion],
) -> Result<()> {
    let voxels = shape.voxels()?;
    check_len(Operand::Prediction, voxels, pred.len())?;
    check_len(Operand::Labels, voxels, target.len())?;
    check_len(Operand::Output, shape.pairs()?, out.len())?;
    // Both maps' labels are checked by `label_confusion`'s counting pass itself.
    let (s_n, c_n) = (shape.spatial, shape.channels);
    for n in 0..shape.batch {
        let r = n * s_n..(n + 1) * s_n;
        label_confusion(
            &pred[r.clone()],
            &target[r],
            ignore_index,
            &mut out[n * c_n..(n + 1) * c_n],
        )
        .map_err(|e| e.shifted(n * s_n))?;
    }
    Ok(())
}

/// A mean over values some of which may be undefined.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanValue {
    /// The mean of the defined values; `None` when there is none.
    pub mean: Option<f64>,
    /// Values that were defined (not skipped, not NaN).
    pub defined: usize,
    /// Values offered.
    pub total: usize,
}

/// The mean of the defined values: `None` and NaN are left out (as `nanmean`) and counted.
pub fn mean(values: impl IntoIterator<Item = Option<f64>>) -> MeanValue {
    let (mut sum, mut defined, mut total) = (0.0, 0usize, 0usize);
    for v in values {
        total += 1;
        if let Some(v) = v.filter(|v| !v.is_nan()) {
            sum += v;
            defined += 1;
        }
    }
    MeanValue {
        mean: (defined > 0).then(|| sum / defined as f64),
        defined,
        total,
    }
}

/// Per-class means over the samples of `confusions` (`N·C`, sample-major) into `out`
/// (`C` entries), and the mean over every (sample, class) pair of the classes kept (MONAI's
/// `reduction="mean"`). With `include_background = false`, class 0 gets a mean of no values
/// and is left out of the overall mean.
pub fn class_means(
    shape: Shape,
    confusions: &[Confusion],
    metric: Metric,
    policy: EmptyPolicy,
    include_background: bool,
    out: &mut [MeanValue],
) -> Result<MeanValue> {
    check_len(Operand::Statistics, shape.pairs()?, confusions.len())?;
    check_len(Operand::Output, shape.channels, out.len())?;
    let c_n = shape.channels;
    let first = usize::from(!include_background);
    for (c, o) in out.iter_mut().enumerate() {
        *o = if c < first {
            MeanValue {
                mean: None,
                defined: 0,
                total: 0,
            }
        } else {
            mean((0..shape.batch).map(|n| confusions[n * c_n + c].metric(metric, policy)))
        };
    }
    Ok(mean(
        (0..shape.batch * c_n)
            .filter(|p| p % c_n >= first)
            .map(|p| confusions[p].metric(metric, policy)),
    ))
}

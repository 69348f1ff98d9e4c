//! Evaluation of one prediction against one reference: the checks that make the comparison
//! meaningful, then dice-core's exact counts (and soft Dice on request). No math of its own.

use dice_core::hard::{self, Confusion, EmptyPolicy, Metric};
use dice_core::{score, Label, Moment, SoftStats};

use crate::volume::{Data, Volume};

/// What to evaluate and how empty cases score.
#[derive(Clone, Debug)]
pub struct Options {
    /// Labels to report (default: every label present in either file).
    pub labels: Option<Vec<i64>>,
    /// Report label 0 too.
    pub include_background: bool,
    /// Reference label whose voxels are left out of every count.
    pub ignore_label: Option<i64>,
    /// Values of the empty cases.
    pub policy: EmptyPolicy,
    /// Threshold for probability maps (positive iff `p ≥ threshold`).
    pub threshold: f64,
    /// Also compute the soft Dice of a probability map.
    pub soft: Option<(f64, f64)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            labels: None,
            include_background: false,
            ignore_label: None,
            policy: EmptyPolicy::DEFAULT,
            threshold: 0.5,
            soft: None,
        }
    }
}

/// One label's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The label (1 for a probability map).
    pub label: i64,
    /// Exact counts.
    pub counts: Confusion,
    /// Dice, IoU, precision, recall, volume similarity (None where the policy skips).
    pub metrics: [Option<f64>; 5],
    /// Soft Dice (with `--soft`).
    pub soft_dice: Option<f64>,
}

/// The metrics reported, in column order.
pub const METRICS: [Metric; 5] = [
    Metric::Dice,
    Metric::Iou,
    Metric::Precision,
    Metric::Recall,
    Metric::VolumeSimilarity,
];

/// Squeezed shape (sizes of 1 dropped) with the matching spacing.
fn squeeze(v: &Volume) -> (Vec<usize>, Option<Vec<f64>>) {
    let keep: Vec<usize> = (0..v.shape.len()).filter(|&i| v.shape[i] > 1).collect();
    let shape = keep.iter().map(|&i| v.shape[i]).collect();
    let spacing = v
        .spacing
        .as_ref()
        .map(|s| keep.iter().filter_map(|&i| s.get(i).copied()).collect());
    (shape, spacing)
}

/// Checks that two files describe the same grid: same shape (sizes of 1 aside), same axis
/// order, same voxel spacing where both store one. Errors name both files.
pub fn check_pair(
    pred: &Volume,
    gt: &Volume,
    pred_name: &str,
    gt_name: &str,
) -> Result<(), String> {
    let (ps, pp) = squeeze(pred);
    let (gs, gp) = squeeze(gt);
    if ps != gs {
        return Err(format!(
            "shapes differ: {pred_name} is {:?}, {gt_name} is {:?}",
            pred.shape, gt.shape
        ));
    }
    if pred.fastest_first != gt.fastest_first && ps.len() > 1 {
        return Err(format!(
            "axis orders differ: {pred_name} and {gt_name} come from formats that store axes in opposite orders (NIfTI vs NumPy/PNG/TIFF)"
        ));
    }
    if let (Some(a), Some(b)) = (&pp, &gp) {
        if a.iter()
            .zip(b)
            .any(|(x, y)| (x - y).abs() > 1e-4 * x.abs().max(y.abs()).max(1e-6))
        {
            return Err(format!(
                "voxel spacing differs: {pred_name} has {a:?}, {gt_name} has {b:?}"
            ));
        }
    }
    if pred.data.len() != pred.voxels() || gt.data.len() != gt.voxels() {
        return Err(format!(
            "{pred_name} or {gt_name} holds fewer voxels than its shape"
        ));
    }
    Ok(())
}

/// Evaluates `pred` against `gt` (already checked with [`check_pair`]).
pub fn evaluate(pred: &Volume, gt: &Volume, opts: &Options) -> Result<Vec<Row>, String> {
    if !(0.0..=1.0).contains(&opts.threshold) {
        return Err(format!("--threshold {} is not in [0, 1]", opts.threshold));
    }
    match (pred.data.is_float(), gt.data.is_float()) {
        (false, false) => {
            if opts.soft.is_some() {
                return Err("--soft needs a probability map (a floating-point prediction)".into());
            }
            labels(&pred.data, &gt.data, opts)
        }
        (true, _) => probabilities(&pred.data, &gt.data, opts),
        (false, true) => Err(
            "the prediction is a label map but the reference holds floating-point values".into(),
        ),
    }
}

fn row(label: i64, counts: Confusion, policy: EmptyPolicy, soft_dice: Option<f64>) -> Row {
    Row {
        label,
        counts,
        metrics: METRICS.map(|m| counts.metric(m, policy)),
        soft_dice,
    }
}

/// Label maps: every label's counts in one pass over both maps.
fn labels(pred: &Data, gt: &Data, opts: &Options) -> Result<Vec<Row>, String> {
    let ignore = opts.ignore_label;
    let max = max_label(pred, ignore)?.max(max_label(gt, ignore)?);
    let classes = (max + 1)
        .max(
            opts.labels
                .as_ref()
                .map_or(1, |l| l.iter().copied().max().unwrap_or(0) + 1),
        )
        .max(1);
    if classes > 1 << 20 {
        return Err(format!(
            "label {max} is too large: labels are counted in a table of max + 1 entries"
        ));
    }
    let mut counts = vec![Confusion::default(); classes as usize];
    match (pred, gt) {
        (Data::U8(p), Data::U8(g)) => count(p, g, ignore, &mut counts)?,
        (Data::U16(p), Data::U16(g)) => count(p, g, ignore, &mut counts)?,
        (Data::U32(p), Data::U32(g)) => count(p, g, ignore, &mut counts)?,
        (Data::I32(p), Data::I32(g)) => count(p, g, ignore, &mut counts)?,
        (Data::I64(p), Data::I64(g)) => count(p, g, ignore, &mut counts)?,
        (p, g) => {
            // Different integer types: widen both to i64.
            let p = widen(p);
            let g = widen(g);
            count(&p, &g, ignore, &mut counts)?
        }
    }
    let chosen: Vec<i64> = match &opts.labels {
        Some(l) => l.clone(),
        None => (0..classes)
            .filter(|&l| (l != 0 || opts.include_background) && Some(l) != ignore)
            .filter(|&l| counts[l as usize].reference() + counts[l as usize].prediction() > 0)
            .collect(),
    };
    Ok(chosen
        .into_iter()
        .map(|l| row(l, counts[l as usize], opts.policy, None))
        .collect())
}

fn count<L: Label>(
    p: &[L],
    g: &[L],
    ignore: Option<i64>,
    out: &mut [Confusion],
) -> Result<(), String> {
    hard::label_confusion(p, g, ignore, out)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn widen(d: &Data) -> Vec<i64> {
    (0..d.len()).map(|i| d.get_f64(i) as i64).collect()
}

/// The largest label (the ignore label aside); negative labels are errors.
fn max_label(d: &Data, ignore: Option<i64>) -> Result<i64, String> {
    fn max_of<L: Label>(v: &[L], ignore: Option<i64>) -> Result<i64, String> {
        // Branch-free (vectorised) over the voxels; the slow scan only runs to name a
        // negative label.
        let (min, max) = v.iter().fold((0i64, 0i64), |(lo, hi), &x| {
            let x = x.to_i64();
            let x = if Some(x) == ignore { 0 } else { x };
            (lo.min(x), hi.max(x))
        });
        if min < 0 {
            let (i, x) = v
                .iter()
                .map(|x| x.to_i64())
                .enumerate()
                .find(|&(_, x)| x < 0 && Some(x) != ignore)
                .unwrap_or((0, min));
            return Err(format!("negative label {x} at voxel {i}"));
        }
        Ok(max)
    }
    /// Unsigned labels cannot be negative: the max in the native type (vectorised bytes).
    fn max_unsigned<T: Copy + Ord + Into<i64>>(
        v: &[T],
        ignore: Option<i64>,
    ) -> Result<i64, String> {
        Ok(v.iter()
            .copied()
            .filter(|&x| Some(x.into()) != ignore)
            .max()
            .map_or(0, Into::into))
    }
    match d {
        Data::U8(v) => max_unsigned(v, ignore),
        Data::U16(v) => max_unsigned(v, ignore),
        Data::U32(v) => max_unsigned(v, ignore),
        Data::I32(v) => max_of(v, ignore),
        Data::I64(v) => max_of(v, ignore),
        Data::F32(_) | Data::F64(_) => Err("a label map must hold integers".into()),
    }
}

/// A probability map against a binary reference (float mask thresholded alike, or non-zero
/// labels): one row, label 1.
fn probabilities(pred: &Data, gt: &Data, opts: &Options) -> Result<Vec<Row>, String> {
    let p: std::borrow::Cow<[f64]> = match pred {
        Data::F64(v) => v.into(),
        Data::F32(v) => v.iter().map(|&x| x as f64).collect::<Vec<_>>().into(),
        d => {
            return Err(format!(
                "a probability map must hold floats, not {}",
                d.type_name()
            ))
        }
    };
    let g: Vec<f64> = match gt {
        Data::F64(v) => v.clone(),
        Data::F32(v) => v.iter().map(|&x| x as f64).collect(),
        d => (0..d.len())
            .map(|i| f64::from(u8::from(d.get_f64(i) != 0.0)))
            .collect(),
    };
    let counts =
        hard::confusion_from_probabilities(&p, &g, opts.threshold).map_err(|e| e.to_string())?;
    let soft = match opts.soft {
        Some((nr, dr)) => {
            if !(nr.is_finite() && nr >= 0.0 && dr.is_finite() && dr >= 0.0) {
                return Err("--smooth-nr and --smooth-dr must be finite and >= 0".into());
            }
            let s = SoftStats::of(&p, &g, Moment::Linear).map_err(|e| e.to_string())?;
            score::dice(s.intersection, s.pred, s.target, nr, dr)
        }
        None => None,
    };
    Ok(vec![row(1, counts, opts.policy, soft)])
}

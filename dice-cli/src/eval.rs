//! Evaluation of one prediction against one reference: read both, check they describe the
//! same grid (reorienting the prediction when it is the same grid stored another way), decide
//! what their values mean, then dice-core's exact counts (and soft Dice on request). The
//! counting and the metrics are dice-core's; this module chooses voxels and labels.

use crate::names::ShowPath;
use std::collections::BTreeSet;
use std::path::Path;

use dice_core::hard::{self, Confusion, EmptyPolicy, Metric};
use dice_core::{score, Label, Moment, SoftStats};

use crate::geometry::{self, AxisMap};
use crate::lesionwise::{self, LesionOptions, Region};
use crate::semantics::{self, Kind, Probs, Values};
use crate::surfaces::{self, SurfaceOptions};
use crate::volume::{Data, Volume};

/// What to evaluate and how.
#[derive(Clone, Debug)]
pub struct Options {
    /// Labels to report (default: every label present in either file).
    pub labels: Option<Vec<i64>>,
    /// Report label 0 too.
    pub include_background: bool,
    /// Label whose voxels (in either file) are left out of every count.
    pub ignore_label: Option<i64>,
    /// Values of the empty cases.
    pub policy: EmptyPolicy,
    /// Threshold for probability maps (positive iff `p ≥ threshold`).
    pub threshold: f64,
    /// Also compute the soft Dice `(2Σpg + s_nr)/(Σp + Σg + s_dr)` of a probability map.
    pub soft: Option<(f64, f64)>,
    /// How to read the prediction's and the reference's values.
    pub pred_as: Kind,
    /// See `pred_as`.
    pub ref_as: Kind,
    /// A label map with more distinct labels than this is refused.
    pub max_labels: usize,
    /// Largest distance (mm) between the grids' corner voxel centres.
    pub geometry_tolerance: f64,
    /// Compare arrays as stored, whatever their geometry.
    pub ignore_geometry: bool,
    /// Decode the two files of a pair on two threads (single pairs; directory runs already
    /// use their threads across pairs).
    pub concurrent_decode: bool,
    /// The metrics to report, in column order.
    pub metrics: Vec<MetricName>,
    /// Options of the surface metrics.
    pub surface: SurfaceOptions,
    /// Regions (unions of labels) reported after the labels.
    pub regions: Vec<Region>,
    /// Lesion-wise metrics (`--lesion-wise`).
    pub lesion: Option<LesionOptions>,
    /// How far a detached header may reach for its data (`--allow-data-outside`).
    pub access: crate::formats::Access,
    /// Threads for one pair: its labels' counts (large volumes, in parts) and the lesion-wise
    /// metrics of its labels and regions (1 in directory runs, which use their threads across
    /// pairs). Results do not depend on it.
    pub lesion_threads: usize,
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
            pred_as: Kind::Auto,
            ref_as: Kind::Auto,
            max_labels: 1000,
            geometry_tolerance: geometry::DEFAULT_TOLERANCE_MM,
            ignore_geometry: false,
            concurrent_decode: false,
            metrics: MetricName::OVERLAP.to_vec(),
            surface: SurfaceOptions::default(),
            regions: Vec::new(),
            lesion: None,
            access: crate::formats::Access::default(),
            lesion_threads: 1,
        }
    }
}

/// A metric `dice eval` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricName {
    /// Dice `2TP / (2TP + FP + FN)`.
    Dice,
    /// IoU (Jaccard) `TP / (TP + FP + FN)`.
    Iou,
    /// Precision `TP / (TP + FP)`.
    Precision,
    /// Recall (sensitivity) `TP / (TP + FN)`.
    Recall,
    /// Volume similarity `1 − |FP − FN| / (2TP + FP + FN)`.
    Vs,
    /// Hausdorff distance (mm).
    Hd,
    /// Percentile Hausdorff distance (mm; `--percentile`, 95 by default).
    Hd95,
    /// Average symmetric surface distance: mean of the pooled distances (mm; medpy, MONAI).
    Assd,
    /// Mean average surface distance: mean of the two directed means (mm; MetricsReloaded).
    Masd,
    /// Normalized surface Dice at `--tolerance` mm.
    Nsd,
}

impl MetricName {
    /// Today's default: the overlap metrics.
    pub const OVERLAP: [MetricName; 5] = [
        MetricName::Dice,
        MetricName::Iou,
        MetricName::Precision,
        MetricName::Recall,
        MetricName::Vs,
    ];
    /// Every metric (`--metrics all`).
    pub const ALL: [MetricName; 10] = [
        MetricName::Dice,
        MetricName::Iou,
        MetricName::Precision,
        MetricName::Recall,
        MetricName::Vs,
        MetricName::Hd,
        MetricName::Hd95,
        MetricName::Assd,
        MetricName::Masd,
        MetricName::Nsd,
    ];

    /// Whether it is measured on the surfaces.
    pub fn is_surface(self) -> bool {
        !MetricName::OVERLAP.contains(&self)
    }

    /// The column (CSV) and key (JSON) name; the percentile Hausdorff is named by its
    /// percentile (`hd95`, `hd99`).
    pub fn column(self, percentile: f64) -> String {
        match self {
            MetricName::Dice => "dice".into(),
            MetricName::Iou => "iou".into(),
            MetricName::Precision => "precision".into(),
            MetricName::Recall => "recall".into(),
            MetricName::Vs => "volume_similarity".into(),
            MetricName::Hd => "hd".into(),
            MetricName::Hd95 => format!("hd{}", crate::geometry::num(percentile)),
            MetricName::Assd => "assd".into(),
            MetricName::Masd => "masd".into(),
            MetricName::Nsd => "nsd".into(),
        }
    }

    /// The overlap metric of dice-core it is, if any.
    fn overlap(self) -> Option<Metric> {
        Some(match self {
            MetricName::Dice => Metric::Dice,
            MetricName::Iou => Metric::Iou,
            MetricName::Precision => Metric::Precision,
            MetricName::Recall => Metric::Recall,
            MetricName::Vs => Metric::VolumeSimilarity,
            _ => return None,
        })
    }

    /// Its index among the surface values of [`crate::surfaces::LabelSurfaces::values`].
    fn surface_index(self) -> Option<usize> {
        Some(match self {
            MetricName::Hd => 0,
            MetricName::Hd95 => 1,
            MetricName::Assd => 2,
            MetricName::Masd => 3,
            MetricName::Nsd => 4,
            _ => return None,
        })
    }
}

/// The columns of a run's metrics: the metrics asked for, then the lesion-wise ones.
pub fn columns(opts: &Options) -> Vec<String> {
    let mut c: Vec<String> = opts
        .metrics
        .iter()
        .map(|m| m.column(opts.surface.percentile))
        .collect();
    if let Some(l) = &opts.lesion {
        c.extend(l.columns());
    }
    c
}

/// One label's (or region's) result.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The label (for a region, its first label).
    pub label: i64,
    /// The region's name, for a region's row.
    pub region: Option<String>,
    /// Millilitres per voxel, when the voxel size is known.
    pub voxel_ml: Option<f64>,
    /// Exact counts.
    pub counts: Confusion,
    /// The values of [`Options::metrics`], in order (`None` where the policy skips).
    pub values: Vec<Option<f64>>,
    /// Soft Dice (with `--soft`).
    pub soft_dice: Option<f64>,
}

/// The result of one pair: rows, and what the user should know about how they were made.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Outcome {
    /// One row per label.
    pub rows: Vec<Row>,
    /// Notes (reorientation, value interpretation, format details), each naming its file.
    pub notes: Vec<String>,
}

/// A pair ready to count: values on the reference's grid.
pub struct Pair {
    /// The prediction's values.
    pub pred: Values,
    /// The reference's values.
    pub gt: Values,
    /// Sizes (the reference's).
    pub dims: Vec<usize>,
    /// The reference's volume (no data), for voxel positions.
    pub gt_vol: Volume,
    /// Notes so far.
    pub notes: Vec<String>,
}

fn squeeze(dims: &[usize]) -> Vec<usize> {
    dims.iter().copied().filter(|&d| d > 1).collect()
}

/// Reads both files and makes them comparable: the grid check (and reorientation), then the
/// value interpretation. Errors name the files.
pub fn prepare(pred_path: &Path, gt_path: &Path, opts: &Options) -> Result<Pair, String> {
    let (pred, gt) = decode_pair(pred_path, gt_path, opts.concurrent_decode, opts.access);
    let (pred, gt) = (pred?, gt?);
    align_and_interpret(
        pred,
        gt,
        &pred_path.shown().to_string(),
        &gt_path.shown().to_string(),
        opts,
    )
}

/// Decodes both files of a pair under the data-file policy `access`, on two threads when
/// `concurrent` (the prediction's on a helper thread; if the system will not start one, both
/// on this one).
pub fn decode_pair(
    pred_path: &Path,
    gt_path: &Path,
    concurrent: bool,
    access: crate::formats::Access,
) -> (Result<Volume, String>, Result<Volume, String>) {
    let read = |p: &Path| crate::formats::read_with(p, access);
    if !concurrent {
        return (read(pred_path), read(gt_path));
    }
    std::thread::scope(|s| {
        let helper = std::thread::Builder::new().spawn_scoped(s, || read(pred_path));
        let gt = read(gt_path);
        let pred = match helper {
            Ok(h) => h
                .join()
                .unwrap_or_else(|_| Err(format!("{}: the decoder failed", pred_path.shown()))),
            Err(_) => read(pred_path),
        };
        (pred, gt)
    })
}

/// [`prepare`] on decoded volumes.
pub fn align_and_interpret(
    mut pred: Volume,
    mut gt: Volume,
    pn: &str,
    gn: &str,
    opts: &Options,
) -> Result<Pair, String> {
    let mut notes: Vec<String> = Vec::new();
    notes.extend(pred.notes.drain(..).map(|n| format!("{pn}: {n}")));
    notes.extend(gt.notes.iter().map(|n| format!("{gn}: {n}")));
    // A geometry that cannot measure (sheared, not a rotation, a voxel size out of range)
    // is an error unless the arrays are compared as stored.
    for (v, name) in [(&mut pred, pn), (&mut gt, gn)] {
        if let Some(problem) = v.geometry_error.take() {
            if !opts.ignore_geometry {
                return Err(format!(
                    "{name}: {problem}\n  (--ignore-geometry compares the arrays as stored, \
                     with --spacing for distances)"
                ));
            }
            notes.push(format!(
                "{name}: geometry not used (--ignore-geometry): {problem}"
            ));
        }
    }
    // Axes past the third (time, channels) must agree exactly; their spacing does not matter.
    let extra = |d: &[usize]| squeeze(d.get(3..).unwrap_or(&[]));
    if extra(&pred.dims) != extra(&gt.dims) {
        return Err(format!(
            "sizes differ: {pn} is {}, {gn} is {}",
            pred.shape_text(),
            gt.shape_text()
        ));
    }
    match (&pred.geometry, &gt.geometry, opts.ignore_geometry) {
        (Some(pg), Some(gg), false) => {
            let (pd, gd) = (geometry::spatial3(&pred.dims), geometry::spatial3(&gt.dims));
            let map = geometry::axis_map(pg, pd, gg, gd, opts.geometry_tolerance)
                .map_err(|e| format!("{pn} and {gn} are not on the same grid: {e}\n  (--ignore-geometry compares the arrays as stored)"))?;
            if !map.is_identity() {
                reorient(&mut pred, map)?;
                notes.push(format!(
                    "{pn} is stored in another axis order than {gn}: reoriented onto the \
                     reference's grid (exact, no resampling; {})",
                    map.text()
                ));
            }
        }
        (p, g, ignore) => {
            if squeeze(&pred.dims) != squeeze(&gt.dims) {
                return Err(format!(
                    "sizes differ: {pn} is {}, {gn} is {}{}",
                    pred.shape_text(),
                    gt.shape_text(),
                    channel_hint(&pred.dims, &gt.dims)
                ));
            }
            if ignore {
                notes.push(
                    "geometry not checked (--ignore-geometry): the arrays are compared as stored"
                        .into(),
                );
            } else if p.is_some() != g.is_some() {
                let without = if p.is_none() { pn } else { gn };
                notes.push(format!(
                    "{without} carries no geometry: the arrays are compared voxel by voxel as stored"
                ));
            }
        }
    }
    let want_probs = opts.soft.is_some();
    let dims = gt.dims.clone();
    let (p_values, mut p_vol) = semantics::interpret_volume(pred, opts.pred_as, want_probs)
        .map_err(|e| format!("{pn}: {e}"))?;
    notes.extend(p_vol.notes.drain(..).map(|n| format!("{pn}: {n}")));
    let (g_values, mut gt_vol) =
        semantics::interpret_volume(gt, opts.ref_as, false).map_err(|e| format!("{gn}: {e}"))?;
    for n in gt_vol.notes.drain(..) {
        let n = format!("{gn}: {n}");
        if !notes.contains(&n) {
            notes.push(n);
        }
    }
    Ok(Pair {
        pred: p_values,
        gt: g_values,
        dims,
        gt_vol,
        notes,
    })
}

/// A hint when the prediction has one axis more than the reference (one channel per class).
fn channel_hint(pred: &[usize], gt: &[usize]) -> String {
    let (p, g) = (squeeze(pred), squeeze(gt));
    let extra = (0..p.len()).find(|&k| {
        let mut q = p.clone();
        q.remove(k);
        q == g
    });
    match extra {
        Some(k) if p.len() == g.len() + 1 => format!(
            " (the prediction has an extra axis of size {}: one channel per class is not read \
             as classes; save the argmax as a label map, or one probability map per class)",
            p[k]
        ),
        _ => String::new(),
    }
}

fn reorient(pred: &mut Volume, map: AxisMap) -> Result<(), String> {
    let data = geometry::reorient(&pred.data, &pred.dims, map)?;
    pred.dims = geometry::reoriented_dims(&pred.dims, map);
    pred.data = data;
    Ok(())
}

/// Evaluates a prepared pair.
pub fn evaluate(pair: &Pair, opts: &Options, pn: &str, gn: &str) -> Result<Outcome, String> {
    if !(0.0..=1.0).contains(&opts.threshold) {
        return Err(format!("--threshold {} is not in [0, 1]", opts.threshold));
    }
    let rows = match (&pair.pred, &pair.gt) {
        (Values::Labels(p), Values::Labels(g)) => {
            if opts.soft.is_some() {
                return Err(format!(
                    "--soft needs a probability map, and {pn} holds labels (integers)"
                ));
            }
            labels(p, g, opts, pair, pn, gn)?
        }
        (Values::Probabilities(p), g) => probabilities(p, g, opts, pn, gn)?,
        (Values::Labels(_), Values::Probabilities(_)) => {
            return Err(format!(
                "{pn} is a label map but {gn} is a probability map: give the reference as labels \
                 (or --ref-as labels if its values are integers)"
            ))
        }
    };
    let mut rows = rows;
    let label_rows = rows.len();
    // The masks of each region row, kept for the lesion-wise step (built once per region).
    let mut region_masks: Vec<Option<(Vec<u8>, Vec<u8>)>> = Vec::new();
    if !opts.regions.is_empty() {
        if !matches!(
            (&pair.pred, &pair.gt),
            (Values::Labels(_), Values::Labels(_))
        ) {
            return Err(format!(
                "--region unites labels: {pn} and {gn} must both be label maps"
            ));
        }
        for region in &opts.regions {
            let (p, g) =
                lesionwise::masks(pair, &region.labels, opts.threshold, opts.ignore_label)?;
            let counts = hard::confusion_from_masks(&p, &g).map_err(|e| e.to_string())?;
            let mut r = row(region.labels[0], counts, opts, None);
            r.region = Some(region.name.clone());
            if opts.metrics.iter().any(|m| m.is_surface()) {
                let grid = surfaces::grid(pair, &opts.surface, pn, gn)?;
                let s = surfaces::compute_masks(&p, &g, grid, &opts.surface, &region.name)?;
                let v = s.values(&opts.surface, opts.policy.both_empty);
                for (slot, m) in r.values.iter_mut().zip(&opts.metrics) {
                    if let Some(k) = m.surface_index() {
                        *slot = v[k];
                    }
                }
            }
            rows.push(r);
            if opts.lesion.is_some() {
                region_masks.resize_with(rows.len() - 1, || None);
                region_masks.push(Some((p, g)));
            }
        }
    }
    if let Some(lesion) = &opts.lesion {
        let grid = surfaces::grid(pair, &opts.surface, pn, gn)?;
        let keys: Vec<Vec<i64>> = rows
            .iter()
            .map(|r| match &r.region {
                Some(name) => opts
                    .regions
                    .iter()
                    .find(|x| &x.name == name)
                    .map(|x| x.labels.clone())
                    .unwrap_or_default(),
                None => vec![r.label],
            })
            .collect();
        // Each label row's box in either map, from one pass over each map: a label's
        // lesion-wise work stays inside its box.
        let label_keys: Vec<i64> = rows[..label_rows].iter().map(|r| r.label).collect();
        let boxes = surfaces::label_boxes(pair, &label_keys, opts.threshold, grid)?;
        // Labels and regions are independent: on up to `lesion_threads` threads, each with its
        // own workspace, rows taken in order; the results do not depend on the thread count.
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<std::sync::Mutex<Option<LesionValues>>> =
            keys.iter().map(|_| std::sync::Mutex::new(None)).collect();
        let work = || {
            let mut ws = lesionwise::Workspace::default();
            loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(labels) = keys.get(k) else { break };
                let r = match region_masks.get(k) {
                    Some(Some((p, g))) => lesionwise::values(&mut ws, p, g, grid, lesion),
                    _ => lesionwise::values_in(
                        &mut ws,
                        pair,
                        labels,
                        opts.threshold,
                        opts.ignore_label,
                        grid,
                        boxes.get(k).copied().flatten(),
                        lesion,
                    ),
                };
                if let Ok(mut slot) = results[k].lock() {
                    *slot = Some(r);
                }
            }
        };
        let threads = opts.lesion_threads.clamp(1, keys.len().max(1));
        std::thread::scope(|s| {
            for _ in 1..threads {
                // A thread the system refuses to start is simply not used.
                let _ = std::thread::Builder::new().spawn_scoped(s, work);
            }
            work();
        });
        for (r, slot) in rows.iter_mut().zip(results) {
            let v = slot
                .into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err("a lesion-wise worker failed".into()))?;
            r.values.extend(v);
        }
    }
    if let Ok(grid) = surfaces::grid(pair, &opts.surface, pn, gn) {
        let ml = grid.spacing.iter().product::<f64>() / 1000.0;
        for r in rows.iter_mut() {
            r.voxel_ml = Some(ml);
        }
    }
    if opts.metrics.iter().any(|m| m.is_surface()) {
        let grid = surfaces::grid(pair, &opts.surface, pn, gn)?;
        let labels: Vec<i64> = rows[..label_rows].iter().map(|r| r.label).collect();
        let measured = surfaces::compute(
            pair,
            &labels,
            opts.threshold,
            opts.ignore_label,
            grid,
            &opts.surface,
        )?;
        for (r, s) in rows[..label_rows].iter_mut().zip(measured) {
            let v = s.values(&opts.surface, opts.policy.both_empty);
            for (slot, m) in r.values.iter_mut().zip(&opts.metrics) {
                if let Some(k) = m.surface_index() {
                    *slot = v[k];
                }
            }
        }
    }
    Ok(Outcome {
        rows,
        notes: pair.notes.clone(),
    })
}

/// One row's lesion-wise values, or why they could not be computed.
type LesionValues = Result<Vec<Option<f64>>, String>;

impl Row {
    /// How the row is named in reports: the label, or the region's name.
    pub fn key(&self) -> String {
        self.region
            .clone()
            .unwrap_or_else(|| self.label.to_string())
    }
}

fn row(label: i64, counts: Confusion, opts: &Options, soft_dice: Option<f64>) -> Row {
    Row {
        label,
        region: None,
        voxel_ml: None,
        counts,
        values: opts
            .metrics
            .iter()
            .map(|m| m.overlap().and_then(|o| counts.metric(o, opts.policy)))
            .collect(),
        soft_dice,
    }
}

/// What a scan of a label map found.
struct LabelScan {
    max: i64,
    /// Distinct labels (the ignore label aside), up to `limit + 1`; `None` where they are read
    /// off the counts instead (`u8`, `u16`: a table of every value is cheap there).
    distinct: Option<BTreeSet<i64>>,
    /// First negative label that is not the ignore label.
    negative: Option<usize>,
    /// Whether the ignore label occurs.
    has_ignore: bool,
}

/// Wide label types: every distinct label (up to `limit + 1`), negatives, the largest.
fn scan_labels<L: Label>(v: &[L], ignore: Option<i64>, limit: usize) -> LabelScan {
    let mut s = LabelScan {
        max: i64::MIN,
        distinct: Some(BTreeSet::new()),
        negative: None,
        has_ignore: false,
    };
    let distinct = s.distinct.get_or_insert_with(BTreeSet::new);
    // Runs of one label are the rule in segmentations: look at each run once.
    let mut prev: Option<i64> = None;
    for (i, &x) in v.iter().enumerate() {
        let x = x.to_i64();
        if prev == Some(x) {
            continue;
        }
        prev = Some(x);
        if Some(x) == ignore {
            s.has_ignore = true;
            continue;
        }
        if x < 0 && s.negative.is_none() {
            s.negative = Some(i);
        }
        s.max = s.max.max(x);
        if distinct.len() <= limit {
            distinct.insert(x);
        }
    }
    s
}

/// Narrow unsigned labels: the largest (the ignore label aside) in one vectorised pass; the
/// distinct labels come from the counts.
fn scan_unsigned<T: Copy + Ord + Default + Into<i64> + TryFrom<i64>>(
    v: &[T],
    ignore: Option<i64>,
) -> LabelScan {
    let ig = ignore.and_then(|i| T::try_from(i).ok());
    let (max, has_ignore) = match ig {
        Some(ig) => (
            v.iter()
                .map(|&x| if x == ig { T::default() } else { x })
                .max(),
            v.contains(&ig),
        ),
        None => (v.iter().copied().max(), false),
    };
    LabelScan {
        max: max.map_or(0, Into::into),
        distinct: None,
        negative: None,
        has_ignore,
    }
}

fn scan_data(d: &Data, ignore: Option<i64>, limit: usize) -> LabelScan {
    match d {
        Data::U8(v) => scan_unsigned(v, ignore),
        Data::U16(v) => scan_unsigned(v, ignore),
        Data::U32(v) => scan_labels(v, ignore, limit),
        Data::I32(v) => scan_labels(v, ignore, limit),
        Data::I64(v) => scan_labels(v, ignore, limit),
        Data::F32(_) | Data::F64(_) => LabelScan {
            max: 0,
            distinct: Some(BTreeSet::new()),
            negative: None,
            has_ignore: false,
        },
    }
}

/// The distinct labels of a map (the ignore label aside), however it was scanned.
fn distinct_labels(d: &Data, s: &LabelScan, ignore: Option<i64>) -> BTreeSet<i64> {
    if let Some(set) = &s.distinct {
        return set.clone();
    }
    let mut seen = vec![false; s.max.max(0) as usize + 1];
    crate::with_labels!(d, v => {
        for &x in v {
            if let Some(b) = seen.get_mut(x.to_i64().max(0) as usize) {
                *b = true;
            }
        }
    }, float => {});
    (0..seen.len() as i64)
        .filter(|&l| seen[l as usize] && Some(l) != ignore)
        .collect()
}

fn too_many(name: &str, limit: usize) -> String {
    format!(
        "{name} has more than {limit} distinct values (--max-labels {limit}): it looks like an \
         intensity image, not a segmentation (raise --max-labels if it really is a label map)"
    )
}

/// Converts labels to the type `T` (all values known to fit).
fn convert<T: Copy>(d: &Data, f: impl Fn(i64) -> T, name: &str) -> Result<Vec<T>, String> {
    crate::with_labels!(d, v => crate::formats::try_collect(d.len(), v.iter().map(|&x| f(x.to_i64())), name),
        float => Err("internal: float data as labels".into()))
}

/// Every label's counts, on `threads` threads for large volumes (exact: the same counts).
fn count<L: Label>(
    p: &[L],
    g: &[L],
    ignore: Option<i64>,
    out: &mut [Confusion],
    threads: usize,
) -> Result<u64, String> {
    let pool = dice_core::parallel::Threads::new(threads);
    hard::label_confusion_in(p, g, ignore, out, &pool).map_err(|e| e.to_string())
}

/// Both maps in one type (converted only where needed), counted into a table of `classes`.
///
/// Labels are compared as values, never as bytes of one file's type: maps of the same type
/// are counted as stored (dice-core compares the ignore label as a value, so `-1` matches
/// nothing in a `uint8` map); maps of different types are converted to the narrowest type
/// that holds every label below `classes`, and the ignore label, which may not fit that type
/// (`-1` of an `int16` reference against a `uint8` prediction), becomes `classes` there, a
/// value no counted label has.
fn count_dense(
    p: &Data,
    g: &Data,
    ignore: Option<i64>,
    classes: usize,
    threads: usize,
) -> Result<(Vec<Confusion>, u64), String> {
    let mut out = vec![Confusion::default(); classes];
    let sentinel = classes as i64;
    let value = |x: i64| if Some(x) == ignore { sentinel } else { x };
    let ig = ignore.map(|_| sentinel);
    let n = match (p, g) {
        (Data::U8(a), Data::U8(b)) => count(a, b, ignore, &mut out, threads)?,
        (Data::U16(a), Data::U16(b)) => count(a, b, ignore, &mut out, threads)?,
        (Data::U32(a), Data::U32(b)) => count(a, b, ignore, &mut out, threads)?,
        (Data::I32(a), Data::I32(b)) => count(a, b, ignore, &mut out, threads)?,
        (Data::I64(a), Data::I64(b)) => count(a, b, ignore, &mut out, threads)?,
        _ if sentinel <= u8::MAX as i64 => {
            // Every label (and the ignore label's stand-in) fits a byte: the SIMD path.
            let f = |x: i64| value(x) as u8;
            count(
                &convert(p, f, "uint8")?,
                &convert(g, f, "uint8")?,
                ig,
                &mut out,
                threads,
            )?
        }
        _ if sentinel <= u16::MAX as i64 => {
            let f = |x: i64| value(x) as u16;
            count(
                &convert(p, f, "uint16")?,
                &convert(g, f, "uint16")?,
                ig,
                &mut out,
                threads,
            )?
        }
        _ => count(
            &convert(p, |x| x, "int64")?,
            &convert(g, |x| x, "int64")?,
            ignore,
            &mut out,
            threads,
        )?,
    };
    Ok((out, n))
}

/// Label maps: every label's counts in one pass over both maps.
fn labels(
    p: &Data,
    g: &Data,
    opts: &Options,
    pair: &Pair,
    pn: &str,
    gn: &str,
) -> Result<Vec<Row>, String> {
    let ignore = opts.ignore_label;
    let limit = opts.max_labels;
    let ps = scan_data(p, ignore, limit);
    let gs = scan_data(g, ignore, limit);
    for (s, name, data) in [(&ps, pn, p), (&gs, gn, g)] {
        if let Some(i) = s.negative {
            let v = crate::with_labels!(data, v => v[i].to_i64(), float => 0);
            return Err(format!(
                "{name}: negative label {v} at {}",
                crate::volume::position(&pair.dims, pair.gt_vol.index_style, i)
            ));
        }
        if s.distinct.as_ref().is_some_and(|d| d.len() > limit) {
            return Err(too_many(name, limit));
        }
    }
    let counted_somewhere =
        |c: &Confusion| opts.labels.is_some() || c.reference() + c.prediction() > 0;
    let row_of = |l: i64, c: Confusion| row(l, c, opts, None);
    let max_present = ps.max.max(gs.max).max(0);
    let max_chosen = opts.labels.iter().flatten().copied().max().unwrap_or(0);
    if max_present.max(max_chosen) >= 1 << 16 {
        // Sparse large labels: count on compact indices (the distinct labels, sorted).
        let present: BTreeSet<i64> = distinct_labels(p, &ps, ignore)
            .union(&distinct_labels(g, &gs, ignore))
            .copied()
            .collect();
        let chosen: Vec<i64> = match &opts.labels {
            Some(l) => l.clone(),
            None => present
                .iter()
                .copied()
                .filter(|&l| l != 0 || opts.include_background)
                .collect(),
        };
        let table: Vec<i64> = present.iter().copied().collect();
        let ign_index = table.len() as i64;
        let index = |x: i64| -> u32 {
            if Some(x) == ignore {
                ign_index as u32
            } else {
                table.binary_search(&x).unwrap_or(0) as u32
            }
        };
        let (a, b) = (convert(p, index, "uint32")?, convert(g, index, "uint32")?);
        let mut compact = vec![Confusion::default(); table.len().max(1)];
        let n = count(&a, &b, Some(ign_index), &mut compact, opts.lesion_threads)?;
        // Back to labels; chosen labels absent from both maps count nothing.
        return Ok(chosen
            .iter()
            .map(|&l| match table.binary_search(&l) {
                Ok(k) => (l, compact[k]),
                Err(_) => (
                    l,
                    Confusion {
                        tn: n,
                        ..Confusion::default()
                    },
                ),
            })
            .filter(|(_, c)| counted_somewhere(c))
            .map(|(l, c)| row_of(l, c))
            .collect());
    }
    let classes = (max_present.max(max_chosen) + 1) as usize;
    let (counts, counted) = count_dense(p, g, ignore, classes, opts.lesion_threads)?;
    // Maps scanned without listing their labels are checked against --max-labels here.
    let in_pred = counts.iter().filter(|c| c.prediction() > 0).count();
    let in_ref = counts.iter().filter(|c| c.reference() > 0).count();
    for (s, name, n) in [(&ps, pn, in_pred), (&gs, gn, in_ref)] {
        if s.distinct.is_none() && n > limit {
            return Err(too_many(name, limit));
        }
    }
    // By default every label that occurs where neither map is ignored.
    let chosen: Vec<i64> = match &opts.labels {
        Some(l) => l.clone(),
        None => (0..classes as i64)
            .filter(|&l| l != 0 || opts.include_background)
            .collect(),
    };
    Ok(chosen
        .into_iter()
        .map(|l| {
            let c = counts.get(l as usize).copied().unwrap_or(Confusion {
                tn: counted,
                ..Confusion::default()
            });
            (l, c)
        })
        .filter(|(_, c)| counted_somewhere(c))
        .map(|(l, c)| row_of(l, c))
        .collect())
}

/// The reference's value at `i` as a binary decision for label `label`, or `None` when the
/// voxel is ignored.
fn reference_label<L: Label>(g: &[L], i: usize, label: i64, ignore: Option<i64>) -> Option<bool> {
    let v = g[i].to_i64();
    if Some(v) == ignore {
        None
    } else {
        Some(v == label)
    }
}

/// Counts (and soft statistics) of probabilities against a reference selection, chunk by
/// chunk through the core: only the voxels kept, with the reference as 0/1. The chunk buffers
/// start on a 64-byte boundary, as the kernels' blocks do, so that the `f32` sums (and so the
/// soft Dice's last bits) do not depend on where the allocator put them.
fn prob_counts<T: dice_core::Float>(
    p: &[T],
    keep: impl Fn(usize) -> Option<bool>,
    threshold: f64,
    soft: bool,
) -> Result<(Confusion, Option<SoftStats>), String> {
    const CHUNK: usize = 1 << 16;
    let pad = 64 / std::mem::size_of::<T>();
    let mut c = Confusion::default();
    let mut s = soft.then(|| SoftStats::zero(Moment::Linear));
    let zero = T::from_f64(0.0);
    let (mut pc, mut gc) = (vec![zero; CHUNK + pad], vec![zero; CHUNK + pad]);
    let (po, go) = (
        pc.as_ptr().align_offset(64).min(pad),
        gc.as_ptr().align_offset(64).min(pad),
    );
    for start in (0..p.len()).step_by(CHUNK) {
        let mut k = 0;
        let end = (start + CHUNK).min(p.len());
        for (i, &pv) in p.iter().enumerate().take(end).skip(start) {
            if let Some(g) = keep(i) {
                pc[po + k] = pv;
                gc[go + k] = T::from_f64(if g { 1.0 } else { 0.0 });
                k += 1;
            }
        }
        if k == 0 {
            continue;
        }
        let (pk, gk) = (&pc[po..po + k], &gc[go..go + k]);
        let counts =
            hard::confusion_from_probabilities(pk, gk, threshold).map_err(|e| e.to_string())?;
        c = c.merge(&counts);
        if let Some(acc) = &mut s {
            let chunk = SoftStats::of(pk, gk, Moment::Linear).map_err(|e| e.to_string())?;
            *acc = acc.merge(&chunk).map_err(|e| e.to_string())?;
        }
    }
    Ok((c, s))
}

/// A probability map against a label map (each chosen reference label against the thresholded
/// prediction) or against a probability reference (thresholded alike).
fn probabilities(
    p: &Probs,
    g: &Values,
    opts: &Options,
    pn: &str,
    gn: &str,
) -> Result<Vec<Row>, String> {
    let ignore = opts.ignore_label;
    let chosen: Vec<i64> = match g {
        Values::Probabilities(_) => {
            if ignore.is_some() {
                return Err(format!(
                    "--ignore-label needs a reference label map, and {gn} is a probability map"
                ));
            }
            match &opts.labels {
                Some(l) if l.as_slice() != [1] => {
                    return Err(format!(
                        "--labels needs a reference label map, and {gn} is a probability map"
                    ))
                }
                _ => vec![1],
            }
        }
        Values::Labels(d) => {
            let s = scan_data(d, ignore, opts.max_labels);
            let nonzero: Vec<i64> = distinct_labels(d, &s, ignore)
                .into_iter()
                .filter(|&l| l != 0)
                .collect();
            match (&opts.labels, nonzero.len()) {
                (Some(l), _) => l.clone(),
                (None, 0) => vec![1],
                (None, 1) => nonzero,
                (None, _) => {
                    let list: Vec<String> = nonzero.iter().take(8).map(|l| l.to_string()).collect();
                    return Err(format!(
                        "{pn} is one probability map but {gn} has several labels ({}{}): pass \
                         --labels L to compare each reference label L with the thresholded \
                         prediction, or give one probability map per label",
                        list.join(", "),
                        if nonzero.len() > 8 { ", …" } else { "" }
                    ));
                }
            }
        }
    };
    let soft = opts.soft;
    let mut rows = Vec::new();
    for &label in &chosen {
        let (c, s) = match (p, g) {
            (Probs::F32(pv), Values::Probabilities(gp)) => against_probabilities(pv, gp, opts)?,
            (Probs::F64(pv), Values::Probabilities(gp)) => against_probabilities(pv, gp, opts)?,
            (Probs::F32(pv), Values::Labels(d)) => against_labels(pv, d, label, opts)?,
            (Probs::F64(pv), Values::Labels(d)) => against_labels(pv, d, label, opts)?,
        };
        let soft_dice = match (soft, s) {
            (Some((nr, dr)), Some(s)) => score::dice(s.intersection, s.pred, s.target, nr, dr),
            _ => None,
        };
        rows.push(row(label, c, opts, soft_dice));
    }
    Ok(rows)
}

/// Probabilities against a probability reference, thresholded alike by the core (the
/// reference converted to the prediction's precision when they differ).
fn against_probabilities<T: dice_core::Float>(
    p: &[T],
    g: &Probs,
    opts: &Options,
) -> Result<(Confusion, Option<SoftStats>), String> {
    let gv: Vec<T> = crate::formats::try_collect(
        g.len(),
        (0..g.len()).map(|i| T::from_f64(g.get(i))),
        "float",
    )?;
    let c =
        hard::confusion_from_probabilities(p, &gv, opts.threshold).map_err(|e| e.to_string())?;
    let s = match opts.soft {
        Some(_) => Some(SoftStats::of(p, &gv, Moment::Linear).map_err(|e| e.to_string())?),
        None => None,
    };
    Ok((c, s))
}

/// Probabilities against one label of a label map (ignored voxels left out).
fn against_labels<T: dice_core::Float>(
    p: &[T],
    d: &Data,
    label: i64,
    opts: &Options,
) -> Result<(Confusion, Option<SoftStats>), String> {
    let ignore = opts.ignore_label;
    let soft = opts.soft.is_some();
    crate::with_labels!(d, v => prob_counts(p, |i| reference_label(v, i, label, ignore), opts.threshold, soft),
        float => Err("internal: a float reference as labels".into()))
}

/// What an overlay shows of voxel `i`: `None` for an ignored voxel, else the predicted and the
/// reference class among the chosen labels (`None` for background or unchosen labels).
pub fn classes_at(
    pair: &Pair,
    rows: &[Row],
    threshold: f64,
    ignore: Option<i64>,
    i: usize,
) -> Option<(Option<i64>, Option<i64>)> {
    let chosen = |l: i64| rows.iter().any(|r| r.label == l);
    let label_at = |d: &Data| -> i64 { crate::with_labels!(d, v => v[i].to_i64(), float => 0) };
    let g = match &pair.gt {
        Values::Labels(d) => {
            let l = label_at(d);
            if Some(l) == ignore {
                return None;
            }
            chosen(l).then_some(l)
        }
        Values::Probabilities(p) => (p.get(i) >= threshold).then_some(1),
    };
    let p = match &pair.pred {
        Values::Labels(d) => {
            let l = label_at(d);
            if Some(l) == ignore {
                return None;
            }
            chosen(l).then_some(l)
        }
        Values::Probabilities(p) => {
            if p.get(i) >= threshold {
                Some(g.unwrap_or_else(|| rows.first().map_or(1, |r| r.label)))
            } else {
                None
            }
        }
    };
    Some((p, g))
}

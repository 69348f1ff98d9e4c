//! Surface metrics of a prepared pair through dice-core's `surface` module: the labels (or the
//! thresholded probability map) become predicates on voxel indices, each label's box comes from
//! one pass over each map, and the spacing from the reference's geometry (or `--spacing`). Voxels
//! holding the ignore label in either file are outside both masks.

use dice_core::hard::EmptyValue;
use dice_core::surface::{
    self, Bounds, DistanceMetric, Elements, EmptyDistance, Grid, PercentileDefinition,
    SurfaceEmptyPolicy, Surfaces,
};
use dice_core::Label;

use crate::eval::Pair;
use crate::semantics::Values;
use crate::volume::Data;

/// The surface metrics `dice eval` reports, with their options.
#[derive(Clone, Debug, PartialEq)]
pub struct SurfaceOptions {
    /// The percentile of the percentile Hausdorff distance (95 for HD95).
    pub percentile: f64,
    /// Max of the directed percentiles (MONAI, DeepMind, MetricsReloaded) or pooled (medpy).
    pub definition: PercentileDefinition,
    /// NSD tolerance in mm: one for every label, or per label (`None` when NSD is not asked).
    pub tolerance: Option<Tolerance>,
    /// Spacing for files without geometry (mm per axis, x first).
    pub spacing: Option<[f64; 3]>,
    /// Distances when one mask is empty.
    pub one_empty: EmptyDistance,
    /// Boundary voxels or surfels with areas.
    pub elements: Elements,
}

impl Default for SurfaceOptions {
    fn default() -> Self {
        SurfaceOptions {
            percentile: 95.0,
            definition: PercentileDefinition::MaxDirected,
            tolerance: None,
            spacing: None,
            one_empty: EmptyDistance::Diagonal,
            elements: Elements::Voxels,
        }
    }
}

/// NSD tolerances.
#[derive(Clone, Debug, PartialEq)]
pub enum Tolerance {
    /// The same for every label (mm).
    All(f64),
    /// Per label (mm); a label not listed is an error.
    PerLabel(Vec<(i64, f64)>),
}

impl Tolerance {
    fn of(&self, label: i64) -> Option<f64> {
        match self {
            Tolerance::All(t) => Some(*t),
            Tolerance::PerLabel(v) => v.iter().find(|(l, _)| *l == label).map(|(_, t)| *t),
        }
    }
}

/// One label's surface metrics: the core's result and the grid it was measured on.
pub struct LabelSurfaces {
    /// Distances or which mask is empty.
    pub surfaces: Surfaces,
    /// The grid (for the empty policy's diagonal).
    pub grid: Grid,
    /// The NSD tolerance used.
    pub tolerance: f64,
}

impl LabelSurfaces {
    /// Hausdorff, percentile Hausdorff, ASSD, MASD with the empty policy; NSD with Dice's
    /// both-empty value.
    pub fn values(&self, opts: &SurfaceOptions, both_empty: EmptyValue) -> [Option<f64>; 5] {
        let policy = SurfaceEmptyPolicy {
            one_empty: opts.one_empty,
            both_empty: match both_empty {
                EmptyValue::Skip => EmptyDistance::Skip,
                EmptyValue::Nan => EmptyDistance::Nan,
                // A perfect score is no distance; a failed one the worst.
                EmptyValue::One => EmptyDistance::Zero,
                EmptyValue::Zero => opts.one_empty,
            },
        };
        let d = |m| self.surfaces.distance(m, self.grid, policy);
        [
            d(DistanceMetric::Hausdorff),
            d(DistanceMetric::PercentileHausdorff(opts.definition)),
            d(DistanceMetric::Assd),
            d(DistanceMetric::Masd),
            self.surfaces.nsd(both_empty),
        ]
    }
}

/// The grid of a pair for surface metrics: 2-D or 3-D, with a spacing.
pub fn grid(pair: &Pair, opts: &SurfaceOptions, pn: &str, gn: &str) -> Result<Grid, String> {
    if pair.dims.iter().skip(3).any(|&d| d > 1) {
        return Err(format!(
            "surface metrics need 2-D or 3-D images, and {gn} is {}",
            pair.gt_vol.shape_text()
        ));
    }
    let dims = crate::geometry::spatial3(&pair.dims);
    let spacing = match (&pair.gt_vol.geometry, opts.spacing) {
        (Some(g), _) => g.spacing(),
        (None, Some(s)) => s,
        (None, None) => {
            return Err(format!(
                "surface metrics are in mm, and neither {pn} nor {gn} says how large a voxel is: \
                 pass --spacing X,Y,Z (mm; NumPy, PNG and TIFF files carry none)"
            ))
        }
    };
    Grid::new(dims, spacing).map_err(|e| format!("{gn}: {e}"))
}

/// What a voxel is in one file, for one label.
#[derive(Clone, Copy)]
struct Mask<'a> {
    values: &'a Values,
    label: i64,
    threshold: f64,
}

impl Mask<'_> {
    #[inline]
    fn inside(&self, i: usize) -> bool {
        match self.values {
            Values::Labels(d) => label_at(d, i) == self.label,
            Values::Probabilities(p) => p.get(i) >= self.threshold,
        }
    }
}

#[inline]
fn label_at(d: &Data, i: usize) -> i64 {
    crate::with_labels!(d, v => v[i].to_i64(), float => i64::MIN)
}

/// The box of each of `labels` in one map, in one pass over it (`None` for a label absent
/// there; `None` overall when the map is not a label map). Labels below 2¹⁶ index a table
/// directly; larger ones (up to any `i64`) are first mapped to their rank among `labels`, so
/// the cost is one pass over the voxels whatever the labels, never labels × voxels.
fn boxes_of(grid: Grid, v: &Values, labels: &[i64]) -> Result<Option<Vec<Option<Bounds>>>, String> {
    let Values::Labels(d) = v else {
        return Ok(None);
    };
    let e = |e: dice_core::DiceError| e.to_string();
    let max = labels.iter().copied().max().unwrap_or(0);
    if labels.iter().all(|&l| (0..1 << 16).contains(&l)) {
        let mut table = vec![None; max as usize + 1];
        crate::with_labels!(d, v => surface::label_bounds(grid, v, &mut table), float => Ok(()))
            .map_err(e)?;
        return Ok(Some(labels.iter().map(|&l| table[l as usize]).collect()));
    }
    let mut sorted: Vec<i64> = labels.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let absent = sorted.len() as u32;
    // Runs of one label are the rule: one search per run.
    let mut last = (i64::MIN, absent);
    let rank = |x: i64, last: &mut (i64, u32)| -> u32 {
        if x != last.0 {
            *last = (x, sorted.binary_search(&x).map_or(absent, |k| k as u32));
        }
        last.1
    };
    let ranks: Vec<u32> = crate::with_labels!(d, v => crate::formats::try_collect(
        v.len(),
        v.iter().map(|&x| rank(x.to_i64(), &mut last)),
        "uint32",
    ), float => Ok(Vec::new()))?;
    let mut table = vec![None; sorted.len()];
    surface::label_bounds(grid, &ranks, &mut table).map_err(e)?;
    Ok(Some(
        labels
            .iter()
            .map(|l| sorted.binary_search(l).ok().and_then(|k| table[k]))
            .collect(),
    ))
}

/// The box of each label's voxels in the prediction or the reference (the union of the two),
/// from one pass over each label map; for a probability map, its thresholded voxels. Ignored
/// voxels may lie inside a box (a box holds the masks, not only them).
pub fn label_boxes(
    pair: &Pair,
    labels: &[i64],
    threshold: f64,
    grid: Grid,
) -> Result<Vec<Option<Bounds>>, String> {
    let one = |v: &Values| -> Result<Vec<Option<Bounds>>, String> {
        Ok(match boxes_of(grid, v, labels)? {
            Some(b) => b,
            None => {
                let b = surface::bounds_of(grid, |i| match v {
                    Values::Probabilities(p) => p.get(i) >= threshold,
                    Values::Labels(_) => false,
                });
                vec![b; labels.len()]
            }
        })
    };
    let (p, g) = (one(&pair.pred)?, one(&pair.gt)?);
    Ok(p.into_iter()
        .zip(g)
        .map(|(a, b)| surface::union(a, b))
        .collect())
}

/// Surface metrics of every label in `labels`.
pub fn compute(
    pair: &Pair,
    labels: &[i64],
    threshold: f64,
    ignore: Option<i64>,
    grid: Grid,
    opts: &SurfaceOptions,
) -> Result<Vec<LabelSurfaces>, String> {
    let tolerances = labels
        .iter()
        .map(|&label| match &opts.tolerance {
            None => Ok(0.0),
            Some(t) => t
                .of(label)
                .ok_or_else(|| format!("--tolerance gives no NSD tolerance for label {label}")),
        })
        .collect::<Result<Vec<f64>, String>>()?;
    if let Some(out) = compute_label_maps(pair, labels, &tolerances, ignore, grid, opts)? {
        return Ok(out);
    }
    let boxes = label_boxes(pair, labels, threshold, grid)?;
    let ignored = |i: usize| -> bool {
        ignore.is_some_and(|ig| {
            [&pair.pred, &pair.gt]
                .iter()
                .any(|v| matches!(v, Values::Labels(d) if label_at(d, i) == ig))
        })
    };
    let mut out = Vec::with_capacity(labels.len());
    let mut scratch: Vec<f64> = Vec::new();
    for (&label, &bounds) in labels.iter().zip(&boxes) {
        let pm = Mask {
            values: &pair.pred,
            label,
            threshold,
        };
        let gm = Mask {
            values: &pair.gt,
            label,
            threshold,
        };
        let p = |i: usize| pm.inside(i) && !ignored(i);
        let g = |i: usize| gm.inside(i) && !ignored(i);
        let tolerance = tolerances[out.len()];
        // One buffer for every label, grown when a label's box needs more.
        let n = surface::scratch_len_for(opts.elements, grid, bounds, &p, &g);
        if n > scratch.len() {
            scratch.try_reserve_exact(n - scratch.len()).map_err(|_| {
                format!(
                    "not enough memory for the distance transform of label {label} ({n} values)"
                )
            })?;
            scratch.resize(n, 0.0);
        }
        let surfaces = surface::distances_for(
            opts.elements,
            grid,
            bounds,
            &p,
            &g,
            opts.percentile,
            tolerance,
            &mut scratch,
        )
        .map_err(|e| e.to_string())?;
        out.push(LabelSurfaces {
            surfaces,
            grid,
            tolerance,
        });
    }
    Ok(out)
}

/// Surface metrics of every label of two label maps of one storage type in one pass over
/// each map (dice-core's `labels_surface_distances`): the cost follows the volume once and the
/// surfaces, not labels × volume. `None` for a pair it does not take (a probability map, or
/// maps stored in different types), which the per-label path measures.
fn compute_label_maps(
    pair: &Pair,
    labels: &[i64],
    tolerances: &[f64],
    ignore: Option<i64>,
    grid: Grid,
    opts: &SurfaceOptions,
) -> Result<Option<Vec<LabelSurfaces>>, String> {
    let (Values::Labels(pd), Values::Labels(gd)) = (&pair.pred, &pair.gt) else {
        return Ok(None);
    };
    // dice-core takes the labels strictly increasing: measure them sorted, report in order.
    // A label's tolerance depends on the label only, so duplicates agree.
    let mut pairs: Vec<(i64, f64)> = labels
        .iter()
        .copied()
        .zip(tolerances.iter().copied())
        .collect();
    pairs.sort_unstable_by_key(|p| p.0);
    pairs.dedup_by_key(|p| p.0);
    let (sorted, tol): (Vec<i64>, Vec<f64>) = pairs.into_iter().unzip();
    let mut found = vec![Surfaces::BothEmpty; sorted.len()];
    #[allow(clippy::too_many_arguments)]
    fn run<L: Label>(
        p: &[L],
        g: &[L],
        labels: &[i64],
        tol: &[f64],
        ignore: Option<i64>,
        grid: Grid,
        opts: &SurfaceOptions,
        out: &mut [Surfaces],
    ) -> Result<(), String> {
        let e = |e: dice_core::DiceError| e.to_string();
        let n =
            surface::labels_scratch_len(opts.elements, grid, p, g, ignore, labels).map_err(e)?;
        let mut scratch: Vec<f64> = Vec::new();
        scratch.try_reserve_exact(n).map_err(|_| {
            format!("not enough memory for the surfaces of every label ({n} values)")
        })?;
        scratch.resize(n, 0.0);
        surface::labels_surface_distances(
            opts.elements,
            grid,
            p,
            g,
            ignore,
            labels,
            opts.percentile,
            tol,
            &mut scratch,
            out,
        )
        .map_err(e)
    }
    macro_rules! go {
        ($p:expr, $g:expr) => {
            run($p, $g, &sorted, &tol, ignore, grid, opts, &mut found)
        };
    }
    let done = match (pd, gd) {
        (Data::U8(p), Data::U8(g)) => go!(p, g),
        (Data::U16(p), Data::U16(g)) => go!(p, g),
        (Data::U32(p), Data::U32(g)) => go!(p, g),
        (Data::I32(p), Data::I32(g)) => go!(p, g),
        (Data::I64(p), Data::I64(g)) => go!(p, g),
        _ => return Ok(None),
    };
    done?;
    Ok(Some(
        labels
            .iter()
            .zip(tolerances)
            .map(|(l, &tolerance)| LabelSurfaces {
                surfaces: found[sorted.binary_search(l).unwrap_or(0)],
                grid,
                tolerance,
            })
            .collect(),
    ))
}

/// Surface metrics of two masks (a region's, or any label's): `key` names it for the
/// per-label tolerance of NSD (a region uses the tolerance given for `All`).
pub fn compute_masks(
    pred: &[u8],
    gt: &[u8],
    grid: Grid,
    opts: &SurfaceOptions,
    key: &str,
) -> Result<LabelSurfaces, String> {
    let p = |i: usize| pred[i] != 0;
    let g = |i: usize| gt[i] != 0;
    let bounds = surface::union(surface::bounds_of(grid, p), surface::bounds_of(grid, g));
    let tolerance = match &opts.tolerance {
        None => 0.0,
        Some(Tolerance::All(t)) => *t,
        Some(Tolerance::PerLabel(_)) => {
            return Err(format!(
                "--tolerance gives NSD tolerances per label, and {key} is a region: give one \
                 tolerance for all"
            ))
        }
    };
    let n = surface::scratch_len_for(opts.elements, grid, bounds, &p, &g);
    let mut scratch: Vec<f64> = Vec::new();
    scratch
        .try_reserve_exact(n)
        .map_err(|_| format!("not enough memory for the distance transform of {key}"))?;
    scratch.resize(n, 0.0);
    let surfaces = surface::distances_for(
        opts.elements,
        grid,
        bounds,
        &p,
        &g,
        opts.percentile,
        tolerance,
        &mut scratch,
    )
    .map_err(|e| e.to_string())?;
    Ok(LabelSurfaces {
        surfaces,
        grid,
        tolerance,
    })
}

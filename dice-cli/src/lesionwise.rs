//! Regions (unions of labels) and lesion-wise metrics of a prepared pair, through dice-core's
//! `components` and `lesions` modules; this module only builds masks, allocates the buffers
//! dice-core asks for, and names the columns.

use dice_core::components;
use dice_core::lesions::{self, BratsBuffers, BratsParams, BratsTables, Lesion, Overlap};
use dice_core::surface::{self, Bounds, Grid};
use dice_core::{DiceError, Label};

use crate::eval::Pair;
use crate::semantics::Values;
use crate::volume::Data;

/// A named union of labels (`--region WT=1,2,3`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    /// Its name, as reported.
    pub name: String,
    /// The labels it unites.
    pub labels: Vec<i64>,
}

impl Region {
    /// Parses `NAME=1,2,3`.
    pub fn parse(s: &str) -> Result<Region, String> {
        let (name, labels) = s.split_once('=').ok_or_else(|| {
            format!("--region {s:?}: expected NAME=LABEL,LABEL,… (e.g. WT=1,2,3)")
        })?;
        let name = name.trim();
        if name.is_empty() || name.parse::<i64>().is_ok() {
            return Err(format!(
                "--region {s:?}: the name must be text (not empty, not a number)"
            ));
        }
        let labels = labels
            .split(',')
            .map(|l| {
                l.trim()
                    .parse::<i64>()
                    .map_err(|_| format!("--region {s:?}: {l:?} is not an integer label"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Region {
            name: name.to_string(),
            labels,
        })
    }
}

/// How reference lesions and predicted components are matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Matching {
    /// BraTS 2023: components touching a lesion's dilated region match it.
    Dilation,
    /// panoptica/MetricsReloaded: components match when their IoU exceeds the threshold.
    Iou,
}

/// Options of `--lesion-wise`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LesionOptions {
    /// How lesions match.
    pub matching: Matching,
    /// BraTS's constants (dilation, minimum volume in mm³, HD95 penalty, connectivity).
    pub brats: BratsParams,
    /// IoU threshold of [`Matching::Iou`].
    pub iou_threshold: f64,
    /// Lesions of at most this many voxels leave the score (instead of BraTS's volume).
    pub min_voxels: Option<u64>,
}

impl Default for LesionOptions {
    fn default() -> Self {
        LesionOptions {
            matching: Matching::Dilation,
            brats: BratsParams::GLI,
            iou_threshold: 0.5,
            min_voxels: None,
        }
    }
}

impl LesionOptions {
    /// How far the matching reaches beyond a mask, in voxels: the reference's dilation
    /// (BraTS), or none (IoU matching). A crop grown by this much changes no result.
    fn reach(&self) -> u32 {
        match self.matching {
            Matching::Dilation => self.brats.dilation,
            Matching::Iou => 0,
        }
    }

    /// The columns these options add, in order.
    pub fn columns(&self) -> Vec<String> {
        let cols: &[&str] = match self.matching {
            Matching::Dilation => &[
                "lesion_dice",
                "lesion_hd95",
                "lesion_tp",
                "lesion_fp",
                "lesion_fn",
                "fp_volume_ml",
                "fn_volume_ml",
            ],
            Matching::Iou => &[
                "lesion_tp",
                "lesion_fp",
                "lesion_fn",
                "lesion_precision",
                "lesion_recall",
                "lesion_f1",
                "pq",
                "sq",
                "fp_volume_ml",
                "fn_volume_ml",
            ],
        };
        cols.iter().map(|c| c.to_string()).collect()
    }
}

/// What a voxel is in one file for a set of labels (or, in a probability map, `p ≥ threshold`).
fn inside(values: &Values, labels: &[i64], threshold: f64, i: usize) -> bool {
    match values {
        Values::Labels(d) => {
            let v = crate::with_labels!(d, v => v[i].to_i64(), float => i64::MIN);
            labels.contains(&v)
        }
        Values::Probabilities(p) => p.get(i) >= threshold,
    }
}

fn is_ignored(values: &Values, ignore: Option<i64>, i: usize) -> bool {
    match (values, ignore) {
        (Values::Labels(d), Some(ig)) => {
            crate::with_labels!(d, v => v[i].to_i64(), float => i64::MIN) == ig
        }
        _ => false,
    }
}

/// The prediction's and the reference's masks of `labels`; voxels holding the ignore label in
/// either file are outside both.
pub fn masks(
    pair: &Pair,
    labels: &[i64],
    threshold: f64,
    ignore: Option<i64>,
) -> Result<(Vec<u8>, Vec<u8>), String> {
    let n = pair.dims.iter().product::<usize>();
    if let (Values::Labels(Data::U8(pv)), Values::Labels(Data::U8(gv))) = (&pair.pred, &pair.gt) {
        let wanted: Vec<u8> = labels
            .iter()
            .filter_map(|&l| u8::try_from(l).ok())
            .collect();
        // Up to four labels: comparisons, which the compiler turns into 64-byte vector
        // operations.
        if (1..=4).contains(&wanted.len()) {
            let l: [u8; 4] = std::array::from_fn(|k| wanted[k.min(wanted.len() - 1)]);
            let ig = ignore.and_then(|i| u8::try_from(i).ok());
            let (ig, has_ig) = (ig.unwrap_or(0), ig.is_some());
            let is = |a: u8| (a == l[0]) | (a == l[1]) | (a == l[2]) | (a == l[3]);
            let keep = |a: u8, b: u8| !(has_ig & ((a == ig) | (b == ig)));
            let mut p = try_zeroed::<u8>(n, "the prediction's mask")?;
            let mut g = try_zeroed::<u8>(n, "the reference's mask")?;
            for (o, (&a, &b)) in p.iter_mut().zip(pv.iter().zip(gv)) {
                *o = u8::from(keep(a, b) & is(a));
            }
            for (o, (&a, &b)) in g.iter_mut().zip(pv.iter().zip(gv)) {
                *o = u8::from(keep(a, b) & is(b));
            }
            return Ok((p, g));
        }
    }
    let mut p = try_zeroed::<u8>(n, "the prediction's mask")?;
    let mut g = try_zeroed::<u8>(n, "the reference's mask")?;
    if let (Values::Labels(Data::U8(pv)), Values::Labels(Data::U8(gv))) = (&pair.pred, &pair.gt) {
        // Byte labels: one table lookup per voxel (the ignore label keeps a voxel out of both).
        const IGNORED: u8 = 2;
        let mut lut = [0u8; 256];
        for &l in labels.iter().filter(|l| (0..256).contains(*l)) {
            lut[l as usize] = 1;
        }
        if let Some(ig) = ignore.filter(|i| (0..256).contains(i)) {
            lut[ig as usize] = IGNORED;
        }
        for ((o_p, o_g), (&a, &b)) in p.iter_mut().zip(g.iter_mut()).zip(pv.iter().zip(gv)) {
            let (x, y) = (lut[a as usize], lut[b as usize]);
            let out = x == IGNORED || y == IGNORED;
            *o_p = u8::from(!out && x == 1);
            *o_g = u8::from(!out && y == 1);
        }
        return Ok((p, g));
    }
    for i in 0..n {
        if is_ignored(&pair.pred, ignore, i) || is_ignored(&pair.gt, ignore, i) {
            continue;
        }
        p[i] = u8::from(inside(&pair.pred, labels, threshold, i));
        g[i] = u8::from(inside(&pair.gt, labels, threshold, i));
    }
    Ok((p, g))
}

/// `n` zeroed values, allocated fallibly.
fn try_zeroed<T: Clone + Default>(n: usize, what: &str) -> Result<Vec<T>, String> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| format!("not enough memory for {what} ({n} values)"))?;
    v.resize(n, T::default());
    Ok(v)
}

const EMPTY_BOX: Bounds = Bounds {
    lo: [0; 3],
    hi: [0; 3],
};

/// Sizes of the components of a labelling (index 0 unused).
fn sizes_of(labels: &[u32], grid: Grid, count: u32) -> Result<Vec<u64>, String> {
    let mut sizes = vec![0u64; count as usize + 1];
    let mut boxes = vec![EMPTY_BOX; count as usize + 1];
    lesions::component_extents(labels, grid.dims, count, &mut sizes, &mut boxes)
        .map_err(|e| e.to_string())?;
    Ok(sizes)
}

/// The overlaps of two labellings, the table grown until it fits.
fn overlaps(a: &[u32], b: &[u32], hint: usize) -> Result<Vec<Overlap>, String> {
    let mut out = vec![Overlap::default(); hint.max(16)];
    loop {
        match lesions::overlaps(a, b, &mut out) {
            Ok(k) => {
                out.truncate(k);
                return Ok(out);
            }
            Err(DiceError::LengthMismatch { .. }) => {
                let n = out.len() * 2;
                out = vec![Overlap::default(); n];
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The lesion-wise values of one label or region, in the order of [`LesionOptions::columns`].
pub fn values(
    ws: &mut Workspace,
    pred: &[u8],
    reference: &[u8],
    grid: Grid,
    opts: &LesionOptions,
) -> Result<Vec<Option<f64>>, String> {
    cropped(ws, pred, reference, grid, opts.reach(), |ws, p, r, g| {
        values_in_box(ws, p, r, g, opts)
    })
}

/// [`values`] of the masks of `labels` in a pair, built only inside `bounds` (the labels' box
/// in either map, from one pass over the volume: [`crate::surfaces::label_boxes`]) grown by
/// the matching's reach: the cost follows the labels' boxes, so thousands of small labels
/// cost one pass over the volume and their own boxes, not labels × voxels. The result is the
/// one [`values`] gives on the whole masks (a box that holds the masks grown by the reach
/// changes no component, overlap, dilation or distance).
#[allow(clippy::too_many_arguments)]
pub fn values_in(
    ws: &mut Workspace,
    pair: &Pair,
    labels: &[i64],
    threshold: f64,
    ignore: Option<i64>,
    grid: Grid,
    bounds: Option<Bounds>,
    opts: &LesionOptions,
) -> Result<Vec<Option<f64>>, String> {
    in_box(
        ws,
        grid,
        bounds,
        opts.reach(),
        |p, r, b| {
            let [nx, ny, _] = grid.dims;
            let mut k = 0;
            for z in b.lo[2]..b.hi[2] {
                for y in b.lo[1]..b.hi[1] {
                    let row = (z * ny + y) * nx;
                    for i in row + b.lo[0]..row + b.hi[0] {
                        let out =
                            is_ignored(&pair.pred, ignore, i) || is_ignored(&pair.gt, ignore, i);
                        p[k] = u8::from(!out && inside(&pair.pred, labels, threshold, i));
                        r[k] = u8::from(!out && inside(&pair.gt, labels, threshold, i));
                        k += 1;
                    }
                }
            }
            Ok(())
        },
        |ws, p, r, g| values_in_box(ws, p, r, g, opts),
    )
}

/// Runs `f` on the pair cropped to the box of its foreground grown by `reach` voxels (the
/// reach of the reference's dilation): components, overlaps, dilation and surface distances
/// are the same there, and every pass over the volume shrinks to the box (a tumour's box is a
/// small part of a brain scan).
fn cropped<R>(
    ws: &mut Workspace,
    pred: &[u8],
    reference: &[u8],
    grid: Grid,
    reach: u32,
    f: impl FnOnce(&mut Workspace, &[u8], &[u8], Grid) -> Result<R, String>,
) -> Result<R, String> {
    let e = |e: DiceError| e.to_string();
    in_box(
        ws,
        grid,
        surface::bounding_box(grid, pred, reference),
        reach,
        |p, r, b| {
            surface::crop(pred, grid.dims, b, p).map_err(e)?;
            surface::crop(reference, grid.dims, b, r).map_err(e)
        },
        f,
    )
}

/// Runs `f` on the workspace's crop buffers filled by `fill` over `bounds` grown by `reach`
/// voxels (`None`, both masks empty: one background voxel, two slices on a 3-D grid, stands
/// for the volume), with the grid of that box.
fn in_box<R>(
    ws: &mut Workspace,
    grid: Grid,
    bounds: Option<Bounds>,
    reach: u32,
    fill: impl FnOnce(&mut [u8], &mut [u8], Bounds) -> Result<(), String>,
    f: impl FnOnce(&mut Workspace, &[u8], &[u8], Grid) -> Result<R, String>,
) -> Result<R, String> {
    let b = bounds
        .unwrap_or(Bounds {
            lo: [0; 3],
            hi: [1; 3],
        })
        .grown(reach as usize, grid);
    let box_grid = Grid::new(b.dims(), grid.spacing).map_err(|e| e.to_string())?;
    let (mut p, mut r) = (
        std::mem::take(&mut ws.crop_pred),
        std::mem::take(&mut ws.crop_ref),
    );
    let n = b.voxels();
    let out = (|| {
        ensure(&mut p, n, "the cropped prediction")?;
        ensure(&mut r, n, "the cropped reference")?;
        fill(&mut p[..n], &mut r[..n], b)?;
        f(ws, &p[..n], &r[..n], box_grid)
    })();
    (ws.crop_pred, ws.crop_ref) = (p, r);
    out
}

fn values_in_box(
    ws: &mut Workspace,
    pred: &[u8],
    reference: &[u8],
    grid: Grid,
    opts: &LesionOptions,
) -> Result<Vec<Option<f64>>, String> {
    let c = opts.brats.connectivity;
    let n = pred.len();
    let ml = grid.spacing.iter().product::<f64>() / 1000.0;
    // BraTS first: it leaves the prediction's components in the workspace, which the other
    // measures reuse.
    let brats_result = match opts.matching {
        Matching::Dilation => {
            let mut params = opts.brats;
            if let Some(v) = opts.min_voxels {
                // In voxels: the same threshold as a volume of v voxels (plus half a voxel, so
                // that rounding of the product cannot move a lesion across it).
                params.min_volume = (v as f64 + 0.5) * ml * 1000.0;
            }
            Some(brats_in_box(ws, pred, reference, grid, &params)?.0)
        }
        Matching::Iou => None,
    };
    ensure(&mut ws.pred_labels, n, "the component labels")?;
    ensure(&mut ws.ref_labels, n, "the component labels")?;
    ensure(
        &mut ws.union_find,
        components::scratch_len(grid.dims),
        "the union-find table",
    )?;
    let e = |e: DiceError| e.to_string();
    let np = match &brats_result {
        Some(r) => r.components,
        None => components::label(
            pred,
            grid.dims,
            c,
            &mut ws.pred_labels[..n],
            &mut ws.union_find,
        )
        .map_err(e)?,
    };
    let nr = components::label(
        reference,
        grid.dims,
        c,
        &mut ws.ref_labels[..n],
        &mut ws.union_find,
    )
    .map_err(e)?;
    let (pl, rl) = (&ws.pred_labels[..n], &ws.ref_labels[..n]);
    let (ps, rs) = (sizes_of(pl, grid, np)?, sizes_of(rl, grid, nr)?);
    // autoPET's volumes: components of one side overlapping nothing on the other.
    let mut pairs = overlaps(rl, pl, (np + nr) as usize)?;
    let detection =
        lesions::match_iou(&pairs, &rs, &ps, opts.iou_threshold).map_err(|e| e.to_string())?;
    let u = lesions::unmatched(&mut pairs, &rs, &ps);
    let fp_ml = Some(u.fp_voxels as f64 * ml);
    let fn_ml = Some(u.fn_voxels as f64 * ml);
    Ok(match opts.matching {
        Matching::Iou => {
            let n = |v: u32| Some(f64::from(v));
            vec![
                n(detection.tp),
                n(detection.fp),
                n(detection.fn_),
                detection.precision(),
                detection.recall(),
                detection.recognition_quality(),
                detection.panoptic_quality(),
                detection.segmentation_quality(),
                fp_ml,
                fn_ml,
            ]
        }
        Matching::Dilation => {
            let r = brats_result.unwrap_or_default();
            vec![
                Some(r.dice),
                Some(r.hd95),
                Some(f64::from(r.tp)),
                Some(f64::from(r.fp)),
                Some(f64::from(r.fn_)),
                fp_ml,
                fn_ml,
            ]
        }
    })
}

/// The buffers of the lesion-wise evaluation, kept across the labels and regions of a case
/// (fresh zeroed buffers for each would cost more in page faults than the evaluation itself).
#[derive(Default)]
pub struct Workspace {
    pred_labels: Vec<u32>,
    ref_labels: Vec<u32>,
    lesion_labels: Vec<u32>,
    dilated: Vec<u8>,
    union_find: Vec<u32>,
    surface: Vec<f64>,
    touching: Vec<Overlap>,
    crop_pred: Vec<u8>,
    crop_ref: Vec<u8>,
}

/// Grows `v` to `n` values (fallibly); the contents are overwritten by their users.
fn ensure<T: Clone + Default>(v: &mut Vec<T>, n: usize, what: &str) -> Result<(), String> {
    if v.len() < n {
        v.try_reserve_exact(n - v.len())
            .map_err(|_| format!("not enough memory for {what} ({n} values)"))?;
        v.resize(n, T::default());
    }
    Ok(())
}

/// dice-core's BraTS lesion-wise evaluation with every buffer it asks for.
pub fn brats(
    pred: &[u8],
    reference: &[u8],
    grid: Grid,
    params: &BratsParams,
) -> Result<lesions::LesionWise, String> {
    brats_in(&mut Workspace::default(), pred, reference, grid, params).map(|(r, _)| r)
}

/// [`brats`] in a workspace, with each lesion's result.
pub fn brats_in(
    ws: &mut Workspace,
    pred: &[u8],
    reference: &[u8],
    grid: Grid,
    params: &BratsParams,
) -> Result<(lesions::LesionWise, Vec<Lesion>), String> {
    cropped(ws, pred, reference, grid, params.dilation, |ws, p, r, g| {
        brats_in_box(ws, p, r, g, params)
    })
}

fn brats_in_box(
    ws: &mut Workspace,
    pred: &[u8],
    reference: &[u8],
    grid: Grid,
    params: &BratsParams,
) -> Result<(lesions::LesionWise, Vec<Lesion>), String> {
    let n = pred.len();
    let e = |e: DiceError| e.to_string();
    ensure(&mut ws.pred_labels, n, "the component labels")?;
    ensure(&mut ws.lesion_labels, n, "the lesion labels")?;
    ensure(&mut ws.dilated, n, "the dilated reference")?;
    ensure(
        &mut ws.union_find,
        components::scratch_len(grid.dims),
        "the union-find table",
    )?;
    let (np, nl) = {
        let mut bufs = BratsBuffers {
            pred_labels: &mut ws.pred_labels[..n],
            lesion_labels: &mut ws.lesion_labels[..n],
            dilated: &mut ws.dilated[..n],
            union_find: &mut ws.union_find,
        };
        lesions::brats_label(pred, reference, grid, params, &mut bufs).map_err(e)?
    };
    ensure(
        &mut ws.touching,
        (np + nl) as usize + 16,
        "the overlap table",
    )?;
    let (mut ps, mut pb) = (
        vec![0u64; np as usize + 1],
        vec![EMPTY_BOX; np as usize + 1],
    );
    let (mut ls, mut lb) = (
        vec![0u64; nl as usize + 1],
        vec![EMPTY_BOX; nl as usize + 1],
    );
    let mut les = vec![Lesion::default(); nl as usize];
    loop {
        let (surface_len, touching_len) = (ws.surface.len(), ws.touching.len());
        let mut t = BratsTables {
            touching: &mut ws.touching,
            pred_sizes: &mut ps,
            pred_boxes: &mut pb,
            lesion_sizes: &mut ls,
            lesion_boxes: &mut lb,
            lesions: &mut les,
            surface: &mut ws.surface,
        };
        let labels = (&ws.pred_labels[..n], &ws.lesion_labels[..n]);
        match lesions::brats_scores(pred, reference, grid, params, labels, (np, nl), &mut t) {
            Ok(r) => return Ok((r, les)),
            Err(DiceError::LengthMismatch {
                expected, found, ..
            }) if found == surface_len && found != touching_len => {
                ensure(&mut ws.surface, expected, "the distance transform")?;
            }
            Err(DiceError::LengthMismatch { found, .. }) if found == touching_len => {
                ensure(&mut ws.touching, 2 * touching_len, "the overlap table")?;
            }
            Err(err) => return Err(err.to_string()),
        }
    }
}

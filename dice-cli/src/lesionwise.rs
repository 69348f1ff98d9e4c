//! Regions (unions of labels) and lesion-wise metrics of a prepared pair, through dice-core's
//! `components` and `lesions` modules; this module only builds masks, allocates the buffers
//! dice-core asks for, and names the columns.

use dice_core::components::{self, Connectivity};
use dice_core::lesions::{self, BratsBuffers, BratsParams, BratsTables, Lesion, Overlap};
use dice_core::surface::{Bounds, Grid};
use dice_core::{DiceError, Label};

use crate::eval::Pair;
use crate::semantics::Values;

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
    let mut p = try_zeroed::<u8>(n, "the prediction's mask")?;
    let mut g = try_zeroed::<u8>(n, "the reference's mask")?;
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

/// Components and their sizes of one mask.
struct Labelled {
    labels: Vec<u32>,
    count: u32,
    sizes: Vec<u64>,
}

fn label(mask: &[u8], grid: Grid, c: Connectivity, uf: &mut [u32]) -> Result<Labelled, String> {
    let mut labels = try_zeroed::<u32>(mask.len(), "the component labels")?;
    let count =
        components::label(mask, grid.dims, c, &mut labels, uf).map_err(|e| e.to_string())?;
    let mut sizes = vec![0u64; count as usize + 1];
    let mut boxes = vec![EMPTY_BOX; count as usize + 1];
    lesions::component_extents(&labels, grid.dims, count, &mut sizes, &mut boxes)
        .map_err(|e| e.to_string())?;
    Ok(Labelled {
        labels,
        count,
        sizes,
    })
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
    pred: &[u8],
    reference: &[u8],
    grid: Grid,
    opts: &LesionOptions,
) -> Result<Vec<Option<f64>>, String> {
    let c = opts.brats.connectivity;
    let mut uf = try_zeroed::<u32>(components::scratch_len(grid.dims), "the union-find table")?;
    let ml = grid.spacing.iter().product::<f64>() / 1000.0;
    // autoPET's volumes: components of one side overlapping nothing on the other.
    let lp = label(pred, grid, c, &mut uf)?;
    let lr = label(reference, grid, c, &mut uf)?;
    let mut pairs = overlaps(&lr.labels, &lp.labels, (lp.count + lr.count) as usize)?;
    let detection = lesions::match_iou(&pairs, &lr.sizes, &lp.sizes, opts.iou_threshold)
        .map_err(|e| e.to_string())?;
    let u = lesions::unmatched(&mut pairs, &lr.sizes, &lp.sizes);
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
            let mut params = opts.brats;
            if let Some(v) = opts.min_voxels {
                // In voxels: the same threshold as a volume of v voxels (plus half a voxel, so
                // that rounding of the product cannot move a lesion across it).
                params.min_volume = (v as f64 + 0.5) * ml * 1000.0;
            }
            let r = brats(pred, reference, grid, &params)?;
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

/// dice-core's BraTS lesion-wise evaluation with every buffer it asks for.
pub fn brats(
    pred: &[u8],
    reference: &[u8],
    grid: Grid,
    params: &BratsParams,
) -> Result<lesions::LesionWise, String> {
    brats_with_lesions(pred, reference, grid, params).map(|(r, _)| r)
}

/// [`brats`] with each lesion's result.
pub fn brats_with_lesions(
    pred: &[u8],
    reference: &[u8],
    grid: Grid,
    params: &BratsParams,
) -> Result<(lesions::LesionWise, Vec<Lesion>), String> {
    let n = pred.len();
    let e = |e: DiceError| e.to_string();
    let mut pl = try_zeroed::<u32>(n, "the component labels")?;
    let mut ll = try_zeroed::<u32>(n, "the lesion labels")?;
    let mut dil = try_zeroed::<u8>(n, "the dilated reference")?;
    let mut ds = try_zeroed::<u8>(n, "the dilation buffer")?;
    let mut uf = try_zeroed::<u32>(components::scratch_len(grid.dims), "the union-find table")?;
    let (np, nl) = {
        let mut bufs = BratsBuffers {
            pred_labels: &mut pl,
            lesion_labels: &mut ll,
            dilated: &mut dil,
            dilation_scratch: &mut ds,
            union_find: &mut uf,
        };
        lesions::brats_label(pred, reference, grid, params, &mut bufs).map_err(e)?
    };
    // The labels hold what the next step needs: free the dilation's buffers.
    drop((dil, ds, uf));
    let mut touching = vec![Overlap::default(); (np + nl) as usize + 16];
    let mut surface: Vec<f64> = Vec::new();
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
        let mut t = BratsTables {
            touching: &mut touching,
            pred_sizes: &mut ps,
            pred_boxes: &mut pb,
            lesion_sizes: &mut ls,
            lesion_boxes: &mut lb,
            lesions: &mut les,
            surface: &mut surface,
        };
        match lesions::brats_scores(pred, reference, grid, params, (&pl, &ll), (np, nl), &mut t) {
            Ok(r) => return Ok((r, les)),
            Err(DiceError::LengthMismatch {
                expected, found, ..
            }) if found == surface.len() => {
                surface = try_zeroed::<f64>(expected, "the distance transform")?;
            }
            Err(DiceError::LengthMismatch { found, .. }) if found == touching.len() => {
                touching = vec![Overlap::default(); 2 * touching.len()];
            }
            Err(err) => return Err(err.to_string()),
        }
    }
}

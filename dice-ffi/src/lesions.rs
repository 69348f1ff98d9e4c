//! Connected components, BraTS lesion-wise Dice and HD95, IoU matching with panoptic quality
//! and unmatched (autoPET) volumes. The buffers dice-core asks for are allocated here,
//! fallibly (::DICE_STATUS_OUT_OF_MEMORY, never an abort), and released before returning.

use dice_core::components::{self, Connectivity};
use dice_core::lesions::{self, BratsBuffers, BratsParams, BratsTables, Lesion, Overlap};
use dice_core::surface::{Bounds, Grid};
use dice_core::DiceError;

use crate::enums::*;
use crate::extensible::*;
use crate::panic::*;
use crate::status::*;
use crate::surface::DiceGrid;

/// Which neighbours connect the voxels of a component.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceConnectivity {
    /// 2-D, shared edges (grids with one slice only).
    Four = 4,
    /// 2-D, shared edges or corners (grids with one slice only).
    Eight = 8,
    /// 3-D, shared faces.
    Six = 6,
    /// 3-D, shared faces or edges.
    Eighteen = 18,
    /// 3-D, shared faces, edges or corners (cc3d's and BraTS's default).
    TwentySix = 26,
}

from_i32!(DiceConnectivity {
    Four,
    Eight,
    Six,
    Eighteen,
    TwentySix
});

impl DiceConnectivity {
    fn core(self) -> Connectivity {
        match self {
            DiceConnectivity::Four => Connectivity::Four,
            DiceConnectivity::Eight => Connectivity::Eight,
            DiceConnectivity::Six => Connectivity::Six,
            DiceConnectivity::Eighteen => Connectivity::Eighteen,
            DiceConnectivity::TwentySix => Connectivity::TwentySix,
        }
    }
}

/// The BraTS 2023 challenge whose constants dice_brats_params_default() writes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceBratsChallenge {
    /// GLI, SSA and PED: dilation 3, 50 mm³.
    Gli = 0,
    /// MEN: dilation 1, 50 mm³.
    Men = 1,
    /// MET: dilation 1, 2 mm³.
    Met = 2,
}

from_i32!(DiceBratsChallenge { Gli, Men, Met });

/// The constants of the BraTS lesion-wise metrics.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DiceBratsParams {
    /// `sizeof(DiceBratsParams)` as the caller was compiled, set by
    /// `dice_brats_params_default(challenge, &p, sizeof p)` (see the stability policy).
    pub struct_size: usize,
    /// Dilation steps of the reference (18-neighbourhood) before lesions are grouped.
    pub dilation: u32,
    /// Lesions of at most this volume (mm³) leave the score.
    pub min_volume: f64,
    /// HD95 of a missed lesion or a false positive (mm; 374 in BraTS).
    pub hd_penalty: f64,
    /// The Hausdorff percentile (95).
    pub percentile: f64,
    /// A ::DiceConnectivity of the components (26).
    pub connectivity: i32,
}

crate::extensible::extensible!(DiceBratsParams, std::mem::size_of::<DiceBratsParams>());

impl DiceBratsParams {
    /// GLI's constants.
    fn defaults() -> DiceBratsParams {
        DiceBratsParams::from_core(&BratsParams::GLI)
    }

    fn from_core(p: &BratsParams) -> DiceBratsParams {
        DiceBratsParams {
            struct_size: std::mem::size_of::<DiceBratsParams>(),
            dilation: p.dilation,
            min_volume: p.min_volume,
            hd_penalty: p.hd_penalty,
            percentile: p.percentile,
            connectivity: DiceConnectivity::TwentySix as i32,
        }
    }

    fn core(&self) -> FfiResult<BratsParams> {
        Ok(BratsParams {
            dilation: self.dilation,
            min_volume: self.min_volume,
            hd_penalty: self.hd_penalty,
            percentile: self.percentile,
            connectivity: DiceConnectivity::from_i32(self.connectivity, "connectivity")?.core(),
        })
    }
}

/// The lesion-wise result of one region of one case.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct DiceLesionWise {
    /// `Σ Dice / (lesions + FP)` over lesions above the volume threshold (1 with nothing).
    pub dice: f64,
    /// `(Σ HD95 + FP·penalty)/(lesions + FP)` (0 with nothing).
    pub hd95: f64,
    /// Counted lesions with a match.
    pub tp: u32,
    /// Predicted components touching no lesion.
    pub fp: u32,
    /// Counted lesions without a match.
    pub fn_: u32,
    /// Lesions of any volume.
    pub lesions: u32,
    /// Predicted components.
    pub components: u32,
}

/// One reference lesion of the BraTS evaluation.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct DiceLesion {
    /// Its number (1..).
    pub id: u32,
    /// Predicted components matched.
    pub matched: u32,
    /// Reference voxels.
    pub voxels: u64,
    /// Voxels of the matched components.
    pub pred_voxels: u64,
    /// Lesion voxels inside them.
    pub overlap: u64,
    /// Volume (mm³).
    pub volume: f64,
    /// Dice with the matched components (0 without a match).
    pub dice: f64,
    /// HD95 (mm), or the penalty without a match.
    pub hd95: f64,
    /// 1 when above the volume threshold (it counts in the score).
    pub counted: u8,
}

/// Detection by IoU matching and the volumes of unmatched components.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct DiceDetection {
    /// Matched pairs.
    pub tp: u32,
    /// Predicted components without a partner.
    pub fp: u32,
    /// Reference components without a partner.
    pub fn_: u32,
    /// Panoptic quality `SQ·RQ` (NaN when both masks are empty).
    pub pq: f64,
    /// Segmentation quality, the mean IoU of matched pairs (NaN without a match).
    pub sq: f64,
    /// Recognition quality, the F1 score (NaN when both masks are empty).
    pub rq: f64,
    /// Voxels of predicted components overlapping no reference voxel.
    pub fp_voxels: u64,
    /// Voxels of reference components overlapping no predicted voxel.
    pub fn_voxels: u64,
}

/// Writes the constants of a BraTS 2023 challenge (a ::DiceBratsChallenge) into `*out`.
/// `size` is `sizeof *out` as the caller was compiled; `out->struct_size` is set to it (see the
/// stability policy).
///
/// # Safety
/// `out` must be NULL or valid for writing `size` bytes.
#[no_mangle]
pub unsafe extern "C" fn dice_brats_params_default(
    challenge: i32,
    out: *mut DiceBratsParams,
    size: usize,
) -> DiceStatus {
    boundary(|| {
        let p = match DiceBratsChallenge::from_i32(challenge, "challenge")? {
            DiceBratsChallenge::Gli => BratsParams::GLI,
            DiceBratsChallenge::Men => BratsParams::MEN,
            DiceBratsChallenge::Met => BratsParams::MET,
        };
        // SAFETY: the caller's promise on `out`.
        unsafe { write_defaults(out, size, DiceBratsParams::from_core(&p), "out") }
    })
}

/// The union–find scratch (in `uint32_t`) dice_connected_components() needs for `grid`.
///
/// # Safety
/// `out` must be NULL or valid for writing a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn dice_components_scratch_len(
    grid: DiceGrid,
    out: *mut usize,
) -> DiceStatus {
    // SAFETY: the caller's promise on `out`.
    boundary(|| unsafe { write(out, components::scratch_len(grid.dims), "out") })
}

/// Labels the connected components of `mask` (`len` bytes, non-zero = foreground, x fastest)
/// into `labels` (`len` values: 0 background, `1..=*count` in raster order of each
/// component's first voxel, as scipy and cc3d number them), with `scratch` of
/// dice_components_scratch_len() entries.
///
/// # Safety
/// `mask` valid for `len` bytes, `labels` writable for `len` values, `scratch` for
/// `scratch_len`, `count` for one.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn dice_connected_components(
    mask: *const u8,
    len: usize,
    grid: DiceGrid,
    connectivity: i32,
    labels: *mut u32,
    scratch: *mut u32,
    scratch_len: usize,
    count: *mut u32,
) -> DiceStatus {
    boundary(|| {
        let c = DiceConnectivity::from_i32(connectivity, "connectivity")?.core();
        check_ptr(count, 1, "count")?;
        // SAFETY: the caller's promises, checked before use.
        let m = unsafe { slice(mask, len, "mask")? };
        let out = unsafe { slice_mut(labels, len, "labels")? };
        let s = unsafe { slice_mut(scratch, scratch_len, "scratch")? };
        let n = components::label(m, grid.dims, c, out, s)?;
        unsafe { write(count, n, "count") }
    })
}

/// Checks two masks against a grid.
fn masks<'a>(
    pred: *const u8,
    target: *const u8,
    len: usize,
    g: Grid,
) -> FfiResult<(&'a [u8], &'a [u8])> {
    let n = g.dims.iter().product::<usize>();
    if len != n {
        return Err(DiceError::LengthMismatch {
            operand: dice_core::Operand::Target,
            expected: n,
            found: len,
        }
        .into());
    }
    // SAFETY: the caller's promise that both hold `len` bytes (checked for NULL and alignment).
    Ok(unsafe { (slice(pred, len, "pred")?, slice(target, len, "target")?) })
}

/// The BraTS lesion-wise Dice and HD95 of a prediction mask against a reference mask
/// (`len` bytes each, one region: e.g. labels 1, 2, 3 for the whole tumour) into `*out`, and
/// each lesion into `lesions` (NULL, or `lesions_cap` entries; `*lesions_len` receives the
/// number of lesions, which may exceed the capacity: only the first `lesions_cap` are written).
///
/// # Safety
/// `params`, `out` valid; `pred`, `target` for `len` bytes; `lesions` writable for
/// `lesions_cap` entries unless NULL; `lesions_len` NULL or writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn dice_lesion_wise(
    params: *const DiceBratsParams,
    grid: DiceGrid,
    pred: *const u8,
    target: *const u8,
    len: usize,
    out: *mut DiceLesionWise,
    lesions: *mut DiceLesion,
    lesions_cap: usize,
    lesions_len: *mut usize,
) -> DiceStatus {
    boundary(|| {
        // SAFETY: the caller's promises, checked before use.
        let p = unsafe { read_in(params, "params")? }.core()?;
        let g = grid.core()?;
        check_ptr(out, 1, "out")?;
        let (pm, tm) = masks(pred, target, len, g)?;
        let les_out = unsafe { slice_mut(lesions, lesions_cap, "lesions")? };
        let (r, all) = brats(pm, tm, g, &p)?;
        for (o, l) in les_out.iter_mut().zip(&all) {
            *o = DiceLesion {
                id: l.id,
                matched: l.matched,
                voxels: l.voxels,
                pred_voxels: l.pred_voxels,
                overlap: l.overlap,
                volume: l.volume,
                dice: l.dice,
                hd95: l.hd95,
                counted: u8::from(l.counted),
            };
        }
        if !lesions_len.is_null() {
            unsafe { write(lesions_len, all.len(), "lesions_len")? };
        }
        unsafe {
            write(
                out,
                DiceLesionWise {
                    dice: r.dice,
                    hd95: r.hd95,
                    tp: r.tp,
                    fp: r.fp,
                    fn_: r.fn_,
                    lesions: r.lesions,
                    components: r.components,
                },
                "out",
            )
        }
    })
}

const NO_BOX: Bounds = Bounds {
    lo: [0; 3],
    hi: [0; 3],
};

/// dice-core's two BraTS steps with fallibly allocated buffers, grown when it asks.
fn brats(
    pred: &[u8],
    target: &[u8],
    g: Grid,
    p: &BratsParams,
) -> FfiResult<(lesions::LesionWise, Vec<Lesion>)> {
    let n = pred.len();
    let mut pl = try_vec(n, 0u32, "the component labels")?;
    let mut ll = try_vec(n, 0u32, "the lesion labels")?;
    let mut dil = try_vec(n, 0u8, "the dilated reference")?;
    let mut uf = try_vec(
        components::scratch_len(g.dims),
        0u32,
        "the union-find table",
    )?;
    let (np, nl) = lesions::brats_label(
        pred,
        target,
        g,
        p,
        &mut BratsBuffers {
            pred_labels: &mut pl,
            lesion_labels: &mut ll,
            dilated: &mut dil,
            union_find: &mut uf,
        },
    )?;
    drop((dil, uf));
    let mut touching = try_vec(
        (np + nl) as usize + 16,
        Overlap::default(),
        "the overlap table",
    )?;
    let mut ps = try_vec(np as usize + 1, 0u64, "the component sizes")?;
    let mut pb = try_vec(np as usize + 1, NO_BOX, "the component boxes")?;
    let mut ls = try_vec(nl as usize + 1, 0u64, "the lesion sizes")?;
    let mut lb = try_vec(nl as usize + 1, NO_BOX, "the lesion boxes")?;
    let mut les = try_vec(nl as usize, Lesion::default(), "the lesions")?;
    let mut surface: Vec<f64> = Vec::new();
    loop {
        let (sl, tl) = (surface.len(), touching.len());
        let mut t = BratsTables {
            touching: &mut touching,
            pred_sizes: &mut ps,
            pred_boxes: &mut pb,
            lesion_sizes: &mut ls,
            lesion_boxes: &mut lb,
            lesions: &mut les,
            surface: &mut surface,
        };
        match lesions::brats_scores(pred, target, g, p, (&pl, &ll), (np, nl), &mut t) {
            Ok(r) => return Ok((r, les)),
            Err(DiceError::LengthMismatch {
                expected, found, ..
            }) if found == sl && found != tl => {
                surface = try_vec(expected, 0.0, "the distance transform")?;
            }
            Err(DiceError::LengthMismatch { found, .. }) if found == tl => {
                touching = try_vec(2 * tl, Overlap::default(), "the overlap table")?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// IoU matching of the two masks' components (`threshold` in [0.5, 1)) and the voxels of
/// components overlapping nothing on the other side (autoPET's false-positive and
/// false-negative volumes: multiply by the voxel volume) into `*out`.
///
/// # Safety
/// `pred`, `target` valid for `len` bytes; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn dice_lesion_detection(
    grid: DiceGrid,
    pred: *const u8,
    target: *const u8,
    len: usize,
    connectivity: i32,
    threshold: f64,
    out: *mut DiceDetection,
) -> DiceStatus {
    boundary(|| {
        let c = DiceConnectivity::from_i32(connectivity, "connectivity")?.core();
        let g = grid.core()?;
        check_ptr(out, 1, "out")?;
        let (pm, tm) = masks(pred, target, len, g)?;
        let n = pm.len();
        let mut uf = try_vec(
            components::scratch_len(g.dims),
            0u32,
            "the union-find table",
        )?;
        let mut pl = try_vec(n, 0u32, "the component labels")?;
        let mut tl = try_vec(n, 0u32, "the component labels")?;
        let np = components::label(pm, g.dims, c, &mut pl, &mut uf)?;
        let nt = components::label(tm, g.dims, c, &mut tl, &mut uf)?;
        drop(uf);
        let sizes = |labels: &[u32], count: u32| -> FfiResult<Vec<u64>> {
            let mut s = try_vec(count as usize + 1, 0u64, "the component sizes")?;
            let mut b = try_vec(count as usize + 1, NO_BOX, "the component boxes")?;
            lesions::component_extents(labels, g.dims, count, &mut s, &mut b)?;
            Ok(s)
        };
        let (ps, ts) = (sizes(&pl, np)?, sizes(&tl, nt)?);
        let mut pairs = try_vec(
            (np + nt) as usize + 16,
            Overlap::default(),
            "the overlap table",
        )?;
        let k = loop {
            match lesions::overlaps(&tl, &pl, &mut pairs) {
                Ok(k) => break k,
                Err(DiceError::LengthMismatch { .. }) => {
                    let more = 2 * pairs.len();
                    pairs = try_vec(more, Overlap::default(), "the overlap table")?;
                }
                Err(e) => return Err(e.into()),
            }
        };
        let d = lesions::match_iou(&pairs[..k], &ts, &ps, threshold)?;
        let u = lesions::unmatched(&mut pairs[..k], &ts, &ps);
        let nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
        // SAFETY: checked above.
        unsafe {
            write(
                out,
                DiceDetection {
                    tp: d.tp,
                    fp: d.fp,
                    fn_: d.fn_,
                    pq: nan(d.panoptic_quality()),
                    sq: nan(d.segmentation_quality()),
                    rq: nan(d.recognition_quality()),
                    fp_voxels: u.fp_voxels,
                    fn_voxels: u.fn_voxels,
                },
                "out",
            )
        }
    })
}

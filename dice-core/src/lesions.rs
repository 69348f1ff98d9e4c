//! Lesion-wise evaluation: binary dilation, component overlaps, the BraTS 2023 lesion-wise Dice
//! and HD95, IoU matching with panoptic quality (panoptica, MetricsReloaded), and the
//! false-positive and false-negative volumes of autoPET. Every buffer is the caller's.
//!
//! ## The BraTS 2023–2026 definition (`rachitsaluja/BraTS-2023-Metrics`, `metrics.py`)
//! For one region (whole tumour = labels 1, 2, 3; tumour core = 1, 3; enhancing = 3):
//! 1. the reference is dilated `dilation` times with the 18-neighbourhood (scipy's
//!    `generate_binary_structure(3, 2)`), and its 26-connected components group the reference
//!    voxels into *lesions* (nearby reference components form one lesion);
//! 2. the prediction's 26-connected components that touch a lesion's dilated region match it
//!    (a component may match several lesions); the others are false positives;
//! 3. each lesion's Dice and HD95 (DeepMind's robust Hausdorff, surfels with areas, the max of
//!    both directed 95th percentiles) are computed between the lesion and the union of its
//!    matched components; a lesion without a match scores Dice 0 and HD95 = `hd_penalty`;
//! 4. lesions of `volume ≤ min_volume` (mm³, voxels × the voxel volume) leave the score and the
//!    counts (their matched components are not false positives);
//! 5. `lesion-wise Dice = Σ Dice / (lesions + FP)`, `HD95 = (Σ HD95 + FP·penalty)/(lesions + FP)`;
//!    with neither lesions nor false positives, Dice 1 and HD95 0.
//!
//! | challenge (BraTS 2023) | `dilation` | `min_volume` (mm³) |
//! | --- | --- | --- |
//! | GLI, SSA, PED | 3 | 50 |
//! | MEN | 1 | 50 |
//! | MET | 1 | 2 |
//!
//! The penalty is 374 mm (the diagonal of the 240×240×155 BraTS grid), as in the official code.
//! The official code dilates each lesion on its own for step 2; the dilation of one lesion lies
//! inside its dilated component, and a component touching that component's dilated region
//! touches the lesion's own dilation exactly when the two regions meet, which they do because
//! both are the same set: the dilated component *is* the union of its lesions' dilations, and
//! only one lesion lives in each. So one dilation of the whole reference is enough.
//!
//! ## IoU matching (panoptica, MetricsReloaded)
//! A reference and a predicted component match when their IoU exceeds `threshold` (0.5 by
//! default). With a threshold ≥ 0.5 a component has at most one partner, so the matching is
//! unique without any assignment step. Detection TP/FP/FN follow; recognition quality
//! `RQ = TP/(TP + FP/2 + FN/2)` (the F1 score), segmentation quality `SQ` = the mean IoU of the
//! matched pairs, panoptic quality `PQ = SQ·RQ`.

use crate::components::{self, grid_len, Connectivity};
use crate::error::{invalid, DiceError, Operand, Result};
use crate::surface::{self, Bounds, Elements, Grid, PercentileDefinition, Surfaces};

/// Binary dilation of `mask` by `iterations` steps of the `connectivity` neighbourhood
/// (scipy's `binary_dilation(mask, generate_binary_structure(3, r), iterations)`, r = 1, 2, 3
/// for 6, 18, 26; voxels outside the grid count as background) into `out` (0 or 1).
/// `iterations = 0` copies.
///
/// Each step spreads only from the voxels the previous step added (`D_i = D_{i−1} ∪
/// (new_{i−1} ⊕ S)`, since the neighbourhood holds its centre), marked in `out` itself with
/// alternating values, so the cost follows the dilated region's growth, not its volume times
/// the steps, and no second buffer is needed.
pub fn dilate(
    mask: &[u8],
    dims: [usize; 3],
    iterations: u32,
    connectivity: Connectivity,
    out: &mut [u8],
) -> Result<()> {
    let n = grid_len(dims)?;
    crate::layout::check_len(Operand::Target, n, mask.len())?;
    crate::layout::check_len(Operand::Output, n, out.len())?;
    // 0 background, 1 settled, 2 or 3 added by the previous step (the frontier).
    for (o, &m) in out.iter_mut().zip(mask) {
        *o = if m != 0 { 2 } else { 0 };
    }
    let offsets = neighbourhood(connectivity);
    let [nx, ny, nz] = dims;
    for step in 0..iterations {
        let (front, added) = if step % 2 == 0 { (2u8, 3u8) } else { (3, 2) };
        let mut grew = false;
        for z in 0..nz {
            for y in 0..ny {
                let row = nx * (y + ny * z);
                for x0 in (0..nx).step_by(SKIP) {
                    let x1 = (x0 + SKIP).min(nx);
                    if !out[row + x0..row + x1].contains(&front) {
                        continue;
                    }
                    for x in x0..x1 {
                        if out[row + x] != front {
                            continue;
                        }
                        spread(out, dims, &offsets, [x, y, z], added, &mut grew);
                    }
                }
            }
        }
        if !grew {
            break;
        }
    }
    for o in out.iter_mut() {
        *o = u8::from(*o != 0);
    }
    Ok(())
}

/// Settles frontier voxel `c` and marks its background neighbours `added`.
#[inline(always)]
fn spread(
    out: &mut [u8],
    dims: [usize; 3],
    offsets: &[Option<[isize; 3]>; 26],
    c: [usize; 3],
    added: u8,
    grew: &mut bool,
) {
    let [nx, ny, nz] = dims;
    let [x, y, z] = c;
    out[x + nx * (y + ny * z)] = 1;
    for d in offsets.iter().flatten() {
        let (xx, yy, zz) = (x as isize + d[0], y as isize + d[1], z as isize + d[2]);
        if xx < 0 || yy < 0 || zz < 0 || xx >= nx as isize || yy >= ny as isize || zz >= nz as isize
        {
            continue;
        }
        let j = xx as usize + nx * (yy as usize + ny * zz as usize);
        if out[j] == 0 {
            out[j] = added;
            *grew = true;
        }
    }
}

/// The offsets of a neighbourhood (at most 26).
fn neighbourhood(c: Connectivity) -> [Option<[isize; 3]>; 26] {
    let mut out = [None; 26];
    let mut k = 0;
    for dz in -1..=1isize {
        for dy in -1..=1isize {
            for dx in -1..=1isize {
                if (dx, dy, dz) != (0, 0, 0) && c.touches([dx, dy, dz]) {
                    out[k] = Some([dx, dy, dz]);
                    k += 1;
                }
            }
        }
    }
    out
}

/// Voxels and bounding box of each component of a labelling: `sizes[l]` and `boxes[l]` for
/// labels `1..=count` (index 0 collects nothing). Both need `count + 1` entries; a label above
/// `count` is an error.
pub fn component_extents(
    labels: &[u32],
    dims: [usize; 3],
    count: u32,
    sizes: &mut [u64],
    boxes: &mut [Bounds],
) -> Result<()> {
    let n = grid_len(dims)?;
    crate::layout::check_len(Operand::Labels, n, labels.len())?;
    let need = count as usize + 1;
    crate::layout::check_len(Operand::Output, need, sizes.len())?;
    crate::layout::check_len(Operand::Output, need, boxes.len())?;
    sizes.fill(0);
    boxes.fill(Bounds {
        lo: [usize::MAX; 3],
        hi: [0; 3],
    });
    let [nx, ny, nz] = dims;
    for z in 0..nz {
        for y in 0..ny {
            let row = nx * (y + ny * z);
            let r = &labels[row..row + nx];
            let mut x0 = 0;
            while x0 < nx {
                let x1 = (x0 + SKIP).min(nx);
                if r[x0..x1].iter().all(|&v| v == 0) {
                    x0 = x1;
                    continue;
                }
                for (x, &l) in r.iter().enumerate().take(x1).skip(x0) {
                    if l == 0 {
                        continue;
                    }
                    if l > count {
                        return Err(DiceError::LabelOutOfRange {
                            operand: Operand::Labels,
                            index: row + x,
                            label: i64::from(l),
                            classes: need,
                        });
                    }
                    grow(&mut boxes[l as usize], [x, y, z]);
                    sizes[l as usize] += 1;
                }
                x0 = x1;
            }
        }
    }
    Ok(())
}

/// Extends a box to hold voxel `c`.
fn grow(b: &mut Bounds, c: [usize; 3]) {
    for ((lo, hi), v) in b.lo.iter_mut().zip(b.hi.iter_mut()).zip(c) {
        *lo = (*lo).min(v);
        *hi = (*hi).max(v + 1);
    }
}

/// One overlap between two labellings: labels `a` and `b` share `voxels` voxels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Overlap {
    /// Label in the first labelling.
    pub a: u32,
    /// Label in the second labelling.
    pub b: u32,
    /// Voxels where both hold these labels.
    pub voxels: u64,
}

/// Every pair of non-zero labels that share voxels, with the number of shared voxels, sorted by
/// `(a, b)`, into `out`; returns how many. When `out` is too small the error says how many
/// entries were needed at least: call again with more (the count is exact once it fits).
pub fn overlaps(a: &[u32], b: &[u32], out: &mut [Overlap]) -> Result<usize> {
    crate::layout::check_len(Operand::Labels, a.len(), b.len())?;
    let mut t = OverlapTable::new(out);
    for (ca, cb) in a.chunks(SKIP).zip(b.chunks(SKIP)) {
        if ca.iter().all(|&v| v == 0) || cb.iter().all(|&v| v == 0) {
            continue;
        }
        for (&x, &y) in ca.iter().zip(cb) {
            if x != 0 && y != 0 {
                t.push(x, y)?;
            }
        }
    }
    Ok(t.finish())
}

/// Voxels checked at once for being all background (a vectorised test that lets the passes
/// skip the empty bulk of a volume).
const SKIP: usize = 64;

/// Pairs collected in a caller's buffer: runs of the same pair add up in place, and a full
/// buffer is sorted and merged before it is declared too small.
struct OverlapTable<'o> {
    out: &'o mut [Overlap],
    len: usize,
    last: Option<(u32, u32)>,
}

impl<'o> OverlapTable<'o> {
    fn new(out: &'o mut [Overlap]) -> Self {
        OverlapTable {
            out,
            len: 0,
            last: None,
        }
    }

    #[inline]
    fn push(&mut self, a: u32, b: u32) -> Result<()> {
        if self.last == Some((a, b)) {
            self.out[self.len - 1].voxels += 1;
            return Ok(());
        }
        if self.len == self.out.len() {
            self.len = compact(&mut self.out[..self.len]);
            self.last = None;
            if self.len == self.out.len() {
                return Err(DiceError::LengthMismatch {
                    operand: Operand::Output,
                    expected: self.out.len() + 1,
                    found: self.out.len(),
                });
            }
        }
        self.out[self.len] = Overlap { a, b, voxels: 1 };
        self.len += 1;
        self.last = Some((a, b));
        Ok(())
    }

    fn finish(self) -> usize {
        compact(&mut self.out[..self.len])
    }
}

/// Sorts and merges equal pairs (adding their voxels); returns the new length.
fn compact(v: &mut [Overlap]) -> usize {
    v.sort_unstable_by_key(|o| (o.a, o.b));
    let mut w = 0usize;
    for r in 0..v.len() {
        if w > 0 && v[w - 1].a == v[r].a && v[w - 1].b == v[r].b {
            v[w - 1].voxels += v[r].voxels;
        } else {
            v[w] = v[r];
            w += 1;
        }
    }
    w
}

/// The constants of the BraTS lesion-wise metrics (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BratsParams {
    /// Dilation steps of the reference (18-neighbourhood).
    pub dilation: u32,
    /// Lesions of at most this volume (mm³) leave the score.
    pub min_volume: f64,
    /// HD95 of a missed lesion or a false positive (mm).
    pub hd_penalty: f64,
    /// The Hausdorff percentile (95).
    pub percentile: f64,
    /// Connectivity of the components (26 in the official code).
    pub connectivity: Connectivity,
}

impl BratsParams {
    /// BraTS-GLI, -SSA and -PED 2023: dilation 3, 50 mm³.
    pub const GLI: BratsParams = BratsParams {
        dilation: 3,
        min_volume: 50.0,
        hd_penalty: 374.0,
        percentile: 95.0,
        connectivity: Connectivity::TwentySix,
    };
    /// BraTS-MEN 2023: dilation 1, 50 mm³.
    pub const MEN: BratsParams = BratsParams {
        dilation: 1,
        ..BratsParams::GLI
    };
    /// BraTS-MET 2023: dilation 1, 2 mm³.
    pub const MET: BratsParams = BratsParams {
        dilation: 1,
        min_volume: 2.0,
        ..BratsParams::GLI
    };

    fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("min_volume", self.min_volume),
            ("hd_penalty", self.hd_penalty),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(invalid(name, v, "must be finite and >= 0"));
            }
        }
        if !(self.percentile > 0.0 && self.percentile <= 100.0) {
            return Err(invalid(
                "percentile",
                self.percentile,
                "must be in (0, 100]",
            ));
        }
        Ok(())
    }
}

/// One reference lesion of the BraTS evaluation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Lesion {
    /// Its number (a component of the dilated reference, `1..`).
    pub id: u32,
    /// Reference voxels.
    pub voxels: u64,
    /// Volume (mm³).
    pub volume: f64,
    /// Predicted components matched.
    pub matched: u32,
    /// Voxels of the matched components.
    pub pred_voxels: u64,
    /// Voxels of the lesion inside the matched components.
    pub overlap: u64,
    /// Dice between the lesion and its matched components (0 without a match).
    pub dice: f64,
    /// Their HD95 (mm), or the penalty without a match.
    pub hd95: f64,
    /// Above the volume threshold: counts in the score.
    pub counted: bool,
}

/// The BraTS lesion-wise result of one region of one case.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LesionWise {
    /// `Σ Dice / (lesions + FP)` over counted lesions (1 when there is nothing).
    pub dice: f64,
    /// `(Σ HD95 + FP·penalty)/(lesions + FP)` (0 when there is nothing).
    pub hd95: f64,
    /// Counted lesions with a match.
    pub tp: u32,
    /// Counted lesions without one.
    pub fn_: u32,
    /// Predicted components touching no lesion.
    pub fp: u32,
    /// Lesions of any volume.
    pub lesions: u32,
    /// Predicted components.
    pub components: u32,
}

/// The buffers of [`brats_label`], all the caller's: three of one entry per voxel, the union–find
/// scratch of [`components::scratch_len`].
pub struct BratsBuffers<'a> {
    /// Receives the prediction's components.
    pub pred_labels: &'a mut [u32],
    /// Receives the lesion numbers (components of the dilated reference) on the dilated region.
    pub lesion_labels: &'a mut [u32],
    /// The dilated reference.
    pub dilated: &'a mut [u8],
    /// Union–find scratch ([`components::scratch_len`]).
    pub union_find: &'a mut [u32],
}

/// Step 1 of the BraTS evaluation: the prediction's components and the lesions (components of the
/// dilated reference); returns `(components, lesions)`. Size the per-component buffers of
/// [`brats_scores`] from these.
pub fn brats_label(
    pred: &[u8],
    reference: &[u8],
    grid: Grid,
    params: &BratsParams,
    bufs: &mut BratsBuffers<'_>,
) -> Result<(u32, u32)> {
    params.validate()?;
    let dims = grid.dims;
    crate::layout::check_len(Operand::Target, pred.len(), reference.len())?;
    let c = params.connectivity;
    let n_pred = components::label(pred, dims, c, bufs.pred_labels, bufs.union_find)?;
    dilate(
        reference,
        dims,
        params.dilation,
        Connectivity::Eighteen,
        bufs.dilated,
    )?;
    let n_lesions = components::label(bufs.dilated, dims, c, bufs.lesion_labels, bufs.union_find)?;
    Ok((n_pred, n_lesions))
}

/// The per-component buffers of [`brats_scores`].
pub struct BratsTables<'a> {
    /// `(lesion, component)` pairs that touch: at least `components + lesions` entries; more
    /// when components touch several lesions (the error says so).
    pub touching: &'a mut [Overlap],
    /// `components + 1` entries: voxels of each predicted component.
    pub pred_sizes: &'a mut [u64],
    /// `components + 1` entries: bounding box of each predicted component.
    pub pred_boxes: &'a mut [Bounds],
    /// `lesions + 1` entries: reference voxels of each lesion.
    pub lesion_sizes: &'a mut [u64],
    /// `lesions + 1` entries: bounding box of each lesion's dilated region.
    pub lesion_boxes: &'a mut [Bounds],
    /// `lesions` entries: the result of each lesion.
    pub lesions: &'a mut [Lesion],
    /// Scratch of the surface distances: when a lesion needs more, the error says how much
    /// (call again with that many).
    pub surface: &'a mut [f64],
}

/// Step 2 of the BraTS evaluation: each lesion's Dice and HD95 and the region's lesion-wise scores, from
/// the labels of [`brats_label`].
pub fn brats_scores(
    pred: &[u8],
    reference: &[u8],
    grid: Grid,
    params: &BratsParams,
    labels: (&[u32], &[u32]),
    counts: (u32, u32),
    t: &mut BratsTables<'_>,
) -> Result<LesionWise> {
    params.validate()?;
    let (pred_labels, lesion_labels) = labels;
    let (n_pred, n_les) = counts;
    let dims = grid.dims;
    let n = grid_len(dims)?;
    for len in [
        pred.len(),
        reference.len(),
        pred_labels.len(),
        lesion_labels.len(),
    ] {
        crate::layout::check_len(Operand::Labels, n, len)?;
    }
    crate::layout::check_len(Operand::Output, n_les as usize, t.lesions.len())?;
    let need = |c: u32| c as usize + 1;
    crate::layout::check_len(Operand::Output, need(n_pred), t.pred_sizes.len())?;
    crate::layout::check_len(Operand::Output, need(n_pred), t.pred_boxes.len())?;
    crate::layout::check_len(Operand::Output, need(n_les), t.lesion_sizes.len())?;
    crate::layout::check_len(Operand::Output, need(n_les), t.lesion_boxes.len())?;
    let voxel_volume = grid.spacing[0] * grid.spacing[1] * grid.spacing[2];
    for (j, les) in t.lesions.iter_mut().enumerate() {
        *les = Lesion {
            id: j as u32 + 1,
            ..Lesion::default()
        };
    }
    let nothing = Bounds {
        lo: [usize::MAX; 3],
        hi: [0; 3],
    };
    t.pred_sizes.fill(0);
    t.pred_boxes.fill(nothing);
    t.lesion_sizes.fill(0);
    t.lesion_boxes.fill(nothing);
    // One pass: component sizes and boxes, lesion boxes (of the dilated region), lesion sizes
    // and overlaps (reference voxels), and the touching (lesion, component) pairs.
    let [nx, ny, nz] = dims;
    let mut table = OverlapTable::new(t.touching);
    for z in 0..nz {
        for y in 0..ny {
            let row = nx * (y + ny * z);
            let (pr, lr) = (&pred_labels[row..row + nx], &lesion_labels[row..row + nx]);
            let mut x0 = 0;
            while x0 < nx {
                let x1 = (x0 + SKIP).min(nx);
                if pr[x0..x1].iter().all(|&v| v == 0) && lr[x0..x1].iter().all(|&v| v == 0) {
                    x0 = x1;
                    continue;
                }
                for x in x0..x1 {
                    let (c, l) = (pr[x], lr[x]);
                    if c != 0 {
                        if c > n_pred {
                            return Err(out_of_range(c, n_pred));
                        }
                        t.pred_sizes[c as usize] += 1;
                        grow(&mut t.pred_boxes[c as usize], [x, y, z]);
                    }
                    if l != 0 {
                        if l > n_les {
                            return Err(out_of_range(l, n_les));
                        }
                        grow(&mut t.lesion_boxes[l as usize], [x, y, z]);
                        if reference[row + x] != 0 {
                            t.lesion_sizes[l as usize] += 1;
                            if pred[row + x] != 0 {
                                t.lesions[l as usize - 1].overlap += 1;
                            }
                        }
                        if c != 0 {
                            table.push(l, c)?;
                        }
                    }
                }
                x0 = x1;
            }
        }
    }
    let pairs = table.finish();
    for les in t.lesions.iter_mut() {
        les.voxels = t.lesion_sizes[les.id as usize];
        les.volume = les.voxels as f64 * voxel_volume;
    }
    // Matched components of each lesion: a run of `touching` (sorted by lesion).
    let mut start = 0usize;
    for les in t.lesions.iter_mut() {
        let j = les.id;
        let touching = &t.touching[..pairs];
        while start < pairs && touching[start].a < j {
            start += 1;
        }
        let mut end = start;
        while end < pairs && touching[end].a == j {
            end += 1;
        }
        let run = &touching[start..end];
        les.matched = run.len() as u32;
        les.pred_voxels = run.iter().map(|o| t.pred_sizes[o.b as usize]).sum();
        les.counted = les.volume > params.min_volume;
        if run.is_empty() {
            les.dice = 0.0;
            les.hd95 = params.hd_penalty;
            start = end;
            continue;
        }
        les.dice = 2.0 * les.overlap as f64 / (les.voxels + les.pred_voxels) as f64;
        let mut b = lesion_box(
            t.lesion_boxes[j as usize],
            lesion_labels,
            reference,
            dims,
            j,
        );
        for o in run {
            b = surface::union(Some(b), Some(t.pred_boxes[o.b as usize])).unwrap_or(b);
        }
        let in_pred = |i: usize| {
            let c = pred_labels[i];
            c != 0 && run.binary_search_by_key(&c, |o| o.b).is_ok()
        };
        let in_lesion = |i: usize| reference[i] != 0 && lesion_labels[i] == j;
        // Too small a scratch is a LengthMismatch naming the size needed.
        les.hd95 = match surface::distances_for(
            Elements::Surfels,
            grid,
            Some(b),
            &in_pred,
            &in_lesion,
            params.percentile,
            1.0,
            t.surface,
        )? {
            Surfaces::Distances(d) => d.percentile_hausdorff(PercentileDefinition::MaxDirected),
            // A matched lesion has voxels on both sides: this cannot happen; score it as missed.
            _ => params.hd_penalty,
        };
        start = end;
    }
    // False positives: components touching no lesion. Re-sorted by component (the lesion order
    // is no longer needed), the distinct components are the matched ones.
    let by_component = &mut t.touching[..pairs];
    by_component.sort_unstable_by_key(|o| (o.b, o.a));
    let mut matched = 0u32;
    for (i, o) in by_component.iter().enumerate() {
        if i == 0 || by_component[i - 1].b != o.b {
            matched += 1;
        }
    }
    let fp = n_pred - matched;
    let counted = t.lesions.iter().filter(|l| l.counted);
    let (mut sum_dice, mut sum_hd, mut lesions, mut tp) = (0.0, 0.0, 0u32, 0u32);
    for l in counted {
        sum_dice += l.dice;
        sum_hd += l.hd95;
        lesions += 1;
        tp += u32::from(l.matched > 0);
    }
    let denominator = f64::from(lesions + fp);
    let (dice, hd95) = if denominator == 0.0 {
        (1.0, 0.0)
    } else {
        (
            sum_dice / denominator,
            (sum_hd + f64::from(fp) * params.hd_penalty) / denominator,
        )
    };
    Ok(LesionWise {
        dice,
        hd95,
        tp,
        fn_: lesions - tp,
        fp,
        lesions: n_les,
        components: n_pred,
    })
}

/// The bounding box of lesion `j`'s reference voxels, within its dilated region's box.
fn lesion_box(
    dilated: Bounds,
    lesion_labels: &[u32],
    reference: &[u8],
    dims: [usize; 3],
    j: u32,
) -> Bounds {
    let [nx, ny, _] = dims;
    let mut b = Bounds {
        lo: [usize::MAX; 3],
        hi: [0; 3],
    };
    for z in dilated.lo[2]..dilated.hi[2] {
        for y in dilated.lo[1]..dilated.hi[1] {
            for x in dilated.lo[0]..dilated.hi[0] {
                let i = x + nx * (y + ny * z);
                if reference[i] != 0 && lesion_labels[i] == j {
                    grow(&mut b, [x, y, z]);
                }
            }
        }
    }
    b
}

/// Detection and panoptic scores of an IoU matching.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Detection {
    /// Matched pairs.
    pub tp: u32,
    /// Predicted components without a partner.
    pub fp: u32,
    /// Reference components without a partner.
    pub fn_: u32,
    /// Sum of the matched pairs' IoU.
    pub iou_sum: f64,
}

impl Detection {
    /// `TP/(TP + FP)`; `None` without predicted components.
    pub fn precision(&self) -> Option<f64> {
        ratio(f64::from(self.tp), f64::from(self.tp + self.fp))
    }
    /// `TP/(TP + FN)`; `None` without reference components.
    pub fn recall(&self) -> Option<f64> {
        ratio(f64::from(self.tp), f64::from(self.tp + self.fn_))
    }
    /// Recognition quality, the F1 score `TP/(TP + FP/2 + FN/2)`; `None` when both sides are
    /// empty.
    pub fn recognition_quality(&self) -> Option<f64> {
        ratio(
            f64::from(self.tp),
            f64::from(self.tp) + 0.5 * f64::from(self.fp + self.fn_),
        )
    }
    /// Segmentation quality, the mean IoU of the matched pairs; `None` without a match.
    pub fn segmentation_quality(&self) -> Option<f64> {
        ratio(self.iou_sum, f64::from(self.tp))
    }
    /// Panoptic quality `SQ·RQ` (0 when nothing matched but something exists); `None` when
    /// both sides are empty.
    pub fn panoptic_quality(&self) -> Option<f64> {
        let rq = self.recognition_quality()?;
        Some(self.segmentation_quality().map_or(0.0, |sq| sq * rq))
    }
}

fn ratio(n: f64, d: f64) -> Option<f64> {
    (d != 0.0).then(|| n / d)
}

/// Matches reference components `a` with predicted components `b` whose IoU exceeds
/// `threshold` (≥ 0.5, so that a component has at most one partner), from their
/// [`overlaps`] and sizes (`ref_sizes`, `pred_sizes` indexed by label, as
/// [`component_extents`] fills them; their lengths give the component counts plus one).
pub fn match_iou(
    pairs: &[Overlap],
    ref_sizes: &[u64],
    pred_sizes: &[u64],
    threshold: f64,
) -> Result<Detection> {
    if !(0.5..1.0).contains(&threshold) {
        return Err(invalid(
            "iou_threshold",
            threshold,
            "must be in [0.5, 1): below 0.5 a component can match several and an assignment is needed",
        ));
    }
    let n_ref = ref_sizes.len().saturating_sub(1) as u32;
    let n_pred = pred_sizes.len().saturating_sub(1) as u32;
    let mut d = Detection::default();
    for o in pairs {
        let (ra, pb) = (
            *ref_sizes
                .get(o.a as usize)
                .ok_or(out_of_range(o.a, n_ref))?,
            *pred_sizes
                .get(o.b as usize)
                .ok_or(out_of_range(o.b, n_pred))?,
        );
        let union = (ra + pb).saturating_sub(o.voxels);
        let iou = if union == 0 {
            0.0
        } else {
            o.voxels as f64 / union as f64
        };
        if iou > threshold {
            d.tp += 1;
            d.iou_sum += iou;
        }
    }
    d.fp = n_pred - d.tp;
    d.fn_ = n_ref - d.tp;
    Ok(d)
}

fn out_of_range(label: u32, count: u32) -> DiceError {
    DiceError::LabelOutOfRange {
        operand: Operand::Labels,
        index: label as usize,
        label: i64::from(label),
        classes: count as usize + 1,
    }
}

/// Components of one side that touch nothing on the other: autoPET's false-positive volume
/// (predicted components overlapping no reference voxel) and false-negative volume (reference
/// components overlapping no predicted voxel).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Unmatched {
    /// Predicted components overlapping no reference component.
    pub fp_components: u32,
    /// Their voxels.
    pub fp_voxels: u64,
    /// Reference components overlapping no predicted component.
    pub fn_components: u32,
    /// Their voxels.
    pub fn_voxels: u64,
}

/// [`Unmatched`] from the [`overlaps`] of reference components `a` with predicted components
/// `b` (re-sorted in place) and the component sizes (as in [`match_iou`]).
pub fn unmatched(pairs: &mut [Overlap], ref_sizes: &[u64], pred_sizes: &[u64]) -> Unmatched {
    let mut u = Unmatched::default();
    let side = |pairs: &[Overlap], sizes: &[u64], key: fn(&Overlap) -> u32| -> (u32, u64) {
        let (mut n, mut v) = (0u32, 0u64);
        let mut k = 0usize;
        for (l, &size) in sizes.iter().enumerate().skip(1) {
            while k < pairs.len() && (key(&pairs[k]) as usize) < l {
                k += 1;
            }
            if k >= pairs.len() || key(&pairs[k]) as usize != l {
                n += 1;
                v += size;
            }
        }
        (n, v)
    };
    pairs.sort_unstable_by_key(|o| (o.a, o.b));
    (u.fn_components, u.fn_voxels) = side(pairs, ref_sizes, |o| o.a);
    pairs.sort_unstable_by_key(|o| (o.b, o.a));
    (u.fp_components, u.fp_voxels) = side(pairs, pred_sizes, |o| o.b);
    u
}

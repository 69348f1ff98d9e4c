//! Surface distances and the metrics built on them.

use std::ffi::c_void;

use dice_core::surface;
use dice_core::DiceError;

use crate::enums::*;
use crate::hard::with_label_slices;
use crate::panic::*;
use crate::status::*;

/// A 2-D or 3-D image: sizes (x fastest; `z = 1` for 2-D) and spacing in mm per axis.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DiceGrid {
    /// Voxels along x, y, z.
    pub dims: [usize; 3],
    /// Millimetres per voxel along x, y, z (positive, finite).
    pub spacing: [f64; 3],
}

impl DiceGrid {
    pub(crate) fn core(self) -> FfiResult<surface::Grid> {
        Ok(surface::Grid::new(self.dims, self.spacing)?)
    }
}

/// Which masks of a pair were empty (`DiceSurfaceDistances::kind`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceSurfaceKind {
    /// Both masks have voxels: the distances are set.
    Distances = 0,
    /// The reference is empty, the prediction not.
    ReferenceEmpty = 1,
    /// The prediction is empty, the reference not.
    PredictionEmpty = 2,
    /// Both are empty.
    BothEmpty = 3,
}

from_i32!(DiceSurfaceKind {
    Distances,
    ReferenceEmpty,
    PredictionEmpty,
    BothEmpty
});

/// Surface distances of a pair (mm), as dice-core's `SurfaceDistances`; every field 0 unless
/// `kind` is ::DICE_SURFACE_KIND_DISTANCES. Score them with dice_surface_metric().
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct DiceSurfaceDistances {
    /// A ::DiceSurfaceKind.
    pub kind: i32,
    /// Surface voxels of the prediction and of the reference.
    pub pred_surface: u64,
    /// See `pred_surface`.
    pub ref_surface: u64,
    /// Directed maxima (mm).
    pub max_pred_to_ref: f64,
    /// See `max_pred_to_ref`.
    pub max_ref_to_pred: f64,
    /// Directed means (mm).
    pub mean_pred_to_ref: f64,
    /// See `mean_pred_to_ref`.
    pub mean_ref_to_pred: f64,
    /// Directed percentiles (mm) at the percentile asked for.
    pub percentile_pred_to_ref: f64,
    /// See `percentile_pred_to_ref`.
    pub percentile_ref_to_pred: f64,
    /// The percentile of the pooled distances (mm).
    pub percentile_pooled: f64,
    /// Surface voxels within the NSD tolerance of the other surface.
    pub pred_within_tolerance: u64,
    /// See `pred_within_tolerance`.
    pub ref_within_tolerance: u64,
    /// The surfaces' sizes: voxel counts, or surfel areas (mm², mm in 2-D).
    pub pred_area: f64,
    /// See `pred_area`.
    pub ref_area: f64,
    /// The parts of the surfaces within the NSD tolerance, likewise.
    pub pred_area_within: f64,
    /// See `pred_area_within`.
    pub ref_area_within: f64,
}

impl DiceSurfaceDistances {
    pub(crate) fn from_core(s: &surface::Surfaces) -> Self {
        match s {
            surface::Surfaces::Distances(d) => DiceSurfaceDistances {
                kind: DiceSurfaceKind::Distances as i32,
                pred_surface: d.pred_surface,
                ref_surface: d.ref_surface,
                max_pred_to_ref: d.max_pred_to_ref,
                max_ref_to_pred: d.max_ref_to_pred,
                mean_pred_to_ref: d.mean_pred_to_ref,
                mean_ref_to_pred: d.mean_ref_to_pred,
                percentile_pred_to_ref: d.percentile_pred_to_ref,
                percentile_ref_to_pred: d.percentile_ref_to_pred,
                percentile_pooled: d.percentile_pooled,
                pred_within_tolerance: d.pred_within_tolerance,
                ref_within_tolerance: d.ref_within_tolerance,
                pred_area: d.pred_area,
                ref_area: d.ref_area,
                pred_area_within: d.pred_area_within,
                ref_area_within: d.ref_area_within,
            },
            surface::Surfaces::ReferenceEmpty => Self::empty(DiceSurfaceKind::ReferenceEmpty),
            surface::Surfaces::PredictionEmpty => Self::empty(DiceSurfaceKind::PredictionEmpty),
            surface::Surfaces::BothEmpty => Self::empty(DiceSurfaceKind::BothEmpty),
        }
    }

    pub(crate) fn empty(kind: DiceSurfaceKind) -> Self {
        DiceSurfaceDistances {
            kind: kind as i32,
            ..Default::default()
        }
    }

    pub(crate) fn core(&self) -> FfiResult<surface::Surfaces> {
        Ok(
            match DiceSurfaceKind::from_i32(self.kind, "surfaces->kind")? {
                DiceSurfaceKind::Distances => {
                    if self.pred_surface == 0
                        || self.ref_surface == 0
                        || !(self.pred_area > 0.0 && self.ref_area > 0.0)
                    {
                        return Err(err(
                            DiceStatus::InvalidParameter,
                            "surfaces->kind says distances, but a surface has no voxel",
                        ));
                    }
                    surface::Surfaces::Distances(surface::SurfaceDistances {
                        pred_surface: self.pred_surface,
                        ref_surface: self.ref_surface,
                        max_pred_to_ref: self.max_pred_to_ref,
                        max_ref_to_pred: self.max_ref_to_pred,
                        mean_pred_to_ref: self.mean_pred_to_ref,
                        mean_ref_to_pred: self.mean_ref_to_pred,
                        percentile_pred_to_ref: self.percentile_pred_to_ref,
                        percentile_ref_to_pred: self.percentile_ref_to_pred,
                        percentile_pooled: self.percentile_pooled,
                        pred_within_tolerance: self.pred_within_tolerance,
                        ref_within_tolerance: self.ref_within_tolerance,
                        pred_area: self.pred_area,
                        ref_area: self.ref_area,
                        pred_area_within: self.pred_area_within,
                        ref_area_within: self.ref_area_within,
                    })
                }
                DiceSurfaceKind::ReferenceEmpty => surface::Surfaces::ReferenceEmpty,
                DiceSurfaceKind::PredictionEmpty => surface::Surfaces::PredictionEmpty,
                DiceSurfaceKind::BothEmpty => surface::Surfaces::BothEmpty,
            },
        )
    }
}

/// What surfaces are made of (`elements` of the surface functions).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceSurfaceElements {
    /// Boundary voxels, each counting 1 (medpy, MONAI without subvoxels).
    Voxels = 0,
    /// Surfels with areas (DeepMind surface-distance, MONAI `use_subvoxels`).
    Surfels = 1,
}

from_i32!(DiceSurfaceElements { Voxels, Surfels });

impl DiceSurfaceElements {
    pub(crate) fn core(self) -> surface::Elements {
        match self {
            DiceSurfaceElements::Voxels => surface::Elements::Voxels,
            DiceSurfaceElements::Surfels => surface::Elements::Surfels,
        }
    }
}

/// A surface metric (dice_surface_metric()).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceSurfaceMetric {
    /// Hausdorff distance.
    Hausdorff = 0,
    /// The larger of the two directed percentiles (MONAI, DeepMind, MetricsReloaded).
    PercentileMaxDirected = 1,
    /// The percentile of the pooled distances (medpy `hd95`).
    PercentilePooled = 2,
    /// Mean of the pooled distances (medpy `assd`, MONAI symmetric).
    Assd = 3,
    /// Mean of the directed means (MetricsReloaded `masd`).
    Masd = 4,
    /// Normalized surface Dice (counted).
    Nsd = 5,
}

from_i32!(DiceSurfaceMetric {
    Hausdorff,
    PercentileMaxDirected,
    PercentilePooled,
    Assd,
    Masd,
    Nsd
});

/// What a distance becomes with an empty mask (`DiceEmptyDistance::kind`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceEmptyDistanceKind {
    /// NaN.
    Nan = 0,
    /// No value (`defined` = 0).
    Skip = 1,
    /// 0.
    Zero = 2,
    /// +∞ (MONAI, one mask empty).
    Infinity = 3,
    /// The image diagonal (MetricsReloaded's worst case).
    Diagonal = 4,
    /// `DiceEmptyDistance::value` mm (a fixed penalty, e.g. BraTS's 373.13).
    Value = 5,
}

from_i32!(DiceEmptyDistanceKind {
    Nan,
    Skip,
    Zero,
    Infinity,
    Diagonal,
    Value
});

/// An empty-mask distance.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DiceEmptyDistance {
    /// A ::DiceEmptyDistanceKind.
    pub kind: i32,
    /// The penalty of ::DICE_EMPTY_DISTANCE_KIND_VALUE (mm, finite, ≥ 0).
    pub value: f64,
}

impl DiceEmptyDistance {
    pub(crate) fn core(self, what: &str) -> FfiResult<surface::EmptyDistance> {
        Ok(match DiceEmptyDistanceKind::from_i32(self.kind, what)? {
            DiceEmptyDistanceKind::Nan => surface::EmptyDistance::Nan,
            DiceEmptyDistanceKind::Skip => surface::EmptyDistance::Skip,
            DiceEmptyDistanceKind::Zero => surface::EmptyDistance::Zero,
            DiceEmptyDistanceKind::Infinity => surface::EmptyDistance::Infinity,
            DiceEmptyDistanceKind::Diagonal => surface::EmptyDistance::Diagonal,
            DiceEmptyDistanceKind::Value => {
                if !(self.value.is_finite() && self.value >= 0.0) {
                    return Err(err(
                        DiceStatus::InvalidParameter,
                        format!(
                            "{what}.value = {} must be a finite number of mm >= 0",
                            self.value
                        ),
                    ));
                }
                surface::EmptyDistance::Value(self.value)
            }
        })
    }
}

/// Distances with empty masks: `one_empty` when one mask is empty, `both_empty` when both are;
/// NSD is 0 with one mask empty and `nsd_both_empty` (a ::DiceEmptyValue) with both.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DiceSurfaceEmptyPolicy {
    /// One mask empty.
    pub one_empty: DiceEmptyDistance,
    /// Both masks empty.
    pub both_empty: DiceEmptyDistance,
    /// NSD with both masks empty (a ::DiceEmptyValue).
    pub nsd_both_empty: i32,
}

/// Both masks hold the grid's voxels.
pub(crate) fn check_masks(g: surface::Grid, p: &[u8], t: &[u8]) -> FfiResult {
    for (op, m) in [
        (dice_core::Operand::Prediction, p),
        (dice_core::Operand::Target, t),
    ] {
        if m.len() != g.voxels() {
            return Err(DiceError::LengthMismatch {
                operand: op,
                expected: g.voxels(),
                found: m.len(),
            }
            .into());
        }
    }
    Ok(())
}

/// `f64` elements of scratch dice_surface_distances() needs for this pair (0 when a mask is
/// empty): the masks' bounding box, both surfaces and one line.
///
/// # Safety
/// `pred` and `target` valid for `len` bytes, `out` writable.
#[no_mangle]
pub unsafe extern "C" fn dice_surface_scratch_len(
    elements: i32,
    grid: DiceGrid,
    pred: *const u8,
    target: *const u8,
    len: usize,
    out: *mut usize,
) -> DiceStatus {
    boundary(|| {
        let el = DiceSurfaceElements::from_i32(elements, "elements")?.core();
        let g = grid.core()?;
        // SAFETY: the caller's promises, checked before use.
        let (p, t) = unsafe { (slice(pred, len, "pred")?, slice(target, len, "target")?) };
        check_masks(g, p, t)?;
        let (pf, tf) = (|i: usize| p[i] != 0, |i: usize| t[i] != 0);
        let n = surface::scratch_len_for(el, g, surface::bounding_box(g, p, t), &pf, &tf);
        unsafe { write(out, n, "out") }
    })
}

/// Surface distances of two masks (`u8`, non-zero = inside; `len` = the grid's voxels) at
/// `percentile` (in [0, 100]) with NSD tolerance `tolerance` (mm), using the caller's scratch
/// of at least dice_surface_scratch_len() doubles (nothing is allocated).
///
/// # Safety
/// `pred` and `target` valid for `len` bytes, `scratch` writable for `scratch_len` doubles and
/// not overlapping them, `out` writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn dice_surface_distances(
    elements: i32,
    grid: DiceGrid,
    pred: *const u8,
    target: *const u8,
    len: usize,
    percentile: f64,
    tolerance: f64,
    scratch: *mut f64,
    scratch_len: usize,
    out: *mut DiceSurfaceDistances,
) -> DiceStatus {
    boundary(|| {
        let el = DiceSurfaceElements::from_i32(elements, "elements")?.core();
        let g = grid.core()?;
        check_ptr(out, 1, "out")?;
        // SAFETY: the caller's promises, checked before use.
        let (p, t) = unsafe { (slice(pred, len, "pred")?, slice(target, len, "target")?) };
        let s = unsafe { slice_mut(scratch, scratch_len, "scratch")? };
        check_masks(g, p, t)?;
        let (pf, tf) = (|i: usize| p[i] != 0, |i: usize| t[i] != 0);
        let b = surface::bounding_box(g, p, t);
        let r = surface::distances_for(el, g, b, &pf, &tf, percentile, tolerance, s)?;
        unsafe { write(out, DiceSurfaceDistances::from_core(&r), "out") }
    })
}

/// Surface distances of every label `0..labels` of two label maps of `label_type` (voxels
/// holding the ignore label in either map are outside every mask), with one NSD tolerance per
/// label (`tolerances`, `labels` of them) into `out` (`labels` of them), every label in one
/// pass over each map. The scratch is allocated here, fallibly: every label's surface
/// elements (four doubles per voxel, six per surfel), released before returning;
/// ::DICE_STATUS_OUT_OF_MEMORY when it cannot be had.
///
/// # Safety
/// `pred` and `target` valid for `len` elements of `label_type`, `tolerances` for `labels`
/// doubles, `out` writable for `labels` entries.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn dice_label_surface_distances(
    elements: i32,
    label_type: i32,
    pred: *const c_void,
    target: *const c_void,
    len: usize,
    grid: DiceGrid,
    has_ignore_index: u8,
    ignore_index: i64,
    percentile: f64,
    tolerances: *const f64,
    out: *mut DiceSurfaceDistances,
    labels: usize,
) -> DiceStatus {
    boundary(|| {
        let el = DiceSurfaceElements::from_i32(elements, "elements")?.core();
        let ty = DiceLabelType::from_i32(label_type, "label_type")?;
        let g = grid.core()?;
        let ignore = flag(has_ignore_index).then_some(ignore_index);
        // SAFETY: the caller's promises, checked before use.
        let tol = unsafe { slice(tolerances, labels, "tolerances")? };
        let o = unsafe { slice_mut(out, labels, "out")? };
        #[allow(clippy::too_many_arguments)]
        fn run<L: dice_core::Label>(
            el: surface::Elements,
            g: surface::Grid,
            p: &[L],
            t: &[L],
            ignore: Option<i64>,
            percentile: f64,
            tol: &[f64],
            o: &mut [DiceSurfaceDistances],
        ) -> FfiResult {
            let need = surface::label_scratch_len(el, g, p, t, ignore, o.len())?;
            let mut scratch = try_vec(need, 0.0f64, "the distance transform")?;
            let mut res = try_vec(o.len(), surface::Surfaces::BothEmpty, "the results")?;
            surface::label_surface_distances(
                el,
                g,
                p,
                t,
                ignore,
                percentile,
                tol,
                &mut scratch,
                &mut res,
            )?;
            for (d, r) in o.iter_mut().zip(&res) {
                *d = DiceSurfaceDistances::from_core(r);
            }
            Ok(())
        }
        // SAFETY: the caller's promise that both pointers hold `len` elements of the type.
        unsafe {
            with_label_slices!(ty, pred, target, len, |p, t| run(
                el, g, p, t, ignore, percentile, tol, o
            ))
        }
    })
}

/// One surface metric (a ::DiceSurfaceMetric) of a pair's distances on `grid` under `policy`:
/// `*value` receives it (NaN when skipped) and `*defined` 1, or 0 when the policy skipped it.
///
/// # Safety
/// `surfaces` readable, `value` and `defined` writable.
#[no_mangle]
pub unsafe extern "C" fn dice_surface_metric(
    surfaces: *const DiceSurfaceDistances,
    grid: DiceGrid,
    metric: i32,
    policy: DiceSurfaceEmptyPolicy,
    value: *mut f64,
    defined: *mut u8,
) -> DiceStatus {
    boundary(|| {
        let g = grid.core()?;
        let m = DiceSurfaceMetric::from_i32(metric, "metric")?;
        let pol = surface::SurfaceEmptyPolicy {
            one_empty: policy.one_empty.core("policy.one_empty")?,
            both_empty: policy.both_empty.core("policy.both_empty")?,
        };
        let nsd_both =
            DiceEmptyValue::from_i32(policy.nsd_both_empty, "policy.nsd_both_empty")?.core();
        check_ptr(value, 1, "value")?;
        check_ptr(defined, 1, "defined")?;
        // SAFETY: the caller's promise, checked before use.
        let s = unsafe { reference(surfaces, "surfaces")? }.core()?;
        let v = match m {
            DiceSurfaceMetric::Hausdorff => s.distance(surface::DistanceMetric::Hausdorff, g, pol),
            DiceSurfaceMetric::PercentileMaxDirected => s.distance(
                surface::DistanceMetric::PercentileHausdorff(
                    surface::PercentileDefinition::MaxDirected,
                ),
                g,
                pol,
            ),
            DiceSurfaceMetric::PercentilePooled => s.distance(
                surface::DistanceMetric::PercentileHausdorff(surface::PercentileDefinition::Pooled),
                g,
                pol,
            ),
            DiceSurfaceMetric::Assd => s.distance(surface::DistanceMetric::Assd, g, pol),
            DiceSurfaceMetric::Masd => s.distance(surface::DistanceMetric::Masd, g, pol),
            DiceSurfaceMetric::Nsd => s.nsd(nsd_both),
        };
        // SAFETY: checked above.
        unsafe {
            write(value, v.unwrap_or(f64::NAN), "value")?;
            write(defined, u8::from(v.is_some()), "defined")
        }
    })
}

//! Surface distances of every label of two label maps (Hausdorff, its percentile, ASSD, MASD,
//! NSD), in mm from the spacing.

use dice_core::surface::{self, Elements, Grid, Norm, PercentileDefinition, Surfaces};
use dice_core::Label;
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::error::{slice, type_error, value_error, view};

/// Columns of the result: status (0 distances, 1 reference empty, 2 prediction empty, 3 both
/// empty), Hausdorff, percentile (max of directed), percentile (pooled), ASSD, MASD, NSD, and
/// the surface sizes of the prediction and the reference; then the directed values, prediction
/// to reference and reference to prediction: largest, mean, percentile.
pub const COLUMNS: usize = 15;

fn run<'py, L: Label + numpy::Element>(
    py: Python<'py>,
    pred: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    args: &Args,
) -> Option<PyResult<Bound<'py, PyArray2<f64>>>> {
    let (p, t) = (view::<L>(pred)?, view::<L>(target)?);
    Some((|| {
        let shape = p.shape().to_vec();
        if shape != t.shape() || !(2..=3).contains(&shape.len()) {
            return Err(PyValueError::new_err(format!(
                "pred {:?} and target {:?} must be label maps of one 2-D or 3-D shape",
                shape,
                t.shape()
            )));
        }
        if args.spacing.len() != shape.len() {
            return Err(PyValueError::new_err(format!(
                "spacing has {} values for a {}-D map",
                args.spacing.len(),
                shape.len()
            )));
        }
        // NumPy's C order has the last axis fastest: the grid's x.
        let mut dims = [1usize; 3];
        let mut spacing = [1.0f64; 3];
        for (k, (&d, &s)) in shape
            .iter()
            .rev()
            .zip(args.spacing.iter().rev())
            .enumerate()
        {
            dims[k] = d;
            spacing[k] = s;
        }
        let grid = Grid::new(dims, spacing).map_err(value_error)?;
        let (ps, ts) = (slice(&p, "pred")?, slice(&t, "target")?);
        let tolerances = vec![args.tolerance; args.num_classes];
        let rows = if args.norm != Norm::Euclidean {
            py.detach(|| by_norm(grid, ps, ts, args))
                .map_err(value_error)?
        } else {
            py.detach(|| {
                let need = surface::label_scratch_len(
                    args.elements,
                    grid,
                    ps,
                    ts,
                    args.ignore,
                    args.num_classes,
                )?;
                let mut scratch = vec![0.0; need];
                let mut out = vec![Surfaces::BothEmpty; args.num_classes];
                surface::label_surface_distances(
                    args.elements,
                    grid,
                    ps,
                    ts,
                    args.ignore,
                    args.percentile,
                    &tolerances,
                    &mut scratch,
                    &mut out,
                )?;
                Ok(out)
            })
            .map_err(value_error)?
        };
        let nan = f64::NAN;
        let flat: Vec<f64> = rows
            .iter()
            .flat_map(|s| match s {
                Surfaces::Distances(d) => [
                    0.0,
                    d.hausdorff(),
                    d.percentile_hausdorff(PercentileDefinition::MaxDirected),
                    d.percentile_hausdorff(PercentileDefinition::Pooled),
                    d.assd(),
                    d.masd(),
                    d.nsd(),
                    d.pred_surface as f64,
                    d.ref_surface as f64,
                    d.max_pred_to_ref,
                    d.max_ref_to_pred,
                    d.mean_pred_to_ref,
                    d.mean_ref_to_pred,
                    d.percentile_pred_to_ref,
                    d.percentile_ref_to_pred,
                ],
                Surfaces::ReferenceEmpty => empty(1.0, nan, 0.0),
                Surfaces::PredictionEmpty => empty(2.0, 0.0, nan),
                Surfaces::BothEmpty => empty(3.0, 0.0, 0.0),
            })
            .collect();
        PyArray1::from_vec(py, flat).reshape([args.num_classes, COLUMNS])
    })())
}

/// The row of a label whose distances are undefined: its status and surface sizes.
fn empty(status: f64, pred_surface: f64, ref_surface: f64) -> [f64; COLUMNS] {
    let mut row = [f64::NAN; COLUMNS];
    row[0] = status;
    row[7] = pred_surface;
    row[8] = ref_surface;
    row
}

/// Every label's distances under a non-Euclidean norm (boundary voxels), one label at a time
/// inside the box of its voxels in either map.
fn by_norm<L: Label>(
    grid: Grid,
    p: &[L],
    t: &[L],
    args: &Args,
) -> dice_core::Result<Vec<Surfaces>> {
    let ignored = |i: usize| {
        args.ignore
            .is_some_and(|ig| p[i].to_i64() == ig || t[i].to_i64() == ig)
    };
    (0..args.num_classes)
        .map(|l| {
            let l = l as i64;
            let in_p = |i: usize| p[i].to_i64() == l && !ignored(i);
            let in_t = |i: usize| t[i].to_i64() == l && !ignored(i);
            let bounds = surface::bounds_of(grid, |i| in_p(i) || in_t(i));
            let mut scratch =
                vec![0.0; surface::scratch_len_in_norm(grid, bounds, &in_p, &in_t, args.norm)];
            surface::surface_distances_in_norm(
                grid,
                bounds,
                &in_p,
                &in_t,
                args.percentile,
                args.tolerance,
                args.norm,
                &mut scratch,
            )
        })
        .collect()
}

struct Args {
    num_classes: usize,
    norm: Norm,
    spacing: Vec<f64>,
    percentile: f64,
    tolerance: f64,
    elements: Elements,
    ignore: Option<i64>,
}

/// `surface_distances(pred, target, num_classes, spacing, percentile=95.0, tolerance=1.0,
/// elements="voxels", ignore_index=None)`: per label `0..num_classes` of two 2-D or 3-D label
/// maps (spacing in mm in the arrays' axis order), a `[num_classes, 15]` `float64` array of
/// status, Hausdorff, percentile Hausdorff (max of the directed percentiles; pooled), ASSD,
/// MASD, NSD at `tolerance`, both surface sizes, and the directed largest, mean and
/// percentile distances (prediction to reference, reference to prediction). `elements="surfels"` uses DeepMind's
/// surface elements with areas. Labels outside the range (an ignore label) are in no mask.
/// `norm`: `"euclidean"`, or `"taxicab"`/`"chessboard"` (L1, L∞ in mm, boundary voxels).
#[pyfunction]
#[pyo3(signature = (pred, target, num_classes, spacing, percentile=95.0, tolerance=1.0,
    elements="voxels", ignore_index=None, norm="euclidean"))]
#[allow(clippy::too_many_arguments)]
pub fn surface_distances<'py>(
    py: Python<'py>,
    pred: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    num_classes: usize,
    spacing: Vec<f64>,
    percentile: f64,
    tolerance: f64,
    elements: &str,
    ignore_index: Option<i64>,
    norm: &str,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let norm = match norm {
        "euclidean" => Norm::Euclidean,
        "taxicab" => Norm::Taxicab,
        "chessboard" => Norm::Chessboard,
        n => {
            return Err(PyValueError::new_err(format!(
                "norm must be 'euclidean', 'taxicab' or 'chessboard', not {n:?}"
            )))
        }
    };
    let elements = match elements {
        "voxels" => Elements::Voxels,
        "surfels" => Elements::Surfels,
        e => {
            return Err(PyValueError::new_err(format!(
                "elements must be 'voxels' or 'surfels', not {e:?}"
            )))
        }
    };
    if norm != Norm::Euclidean && elements != Elements::Voxels {
        return Err(PyValueError::new_err(
            "taxicab and chessboard distances are measured between boundary voxels: use elements='voxels'",
        ));
    }
    if num_classes == 0 {
        return Err(PyValueError::new_err("num_classes must be at least 1"));
    }
    let args = Args {
        num_classes,
        norm,
        spacing,
        percentile,
        tolerance,
        elements,
        ignore: ignore_index,
    };
    run::<u8>(py, pred, target, &args)
        .or_else(|| run::<u16>(py, pred, target, &args))
        .or_else(|| run::<u32>(py, pred, target, &args))
        .or_else(|| run::<i32>(py, pred, target, &args))
        .or_else(|| run::<i64>(py, pred, target, &args))
        .unwrap_or_else(|| {
            Err(type_error(
                "pred and target",
                pred,
                "two label maps of one dtype among uint8, uint16, uint32, int32, int64",
            ))
        })
}

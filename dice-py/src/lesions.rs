//! Lesion-wise scores of two binary masks: dice-cli's lesion-wise evaluation (the same code as
//! `dice eval --lesion-wise`: dice-core's BraTS 2023 matching or IoU matching, with its
//! buffers and the crop to the masks' box), over the memory of NumPy arrays.

use dice_cli::lesionwise::{self, LesionOptions, Matching, Workspace};
use dice_core::components::Connectivity;
use dice_core::lesions::BratsParams;
use dice_core::surface::Grid;
use numpy::PyUntypedArrayMethods;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::error::{slice, type_error, value_error, view};

/// `lesion_wise(pred, target, spacing, matching="dilation", dilation=3, min_volume=50.0,
/// hd_penalty=374.0, iou_threshold=0.5, min_voxels=None, connectivity=26)`: the lesion-wise
/// values of two `uint8` masks (2-D or 3-D, one shape; spacing in mm in the arrays' axis order)
/// as `(names, values)`, NaN where a value is undefined. `matching="dilation"`: BraTS 2023
/// (lesion Dice, HD95, TP, FP, FN, FP and FN volumes in ml); `"iou"`: panoptica's matching
/// (TP, FP, FN, precision, recall, F1, PQ, SQ, volumes).
#[pyfunction]
#[pyo3(signature = (pred, target, spacing, matching="dilation", dilation=3, min_volume=50.0,
    hd_penalty=374.0, iou_threshold=0.5, min_voxels=None, connectivity=26))]
#[allow(clippy::too_many_arguments)]
pub fn lesion_wise(
    py: Python<'_>,
    pred: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
    spacing: Vec<f64>,
    matching: &str,
    dilation: u32,
    min_volume: f64,
    hd_penalty: f64,
    iou_threshold: f64,
    min_voxels: Option<u64>,
    connectivity: u32,
) -> PyResult<(Vec<String>, Vec<f64>)> {
    let matching = match matching {
        "dilation" => Matching::Dilation,
        "iou" => Matching::Iou,
        m => {
            return Err(PyValueError::new_err(format!(
                "matching must be 'dilation' or 'iou', not {m:?}"
            )))
        }
    };
    let connectivity = match connectivity {
        6 => Connectivity::Six,
        18 => Connectivity::Eighteen,
        26 => Connectivity::TwentySix,
        c => {
            return Err(PyValueError::new_err(format!(
                "connectivity must be 6, 18 or 26, not {c}"
            )))
        }
    };
    let (p, t) = match (view::<u8>(pred), view::<u8>(target)) {
        (Some(p), Some(t)) => (p, t),
        _ => return Err(type_error("pred and target", pred, "two uint8 masks")),
    };
    let shape = p.shape().to_vec();
    if shape != t.shape() || !(2..=3).contains(&shape.len()) {
        return Err(PyValueError::new_err(format!(
            "pred {:?} and target {:?} must be masks of one 2-D or 3-D shape",
            shape,
            t.shape()
        )));
    }
    if spacing.len() != shape.len() {
        return Err(PyValueError::new_err(format!(
            "spacing has {} values for a {}-D mask",
            spacing.len(),
            shape.len()
        )));
    }
    // NumPy's C order has the last axis fastest: the grid's x.
    let mut dims = [1usize; 3];
    let mut sp = [1.0f64; 3];
    for (k, (&d, &s)) in shape.iter().rev().zip(spacing.iter().rev()).enumerate() {
        dims[k] = d;
        sp[k] = s;
    }
    let grid = Grid::new(dims, sp).map_err(value_error)?;
    let opts = LesionOptions {
        matching,
        brats: BratsParams {
            dilation,
            min_volume,
            hd_penalty,
            connectivity,
            ..BratsParams::GLI
        },
        iou_threshold,
        min_voxels,
    };
    let (ps, ts) = (slice(&p, "pred")?, slice(&t, "target")?);
    let values = py
        .detach(|| lesionwise::values(&mut Workspace::default(), ps, ts, grid, &opts))
        .map_err(PyValueError::new_err)?;
    Ok((
        opts.columns(),
        values.iter().map(|v| v.unwrap_or(f64::NAN)).collect(),
    ))
}

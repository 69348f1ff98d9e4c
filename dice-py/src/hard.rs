//! Exact confusion counts: label maps (every label in one pass) and thresholded probabilities.

use dice_core::hard::{self, Confusion, EmptyPolicy, EmptyValue, Metric};
use dice_core::{Label, Shape};
use numpy::{PyArray1, PyArray3, PyArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::error::{mask_view, shape_of, slice, type_error, value_error, view};

/// Counts as an array `[batch, classes, 4]` of `(tp, fp, fn, tn)`.
fn counts_array<'py>(
    py: Python<'py>,
    c: &[Confusion],
    batch: usize,
    classes: usize,
) -> PyResult<Bound<'py, PyArray3<u64>>> {
    let flat: Vec<u64> = c.iter().flat_map(|c| [c.tp, c.fp, c.fn_, c.tn]).collect();
    PyArray1::from_vec(py, flat).reshape([batch, classes, 4])
}

/// The `(batch, voxels per sample)` of an array holding `len` elements in `batch` samples.
fn per_sample(len: usize, batch: usize, what: &str) -> PyResult<usize> {
    if batch == 0 || len == 0 || !len.is_multiple_of(batch) {
        return Err(PyValueError::new_err(format!(
            "{what} holds {len} values, which is not {batch} non-empty samples"
        )));
    }
    Ok(len / batch)
}

fn labels_run<'py, L: Label + numpy::Element>(
    py: Python<'py>,
    pred: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    num_classes: usize,
    batch: usize,
    ignore_index: Option<i64>,
) -> Option<PyResult<Bound<'py, PyArray3<u64>>>> {
    let (p, t) = (view::<L>(pred)?, view::<L>(target)?);
    Some((|| {
        let (ps, ts) = (slice(&p, "pred")?, slice(&t, "target")?);
        if ps.len() != ts.len() {
            return Err(PyValueError::new_err(format!(
                "pred has shape {:?} and target {:?}: label maps must have the same number of voxels",
                shape_of(pred),
                shape_of(target)
            )));
        }
        let s = per_sample(ps.len(), batch, "target")?;
        let mut out = vec![Confusion::default(); batch * num_classes];
        py.detach(|| {
            hard::batch_label_confusion(
                Shape::new(batch, num_classes, s),
                ps,
                ts,
                ignore_index,
                &mut out,
            )
        })
        .map_err(value_error)?;
        counts_array(py, &out, batch, num_classes)
    })())
}

/// `label_confusion(pred, target, num_classes, batch, ignore_index=None)`: the exact confusion
/// counts of every label `0..num_classes` of two label maps of the same dtype (`uint8`,
/// `uint16`, `uint32`, `int32` or `int64`) holding `batch` samples each, in one pass per
/// sample; `[batch, num_classes, 4]` `uint64` of `(tp, fp, fn, tn)`. Voxels where either map
/// holds `ignore_index` are in no count. A label outside `0..num_classes` is a `ValueError`
/// naming the map, the voxel and the label.
#[pyfunction]
#[pyo3(signature = (pred, target, num_classes, batch, ignore_index=None))]
pub fn label_confusion<'py>(
    py: Python<'py>,
    pred: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    num_classes: usize,
    batch: usize,
    ignore_index: Option<i64>,
) -> PyResult<Bound<'py, PyArray3<u64>>> {
    if num_classes == 0 {
        return Err(PyValueError::new_err("num_classes must be at least 1"));
    }
    labels_run::<u8>(py, pred, target, num_classes, batch, ignore_index)
        .or_else(|| labels_run::<u16>(py, pred, target, num_classes, batch, ignore_index))
        .or_else(|| labels_run::<u32>(py, pred, target, num_classes, batch, ignore_index))
        .or_else(|| labels_run::<i32>(py, pred, target, num_classes, batch, ignore_index))
        .or_else(|| labels_run::<i64>(py, pred, target, num_classes, batch, ignore_index))
        .unwrap_or_else(|| {
            Err(type_error(
                "pred and target",
                pred,
                "two arrays of one dtype among uint8, uint16, uint32, int32, int64",
            ))
        })
}

fn threshold_run<'py, T: dice_core::Float + numpy::Element>(
    py: Python<'py>,
    pred: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    shape: (usize, usize),
    threshold: f64,
    mask: Option<&Bound<'py, PyAny>>,
) -> Option<PyResult<Bound<'py, PyArray3<u64>>>> {
    let (p, t) = (view::<T>(pred)?, view::<T>(target)?);
    Some((|| {
        let (ps, ts) = (slice(&p, "pred")?, slice(&t, "target")?);
        let (batch, channels) = shape;
        let s = per_sample(ps.len(), batch * channels, "pred")?;
        let m = mask.map(mask_view).transpose()?;
        let ms = m.as_ref().map(|m| slice(m, "mask")).transpose()?;
        let mut out = vec![Confusion::default(); batch * channels];
        py.detach(|| {
            hard::batch_confusion_probabilities(
                Shape::new(batch, channels, s),
                ps,
                ts,
                threshold,
                ms,
                &mut out,
            )
        })
        .map_err(value_error)?;
        counts_array(py, &out, batch, channels)
    })())
}

/// `threshold_confusion(pred, target, batch, channels, threshold, mask=None)`: confusion counts
/// per (sample, channel) of probabilities `[batch, channels, …]` thresholded at `threshold`
/// (`p ≥ threshold` is positive) against a dense reference of the same shape and dtype
/// (`float32` or `float64`, values in `[0, 1]`), with an optional `uint8` voxel mask
/// `[batch, …]`; `[batch, channels, 4]` `uint64`. NaN or values outside `[0, 1]` are a
/// `ValueError` naming the operand and the element.
#[pyfunction]
#[pyo3(signature = (pred, target, batch, channels, threshold, mask=None))]
pub fn threshold_confusion<'py>(
    py: Python<'py>,
    pred: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    batch: usize,
    channels: usize,
    threshold: f64,
    mask: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyArray3<u64>>> {
    threshold_run::<f32>(py, pred, target, (batch, channels), threshold, mask)
        .or_else(|| threshold_run::<f64>(py, pred, target, (batch, channels), threshold, mask))
        .unwrap_or_else(|| {
            Err(type_error(
                "pred and target",
                pred,
                "two arrays of one dtype, float32 or float64",
            ))
        })
}

fn empty_value(what: &str, v: &Bound<'_, PyAny>) -> PyResult<EmptyValue> {
    if v.is_none() {
        return Ok(EmptyValue::Skip);
    }
    if let Ok(s) = v.extract::<String>() {
        return match s.as_str() {
            "nan" => Ok(EmptyValue::Nan),
            "skip" => Ok(EmptyValue::Skip),
            _ => Err(PyValueError::new_err(format!(
                "{what} must be 0, 1, 'nan', 'skip' or None, not {s:?}"
            ))),
        };
    }
    match v.extract::<f64>() {
        Ok(0.0) => Ok(EmptyValue::Zero),
        Ok(1.0) => Ok(EmptyValue::One),
        Ok(x) if x.is_nan() => Ok(EmptyValue::Nan),
        _ => Err(type_error(what, v, "0, 1, 'nan', 'skip' or None")),
    }
}

/// `scores(counts, metric, reference_empty, both_empty)`: dice-core's metric (`"dice"`,
/// `"iou"`, `"precision"`, `"recall"`, `"specificity"`, `"volume_similarity"`) of each row of
/// `uint64` counts `[…, 4]` `(tp, fp, fn, tn)`, with the values of the two empty cases (0, 1,
/// `'nan'`, or `'skip'`/`None`, which give NaN here and count as undefined in means); a
/// `float64` array of the leading shape flattened.
#[pyfunction]
pub fn scores<'py>(
    py: Python<'py>,
    counts: &Bound<'py, PyAny>,
    metric: &str,
    reference_empty: &Bound<'py, PyAny>,
    both_empty: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let m = Metric::ALL
        .into_iter()
        .find(|m| m.name() == metric)
        .ok_or_else(|| {
            let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
            PyValueError::new_err(format!("metric must be one of {names:?}, not {metric:?}"))
        })?;
    let policy = EmptyPolicy {
        reference_empty: empty_value("reference_empty", reference_empty)?,
        both_empty: empty_value("both_empty", both_empty)?,
    };
    let v = view::<u64>(counts).ok_or_else(|| type_error("counts", counts, "a uint64 array"))?;
    let s = slice(&v, "counts")?;
    if s.len() % 4 != 0 {
        return Err(PyValueError::new_err(format!(
            "counts must be [..., 4] (tp, fp, fn, tn), got {} values",
            s.len()
        )));
    }
    let out: Vec<f64> = s
        .chunks_exact(4)
        .map(|r| {
            let c = Confusion {
                tp: r[0],
                fp: r[1],
                fn_: r[2],
                tn: r[3],
            };
            c.metric(m, policy).unwrap_or(f64::NAN)
        })
        .collect();
    Ok(PyArray1::from_vec(py, out))
}

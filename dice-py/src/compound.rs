//! Compound losses (Dice plus cross-entropy or focal, over logits): dice-core's fused
//! [`CompoundLoss`] over the memory of NumPy arrays, the value and, when asked, `∂loss/∂z` in
//! the same call (two passes over the logits, no probability tensor kept).

use dice_core::{CompoundLoss, Float, Shape, SoftStats, Term};
use numpy::{Element, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::error::{type_error, value_error, view};
use crate::soft::{parse_activation, shape3, with_input, LossParams};

/// The voxel term of a compound loss, as the Python layer names it.
fn term<'w>(
    kind: &str,
    weight: Option<&'w [f64]>,
    label_smoothing: f64,
    gamma: f64,
    alpha: Option<f64>,
) -> PyResult<Term<'w>> {
    match kind {
        "ce" => Ok(Term::CrossEntropy {
            weight,
            label_smoothing,
        }),
        "bce" => Ok(Term::BinaryCrossEntropy { pos_weight: weight }),
        "focal" => Ok(Term::Focal {
            gamma,
            alpha,
            weight,
        }),
        other => Err(PyValueError::new_err(format!(
            "term must be 'ce', 'bce' or 'focal', not {other:?}"
        ))),
    }
}

/// `compound_loss(params, activation, term, lambda_dice, lambda_term, input, target, mask=None,
/// term_weight=None, label_smoothing=0.0, gamma=2.0, alpha=None, gradient=None)`:
/// `(dice, term)`, the two reduced terms of `λ_dice·L_dice + λ_term·L_term` over the logits
/// `input` `[N, C, …]` (float32 or float64); `params` are the Dice term's ([`LossParams`],
/// reduction `mean` or `sum`), `activation` `"sigmoid"` or `"softmax"`, `term` `"ce"` (MONAI's
/// `DiceCELoss`: categorical for `C ≥ 2`, binary for `C = 1`), `"bce"` or `"focal"` (MONAI's
/// `DiceFocalLoss`). `gradient`: a writable C-contiguous array of the input's shape and dtype
/// that receives `∂(λ_dice·L_dice + λ_term·L_term)/∂input`.
#[pyfunction]
#[pyo3(signature = (params, activation, term_kind, lambda_dice, lambda_term, input, target,
    mask=None, term_weight=None, label_smoothing=0.0, gamma=2.0, alpha=None, gradient=None))]
#[allow(clippy::too_many_arguments)]
pub fn compound_loss<'py>(
    py: Python<'py>,
    params: &LossParams,
    activation: &str,
    term_kind: &str,
    lambda_dice: f64,
    lambda_term: f64,
    input: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    mask: Option<&Bound<'py, PyAny>>,
    term_weight: Option<Vec<f64>>,
    label_smoothing: f64,
    gamma: f64,
    alpha: Option<f64>,
    gradient: Option<&Bound<'py, PyAny>>,
) -> PyResult<(f64, f64)> {
    let act = parse_activation(Some(activation))?.ok_or_else(|| {
        PyValueError::new_err("a compound loss runs over logits: give 'sigmoid' or 'softmax'")
    })?;
    let t = term(
        term_kind,
        term_weight.as_deref(),
        label_smoothing,
        gamma,
        alpha,
    )?;
    let loss = CompoundLoss {
        dice: params.loss(),
        activation: act,
        lambda_dice,
        term: t,
        lambda_term,
    };
    fn run<'py, T: Float + Element + Sync + Send>(
        py: Python<'py>,
        loss: &CompoundLoss<'_>,
        params: &LossParams,
        input: &Bound<'py, PyAny>,
        target: &Bound<'py, PyAny>,
        mask: Option<&Bound<'py, PyAny>>,
        gradient: Option<&Bound<'py, PyAny>>,
    ) -> Option<PyResult<(f64, f64)>> {
        let z = view::<T>(input)?;
        Some((|| {
            let shape: Shape = shape3(z.shape())?;
            let zs = crate::error::slice(&z, "input")?;
            loss.validate(shape).map_err(value_error)?;
            let mut stats =
                vec![SoftStats::zero(loss.dice.moment()); shape.pairs().map_err(value_error)?];
            let mut run_with = |out: &mut [T], grad: bool| {
                with_input(py, shape, zs, target, mask, params.ignore_index, |x| {
                    if grad {
                        loss.loss_and_gradient(x, &mut stats, out)
                    } else {
                        loss.loss(x, &mut stats, out)
                    }
                })
            };
            let v = match gradient {
                Some(buf) => {
                    let arr = buf.cast::<PyArrayDyn<T>>().map_err(|_| {
                        type_error("gradient", buf, "an array of the input's dtype")
                    })?;
                    if arr.shape() != z.shape() {
                        return Err(PyValueError::new_err(format!(
                            "gradient has shape {:?}, the input {:?}",
                            arr.shape(),
                            z.shape()
                        )));
                    }
                    let mut rw = arr
                        .try_readwrite()
                        .map_err(|_| PyValueError::new_err("gradient is borrowed elsewhere"))?;
                    let out = rw
                        .as_slice_mut()
                        .map_err(|_| PyValueError::new_err("gradient must be C-contiguous"))?;
                    run_with(out, true)?
                }
                None => {
                    let mut scratch = vec![T::ZERO; zs.len()];
                    run_with(&mut scratch, false)?
                }
            };
            Ok((v.dice.value, v.term))
        })())
    }
    run::<f32>(py, &loss, params, input, target, mask, gradient)
        .or_else(|| run::<f64>(py, &loss, params, input, target, mask, gradient))
        .unwrap_or_else(|| Err(type_error("input", input, "a float32 or float64 array")))
}

//! dice-core's errors as Python exceptions, and the checks of array arguments.

use dice_core::DiceError;
use numpy::{Element, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// A dice-core error as `ValueError`, with the core's message (operand, index, value).
pub fn value_error(e: DiceError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// `arg` as a read-only view of an array of `T`, or `None` when its dtype is another.
pub fn view<'py, T: Element>(arg: &Bound<'py, PyAny>) -> Option<PyReadonlyArrayDyn<'py, T>> {
    arg.cast::<PyArrayDyn<T>>().ok().map(|a| a.readonly())
}

/// The contiguous memory of `a`, or a `ValueError` naming `what`.
pub fn slice<'a, T: Element>(a: &'a PyReadonlyArrayDyn<'_, T>, what: &str) -> PyResult<&'a [T]> {
    a.as_slice().map_err(|_| {
        PyValueError::new_err(format!(
            "{what} must be C-contiguous (the Python layer copies it once with numpy.ascontiguousarray)"
        ))
    })
}

/// `TypeError` for an argument of an unsupported type.
pub fn type_error(what: &str, arg: &Bound<'_, PyAny>, expected: &str) -> PyErr {
    let found = arg
        .getattr("dtype")
        .map(|d| format!("an array of dtype {d}"))
        .unwrap_or_else(|_| {
            arg.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "an object".into())
        });
    PyTypeError::new_err(format!("{what} must be {expected}, not {found}"))
}

/// The shape of an array argument.
pub fn shape_of(arg: &Bound<'_, PyAny>) -> Vec<usize> {
    arg.cast::<numpy::PyUntypedArray>()
        .map(|a| a.shape().to_vec())
        .unwrap_or_default()
}

/// An optional voxel mask argument as a `uint8` view, or a `TypeError`.
pub fn mask_view<'py>(m: &Bound<'py, PyAny>) -> PyResult<PyReadonlyArrayDyn<'py, u8>> {
    view::<u8>(m).ok_or_else(|| type_error("mask", m, "a uint8 array"))
}

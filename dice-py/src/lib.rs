//! `exactdice._native`: dice-core over the memory of NumPy arrays (and of CPU tensors, which the
//! Python layer hands over as arrays without copying). No math lives here: every count, value
//! and gradient comes from dice-core; this module checks types, borrows memory, releases the
//! GIL while the core runs, and turns dice-core's errors into `ValueError` with its message
//! (operand, index, value). Arrays must be C-contiguous; the Python layer makes them so (one
//! copy, only when needed) and converts dtypes the core has no kernel for.
//!
//! Nothing here panics on bad input: every shape, length and dtype is checked and reported.

use pyo3::prelude::*;

mod cli;

mod compound;

mod error;

mod hard;

mod lesions;

mod soft;

mod surface;

/// The module `exactdice._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(hard::label_confusion, m)?)?;
    m.add_function(wrap_pyfunction!(hard::threshold_confusion, m)?)?;
    m.add_function(wrap_pyfunction!(hard::scores, m)?)?;
    m.add_function(wrap_pyfunction!(surface::surface_distances, m)?)?;
    m.add_class::<soft::LossParams>()?;
    m.add_function(wrap_pyfunction!(soft::soft_statistics, m)?)?;
    m.add_function(wrap_pyfunction!(soft::soft_loss, m)?)?;
    m.add_function(wrap_pyfunction!(soft::soft_gradient, m)?)?;
    m.add_function(wrap_pyfunction!(compound::compound_loss, m)?)?;
    m.add_function(wrap_pyfunction!(cli::cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(lesions::lesion_wise, m)?)?;
    m.add_function(wrap_pyfunction!(soft::set_threads, m)?)?;
    m.add_function(wrap_pyfunction!(soft::get_threads, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

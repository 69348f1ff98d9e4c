//! `dice` from the wheel: dice-cli's driver ([`dice_cli::cli::main_from`]) behind the
//! `[project.scripts]` entry point `exactdice._cli:main`, so a pip user gets the evaluator
//! without a Rust toolchain.

use std::ffi::OsString;

use pyo3::prelude::*;

/// `cli_main(argv)`: runs `dice` with `argv` (program name first) without the GIL and returns
/// its exit status (0 success, 1 a file or case failed, 2 a usage error). It writes to the
/// process's standard output and error; a closed standard output ends the process (status 0),
/// as the command does.
#[pyfunction]
pub fn cli_main(py: Python<'_>, argv: Vec<OsString>) -> u8 {
    py.detach(|| dice_cli::cli::main_from(argv))
}

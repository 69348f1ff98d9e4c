//! `dice`: Dice and overlap metrics of segmentation files (the driver is `dice_cli::cli`, which
//! the Python wheel's `dice` entry point runs too).

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(dice_cli::cli::main_from(std::env::args_os()))
}

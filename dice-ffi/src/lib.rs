//! C ABI of `dice-core`.
//!
//! Thin by design: every function converts C arguments into `dice-core` calls and back, and
//! holds no math. Each `extern "C"` function
//! * checks every pointer (null, alignment) and every length (overflow-checked `N·C·S`) before
//!   forming a slice, and never reads or writes past the lengths it was given;
//! * receives enumerations as `int32_t` and validates them (an unknown value is
//!   [`DiceStatus::InvalidEnum`], never undefined behaviour);
//! * runs its body inside one boundary (`panic::boundary`) that catches panics, records the error
//!   message for [`dice_last_error_message`] and returns a [`DiceStatus`];
//! * allocates nothing, except [`dice_accumulator_new`] and the soft passes run on threads
//!   (`DiceSoftParams.threads > 1` or an executor), which keep one slot per chunk.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

// The declaration order is the order of dice.h (cbindgen reads modules as declared): blank
// lines keep rustfmt from sorting them.
mod status;

mod panic;

mod extensible;

mod enums;

mod executor;

mod params;

mod soft;

mod hard;

mod surface;

mod accumulator;

mod compound;

mod lesions;

pub use accumulator::*;
pub use compound::*;
pub use enums::*;
pub use executor::*;
pub use hard::*;
pub use lesions::*;
pub use params::*;
pub use soft::*;
pub use status::*;
pub use surface::*;

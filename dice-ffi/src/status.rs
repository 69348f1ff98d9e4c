//! Status codes, the error type behind them, the last error message of each thread, and the
//! library's version and status names.

use std::cell::RefCell;
use std::ffi::{c_char, CString};

use dice_core::DiceError;

/// The result of every call.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceStatus {
    /// Success.
    Ok = 0,
    /// A required pointer was NULL.
    NullPointer = 1,
    /// A buffer does not have the length the shape or another argument asks for.
    LengthMismatch = 2,
    /// `N·C·S` (or a byte size) overflows `size_t`.
    ShapeOverflow = 3,
    /// A dimension is zero or an input holds no element.
    Empty = 4,
    /// A NaN or infinity in an input.
    NonFinite = 5,
    /// A probability outside [0, 1] (logits passed as probabilities end up here).
    OutOfRange = 6,
    /// A label outside `0..classes` that is not the ignore label.
    LabelOutOfRange = 7,
    /// A parameter outside its domain, or a misaligned pointer.
    InvalidParameter = 8,
    /// An enumeration value that is not one of its constants.
    InvalidEnum = 9,
    /// Statistics with linear and squared moments were combined.
    MomentMismatch = 10,
    /// −ln(score) of a score that is not positive.
    LogOfNonPositive = 11,
    /// A bug in dice (a Rust panic, caught at the boundary). Please report it.
    Panic = 12,
    /// Memory for what was asked could not be allocated (nothing was changed).
    OutOfMemory = 13,
    /// The program was built against a newer `dice.h` and set a field this (older) library
    /// does not have (a non-zero byte past its `sizeof` of an extensible struct): nothing was
    /// done.
    Unsupported = 14,
}

pub(crate) struct FfiError {
    pub(crate) status: DiceStatus,
    pub(crate) message: String,
}

impl From<DiceError> for FfiError {
    fn from(e: DiceError) -> Self {
        let status = match e {
            DiceError::LengthMismatch { .. } => DiceStatus::LengthMismatch,
            DiceError::ShapeOverflow { .. } => DiceStatus::ShapeOverflow,
            DiceError::Empty { .. } => DiceStatus::Empty,
            DiceError::NonFinite { .. } => DiceStatus::NonFinite,
            DiceError::OutOfRange { .. } => DiceStatus::OutOfRange,
            DiceError::LabelOutOfRange { .. } => DiceStatus::LabelOutOfRange,
            DiceError::InvalidParameter { .. } => DiceStatus::InvalidParameter,
            DiceError::MomentMismatch => DiceStatus::MomentMismatch,
            DiceError::LogOfNonPositive { .. } => DiceStatus::LogOfNonPositive,
        };
        FfiError {
            status,
            message: e.to_string(),
        }
    }
}

pub(crate) fn err(status: DiceStatus, message: impl Into<String>) -> FfiError {
    FfiError {
        status,
        message: message.into(),
    }
}

pub(crate) type FfiResult<T = ()> = Result<T, FfiError>;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

pub(crate) fn set_last_error(message: &str) {
    let c = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|l| *l.borrow_mut() = c);
}

/// The library version, `"MAJOR.MINOR.PATCH"` (a static string).
#[no_mangle]
pub extern "C" fn dice_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// A static, human-readable name of a status (`"ok"`, `"null pointer"`, …); unknown values
/// give `"unknown status"`.
#[no_mangle]
pub extern "C" fn dice_status_str(status: i32) -> *const c_char {
    let s: &'static str = match status {
        0 => "ok\0",
        1 => "null pointer\0",
        2 => "length mismatch\0",
        3 => "shape overflow\0",
        4 => "empty input\0",
        5 => "NaN or infinity\0",
        6 => "value outside [0, 1]\0",
        7 => "label out of range\0",
        8 => "invalid parameter\0",
        9 => "invalid enumeration value\0",
        10 => "moment mismatch\0",
        11 => "logarithm of a non-positive score\0",
        12 => "internal error (panic)\0",
        13 => "out of memory\0",
        14 => "unsupported by this library version\0",
        _ => "unknown status\0",
    };
    s.as_ptr().cast()
}

/// The message of the last error on this thread (what was wrong and where), or `""` if none.
/// The pointer stays valid until the next failing call on this thread.
#[no_mangle]
pub extern "C" fn dice_last_error_message() -> *const c_char {
    LAST_ERROR.with(|l| l.borrow().as_ptr())
}

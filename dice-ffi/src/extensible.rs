//! Structs that grow without breaking callers: the `struct_size` convention (Linux `openat2`
//! and `clone3`, Windows' `cbSize`), for the parameter structs a caller fills and the library
//! reads (::DiceSoftParams, ::DiceCompoundParams, ::DiceBratsParams, ::DiceTarget).
//!
//! Such a struct starts with `size_t struct_size`, the `sizeof` the *caller* was compiled with.
//! Its `…_default(out, sizeof *out)` function writes the defaults into the bytes both sides
//! know, zeroes the caller's bytes this library does not know, and sets `struct_size`.
//! Reading one ([`read_in`]):
//! * `struct_size` below the first published size ([`Extensible::MIN_SIZE`]) is
//!   ::DICE_STATUS_INVALID_PARAMETER (an uninitialised struct, most likely);
//! * a smaller struct than this library's (a program built against an older header) is read
//!   as far as it goes, and the newer fields take their defaults;
//! * a larger one (a program built against a newer header, running on this older library) is
//!   accepted when every byte this library does not know is zero (new fields are designed so
//!   that zero means the older behaviour), and is ::DICE_STATUS_UNSUPPORTED otherwise: the
//!   program asked for something this library cannot do, and is told so instead of silently
//!   getting something else.
//!
//! Fields are only ever appended, at offsets at or beyond the previous `sizeof` (never in its
//! tail padding, which an older caller leaves uninitialised); `dice-ffi/tests/abi.rs` checks
//! this against the committed baseline. Every other struct of the ABI is frozen: it grows as a
//! new type with new functions.

use crate::panic::*;
use crate::status::*;

/// A `#[repr(C)]` struct whose first field is `struct_size: usize`.
///
/// # Safety
/// Implementors must be `#[repr(C)]`, start with a `usize` field holding the caller's size,
/// and be valid for any bit pattern of the bytes a caller may set (plain numbers, raw
/// pointers, `i32` enumerations checked later).
pub(crate) unsafe trait Extensible: Copy {
    /// The struct's C name, for messages.
    const NAME: &'static str;
    /// `sizeof` of the first published layout: no caller can have a smaller one.
    const MIN_SIZE: usize;
    /// The defaults (with `struct_size` this library's size).
    fn defaults() -> Self;
}

/// `sizeof` of `T` in this library.
const fn own_size<T>() -> usize {
    std::mem::size_of::<T>()
}

/// The caller's `struct_size`, checked against [`Extensible::MIN_SIZE`].
///
/// # Safety
/// `ptr` must be non-null and aligned, and point to at least a `usize`.
unsafe fn caller_size<T: Extensible>(ptr: *const T, what: &str) -> FfiResult<usize> {
    // SAFETY: the caller's promise; every layout starts with the `usize` size.
    let size = unsafe { ptr.cast::<usize>().read() };
    if size < T::MIN_SIZE {
        return Err(err(
            DiceStatus::InvalidParameter,
            format!(
                "{what}: struct_size {size} is smaller than any {} (at least {}): set it with \
                 its _default() function, or to sizeof({})",
                T::NAME,
                T::MIN_SIZE,
                T::NAME
            ),
        ));
    }
    Ok(size)
}

/// Reads a caller's extensible struct (see the module doc): the bytes both sides know, the
/// defaults for fields the caller's layout lacks, and an error for a non-zero field this
/// library lacks.
///
/// # Safety
/// If non-null, `ptr` must point to `struct_size` readable bytes (the caller's struct).
pub(crate) unsafe fn read_in<T: Extensible>(ptr: *const T, what: &str) -> FfiResult<T> {
    check_ptr(ptr, 1, what)?;
    // SAFETY: non-null and aligned (checked); the caller's promise on the size.
    let size = unsafe { caller_size(ptr, what)? };
    let known = size.min(own_size::<T>());
    let mut value = T::defaults();
    // SAFETY: `known` bytes are readable at `ptr` (the caller's promise, `known ≤ size`) and
    // writable in `value` (`known ≤ sizeof T`); any bytes are a valid `T` (the trait's promise).
    unsafe {
        std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), (&mut value as *mut T).cast::<u8>(), known);
    }
    if size > own_size::<T>() {
        // SAFETY: bytes `sizeof T .. size` are the caller's (its promise).
        let extra = unsafe {
            std::slice::from_raw_parts(
                ptr.cast::<u8>().add(own_size::<T>()),
                size - own_size::<T>(),
            )
        };
        if let Some(k) = extra.iter().position(|&b| b != 0) {
            return Err(err(
                DiceStatus::Unsupported,
                format!(
                    "{what}: byte {} of {} is set, but this library (dice {}) knows only the \
                     first {} bytes of {}: the program was built against a newer dice.h and \
                     uses a field this library does not have",
                    own_size::<T>() + k,
                    T::NAME,
                    env!("CARGO_PKG_VERSION"),
                    own_size::<T>(),
                    T::NAME
                ),
            ));
        }
    }
    Ok(value)
}

/// Writes `value` (defaults) into a caller's extensible struct of `size` bytes (its `sizeof`):
/// the bytes both sides know, zeros beyond them, and `struct_size = size`.
///
/// # Safety
/// If non-null, `ptr` must point to `size` writable bytes.
pub(crate) unsafe fn write_defaults<T: Extensible>(
    ptr: *mut T,
    size: usize,
    value: T,
    what: &str,
) -> FfiResult {
    check_ptr(ptr.cast_const(), 1, what)?;
    if size < T::MIN_SIZE {
        return Err(err(
            DiceStatus::InvalidParameter,
            format!(
                "{what}: size {size} is smaller than any {} (at least {}): pass sizeof(*{what})",
                T::NAME,
                T::MIN_SIZE
            ),
        ));
    }
    let known = size.min(own_size::<T>());
    // SAFETY: `size` bytes are writable at `ptr` (the caller's promise); `known` bytes are
    // readable in `value`.
    unsafe {
        let dst = ptr.cast::<u8>();
        std::ptr::copy_nonoverlapping((&value as *const T).cast::<u8>(), dst, known);
        std::ptr::write_bytes(dst.add(known), 0, size - known);
        ptr.cast::<usize>().write(size);
    }
    Ok(())
}

/// Implements [`Extensible`] for a struct with a `struct_size` field and a `defaults()`
/// constructor.
macro_rules! extensible {
    ($t:ty, $min:expr) => {
        // SAFETY: `#[repr(C)]`, `struct_size: usize` first, numbers and raw pointers only.
        unsafe impl $crate::extensible::Extensible for $t {
            const NAME: &'static str = stringify!($t);
            const MIN_SIZE: usize = $min;
            fn defaults() -> Self {
                <$t>::defaults()
            }
        }
        const _: () = assert!(std::mem::offset_of!($t, struct_size) == 0);
        const _: () = assert!($min <= std::mem::size_of::<$t>());
    };
}
pub(crate) use extensible;

//! The boundary every `extern "C"` function runs in (panics caught, errors recorded), and the
//! checks that turn C pointers and lengths into slices and references.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::status::*;

/// The one boundary every `extern "C"` function runs its body in: a panic becomes
/// [`DiceStatus::Panic`], an error its status, and either one's message is kept for
/// [`dice_last_error_message`].
pub(crate) fn boundary(body: impl FnOnce() -> FfiResult) -> DiceStatus {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => DiceStatus::Ok,
        Ok(Err(e)) => {
            set_last_error(&e.message);
            e.status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(&format!(
                "internal error (a bug in dice, please report it): {what}"
            ));
            DiceStatus::Panic
        }
    }
}

/// A slice from a C pointer and length, after checking it: NULL is allowed only for `len = 0`;
/// the pointer must be aligned for `T`; `len·sizeof(T)` must fit in `isize`.
///
/// # Safety
/// If non-null, `ptr` must point to `len` initialised `T` that stay valid and unmodified for
/// `'a` (the C caller's promise, stated on every function).
pub(crate) unsafe fn slice<'a, T>(ptr: *const T, len: usize, what: &str) -> FfiResult<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    check_ptr(ptr, len, what)?;
    // SAFETY: non-null, aligned, size fits isize (checked); validity is the caller's promise.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// The mutable counterpart of [`slice`].
///
/// # Safety
/// If non-null, `ptr` must point to `len` `T` writable for `'a` and not aliased by any other
/// argument.
pub(crate) unsafe fn slice_mut<'a, T>(
    ptr: *mut T,
    len: usize,
    what: &str,
) -> FfiResult<&'a mut [T]> {
    if len == 0 {
        return Ok(&mut []);
    }
    check_ptr(ptr, len, what)?;
    // SAFETY: as in `slice`, plus exclusivity, which is the caller's promise.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

pub(crate) fn check_ptr<T>(ptr: *const T, len: usize, what: &str) -> FfiResult {
    if ptr.is_null() {
        return Err(err(
            DiceStatus::NullPointer,
            format!("{what} is NULL but its length is {len}"),
        ));
    }
    if !(ptr as usize).is_multiple_of(std::mem::align_of::<T>()) {
        return Err(err(
            DiceStatus::InvalidParameter,
            format!("{what} is not aligned for its element type"),
        ));
    }
    if len
        .checked_mul(std::mem::size_of::<T>())
        .is_none_or(|b| b > isize::MAX as usize)
    {
        return Err(err(
            DiceStatus::ShapeOverflow,
            format!("{what}: {len} elements overflow the address space"),
        ));
    }
    Ok(())
}

/// A reference from a required C pointer.
///
/// # Safety
/// If non-null, `ptr` must point to a valid `T` for `'a`.
pub(crate) unsafe fn reference<'a, T>(ptr: *const T, what: &str) -> FfiResult<&'a T> {
    check_ptr(ptr, 1, what)?;
    // SAFETY: non-null and aligned (checked); validity is the caller's promise.
    Ok(unsafe { &*ptr })
}

/// Writes through a required C out-pointer.
///
/// # Safety
/// If non-null, `ptr` must be valid for writing a `T`.
pub(crate) unsafe fn write<T>(ptr: *mut T, value: T, what: &str) -> FfiResult {
    check_ptr(ptr, 1, what)?;
    // SAFETY: non-null and aligned (checked); writability is the caller's promise.
    unsafe { ptr.write(value) };
    Ok(())
}

pub(crate) fn flag(v: u8) -> bool {
    v != 0
}

/// `n` copies of `value` in a vector allocated fallibly (a C caller's count can be anything).
pub(crate) fn try_vec<T: Clone>(n: usize, value: T, what: &str) -> FfiResult<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        err(
            DiceStatus::OutOfMemory,
            format!(
                "cannot allocate {what}: {n} values ({} bytes)",
                n.saturating_mul(std::mem::size_of::<T>())
            ),
        )
    })?;
    v.resize(n, value);
    Ok(v)
}

//! How the chunked passes run: on the calling thread, or (with `std` and an executor) on
//! several, with the same chunks and the same order of additions either way (see
//! [`crate::parallel`]).

#[cfg(feature = "std")]
pub use crate::parallel::Executor;

/// Without `std` there is no executor: every pass runs on the calling thread.
#[cfg(not(feature = "std"))]
pub trait Executor {}

/// An optional executor.
pub(crate) type Exec<'a> = Option<&'a dyn Executor>;

/// The number of chunks of [`crate::CHUNK`] elements in `len` (the last may be shorter).
#[inline]
pub(crate) fn chunks(len: usize) -> usize {
    len.div_ceil(crate::CHUNK)
}

/// The elements of chunk `k` of a row of `len`.
#[inline]
pub(crate) fn chunk_range(k: usize, len: usize) -> core::ops::Range<usize> {
    let start = k * crate::CHUNK;
    start..(start + crate::CHUNK).min(len)
}

/// `f(0) ⊕ f(1) ⊕ … ⊕ f(tasks − 1)`, added left to right on the calling thread whoever
/// computed the terms; the first error in task order is returned. `elements` (the work's size)
/// decides whether threads are worth starting.
pub(crate) fn fold<R: Send, E: Send>(
    exec: Exec<'_>,
    elements: usize,
    tasks: usize,
    zero: R,
    add: impl Fn(R, R) -> R,
    f: impl Fn(usize) -> Result<R, E> + Sync,
) -> Result<R, E> {
    #[cfg(feature = "std")]
    if let Some(e) = crate::parallel::pick(exec, elements) {
        return crate::parallel::map(e, tasks, f)
            .into_iter()
            .try_fold(zero, |acc, r| Ok(add(acc, r?)));
    }
    let _ = (exec, elements);
    (0..tasks).try_fold(zero, |acc, i| Ok(add(acc, f(i)?)))
}

/// Calls `f(part)` for every part, on the calling thread or by the executor.
pub(crate) fn each<P: Send>(
    exec: Exec<'_>,
    elements: usize,
    parts: impl Iterator<Item = P>,
    f: impl Fn(P) + Sync,
) {
    #[cfg(feature = "std")]
    if let Some(e) = crate::parallel::pick(exec, elements) {
        let parts: std::vec::Vec<P> = parts.collect();
        return crate::parallel::for_each_mut(e, parts, |_, p| f(p));
    }
    let _ = (exec, elements);
    parts.for_each(f);
}

//! Transparent huge pages for the large buffers volumes are decoded into.
//!
//! A one-shot `dice eval` faults in every page of the two volumes it decodes: a 256³ byte pair
//! is 8 192 faults of 4 KiB, which took more time than inflating and counting it. Linux backs
//! memory with 2 MiB pages on request (`/sys/kernel/mm/transparent_hugepage/enabled` =
//! `madvise`, the common default; `always` needs no request): 16 faults instead.

/// Buffers below this size keep ordinary pages (the advice would cover too little of them).
const MIN_BYTES: usize = 4 << 20;

/// Asks the kernel to back the 2 MiB-aligned interior of `v`'s allocation (its capacity) with
/// huge pages. Advice only: on other systems, or if the kernel refuses, nothing changes.
pub(crate) fn advise<T>(v: &Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 1 << 21;
        let bytes = v.capacity() * std::mem::size_of::<T>();
        if bytes < MIN_BYTES {
            return;
        }
        let begin = v.as_ptr() as usize;
        let first = begin.next_multiple_of(HUGE);
        let last = (begin + bytes) / HUGE * HUGE;
        if last > first {
            // SAFETY: `[first, last)` lies inside the allocation `v` owns (its capacity), and
            // MADV_HUGEPAGE never changes the contents or validity of memory, only how the
            // kernel backs it; its result is advice, so an error is ignored.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (v, MIN_BYTES);
}

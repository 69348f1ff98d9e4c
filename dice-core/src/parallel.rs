//! Deterministic multi-threading over the core's mergeable statistics (`std` feature).
//!
//! ## Why the results do not depend on the thread count
//! Every pass over a volume is cut into chunks of [`crate::CHUNK`] voxels of one row (one
//! sample and class; for the softmax, the same voxels of every channel of a sample): a cut
//! fixed by the shape alone, never by the number of threads. Each chunk's sums come from the same kernel call whichever thread
//! makes it, and the chunks' sums are added in chunk order on the calling thread: exactly the
//! additions the single-threaded path makes (it runs the same chunks in order, with or without
//! `std`). Gradient passes write disjoint elements from values fixed before they start. So
//! statistics, losses and gradients are bit-identical for 1, 2 or N threads and for any
//! [`Executor`] (tested).
//!
//! Inputs below [`Executor::min_parallel`] elements ([`MIN_PARALLEL`] unless the executor says
//! otherwise) stay on the calling thread: starting threads costs more than the pass.
//!
//! ## Who provides the threads
//! [`Threads`] starts scoped threads for each call (no pool, nothing left running). Adapters
//! plug in their host's pool instead by implementing [`Executor`]: dice-tch runs the chunks on
//! LibTorch's intra-op pool (`at::parallel_for`), the C ABI takes a callback.

use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::vec::Vec;

/// Elements below which a pass stays on the calling thread. [`Threads`] starts its threads
/// for each pass (about 50 µs for one helper on a 2-vCPU AMD EPYC, Zen 5), so two threads
/// only pay off above about 2²⁰ f32 elements there: the soft forward took 88 µs on one
/// thread and 95 µs on two at 2²⁰, 181 µs and 140 µs at 2²¹
/// (`cargo bench --bench core -- threads`). Executors backed by a running pool start cheaper
/// and may set a lower [`Executor::min_parallel`]: results never depend on it.
pub const MIN_PARALLEL: usize = 1 << 21;

/// Runs independent tasks, perhaps concurrently: the seam between the core's chunked passes
/// and a thread pool.
pub trait Executor: Sync {
    /// How many threads `run` may use at once (1: the calling thread only).
    fn threads(&self) -> usize;
    /// Calls `task(i)` once for every `i` in `0..tasks`, in any order and on any threads, and
    /// returns when every call has returned. A task that `run` skips is run afterwards on the
    /// calling thread, so a faulty executor costs time, never results.
    fn run(&self, tasks: usize, task: &(dyn Fn(usize) + Sync));
    /// Elements below which a pass stays on the calling thread (default [`MIN_PARALLEL`]).
    fn min_parallel(&self) -> usize {
        MIN_PARALLEL
    }
}

impl fmt::Debug for dyn Executor + '_ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Executor({} threads)", self.threads())
    }
}

/// Two executors are equal when they are the same object.
impl PartialEq for dyn Executor + '_ {
    fn eq(&self, other: &Self) -> bool {
        core::ptr::addr_eq(self, other)
    }
}

/// Stack of the helper threads.
const STACK: usize = 256 << 10;

/// Scoped `std` threads started for each call: `n − 1` helpers and the calling thread take
/// chunks from a shared counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threads {
    n: usize,
    min: usize,
}

impl Threads {
    /// At most `n` threads (0 is taken as 1).
    pub const fn new(n: usize) -> Threads {
        Threads {
            n: if n == 0 { 1 } else { n },
            min: MIN_PARALLEL,
        }
    }

    /// Sets the size below which passes stay on the calling thread (results are the same
    /// either way; only the time differs).
    pub const fn min_parallel(mut self, elements: usize) -> Threads {
        self.min = elements;
        self
    }

    /// As many threads as the machine (or the process's CPU affinity) allows.
    pub fn available() -> Threads {
        Threads::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

impl Executor for Threads {
    fn threads(&self) -> usize {
        self.n
    }

    fn min_parallel(&self) -> usize {
        self.min
    }

    fn run(&self, tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        let workers = self.n.min(tasks);
        if workers <= 1 {
            (0..tasks).for_each(task);
            return;
        }
        let next = AtomicUsize::new(0);
        let work = || loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= tasks {
                break;
            }
            task(i);
        };
        std::thread::scope(|s| {
            for _ in 1..workers {
                // A small stack: the tasks only run the kernels (no recursion, no large
                // locals), and a thread that cannot start leaves its chunks to the others.
                let _ = std::thread::Builder::new()
                    .stack_size(STACK)
                    .spawn_scoped(s, work);
            }
            work();
        });
    }
}

/// The executor a pass of `elements` should use: `None` (the calling thread) when there is
/// none, it has one thread, or the pass is below its [`Executor::min_parallel`].
pub(crate) fn pick(exec: Option<&dyn Executor>, elements: usize) -> Option<&dyn Executor> {
    exec.filter(|e| e.threads() > 1 && elements >= e.min_parallel())
}

/// `f(0), …, f(tasks − 1)`, computed by `exec`, returned in index order.
pub(crate) fn map<R: Send>(
    exec: &dyn Executor,
    tasks: usize,
    f: impl Fn(usize) -> R + Sync,
) -> Vec<R> {
    let slots: Vec<Mutex<Option<R>>> = (0..tasks).map(|_| Mutex::new(None)).collect();
    exec.run(tasks, &|i| {
        let r = f(i);
        *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
    });
    slots
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let r = s.into_inner().unwrap_or_else(|e| e.into_inner());
            r.unwrap_or_else(|| f(i))
        })
        .collect()
}

/// Calls `f(i, part)` for every part, by `exec`; each part is handed out once.
pub(crate) fn for_each_mut<P: Send>(
    exec: &dyn Executor,
    parts: Vec<P>,
    f: impl Fn(usize, P) + Sync,
) {
    let slots: Vec<Mutex<Option<P>>> = parts.into_iter().map(|p| Mutex::new(Some(p))).collect();
    let take = |s: &Mutex<Option<P>>| s.lock().unwrap_or_else(|e| e.into_inner()).take();
    exec.run(slots.len(), &|i| {
        if let Some(p) = take(&slots[i]) {
            f(i, p);
        }
    });
    for (i, s) in slots.iter().enumerate() {
        if let Some(p) = take(s) {
            f(i, p);
        }
    }
}

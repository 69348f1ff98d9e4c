//! Threads for the soft passes: none (the default, so that C callers running their own pools
//! keep control), `threads` scoped threads started by dice, or the caller's own pool through
//! a callback ([`DiceExecutor`]). Results are bit-identical whichever runs the chunks.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use dice_core::parallel::{Executor, Threads};

use crate::panic::*;
use crate::status::*;

/// One task of a pass: call it with the `task_context` given to ::DiceExecutor's `run` and
/// an index in `[0, tasks)`. It never throws and is safe to call from any thread.
pub type DiceTask = unsafe extern "C" fn(task_context: *mut c_void, index: usize);

/// The caller's thread pool, lent to the soft passes (`DiceSoftParams.executor`).
///
/// `run(context, tasks, task, task_context)` must call `task(task_context, i)` for every `i`
/// in `[0, tasks)`, on any threads, and return when every call has returned (e.g. an OpenMP
/// `parallel for`, TBB's `parallel_for`, LibTorch's `at::parallel_for`). dice calls `run` only
/// from the thread that made the dice call, and only during that call. A task `run` skips is
/// run afterwards by dice on the calling thread; an index outside `[0, tasks)` is ignored.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DiceExecutor {
    /// Passed back to `run`.
    pub context: *mut c_void,
    /// How many threads `run` may use (`≤ 1`: dice calls the tasks itself, in order).
    pub threads: usize,
    /// Runs the tasks (must not be NULL when `threads > 1`).
    pub run: Option<
        unsafe extern "C" fn(
            context: *mut c_void,
            tasks: usize,
            task: DiceTask,
            task_context: *mut c_void,
        ),
    >,
}

/// What one call runs its passes on.
pub(crate) enum Pool {
    /// The calling thread.
    Calling,
    /// Threads dice starts.
    Threads(Threads),
    /// The caller's pool.
    Lent(Lent),
}

impl Pool {
    /// From `DiceSoftParams.threads` and `.executor`.
    ///
    /// # Safety
    /// `executor`, if not NULL, must point to a valid ::DiceExecutor for the call.
    pub(crate) unsafe fn new(threads: usize, executor: *const DiceExecutor) -> FfiResult<Pool> {
        if executor.is_null() {
            return Ok(if threads > 1 {
                Pool::Threads(Threads::new(threads))
            } else {
                Pool::Calling
            });
        }
        // SAFETY: the caller's promise; checked for alignment by `reference`.
        let e = unsafe { *reference(executor, "executor")? };
        match (e.threads, e.run) {
            (0 | 1, _) => Ok(Pool::Calling),
            (_, None) => Err(err(
                DiceStatus::NullPointer,
                "executor.run is NULL but executor.threads > 1",
            )),
            (threads, Some(run)) => Ok(Pool::Lent(Lent {
                context: e.context,
                threads,
                run,
            })),
        }
    }

    /// The executor to give dice-core.
    pub(crate) fn executor(&self) -> Option<&dyn Executor> {
        match self {
            Pool::Calling => None,
            Pool::Threads(t) => Some(t),
            Pool::Lent(l) => Some(l),
        }
    }
}

/// The caller's pool as a dice-core [`Executor`].
pub(crate) struct Lent {
    context: *mut c_void,
    threads: usize,
    run: unsafe extern "C" fn(*mut c_void, usize, DiceTask, *mut c_void),
}

// SAFETY: `Lent` lives on the stack of one extern "C" call and dice-core calls `run` only from
// that call's thread (its tasks never touch the executor); `Sync` is required by the trait, not
// used across threads.
unsafe impl Sync for Lent {}

/// What the trampoline needs: the task, its count, and whether one panicked.
struct TaskContext<'a> {
    task: &'a (dyn Fn(usize) + Sync),
    tasks: usize,
    panicked: AtomicBool,
}

/// The [`DiceTask`] handed to the caller's pool.
unsafe extern "C" fn trampoline(task_context: *mut c_void, index: usize) {
    // SAFETY: `task_context` is the `TaskContext` that `Lent::run` passed with this function;
    // it outlives the caller's `run`, which returns only when every task has returned.
    let ctx = unsafe { &*(task_context as *const TaskContext<'_>) };
    if index >= ctx.tasks {
        return;
    }
    // A panic must not unwind into the caller's pool: it is recorded and re-raised on the
    // calling thread, inside the call's boundary.
    if catch_unwind(AssertUnwindSafe(|| (ctx.task)(index))).is_err() {
        ctx.panicked.store(true, Ordering::Relaxed);
    }
}

impl Executor for Lent {
    fn threads(&self) -> usize {
        self.threads
    }

    fn run(&self, tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        let ctx = TaskContext {
            task,
            tasks,
            panicked: AtomicBool::new(false),
        };
        // SAFETY: the caller promised `run` calls the tasks and returns when they have
        // returned, so `ctx` (on this stack frame) outlives every use of its pointer.
        unsafe {
            (self.run)(
                self.context,
                tasks,
                trampoline,
                &ctx as *const TaskContext<'_> as *mut c_void,
            )
        };
        if ctx.panicked.load(Ordering::Relaxed) {
            panic!("a task run by the caller's executor panicked");
        }
    }
}

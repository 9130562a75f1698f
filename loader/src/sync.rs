//! The synchronisation primitives of the pipeline engine's extracted protocol types, in one
//! place, so that loom can model-check them: `scheduler`'s shim, which under `--cfg loom` is
//! loom's instrumented atomics, locks and condition variables and otherwise the standard
//! library's. Run the models with `.ci/loom`.

#[allow(unused_imports)]
pub(crate) use scheduler::sync::{atomic, thread, Arc, Condvar, Mutex, MutexGuard};

//! The synchronisation primitives of the pipeline engine's extracted protocol types, in one
//! place, so that loom can model-check them: under `--cfg loom` these are loom's instrumented
//! atomics, locks and condition variables, otherwise the standard library's (as `scheduler`'s
//! `sync` module does for the pool). Run the models with `.ci/loom`.

#[cfg(loom)]
#[allow(unused_imports)]
pub(crate) use loom::{
    sync::{atomic, Arc, Condvar, Mutex, MutexGuard},
    thread,
};

#[cfg(not(loom))]
#[allow(unused_imports)]
pub(crate) use std::{
    sync::{atomic, Arc, Condvar, Mutex, MutexGuard},
    thread,
};

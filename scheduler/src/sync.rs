//! The synchronisation primitives of our own concurrent code, in one place, so that loom can
//! model-check it: under `--cfg loom` these are loom's instrumented atomics, locks and threads,
//! otherwise the standard library's. Code whose protocol we want checked (`threads/sleep.rs`:
//! parking and the start gate) imports from here, never from `std::sync` directly.
//!
//! Run the models with `just loom` (`RUSTFLAGS="--cfg loom" cargo test -p scheduler --release
//! --lib loom`).

#[cfg(loom)]
#[allow(unused_imports)]
pub(crate) use loom::{
    sync::{atomic, Arc, Condvar, Mutex},
    thread,
};

#[cfg(not(loom))]
#[allow(unused_imports)]
pub(crate) use std::{
    sync::{atomic, Arc, Condvar, Mutex},
    thread,
};

//! The synchronisation primitives of our own concurrent code, in one place, so that loom can
//! model-check it: under `--cfg loom` these are loom's instrumented atomics, locks and threads,
//! otherwise the standard library's. Code whose protocol we want checked (`threads/sleep.rs`:
//! parking and the start gate; `threads/room.rs`: back-pressure; `threads/ending.rs`: a job's
//! termination) imports from here, never from `std::sync` directly.
//!
//! The `loader` crate's engine takes its primitives from here too (this module is public for
//! that, and hidden from the docs: it is not part of the API).
//!
//! Run the models with `just loom` (`RUSTFLAGS="--cfg loom" cargo test -p scheduler --release
//! --lib loom`).

#[cfg(loom)]
#[allow(unused_imports)]
pub use loom::{
    sync::{atomic, Arc, Condvar, Mutex, MutexGuard},
    thread,
};

#[cfg(not(loom))]
#[allow(unused_imports)]
pub use std::{
    sync::{atomic, Arc, Condvar, Mutex, MutexGuard},
    thread,
};

/// A `SeqCst` load that a protocol rests on (one side of a store-buffering pair: each side
/// writes its own atomic, then reads the other's, and only `SeqCst` keeps both from reading
/// stale values).
///
/// loom models `SeqCst` loads as acquire loads, so under loom a model would report a lost
/// wake-up that the real code cannot have; under `--cfg loom` these loads are therefore
/// read-modify-writes that change nothing (`fetch_add(0)`, or `fetch_or(false)` for a flag),
/// which always read the latest value, as a `SeqCst` load does in the single total order.
/// Everything else is the code that ships. `sc_load!(x)` for a counter, `sc_load!(flag x)`
/// for an `AtomicBool`.
macro_rules! sc_load {
    (flag $atomic:expr) => {{
        #[cfg(loom)]
        let v = $atomic.fetch_or(false, $crate::sync::atomic::Ordering::SeqCst);
        #[cfg(not(loom))]
        let v = $atomic.load($crate::sync::atomic::Ordering::SeqCst);
        v
    }};
    ($atomic:expr) => {{
        #[cfg(loom)]
        let v = $atomic.fetch_add(0, $crate::sync::atomic::Ordering::SeqCst);
        #[cfg(not(loom))]
        let v = $atomic.load($crate::sync::atomic::Ordering::SeqCst);
        v
    }};
}
pub(crate) use sc_load;

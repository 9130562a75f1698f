//! Taking the GIL in turns among this extension's threads.
//!
//! CPython hands the GIL to a thread that waited for it a whole switch interval (5 ms) by
//! asking the holder to let go, and only when nobody has let go of it meanwhile. A stage's
//! thread gives the GIL back at the end of each call and takes it again at once for the next
//! one, which restarts that clock every call: a second thread of a GIL-bound loader waited up
//! to 96 ms for its turn (555 calls against 45 in a 600-sample epoch), and a sample it held
//! kept an in-order batch back that long. So each of our threads counts its own run of takes
//! with nobody else's between: once it has lasted [`TURN`] while another of our threads (a
//! worker, or the consumer taking a batch) waits, the thread lets that one go first, waiting
//! without the GIL up to [`YIELD_AT_MOST`] for someone else to take it.
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// How long a thread keeps taking the GIL back while another of ours waits: CPython's
/// default switch interval.
pub(crate) const TURN: Duration = Duration::from_millis(5);
/// The longest a thread waits for a waiter to take the GIL before it takes it again.
const YIELD_AT_MOST: Duration = Duration::from_millis(2);

/// Our threads waiting for the GIL now.
static WAITERS: AtomicUsize = AtomicUsize::new(0);
/// How many times one of our threads took the GIL.
static TAKEN: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's last take (its number in `TAKEN`) and since when its run of takes with
    /// nobody else's between has lasted.
    static RUN: Cell<(u64, Option<Instant>)> = const { Cell::new((0, None)) };
}

/// Before this thread waits for the GIL: let another of ours that waits go first if this
/// thread's run has lasted [`TURN`].
pub(crate) fn before_taking() {
    if WAITERS.load(Relaxed) == 0 {
        return;
    }
    let (mine, since) = RUN.with(Cell::get);
    let Some(since) = since else { return };
    if TAKEN.load(Relaxed) != mine || since.elapsed() < TURN {
        return;
    }
    let deadline = Instant::now() + YIELD_AT_MOST;
    let mut spins = 0u32;
    while TAKEN.load(Relaxed) == mine && WAITERS.load(Relaxed) > 0 && Instant::now() < deadline {
        if spins < 16 {
            std::thread::yield_now();
            spins += 1;
        } else {
            std::thread::sleep(Duration::from_micros(20));
        }
    }
}

/// This thread starts waiting for the GIL (it takes it next, then calls [`taken`]).
pub(crate) fn waiting() {
    WAITERS.fetch_add(1, Relaxed);
}

/// This thread, which called [`waiting`], has taken the GIL.
pub(crate) fn taken() {
    WAITERS.fetch_sub(1, Relaxed);
    let n = TAKEN.fetch_add(1, Relaxed) + 1;
    RUN.with(|r| {
        let (mine, since) = r.get();
        let since = match since {
            Some(t) if mine + 1 == n => t,
            _ => Instant::now(),
        };
        r.set((n, Some(since)));
    });
}

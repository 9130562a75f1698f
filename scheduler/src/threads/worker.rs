//! The worker loop: one chain of questions, asked of every open job oldest first (see
//! `README.md` beside this file).

use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use crate::WorkerId;

use super::job::{Runner, Step};
use super::pool::PoolShared;

/// Fruitless searches a worker makes (with a spin hint between them) before it yields.
const SPIN_ROUNDS: u32 = 32;
/// Further fruitless searches (with a yield between them) before it parks.
const YIELD_ROUNDS: u32 = 32;
/// A time-keeping worker parks only if the release is further away than this...
const PARK_AHEAD: Duration = Duration::from_micros(100);
/// ...and wakes this long before it, to spin the rest (timer wake-ups run tens of µs late).
const SPIN_AHEAD: Duration = Duration::from_micros(60);

/// Serve the pool's jobs until it shuts down.
pub(crate) fn worker_loop<S: 'static>(pool: &PoolShared<S>, w: WorkerId, state: &mut S) {
    let mut active: Vec<Box<dyn Runner<S>>> = Vec::new();
    let mut next_seq = 0u64;
    let mut version = u64::MAX;
    let mut idle = 0u32; // fruitless rounds in a row
    loop {
        // Read the event count before a round that may end in parking (README: no lost
        // wake-ups); after a fruitful round the next one is never the last before parking.
        let seen = if idle > 0 { pool.sleep.events() } else { 0 };
        if pool.shutdown.load(SeqCst) {
            break;
        }
        let v = pool.version.load(SeqCst);
        if v != version {
            version = v;
            pool.attach_new(w, &mut next_seq, &mut active);
        }
        let (mut ran, mut retry, mut keep) = (false, false, None::<Instant>);
        let mut i = 0;
        while i < active.len() {
            match active[i].step(state) {
                Step::Ran => {
                    ran = true;
                    break; // older jobs first: start the round again
                }
                Step::Retry => retry = true,
                Step::Empty => {}
                Step::Keep(at) => keep = Some(keep.map_or(at, |k| k.min(at))),
                Step::Over => {
                    active.remove(i).retire();
                    continue;
                }
            }
            i += 1;
        }
        if ran {
            idle = 0;
            continue;
        }
        if retry || idle == 0 {
            idle = idle.max(1);
            std::hint::spin_loop();
            continue;
        }
        if let Some(at) = keep {
            // This worker keeps time for a release: sleep most of the way, spin the rest.
            if at > Instant::now() + PARK_AHEAD {
                pool.sleep.park_until(seen, at - SPIN_AHEAD, &pool.shutdown);
                active.iter_mut().for_each(|r| r.woke());
            } else {
                // Yield, not spin: a worker preempted on this cpu (one that is releasing, or
                // running a task) must not wait a whole time slice behind a time-keeper.
                std::thread::yield_now();
            }
            continue;
        }
        if idle < SPIN_ROUNDS {
            std::hint::spin_loop();
        } else if idle < SPIN_ROUNDS + YIELD_ROUNDS {
            std::thread::yield_now();
        } else {
            pool.sleep.park(seen, &pool.shutdown);
            active.iter_mut().for_each(|r| r.woke());
            continue; // stay at the parking threshold: re-read the count, search, park
        }
        idle += 1;
    }
    // Shut down: take hold of any job not seen yet, then let go of every job.
    pool.attach_new(w, &mut next_seq, &mut active);
    for r in active {
        r.retire();
    }
}

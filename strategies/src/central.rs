//! `central(chunk=N)`: one shared task queue; a free worker takes the next N tasks (more
//! while the queue is very long, see below).
//!
//! The master/worker queue of the seed ("perfect load balancing, communication bottleneck at
//! the master") and OpenMP's `schedule(dynamic, N)`. With chunk 1 it is Graham's greedy list
//! scheduling: makespan ≤ (2 − 1/m)·OPT. It wins on irregular costs at modest P; at high P with
//! small tasks the single queue serialises everyone. Larger chunks trade balance for fewer
//! accesses.
//!
//! The queue is the submitted ranges in a linked list; a take is one compare-and-swap on the
//! current range's claim counter (no lock), so a take costs what the cache line's trip between
//! cores costs. Ids go out in submission order.
//!
//! **Long queues.** While more than `LONG_PER_WORKER · P · N` (1,024 · P · N) unclaimed ids
//! wait in the range being claimed from, a take claims `⌈left / (1,024 · P)⌉` ids, at most
//! `max(N, 32)`: guided self-scheduling's rule with a 1,024 times finer divisor, so a take
//! holds back at most 1/1,024 of a worker's fair share of what is left, while a million empty
//! tasks cost one shared access per 32 instead of one each (the shared line, not the engine,
//! was the cost: about 2.5 times a bare `fetch_add` loop on 2 cpus). So `central(chunk=1)`
//! means: exactly one id per take for the last 1,024 · P ids of a range (the tail, where
//! balance is decided) and whenever submissions keep the queue shorter than that (open
//! arrivals, a loader's window, pipelines); Graham's bound holds on any instance up to
//! 1,024 · P tasks, and beyond that the held-back ids are at most 31 per worker, each claimed
//! while over 1,024 · P others still wait. On the simulator a take is one shared access
//! whatever it claims, so `central(chunk=1)` is a single server that hands out one id per
//! access only below that length.
use std::sync::Arc;

#[cfg(test)]
use scheduler::TaskId;
use scheduler::{
    Attempts, Batch, Context, Instance, Next, Pick, SharedQueue, Source, SpecError, Strategy,
    WorkerQueue,
};

use crate::params::Params;
use crate::queues::{Segment, Segments};

/// A take claims `⌈left / (LONG_PER_WORKER · P)⌉` ids while that is above the chunk...
const LONG_PER_WORKER: usize = 1024;
/// ...but at most this many (or the chunk, if larger).
const LONG_CAP: usize = 32;

/// One shared queue, fixed chunk size (larger takes while the queue is long).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Central {
    chunk: usize,
}

impl Central {
    /// A central queue handing out `chunk` (≥ 1) tasks at a time.
    pub fn new(chunk: usize) -> Result<Self, SpecError> {
        if chunk == 0 {
            return Err(SpecError::new(
                "strategy 'central': chunk must be a whole number >= 1, got '0'",
            ));
        }
        Ok(Central { chunk })
    }

    pub(crate) fn parse(p: &Params) -> Result<Self, SpecError> {
        p.only(&["chunk"])?;
        Central::new(p.count("chunk", 1, 1)?)
    }
}

struct Shared(Segments);

impl SharedQueue for Shared {
    fn submit(&self, batch: Batch<'_>) {
        self.0.push(batch.ids.0, batch.ids.1);
    }
}

/// Aligned to its own cache lines: each worker writes its handle on every pick, and handles
/// built one after another would otherwise share a line (false sharing between workers).
#[repr(align(128))]
struct Handle {
    cursor: Arc<Segment>,
    chunk: usize,
    /// `LONG_PER_WORKER · P`.
    divisor: usize,
    /// `max(chunk, LONG_CAP)`.
    cap: usize,
}

/// The ids a take claims when `left` ids wait in the current range (the module doc's rule).
#[inline]
fn take_size(left: usize, chunk: usize, divisor: usize, cap: usize) -> usize {
    left.div_ceil(divisor).clamp(chunk, cap)
}

impl WorkerQueue for Handle {
    #[inline]
    fn next(&mut self) -> Next {
        let (chunk, divisor, cap) = (self.chunk, self.divisor, self.cap);
        let size = |left: usize| take_size(left, chunk, divisor, cap);
        match Segments::claim_by(&mut self.cursor, size) {
            Some((task, count)) => Next::Task(Pick::run(task, count as u32, Source::Shared)),
            None => Next::Empty(Attempts::default()),
        }
    }
}

impl Strategy for Central {
    fn spec(&self) -> String {
        format!("central(chunk={})", self.chunk)
    }

    fn build(&self, ctx: &Context) -> Instance {
        let shared = Arc::new(Shared(Segments::new()));
        let chunk = self.chunk.min(u32::MAX as usize);
        let divisor = LONG_PER_WORKER.saturating_mul(ctx.workers().max(1));
        let cap = chunk.max(LONG_CAP);
        Instance {
            shared: shared.clone(),
            workers: (0..ctx.workers())
                .map(|_| {
                    Box::new(Handle {
                        cursor: shared.0.cursor(),
                        chunk,
                        divisor,
                        cap,
                    }) as Box<dyn WorkerQueue>
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn takes_grow_only_while_the_queue_is_long() {
        // P = 2: divisor 2,048; chunk 1 for the last 2,048 ids, 32 at most.
        let size = |left| take_size(left, 1, 2 * LONG_PER_WORKER, LONG_CAP);
        assert_eq!(size(1), 1);
        assert_eq!(size(2_048), 1);
        assert_eq!(size(2_049), 2);
        assert_eq!(size(10 * 2_048), 10);
        assert_eq!(size(1_000_000), 32);
        // A chunk above the cap is the cap; below the threshold the chunk is kept.
        assert_eq!(take_size(1_000_000, 100, 2_048, 100), 100);
        assert_eq!(take_size(5, 4, 2_048, 32), 4);
    }

    /// Every id of `0..n` claimed by `p` racing workers, with the pick sizes they got.
    fn race(spec: &str, p: usize, n: usize, submit_in: usize) -> (Vec<TaskId>, Vec<u32>) {
        let s = crate::parse(spec).unwrap();
        let inst = s.build(&Context::uniform(p, 1));
        let got = Mutex::new((Vec::new(), Vec::new()));
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            for mut w in inst.workers {
                let (got, done) = (&got, &done);
                scope.spawn(move || {
                    let (mut ids, mut sizes) = (Vec::new(), Vec::new());
                    loop {
                        let finished = done.load(std::sync::atomic::Ordering::Acquire);
                        match w.next() {
                            Next::Task(pick) => {
                                ids.extend(pick.tasks());
                                sizes.push(pick.count);
                            }
                            _ if finished => break,
                            _ => std::hint::spin_loop(),
                        }
                    }
                    let mut g = got.lock().unwrap();
                    g.0.extend(ids);
                    g.1.extend(sizes);
                });
            }
            let mut next = 0;
            while next < n {
                let end = (next + submit_in).min(n);
                inst.shared.submit(Batch::new(next..end));
                next = end;
            }
            done.store(true, std::sync::atomic::Ordering::Release);
        });
        let (mut ids, sizes) = got.into_inner().unwrap();
        ids.sort_unstable();
        (ids, sizes)
    }

    #[test]
    fn adaptive_takes_run_every_id_exactly_once_under_racing_workers() {
        let n = 200_000;
        for (spec, p, submit_in) in [
            ("central", 2, n),
            ("central", 3, n),
            ("central", 2, 1),
            ("central", 2, 777),
            ("central(chunk=5)", 3, n),
        ] {
            let (ids, sizes) = race(spec, p, n, submit_in);
            assert_eq!(
                ids,
                (0..n).collect::<Vec<_>>(),
                "{spec} P={p} by {submit_in}"
            );
            assert!(sizes.iter().all(|&c| c as usize <= LONG_CAP), "{spec}");
            if submit_in == n {
                // One long range: early takes are large, the tail's are the chunk.
                assert!(sizes.contains(&32), "{spec}: no large take");
                let chunk = if spec == "central" { 1 } else { 5 };
                assert!(sizes.iter().filter(|&&c| c as usize == chunk).count() > 0);
            }
        }
        // Below the threshold every take is one id, as before.
        let (ids, sizes) = race("central", 2, 2_048, 2_048);
        assert_eq!(ids, (0..2_048).collect::<Vec<_>>());
        assert!(sizes.iter().all(|&c| c == 1));
    }
}

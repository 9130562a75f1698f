//! `jsq(d=2)`: join the shortest of d queues — each submitted task goes to the least loaded of
//! d workers sampled at random (load = queued + running).
//!
//! The power of d choices: Mitzenmacher, "The power of two choices in randomized load
//! balancing" (IEEE TPDS 12(10), 2001), and Vvedenskaya, Dobrushin & Karpelevich (1996): in the
//! supermarket model (Poisson arrivals at rate λ per server, exponential service, n → ∞) the
//! mean time in system falls from 1/(1 − λ) for random placement (d = 1) to
//! Σ_{i≥1} λ^((dⁱ − d)/(d − 1)) for d ≥ 2, about 2.61 instead of 10 at λ = 0.9, d = 2: an
//! exponential improvement for sampling one more queue. Placement is final (no stealing): each
//! worker runs its own queue in arrival order. Samples are drawn with replacement, ties go to
//! the first sampled; `d = 1` is random placement. It wins for streams of independent
//! requests over many servers, where full JSQ would need every queue's length at each arrival.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use scheduler::{
    Attempts, Batch, Context, Instance, Next, Pick, SharedQueue, SmallRng, Source, SpecError,
    Strategy, TaskId, WorkerQueue,
};

use crate::params::Params;
use crate::queues::{lock, Chunk, Inbox, Private};

/// Join the shortest of d sampled queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Jsq {
    d: usize,
}

impl Jsq {
    /// JSQ(d), d ≥ 1 samples per task.
    pub fn new(d: usize) -> Result<Self, SpecError> {
        if d == 0 {
            return Err(SpecError::new(
                "strategy 'jsq': d must be a whole number >= 1, got '0'",
            ));
        }
        Ok(Jsq { d })
    }

    pub(crate) fn parse(p: &Params) -> Result<Self, SpecError> {
        p.only(&["d"])?;
        Jsq::new(p.count("d", 2, 1)?)
    }
}

struct Shared {
    d: usize,
    inboxes: Vec<Inbox>,
    /// Per worker: tasks placed on it and not yet completed.
    load: Vec<AtomicUsize>,
    rng: Mutex<SmallRng>,
}

impl SharedQueue for Shared {
    fn submit(&self, batch: Batch<'_>) {
        if batch.is_empty() {
            return;
        }
        let p = self.inboxes.len();
        let mut rng = lock(&self.rng);
        if batch.len() == 1 {
            let w = self.choose(&mut rng, p);
            self.inboxes[w].push(Chunk::List {
                ids: vec![batch.ids.0],
                pos: 0,
            });
            return;
        }
        let mut lists: Vec<Vec<TaskId>> = vec![Vec::new(); p];
        for id in batch.range() {
            lists[self.choose(&mut rng, p)].push(id);
        }
        drop(rng);
        for (inbox, ids) in self.inboxes.iter().zip(lists) {
            inbox.push(Chunk::List { ids, pos: 0 });
        }
    }
}

impl Shared {
    /// Sample d workers, count a task on the least loaded and return it.
    #[inline]
    fn choose(&self, rng: &mut SmallRng, p: usize) -> usize {
        let mut best = rng.below(p);
        let mut best_load = self.load[best].load(Ordering::Relaxed);
        for _ in 1..self.d {
            let w = rng.below(p);
            let l = self.load[w].load(Ordering::Relaxed);
            if l < best_load {
                (best, best_load) = (w, l);
            }
        }
        self.load[best].fetch_add(1, Ordering::Relaxed);
        best
    }
}

/// Aligned to its own cache lines: each worker writes its handle on every pick, and handles
/// built one after another would otherwise share a line (false sharing between workers).
#[repr(align(128))]
struct Handle {
    shared: Arc<Shared>,
    w: usize,
    private: Private,
    /// Tasks of the last pick: running until this worker asks again (engines ask only when
    /// the pick is done), so the load is queued + running without completion feedback.
    in_hand: usize,
}

impl WorkerQueue for Handle {
    #[inline]
    fn next(&mut self) -> Next {
        let done = std::mem::take(&mut self.in_hand);
        if done > 0 {
            self.shared.load[self.w].fetch_sub(done, Ordering::Relaxed);
        }
        match self.private.next_run(&self.shared.inboxes[self.w]) {
            Some((task, count)) => {
                self.in_hand = count as usize;
                Next::Task(Pick::run(task, count, Source::Local))
            }
            None => Next::Empty(Attempts::default()),
        }
    }
}

impl Strategy for Jsq {
    fn spec(&self) -> String {
        format!("jsq(d={})", self.d)
    }

    fn build(&self, ctx: &Context) -> Instance {
        let p = ctx.workers();
        let shared = Arc::new(Shared {
            d: self.d,
            inboxes: (0..p).map(|_| Inbox::default()).collect(),
            load: (0..p).map(|_| AtomicUsize::new(0)).collect(),
            // A stream of its own, apart from the workers' 0..P.
            rng: Mutex::new(ctx.rng(usize::MAX)),
        });
        Instance {
            shared: shared.clone(),
            workers: (0..p)
                .map(|w| {
                    Box::new(Handle {
                        shared: shared.clone(),
                        w,
                        private: Private::new(),
                        in_hand: 0,
                    }) as Box<dyn WorkerQueue>
                })
                .collect(),
        }
    }
}

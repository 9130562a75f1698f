//! `work-stealing(victim=random|numa,steal=one|half)`: per-worker deques; a worker that runs
//! dry steals from a randomly chosen victim.
//!
//! Blumofe & Leiserson, "Scheduling multithreaded computations by work stealing" (JACM 1999):
//! E[T_P] ≤ T_1/P + O(T_∞). Submissions are placed in contiguous blocks, one per worker (like
//! `block`); the owner works from its own crossbeam-deque and only touches others when empty.
//! `steal=half` takes about half of the victim's deque in one go (fewer steals on big
//! imbalances); `victim=numa` tries the workers of its own NUMA node before remote ones. It
//! wins on irregular costs at any P: no shared hot spot, and communication only when idle.

use std::sync::Arc;

use crossbeam_deque::{Steal, Stealer, Worker};
use scheduler::{
    Attempts, Batch, Context, Instance, Next, Pick, SharedQueue, SmallRng, Source, SpecError,
    Strategy, WorkerQueue,
};

use crate::params::Params;
use crate::queues::{deal_blocks, Chunk, Inbox};

/// How victims are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Victim {
    /// Any other worker, starting from a random one.
    Random,
    /// Workers of the own NUMA node first (from a random one), then the others.
    Numa,
}

/// How much one steal takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Amount {
    /// One task.
    One,
    /// About half of the victim's deque.
    Half,
}

/// Randomised work stealing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkStealing {
    victim: Victim,
    amount: Amount,
}

impl WorkStealing {
    /// Work stealing with the given victim choice and steal amount.
    pub fn new(victim: Victim, amount: Amount) -> Self {
        WorkStealing { victim, amount }
    }

    pub(crate) fn parse(p: &Params) -> Result<Self, SpecError> {
        p.only(&["victim", "steal"])?;
        let victim = match p.choice("victim", &["random", "numa"])? {
            "random" => Victim::Random,
            _ => Victim::Numa,
        };
        let amount = match p.choice("steal", &["half", "one"])? {
            "half" => Amount::Half,
            _ => Amount::One,
        };
        Ok(WorkStealing { victim, amount })
    }
}

struct Shared {
    inboxes: Vec<Inbox>,
    stealers: Vec<Stealer<usize>>,
    nodes: Vec<usize>,
}

impl SharedQueue for Shared {
    fn submit(&self, batch: Batch<'_>) {
        deal_blocks(&batch, &self.inboxes);
    }
}

struct Handle {
    shared: Arc<Shared>,
    w: usize,
    local: Worker<usize>,
    rng: SmallRng,
    amount: Amount,
    /// Victims in the order they are tried: `near` (own node, or everyone for `random`) from a
    /// random offset, then `far` from a random offset.
    near: Vec<usize>,
    far: Vec<usize>,
}

impl Handle {
    /// Move a chunk's ids into the own deque.
    fn load(&self, mut chunk: Chunk) -> u32 {
        let mut moved = 0;
        while let Some(id) = chunk.take() {
            self.local.push(id);
            moved += 1;
        }
        moved
    }

    /// Try to take work from victim `v`.
    fn rob(&self, v: usize) -> Steal<(usize, u32)> {
        let stealer = &self.shared.stealers[v];
        let (stolen, batch) = match self.amount {
            Amount::One => (stealer.steal(), false),
            Amount::Half => (
                stealer.steal_batch_with_limit_and_pop(&self.local, usize::MAX),
                true,
            ),
        };
        // The own deque was empty before the steal, so what it holds now came with the steal.
        let moved = |t| {
            (
                t,
                if batch {
                    self.local.len() as u32 + 1
                } else {
                    1
                },
            )
        };
        match stolen {
            // Work the victim has not started on: half of its oldest chunk, or one id.
            Steal::Empty => match self.shared.inboxes[v].steal(|len| match self.amount {
                Amount::One => 1,
                Amount::Half => len.div_ceil(2),
            }) {
                Some(chunk) => {
                    let moved = self.load(chunk);
                    match self.local.pop() {
                        Some(t) => Steal::Success((t, moved)),
                        None => Steal::Empty,
                    }
                }
                None => Steal::Empty,
            },
            Steal::Success(t) => Steal::Success(moved(t)),
            Steal::Retry => Steal::Retry,
        }
    }
}

impl WorkerQueue for Handle {
    #[inline]
    fn next(&mut self) -> Next {
        let local = |task| Next::Task(Pick::one(task, Source::Local));
        if let Some(t) = self.local.pop() {
            return local(t);
        }
        while let Some(chunk) = self.shared.inboxes[self.w].pop() {
            self.load(chunk);
            if let Some(t) = self.local.pop() {
                return local(t);
            }
        }
        let own = self.shared.nodes[self.w];
        let mut attempts = Attempts::default();
        let mut retry = false;
        for group in [&self.near, &self.far] {
            if group.is_empty() {
                continue;
            }
            let start = self.rng.below(group.len());
            for i in 0..group.len() {
                let v = group[(start + i) % group.len()];
                match self.rob(v) {
                    Steal::Success((task, moved)) => {
                        return Next::Task(
                            Pick::one(task, Source::Stolen { victim: v, moved }).after(attempts),
                        )
                    }
                    Steal::Retry => {
                        retry = true;
                        attempts.record(own, self.shared.nodes[v]);
                    }
                    Steal::Empty => attempts.record(own, self.shared.nodes[v]),
                }
            }
        }
        if retry {
            Next::Retry(attempts)
        } else {
            Next::Empty(attempts)
        }
    }
}

impl Strategy for WorkStealing {
    fn spec(&self) -> String {
        let victim = match self.victim {
            Victim::Random => "random",
            Victim::Numa => "numa",
        };
        let steal = match self.amount {
            Amount::One => "one",
            Amount::Half => "half",
        };
        format!("work-stealing(victim={victim},steal={steal})")
    }

    fn build(&self, ctx: &Context) -> Instance {
        let p = ctx.workers();
        let locals: Vec<Worker<usize>> = (0..p).map(|_| Worker::new_lifo()).collect();
        let shared = Arc::new(Shared {
            inboxes: (0..p).map(|_| Inbox::default()).collect(),
            stealers: locals.iter().map(Worker::stealer).collect(),
            nodes: ctx.nodes.clone(),
        });
        let workers = locals
            .into_iter()
            .enumerate()
            .map(|(w, local)| {
                let peers = (0..p).filter(|&v| v != w);
                let (near, far): (Vec<usize>, Vec<usize>) = match self.victim {
                    Victim::Random => (peers.collect(), Vec::new()),
                    Victim::Numa => peers.partition(|&v| ctx.nodes[v] == ctx.nodes[w]),
                };
                Box::new(Handle {
                    shared: shared.clone(),
                    w,
                    local,
                    rng: ctx.rng(w),
                    amount: self.amount,
                    near,
                    far,
                }) as Box<dyn WorkerQueue>
            })
            .collect();
        Instance { shared, workers }
    }
}

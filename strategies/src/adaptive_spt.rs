//! `adaptive-spt(range=64,first=shortest|longest)`: SPT (or LPT) on costs learned online, for
//! when no estimates are given.
//!
//! The seed's open question on adaptive scheduling, answered with the simplest learner that
//! works when costs are correlated with the index (a data set whose samples come in classes,
//! stored together): ids are grouped in ranges of `range` consecutive ids, each range keeps an
//! exponential moving average (α = 1/4) of the times its tasks took, learned through
//! `completed`, and a free worker takes the lowest pending id of the range with the smallest
//! average (`first=longest`: the largest). A range nothing has been learned about yet counts
//! at the mean task time seen so far (at first, with nothing learned, ranges run in id
//! order): it is sampled when the known ranges left are no better than average, so
//! exploring costs one task per range, spent where it delays least.
//! With ranges whose costs are alike it approaches SPT with exact estimates on mean flow time
//! (Smith 1956: SPT minimises mean flow time on one machine; it is the classic heuristic on
//! P); where costs are not correlated with the index it learns nothing and runs in id order.
//! One shared queue under a lock; a take and a completion cost O(log ranges).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use scheduler::{
    Attempts, Batch, Context, Instance, Next, Pick, SharedQueue, Source, SpecError, Strategy,
    TaskId, WorkerQueue,
};

use crate::params::Params;
use crate::queues::lock;

/// SPT or LPT on learned per-range costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdaptiveSpt {
    range: usize,
    longest: bool,
}

impl AdaptiveSpt {
    pub(crate) fn parse(p: &Params) -> Result<Self, SpecError> {
        p.only(&["range", "first"])?;
        Ok(AdaptiveSpt {
            range: p.count("range", 64, 1)?,
            longest: p.choice("first", &["shortest", "longest"])? == "longest",
        })
    }
}

/// Where a range is queued.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Queued {
    /// Not queued: nothing pending.
    #[default]
    No,
    /// In `State::unknown`.
    Unknown,
    /// In `State::queue` under this key.
    Known(u64),
}

/// One range of ids: what has been learned and what is pending.
#[derive(Default)]
struct Range {
    /// EMA of task times in ns; `None` until a task of the range completes.
    ema: Option<f64>,
    queued: Queued,
    pending: VecDeque<(TaskId, TaskId)>,
}

#[derive(Default)]
struct State {
    ranges: HashMap<usize, Range>,
    /// `(key, range)` of every learned range with pending ids; the first is served.
    queue: BTreeSet<(u64, usize)>,
    /// Ranges with pending ids and nothing learned, in submission order (a range learned
    /// meanwhile stays listed until it reaches the front, where it is skipped).
    unknown: VecDeque<usize>,
    /// Σ task times and tasks completed: the mean an unknown range counts at.
    total_ns: f64,
    total_tasks: u64,
}

struct Shared {
    width: usize,
    longest: bool,
    state: Mutex<State>,
    pending: AtomicUsize,
}

impl Shared {
    /// Queue key of a learned cost: the first key is served first.
    fn key(&self, ns: f64) -> u64 {
        let ns = ns.round().clamp(0.0, (u64::MAX / 2) as f64) as u64;
        if self.longest {
            u64::MAX - ns
        } else {
            ns
        }
    }

    /// Queue range `b` (it has pending ids): by its learned cost, or as unknown.
    fn requeue(&self, st: &mut State, b: usize) {
        let r = st.ranges.get_mut(&b).expect("range exists");
        let Some(ema) = r.ema else {
            if r.queued == Queued::No {
                r.queued = Queued::Unknown;
                st.unknown.push_back(b);
            }
            return;
        };
        let key = self.key(ema);
        if let Queued::Known(old) = std::mem::replace(&mut r.queued, Queued::Known(key)) {
            st.queue.remove(&(old, b));
        }
        st.queue.insert((key, b));
    }

    /// The range to serve: the best learned one, unless it is worse than the mean (then the
    /// next unknown one, if any).
    fn best(&self, st: &mut State) -> Option<usize> {
        while let Some(&u) = st.unknown.front() {
            if st.ranges[&u].queued == Queued::Unknown {
                break;
            }
            st.unknown.pop_front();
        }
        let known = st.queue.first();
        let explore = st.unknown.front();
        match (known, explore) {
            (Some(&(key, b)), Some(&u)) => {
                let mean = st.total_ns / st.total_tasks.max(1) as f64;
                if st.total_tasks == 0 || key > self.key(mean) {
                    Some(u)
                } else {
                    Some(b)
                }
            }
            (Some(&(_, b)), None) => Some(b),
            (None, u) => u.copied(),
        }
    }
}

impl SharedQueue for Shared {
    fn submit(&self, batch: Batch<'_>) {
        let (mut lo, hi) = batch.ids;
        if lo >= hi {
            return;
        }
        let mut st = lock(&self.state);
        while lo < hi {
            let b = lo / self.width;
            let end = hi.min((b + 1).saturating_mul(self.width));
            st.ranges.entry(b).or_default().pending.push_back((lo, end));
            self.requeue(&mut st, b);
            lo = end;
        }
        self.pending.fetch_add(batch.len(), Ordering::Release);
    }
}

struct Handle(Arc<Shared>);

impl WorkerQueue for Handle {
    fn next(&mut self) -> Next {
        let shared = &self.0;
        if shared.pending.load(Ordering::Acquire) == 0 {
            return Next::Empty(Attempts::default());
        }
        let mut st = lock(&shared.state);
        let Some(b) = shared.best(&mut st) else {
            return Next::Empty(Attempts::default());
        };
        let r = st.ranges.get_mut(&b).expect("queued range exists");
        let front = r.pending.front_mut().expect("queued range has pending ids");
        let task = front.0;
        front.0 += 1;
        if front.0 == front.1 {
            r.pending.pop_front();
        }
        if r.pending.is_empty() {
            match std::mem::take(&mut r.queued) {
                Queued::Unknown => {
                    st.unknown.pop_front();
                }
                Queued::Known(key) => {
                    st.queue.remove(&(key, b));
                }
                Queued::No => {}
            }
        }
        shared.pending.fetch_sub(1, Ordering::Release);
        Next::Task(Pick::one(task, Source::Shared))
    }

    fn completed(&mut self, task: TaskId, ns: u64) {
        let shared = &self.0;
        let b = task / shared.width;
        let mut st = lock(&shared.state);
        let ns = ns as f64;
        st.total_ns += ns;
        st.total_tasks += 1;
        let Some(r) = st.ranges.get_mut(&b) else {
            return;
        };
        r.ema = Some(r.ema.map_or(ns, |e| e + 0.25 * (ns - e)));
        if r.queued != Queued::No {
            shared.requeue(&mut st, b);
        }
    }
}

impl Strategy for AdaptiveSpt {
    fn spec(&self) -> String {
        let first = if self.longest { "longest" } else { "shortest" };
        format!("adaptive-spt(range={},first={first})", self.range)
    }

    fn build(&self, ctx: &Context) -> Instance {
        let shared = Arc::new(Shared {
            width: self.range,
            longest: self.longest,
            state: Mutex::new(State::default()),
            pending: AtomicUsize::new(0),
        });
        Instance {
            shared: shared.clone(),
            workers: (0..ctx.workers())
                .map(|_| Box::new(Handle(shared.clone())) as Box<dyn WorkerQueue>)
                .collect(),
        }
    }
}

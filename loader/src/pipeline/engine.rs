//! The pipeline's run time: stations, segments and tails (the protocol is written up in
//! `docs/pipelines.md`).
//!
//! One epoch of a pipeline is a [`Run`]. Its stages are cut into *segments* at every point
//! that regroups items (a `flat_map`'s output, a `batch`, and the sink at the end). A segment
//! admits at most `window` items at a time; its *stations* (one per 1 → 1 stage) pass items
//! along bounded queues; its *tail* puts them back in source order (or leaves them as ready),
//! regroups them and hands them to the next segment or to the consumer.

use std::any::Any;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;

use scheduler::{Submitter, WorkerId};

use super::stats::StationAcc;
use super::tune::Tuning;

/// A type-erased item.
pub(crate) type Value = Box<dyn Any + Send>;

/// What a stage function made of one item.
pub(crate) enum Out {
    One(Value),
    /// Filtered out.
    None,
    /// A `flat_map`'s children, still to be made (the station is followed by a split tail).
    Many(ChildIter),
}

/// A `flat_map`'s children as its function returned them: an iterator, pulled only as the
/// next segment has room.
pub(crate) type ChildIter = Box<dyn Iterator<Item = Value> + Send>;

/// A `flat_map`'s children waiting in its split tail: the iterator and the index of the next
/// child (the last part of its path).
pub(crate) struct Children {
    iter: ChildIter,
    next: u32,
}

/// Where a stage function runs: a CPU worker of the pool, or blocking thread `i` of its stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runner {
    /// CPU worker `w` of the pipeline's pool.
    Cpu(WorkerId),
    /// Blocking thread `i` of the stage.
    Thread(usize),
}

/// A stage function: the item, the runner's state for this stage, the runner.
pub(crate) type StageFn =
    Arc<dyn Fn(Value, &mut (dyn Any + Send), Runner) -> Result<Out, String> + Send + Sync>;
/// Builds a runner's state for one stage.
pub(crate) type StateInit = Arc<dyn Fn(Runner) -> Box<dyn Any + Send> + Send + Sync>;
/// Turns a batch's items into one value.
pub(crate) type BatchFn = Arc<dyn Fn(Vec<Value>) -> Value + Send + Sync>;

/// Why an item is bad.
#[derive(Clone, Debug)]
pub(crate) struct Fault {
    pub stage: Arc<str>,
    pub src: u64,
    pub message: String,
    pub panicked: bool,
    /// Items behind this fault (a batch with several bad items counts them all).
    pub count: u64,
}

/// What a packet holds.
pub(crate) enum Body {
    Value(Value),
    /// A `flat_map`'s children (only from its station to its split tail, which keeps them).
    Many(Children),
    /// Nothing: filtered out, or a `flat_map` with no children, or skipped.
    Hole,
    Failed(Fault),
}

/// Where an item came from: its source position and, below `flat_map`s, its child path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Part {
    pub src: u64,
    pub path: Vec<u32>,
}

/// One item on its way, with its place in the segment (`seq`) and its origin.
pub(crate) struct Packet {
    pub seq: u64,
    pub parts: Parts,
    pub body: Body,
}

/// The origin of a packet: one part, or the parts of a batch.
#[derive(Clone, Debug)]
pub(crate) enum Parts {
    One(Part),
    Batch(Vec<Part>),
}

impl Parts {
    fn first_src(&self) -> u64 {
        match self {
            Parts::One(p) => p.src,
            Parts::Batch(v) => v.first().map_or(0, |p| p.src),
        }
    }

    pub(crate) fn for_each(&self, mut f: impl FnMut(&Part)) {
        match self {
            Parts::One(p) => f(p),
            Parts::Batch(v) => v.iter().for_each(f),
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Turn a panic payload into its message.
pub(crate) fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// Is a stage's work done on the pool's CPU workers or on threads of its own?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Cpu,
    Blocking,
}

/// The fixed description of one station (a 1 → 1 stage, or a `flat_map` ending a segment).
pub(crate) struct StationSpec {
    pub name: Arc<str>,
    pub kind: Kind,
    /// Most items in service at once; the autotuner may change it during a run.
    pub concurrency: AtomicUsize,
    /// Capacity of the input queue; the autotuner may change it during a run.
    pub queue: AtomicUsize,
    pub f: StageFn,
    /// Index into the runner's per-stage states.
    pub state_slot: usize,
}

impl StationSpec {
    /// Most items in service at once, now.
    pub fn conc(&self) -> usize {
        self.concurrency.load(Relaxed)
    }

    /// The input queue's capacity, now.
    pub fn cap(&self) -> usize {
        self.queue.load(Relaxed)
    }
}

/// How a tail regroups.
#[derive(Clone)]
pub(crate) enum TailKind {
    /// The consumer takes the items.
    Sink,
    /// A `flat_map`'s children become items of the next segment.
    Split,
    /// `size` items become one.
    Batch {
        size: usize,
        keep_partial: bool,
        collate: BatchFn,
        name: Arc<str>,
    },
}

/// What the failure policy makes of a bad item where it is regrouped or delivered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Policy {
    Yield,
    Skip,
    HaltCount(u64),
    HaltFraction(f64),
}

impl Policy {
    fn skips(self) -> bool {
        self == Policy::Skip
    }
}

/// The source of segment 0.
pub(crate) trait Feed: Send {
    /// The next item and its source position, nothing for now, or the end.
    fn next(&mut self) -> Fed;
    /// Source items this epoch, if known (for a failure fraction).
    fn total(&self) -> Option<u64>;
    /// Every source position below `prefix` is fully handed out (called, under the progress
    /// lock, before items are taken): a stateful source may forget what it kept for them.
    fn resolved(&mut self, _prefix: u64) {}
}

/// What a [`Feed`] gives.
pub(crate) enum Fed {
    /// The item at this source position.
    Item(u64, Value),
    /// The source could not read the item at this source position: a failed item (stage
    /// `source`); the source goes on after it.
    Failed(u64, String),
    /// Nothing yet: the owner adds more later (and kicks the feeder).
    Later,
    /// No more items.
    End,
}

/// A station's mutable state (under its lock).
struct StationState {
    queue: VecDeque<Packet>,
    /// Items taken from upstream that will enter `queue` (room reserved for them).
    incoming: usize,
    /// Items handed to a runner (a ticket issued or a thread took one) not yet finished.
    running: usize,
    /// Items a blocking thread was told to take and has not popped yet.
    assigned: usize,
    /// Blocking threads waiting for work.
    idle: usize,
    /// Stage calls running now (inside the stage function): what a stopped run waits for.
    in_call: usize,
    /// CPU stations: items bound to a task id of the stage's job, not started yet.
    bound: HashMap<usize, Packet>,
    acc: StationAcc,
}

pub(crate) struct Station {
    pub spec: StationSpec,
    st: Mutex<StationState>,
    /// Blocking threads wait here for work.
    work: Condvar,
    /// CPU stations: submits tickets to the stage's job on the pool.
    pub submitter: OnceLock<Submitter>,
}

/// Segment admission (under the segment's lock).
struct GateState {
    /// Items admitted and not yet passed out of the tail.
    held: usize,
    /// Sequence numbers handed out so far.
    admitted: u64,
    /// No more items will be admitted: `admitted` is the segment's total.
    closed: bool,
    /// Since when the window has been full, and the time it was full before (for the
    /// autotuner).
    full_since: Option<Instant>,
    full_ns: u128,
}

impl GateState {
    /// Account the window's fullness after `held` changed.
    fn note(&mut self, window: usize) {
        let full = self.held >= window;
        match (full, self.full_since) {
            (true, None) => self.full_since = Some(Instant::now()),
            (false, Some(t)) => {
                self.full_ns += t.elapsed().as_nanos();
                self.full_since = None;
            }
            _ => {}
        }
    }
}

/// The tail's state: the reorder window and what is ready to leave.
struct TailState {
    /// Ordered: packets by `seq − next`; as ready: arrival order (all `Some`).
    window: VecDeque<Option<Packet>>,
    /// The next sequence number to resolve.
    next: u64,
    /// A batch being assembled: values, their parts, its first fault, and segment units.
    cur: Vec<Value>,
    cur_parts: Vec<Part>,
    cur_fault: Option<Fault>,
    cur_units: usize,
    /// Ready to leave, each with the segment units it stands for.
    out: VecDeque<(Packet, usize)>,
    /// Everything of this segment has been resolved (and flushed into `out`).
    ended: bool,
    /// The consumer is waiting (sink only).
    waiting: bool,
}

pub(crate) struct Segment {
    pub stations: Vec<Station>,
    pub tail: TailKind,
    /// Most items admitted at once; the autotuner may change it during a run.
    pub window: AtomicUsize,
    gate: Mutex<GateState>,
    tail_st: Mutex<TailState>,
    /// The consumer waits here (sink tail).
    ready: Condvar,
    feeding: Mutex<()>,
    feed_wanted: AtomicBool,
}

/// How much of the source-level progress a run keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Track {
    /// None (the loader keeps its own).
    Off,
    /// Each source position is one packet (no `flat_map`): resolved when it leaves.
    Single,
    /// Positions split by a `flat_map`: a count of live packets per position.
    #[default]
    Split,
}

/// The child paths of one position split by a `flat_map` that were handed out (delivered,
/// filtered, dropped): kept small, so that the record does not grow with the children of an
/// item split into many. First-level children (paths `[j]`, one `flat_map`) are a prefix and
/// the ones above it, as source positions are: in order (and as ready, up to the spread of the
/// window) that stays a number. Deeper paths (a `flat_map` after a `flat_map`) are a set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ChildPaths {
    /// Every child `[j]` with `j` below this one was handed out.
    prefix: u64,
    /// Children `[j]` at or above `prefix` handed out.
    above: BTreeSet<u32>,
    /// Deeper paths handed out.
    deeper: HashSet<Vec<u32>>,
}

impl ChildPaths {
    /// From the list a state holds.
    pub fn from_paths<'a>(paths: impl IntoIterator<Item = &'a Vec<u32>>) -> ChildPaths {
        let mut c = ChildPaths::default();
        for p in paths {
            c.insert(p);
        }
        c
    }

    /// `path` was handed out.
    pub fn insert(&mut self, path: &[u32]) {
        match path {
            [] => {}
            &[j] => {
                let j = u64::from(j);
                if j == self.prefix {
                    self.prefix += 1;
                    while self
                        .above
                        .first()
                        .is_some_and(|&a| u64::from(a) == self.prefix)
                    {
                        self.above.pop_first();
                        self.prefix += 1;
                    }
                } else if j > self.prefix {
                    self.above.insert(j as u32);
                }
            }
            _ => {
                self.deeper.insert(path.to_vec());
            }
        }
    }

    /// Was `path` handed out?
    pub fn contains(&self, path: &[u32]) -> bool {
        match path {
            [] => false,
            &[j] => u64::from(j) < self.prefix || self.above.contains(&j),
            _ => self.deeper.contains(path),
        }
    }

    /// Every path, for a state: first-level children in order, then the deeper ones sorted.
    pub fn paths(&self) -> Vec<Vec<u32>> {
        let mut deeper: Vec<Vec<u32>> = self.deeper.iter().cloned().collect();
        deeper.sort_unstable();
        (0..self.prefix)
            .map(|j| vec![j as u32])
            .chain(self.above.iter().map(|&j| vec![j]))
            .chain(deeper)
            .collect()
    }
}

/// The source-level progress of a run: which positions are fully resolved.
#[derive(Default)]
pub(crate) struct Progress {
    /// What is kept.
    pub track: Track,
    /// Every source position below this one is resolved.
    pub prefix: u64,
    /// Resolved positions at or above `prefix`.
    pub done: BTreeSet<u64>,
    /// Packets of each live source position still in the pipeline.
    pub live: HashMap<u64, u64>,
    /// Child paths already delivered (or dropped) of live positions split by a `flat_map`.
    pub delivered: HashMap<u64, ChildPaths>,
}

impl Progress {
    fn admit(&mut self, src: u64) {
        if self.track == Track::Split {
            *self.live.entry(src).or_insert(0) += 1;
        }
    }

    /// `children` more packets of `src` (a `flat_map`'s children, made as the next segment
    /// has room; its parent stays live until its iterator has run out).
    fn more_children(&mut self, src: u64, children: usize) {
        if self.track == Track::Split && children > 0 {
            *self.live.entry(src).or_insert(1) += children as u64;
        }
    }

    /// One packet of `src` left the pipeline (delivered, dropped, or split into children).
    fn resolve_one(&mut self, src: u64, path: Option<&[u32]>) {
        if self.track == Track::Off {
            return;
        }
        let last = match self.track {
            Track::Split => {
                if let Some(p) = path.filter(|p| !p.is_empty()) {
                    self.delivered.entry(src).or_default().insert(p);
                }
                let live = self.live.entry(src).or_insert(1);
                *live -= 1;
                *live == 0
            }
            _ => true,
        };
        if last {
            if self.track == Track::Split {
                self.live.remove(&src);
                self.delivered.remove(&src);
            }
            if src == self.prefix {
                self.prefix += 1;
                while self.done.remove(&self.prefix) {
                    self.prefix += 1;
                }
            } else {
                self.done.insert(src);
            }
        }
    }

    /// Already resolved before this run (restored).
    pub fn skips(&self, src: u64) -> bool {
        src < self.prefix || self.done.contains(&src)
    }
}

/// What the consumer gets from the sink.
pub(crate) enum Delivered {
    Value {
        value: Value,
        parts: Parts,
    },
    Failed(Fault),
    /// The failure policy stopped the run.
    Halted {
        failures: u64,
        limit: String,
    },
    End,
}

/// Counts of one run the consumer side keeps.
#[derive(Default)]
struct Tally {
    failures: u64,
    resolved: u64,
    values: u64,
    sources: u64,
    halted: bool,
    last: Option<Instant>,
}

/// Everything one run's threads share.
pub(crate) struct Shared {
    pub segments: Vec<Segment>,
    pub policy: Policy,
    pub ordered: bool,
    pub epoch: u64,
    pub stopped: AtomicBool,
    source: Mutex<Option<Box<dyn Feed>>>,
    /// The source position after the last one fed.
    next_src: std::sync::atomic::AtomicU64,
    source_total: Option<u64>,
    pub progress: Mutex<Progress>,
    /// Children to skip on a restored run: `(src, path)` already delivered.
    restored: HashMap<u64, ChildPaths>,
    tally: Mutex<Tally>,
    pub started: Instant,
    pub first_item: OnceLock<Instant>,
    /// Per-stage trace rows `(stage index, src, ns)`, when tracing.
    pub trace: Option<Mutex<Vec<(u32, u64, u64)>>>,
    /// Items admitted into any segment and not yet out of its tail.
    held: AtomicUsize,
    /// The most ever held at once (shared by the pipeline's runs).
    held_peak: Arc<AtomicUsize>,
    /// What the autotuner did (empty without one).
    pub tuning: Mutex<Tuning>,
    /// Cpu stations also measure their items' thread CPU time (for the autotuner: a wall
    /// time stretches when the CPUs are oversubscribed, a CPU time does not).
    cpu_clock: bool,
}

pub(crate) struct SegmentSpec {
    pub stations: Vec<StationSpec>,
    pub tail: TailKind,
    pub window: usize,
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        segments: Vec<SegmentSpec>,
        policy: Policy,
        ordered: bool,
        epoch: u64,
        source: Box<dyn Feed>,
        progress: Progress,
        trace: bool,
        held_peak: Arc<AtomicUsize>,
        cpu_clock: bool,
    ) -> Shared {
        let mut progress = progress;
        let splits = segments.iter().any(|s| matches!(s.tail, TailKind::Split));
        if progress.track != Track::Off {
            progress.track = if splits { Track::Split } else { Track::Single };
        }
        let restored = progress.delivered.clone();
        let source_total = source.total();
        let segments = segments
            .into_iter()
            .map(|spec| Segment {
                stations: spec
                    .stations
                    .into_iter()
                    .map(|spec| Station {
                        st: Mutex::new(StationState {
                            queue: VecDeque::new(),
                            incoming: 0,
                            running: 0,
                            assigned: 0,
                            idle: 0,
                            in_call: 0,
                            bound: HashMap::new(),
                            acc: StationAcc::new(),
                        }),
                        work: Condvar::new(),
                        submitter: OnceLock::new(),
                        spec,
                    })
                    .collect(),
                tail: spec.tail,
                window: AtomicUsize::new(spec.window),
                gate: Mutex::new(GateState {
                    held: 0,
                    admitted: 0,
                    closed: false,
                    full_since: None,
                    full_ns: 0,
                }),
                tail_st: Mutex::new(TailState {
                    window: VecDeque::new(),
                    next: 0,
                    cur: Vec::new(),
                    cur_parts: Vec::new(),
                    cur_fault: None,
                    cur_units: 0,
                    out: VecDeque::new(),
                    ended: false,
                    waiting: false,
                }),
                ready: Condvar::new(),
                feeding: Mutex::new(()),
                feed_wanted: AtomicBool::new(false),
            })
            .collect();
        Shared {
            segments,
            policy,
            ordered,
            epoch,
            stopped: AtomicBool::new(false),
            source: Mutex::new(Some(source)),
            next_src: std::sync::atomic::AtomicU64::new(0),
            source_total,
            progress: Mutex::new(progress),
            restored,
            tally: Mutex::new(Tally::default()),
            started: Instant::now(),
            first_item: OnceLock::new(),
            trace: trace.then(|| Mutex::new(Vec::new())),
            held: AtomicUsize::new(0),
            held_peak,
            tuning: Mutex::new(Tuning::default()),
            cpu_clock,
        }
    }

    fn stopped(&self) -> bool {
        self.stopped.load(SeqCst)
    }

    /// Stop every stage: blocking threads and a waiting consumer wake and leave.
    pub fn stop(&self) {
        self.stopped.store(true, SeqCst);
        for seg in &self.segments {
            for st in &seg.stations {
                let _g = lock(&st.st);
                st.work.notify_all();
            }
            let _g = lock(&seg.tail_st);
            seg.ready.notify_all();
        }
    }

    // ---- feeding a segment -------------------------------------------------------------

    /// Someone made room in segment `s` (or has items for it): feed it, unless another thread
    /// is feeding it now (that one sees the request and goes round again).
    pub fn kick_feed(&self, s: usize) {
        let seg = &self.segments[s];
        seg.feed_wanted.store(true, SeqCst);
        loop {
            let guard = match seg.feeding.try_lock() {
                Ok(g) => g,
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return,
            };
            while seg.feed_wanted.swap(false, SeqCst) {
                if self.stopped() {
                    break;
                }
                if s == 0 {
                    self.feed_source();
                } else {
                    self.feed_from_tail(s - 1);
                }
            }
            drop(guard);
            if !seg.feed_wanted.load(SeqCst) {
                return;
            }
        }
    }

    /// Room for this many more items in segment `s` now (window and first queue).
    fn room(&self, s: usize) -> usize {
        let seg = &self.segments[s];
        let held = lock(&seg.gate).held;
        let mut room = seg.window.load(Relaxed).saturating_sub(held);
        if let Some(first) = seg.stations.first() {
            let st = lock(&first.st);
            room = room.min(
                first
                    .spec
                    .cap()
                    .saturating_sub(st.queue.len() + st.incoming),
            );
        }
        room
    }

    fn feed_source(&self) {
        let mut room = self.room(0);
        if room == 0 {
            return;
        }
        let mut source = lock(&self.source);
        let mut taken = Vec::new();
        let mut ended = false;
        let mut broke = None;
        if let Some(feed) = source.as_mut() {
            let mut pr = lock(&self.progress);
            let restored = pr.prefix > 0 || !pr.done.is_empty();
            feed.resolved(pr.prefix);
            while room > 0 {
                match catch_unwind(AssertUnwindSafe(|| feed.next())) {
                    Ok(Fed::Item(src, v)) => {
                        self.next_src.store(src + 1, SeqCst);
                        if restored && pr.skips(src) {
                            continue;
                        }
                        pr.admit(src);
                        taken.push((src, Body::Value(v)));
                        room -= 1;
                    }
                    Ok(Fed::Failed(src, message)) => {
                        self.next_src.store(src + 1, SeqCst);
                        if restored && pr.skips(src) {
                            continue;
                        }
                        pr.admit(src);
                        taken.push((
                            src,
                            Body::Failed(Fault {
                                stage: Arc::from("source"),
                                src,
                                message,
                                panicked: false,
                                count: 1,
                            }),
                        ));
                        room -= 1;
                    }
                    Ok(Fed::Later) => break,
                    Ok(Fed::End) => {
                        ended = true;
                        break;
                    }
                    Err(p) => {
                        // The source broke: the epoch ends with an error at the next position.
                        broke = Some(panic_text(p.as_ref()));
                        ended = true;
                        break;
                    }
                }
            }
            if let Some(message) = broke {
                let src = self.next_src.load(SeqCst);
                pr.admit(src);
                taken.push((
                    src,
                    Body::Failed(Fault {
                        stage: Arc::from("source"),
                        src,
                        message,
                        panicked: true,
                        count: 1,
                    }),
                ));
            }
        }
        if ended {
            *source = None;
        }
        drop(source);
        if taken.is_empty() && !ended {
            return;
        }
        let packets = taken.into_iter().map(|(src, body)| {
            (
                Parts::One(Part {
                    src,
                    path: Vec::new(),
                }),
                body,
            )
        });
        self.admit(0, packets, ended);
    }

    /// Move what tail `s` has ready into segment `s + 1`, as far as there is room. A
    /// `flat_map`'s parent stays at the front while its iterator gives children: they are made
    /// here, one for each free place, so that no child exists outside a window.
    fn feed_from_tail(&self, s: usize) {
        let mut room = self.room(s + 1);
        let seg = &self.segments[s];
        let mut moved = Vec::new();
        let mut units = 0;
        let mut ended = false;
        let mut spent = Vec::new();
        {
            let mut t = lock(&seg.tail_st);
            while room > 0 {
                let Some((p, u)) = t.out.pop_front() else {
                    break;
                };
                let (parent, mut children) = match (p.parts, p.body) {
                    (Parts::One(parent), Body::Many(children)) => (parent, children),
                    (parts, body) => {
                        units += u;
                        moved.push((parts, body));
                        room -= 1;
                        continue;
                    }
                };
                // The children are made without the tail's lock: the iterator is the user's
                // code, and the stations finishing items put theirs behind it meanwhile (only
                // this feeder, under the next segment's `feeding` lock, takes from the front).
                drop(t);
                let over = self.pull_children(s, &parent, &mut children, &mut room, &mut moved);
                t = lock(&seg.tail_st);
                if over {
                    // The parent's unit leaves with its last child.
                    units += u;
                    spent.push(children.iter);
                } else {
                    t.out.push_front((
                        Packet {
                            seq: 0,
                            parts: Parts::One(parent),
                            body: Body::Many(children),
                        },
                        u,
                    ));
                }
            }
            if t.out.is_empty() && t.ended {
                ended = true;
            }
        }
        for iter in spent {
            // A user's iterator: its drop may panic too.
            let _ = catch_unwind(AssertUnwindSafe(|| drop(iter)));
        }
        if units > 0 {
            self.release(s, units);
        }
        if !moved.is_empty() || ended {
            self.admit(s + 1, moved.into_iter(), ended);
        }
    }

    /// Make up to `room` children of `parent` (a `flat_map` ending segment `s`) into `moved`;
    /// children delivered before a restore are made and dropped, not counted. True when the
    /// iterator has run out (or panicked: that child is a failure at the parent's position,
    /// and the last). The children are counted live before they are admitted, and the parent
    /// resolved only once its iterator has run out, so that a state taken meanwhile lists the
    /// position as partly handed out.
    fn pull_children(
        &self,
        s: usize,
        parent: &Part,
        children: &mut Children,
        room: &mut usize,
        moved: &mut Vec<(Parts, Body)>,
    ) -> bool {
        let skip = self.restored.get(&parent.src);
        let mut made = 0;
        let mut over = false;
        while *room > 0 {
            let next = catch_unwind(AssertUnwindSafe(|| children.iter.next()));
            let j = children.next;
            let body = match next {
                Ok(None) => {
                    over = true;
                    break;
                }
                Ok(Some(_)) if j == u32::MAX => {
                    over = true;
                    Body::Failed(self.split_fault(
                        s,
                        parent.src,
                        format!("more than {} children of one item", u32::MAX),
                        false,
                    ))
                }
                Ok(Some(v)) => Body::Value(v),
                Err(p) => {
                    over = true;
                    Body::Failed(self.split_fault(s, parent.src, panic_text(p.as_ref()), true))
                }
            };
            children.next = j.saturating_add(1);
            let mut path = Vec::with_capacity(parent.path.len() + 1);
            path.extend_from_slice(&parent.path);
            path.push(j);
            if skip.is_some_and(|d| d.contains(&path)) {
                // Delivered before the restore (and listed as such): not handed on again.
                if over {
                    break;
                }
                continue;
            }
            moved.push((
                Parts::One(Part {
                    src: parent.src,
                    path,
                }),
                body,
            ));
            made += 1;
            *room -= 1;
            if over {
                break;
            }
        }
        if made > 0 || over {
            let mut pr = lock(&self.progress);
            pr.more_children(parent.src, made);
            if over {
                // The parent's own packet: resolved now that every child is counted.
                pr.resolve_one(parent.src, None);
            }
        }
        over
    }

    /// A failure of a `flat_map`'s child iterator (the last station of segment `s`).
    fn split_fault(&self, s: usize, src: u64, message: String, panicked: bool) -> Fault {
        Fault {
            stage: self.segments[s]
                .stations
                .last()
                .map_or_else(|| Arc::from("flat_map"), |t| Arc::clone(&t.spec.name)),
            src,
            message,
            panicked,
            count: 1,
        }
    }

    /// `units` of segment `s` left its tail: room for the segment's feeder.
    fn release(&self, s: usize, units: usize) {
        {
            let mut g = lock(&self.segments[s].gate);
            g.held -= units;
            g.note(self.segments[s].window.load(Relaxed));
        }
        self.held.fetch_sub(units, SeqCst);
        self.kick_feed(s);
    }

    /// Admit packets into segment `s` (the caller checked the room); `close` if no more come.
    fn admit(&self, s: usize, packets: impl Iterator<Item = (Parts, Body)>, close: bool) {
        let seg = &self.segments[s];
        let mut batch = Vec::new();
        {
            let mut g = lock(&seg.gate);
            for (parts, body) in packets {
                let seq = g.admitted;
                g.admitted += 1;
                g.held += 1;
                batch.push(Packet { seq, parts, body });
            }
            g.note(seg.window.load(Relaxed));
            if close {
                g.closed = true;
            }
        }
        let n = batch.len();
        if n > 0 {
            let now = self.held.fetch_add(n, SeqCst) + n;
            self.held_peak.fetch_max(now, SeqCst);
        }
        match seg.stations.first() {
            Some(first) if n > 0 => {
                let mut holes = Vec::new();
                {
                    let mut st = lock(&first.st);
                    st.mark(&first.spec);
                    for p in batch {
                        if matches!(p.body, Body::Value(_)) {
                            st.queue.push_back(p);
                            st.acc.items_in += 1;
                        } else {
                            holes.push(p);
                        }
                    }
                }
                for h in holes {
                    self.to_tail(s, h);
                }
                self.pump(s, 0);
            }
            _ => {
                for p in batch {
                    self.to_tail(s, p);
                }
            }
        }
        if close {
            self.check_end(s);
        }
    }

    // ---- stations ----------------------------------------------------------------------

    /// Station `(s, k)`: hand out as much work as concurrency, input and output room allow.
    pub fn pump(&self, s: usize, k: usize) {
        let seg = &self.segments[s];
        let station = &seg.stations[k];
        let next = seg.stations.get(k + 1);
        let mut st = lock(&station.st);
        let unassigned = st.queue.len() - st.assigned;
        let free = station.spec.conc().saturating_sub(st.running);
        let mut n = unassigned.min(free);
        match station.spec.kind {
            Kind::Cpu => {
                // A CPU worker cannot wait for room downstream: a cpu station reserves its
                // output's place before it starts.
                if n > 0 {
                    if let Some(next) = next {
                        let mut nx = lock(&next.st);
                        let room = next.spec.cap().saturating_sub(nx.queue.len() + nx.incoming);
                        st.mark(&station.spec);
                        st.acc.blocked = room < n;
                        n = n.min(room);
                        nx.incoming += n;
                    }
                }
                if n == 0 {
                    return;
                }
                st.mark(&station.spec);
                st.running += n;
                // Each item is bound to a task id of the stage's job, in queue order, so the
                // job's strategy decides which worker runs which item, and when. Submitting
                // under the station's lock keeps ids and items in step; a worker that picks an
                // id early waits for the lock, and finds its item bound.
                if let Some(Ok(ids)) = station.submitter.get().map(|sub| sub.try_submit(n)) {
                    for id in ids {
                        let p = st.queue.pop_front().expect("n items are queued");
                        st.bound.insert(id, p);
                    }
                }
                let low = st.low(&station.spec);
                drop(st);
                self.room_freed(s, k, low);
            }
            Kind::Blocking => {
                // Only threads waiting for work are woken: a thread that finishes an item takes
                // the next one itself (`claim`), so a busy stage costs no wake-ups.
                n = n.min(st.idle.saturating_sub(st.assigned));
                if n > 0 {
                    if let Some(next) = next {
                        let nx = lock(&next.st);
                        let queued = nx.queue.len() + nx.incoming;
                        n = if queued > next.spec.cap() {
                            // Downstream has more than its queue's worth: the threads that
                            // finish their items take the free slots, nobody is woken.
                            0
                        } else {
                            n.min(budget(&station.spec, &st, &next.spec, &nx))
                        };
                    }
                }
                if n == 0 {
                    return;
                }
                st.mark(&station.spec);
                st.running += n;
                st.assigned += n;
                drop(st);
                for _ in 0..n {
                    station.work.notify_one();
                }
            }
        }
    }

    /// A blocking thread of station `(s, k)` takes the next item itself if the station has an
    /// unassigned one, a free slot and room for the result (under the station's lock).
    fn claim(&self, s: usize, k: usize, st: &mut StationState) -> bool {
        let seg = &self.segments[s];
        let spec = &seg.stations[k].spec;
        if st.queue.len() <= st.assigned || st.running >= spec.conc() {
            return false;
        }
        if let Some(next) = seg.stations.get(k + 1) {
            if budget(spec, st, &next.spec, &lock(&next.st)) == 0 {
                return false;
            }
        }
        st.mark(spec);
        st.running += 1;
        true
    }

    /// A CPU worker runs task `id` of station `(s, k)`'s job: the item bound to it.
    pub fn run_ticket(
        &self,
        s: usize,
        k: usize,
        id: usize,
        state: &mut (dyn Any + Send),
        w: WorkerId,
    ) {
        let station = &self.segments[s].stations[k];
        let packet = {
            let mut st = lock(&station.st);
            // A stopped run starts no new item (checked under the lock `wait_calls` reads).
            match st.bound.remove(&id) {
                Some(p) if !self.stopped() => {
                    st.in_call += 1;
                    p
                }
                _ => return,
            }
        };
        self.process(s, k, packet, state, Runner::Cpu(w));
        self.pump(s, k);
    }

    /// A blocking thread of station `(s, k)`: take items until the run stops.
    pub fn blocking_loop(&self, s: usize, k: usize, state: &mut (dyn Any + Send), i: usize) {
        let station = &self.segments[s].stations[k];
        loop {
            let (packet, low) = {
                let mut st = lock(&station.st);
                loop {
                    if self.stopped() {
                        return;
                    }
                    if self.claim(s, k, &mut st) {
                        let p = st.queue.pop_front();
                        st.in_call += usize::from(p.is_some());
                        break (p, st.low(&station.spec));
                    }
                    // `pump` counted the item as running when it handed it out.
                    if st.assigned > 0 {
                        st.mark(&station.spec);
                        st.assigned -= 1;
                        let p = st.queue.pop_front();
                        st.in_call += usize::from(p.is_some());
                        break (p, st.low(&station.spec));
                    }
                    // Input waiting but no room for its output: back-pressured.
                    let pressed = st.queue.len() > st.assigned;
                    let t = pressed.then(Instant::now);
                    st.idle += 1;
                    st = station
                        .work
                        .wait(st)
                        .unwrap_or_else(PoisonError::into_inner);
                    st.idle -= 1;
                    if let Some(t) = t {
                        st.acc.thread_blocked_ns += t.elapsed().as_nanos();
                    }
                }
            };
            self.room_freed(s, k, low);
            let Some(packet) = packet else { continue };
            self.process(s, k, packet, state, Runner::Thread(i));
        }
    }

    /// Room appeared in station `(s, k)`'s queue: its feeder may go on. The segment's feeder
    /// is called only once the queue is down to half (`low`), so that it takes the source's
    /// lock for a run of items rather than for each one; the items still queued keep the
    /// station busy meanwhile.
    fn room_freed(&self, s: usize, k: usize, low: bool) {
        if k == 0 {
            if low {
                self.kick_feed(s);
            }
        } else {
            self.pump(s, k - 1);
        }
    }

    /// Run the stage function on one packet and pass the result on.
    fn process(
        &self,
        s: usize,
        k: usize,
        packet: Packet,
        state: &mut (dyn Any + Send),
        runner: Runner,
    ) {
        let station = &self.segments[s].stations[k];
        let Packet { seq, parts, body } = packet;
        let Body::Value(v) = body else {
            unreachable!("only values enter a station")
        };
        let cpu0 = (self.cpu_clock && station.spec.kind == Kind::Cpu)
            .then(thread_cpu_ns)
            .flatten();
        let t = Instant::now();
        let r = catch_unwind(AssertUnwindSafe(|| (station.spec.f)(v, state, runner)));
        let ns = t.elapsed().as_nanos() as u64;
        let cpu_ns = cpu0.and_then(|a| thread_cpu_ns().map(|b| b.saturating_sub(a)));
        let src = parts.first_src();
        let fault = |message: String, panicked: bool| Fault {
            stage: Arc::clone(&station.spec.name),
            src,
            message,
            panicked,
            count: 1,
        };
        let (body, failed) = match r {
            Ok(Ok(Out::One(v))) => (Body::Value(v), false),
            Ok(Ok(Out::None)) => (Body::Hole, false),
            Ok(Ok(Out::Many(iter))) => (Body::Many(Children { iter, next: 0 }), false),
            Ok(Err(m)) => (Body::Failed(fault(m, false)), true),
            Err(p) => (Body::Failed(fault(panic_text(p.as_ref()), true)), true),
        };
        if let Some(trace) = &self.trace {
            lock(trace).push((station.spec.state_slot as u32, src, ns));
        }
        let mut out = Some(Packet { seq, parts, body });
        let passes_on = matches!(out.as_ref().map(|p| &p.body), Some(Body::Value(_)));
        let next = self.segments[s].stations.get(k + 1);
        // A cpu station reserved its output's place in the next queue; a blocking station's
        // budget counts the item until it is there: the slot is given up and the item queued
        // in one step, under both locks (in station order).
        let reserved = station.spec.kind == Kind::Cpu;
        {
            let mut st = lock(&station.st);
            st.mark(&station.spec);
            st.running -= 1;
            st.in_call -= 1;
            st.acc.done(
                ns,
                failed,
                passes_on || matches!(out.as_ref().map(|p| &p.body), Some(Body::Many(_))),
            );
            if let Some(c) = cpu_ns {
                st.acc.cpu_ns += u128::from(c);
                st.acc.cpu_items += 1;
            }
            if let Some(next) = next.filter(|_| passes_on || reserved) {
                let mut nx = lock(&next.st);
                if reserved {
                    nx.incoming -= 1;
                }
                if passes_on {
                    nx.mark(&next.spec);
                    nx.queue.extend(out.take());
                    nx.acc.items_in += 1;
                }
            }
        }
        match out {
            // The end of the segment, or a hole or a failure, which skips the rest of it.
            Some(p) => {
                self.to_tail(s, p);
                if next.is_some() && reserved {
                    // Its reserved place downstream is free again.
                    self.pump(s, k);
                }
            }
            None => self.pump(s, k + 1),
        }
    }

    // ---- tails -------------------------------------------------------------------------

    /// A packet reached the end of segment `s`.
    fn to_tail(&self, s: usize, p: Packet) {
        let seg = &self.segments[s];
        let mut t = lock(&seg.tail_st);
        if self.ordered {
            let at = (p.seq - t.next) as usize;
            if t.window.len() <= at {
                t.window.resize_with(at + 1, || None);
            }
            t.window[at] = Some(p);
        } else {
            t.window.push_back(Some(p));
        }
        let before = (t.out.len(), t.ended);
        let freed = self.resolve(s, &mut t);
        let produced = (t.out.len(), t.ended) != before;
        self.after_tail(s, t, freed, produced);
    }

    /// After a tail changed: free the units that produced nothing, wake the consumer, or feed
    /// the next segment. Never feeds under the tail's lock (feeding takes it).
    fn after_tail(&self, s: usize, t: MutexGuard<'_, TailState>, freed: usize, produced: bool) {
        let seg = &self.segments[s];
        let has_out = !t.out.is_empty() || t.ended;
        if matches!(seg.tail, TailKind::Sink) && has_out && t.waiting {
            seg.ready.notify_one();
        }
        drop(t);
        if freed > 0 {
            self.release(s, freed);
        }
        // What was ready before was offered to the next segment then; it takes more when it
        // frees room (its feeder is this tail).
        if produced && !matches!(seg.tail, TailKind::Sink) {
            self.kick_feed(s + 1);
        }
    }

    /// Take every packet that is next in order (or any, as ready) through the tail; returns
    /// the segment units that left without output.
    fn resolve(&self, s: usize, t: &mut TailState) -> usize {
        let mut freed = 0;
        while let Some(Some(_)) = t.window.front() {
            let p = t.window.pop_front().flatten().expect("checked");
            t.next += 1;
            self.through_tail(s, t, p, &mut freed);
        }
        self.check_end_locked(s, t, &mut freed);
        freed
    }

    /// One resolved packet through tail `s`.
    fn through_tail(&self, s: usize, t: &mut TailState, p: Packet, freed: &mut usize) {
        let seg = &self.segments[s];
        let is_batch = matches!(seg.tail, TailKind::Batch { .. });
        match p.body {
            Body::Hole => {
                self.consumed(&p.parts);
                *freed += 1;
            }
            Body::Failed(f) if self.policy.skips() => {
                lock(&self.tally).failures += f.count;
                self.consumed(&p.parts);
                *freed += 1;
            }
            Body::Failed(f) if is_batch => {
                match t.cur_fault.as_mut() {
                    Some(cf) => cf.count += f.count,
                    None => t.cur_fault = Some(f),
                }
                p.parts.for_each(|part| t.cur_parts.push(part.clone()));
                t.cur_units += 1;
                self.batch_maybe_full(s, t, false, freed);
            }
            Body::Value(v) if is_batch => {
                t.cur.push(v);
                p.parts.for_each(|part| t.cur_parts.push(part.clone()));
                t.cur_units += 1;
                self.batch_maybe_full(s, t, false, freed);
            }
            body => {
                t.out.push_back((
                    Packet {
                        seq: 0,
                        parts: p.parts,
                        body,
                    },
                    1,
                ));
            }
        }
    }

    /// Close the batch being assembled if it is full (or `force` at the segment's end).
    fn batch_maybe_full(&self, s: usize, t: &mut TailState, force: bool, freed: &mut usize) {
        let TailKind::Batch {
            size,
            keep_partial,
            collate,
            name,
        } = &self.segments[s].tail
        else {
            return;
        };
        let members = t.cur_parts.len();
        if members == 0 || (members < *size && !force) {
            return;
        }
        let parts = std::mem::take(&mut t.cur_parts);
        let values = std::mem::take(&mut t.cur);
        let units = std::mem::take(&mut t.cur_units);
        let fault = t.cur_fault.take();
        if members < *size && !keep_partial {
            // The remainder is dropped: its items are resolved here.
            let mut pr = lock(&self.progress);
            for part in &parts {
                pr.resolve_one(part.src, Some(&part.path));
            }
            *freed += units;
            return;
        }
        let body = match fault {
            Some(f) => Body::Failed(f),
            None => {
                let src = parts.first().map_or(0, |p| p.src);
                match catch_unwind(AssertUnwindSafe(|| collate(values))) {
                    Ok(v) => Body::Value(v),
                    Err(p) => Body::Failed(Fault {
                        stage: Arc::clone(name),
                        src,
                        message: panic_text(p.as_ref()),
                        panicked: true,
                        count: 1,
                    }),
                }
            }
        };
        t.out.push_back((
            Packet {
                seq: 0,
                parts: Parts::Batch(parts),
                body,
            },
            units,
        ));
    }

    /// The packet's parts left the pipeline.
    fn consumed(&self, parts: &Parts) {
        let mut pr = lock(&self.progress);
        parts.for_each(|p| pr.resolve_one(p.src, Some(&p.path)));
    }

    fn check_end(&self, s: usize) {
        let seg = &self.segments[s];
        let mut t = lock(&seg.tail_st);
        let mut freed = 0;
        let before = (t.out.len(), t.ended);
        self.check_end_locked(s, &mut t, &mut freed);
        let produced = (t.out.len(), t.ended) != before;
        self.after_tail(s, t, freed, produced);
    }

    /// Segment `s` is over when its gate is closed and every admitted item was resolved
    /// (`next` counts resolved packets in both modes).
    fn check_end_locked(&self, s: usize, t: &mut TailState, freed: &mut usize) {
        if t.ended {
            return;
        }
        let (closed, admitted) = {
            let g = lock(&self.segments[s].gate);
            (g.closed, g.admitted)
        };
        if closed && t.next == admitted {
            self.batch_maybe_full(s, t, true, freed);
            t.ended = true;
        }
    }

    // ---- the consumer ------------------------------------------------------------------

    /// The next delivery of the sink; blocks.
    pub fn take(&self) -> Delivered {
        let s = self.segments.len() - 1;
        let seg = &self.segments[s];
        self.kick_feed(0);
        let mut t = lock(&seg.tail_st);
        loop {
            if lock(&self.tally).halted || self.stopped() {
                return Delivered::End;
            }
            if let Some((p, units)) = t.out.pop_front() {
                drop(t);
                if units > 0 {
                    self.release(s, units);
                }
                return self.deliver(p);
            }
            if t.ended {
                return Delivered::End;
            }
            t.waiting = true;
            t = seg.ready.wait(t).unwrap_or_else(PoisonError::into_inner);
            t.waiting = false;
        }
    }

    fn deliver(&self, p: Packet) -> Delivered {
        let _ = self.first_item.set(Instant::now());
        match p.body {
            Body::Value(value) => {
                self.consumed(&p.parts);
                let mut tally = lock(&self.tally);
                tally.resolved += 1;
                tally.values += 1;
                tally.sources += match &p.parts {
                    Parts::One(_) => 1,
                    Parts::Batch(v) => v.len() as u64,
                };
                tally.last = Some(Instant::now());
                drop(tally);
                Delivered::Value {
                    value,
                    parts: p.parts,
                }
            }
            Body::Failed(f) => {
                self.consumed(&p.parts);
                let mut tally = lock(&self.tally);
                tally.failures += f.count;
                tally.resolved += 1;
                let over = match self.policy {
                    Policy::HaltCount(n) => (tally.failures > n).then(|| format!("{n} failures")),
                    Policy::HaltFraction(x) => {
                        let total = self.source_total.unwrap_or(tally.resolved).max(1);
                        (tally.failures as f64 > x * total as f64)
                            .then(|| format!("a fraction {x} of {total} items"))
                    }
                    _ => None,
                };
                if let Some(limit) = over {
                    tally.halted = true;
                    let failures = tally.failures;
                    drop(tally);
                    self.stop();
                    return Delivered::Halted { failures, limit };
                }
                Delivered::Failed(f)
            }
            Body::Hole | Body::Many(_) => unreachable!("resolved in the tail"),
        }
    }

    /// Failures so far (delivered or skipped).
    pub fn failures(&self) -> u64 {
        lock(&self.tally).failures
    }

    /// Items handed to the consumer so far, and the source items in them.
    pub fn delivered(&self) -> (u64, u64) {
        let t = lock(&self.tally);
        (t.values, t.sources)
    }

    /// When the last item was handed out.
    pub fn last_item(&self) -> Option<Instant> {
        lock(&self.tally).last
    }

    /// The failure policy stopped the run.
    pub fn halted(&self) -> bool {
        lock(&self.tally).halted
    }

    /// Station `(s, k)`'s finished items and their total service time (ns; thread CPU time
    /// when a cpu station measures it), and the p99.9 of the wall service time, for the
    /// autotuner.
    pub fn station_counts(&self, s: usize, k: usize) -> (u64, u128, u64) {
        let g = lock(&self.segments[s].stations[k].st);
        let n = g.acc.service.len();
        let tail = if n > 0 {
            g.acc.service.value_at_quantile(0.999)
        } else {
            0
        };
        if g.acc.cpu_items > 0 {
            (g.acc.cpu_items, g.acc.cpu_ns, tail)
        } else {
            (n, g.acc.service_ns, tail)
        }
    }

    /// Station `(s, k)`'s finished items so far (one lock, no quantile: the loader reads it
    /// per batch).
    pub fn station_done(&self, s: usize, k: usize) -> u64 {
        lock(&self.segments[s].stations[k].st).acc.service.len()
    }

    /// The time segment `s`'s window has been full so far, ns.
    pub fn window_full_ns(&self, s: usize) -> u128 {
        let g = lock(&self.segments[s].gate);
        g.full_ns + g.full_since.map_or(0, |t| t.elapsed().as_nanos())
    }

    /// The time station `(s, k)` had a free slot and no input so far, ns.
    pub fn starved_ns(&self, s: usize, k: usize) -> u64 {
        let st = &self.segments[s].stations[k];
        let mut g = lock(&st.st);
        g.mark(&st.spec);
        g.acc.starved_ns
    }

    /// Stage calls running now, per station with any: `(name, calls)`.
    pub fn calls_running(&self) -> Vec<(Arc<str>, usize)> {
        self.segments
            .iter()
            .flat_map(|g| &g.stations)
            .filter_map(|t| {
                let n = lock(&t.st).in_call;
                (n > 0).then(|| (Arc::clone(&t.spec.name), n))
            })
            .collect()
    }

    /// The epoch's source length, if the source knows it.
    pub fn source_total(&self) -> Option<u64> {
        self.source_total
    }

    /// The run was stopped.
    pub fn is_stopped(&self) -> bool {
        self.stopped()
    }

    /// A snapshot of station `(s, k)`'s statistics.
    pub fn station_acc(&self, s: usize, k: usize) -> StationAcc {
        let st = &self.segments[s].stations[k];
        let mut g = lock(&st.st);
        g.mark(&st.spec);
        g.acc.clone()
    }

    /// Segment `s`'s station `k`, for the run's set-up.
    pub fn station(&self, s: usize, k: usize) -> &Station {
        &self.segments[s].stations[k]
    }
}

/// The calling thread's CPU time in ns (`None` where the platform has no such clock):
/// `CLOCK_THREAD_CPUTIME_ID`, the clock the pipeline's per-item CPU times come from. Public for
/// the Python bindings' GIL statistics, which measure on the same clock.
#[cfg(unix)]
pub fn thread_cpu_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID needs nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// The calling thread's CPU time in ns: `None`, this platform has no per-thread CPU clock.
#[cfg(not(unix))]
pub fn thread_cpu_ns() -> Option<u64> {
    None
}

/// Items blocking station `spec` may still start: its threads and the next queue (`nspec`,
/// state `nx`) together hold at most its concurrency plus that queue's capacity, so a thread
/// that finishes an item always has a place for it.
fn budget(spec: &StationSpec, st: &StationState, nspec: &StationSpec, nx: &StationState) -> usize {
    spec.conc()
        .saturating_add(nspec.cap())
        .saturating_sub(st.running + nx.queue.len() + nx.incoming)
}

impl StationState {
    /// The queue is down to half its capacity or less: time to feed it.
    fn low(&self, spec: &StationSpec) -> bool {
        self.queue.len() + self.incoming <= spec.cap() / 2
    }

    /// Account the time since the last change to the state the station was in.
    fn mark(&mut self, spec: &StationSpec) {
        let unassigned = self.queue.len() - self.assigned;
        self.acc.advance(
            self.queue.len() + self.incoming,
            unassigned,
            self.running,
            spec.conc(),
            spec.cap(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Progress {
        /// Entries kept for the children of `src` handed out (what grows with them).
        fn kept_paths(&self, src: u64) -> usize {
            self.delivered
                .get(&src)
                .map_or(0, |c| 1 + c.above.len() + c.deeper.len())
        }
    }

    #[test]
    fn the_record_of_a_split_positions_children_handed_out_stays_small() {
        let n = 100_000u32;
        let mut pr = Progress {
            track: Track::Split,
            ..Progress::default()
        };
        pr.admit(0);
        pr.more_children(0, n as usize);
        // in order (an ordered pipeline), then out of order (as ready): 1, 0, 3, 2, …
        for j in 0..n / 2 {
            pr.resolve_one(0, Some(&[j]));
        }
        assert!(pr.kept_paths(0) <= 1, "{} entries", pr.kept_paths(0));
        for pair in (n / 2..n).step_by(2) {
            pr.resolve_one(0, Some(&[pair + 1]));
            pr.resolve_one(0, Some(&[pair]));
        }
        assert!(pr.kept_paths(0) <= 1, "{} entries", pr.kept_paths(0));
        assert!(!pr.skips(0), "the parent's iterator has not run out");
        pr.resolve_one(0, None);
        assert!(pr.skips(0) && pr.delivered.is_empty() && pr.live.is_empty());
    }

    #[test]
    fn child_paths_hold_what_was_inserted_and_list_it_for_a_state() {
        let listed: Vec<Vec<u32>> = vec![vec![0], vec![1], vec![3], vec![7, 2], vec![7, 0]];
        let c = ChildPaths::from_paths(&listed);
        for p in &listed {
            assert!(c.contains(p), "{p:?}");
        }
        for p in [vec![2], vec![4], vec![7], vec![7, 1], vec![0, 0], vec![]] {
            assert!(!c.contains(&p), "{p:?}");
        }
        let back = c.paths();
        assert_eq!(
            back,
            vec![vec![0], vec![1], vec![3], vec![7, 0], vec![7, 2]]
        );
        assert_eq!(ChildPaths::from_paths(&back), c);
        let mut top = ChildPaths::default();
        top.insert(&[u32::MAX]);
        assert!(top.contains(&[u32::MAX]) && !top.contains(&[0]));
    }
}

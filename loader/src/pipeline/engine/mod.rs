//! The pipeline's run time: stations, segments and tails. The protocol (every lock, the lock
//! order, every wake-up, and why no item is lost or delivered twice) is written up in
//! `../README.md`; read it before changing anything here.
//!
//! One epoch of a pipeline is a run, whose threads share one [`Shared`]. Its stages are cut
//! into *segments* at every point that regroups items (a `flat_map`'s output, a `batch`, and
//! the sink at the end). A segment admits at most `window` items at a time; its *stations*
//! (one per 1 → 1 stage) pass items along bounded queues; its *tail* puts them back in source
//! order (or leaves them as ready), regroups them and hands them to the next segment or to the
//! consumer.
//!
//! One file per role, each an `impl Shared` block over the types defined here:
//!
//! * `feed.rs`: feeding and admission (the source, a tail into the next segment, the window);
//! * `station.rs`: stations and hand-off (handing out work, running a stage function, passing
//!   the result on);
//! * `blocking.rs`: a blocking stage's threads;
//! * `tail.rs`: tails and delivery (reordering, batching, the consumer);
//! * `account.rs`: source-level progress (for resume) and the statistics read from outside.

use std::any::{Any, TypeId};
use std::collections::{HashMap, VecDeque};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use scheduler::{Submitter, WorkerId};

use super::stats::StationAcc;
use super::tune::Tuning;

mod account;
mod baton;
mod blocking;
mod feed;
mod lane;
mod post;
mod reorder;
mod station;
mod tail;
mod ticket;

use crate::sync::atomic::AtomicBool;
use lane::Lane;
use post::Post;
use reorder::Reorder;
use ticket::Tickets;

pub use account::thread_cpu_ns;
pub(crate) use account::{ChildPaths, Progress, Track};

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

/// A runner's states, one per stage, by the stage's state slot: a CPU worker has one for every
/// cpu stage (it may run an item through several, `station.rs`), a blocking thread its own.
pub trait StageStates {
    /// The state of the stage whose state slot is `slot`.
    fn state(&mut self, slot: usize) -> &mut (dyn Any + Send);
}

/// A blocking thread's one state (it only ever runs its own stage).
pub(crate) struct OneState<'a>(pub &'a mut (dyn Any + Send));

impl StageStates for OneState<'_> {
    fn state(&mut self, _slot: usize) -> &mut (dyn Any + Send) {
        &mut *self.0
    }
}

/// A stage function: the item, the runner's state for this stage, the runner.
pub(crate) type StageFn =
    Arc<dyn Fn(Value, &mut (dyn Any + Send), Runner) -> Result<Out, String> + Send + Sync>;
/// A blocking stage's function on several items at once (`chunk`): one result per item, in
/// order.
pub(crate) type ChunkFn = Arc<
    dyn Fn(Vec<Value>, &mut (dyn Any + Send), Runner) -> Vec<Result<Out, String>> + Send + Sync,
>;
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
    Failed(Box<Fault>),
}

/// Where an item came from: its source position and, below `flat_map`s, its child path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Part {
    pub src: u64,
    pub path: Box<[u32]>,
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

/// `f` applied to the item in `v` (a `T`), its result as a [`Value`]. When `f` keeps the type
/// (`U` is `T`), the result goes back into the item's own box: a `map` that keeps the type
/// allocates nothing per item.
pub(crate) fn map_value<T: Send + 'static, U: Send + 'static, E>(
    v: Value,
    f: impl FnOnce(T) -> Result<U, E>,
) -> Result<Value, E> {
    let Ok(b) = v.downcast::<T>() else {
        unreachable!("the builder's types line up")
    };
    if TypeId::of::<U>() != TypeId::of::<T>() {
        return f(*b).map(|u| Box::new(u) as Value);
    }
    let raw = Box::into_raw(b);
    // SAFETY: `raw` comes from a `Box<T>` and holds a `T`, read out here exactly once; from
    // then on its allocation is owned by `slot`, a box of `MaybeUninit<T>` (the same layout),
    // which frees it without dropping anything on every way out (an error, a panic in `f`).
    let (t, mut slot) = unsafe { (raw.read(), Box::from_raw(raw.cast::<MaybeUninit<T>>())) };
    let mut u = Some(f(t)?);
    let Some(t) = (&mut u as &mut dyn Any)
        .downcast_mut::<Option<T>>()
        .and_then(Option::take)
    else {
        unreachable!("`U` is `T`: the same type id")
    };
    slot.write(t);
    // SAFETY: `slot` was just written with a `T`.
    Ok(unsafe { slot.assume_init() })
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
    /// An item whose call took longer than this fails (its value is discarded); the call is
    /// timed anyway, so this costs no clock read.
    pub timeout: Option<Duration>,
    /// A cpu station whose strategy lets any worker take its next item (the default,
    /// `central`): the CPU worker that finished the item before it may run it at once
    /// (`station.rs`, "run on").
    pub any_runner: bool,
    /// Most items one call takes (1, or a blocking station's chunk: `blocking.rs`).
    pub chunk: usize,
    /// The function on a chunk of items, where `chunk > 1`.
    pub chunked: Option<ChunkFn>,
    /// A chunk's most expected time (`Stage::chunk_time`): see [`StationSpec::chunk_now`].
    pub chunk_ns: Option<u64>,
    /// The autotuner leaves its threads alone (`Stage::fixed`).
    pub fixed: bool,
}

impl StationSpec {
    /// Calls in service at once, now (a blocking station's threads).
    pub fn conc(&self) -> usize {
        self.concurrency.load(Relaxed)
    }

    /// The most items a thread takes for one call now: `chunk`, or, under a chunk time, as
    /// many as the stage's mean time per item so far fits in it (1 before any item
    /// finished; read under the station's lock).
    fn chunk_now(&self, st: &StationState) -> usize {
        let Some(limit) = self.chunk_ns else {
            return self.chunk;
        };
        let done = st.acc.service.len();
        if done == 0 {
            return 1;
        }
        let mean = (st.acc.service_ns / u128::from(done)).max(1);
        let fits = u128::from(limit) / mean;
        fits.clamp(1, self.chunk as u128) as usize
    }

    /// Most items in service at once, now: each call may hold a chunk.
    pub fn slots(&self) -> usize {
        self.conc().saturating_mul(self.chunk)
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
    /// No more items.
    End,
}

/// A station's mutable state (under its lock).
struct StationState {
    /// The input queue, and the places reserved in it by the station before (`lane.rs`).
    lane: Lane<Packet>,
    /// Items handed to a runner (a ticket issued or a thread took one) not yet finished.
    running: usize,
    /// Items a blocking thread was told to take and has not popped yet.
    assigned: usize,
    /// Blocking threads waiting for work.
    idle: usize,
    /// CPU stations: the next task id of the stage's job (ids are bound in order, under this
    /// lock, in `tickets`).
    next_id: usize,
    acc: StationAcc,
}

pub(crate) struct Station {
    pub spec: StationSpec,
    /// Its state; blocking threads wait here for work (`post.rs`).
    st: Post<StationState>,
    /// Items bound to task ids and not started (cpu stations), and the stage calls running
    /// (both kinds): `ticket.rs`.
    tickets: Tickets<Packet>,
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
    /// Ordered: packets by sequence number; as ready: arrival order (`reorder.rs`). Its
    /// `resolved()` counts resolved packets in both modes.
    order: Reorder<Packet>,
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
    /// The tail's state; the consumer waits here (sink tail).
    tail_st: Post<TailState>,
    /// Whoever holds it feeds the segment; a kick while it is held is served by the holder.
    feeder: baton::Baton,
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
    /// The autotuner's feedback floors (per station, per segment), carried from run to run.
    pub floors: Mutex<Floors>,
    /// Cpu stations also measure their items' thread CPU time (for the autotuner: a wall
    /// time stretches when the CPUs are oversubscribed, a CPU time does not).
    cpu_clock: bool,
}

/// The least the autotuner's feedback has asked for (it only raises them): per station its
/// concurrency, per segment its window; empty until the first feedback. A run starts with
/// the last run's (an epoch's starvation is the next epoch's too), so the model's first
/// readings of a new epoch do not take back what the last one learned.
#[derive(Clone, Debug, Default)]
pub(crate) struct Floors {
    pub stations: Vec<usize>,
    pub windows: Vec<usize>,
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
                        st: Post::new(StationState {
                            lane: Lane::new(),
                            running: 0,
                            assigned: 0,
                            idle: 0,
                            next_id: 0,
                            acc: StationAcc::new(),
                        }),
                        submitter: OnceLock::new(),
                        tickets: Tickets::new(match spec.kind {
                            Kind::Cpu => ticket::RING,
                            Kind::Blocking => 1,
                        }),
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
                tail_st: Post::new(TailState {
                    order: Reorder::new(),
                    cur: Vec::new(),
                    cur_parts: Vec::new(),
                    cur_fault: None,
                    cur_units: 0,
                    out: VecDeque::new(),
                    ended: false,
                    waiting: false,
                }),
                feeder: baton::Baton::new(),
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
            floors: Mutex::new(Floors::default()),
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
                st.st.wake_all();
            }
            seg.tail_st.wake_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{map_value, Value};
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;

    /// A value that counts its drops.
    struct Counted(u64, Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.1.fetch_add(1, SeqCst);
        }
    }

    fn counted(n: u64) -> (Value, Arc<AtomicUsize>) {
        let drops = Arc::new(AtomicUsize::new(0));
        (Box::new(Counted(n, Arc::clone(&drops))), drops)
    }

    #[test]
    fn a_map_that_keeps_the_type_reuses_the_items_box_and_drops_each_value_once() {
        let (v, drops) = counted(5);
        let before = &*v as *const _ as *const u8;
        // Something the size of the item allocated inside the map and kept: had the input's box
        // been freed, it could take that place, and the result could not have the same one.
        let mut kept = Vec::new();
        let out = map_value(v, |c: Counted| {
            let next = Counted(c.0 + 1, Arc::clone(&c.1));
            drop(c);
            kept.push(Box::new([0u64; 2]));
            Ok::<_, ()>(next)
        })
        .unwrap_or_else(|()| unreachable!());
        assert_eq!(&*out as *const _ as *const u8, before, "the same box");
        assert_eq!(
            drops.load(SeqCst),
            1,
            "the input was dropped by the map, once"
        );
        let c = out.downcast::<Counted>().unwrap_or_else(|_| unreachable!());
        assert_eq!(c.0, 6);
        drop(c);
        assert_eq!(drops.load(SeqCst), 2);
    }

    #[test]
    fn a_failing_or_panicking_map_that_keeps_the_type_drops_the_item_once() {
        let (v, drops) = counted(1);
        let r = map_value(v, |c: Counted| {
            drop(c);
            Err::<Counted, _>("bad")
        });
        assert!(matches!(r, Err("bad")));
        assert_eq!(drops.load(SeqCst), 1);

        let (v, drops) = counted(2);
        let r = catch_unwind(AssertUnwindSafe(|| {
            map_value(v, |c: Counted| -> Result<Counted, ()> {
                let _held = c;
                panic!("in the map")
            })
        }));
        assert!(r.is_err());
        assert_eq!(drops.load(SeqCst), 1, "dropped by the unwinding, once");
    }

    #[test]
    fn a_map_that_changes_the_type_boxes_its_result() {
        let (v, drops) = counted(3);
        let out =
            map_value(v, |c: Counted| Ok::<_, ()>(c.0 * 2)).unwrap_or_else(|()| unreachable!());
        assert_eq!(drops.load(SeqCst), 1);
        assert_eq!(*out.downcast::<u64>().unwrap_or_else(|_| unreachable!()), 6);
    }
}

//! The sim engine: a deterministic discrete-event simulation in virtual nanoseconds.
//!
//! It drives a strategy through the same calls as the threads engine (`build`, `submit`,
//! `next`, `completed`) and reports through the same `report::finish`, but time is a number the
//! engine advances from event to event instead of a clock. `README.md` beside this file
//! describes the event model: worker states, what each event does, what is charged, parking and
//! termination.

mod cost;
mod events;
mod pipeline;
mod trace;

use std::sync::Arc;

pub use cost::CostModel;
pub use pipeline::{
    simulate_pipeline, SimPipeline, SimPipelineError, SimPipelineReport, SimStage, SimStageKind,
    SimStageReport,
};
pub use trace::{
    PipelineTrace, TraceStage, MAX_PIPELINE_TRACE_BYTES, PIPELINE_TRACE_HEADER,
    PIPELINE_TRACE_MAGIC,
};

use crate::engine::{meta, setup};
use crate::error::{RunError, SpecError};
use crate::report::{finish, Histograms, RunReport, Span, Tally};
use crate::spec::{RunSpec, Tasks, Timing};
use crate::strategy::{Batch, Next, SharedQueue, Source, Strategy, WorkerQueue};
use crate::{TaskId, WorkerId};
use events::{EventQueue, Parked, What, ARRIVAL};

/// Simulate tasks `0..tasks.n` on `spec.workers` virtual workers under `strategy`, charging
/// scheduling costs from `cost`, and report as the threads engine does (engine `"sim"`).
///
/// A task of nominal cost `c` (from `tasks.cost_ns`, which the simulator requires) runs for
/// `c / speed` ns on a worker of that speed (rounded to the nanosecond), plus the migration
/// penalty if it was stolen across NUMA nodes. Workers' nodes come from `spec.slots()`, so a
/// synthetic topology (`"2x4".parse()`) gives a NUMA machine. Closed runs submit every task at
/// time 0; open runs submit each release time's tasks as one batch at that time. The run is a
/// pure function of its inputs: the same spec, seed, strategy, tasks and costs give a
/// byte-identical [`RunReport::to_json`].
///
/// Measured per task whatever `spec.timing` says (virtual time costs nothing to read; a
/// `Timing::Off` run is measured as `tasks` and says so in `notes`). The report also carries
/// `events` (events simulated) and `mean_in_system` (time-averaged number of released,
/// unfinished tasks), which the threads engine leaves out.
///
/// ```
/// use scheduler::{run_sim, CostModel, RunSpec, Tasks};
/// # use scheduler::doc_support::FifoStrategy as SomeStrategy;
/// // `SomeStrategy` stands for any strategy, e.g. one parsed by the `strategies` crate.
/// let costs = vec![1_000u64; 10]; // ten tasks of 1 µs
/// let spec = RunSpec::new(4).with_seed(1);
/// let report = run_sim(&spec, &SomeStrategy, &Tasks::with_costs(&costs), &CostModel::zero()).unwrap();
/// assert_eq!(report.engine, "sim");
/// assert_eq!(report.executed, 10);
/// assert_eq!(report.makespan_ns, 3_000); // ceil(10 / 4) tasks of 1 µs on the busiest worker
/// assert_eq!(report.to_json(), run_sim(&spec, &SomeStrategy, &Tasks::with_costs(&costs), &CostModel::zero()).unwrap().to_json());
/// ```
///
/// # Errors
/// [`RunError::Invalid`] when the spec or task table is inconsistent, when `tasks.cost_ns` is
/// missing, or when the strategy breaks its contract (hands out a task twice or out of range,
/// names a victim that does not exist, or stops handing out tasks while some never ran).
pub fn run_sim(
    spec: &RunSpec,
    strategy: &dyn Strategy,
    tasks: &Tasks<'_>,
    cost: &CostModel,
) -> Result<RunReport, RunError> {
    run_sim_with(spec, strategy, tasks, cost, |_| {})
}

/// [`run_sim`], calling `on_task` with every task's execution span as it completes (in
/// completion order). For measurements the report does not hold, such as a mean wait that
/// discards a warm-up, without keeping a timeline of millions of spans.
///
/// ```
/// use scheduler::{run_sim_with, CostModel, RunSpec, Tasks};
/// # use scheduler::doc_support::FifoStrategy;
/// let costs = [5u64, 5, 5];
/// let mut ends = Vec::new();
/// run_sim_with(&RunSpec::new(1), &FifoStrategy, &Tasks::with_costs(&costs), &CostModel::zero(), |s| {
///     ends.push(s.end_ns)
/// })
/// .unwrap();
/// assert_eq!(ends, vec![5, 10, 15]);
/// ```
///
/// # Errors
/// As [`run_sim`].
pub fn run_sim_with<F>(
    spec: &RunSpec,
    strategy: &dyn Strategy,
    tasks: &Tasks<'_>,
    cost: &CostModel,
    on_task: F,
) -> Result<RunReport, RunError>
where
    F: FnMut(Span),
{
    let Some(costs) = tasks.cost_ns else {
        return Err(SpecError::new(
            "tasks: the sim engine needs cost_ns, the nominal cost of every task at speed 1 \
             (e.g. Tasks::with_costs)",
        )
        .into());
    };
    let p = spec.workers;
    if p > ARRIVAL as usize {
        return Err(SpecError::new(format!(
            "workers: the sim engine takes at most {ARRIVAL}, got {p}"
        ))
        .into());
    }
    let mut setup = setup(spec, strategy, tasks)?;
    crate::engine::check_sim_clock(tasks, costs, &setup.speeds, cost)?;
    let workers = std::mem::take(&mut setup.instance.workers);
    let shared = setup.instance.shared.clone();
    let (slots, speeds, max_speed) = (&setup.slots, &setup.speeds, setup.max_speed);
    let mut sim = Sim {
        tasks,
        costs,
        estimates_are_costs: tasks.estimate_ns.is_some_and(|e| std::ptr::eq(e, costs)),
        cost,
        strategy: strategy.spec(),
        shared,
        queues: workers,
        workers: slots
            .iter()
            .zip(speeds)
            .map(|(slot, &speed)| Worker {
                running: None,
                run_end: 0,
                start: 0,
                prev_end: 0,
                parked_at: 0,
                woken_at: None,
                node: slot.node,
                speed,
            })
            .collect(),
        tallies: speeds
            .iter()
            .map(|&s| Tally::new(s, max_speed, spec.timeline_cap))
            .collect(),
        events: EventQueue::new(p),
        parked: Parked::new(p),
        shared_free_at: 0,
        claimed: vec![0; tasks.n.div_ceil(64)],
        handed_out: 0,
        completed: 0,
        released: 0,
        in_system: 0,
        area: 0,
        last_t: 0,
        hist: Histograms::new(),
        on_task,
    };
    let makespan_ns = sim.run()?;

    let mut notes = vec![format!("cost model: {cost}")];
    if spec.timing == Timing::Off {
        notes.push(
            "timing off: the sim engine measures every task anyway (virtual time is free)".into(),
        );
    }
    let info = setup.worker_info(|w| setup.slots[w].cpu);
    let meta = meta("sim", spec, strategy, tasks, Timing::Tasks, notes);
    let events = sim.events.popped();
    let area = sim.area;
    let mut report = finish(meta, &info, sim.tallies, &sim.hist, makespan_ns, tasks);
    // Every virtual worker has a cpu of its own: nothing is oversubscribed in virtual time.
    report.oversubscribed = false;
    report.events = Some(events);
    report.mean_in_system = Some(if makespan_ns == 0 {
        0.0
    } else {
        area as f64 / makespan_ns as f64
    });
    Ok(report)
}

/// One virtual worker. Its state is `running` (busy until its pending event), searching (a
/// pending event and nothing running), or parked (in `Sim::parked`, no pending event).
struct Worker {
    /// The task it is running; its pending event is that task's completion.
    running: Option<TaskId>,
    /// End (exclusive) of the run of ids the running task belongs to (see `Pick::count`).
    run_end: TaskId,
    /// Start of the running task.
    start: u64,
    /// End of its previous task, or its wake-up time (overhead is measured from here).
    prev_end: u64,
    /// When it parked (its last search's probes end then).
    parked_at: u64,
    /// When it was notified, if a notification meant for one worker woke it (see `search`).
    woken_at: Option<u64>,
    node: usize,
    speed: f64,
}

impl Worker {
    /// How long a task of nominal cost `c` runs on this worker.
    #[inline]
    fn duration(&self, c: u64) -> u64 {
        if self.speed == 1.0 {
            c
        } else {
            (c as f64 / self.speed).round() as u64
        }
    }
}

struct Sim<'a, F> {
    tasks: &'a Tasks<'a>,
    costs: &'a [u64],
    /// The estimates are the cost table itself (`Tasks::with_costs`): an estimate a strategy
    /// hands over with a task is its cost (`WorkerQueue::next_estimated`).
    estimates_are_costs: bool,
    cost: &'a CostModel,
    strategy: String,
    shared: Arc<dyn SharedQueue>,
    queues: Vec<Box<dyn WorkerQueue>>,
    workers: Vec<Worker>,
    tallies: Vec<Tally>,
    events: EventQueue,
    parked: Parked,
    /// When the shared queue's single server is next free.
    shared_free_at: u64,
    /// Bit per task: handed out already.
    claimed: Vec<u64>,
    /// Tasks handed out so far.
    handed_out: usize,
    completed: usize,
    /// Tasks submitted so far (a prefix of the ids: release times are non-decreasing).
    released: usize,
    /// Released and not completed.
    in_system: u64,
    /// ∫ in_system dt over `0..last_t`.
    area: u128,
    last_t: u64,
    /// Latency and wait of every task (one pair for the run; see `Histograms`).
    hist: Histograms,
    on_task: F,
}

impl<F: FnMut(Span)> Sim<'_, F> {
    /// Run to the last completion; its time is the makespan.
    fn run(&mut self) -> Result<u64, RunError> {
        let n = self.tasks.n;
        if n == 0 {
            return Ok(0);
        }
        if self.tasks.is_closed() {
            self.submit(0, n);
        } else {
            let first = self.tasks.release(0);
            self.events.push(first, ARRIVAL);
        }
        for w in 0..self.workers.len() {
            self.events.push(0, w as What);
        }
        while let Some((t, what)) = self.events.pop() {
            if t == u64::MAX {
                // Times saturate instead of wrapping: a run that reaches the end of the clock
                // fails rather than reporting a wrapped, tiny makespan.
                return Err(crate::engine::clock_overflow());
            }
            if what == ARRIVAL {
                self.arrive(t);
                continue;
            }
            let w = what as usize;
            if let Some(task) = self.workers[w].running.take() {
                self.complete(w, task, t);
                if self.completed == n {
                    return Ok(t);
                }
                if task + 1 < self.workers[w].run_end {
                    // The next id of the same pick starts at once.
                    self.start(w, task + 1, None, t, 0);
                    continue;
                }
            }
            self.search(w, t)?;
        }
        Err(self.bug(format!(
            "every worker is parked with {} of {n} tasks completed and no arrival pending \
             (the strategy stopped handing out tasks)",
            self.completed
        )))
    }

    /// Advance the ∫ N(t) dt integral to `t`.
    #[inline]
    fn integrate(&mut self, t: u64) {
        self.area += u128::from(self.in_system) * u128::from(t - self.last_t);
        self.last_t = t;
    }

    /// Submit ids `from..to` at time `t`.
    fn submit(&mut self, t: u64, to: usize) {
        let from = self.released;
        self.integrate(t);
        self.in_system += (to - from) as u64;
        self.released = to;
        let batch = match self.tasks.estimate_ns {
            Some(e) => Batch::with_estimates(from..to, &e[from..to]),
            None => Batch::new(from..to),
        };
        self.shared.submit(batch);
    }

    /// An arrival event: submit every task released by `t` as one batch, wake one parked
    /// worker per task (the longest-parked first), and schedule the next release time.
    fn arrive(&mut self, t: u64) {
        let release = self.tasks.release_ns.expect("open runs have release times");
        let from = self.released;
        let to = from + release[from..].partition_point(|&r| r <= t);
        self.submit(t, to);
        for _ in 0..(to - from).min(self.parked.len()) {
            let Some(w) = self.parked.pop_longest() else {
                break;
            };
            self.wake(w, t, t);
            self.workers[w].woken_at = Some(t);
        }
        if let Some(&next) = release.get(to) {
            self.events.push(next, ARRIVAL);
        }
    }

    /// Wake every parked worker, as if notified at `notified` (≤ `now`).
    fn wake_all(&mut self, notified: u64, now: u64) {
        let mut parked = std::mem::replace(&mut self.parked, Parked::new(0));
        parked.drain(|w| self.wake(w, notified, now));
        self.parked = parked;
    }

    /// Wake parked worker `w`, notified at `t`; it searches again no earlier than `now`.
    #[inline]
    fn wake(&mut self, w: WorkerId, t: u64, now: u64) {
        let st = &mut self.workers[w];
        let at = t
            .max(st.parked_at)
            .saturating_add(self.cost.wake_ns)
            .max(now);
        st.prev_end = at;
        self.events.push(at, w as What);
    }

    /// Worker `w` finished `task` at `t`.
    #[inline]
    fn complete(&mut self, w: WorkerId, task: TaskId, t: u64) {
        let start = self.workers[w].start;
        self.workers[w].prev_end = t;
        let stolen = self.ran(w, task, start, t);
        self.queues[w].completed(task, t - start);
        (self.on_task)(Span {
            worker: w,
            task,
            start_ns: start,
            end_ns: t,
            stolen,
        });
        self.integrate(t);
        self.in_system -= 1;
        self.completed += 1;
    }

    /// Record a finished task.
    #[inline]
    fn ran(&mut self, w: WorkerId, task: TaskId, start: u64, end: u64) -> bool {
        let release = self.tasks.release(task);
        self.tallies[w].ran(&mut self.hist, w, task, release, start, end)
    }

    /// Worker `w` is free at `t`: ask the strategy what it runs next, and charge for the answer.
    #[inline]
    fn search(&mut self, w: WorkerId, t: u64) -> Result<(), RunError> {
        let cost = self.cost;
        let woken_at = self.workers[w].woken_at.take();
        let (next, estimate) = if self.estimates_are_costs {
            self.queues[w].next_estimated()
        } else {
            (self.queues[w].next(), None)
        };
        match next {
            Next::Task(pick) => {
                let task = pick.task;
                if pick.count == 0 {
                    return Err(self.bug(format!("handed out an empty run at task {task}")));
                }
                for id in pick.tasks() {
                    self.claim(id)?;
                }
                self.tallies[w].picked(pick.source, pick.attempts);
                let mut at = t.saturating_add(cost.attempts(pick.attempts));
                let mut penalty = 0;
                match pick.source {
                    Source::Local => at = at.saturating_add(cost.local_ns),
                    Source::Shared => {
                        // A single server: this access starts when the previous one is done.
                        at = at.max(self.shared_free_at).saturating_add(cost.shared_ns);
                        self.shared_free_at = at;
                    }
                    Source::Stolen { victim, moved } => {
                        let Some(v) = self.workers.get(victim) else {
                            return Err(self.bug(format!(
                                "worker {w} stole from worker {victim}, which does not exist"
                            )));
                        };
                        if v.node == self.workers[w].node {
                            at = at.saturating_add(cost.steal_same_ns);
                        } else {
                            at = at.saturating_add(cost.steal_cross_ns);
                            penalty = cost.migrate_ns;
                        }
                        if moved > 1 {
                            // The thief's queue now holds stealable work: let a sleeper look.
                            if let Some(sleeper) = self.parked.pop_longest() {
                                self.wake(sleeper, t, t);
                            }
                        }
                    }
                }
                self.tallies[w].overhead_ns += at - self.workers[w].prev_end;
                self.workers[w].run_end = task + pick.count as usize;
                self.start(w, task, estimate, at, penalty);
            }
            Next::Retry(a) => {
                self.tallies[w].steal_attempts += u64::from(a.total());
                // Still answering the same notification when it searches again.
                self.workers[w].woken_at = woken_at;
                self.events.push(
                    t.saturating_add(cost.attempts(a))
                        .saturating_add(cost.backoff_ns),
                    w as What,
                );
            }
            Next::Empty(a) => {
                self.tallies[w].steal_attempts += u64::from(a.total());
                self.workers[w].parked_at = t.saturating_add(cost.attempts(a));
                if let Some(notified) = woken_at {
                    if self.handed_out < self.released {
                        // Woken for new work that this worker cannot take (static placement:
                        // it waits in a parked owner's queue): the notification becomes a
                        // broadcast, as if every parked worker had been notified with it.
                        self.wake_all(notified, t);
                    }
                }
                self.parked.insert(w);
            }
        }
        Ok(())
    }

    /// Worker `w` starts `task` at `at`; it runs for its cost at the worker's speed plus
    /// `penalty`. `known` is its cost when the strategy handed it over with the task (its
    /// estimate, when the estimates are the costs), saving a look-up at a random id.
    #[inline]
    fn start(&mut self, w: WorkerId, task: TaskId, known: Option<u64>, at: u64, penalty: u64) {
        let cost = match known {
            Some(c) => {
                debug_assert_eq!(c, self.costs[task], "a strategy's estimate for {task}");
                c
            }
            None => self.costs[task],
        };
        let st = &mut self.workers[w];
        st.running = Some(task);
        st.start = at;
        let end = at.saturating_add(st.duration(cost)).saturating_add(penalty);
        self.events.push(end, w as What);
    }

    /// Mark `task` handed out; an error if it was already, or does not exist.
    #[inline]
    fn claim(&mut self, task: TaskId) -> Result<(), RunError> {
        if task >= self.released {
            return Err(self.bug(format!(
                "handed out task {task}, but only tasks 0..{} were submitted",
                self.released
            )));
        }
        let (i, bit) = (task / 64, 1u64 << (task % 64));
        if self.claimed[i] & bit != 0 {
            return Err(self.bug(format!("handed out task {task} twice")));
        }
        self.claimed[i] |= bit;
        self.handed_out += 1;
        Ok(())
    }

    fn bug(&self, what: String) -> RunError {
        SpecError::new(format!(
            "sim: strategy {} broke its contract: {what}",
            self.strategy
        ))
        .into()
    }
}

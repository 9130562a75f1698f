//! Stations and hand-off: a station hands out work while it has an item, a free slot and room
//! downstream (a cpu station reserves its output's place first; a blocking station stays
//! within its budget), runs the stage function on a runner, and passes the result to the next
//! station's queue or to the tail, under both stations' locks in station order.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use scheduler::WorkerId;

use super::account::thread_cpu_ns;
use super::{
    lock, panic_text, Body, Children, Fault, Kind, Out, Packet, Parts, Runner, Shared, StageStates,
    Station, StationSpec, StationState,
};
use crate::pipeline::stats::now_ns;

impl Shared {
    /// Station `(s, k)`: hand out as much work as concurrency, input and output room allow.
    pub fn pump(&self, s: usize, k: usize) {
        self.pump_at(s, k, None);
    }

    /// [`pump`](Shared::pump) with the time now when the caller has just read it (a finished
    /// item's end): the statistics are charged with it rather than with a clock read of their
    /// own.
    pub(super) fn pump_at(&self, s: usize, k: usize, now: Option<u64>) {
        let seg = &self.segments[s];
        let station = &seg.stations[k];
        let next = seg.stations.get(k + 1);
        let mut st = station.st.lock();
        let unassigned = st.lane.queue.len() - st.assigned;
        let free = station.spec.slots().saturating_sub(st.running);
        let mut n = unassigned.min(free);
        match station.spec.kind {
            Kind::Cpu => {
                if n == 0 {
                    return;
                }
                let now = now.unwrap_or_else(now_ns);
                n = match next {
                    Some(next) => {
                        let mut nx = next.st.lock();
                        hand_out_cpu(station, &mut st, Some((&next.spec, &mut nx)), now)
                    }
                    None => hand_out_cpu(station, &mut st, None, now),
                };
                if n == 0 {
                    return;
                }
                let low = st.low(&station.spec);
                drop(st);
                self.room_freed(s, k, low, Some(now));
            }
            Kind::Blocking => {
                // Only threads waiting for work are woken: a thread that finishes an item takes
                // the next one itself (`claim`), so a busy stage costs no wake-ups.
                n = n.min(st.idle.saturating_sub(st.assigned));
                if n > 0 {
                    if let Some(next) = next {
                        let nx = next.st.lock();
                        let queued = nx.lane.held();
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
                st.mark(&station.spec, now.unwrap_or_else(now_ns));
                st.running += n;
                st.assigned += n;
                drop(st);
                station.st.notify(n);
            }
        }
    }

    /// A CPU worker runs task `id` of station `(s, k)`'s job: the item bound to it.
    pub fn run_ticket(
        &self,
        s: usize,
        k: usize,
        id: usize,
        states: &mut dyn StageStates,
        w: WorkerId,
    ) {
        let station = &self.segments[s].stations[k];
        // Without the station's lock: the item was put in the id's slot before the id was
        // submitted; a stopped run starts no new call (`ticket.rs`).
        let Some(packet) = station.tickets.start(id, &self.stopped) else {
            return;
        };
        // `process` hands out the station's next items under the locks it takes anyway.
        self.process(s, k, packet, states, Runner::Cpu(w));
    }

    /// Room appeared in station `(s, k)`'s queue: its feeder may go on. The segment's feeder
    /// is called only once the queue is down to half (`low`), so that it takes the source's
    /// lock for a run of items rather than for each one; the items still queued keep the
    /// station busy meanwhile.
    pub(super) fn room_freed(&self, s: usize, k: usize, low: bool, now: Option<u64>) {
        if k == 0 {
            if low {
                self.kick_feed(s);
            }
        } else {
            self.pump_at(s, k - 1, now);
        }
    }

    /// Run the stage function on one packet and pass the result on.
    pub(super) fn process(
        &self,
        s: usize,
        k: usize,
        packet: Packet,
        states: &mut dyn StageStates,
        runner: Runner,
    ) {
        let station = &self.segments[s].stations[k];
        let state = states.state(station.spec.state_slot);
        let Packet { seq, parts, body } = packet;
        let Body::Value(v) = body else {
            unreachable!("only values enter a station")
        };
        let cpu0 = (self.cpu_clock && station.spec.kind == Kind::Cpu)
            .then(thread_cpu_ns)
            .flatten();
        let t = now_ns();
        let r = catch_unwind(AssertUnwindSafe(|| (station.spec.f)(v, state, runner)))
            .map_err(|p| panic_text(p.as_ref()));
        // The one clock read after the call: the service time, and the time every statistic
        // changed below is charged at.
        let end = now_ns();
        let ns = end.saturating_sub(t);
        let cpu_ns = cpu0.and_then(|a| thread_cpu_ns().map(|b| b.saturating_sub(a)));
        self.finish(s, k, (seq, parts), r, (ns, end, cpu_ns), states, runner);
    }

    /// Run a blocking station's chunked function on several packets at once (taken together
    /// by one of its threads, `blocking.rs`) and pass each result on, in order, as
    /// [`process`](Shared::process) does for one. Each item is charged an equal share of the
    /// call's time; a panic fails every item of the chunk, as does a function that returns
    /// another count of results than it was given items.
    pub(super) fn process_chunk(
        &self,
        s: usize,
        k: usize,
        packets: Vec<Packet>,
        states: &mut dyn StageStates,
        runner: Runner,
    ) {
        let station = &self.segments[s].stations[k];
        let f = station
            .spec
            .chunked
            .as_ref()
            .expect("only a chunked station takes several packets");
        let n = packets.len();
        let mut heads = Vec::with_capacity(n);
        let mut values = Vec::with_capacity(n);
        for Packet { seq, parts, body } in packets {
            let Body::Value(v) = body else {
                unreachable!("only values enter a station")
            };
            heads.push((seq, parts));
            values.push(v);
        }
        let state = states.state(station.spec.state_slot);
        let t = now_ns();
        let r = catch_unwind(AssertUnwindSafe(|| f(values, state, runner)));
        let end = now_ns();
        let each = end.saturating_sub(t) / n.max(1) as u64;
        let results: Vec<Result<Result<Out, String>, String>> = match r {
            Ok(outs) if outs.len() == n => outs.into_iter().map(Ok).collect(),
            Ok(outs) => {
                let m = format!(
                    "the stage's function returned {} results for a chunk of {n} items",
                    outs.len()
                );
                drop(outs);
                (0..n).map(|_| Ok(Err(m.clone()))).collect()
            }
            Err(p) => {
                let m = panic_text(p.as_ref());
                (0..n).map(|_| Err(m.clone())).collect()
            }
        };
        for (head, r) in heads.into_iter().zip(results) {
            self.finish(s, k, head, r, (each, end, None), states, runner);
        }
    }

    /// Account a finished item of station `(s, k)` (`r`: the call's result, or the text of
    /// its panic; `(ns, end, cpu_ns)`: its service time, the clock at its end, its CPU time
    /// if read) and pass it on: to the next station, on at once on this CPU worker, or to
    /// the segment's tail.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        s: usize,
        k: usize,
        (seq, parts): (u64, Parts),
        r: Result<Result<Out, String>, String>,
        (ns, end, cpu_ns): (u64, u64, Option<u64>),
        states: &mut dyn StageStates,
        runner: Runner,
    ) {
        let station = &self.segments[s].stations[k];
        let src = parts.first_src();
        let fault = |message: String, panicked: bool| Fault {
            stage: Arc::clone(&station.spec.name),
            src,
            message,
            panicked,
            count: 1,
        };
        let over = station
            .spec
            .timeout
            .filter(|limit| ns > limit.as_nanos().min(u128::from(u64::MAX)) as u64);
        let (body, failed) = match r {
            Ok(Ok(out)) if over.is_some() => {
                let limit = over.unwrap_or_default();
                drop(out);
                let message = format!(
                    "took {} ms, over the {} ms timeout",
                    ns / 1_000_000,
                    limit.as_millis()
                );
                (Body::Failed(Box::new(fault(message, false))), true)
            }
            Ok(Ok(Out::One(v))) => (Body::Value(v), false),
            Ok(Ok(Out::None)) => (Body::Hole, false),
            Ok(Ok(Out::Many(iter))) => (Body::Many(Children { iter, next: 0 }), false),
            Ok(Err(m)) => (Body::Failed(Box::new(fault(m, false))), true),
            Err(m) => (Body::Failed(Box::new(fault(m, true))), true),
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
        // A cpu station hands out its next items in the same step (`handed`, its queue then
        // low): one lock round on the pair per item, where a separate `pump` took another.
        let mut handed = (0, false);
        // The item goes on to the next station on this CPU worker at once (`run_on`).
        let mut run_on = None;
        {
            let mut st = station.st.lock();
            st.mark(&station.spec, end);
            st.running -= 1;
            station.tickets.leave();
            st.acc.done(
                ns,
                failed,
                passes_on || matches!(out.as_ref().map(|p| &p.body), Some(Body::Many(_))),
            );
            if let Runner::Cpu(w) = runner {
                st.acc.worker(w, ns);
            }
            if let Some(c) = cpu_ns {
                st.acc.cpu_ns += u128::from(c);
                st.acc.cpu_items += 1;
            }
            match next {
                Some(next) if passes_on || reserved => {
                    let mut nx = next.st.lock();
                    if passes_on {
                        nx.mark(&next.spec, end);
                        nx.acc.items_in += 1;
                    }
                    let mut item = if passes_on { out.take() } else { None };
                    if item.is_some() && self.may_run_on(runner, s, k + 1, &mut nx) {
                        run_on = item.take();
                    }
                    if reserved {
                        nx.lane.land(item);
                        let n = hand_out_cpu(station, &mut st, Some((&next.spec, &mut nx)), end);
                        handed = (n, st.low(&station.spec));
                    } else {
                        nx.lane.queue.extend(item);
                    }
                }
                _ if reserved => {
                    let n = hand_out_cpu(station, &mut st, None, end);
                    handed = (n, st.low(&station.spec));
                }
                _ => {}
            }
        }
        if handed.0 > 0 {
            self.room_freed(s, k, handed.1, Some(end));
        }
        match (out, run_on) {
            // The end of the segment, or a hole or a failure, which skips the rest of it.
            (Some(p), _) => self.to_tail(s, p),
            (None, Some(p)) => self.process(s, k + 1, p, states, runner),
            (None, None) => self.pump_at(s, k + 1, Some(end)),
        }
    }

    /// Run on: the item a CPU worker has just finished at station `(s, k − 1)` may go through
    /// cpu station `(s, k)` (state `nx`, locked with the station before it) on the same worker
    /// at once, without a queue, a ticket or a wake-up, when nothing there waits before it (its
    /// queue is empty), it has a free slot, its strategy lets any worker take its next item
    /// (`StationSpec::any_runner`, the default) and its output has a place: reserved here in
    /// the next station's queue, as `hand_out_cpu` does. The call is counted as running here
    /// (`running`, and `in_call` before `stopped` is read, as a ticket's `start` does).
    fn may_run_on(&self, runner: Runner, s: usize, k: usize, nx: &mut StationState) -> bool {
        let station = &self.segments[s].stations[k];
        let spec = &station.spec;
        if !matches!(runner, Runner::Cpu(_))
            || spec.kind != Kind::Cpu
            || !spec.any_runner
            || station.submitter.get().is_none()
            || !nx.lane.queue.is_empty()
            || nx.running >= spec.slots()
        {
            return false;
        }
        // A stopped run starts no new call (`ticket.rs`).
        if !station.tickets.enter_unless(&self.stopped) {
            return false;
        }
        let room = match self.segments[s].stations.get(k + 1) {
            Some(after) => after.st.lock().lane.reserve(1, after.spec.cap()) == 1,
            None => true,
        };
        if !room {
            station.tickets.leave();
            return false;
        }
        nx.running += 1;
        true
    }
}

/// Cpu station `station` (state `st`; the next station's spec and state when there is one,
/// both locked, in station order) hands out what it can start now: a CPU worker cannot wait
/// for room downstream, so each item's place in the next queue is reserved first (`lane.rs`),
/// then the item is bound to a task id of the station's job. How many were handed out.
fn hand_out_cpu(
    station: &Station,
    st: &mut StationState,
    next: Option<(&StationSpec, &mut StationState)>,
    now: u64,
) -> usize {
    let spec = &station.spec;
    let want = (st.lane.queue.len() - st.assigned).min(spec.slots().saturating_sub(st.running));
    // Only as many as there are empty slots for (`ticket.rs`): a full ring is emptied by
    // runners, each of which hands out again when it finishes.
    let want = match station.submitter.get() {
        Some(_) => station.tickets.free_from(st.next_id, want),
        None => want,
    };
    if want == 0 {
        return 0;
    }
    let n = match next {
        Some((nspec, nx)) => {
            let granted = nx.lane.reserve(want, nspec.cap());
            if st.acc.blocked != (granted < want) {
                st.mark(spec, now);
                st.acc.blocked = granted < want;
            }
            granted
        }
        None => want,
    };
    if n == 0 {
        return 0;
    }
    st.mark(spec, now);
    st.running += n;
    // Each item is bound to a task id of the stage's job, in queue order, so the job's
    // strategy decides which worker runs which item, and when. Ids are handed out in order and
    // only here (under the station's lock), so the next `n` ids are known: each item goes into
    // its id's slot before the ids are submitted, and a worker that picks an id finds its item.
    if let Some(sub) = station.submitter.get() {
        let first = st.next_id;
        for id in first..first + n {
            let p = st.lane.queue.pop_front().expect("n items are queued");
            station.tickets.bind(id, p);
        }
        match sub.try_submit(n) {
            Ok(ids) => {
                assert_eq!(
                    ids,
                    first..first + n,
                    "a cpu station's job hands out its ids in order, and only to it"
                );
                st.next_id = ids.end;
            }
            // The job is over (a stopped run): the items stay queued, as if never bound.
            Err(_) => {
                for id in (first..first + n).rev() {
                    if let Some(p) = station.tickets.unbind(id) {
                        st.lane.queue.push_front(p);
                    }
                }
            }
        }
    }
    n
}

/// Items blocking station `spec` may still start: its threads and the next queue (`nspec`,
/// state `nx`) together hold at most its concurrency plus that queue's capacity, so a thread
/// that finishes an item always has a place for it.
pub(super) fn budget(
    spec: &StationSpec,
    st: &StationState,
    nspec: &StationSpec,
    nx: &StationState,
) -> usize {
    spec.slots()
        .saturating_add(nspec.cap())
        .saturating_sub(st.running + nx.lane.held())
}

impl StationState {
    /// The queue is down to half its capacity or less: time to feed it.
    pub(super) fn low(&self, spec: &StationSpec) -> bool {
        self.lane.held() <= spec.cap() / 2
    }

    /// Account the time since the last change (up to `now`) to the state the station was in.
    pub(super) fn mark(&mut self, spec: &StationSpec, now: u64) {
        let unassigned = self.lane.queue.len() - self.assigned;
        self.acc.advance(
            now,
            self.lane.held(),
            unassigned,
            self.running,
            spec.slots(),
            spec.cap(),
        );
    }
}

//! Tails and delivery: the end of a segment puts its items back in sequence order (or takes
//! them as they come), regroups them (a batch, a `flat_map`'s children kept as an iterator)
//! and hands them on; the sink's consumer takes them in `take`, where the failure policy is
//! applied.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::sync::MutexGuard;
use std::time::Instant;

use super::{
    lock, panic_text, Body, Delivered, Fault, Packet, Parts, Policy, Shared, TailKind, TailState,
};

impl Shared {
    /// A packet reached the end of segment `s`.
    pub(super) fn to_tail(&self, s: usize, p: Packet) {
        let seg = &self.segments[s];
        let mut t = seg.tail_st.lock();
        if self.ordered {
            t.order.place(p.seq, p);
        } else {
            t.order.push(p);
        }
        let before = (t.out.len(), t.ended);
        let freed = self.resolve(s, &mut t);
        let produced = (t.out.len(), t.ended) != before;
        self.after_tail(s, t, freed, produced);
    }

    /// After a tail changed: free the units that produced nothing, wake the consumer, or feed
    /// the next segment. Never feeds under the tail's lock (the feeder takes it).
    pub(super) fn after_tail(
        &self,
        s: usize,
        t: MutexGuard<'_, TailState>,
        freed: usize,
        produced: bool,
    ) {
        let seg = &self.segments[s];
        let has_out = !t.out.is_empty() || t.ended;
        // The last segment's tail is the sink's (a `Sink`, or a batch delivered from the tail).
        let last = s + 1 == self.segments.len();
        let wake = last && has_out && t.waiting;
        drop(t);
        // After the lock is let go, so that the consumer does not wake into a held lock: it
        // raised `waiting` and is inside its wait (it lets go of the lock only there), so the
        // notification cannot come before its wait (`post.rs`).
        if wake {
            seg.tail_st.notify(1);
        }
        if freed > 0 {
            self.release(s, freed);
        }
        // What was ready before was offered to the next segment then; it takes more when it
        // frees room (its feeder is this tail).
        if produced && !last {
            self.kick_feed(s + 1);
        }
    }

    /// Take every packet that is next in order (or any, as ready) through the tail; returns
    /// the segment units that left without output.
    pub(super) fn resolve(&self, s: usize, t: &mut TailState) -> usize {
        let mut freed = 0;
        while let Some(p) = t.order.pop_next() {
            self.through_tail(s, t, p, &mut freed);
        }
        self.check_end_locked(s, t, &mut freed);
        freed
    }

    /// One resolved packet through tail `s`.
    pub(super) fn through_tail(&self, s: usize, t: &mut TailState, p: Packet, freed: &mut usize) {
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
                    None => t.cur_fault = Some(*f),
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
    pub(super) fn batch_maybe_full(
        &self,
        s: usize,
        t: &mut TailState,
        force: bool,
        freed: &mut usize,
    ) {
        let TailKind::Batch {
            size,
            keep_partial,
            collate,
            name,
        } = &self.segments[s].tail
        else {
            return;
        };
        // Items of this segment, not source parts: an item may be a batch already.
        let members = t.cur_units;
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
            Some(f) => Body::Failed(Box::new(f)),
            None => {
                let src = parts.first().map_or(0, |p| p.src);
                match catch_unwind(AssertUnwindSafe(|| collate(values))) {
                    Ok(v) => Body::Value(v),
                    Err(p) => Body::Failed(Box::new(Fault {
                        stage: Arc::clone(name),
                        src,
                        message: panic_text(p.as_ref()),
                        panicked: true,
                        count: 1,
                    })),
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
    pub(super) fn consumed(&self, parts: &Parts) {
        let mut pr = lock(&self.progress);
        parts.for_each(|p| pr.resolve_one(p.src, Some(&p.path)));
    }

    pub(super) fn check_end(&self, s: usize) {
        let seg = &self.segments[s];
        let mut t = seg.tail_st.lock();
        let mut freed = 0;
        let before = (t.out.len(), t.ended);
        self.check_end_locked(s, &mut t, &mut freed);
        let produced = (t.out.len(), t.ended) != before;
        self.after_tail(s, t, freed, produced);
    }

    /// Segment `s` is over when its gate is closed and every admitted item was resolved
    /// (`order.resolved()` counts resolved packets in both modes).
    pub(super) fn check_end_locked(&self, s: usize, t: &mut TailState, freed: &mut usize) {
        if t.ended {
            return;
        }
        let (closed, admitted) = {
            let g = lock(&self.segments[s].gate);
            (g.closed, g.admitted)
        };
        if closed && t.order.resolved() == admitted {
            self.batch_maybe_full(s, t, true, freed);
            t.ended = true;
        }
    }

    /// The next delivery of the sink; blocks. With `hold`, the delivered packet's units stay
    /// counted in the last segment's window (the consumer holds the item) and are returned:
    /// the caller lets them go with [`let_go`](Shared::let_go) later.
    pub fn take_holding(&self, hold: bool) -> (Delivered, usize) {
        let s = self.segments.len() - 1;
        let seg = &self.segments[s];
        self.kick_feed(0);
        let mut t = seg.tail_st.lock();
        let mut yielded = false;
        loop {
            if lock(&self.tally).halted || self.stopped() {
                return (Delivered::End, 0);
            }
            if let Some((p, units)) = t.out.pop_front() {
                drop(t);
                if hold {
                    return (self.deliver(p), units);
                }
                if units > 0 {
                    self.release(s, units);
                }
                return (self.deliver(p), 0);
            }
            if t.ended {
                return (Delivered::End, 0);
            }
            if !yielded {
                // Nothing ready: let a runner finish its item before sleeping, once. A wait
                // costs the consumer a sleep and the runner that wakes it a preemption.
                yielded = true;
                drop(t);
                std::thread::yield_now();
                t = seg.tail_st.lock();
                continue;
            }
            t.waiting = true;
            t = seg.tail_st.wait(t);
            t.waiting = false;
        }
    }

    /// The consumer let go of `units` of the last segment it held ([`take_holding`]).
    ///
    /// [`take_holding`]: Shared::take_holding
    pub fn let_go(&self, units: usize) {
        if units > 0 {
            self.release(self.segments.len() - 1, units);
        }
    }

    pub(super) fn deliver(&self, p: Packet) -> Delivered {
        // One clock read per item: the time of the last item, and of the first once.
        let now = Instant::now();
        if self.first_item.get().is_none() {
            let _ = self.first_item.set(now);
        }
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
                tally.last = Some(now);
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
                Delivered::Failed(*f)
            }
            Body::Hole | Body::Many(_) => unreachable!("resolved in the tail"),
        }
    }
}

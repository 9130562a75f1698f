//! Feeding and admission: the source into segment 0, a tail into the next segment (a
//! `flat_map`'s children made one by one, as room appears), and the window that bounds what a
//! segment holds. One feeder at a time per segment (its `feeder` baton, baton.rs), kicked by whoever made room.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{Ordering::Relaxed, Ordering::SeqCst};
use std::sync::Arc;

use super::{lock, panic_text, Body, Children, Fault, Fed, Packet, Part, Parts, Shared};

impl Shared {
    /// Someone made room in segment `s` (or has items for it): feed it, unless another thread
    /// is feeding it now (that one sees the request and goes round again).
    pub fn kick_feed(&self, s: usize) {
        // The protocol is `Baton`'s (baton.rs), model-checked there.
        self.segments[s].feeder.kick(|| {
            if self.stopped() {
                return false;
            }
            if s == 0 {
                self.feed_source();
            } else {
                self.feed_from_tail(s - 1);
            }
            true
        });
    }

    /// Room for this many more items in segment `s` now (window and first queue).
    pub(super) fn room(&self, s: usize) -> usize {
        let seg = &self.segments[s];
        let held = lock(&seg.gate).held;
        let mut room = seg.window.load(Relaxed).saturating_sub(held);
        if let Some(first) = seg.stations.first() {
            let st = first.st.lock();
            room = room.min(st.lane.room(first.spec.cap()));
        }
        room
    }

    pub(super) fn feed_source(&self) {
        let mut room = self.room(0);
        if room == 0 {
            return;
        }
        let mut source = lock(&self.source);
        // (sized for the usual round, a few items: growing it from empty was ~1% of (c))
        let mut taken = Vec::with_capacity(room.min(16));
        let mut ended = false;
        let mut broke = None;
        if let Some(feed) = source.as_mut() {
            let mut pr = lock(&self.progress);
            let restored = pr.prefix > 0 || !pr.done.is_empty();
            feed.resolved(pr.prefix);
            while room > 0 {
                let (src, body) = match catch_unwind(AssertUnwindSafe(|| feed.next())) {
                    Ok(Fed::Item(src, v)) => (src, Body::Value(v)),
                    Ok(Fed::Failed(src, message)) => (src, source_fault(src, message, false)),
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
                };
                self.next_src.store(src + 1, SeqCst);
                if restored && pr.skips(src) {
                    continue;
                }
                pr.admit(src);
                taken.push((src, body));
                room -= 1;
            }
            if let Some(message) = broke {
                let src = self.next_src.load(SeqCst);
                pr.admit(src);
                taken.push((src, source_fault(src, message, true)));
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
                    path: Box::default(),
                }),
                body,
            )
        });
        self.admit(0, packets, ended);
    }

    /// Move what tail `s` has ready into segment `s + 1`, as far as there is room. A
    /// `flat_map`'s parent stays at the front while its iterator gives children: they are made
    /// here, one for each free place, so that no child exists outside a window.
    pub(super) fn feed_from_tail(&self, s: usize) {
        let mut room = self.room(s + 1);
        let seg = &self.segments[s];
        let mut moved = Vec::new();
        let mut units = 0;
        let mut ended = false;
        let mut spent = Vec::new();
        {
            let mut t = seg.tail_st.lock();
            while room > 0 {
                let Some((p, u)) = t.out.pop_front() else {
                    break;
                };
                let (parent, mut children) = match (p.parts, p.body) {
                    // A `flat_map`'s parent: one item, or a batch (a `flat_map` after a batch).
                    (parent, Body::Many(children)) => (parent, children),
                    (parts, body) => {
                        units += u;
                        moved.push((parts, body));
                        room -= 1;
                        continue;
                    }
                };
                // The children are made without the tail's lock: the iterator is the user's
                // code, and the stations finishing items put theirs behind it meanwhile (only
                // this feeder, holding the next segment's `feeder` baton, takes from the front).
                drop(t);
                let over = self.pull_children(s, &parent, &mut children, &mut room, &mut moved);
                t = seg.tail_st.lock();
                if over {
                    // The parent's unit leaves with its last child.
                    units += u;
                    spent.push(children.iter);
                } else {
                    t.out.push_front((
                        Packet {
                            seq: 0,
                            parts: parent,
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
    ///
    /// A parent that is a batch (a `flat_map` after a `batch`) stands for each of its members:
    /// child `j` is a child of every member (path `member.path + [j]`), so each member's
    /// position stays live until the last child and the iterator are resolved, a restore
    /// feeds the whole batch again (it regroups as before), and the children handed out are
    /// skipped by their path under the batch's first member.
    pub(super) fn pull_children(
        &self,
        s: usize,
        parent: &Parts,
        children: &mut Children,
        room: &mut usize,
        moved: &mut Vec<(Parts, Body)>,
    ) -> bool {
        let first = match parent {
            Parts::One(p) => p.clone(),
            Parts::Batch(v) => v.first().cloned().unwrap_or_default(),
        };
        let skip = self.restored.get(&first.src);
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
                    Body::Failed(Box::new(self.split_fault(
                        s,
                        first.src,
                        format!("more than {} children of one item", u32::MAX),
                        false,
                    )))
                }
                Ok(Some(v)) => Body::Value(v),
                Err(p) => {
                    over = true;
                    Body::Failed(Box::new(self.split_fault(
                        s,
                        first.src,
                        panic_text(p.as_ref()),
                        true,
                    )))
                }
            };
            children.next = j.saturating_add(1);
            let child = |p: &Part| {
                let mut path = Vec::with_capacity(p.path.len() + 1);
                path.extend_from_slice(&p.path);
                path.push(j);
                Part {
                    src: p.src,
                    path: path.into_boxed_slice(),
                }
            };
            let parts = match parent {
                Parts::One(p) => Parts::One(child(p)),
                Parts::Batch(v) => Parts::Batch(v.iter().map(child).collect()),
            };
            if skip.is_some_and(|d| d.contains(&child(&first).path)) {
                // Delivered before the restore (and listed as such): not handed on again.
                if over {
                    break;
                }
                continue;
            }
            moved.push((parts, body));
            made += 1;
            *room -= 1;
            if over {
                break;
            }
        }
        if made > 0 || over {
            let mut pr = lock(&self.progress);
            parent.for_each(|p| {
                pr.more_children(p.src, made);
                if over {
                    // The parent's own packet: resolved now that every child is counted.
                    pr.resolve_one(p.src, None);
                }
            });
        }
        over
    }

    /// A failure of a `flat_map`'s child iterator (the last station of segment `s`).
    pub(super) fn split_fault(&self, s: usize, src: u64, message: String, panicked: bool) -> Fault {
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
    pub(super) fn release(&self, s: usize, units: usize) {
        {
            let mut g = lock(&self.segments[s].gate);
            g.held -= units;
            g.note(self.segments[s].window.load(Relaxed));
        }
        self.held.fetch_sub(units, SeqCst);
        self.kick_feed(s);
    }

    /// Admit packets into segment `s` (the caller checked the room); `close` if no more come.
    pub(super) fn admit(
        &self,
        s: usize,
        packets: impl Iterator<Item = (Parts, Body)>,
        close: bool,
    ) {
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
                    let mut st = first.st.lock();
                    st.mark(&first.spec, crate::pipeline::stats::now_ns());
                    for p in batch {
                        if matches!(p.body, Body::Value(_)) {
                            st.lane.queue.push_back(p);
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
}

/// A failed item of the source at position `src` (stage `source`): one it could not read
/// (`panicked` false; the source goes on), or its panic (which ends the epoch).
fn source_fault(src: u64, message: String, panicked: bool) -> Body {
    Body::Failed(Box::new(Fault {
        stage: Arc::from("source"),
        src,
        message,
        panicked,
        count: 1,
    }))
}

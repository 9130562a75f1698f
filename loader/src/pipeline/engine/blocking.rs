//! A blocking stage's threads: each takes its next item itself when the budget allows (no
//! wake-up for a busy stage), otherwise waits on the station's `work` condvar until `pump`
//! assigns it one or the run stops.

use std::any::Any;
use std::time::Instant;

use super::station::budget;
use super::{OneState, Runner, Shared, StationState};

impl Shared {
    /// A blocking thread of station `(s, k)` takes the next item itself if the station has an
    /// unassigned one, a free slot and room for the result (under the station's lock).
    pub(super) fn claim(&self, s: usize, k: usize, st: &mut StationState) -> bool {
        let seg = &self.segments[s];
        let spec = &seg.stations[k].spec;
        if st.lane.queue.len() <= st.assigned || st.running >= spec.slots() {
            return false;
        }
        if let Some(next) = seg.stations.get(k + 1) {
            if budget(spec, st, &next.spec, &next.st.lock()) == 0 {
                return false;
            }
        }
        st.mark(spec, crate::pipeline::stats::now_ns());
        st.running += 1;
        true
    }

    /// A blocking thread of station `(s, k)`: take items until the run stops. The wait is
    /// the station post's (`post.rs`): checked under its lock, the stop included.
    ///
    /// A chunked station's thread (`spec.chunked`) takes, with its item, up to `chunk − 1`
    /// more from the front of the queue, each claimed as the first is (an unassigned item, a
    /// free slot of `slots()`, room downstream), and runs them in one call
    /// (`process_chunk`): only items already waiting, so a thread never waits to fill a chunk.
    pub fn blocking_loop(&self, s: usize, k: usize, state: &mut (dyn Any + Send), i: usize) {
        let station = &self.segments[s].stations[k];
        let chunked = station.spec.chunked.is_some() && station.spec.chunk > 1;
        // Since when a thread waited with input but no room for its output (back-pressured).
        let mut pressed: Option<Instant> = None;
        loop {
            let step = |st: &mut StationState, slept: bool| {
                if slept {
                    st.idle -= 1;
                    if let Some(t) = pressed.take() {
                        st.acc.thread_blocked_ns += t.elapsed().as_nanos();
                    }
                }
                let take = |st: &mut StationState| {
                    let p = st.lane.queue.pop_front();
                    if p.is_some() {
                        station.tickets.enter();
                    }
                    p
                };
                let first = if self.claim(s, k, st) {
                    take(st)
                } else if st.assigned > 0 {
                    // `pump` counted the item as running when it handed it out.
                    st.mark(&station.spec, crate::pipeline::stats::now_ns());
                    st.assigned -= 1;
                    take(st)
                } else {
                    if st.lane.queue.len() > st.assigned {
                        pressed = Some(Instant::now());
                    }
                    st.idle += 1;
                    return None;
                };
                let mut more = Vec::new();
                if chunked && first.is_some() {
                    let most = station.spec.chunk_now(st);
                    while 1 + more.len() < most && self.claim(s, k, st) {
                        // `claim` saw an unassigned item queued
                        more.extend(take(st));
                    }
                }
                Some((first, more, st.low(&station.spec)))
            };
            let Some((packet, more, low)) = station.st.take_or_wait(&self.stopped, step) else {
                return;
            };
            self.room_freed(s, k, low, None);
            let Some(packet) = packet else { continue };
            if more.is_empty() {
                self.process(s, k, packet, &mut OneState(&mut *state), Runner::Thread(i));
            } else {
                let mut packets = more;
                packets.insert(0, packet);
                let states = &mut OneState(&mut *state);
                self.process_chunk(s, k, packets, states, Runner::Thread(i));
            }
        }
    }
}

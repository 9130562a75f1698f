//! A blocking stage's threads: each takes its next item itself when the budget allows (no
//! wake-up for a busy stage), otherwise waits on the station's `work` condvar until `pump`
//! assigns it one or the run stops.

use std::any::Any;
use std::sync::PoisonError;
use std::time::Instant;

use super::station::budget;
use super::{lock, Runner, Shared, StationState};

impl Shared {
    /// A blocking thread of station `(s, k)` takes the next item itself if the station has an
    /// unassigned one, a free slot and room for the result (under the station's lock).
    pub(super) fn claim(&self, s: usize, k: usize, st: &mut StationState) -> bool {
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
}

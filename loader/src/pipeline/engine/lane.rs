//! A station's input queue and the places reserved in it by the station before it (under the
//! station's lock). A cpu station cannot wait for room downstream (its item runs on a CPU
//! worker), so it reserves its output's place before it hands an item out ([`Lane::reserve`],
//! under both stations' locks, in station order) and the finished item lands in that place
//! ([`Lane::land`], under both again): a finishing item never finds the next queue full, and
//! the queue never holds more than its capacity. Whoever frees a place (the next station taking
//! an item, a reservation given back) pumps the station before it, so an item waiting for room
//! is handed out once there is some. The model below checks both under loom.

use std::collections::VecDeque;

pub(crate) struct Lane<T> {
    pub queue: VecDeque<T>,
    /// Items taken from upstream that will enter `queue` (places reserved for them).
    pub incoming: usize,
}

impl<T> Lane<T> {
    pub fn new() -> Lane<T> {
        Lane {
            queue: VecDeque::new(),
            incoming: 0,
        }
    }

    /// Queued and reserved.
    pub fn held(&self) -> usize {
        self.queue.len() + self.incoming
    }

    /// Free places for a queue of capacity `cap`.
    pub fn room(&self, cap: usize) -> usize {
        cap.saturating_sub(self.held())
    }

    /// Reserve up to `n` places (of capacity `cap`); how many were reserved.
    pub fn reserve(&mut self, n: usize, cap: usize) -> usize {
        let n = n.min(self.room(cap));
        self.incoming += n;
        n
    }

    /// A reserved place is used by `item`, or given back (`None`: the item failed or was
    /// filtered, and skips to the tail).
    pub fn land(&mut self, item: Option<T>) {
        self.incoming -= 1;
        self.queue.extend(item);
    }
}

#[cfg(all(test, loom))]
mod models {
    use super::Lane;
    use crate::pipeline::engine::post::Post;
    use crate::sync::{thread, Arc};

    /// A cpu station: its lane, and the items handed to runners.
    struct Up {
        lane: Lane<u32>,
        running: usize,
    }

    const CAP: usize = 1;
    const CONC: usize = 2;

    /// `pump` of a cpu station before `down` (as `Shared::pump`): under both locks, in station
    /// order, reserve a place downstream for each item handed out.
    fn pump(up: &Post<Up>, down: &Post<Lane<u32>>) -> Vec<u32> {
        let mut u = up.lock();
        let free = CONC - u.running;
        let n = u.lane.queue.len().min(free);
        let n = down.lock().reserve(n, CAP);
        u.running += n;
        (0..n).map(|_| u.lane.queue.pop_front().unwrap()).collect()
    }

    /// An item finished (`Shared::process`): under both locks, the slot is given up and the
    /// item lands in its reserved place, which must be there.
    fn finish(up: &Post<Up>, down: &Post<Lane<u32>>, item: u32) {
        let mut u = up.lock();
        u.running -= 1;
        let mut d = down.lock();
        d.land(Some(item));
        assert!(d.queue.len() <= CAP, "an item landed in a full queue");
    }

    /// A runner of `up`: pump, run what it got, pump again (`run_ticket` pumps its station
    /// after each item).
    fn work(up: &Post<Up>, down: &Post<Lane<u32>>) {
        for item in pump(up, down) {
            finish(up, down, item);
        }
        for item in pump(up, down) {
            finish(up, down, item);
        }
    }

    /// (ii) A cpu item completing into a full next queue: two items, a next queue of one
    /// place, a runner of the station, and the next station taking an item (which frees a
    /// place) and pumping the station before it (as `room_freed` does) while the runner pumps
    /// too. No item lands in a full
    /// queue, none is lost or doubled, and once every thread is done no item is left waiting
    /// in the station while there is room for it downstream (a stall).
    #[test]
    fn loom_a_cpu_item_completing_into_a_full_next_queue_waits_for_its_place() {
        loom::model(|| {
            let up = Arc::new(Post::new(Up {
                lane: Lane {
                    queue: [1, 2].into(),
                    incoming: 0,
                },
                running: 0,
            }));
            let down = Arc::new(Post::new(Lane::new()));
            let runner = {
                let (up, down) = (Arc::clone(&up), Arc::clone(&down));
                thread::spawn(move || work(&up, &down))
            };
            // the next station takes an item (if there is one: its place is free again) and
            // pumps the station before it, as another pump (the feeder's) may meanwhile
            let taken = down.lock().queue.pop_front();
            work(&up, &down);
            runner.join().unwrap();
            let u = up.lock();
            let d = down.lock();
            let mut all: Vec<u32> = taken.into_iter().chain(d.queue.iter().copied()).collect();
            all.extend(u.lane.queue.iter().copied());
            all.sort_unstable();
            assert_eq!(all, [1, 2], "each item once");
            assert_eq!((u.running, d.incoming), (0, 0));
            let stalled = !u.lane.queue.is_empty() && d.room(CAP) > 0;
            assert!(
                !stalled,
                "an item waits in the station with room downstream"
            );
        });
    }
}

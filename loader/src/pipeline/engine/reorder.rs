//! A tail's reorder window (under the tail's lock): packets put back in sequence order. A
//! packet is placed at its sequence number's slot ([`Reorder::place`]); whoever placed one
//! then takes every packet that is next in order ([`Reorder::pop_next`], until it gives
//! nothing), so the thread that brings the head packet also resolves the later ones that
//! arrived before it, and a later packet arriving while the head is taken waits in its slot
//! for the thread that takes the head. The model below checks it, with the consumer's wait on
//! the sink (`take`) and its wake-up (`after_tail`), under loom.

use std::collections::VecDeque;

pub(crate) struct Reorder<T> {
    /// Packets by `seq − next`: `None` where one has not arrived yet.
    window: VecDeque<Option<T>>,
    /// The next sequence number to resolve.
    next: u64,
}

impl<T> Reorder<T> {
    pub fn new() -> Reorder<T> {
        Reorder {
            window: VecDeque::new(),
            next: 0,
        }
    }

    /// Packets resolved so far (the next sequence number).
    pub fn resolved(&self) -> u64 {
        self.next
    }

    /// Put packet `seq` (not resolved yet) in its slot.
    pub fn place(&mut self, seq: u64, item: T) {
        let at = (seq - self.next) as usize;
        if self.window.len() <= at {
            self.window.resize_with(at + 1, || None);
        }
        debug_assert!(self.window[at].is_none(), "sequence {seq} placed twice");
        self.window[at] = Some(item);
    }

    /// Put a packet behind the others (as ready: arrival order, every slot full).
    pub fn push(&mut self, item: T) {
        self.window.push_back(Some(item));
    }

    /// The next packet in order, if it is here (it is resolved: `next` moves on).
    pub fn pop_next(&mut self) -> Option<T> {
        match self.window.front() {
            Some(Some(_)) => {
                self.next += 1;
                self.window.pop_front().flatten()
            }
            _ => None,
        }
    }
}

#[cfg(all(test, loom))]
mod models {
    use super::Reorder;
    use crate::pipeline::engine::post::Post;
    use crate::sync::{thread, Arc};
    use std::collections::VecDeque;

    /// A sink tail: the window, what is ready to leave, and the consumer's flag.
    struct Sink {
        order: Reorder<u32>,
        out: VecDeque<u32>,
        waiting: bool,
    }

    /// `to_tail` and `after_tail`: place, resolve what is next in order, and wake the consumer
    /// if it waits and there is output (decided under the lock, notified after it).
    fn to_tail(post: &Post<Sink>, seq: u64) {
        let mut t = post.lock();
        t.order.place(seq, seq as u32);
        while let Some(p) = t.order.pop_next() {
            t.out.push_back(p);
        }
        let wake = !t.out.is_empty() && t.waiting;
        drop(t);
        if wake {
            post.notify(1);
        }
    }

    /// (iii) The tail taking the head item while a later one arrives: packets 0 and 1 finish
    /// on two threads in either order while the consumer takes two (`take`: check `out`,
    /// raise `waiting`, wait). The consumer gets 0 then 1, each once, and is never left
    /// waiting (a lost wake-up or a packet stuck in the window is a deadlock, which loom
    /// reports).
    #[test]
    fn loom_the_tail_taking_the_head_while_a_later_item_arrives_delivers_both_in_order() {
        loom::model(|| {
            let post = Arc::new(Post::new(Sink {
                order: Reorder::new(),
                out: VecDeque::new(),
                waiting: false,
            }));
            let later = {
                let post = Arc::clone(&post);
                thread::spawn(move || to_tail(&post, 1))
            };
            let head = {
                let post = Arc::clone(&post);
                thread::spawn(move || to_tail(&post, 0))
            };
            let mut got = Vec::new();
            let mut t = post.lock();
            while got.len() < 2 {
                if let Some(p) = t.out.pop_front() {
                    got.push(p);
                    continue;
                }
                t.waiting = true;
                t = post.wait(t);
                t.waiting = false;
            }
            drop(t);
            later.join().unwrap();
            head.join().unwrap();
            assert_eq!(got, [0, 1]);
            assert_eq!(post.lock().order.resolved(), 2);
        });
    }
}

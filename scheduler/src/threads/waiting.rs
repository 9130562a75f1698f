//! A consumer that waits for an outcome inside a task of its job's own pool runs the pool's
//! work meanwhile and, when there is none, parks with the pool's workers (on `Sleep`), not on
//! the job's channel: whoever sends it a message must then wake the pool's sleepers.
//! [`ConsumerWait`] is the flag that tells them to. The protocol is described in `README.md`
//! beside this file ("Waiting inside a task").

use crate::sync::atomic::{
    fence, AtomicBool,
    Ordering::{Relaxed, SeqCst},
};

/// Raised while the consumer waits working. The consumer raises it, then (after a `SeqCst`
/// fence) looks at the channel; a sender sends, then (after a `SeqCst` fence) reads it. Of two
/// `SeqCst` fences one comes first: if the consumer's, the sender sees the flag and wakes the
/// sleepers; if the sender's, every later look of the consumer sees the message.
#[derive(Debug, Default)]
pub(crate) struct ConsumerWait {
    waits: AtomicBool,
}

impl ConsumerWait {
    /// The consumer is about to wait working: call before it looks at the channel.
    pub(crate) fn enter(&self) {
        self.waits.store(true, SeqCst);
        fence(SeqCst);
    }

    /// The wait is over.
    pub(crate) fn leave(&self) {
        self.waits.store(false, SeqCst);
    }

    /// A message was just sent: whether the consumer may be parked with the workers (then the
    /// sender wakes them). One fence and one load, on the path of every outcome delivered.
    #[inline]
    pub(crate) fn sent(&self) -> bool {
        fence(SeqCst);
        self.waits.load(Relaxed)
    }
}

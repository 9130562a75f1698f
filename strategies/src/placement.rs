//! The machinery shared by static strategies: a placement rule decides, at submission, which
//! worker runs each id; each worker then drains only its own inbox and never looks elsewhere.

use std::sync::Arc;

use scheduler::{Attempts, Batch, Context, Instance, Next, Pick, SharedQueue, Source, WorkerQueue};

use crate::queues::{Inbox, Private};

/// A static placement rule.
pub(crate) trait Placement: Send + Sync + 'static {
    /// Put every id of `batch` into exactly one of `inboxes`.
    fn place(&self, batch: &Batch<'_>, inboxes: &[Inbox]);
}

struct Shared<P> {
    placement: P,
    inboxes: Vec<Inbox>,
}

impl<P: Placement> SharedQueue for Shared<P> {
    fn submit(&self, batch: Batch<'_>) {
        if !batch.is_empty() {
            self.placement.place(&batch, &self.inboxes);
        }
    }
}

/// Aligned to its own cache lines: each worker writes its handle on every pick, and handles
/// built one after another would otherwise share a line (false sharing between workers).
#[repr(align(128))]
struct Handle<P> {
    shared: Arc<Shared<P>>,
    w: usize,
    private: Private,
}

impl<P: Placement> WorkerQueue for Handle<P> {
    #[inline]
    fn next(&mut self) -> Next {
        match self.private.next_run(&self.shared.inboxes[self.w]) {
            Some((task, count)) => Next::Task(Pick::run(task, count, Source::Local)),
            None => Next::Empty(Attempts::default()),
        }
    }
}

/// Queues for a static strategy with this placement rule.
pub(crate) fn build<P: Placement>(placement: P, ctx: &Context) -> Instance {
    let shared = Arc::new(Shared {
        placement,
        inboxes: (0..ctx.workers()).map(|_| Inbox::default()).collect(),
    });
    Instance {
        shared: shared.clone(),
        workers: (0..ctx.workers())
            .map(|w| {
                Box::new(Handle {
                    shared: shared.clone(),
                    w,
                    private: Private::new(),
                }) as Box<dyn WorkerQueue>
            })
            .collect(),
    }
}

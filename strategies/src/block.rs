//! `block`: static contiguous blocks, worker w runs ids `[w·n/P, (w+1)·n/P)` of each batch.
//!
//! Each batch is dealt from a rotating start (see `queues::Dealer`): a closed run is split as
//! above, and ids submitted one at a time go to workers 0, 1, …, P − 1, 0, … in turn.
//!
//! Classic static (OpenMP `schedule(static)`) partitioning: best locality, no communication;
//! it wins on uniform costs and loses badly when costs are correlated with the index (one
//! block gets all the expensive tasks).

use scheduler::{Batch, Context, Instance, Strategy};

use crate::params::Params;
use crate::placement::{self, Placement};
use crate::queues::{Dealer, Inbox};

/// Static block partitioning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Block;

impl Block {
    pub(crate) fn parse(p: &Params) -> Result<Self, scheduler::SpecError> {
        p.only(&[])?;
        Ok(Block)
    }
}

struct Contiguous(Dealer);

impl Placement for Contiguous {
    fn place(&self, batch: &Batch<'_>, inboxes: &[Inbox]) {
        self.0.deal(batch, inboxes);
    }
}

impl Strategy for Block {
    fn spec(&self) -> String {
        "block".into()
    }

    fn build(&self, ctx: &Context) -> Instance {
        placement::build(Contiguous(Dealer::default()), ctx)
    }
}

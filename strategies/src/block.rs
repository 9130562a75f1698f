//! `block`: static contiguous blocks, worker w runs ids `[w·n/P, (w+1)·n/P)` of each batch.
//!
//! Classic static (OpenMP `schedule(static)`) partitioning: best locality, no communication;
//! it wins on uniform costs and loses badly when costs are correlated with the index (one
//! block gets all the expensive tasks).

use scheduler::{Batch, Context, Instance, Strategy};

use crate::params::Params;
use crate::placement::{self, Placement};
use crate::queues::{deal_blocks, Inbox};

/// Static block partitioning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Block;

impl Block {
    pub(crate) fn parse(p: &Params) -> Result<Self, scheduler::SpecError> {
        p.only(&[])?;
        Ok(Block)
    }
}

struct Contiguous;

impl Placement for Contiguous {
    fn place(&self, batch: &Batch<'_>, inboxes: &[Inbox]) {
        deal_blocks(batch, inboxes);
    }
}

impl Strategy for Block {
    fn spec(&self) -> String {
        "block".into()
    }

    fn build(&self, ctx: &Context) -> Instance {
        placement::build(Contiguous, ctx)
    }
}

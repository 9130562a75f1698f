//! `round-robin`: static cyclic assignment, task i → worker i mod P.
//!
//! The PyTorch DataLoader's default (each worker takes every P-th batch). No communication at
//! all; it wins when task costs are equal and workers identical, and loses to any dynamic
//! policy as soon as costs vary (the seed: "poor performance for heterogeneous workloads").

use scheduler::{Batch, Context, Instance, Strategy};

use crate::params::Params;
use crate::placement::{self, Placement};
use crate::queues::{Chunk, Inbox};

/// Static round-robin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundRobin;

impl RoundRobin {
    pub(crate) fn parse(p: &Params) -> Result<Self, scheduler::SpecError> {
        p.only(&[])?;
        Ok(RoundRobin)
    }
}

struct Cyclic;

impl Placement for Cyclic {
    fn place(&self, batch: &Batch<'_>, inboxes: &[Inbox]) {
        let (lo, hi) = batch.ids;
        let p = inboxes.len();
        for (w, inbox) in inboxes.iter().enumerate() {
            // The first id >= lo that is ≡ w (mod p).
            let first = lo + (w + p - lo % p) % p;
            inbox.push(Chunk::strided(first, hi, p));
        }
    }
}

impl Strategy for RoundRobin {
    fn spec(&self) -> String {
        "round-robin".into()
    }

    fn build(&self, ctx: &Context) -> Instance {
        placement::build(Cyclic, ctx)
    }
}

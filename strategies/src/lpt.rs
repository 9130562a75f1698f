//! `lpt`: longest (estimated) processing time first, exactly, from presorted runs per batch.
//!
//! Graham, "Bounds on multiprocessing timing anomalies" (SIAM J. Appl. Math., 1969): LPT list
//! scheduling has makespan ≤ (4/3 − 1/(3m))·OPT on m identical machines. It wins on makespan
//! for closed batches with a heavy tail (the big tasks start first, the small ones fill in);
//! it is the worst policy for mean latency.

use scheduler::{Context, Instance, SpecError, Strategy};

use crate::params::Params;
use crate::priority::{self, Order};

/// Longest processing time first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lpt;

impl Lpt {
    pub(crate) fn parse(p: &Params) -> Result<Self, SpecError> {
        p.only(&[])?;
        Ok(Lpt)
    }
}

impl Strategy for Lpt {
    fn spec(&self) -> String {
        "lpt".into()
    }

    fn build(&self, ctx: &Context) -> Instance {
        priority::build(Order::Longest, ctx)
    }
}

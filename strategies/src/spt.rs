//! `spt`: shortest (estimated) processing time first, exactly, from presorted runs per batch.
//!
//! Smith's rule for identical parallel machines: with all tasks released at 0 and exact
//! estimates it minimises the total (and mean) completion time (Conway, Maxwell & Miller,
//! "Theory of Scheduling", 1967). It wins on mean latency; it can starve long tasks under
//! streaming arrivals and degrades as the estimates get worse.

use scheduler::{Context, Instance, SpecError, Strategy};

use crate::params::Params;
use crate::priority::{self, Order};

/// Shortest processing time first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spt;

impl Spt {
    pub(crate) fn parse(p: &Params) -> Result<Self, SpecError> {
        p.only(&[])?;
        Ok(Spt)
    }
}

impl Strategy for Spt {
    fn spec(&self) -> String {
        "spt".into()
    }

    fn build(&self, ctx: &Context) -> Instance {
        priority::build(Order::Shortest, ctx)
    }
}

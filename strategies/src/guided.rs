//! `guided(min=1)`: guided self-scheduling, chunk = max(min, ⌈remaining / P⌉).
//!
//! Polychronopoulos & Kuck, "Guided self-scheduling" (IEEE ToC, 1987); OpenMP's
//! `schedule(guided)`. Big chunks early (few queue accesses), small ones at the end (balance).
//! It wins over `central` when tasks are small and P is high; it loses when the costly tasks
//! come first, since an early big chunk cannot be split.

use scheduler::{Context, Instance, SpecError, Strategy};

use crate::params::Params;
use crate::self_scheduling::{self, ChunkRule};

/// Guided self-scheduling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guided {
    min: usize,
}

impl Guided {
    /// Guided self-scheduling with chunks of at least `min` (≥ 1).
    pub fn new(min: usize) -> Result<Self, SpecError> {
        if min == 0 {
            return Err(SpecError::new(
                "strategy 'guided': min must be a whole number >= 1, got '0'",
            ));
        }
        Ok(Guided { min })
    }

    pub(crate) fn parse(p: &Params) -> Result<Self, SpecError> {
        p.only(&["min"])?;
        Guided::new(p.count("min", 1, 1)?)
    }
}

struct Gss(usize);

impl ChunkRule for Gss {
    fn size(&self, remaining: usize, workers: usize, _w: usize) -> usize {
        remaining.div_ceil(workers).max(self.0)
    }
}

impl Strategy for Guided {
    fn spec(&self) -> String {
        format!("guided(min={})", self.min)
    }

    fn build(&self, ctx: &Context) -> Instance {
        self_scheduling::build(Gss(self.min), ctx)
    }
}

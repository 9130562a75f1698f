//! Every strategy, its parameters and defaults, and parsing from spec strings.
//!
//! Adding a strategy: one new file, one line in [`REGISTRY`].

use scheduler::{SpecError, Strategy};

use crate::params::Params;
use crate::{
    AdaptiveSpt, Awf, Block, Central, Factoring, Guided, Jsq, Lpt, RangeStealing, RoundRobin, Spt,
    Tss, WeightedRoundRobin, WorkStealing,
};

/// One parameter of a strategy.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    /// Its key in the spec.
    pub name: &'static str,
    /// The value used when it is not given.
    pub default: &'static str,
    /// What it may be.
    pub allowed: &'static str,
}

/// A registered strategy.
#[derive(Clone, Copy)]
pub struct Entry {
    /// Its name in specs.
    pub name: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// Its parameters.
    pub params: &'static [Param],
    parse: fn(&Params) -> Result<Box<dyn Strategy>, SpecError>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl Entry {
    /// The spec with every parameter at its default, e.g. `central(chunk=1)`.
    pub fn default_spec(&self) -> String {
        if self.params.is_empty() {
            return self.name.to_string();
        }
        let args: Vec<String> = self
            .params
            .iter()
            .map(|p| format!("{}={}", p.name, p.default))
            .collect();
        format!("{}({})", self.name, args.join(","))
    }
}

macro_rules! entry {
    ($name:literal, $ty:ty, $summary:literal, [$($p:literal = $d:literal : $a:literal),*]) => {
        Entry {
            name: $name,
            summary: $summary,
            params: &[$(Param { name: $p, default: $d, allowed: $a }),*],
            parse: |p| Ok(Box::new(<$ty>::parse(p)?)),
        }
    };
}

/// Every strategy schedlab knows, in the order `schedlab strategies` lists them.
pub static REGISTRY: &[Entry] = &[
    entry!(
        "round-robin",
        RoundRobin,
        "static: task i goes to worker i mod P",
        []
    ),
    entry!("block", Block, "static: contiguous blocks of n/P tasks", []),
    entry!("central", Central, "one shared queue; a free worker takes the next chunk", ["chunk" = "1" : "whole number >= 1"]),
    entry!("guided", Guided, "shared queue, chunk = max(min, ceil(remaining/P)) (guided self-scheduling)", ["min" = "1" : "whole number >= 1"]),
    entry!("work-stealing", WorkStealing, "per-worker deques; idle workers steal from random victims (Blumofe & Leiserson 1999)", ["victim" = "random" : "random | numa | hier", "steal" = "half" : "half | one | work", "order" = "fifo" : "fifo | lifo"]),
    entry!(
        "spt",
        Spt,
        "shortest estimated task first (exact order; Smith 1956, Conway et al. 1967)",
        []
    ),
    entry!(
        "lpt",
        Lpt,
        "longest estimated task first (exact order; Graham 1969)",
        []
    ),
    entry!(
        "range-stealing",
        RangeStealing,
        "per-worker index ranges; idle workers split a victim's range in half",
        []
    ),
    entry!("factoring", Factoring, "FAC2 factoring: batches of P equal chunks, each batch half the ids left (Hummel, Schonberg & Flynn 1992)", []),
    entry!("tss", Tss, "trapezoid self-scheduling: chunks falling linearly from n/2P to 1 (Tzen & Ni 1993)", []),
    entry!("awf", Awf, "adaptive weighted factoring: factoring chunks scaled by each worker's measured rate (Banicescu et al. 2003)", []),
    entry!("adaptive-spt", AdaptiveSpt, "SPT/LPT on costs learned online per range of ids, for runs without estimates", ["range" = "64" : "whole number >= 1 (ids per learned range)", "first" = "shortest" : "shortest | longest"]),
    entry!("jsq", Jsq, "each task joins the least loaded of d sampled workers (power of d choices, Mitzenmacher 2001)", ["d" = "2" : "whole number >= 1"]),
    entry!("weighted-rr", WeightedRoundRobin, "static smooth weighted round-robin over worker weights", ["weights" = "auto" : "auto (the worker speeds) | one number >= 0 per worker, e.g. 1,1,0.5"]),
];

/// The registry (every strategy with its parameters and defaults).
pub fn registry() -> &'static [Entry] {
    REGISTRY
}

/// Parse a strategy from its spec string. Names and keys are case-insensitive, as in workload
/// specs (one grammar, the `grammar` crate's).
///
/// ```
/// let s = strategies::parse("work-stealing(steal=one)").unwrap();
/// assert_eq!(s.spec(), "work-stealing(victim=random,steal=one,order=fifo)");
/// let err = strategies::parse("central(chunk=0)").unwrap_err();
/// assert!(err.to_string().contains("chunk"));
/// assert_eq!(strategies::parse("Central(CHUNK=4)").unwrap().spec(), "central(chunk=4)");
/// ```
pub fn parse(spec: &str) -> Result<Box<dyn Strategy>, SpecError> {
    let params = Params::parse(spec)?;
    let entry = REGISTRY
        .iter()
        .find(|e| e.name == params.name())
        .ok_or_else(|| {
            let known: Vec<&str> = REGISTRY.iter().map(|e| e.name).collect();
            SpecError::new(format!(
                "unknown strategy {} (known: {})",
                grammar::quote(params.name()),
                known.join(", ")
            ))
        })?;
    (entry.parse)(&params)
}

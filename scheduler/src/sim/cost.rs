//! What the simulator charges for scheduling, and the `key=duration,...` syntax that sets it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::SpecError;
use crate::strategy::Attempts;

/// The scheduling costs the `sim` engine charges, in virtual nanoseconds.
///
/// The defaults are order-of-magnitude figures for a current two-socket x86 server, so that
/// overheads matter in the simulator the way they do on hardware:
///
/// | term | default | where it comes from |
/// |---|---|---|
/// | `local` | 20 ns | an uncontended crossbeam-deque `pop` on the owner's deque: a few atomic loads and stores on cache lines the owner holds (crossbeam's own benchmarks, ~10–20 ns) |
/// | `shared` | 100 ns | one access to a shared queue: a CAS or lock on a cache line that last lived in another core's cache; core-to-core transfer latency on one socket is ~50–100 ns |
/// | `steal_same` | 100 ns | a steal probe on a worker of the same node: reading the victim's deque indices and a CAS, i.e. one or two on-socket cache-line transfers |
/// | `steal_cross` | 300 ns | the same probe across NUMA nodes: a cross-socket (UPI/Infinity Fabric) cache-line transfer costs ~2–3× an on-socket one |
/// | `migrate` | 2 µs | a task run on another node than the one it was placed on refetches its working set from remote memory: ~64 KB at ~30 GB/s |
/// | `backoff` | 100 ns | what a worker waits after losing a race (`Retry`) before it asks again: a short spin (a few `PAUSE` instructions, ~40 ns each on recent Intel cores) |
/// | `wake` | 3 µs | from a notification to a parked worker searching again: a futex wake-up and a context switch on Linux take a few µs |
///
/// Charging rules (see `sim/README.md`): failed steal attempts are charged per attempt by
/// node (`steal_same`/`steal_cross`), whatever the answer; a `Local` pick costs `local`; a
/// `Shared` pick is served by a single server, one access of `shared` at a time, so accesses
/// queue behind each other; a successful steal costs one more attempt by node, plus `migrate`
/// (added to the task's run time) when the victim is on another node; `Retry` waits `backoff`;
/// a woken worker resumes `wake` after the notification.
///
/// ```
/// use scheduler::CostModel;
/// let c: CostModel = "local=10ns,shared=1.5us".parse().unwrap();
/// assert_eq!((c.local_ns, c.shared_ns), (10, 1500));
/// assert_eq!(c.steal_cross_ns, CostModel::default().steal_cross_ns);
/// assert_eq!("zero".parse::<CostModel>().unwrap(), CostModel::zero());
/// let err = "locl=1ns".parse::<CostModel>().unwrap_err().to_string();
/// assert!(err.contains("locl") && err.contains("allowed keys"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CostModel {
    /// Taking a task from the worker's own queue (`Source::Local`).
    pub local_ns: u64,
    /// One access to a shared queue (`Source::Shared`); accesses are serialised.
    pub shared_ns: u64,
    /// One steal attempt on a worker of the thief's own node (failed or successful).
    pub steal_same_ns: u64,
    /// One steal attempt on a worker of another node (failed or successful).
    pub steal_cross_ns: u64,
    /// Added to the run time of a task stolen from a worker on another node.
    pub migrate_ns: u64,
    /// Wait after a `Retry` before asking again.
    pub backoff_ns: u64,
    /// From a notification to the woken worker's next search.
    pub wake_ns: u64,
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel {
            local_ns: 20,
            shared_ns: 100,
            steal_same_ns: 100,
            steal_cross_ns: 300,
            migrate_ns: 2_000,
            backoff_ns: 100,
            wake_ns: 3_000,
        }
    }
}

/// The keys of the spec syntax, in display order.
const KEYS: [&str; 7] = [
    "local",
    "shared",
    "steal_same",
    "steal_cross",
    "migrate",
    "backoff",
    "wake",
];

impl CostModel {
    /// Every cost 0: the engine charges nothing but task times (for checks against theory).
    pub fn zero() -> Self {
        CostModel {
            local_ns: 0,
            shared_ns: 0,
            steal_same_ns: 0,
            steal_cross_ns: 0,
            migrate_ns: 0,
            backoff_ns: 0,
            wake_ns: 0,
        }
    }

    fn slot(&mut self, key: &str) -> Option<&mut u64> {
        Some(match key {
            "local" => &mut self.local_ns,
            "shared" => &mut self.shared_ns,
            "steal_same" => &mut self.steal_same_ns,
            "steal_cross" => &mut self.steal_cross_ns,
            "migrate" => &mut self.migrate_ns,
            "backoff" => &mut self.backoff_ns,
            "wake" => &mut self.wake_ns,
            _ => return None,
        })
    }

    fn values(&self) -> [u64; 7] {
        [
            self.local_ns,
            self.shared_ns,
            self.steal_same_ns,
            self.steal_cross_ns,
            self.migrate_ns,
            self.backoff_ns,
            self.wake_ns,
        ]
    }

    /// The cost of the failed probes in `a`.
    #[inline]
    pub(crate) fn attempts(&self, a: Attempts) -> u64 {
        // Saturating: the engine treats the end of the clock as an overflow, never wraps.
        (u64::from(a.same_node).saturating_mul(self.steal_same_ns))
            .saturating_add(u64::from(a.cross_node).saturating_mul(self.steal_cross_ns))
    }
}

impl fmt::Display for CostModel {
    /// The canonical spec, e.g. `local=20ns,shared=100ns,...,wake=3us`; parsing it gives an
    /// equal model.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, ns)) in KEYS.iter().zip(self.values()).enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{key}={}", format_duration(ns))?;
        }
        Ok(())
    }
}

impl FromStr for CostModel {
    type Err = SpecError;

    /// Parse `key=duration,...` over the defaults. A first item `zero` (or `default`) picks the
    /// base: `zero,shared=100ns` charges only shared-queue accesses. An empty string is the
    /// default model. Keys are case-insensitive and may be given once each; durations follow the
    /// shared grammar of the `grammar` crate (`20ns`, `1.5us`, `1e3ns`, a bare `0`).
    fn from_str(s: &str) -> Result<Self, SpecError> {
        const CONTEXT: &str = "cost model";
        let mut model = CostModel::default();
        let items = grammar::split_top_level(s, ',', CONTEXT)?;
        grammar::check_unique_keys(&items, CONTEXT)?;
        let allowed = || {
            format!(
                "allowed keys: {}; 'zero' or 'default' may come first",
                KEYS.join(", ")
            )
        };
        for (i, item) in items.iter().enumerate() {
            let Some((key, value)) = grammar::key_value(item) else {
                match item.to_ascii_lowercase().as_str() {
                    "zero" if i == 0 => model = CostModel::zero(),
                    "default" if i == 0 => model = CostModel::default(),
                    _ => {
                        return Err(SpecError::new(format!(
                            "{CONTEXT}: expected key=duration, got {} ({})",
                            grammar::quote(item),
                            allowed()
                        )))
                    }
                }
                continue;
            };
            let Some(slot) = model.slot(&key) else {
                return Err(SpecError::new(format!(
                    "{CONTEXT}: unknown key {} ({})",
                    grammar::quote(&key),
                    allowed()
                )));
            };
            *slot = grammar::parse_duration(value)
                .map_err(|why| SpecError::new(format!("{CONTEXT}: {key}: {why}")))?;
        }
        Ok(model)
    }
}

/// `ns` in the largest unit that shows it exactly.
fn format_duration(ns: u64) -> String {
    grammar::format_duration(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_duration_grammar_applies() {
        for (spec, local) in [
            ("local=0", 0),
            ("local=1e3ns", 1_000),
            ("LOCAL=1.5us", 1_500),
            ("local=3µs", 3_000),
        ] {
            assert_eq!(spec.parse::<CostModel>().unwrap().local_ns, local, "{spec}");
        }
        for (spec, said) in [
            ("local=1ns,local=2ns", "given twice"),
            ("local=20", "unit is required"),
            ("local=-1ns", "negative"),
            ("locl=1ns", "unknown key 'locl'"),
            ("local=1ns,,wake=1us", "empty argument"),
            ("shared=99999999999999999999s", "too large"),
            ("local=1ns,zero", "expected key=duration"),
        ] {
            let err = spec.parse::<CostModel>().unwrap_err().to_string();
            assert!(err.contains(said), "{spec}: {err}");
        }
    }

    #[test]
    fn display_round_trips() {
        for m in [
            CostModel::default(),
            CostModel::zero(),
            "local=1ns,wake=1500ns".parse().unwrap(),
        ] {
            let text = m.to_string();
            assert_eq!(text.parse::<CostModel>().unwrap(), m, "{text}");
        }
        assert_eq!(
            CostModel::default().to_string(),
            "local=20ns,shared=100ns,steal_same=100ns,steal_cross=300ns,migrate=2us,backoff=100ns,wake=3us"
        );
    }
}

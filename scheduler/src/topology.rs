//! Machine topology (NUMA nodes → cpus) and the placement of workers on it.
//!
//! The topology is read from hwloc when the `hwloc` feature is on, from Linux sysfs
//! (`/sys/devices/system/node`) otherwise, and falls back to one node holding every cpu this
//! process may use. A synthetic `NxM` topology (N nodes of M cpus) serves the simulator and
//! tests. Note: `core_affinity::get_core_ids()` returns the *calling thread's* mask, so the
//! topology is read before any thread is pinned.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::SpecError;

/// Where a topology came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopologySource {
    /// Read with hwloc.
    Hwloc,
    /// Read from `/sys/devices/system/node`.
    Sysfs,
    /// One node with every cpu the process may use (no NUMA information found).
    Fallback,
    /// Given as `NxM`.
    Synthetic,
}

impl fmt::Display for TopologySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TopologySource::Hwloc => "hwloc",
            TopologySource::Sysfs => "sysfs",
            TopologySource::Fallback => "fallback",
            TopologySource::Synthetic => "synthetic",
        })
    }
}

/// NUMA nodes and the cpus (OS cpu ids) on each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    /// `nodes[k]` lists the cpu ids of node k, ascending. No node is empty.
    pub nodes: Vec<Vec<usize>>,
    /// Where this came from.
    pub source: TopologySource,
}

impl Topology {
    /// The most cpus a synthetic `NxM` topology may have: 2^21, as many as the simulator has
    /// workers (16 MiB of cpu ids).
    pub const MAX_CPUS: usize = 1 << 21;

    /// A synthetic topology of `nodes` nodes with `cpus_per_node` cpus each, numbered in order.
    ///
    /// ```
    /// let t = scheduler::Topology::synthetic(2, 4);
    /// assert_eq!(t.nodes[1], vec![4, 5, 6, 7]);
    /// assert_eq!(t.cpus(), 8);
    /// ```
    pub fn synthetic(nodes: usize, cpus_per_node: usize) -> Self {
        let nodes = nodes.max(1);
        let m = cpus_per_node.max(1);
        Topology {
            nodes: (0..nodes).map(|k| (k * m..(k + 1) * m).collect()).collect(),
            source: TopologySource::Synthetic,
        }
    }

    /// Detect this machine's topology (hwloc with the `hwloc` feature, else sysfs, else one
    /// node), restricted to the cpus this process may run on.
    pub fn detect() -> Self {
        let allowed: Option<Vec<usize>> =
            core_affinity::get_core_ids().map(|ids| ids.into_iter().map(|c| c.id).collect());
        #[cfg(feature = "hwloc")]
        if let Some(t) = crate::hwloc::read() {
            return t.restricted(allowed.as_deref());
        }
        if let Some(t) = read_sysfs(std::path::Path::new("/sys/devices/system/node")) {
            return t.restricted(allowed.as_deref());
        }
        let cpus = allowed.unwrap_or_else(|| {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            (0..n).collect()
        });
        Topology {
            nodes: vec![if cpus.is_empty() { vec![0] } else { cpus }],
            source: TopologySource::Fallback,
        }
    }

    /// Keep only the allowed cpus, dropping nodes left empty (the whole topology is kept if
    /// nothing would remain).
    fn restricted(mut self, allowed: Option<&[usize]>) -> Self {
        if let Some(allowed) = allowed {
            let kept: Vec<Vec<usize>> = self
                .nodes
                .iter()
                .map(|cpus| {
                    cpus.iter()
                        .copied()
                        .filter(|c| allowed.contains(c))
                        .collect()
                })
                .filter(|cpus: &Vec<usize>| !cpus.is_empty())
                .collect();
            if !kept.is_empty() {
                self.nodes = kept;
            }
        }
        self
    }

    /// Total number of cpus.
    pub fn cpus(&self) -> usize {
        self.nodes.iter().map(Vec::len).sum()
    }

    /// Place `workers` workers according to `pin`.
    ///
    /// `cores` fills cpus in order (node 0 first); `numa` deals workers round-robin over the
    /// nodes; `none` pins nothing but still assigns nodes as `cores` would, so that NUMA-aware
    /// policies have a node for every worker. More workers than cpus wrap around.
    ///
    /// ```
    /// use scheduler::{Pin, Topology};
    /// let t = Topology::synthetic(2, 2);
    /// let p = t.place(4, Pin::Numa);
    /// assert_eq!(p.iter().map(|s| s.node).collect::<Vec<_>>(), vec![0, 1, 0, 1]);
    /// assert_eq!(p[1].cpu, Some(2));
    /// ```
    pub fn place(&self, workers: usize, pin: Pin) -> Vec<Slot> {
        let flat: Vec<(usize, usize)> = self
            .nodes
            .iter()
            .enumerate()
            .flat_map(|(k, cpus)| cpus.iter().map(move |&c| (k, c)))
            .collect();
        (0..workers)
            .map(|w| {
                let (node, cpu) = match pin {
                    Pin::None | Pin::Cores => flat[w % flat.len()],
                    Pin::Numa => {
                        let k = w % self.nodes.len();
                        let cpus = &self.nodes[k];
                        (k, cpus[(w / self.nodes.len()) % cpus.len()])
                    }
                };
                Slot {
                    node,
                    cpu: (pin != Pin::None).then_some(cpu),
                }
            })
            .collect()
    }
}

impl FromStr for Topology {
    type Err = SpecError;

    /// Parse `NxM` (N nodes of M cpus each), e.g. `2x4`.
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let bad = || {
            SpecError::new(format!(
                "topology {}: expected NxM with N, M >= 1 (e.g. 2x4)",
                grammar::quote(s.trim())
            ))
        };
        let (n, m) = s.trim().split_once(['x', 'X']).ok_or_else(bad)?;
        let n: usize = n.trim().parse().map_err(|_| bad())?;
        let m: usize = m.trim().parse().map_err(|_| bad())?;
        if n == 0 || m == 0 {
            return Err(bad());
        }
        let cpus = n.checked_mul(m).filter(|&c| c <= Topology::MAX_CPUS);
        if cpus.is_none() {
            // Every cpu is a list entry (8 bytes) and a placement slot: refuse before allocating.
            let bytes = (n as f64) * (m as f64) * 8.0;
            return Err(SpecError::new(format!(
                "topology {}: {n} x {m} cpus would need {} of memory just to list them; at most \
                 {} cpus in all (N x M)",
                grammar::quote(s.trim()),
                human_bytes(bytes),
                Topology::MAX_CPUS
            )));
        }
        Ok(Topology::synthetic(n, m))
    }
}

/// Bytes for a message: `74.5 GiB`.
pub(crate) fn human_bytes(bytes: f64) -> String {
    let mut v = bytes;
    for unit in ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"] {
        if v < 1024.0 || unit == "PiB" {
            return if unit == "bytes" {
                format!("{v:.0} {unit}")
            } else {
                format!("{v:.1} {unit}")
            };
        }
        v /= 1024.0;
    }
    unreachable!("the loop returns at PiB")
}

/// Where one worker sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The worker's NUMA node.
    pub node: usize,
    /// The cpu it is pinned to, if pinned.
    pub cpu: Option<usize>,
}

/// How worker threads are pinned to cpus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Pin {
    /// Not pinned; the OS places threads.
    #[default]
    None,
    /// Fill cpus in order.
    Cores,
    /// Spread workers over NUMA nodes.
    Numa,
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pin::None => "none",
            Pin::Cores => "cores",
            Pin::Numa => "numa",
        })
    }
}

impl FromStr for Pin {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        // Case-insensitive, like every other name in the spec grammar.
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Pin::None),
            "cores" => Ok(Pin::Cores),
            "numa" => Ok(Pin::Numa),
            _ => Err(SpecError::new(format!(
                "pin {}: allowed values are none, cores, numa",
                grammar::quote(s.trim())
            ))),
        }
    }
}

/// Parse a Linux cpulist such as `0-3,8,10-11`.
pub(crate) fn parse_cpulist(s: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Some(cpus)
}

/// Read `node*/cpulist` under `root` (normally `/sys/devices/system/node`).
pub(crate) fn read_sysfs(root: &std::path::Path) -> Option<Topology> {
    let nodes = std::fs::read_dir(root).ok()?.filter_map(|e| {
        let e = e.ok()?;
        let name = e.file_name().into_string().ok()?;
        let k: usize = name.strip_prefix("node")?.parse().ok()?;
        let list = std::fs::read_to_string(e.path().join("cpulist")).ok()?;
        Some((k, parse_cpulist(&list)?))
    });
    Topology::from_numbered(nodes, TopologySource::Sysfs)
}

impl Topology {
    /// Assemble a topology from `(node number, cpus)` pairs in any order, dropping nodes
    /// without cpus; `None` if none is left.
    pub(crate) fn from_numbered(
        nodes: impl Iterator<Item = (usize, Vec<usize>)>,
        source: TopologySource,
    ) -> Option<Topology> {
        let mut nodes: Vec<(usize, Vec<usize>)> = nodes.filter(|(_, c)| !c.is_empty()).collect();
        if nodes.is_empty() {
            return None;
        }
        nodes.sort();
        Some(Topology {
            nodes: nodes.into_iter().map(|(_, c)| c).collect(),
            source,
        })
    }
}

/// Pin the calling thread to `cpu`; false if the OS refused (e.g. a synthetic cpu id).
pub(crate) fn pin_current(cpu: usize) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: cpu })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpulists_parse() {
        assert_eq!(
            parse_cpulist("0-3,8,10-11\n"),
            Some(vec![0, 1, 2, 3, 8, 10, 11])
        );
        assert_eq!(parse_cpulist("5"), Some(vec![5]));
        assert_eq!(parse_cpulist("a-b"), None);
    }

    #[test]
    fn sysfs_layout_is_read() {
        let dir = std::env::temp_dir().join(format!("schedlab-sysfs-{}", std::process::id()));
        for (k, list) in [(0, "0-1"), (1, "2-3")] {
            let d = dir.join(format!("node{k}"));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("cpulist"), list).unwrap();
        }
        std::fs::create_dir_all(dir.join("power")).unwrap();
        let t = read_sysfs(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(t.nodes, vec![vec![0, 1], vec![2, 3]]);
        assert_eq!(t.source, TopologySource::Sysfs);
    }

    #[test]
    fn placement_wraps_and_spreads() {
        let t = Topology::synthetic(2, 2);
        let cores: Vec<_> = t
            .place(5, Pin::Cores)
            .iter()
            .map(|s| s.cpu.unwrap())
            .collect();
        assert_eq!(cores, vec![0, 1, 2, 3, 0]);
        let none = t.place(3, Pin::None);
        assert!(none.iter().all(|s| s.cpu.is_none()));
        assert_eq!(none[2].node, 1);
    }

    #[test]
    fn synthetic_specs() {
        assert_eq!("2x4".parse::<Topology>().unwrap().cpus(), 8);
        for bad in ["", "2", "0x4", "2x0", "ax4", "2x4x1"] {
            let err = bad.parse::<Topology>().unwrap_err().to_string();
            assert!(err.contains("NxM"), "{bad}: {err}");
        }
        for huge in [
            "100000x100000",
            "18446744073709551615x2",
            "2097152x2",
            "1x2097153",
        ] {
            let err = huge.parse::<Topology>().unwrap_err().to_string();
            assert!(
                err.contains("of memory") && err.contains("at most"),
                "{huge}: {err}"
            );
        }
        assert_eq!("1x2097152".parse::<Topology>().unwrap().cpus(), 1 << 21);
    }

    #[test]
    fn detection_finds_cpus() {
        let t = Topology::detect();
        assert!(t.cpus() >= 1);
        assert!(t.nodes.iter().all(|n| !n.is_empty()));
    }
}

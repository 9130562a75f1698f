//! Topology from hwloc (cargo feature `hwloc`; needs the system packages `libhwloc-dev` and
//! `libudev-dev`). Uses `hwlocality`, whose NUMA queries work on hwloc 2.9 (Debian's); the
//! older `hwloc2` crate links but panics on them.

use hwlocality::object::types::ObjectType;

use crate::topology::{Topology, TopologySource};

/// Read NUMA nodes and their cpus (OS indices) with hwloc; `None` if hwloc fails or reports
/// no node with cpus.
pub(crate) fn read() -> Option<Topology> {
    let topo = hwlocality::Topology::new().ok()?;
    let nodes = topo
        .objects_with_type(ObjectType::NUMANode)
        .filter_map(|node| {
            let cpus: Vec<usize> = node.cpuset()?.iter_set().map(usize::from).collect();
            Some((node.os_index().unwrap_or(0), cpus))
        });
    Topology::from_numbered(nodes, TopologySource::Hwloc)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hwloc_reads_this_machine() {
        let t = super::read().expect("hwloc finds at least one NUMA node with cpus");
        assert!(t.cpus() >= 1);
        assert_eq!(
            crate::Topology::detect().source,
            crate::TopologySource::Hwloc
        );
    }
}

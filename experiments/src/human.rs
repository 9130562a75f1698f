//! Human-readable renderings of reports, the strategy registry and the topology.

use std::fmt::Write;

use scheduler::{RunReport, Topology};
use workloads::format_ns;

/// A short text summary of a run.
pub fn render(r: &RunReport) -> String {
    let mut s = String::new();
    let ns = |v: u64| format_ns(v as f64);
    let _ = writeln!(
        s,
        "{} on {} ({} engine, {} workers, {} tasks, {} arrivals, kind {})",
        r.strategy, r.workload, r.engine, r.workers, r.tasks, r.arrivals, r.kind
    );
    let _ = writeln!(
        s,
        "  executed {}  failed {}  makespan {}  lower bound {}  efficiency {:.3}",
        r.executed,
        r.failed,
        ns(r.makespan_ns),
        ns(r.lower_bound_ns),
        r.efficiency
    );
    let _ = writeln!(
        s,
        "  LIF {:.3}  worker efficiency {:.3}  steals {} (failed attempts {}, tasks moved {})  overhead {}",
        r.lif, r.worker_efficiency, r.steals, r.steal_attempts, r.tasks_moved, ns(r.overhead_ns)
    );
    for (name, q) in [("latency", &r.latency_ns), ("wait", &r.wait_ns)] {
        let _ = writeln!(
            s,
            "  {name:<8} mean {}  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            format_ns(q.mean),
            ns(q.p50),
            ns(q.p90),
            ns(q.p99),
            ns(q.p999),
            ns(q.max)
        );
    }
    let _ = writeln!(
        s,
        "  {:>6} {:>5} {:>4} {:>6} {:>10} {:>10} {:>8} {:>7}",
        "worker", "cpu", "node", "speed", "busy", "idle", "tasks", "steals"
    );
    for w in &r.per_worker {
        let cpu = w.cpu.map_or("-".to_string(), |c| c.to_string());
        let _ = writeln!(
            s,
            "  {:>6} {:>5} {:>4} {:>6.2} {:>10} {:>10} {:>8} {:>7}",
            w.id,
            cpu,
            w.node,
            w.speed,
            ns(w.busy_ns),
            ns(w.idle_ns),
            w.tasks,
            w.steals
        );
    }
    for f in r.failures.iter().take(5) {
        let _ = writeln!(
            s,
            "  failed: task {} on worker {}: {}",
            f.task, f.worker, f.message
        );
    }
    for n in &r.notes {
        let _ = writeln!(s, "  note: {n}");
    }
    s
}

/// The registry as a table (or JSON).
pub fn strategies(json: bool) -> String {
    let reg = strategies::registry();
    if json {
        let list: Vec<serde_json::Value> = reg
            .iter()
            .map(|e| {
                serde_json::json!({
                    "name": e.name,
                    "summary": e.summary,
                    "default_spec": e.default_spec(),
                    "params": e.params.iter().map(|p| serde_json::json!({
                        "name": p.name, "default": p.default, "allowed": p.allowed
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        return serde_json::Value::Array(list).to_string() + "\n";
    }
    let mut s = String::new();
    for e in reg {
        let _ = writeln!(s, "{:<14} {}", e.name, e.summary);
        for p in e.params {
            let _ = writeln!(s, "{:<14}   {}={} ({})", "", p.name, p.default, p.allowed);
        }
    }
    s
}

/// The topology as text.
pub fn topology(t: &Topology) -> String {
    let mut s = format!(
        "{} NUMA node(s), {} cpu(s), from {}\n",
        t.nodes.len(),
        t.cpus(),
        t.source
    );
    for (k, cpus) in t.nodes.iter().enumerate() {
        let list: Vec<String> = cpus.iter().map(|c| c.to_string()).collect();
        let _ = writeln!(s, "  node {k}: cpus {}", list.join(","));
    }
    s
}

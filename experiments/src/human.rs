//! Human-readable renderings of reports, the strategy registry and the topology.

use std::fmt::Write;

use scheduler::{RunReport, Topology};
use workloads::format_ns;

/// Above this many workers the report summarises them instead of listing each.
pub const MAX_LISTED_WORKERS: usize = 64;

/// A short text summary of a run.
pub fn render(r: &RunReport) -> String {
    render_with_inputs(r, None)
}

/// A short text summary of a run, with a header line of the inputs that changed it.
pub fn render_with_inputs(r: &RunReport, inputs: Option<&crate::run::Inputs>) -> String {
    let mut s = String::new();
    let ns = |v: u64| format_ns(v as f64);
    let _ = writeln!(
        s,
        "{} on {} ({} engine, {} workers, {} tasks, {} arrivals, kind {})",
        r.strategy, r.workload, r.engine, r.workers, r.tasks, r.arrivals, r.kind
    );
    if let Some(i) = inputs {
        let _ = writeln!(s, "  {}", i.header());
    }
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
    if r.per_worker.len() > MAX_LISTED_WORKERS {
        summarise_workers(&mut s, r);
    } else {
        worker_lines(&mut s, r.per_worker.iter());
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

/// Min, median and max of busy time, tasks and steals over all workers, then the five busiest
/// (the ones that set the makespan) and the five least busy.
fn summarise_workers(s: &mut String, r: &RunReport) {
    let ns = |v: u64| format_ns(v as f64);
    let stats = |mut v: Vec<u64>| {
        v.sort_unstable();
        (v[0], v[v.len() / 2], v[v.len() - 1])
    };
    let w = &r.per_worker;
    let busy = stats(w.iter().map(|w| w.busy_ns).collect());
    let tasks = stats(w.iter().map(|w| w.tasks).collect());
    let steals = stats(w.iter().map(|w| w.steals).collect());
    let _ = writeln!(
        s,
        "  {} workers (min / median / max): busy {} / {} / {}  tasks {} / {} / {}  steals {} / {} / {}",
        w.len(),
        ns(busy.0),
        ns(busy.1),
        ns(busy.2),
        tasks.0,
        tasks.1,
        tasks.2,
        steals.0,
        steals.1,
        steals.2
    );
    let mut by_busy: Vec<&scheduler::WorkerReport> = w.iter().collect();
    by_busy.sort_by_key(|w| std::cmp::Reverse(w.busy_ns));
    let _ = writeln!(s, "  busiest five:");
    worker_lines(s, by_busy.iter().take(5).copied());
    let _ = writeln!(s, "  least busy five:");
    worker_lines(s, by_busy.iter().rev().take(5).copied());
}

fn worker_lines<'a>(s: &mut String, workers: impl Iterator<Item = &'a scheduler::WorkerReport>) {
    let ns = |v: u64| format_ns(v as f64);
    let _ = writeln!(
        s,
        "  {:>6} {:>5} {:>4} {:>6} {:>10} {:>10} {:>8} {:>7}",
        "worker", "cpu", "node", "speed", "busy", "idle", "tasks", "steals"
    );
    for w in workers {
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

//! Flat CSV renderings of reports and result rows (for pandas and spreadsheets).

use reports::results::RunRow;
use scheduler::RunReport;

/// The report's columns, in order.
pub const REPORT_COLUMNS: &[&str] = &[
    "strategy",
    "workload",
    "engine",
    "kind",
    "workers",
    "tasks",
    "seed",
    "arrivals",
    "pin",
    "executed",
    "failed",
    "makespan_ns",
    "total_work_ns",
    "lower_bound_ns",
    "efficiency",
    "lif",
    "worker_efficiency",
    "latency_mean_ns",
    "latency_p50_ns",
    "latency_p90_ns",
    "latency_p99_ns",
    "latency_p999_ns",
    "latency_max_ns",
    "wait_mean_ns",
    "wait_p50_ns",
    "wait_p90_ns",
    "wait_p99_ns",
    "wait_p999_ns",
    "wait_max_ns",
    "steals",
    "steal_attempts",
    "tasks_moved",
    "overhead_ns",
    "timing",
    "oversubscribed",
    "version",
];

/// The columns a result row adds before the report's.
pub const ROW_COLUMNS: &[&str] = &[
    "suite",
    "matrix",
    "cell",
    "repetition",
    "speeds",
    "estimate_error",
    "topology",
    "cost",
    "wall_ms",
    "command",
];

/// Quote a CSV field when it holds a comma, a quote or a line break (RFC 4180).
pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn join(fields: Vec<String>) -> String {
    fields
        .iter()
        .map(|f| field(f))
        .collect::<Vec<_>>()
        .join(",")
}

/// The report's values, in [`REPORT_COLUMNS`] order.
pub fn report_fields(r: &RunReport) -> Vec<String> {
    let q = |q: &scheduler::Quantiles| {
        vec![
            q.mean.to_string(),
            q.p50.to_string(),
            q.p90.to_string(),
            q.p99.to_string(),
            q.p999.to_string(),
            q.max.to_string(),
        ]
    };
    let mut v = vec![
        r.strategy.clone(),
        r.workload.clone(),
        r.engine.clone(),
        r.kind.clone(),
        r.workers.to_string(),
        r.tasks.to_string(),
        r.seed.to_string(),
        r.arrivals.clone(),
        r.pin.clone(),
        r.executed.to_string(),
        r.failed.to_string(),
        r.makespan_ns.to_string(),
        r.total_work_ns.to_string(),
        r.lower_bound_ns.to_string(),
        r.efficiency.to_string(),
        r.lif.to_string(),
        r.worker_efficiency.to_string(),
    ];
    v.extend(q(&r.latency_ns));
    v.extend(q(&r.wait_ns));
    v.extend([
        r.steals.to_string(),
        r.steal_attempts.to_string(),
        r.tasks_moved.to_string(),
        r.overhead_ns.to_string(),
        r.timing.clone(),
        r.oversubscribed.to_string(),
        r.version.clone(),
    ]);
    v
}

/// Header and one line for a single report (`schedlab run --format csv`).
pub fn report(r: &RunReport) -> String {
    format!("{}\n{}\n", REPORT_COLUMNS.join(","), join(report_fields(r)))
}

/// The header of `runs.csv`.
pub fn rows_header() -> String {
    let mut cols: Vec<&str> = ROW_COLUMNS.to_vec();
    cols.extend_from_slice(REPORT_COLUMNS);
    cols.join(",") + "\n"
}

/// One line of `runs.csv`.
pub fn row(r: &RunRow) -> String {
    let mut v = vec![
        r.suite.clone(),
        r.matrix.clone(),
        r.cell.clone(),
        r.repetition.to_string(),
        r.coords.speeds.clone(),
        r.coords.estimate_error.to_string(),
        r.coords.topology.clone(),
        r.coords.cost.clone(),
        r.wall_ms.to_string(),
        r.command.clone(),
    ];
    v.extend(report_fields(&r.report));
    join(v) + "\n"
}

/// `runs.csv` for these rows.
pub fn rows(rows: &[RunRow]) -> String {
    let mut s = rows_header();
    for r in rows {
        s.push_str(&row(r));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn header_and_fields_agree_in_length() {
        let spec = scheduler::RunSpec::new(2);
        let tasks = scheduler::Tasks::with_costs(&[1000, 2000, 3000]);
        let s = strategies::parse("block").unwrap();
        let r =
            scheduler::run_sim(&spec, s.as_ref(), &tasks, &scheduler::CostModel::zero()).unwrap();
        assert_eq!(report_fields(&r).len(), REPORT_COLUMNS.len());
        let text = report(&r);
        assert_eq!(text.lines().count(), 2);
    }
}

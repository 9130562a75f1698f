//! Open arrivals on the threads engine, task by task: for each task its release, start and end
//! (ns since the job began), its worker and that worker's thread id, plus the offset of the
//! job's clock on CLOCK_MONOTONIC, so that the lines can be laid beside `perf sched` (recorded
//! with `-k CLOCK_MONOTONIC`). Issue 19, item 5.
//!
//! `cargo run --release -p experiments --example arrivals_trace -- SEED [RATE [WORKERS [TASKS [PIN]]]]`
//! prints `task release start end worker tid wait cpu` lines (`cpu`: where the task started),
//! then `# mono_offset_ns N` and the wait summary.

use std::sync::Mutex;

use experiments::run::{RunArgs, RunPlan};
use workloads::{Executor, Kind};

fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| a.get(i).cloned().unwrap_or_else(|| d.to_string());
    let seed: u64 = arg(0, "1").parse().expect("seed");
    let rate = arg(1, "10000");
    let workers: usize = arg(2, "2").parse().expect("workers");
    let n: usize = arg(3, "4000").parse().expect("tasks");
    let pin = arg(4, "none");
    let args = RunArgs {
        strategy: "central".into(),
        workload: "constant(100us)".into(),
        arrivals: format!("poisson(rate={rate}/s)"),
        workers,
        tasks: n,
        seed,
        timeline: n,
        pin,
        ..RunArgs::default()
    };
    let plan = RunPlan::new(&args).expect("plan");
    let tasks = plan.tasks();
    let exec = Executor::new(Kind::Spin);
    let costs = &plan.taskset.cost_ns;
    // Per task: CLOCK_MONOTONIC at its start, its thread and its cpu.
    let seen: Vec<Mutex<(u64, i32, i32)>> = (0..n).map(|_| Mutex::new((0, 0, 0))).collect();
    let report = scheduler::run_threads(&plan.spec, plan.strategy.as_ref(), &tasks, |id, _w| {
        // SAFETY: gettid and sched_getcpu have no preconditions.
        let (tid, cpu) = unsafe { (libc::gettid(), libc::sched_getcpu()) };
        *seen[id].lock().unwrap() = (mono_ns(), tid, cpu);
        exec.run(costs[id]);
    })
    .expect("run");
    let mut offset = None;
    let mut lines = Vec::new();
    for s in report.timeline.as_deref().unwrap_or(&[]) {
        let (mono, tid, cpu) = *seen[s.task].lock().unwrap();
        // The closure runs right after the engine reads its start clock.
        offset.get_or_insert(mono as i64 - s.start_ns as i64);
        let rel = plan.taskset.arrival_ns[s.task];
        lines.push((s.task, rel, s.start_ns, s.end_ns, s.worker, tid, cpu));
    }
    lines.sort();
    for (t, rel, st, en, w, tid, cpu) in lines {
        let wait = st as i64 - rel as i64;
        println!("{t} {rel} {st} {en} {w} {tid} {wait} {cpu}");
    }
    println!("# mono_offset_ns {}", offset.unwrap_or(0));
    println!(
        "# wait mean {:.1}us p50 {:.1}us p99 {:.1}us max {:.1}us",
        report.wait_ns.mean / 1e3,
        report.wait_ns.p50 as f64 / 1e3,
        report.wait_ns.p99 as f64 / 1e3,
        report.wait_ns.max as f64 / 1e3
    );
}

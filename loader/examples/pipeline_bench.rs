//! The pipeline benchmark of issue 15: a pipeline of a blocking read stage and a cpu decode
//! stage against the one-stage loader doing both in `get`, alternated in one process.
//!
//! * (a) read: sleep, log-normal mean 2 ms σ 1, 32 threads → decode: spin, log-normal mean
//!   250 µs σ 1, on P = 2 CPU workers → batches of 32, in order. Limit = min over stages of
//!   capacity = min(32 / read, P / decode) ≈ 8,000 items/s (decode is the bottleneck).
//! * (b) the same with decode spinning 50 µs: read is the bottleneck (≈ 15,000 items/s).
//! * (c) overhead: three empty `cpu` map stages over 1,000,000 items (`--c-items`): ns per item
//!   per stage.
//! * (d) the default strategy: one stage sleeping log-normal 1 ms σ 1.5 on 8 workers, in
//!   order (the default must reach ≥ 0.97 of the limit).
//! * (e) producer-paced: read sleeps 100 µs on 8 threads → decode spins 1 µs on P = 2 CPU
//!   workers, in order, batch 32: the CPU workers idle between items that arrive one at a
//!   time, so the process CPU per item is mostly what idle workers burn while they wait.
//! * (s) the read's own sleep, without the engine: thread CPU inside `sleep` for the reads of
//!   (a) on 32 threads that only sleep while 2 threads spin (the pipeline's roles), against
//!   32 threads that each sleep and then spin (a) decode's time (the one-stage loader's), the
//!   two alternated: what a read costs before any hand-off.
//!
//! The limit uses the *measured* mean time inside each stage (a sleep overshoots by tens of
//! µs). `spin` burns the thread's own CPU time (`CLOCK_THREAD_CPUTIME_ID`) by default, so a
//! preempted spin is not cut short: with more threads than cores (the one-stage loader at 8 or
//! 32 workers) a wall-clock spin would overlap on one core and flatter it (`--spin wall` to
//! see that).
//!
//! ```text
//! cargo run --release -p loader --example pipeline_bench [-- --items 16384 --reps 3 --only a|b|c|d|e|s --c-items 1000000 --json --spin cpu|wall --strategy SPEC --window N --loader-workers 2,8,32|none --verbose]
//! ```

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loader::{Loader, Pipeline, Remainder, Sampler, Stage};

#[path = "common/args.rs"]
mod args;
use args::{arg, draw, num, process_cpu_ns, spin_cpu, thread_cpu_ns, usage};

#[derive(Clone, Copy, PartialEq)]
enum Spin {
    Cpu,
    Wall,
}

fn spin(ns: u64, how: Spin) {
    match how {
        Spin::Cpu => spin_cpu(ns),
        Spin::Wall => {
            let t = Instant::now();
            let want = Duration::from_nanos(ns);
            while t.elapsed() < want {
                std::hint::spin_loop();
            }
        }
    }
}

/// Measured time inside each stage (ns, summed), to compute the limit; and where the CPU
/// outside the decode goes: the thread CPU a read call takes (its sleep's system time), and the
/// thread CPU between two calls on the same thread (the engine's hand-off, waits and wake-ups),
/// on the threads that read and on those that decode.
#[derive(Default)]
struct Clock {
    read: AtomicU64,
    decode: AtomicU64,
    read_cpu: AtomicU64,
    read_between: AtomicU64,
    decode_between: AtomicU64,
}

impl Clock {
    /// Where the CPU outside the decode went, µs per item: see [`Sample::split_us`].
    fn split_us(&self, n: usize) -> [f64; 3] {
        [&self.read_cpu, &self.read_between, &self.decode_between]
            .map(|a| a.load(Relaxed) as f64 / n as f64 / 1e3)
    }
}

thread_local! {
    /// This thread's CPU clock when its last stage call ended (0: no call yet).
    static LAST_END: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The thread CPU since this thread's last stage call ended, added to `between` (nothing on
/// its first call); the clock now.
fn since_last_call(between: &AtomicU64) -> u64 {
    let now = thread_cpu_ns();
    let last = LAST_END.get();
    if last != 0 {
        between.fetch_add(now - last, Relaxed);
    }
    now
}

struct Workload {
    name: &'static str,
    read: Arc<Vec<u64>>,
    decode: Arc<Vec<u64>>,
    read_threads: usize,
    cpu: usize,
    spin: Spin,
}

impl Workload {
    fn read(&self, clock: &Arc<Clock>) -> impl Fn(usize) -> usize + Send + Sync + 'static {
        let (costs, clock) = (Arc::clone(&self.read), Arc::clone(clock));
        move |i| {
            let c = since_last_call(&clock.read_between);
            let t = Instant::now();
            std::thread::sleep(Duration::from_nanos(costs[i]));
            clock.read.fetch_add(t.elapsed().as_nanos() as u64, Relaxed);
            let end = thread_cpu_ns();
            clock.read_cpu.fetch_add(end - c, Relaxed);
            LAST_END.set(end);
            i
        }
    }

    fn decode(&self, clock: &Arc<Clock>) -> impl Fn(usize) -> usize + Send + Sync + 'static {
        let (costs, clock, how) = (Arc::clone(&self.decode), Arc::clone(clock), self.spin);
        move |i| {
            // CPU time: the limit is what P cores can do, however the threads are scheduled
            let t = since_last_call(&clock.decode_between);
            spin(costs[i], how);
            let end = thread_cpu_ns();
            clock.decode.fetch_add(end - t, Relaxed);
            LAST_END.set(end);
            i
        }
    }

    /// CPU µs per item outside decode's spin (only meaningful with the CPU-time spin).
    fn overhead_us(&self, process_cpu: u64, clock: &Clock, n: usize) -> f64 {
        let decode = if self.spin == Spin::Cpu {
            clock.decode.load(Relaxed)
        } else {
            0
        };
        process_cpu.saturating_sub(decode) as f64 / n as f64 / 1e3
    }

    /// Items/s the stages allow: min(read threads / read, P / decode), measured means.
    fn limit(&self, clock: &Clock, n: usize) -> f64 {
        let read = clock.read.load(Relaxed) as f64 / n as f64 / 1e9;
        let decode = clock.decode.load(Relaxed) as f64 / n as f64 / 1e9;
        (self.read_threads as f64 / read).min(self.cpu as f64 / decode)
    }
}

/// One measured run.
struct Sample {
    /// CPU time per item spent outside the decode function (engine, threads, sleeps), µs.
    overhead_us: f64,
    /// Of `overhead_us`: inside the read calls, between calls on the threads that read, and
    /// between calls on the threads that decode (µs per item; zeros where not measured).
    split_us: [f64; 3],
    /// Process CPU time per item (everything), µs.
    cpu_us: f64,
    items_per_s: f64,
    limit_per_s: f64,
    first_item_ms: f64,
    bottleneck: String,
}

/// A cpu stage, with `--strategy SPEC` when given.
fn cpu(name: &str) -> Stage {
    match arg("--strategy") {
        Some(spec) => Stage::cpu(name).strategy(&spec),
        None => Stage::cpu(name),
    }
}

fn run_pipeline(w: &Workload, n: usize) -> Sample {
    let clock = Arc::new(Clock::default());
    let p = Pipeline::from_sampler(n, Sampler::sequential())
        .map(Stage::blocking("read", w.read_threads), w.read(&clock))
        .map(cpu("decode"), w.decode(&clock))
        .batch(32, Remainder::Partial)
        .workers(w.cpu);
    let mut p = match arg("--window") {
        Some(_) => p.window(num("--window", 1)),
        None => p,
    }
    .build()
    .expect("a valid pipeline");
    let t = Instant::now();
    let cpu0 = process_cpu_ns();
    let mut first = None;
    let mut items = 0;
    for b in p.epoch(0) {
        first.get_or_insert_with(|| t.elapsed());
        items += b.expect("no failing item").len();
    }
    let elapsed = t.elapsed().as_secs_f64();
    let cpu = process_cpu_ns() - cpu0;
    assert_eq!(items, n);
    let report = p.report().expect("a finished epoch");
    if std::env::args().any(|a| a == "--verbose") {
        eprintln!("{report}");
    }
    let bottleneck = report
        .bottleneck
        .as_ref()
        .map_or("-".to_string(), |b| b.stage.clone());
    Sample {
        overhead_us: w.overhead_us(cpu, &clock, n),
        split_us: clock.split_us(n),
        cpu_us: cpu as f64 / n as f64 / 1e3,
        items_per_s: n as f64 / elapsed,
        limit_per_s: w.limit(&clock, n),
        first_item_ms: first.unwrap_or_default().as_secs_f64() * 1e3,
        bottleneck,
    }
}

fn run_loader(w: &Workload, n: usize, workers: usize) -> Sample {
    let clock = Arc::new(Clock::default());
    let (read, decode) = (w.read(&clock), w.decode(&clock));
    let ds = loader::from_fn(n, move |i| Ok::<_, String>(decode(read(i))));
    let mut l = Loader::builder(ds)
        .batch_size(32)
        .workers(workers)
        .prefetch_next_epoch(false)
        .build()
        .expect("a valid loader");
    let t = Instant::now();
    let cpu0 = process_cpu_ns();
    let mut first = None;
    let mut items = 0;
    for b in l.epoch(0) {
        first.get_or_insert_with(|| t.elapsed());
        items += b.expect("no failing sample").data.len();
    }
    let elapsed = t.elapsed().as_secs_f64();
    let cpu = process_cpu_ns() - cpu0;
    assert_eq!(items, n);
    Sample {
        overhead_us: w.overhead_us(cpu, &clock, n),
        split_us: clock.split_us(n),
        cpu_us: cpu as f64 / n as f64 / 1e3,
        items_per_s: n as f64 / elapsed,
        limit_per_s: w.limit(&clock, n),
        first_item_ms: first.unwrap_or_default().as_secs_f64() * 1e3,
        bottleneck: "-".into(),
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn report(config: &str, runs: &[Sample], json: bool) {
    let fr: Vec<f64> = runs.iter().map(|s| s.items_per_s / s.limit_per_s).collect();
    let rate: Vec<f64> = runs.iter().map(|s| s.items_per_s).collect();
    let limit: Vec<f64> = runs.iter().map(|s| s.limit_per_s).collect();
    let first: Vec<f64> = runs.iter().map(|s| s.first_item_ms).collect();
    let over: Vec<f64> = runs.iter().map(|s| s.overhead_us).collect();
    let cpu: Vec<f64> = runs.iter().map(|s| s.cpu_us).collect();
    let bottleneck = &runs.last().expect("one run at least").bottleneck;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "config": config,
                "items_per_s": median(&rate),
                "limit_per_s": median(&limit),
                "fraction_of_limit": median(&fr),
                "fraction_of_limit_runs": fr,
                "first_item_ms": median(&first),
                "bottleneck": bottleneck,
                "cpu_us_per_item_outside_decode": median(&over),
                "cpu_us_per_item": median(&cpu),
            })
        );
    } else {
        let list: Vec<String> = fr.iter().map(|f| format!("{f:.3}")).collect();
        println!(
            "{config:<34} {:>7.0} items/s of {:>6.0}/s: {:.3} of the limit (runs {}), first batch {:.1} ms, bottleneck {bottleneck}, CPU outside decode {:.1} µs/item, process CPU {:.1} µs/item (runs {})",
            median(&rate),
            median(&limit),
            median(&fr),
            list.join(" "),
            median(&first),
            median(&over),
            median(&cpu),
            cpu.iter()
                .map(|c| format!("{c:.1}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let split: Vec<f64> = (0..3)
            .map(|j| median(&runs.iter().map(|s| s.split_us[j]).collect::<Vec<_>>()))
            .collect();
        if split.iter().any(|&x| x > 0.0) {
            println!(
                "{:<34} of the CPU outside decode, µs/item: {:.1} in read calls, {:.1} between calls on the read threads, {:.1} between calls on the decode runners, {:.1} elsewhere",
                "",
                split[0],
                split[1],
                split[2],
                median(&over) - split.iter().sum::<f64>()
            );
        }
    }
}

/// (d) the loader's default-strategy workload as a one-stage pipeline: `get` sleeps a
/// log-normal time (mean 1 ms, σ 1.5) on 8 CPU workers (a cpu stage, default strategy) or 8
/// threads (a blocking stage), batch 32, in order, beside the loader with its defaults;
/// limit = 8 / mean measured sleep.
fn one_stage(n: usize, reps: usize, json: bool) {
    let costs = draw("lognormal(mean=1ms,sigma=1.5)", n, 1); // loader_bench's draw
    let mut runs: [Vec<Sample>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..reps {
        for (k, run) in runs.iter_mut().enumerate() {
            let (costs, clock) = (Arc::clone(&costs), Arc::new(AtomicU64::new(0)));
            let c2 = Arc::clone(&clock);
            let get = move |i: usize| {
                let t = Instant::now();
                std::thread::sleep(Duration::from_nanos(costs[i]));
                c2.fetch_add(t.elapsed().as_nanos() as u64, Relaxed);
                i
            };
            let t = Instant::now();
            let mut first = None;
            let mut items = 0;
            if k == 2 {
                let ds = loader::from_fn(n, move |i| Ok::<_, String>(get(i)));
                let mut l = Loader::builder(ds)
                    .batch_size(32)
                    .workers(8)
                    .prefetch_next_epoch(false)
                    .build()
                    .expect("a valid loader");
                for b in l.epoch(0) {
                    first.get_or_insert_with(|| t.elapsed());
                    items += b.expect("no failing sample").data.len();
                }
            } else {
                let stage = if k == 0 {
                    cpu("get").concurrency(8)
                } else {
                    Stage::blocking("get", 8)
                };
                let p = Pipeline::from_sampler(n, Sampler::sequential())
                    .map(stage, get)
                    .batch(32, Remainder::Partial)
                    .workers(8);
                let mut p = match arg("--window") {
                    Some(_) => p.window(num("--window", 1)),
                    None => p,
                }
                .build()
                .expect("a valid pipeline");
                for b in p.epoch(0) {
                    first.get_or_insert_with(|| t.elapsed());
                    items += b.expect("no failing item").len();
                }
            }
            let elapsed = t.elapsed().as_secs_f64();
            assert_eq!(items, n);
            let mean = clock.load(Relaxed) as f64 / n as f64 / 1e9;
            run.push(Sample {
                overhead_us: 0.0,
                split_us: [0.0; 3],
                cpu_us: 0.0,
                items_per_s: n as f64 / elapsed,
                limit_per_s: 8.0 / mean,
                first_item_ms: first.unwrap_or_default().as_secs_f64() * 1e3,
                bottleneck: "get".into(),
            });
        }
    }
    report("(d) pipeline, one cpu stage, 8 workers", &runs[0], json);
    report("(d) pipeline, one blocking stage, 8 thr", &runs[1], json);
    report("(d) loader, 8 workers, defaults", &runs[2], json);
}

fn overhead(n: usize, reps: usize, json: bool) {
    let mut per = Vec::new();
    for _ in 0..reps {
        let mut p = Pipeline::from_source(move |_| 0..n as u64)
            .map(cpu("a"), |x: u64| x)
            .map(cpu("b"), |x: u64| x)
            .map(cpu("c"), |x: u64| x)
            .workers(2)
            .build()
            .expect("a valid pipeline");
        let t = Instant::now();
        let mut sum = 0u64;
        for x in p.epoch(0) {
            sum = sum.wrapping_add(x.expect("no failure"));
        }
        let ns = t.elapsed().as_nanos() as f64;
        assert_eq!(sum, (0..n as u64).sum::<u64>());
        per.push(ns / n as f64 / 3.0);
    }
    if json {
        println!(
            "{}",
            serde_json::json!({
                "config": "(c) 3 empty cpu stages, P = 2",
                "ns_per_item_per_stage": median(&per),
                "ns_per_item_per_stage_runs": per,
            })
        );
    } else {
        let list: Vec<String> = per.iter().map(|f| format!("{f:.0}")).collect();
        println!(
            "(c) 3 empty cpu stages, P = 2: {:.0} ns per item per stage (runs {})",
            median(&per),
            list.join(" ")
        );
    }
}

fn main() {
    let n = num("--items", 16_384);
    let reps = num("--reps", 3);
    let json = std::env::args().any(|a| a == "--json");
    let only = arg("--only").unwrap_or_default();
    if !["", "a", "b", "c", "d", "e", "s"].contains(&only.as_str()) {
        usage(&format!(
            "--only: '{only}' is not allowed; allowed: a, b, c, d, e"
        ));
    }
    let how = match arg("--spin").as_deref() {
        None | Some("cpu") => Spin::Cpu,
        Some("wall") => Spin::Wall,
        Some(v) => usage(&format!("--spin: '{v}' is not allowed; allowed: cpu, wall")),
    };
    let loaders: Vec<usize> = match arg("--loader-workers") {
        None => vec![2, 8, 32],
        Some(v) if v == "none" => Vec::new(),
        Some(v) => v
            .split(',')
            .map(|x| match x.parse() {
                Ok(k) if k > 0 => k,
                _ => usage(&format!(
                    "--loader-workers: '{x}' is not allowed; allowed: whole numbers >= 1, comma-separated, or none"
                )),
            })
            .collect(),
    };
    if !json {
        println!(
            "pipeline_bench: {n} items, {reps} repetitions alternated, spin on {} time; host {} cpus",
            if how == Spin::Cpu { "thread CPU" } else { "wall-clock" },
            std::thread::available_parallelism().map_or(1, |p| p.get())
        );
    }
    let read = draw("lognormal(mean=2ms,sigma=1)", n, 1);
    for (tag, decode_mean) in [("a", "250us"), ("b", "50us")] {
        if !only.is_empty() && only != tag {
            continue;
        }
        let w = Workload {
            name: tag,
            read: Arc::clone(&read),
            decode: draw(&format!("lognormal(mean={decode_mean},sigma=1)"), n, 2),
            read_threads: 32,
            cpu: 2,
            spin: how,
        };
        if !json {
            println!(
                "\n({}) read: sleep 2 ms σ 1, 32 threads → decode: spin {decode_mean} σ 1, P = 2 → batch 32, in order",
                w.name
            );
        }
        let mut pipe = Vec::new();
        let mut one: Vec<Vec<Sample>> = loaders.iter().map(|_| Vec::new()).collect();
        for _ in 0..reps {
            pipe.push(run_pipeline(&w, n));
            for (k, &workers) in loaders.iter().enumerate() {
                one[k].push(run_loader(&w, n, workers));
            }
        }
        report(
            &format!("({tag}) pipeline read(32) -> decode(P=2)"),
            &pipe,
            json,
        );
        for (k, &workers) in loaders.iter().enumerate() {
            report(
                &format!("({tag}) one-stage loader, {workers} workers"),
                &one[k],
                json,
            );
        }
    }
    if only.is_empty() || only == "e" {
        let w = Workload {
            name: "e",
            read: draw("constant(100us)", n, 1),
            decode: draw("constant(1us)", n, 2),
            read_threads: 8,
            cpu: 2,
            spin: how,
        };
        if !json {
            println!("\n(e) producer-paced: read: sleep 100 µs, 8 threads → decode: spin 1 µs, P = 2 → batch 32, in order");
        }
        let runs: Vec<Sample> = (0..reps).map(|_| run_pipeline(&w, n)).collect();
        report("(e) pipeline read(8) -> decode(P=2)", &runs, json);
    }
    if only.is_empty() || only == "c" {
        overhead(num("--c-items", 1_000_000), reps, json);
    }
    if only.is_empty() || only == "s" {
        let decode = draw("lognormal(mean=250us,sigma=1)", n, 2);
        sleep_cost(&read, &decode, reps, json);
    }
    if only.is_empty() || only == "d" {
        if !json {
            println!("\n(d) the loader's default-strategy workload (sleep 1 ms σ 1.5, batch 32, in order) as one stage");
        }
        one_stage(32_768, reps, json);
    }
}

/// (s) Thread CPU per read inside `sleep` (µs), the reads of (a) split over 32 threads, in two
/// arrangements: the threads only sleep while 2 threads spin (`Some(2)`: a pipeline's read
/// threads beside its busy CPU workers), or each thread sleeps and then spins its item's
/// decode time (`None`: the one-stage loader's threads).
fn sleep_in(read: &Arc<[u64]>, decode: &Arc<[u64]>, spinners: Option<usize>) -> f64 {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spin_threads: Vec<_> = (0..spinners.unwrap_or(0))
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Relaxed) {
                    spin_cpu(10_000);
                }
            })
        })
        .collect();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let inside = Arc::new(AtomicU64::new(0));
    let sleepers: Vec<_> = (0..32)
        .map(|_| {
            let (next, inside) = (Arc::clone(&next), Arc::clone(&inside));
            let (read, decode) = (Arc::clone(read), Arc::clone(decode));
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Relaxed);
                if i >= read.len() {
                    break;
                }
                let c = thread_cpu_ns();
                std::thread::sleep(Duration::from_nanos(read[i]));
                inside.fetch_add(thread_cpu_ns() - c, Relaxed);
                if spinners.is_none() {
                    spin_cpu(decode[i]);
                }
            })
        })
        .collect();
    for t in sleepers {
        t.join().expect("a sleeper thread");
    }
    stop.store(true, Relaxed);
    for t in spin_threads {
        t.join().expect("a spinning thread");
    }
    inside.load(Relaxed) as f64 / read.len() as f64 / 1e3
}

fn sleep_cost(read: &[u64], decode: &[u64], reps: usize, json: bool) {
    let n = read.len().min(8192);
    let (read, decode): (Arc<[u64]>, Arc<[u64]>) = (read[..n].into(), decode[..n].into());
    let (read, decode) = (&read, &decode);
    let (mut only, mut then) = (Vec::new(), Vec::new());
    for r in 0..reps {
        // alternated, each repetition starting with the other arrangement
        if r % 2 == 0 {
            only.push(sleep_in(read, decode, Some(2)));
            then.push(sleep_in(read, decode, None));
        } else {
            then.push(sleep_in(read, decode, None));
            only.push(sleep_in(read, decode, Some(2)));
        }
    }
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    if json {
        println!(
            "{}",
            serde_json::json!({
                "config": "(s) thread CPU inside a read's sleep, no engine",
                "sleep_only_threads_us": only,
                "sleep_then_spin_threads_us": then,
            })
        );
    } else {
        println!(
            "\n(s) the reads of (a) ({n}), 32 threads, no engine: thread CPU inside the sleep"
        );
        println!(
            "(s) threads that only sleep, 2 threads spinning   {:.1} µs per read (runs {})",
            median(&only),
            list(&only)
        );
        println!(
            "(s) threads that sleep, then spin the decode      {:.1} µs per read (runs {})",
            median(&then),
            list(&then)
        );
    }
}

//! What-if, validated (issue 16 item 4): record a pipeline's trace once, predict several
//! configurations on the simulator from that trace (the code `schedlab whatif` runs), run each
//! configuration for real, and print predicted against measured items/s as a Markdown table,
//! with the load average before and after each workload.
//!
//! * (a) read: sleep, log-normal mean 2 ms σ 1, blocking → decode: spin (thread CPU time),
//!   log-normal mean 250 µs σ 1, cpu → batch 32 (the pipeline benchmark's (a));
//! * (b) the same with decode 50 µs (the benchmark's (b));
//! * (image) the image pipeline: read (blocking, + `--read-latency`, default 5 ms) → decode →
//!   resize → batch 16 → collate, on generated images.
//!
//! The trace is recorded at the first configuration of each workload (after one warm-up run of
//! it); the others change the read threads, the CPU workers, the window. Measured items/s: source items delivered over the
//! time from `epoch()` to the last batch, the median of `--reps` runs.
//!
//! ```text
//! cargo run --release -p loader --example whatif_validate [-- --items 8192 --reps 3 --only a|b|image --images 300]
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loader::{Pipeline, Remainder, Sampler, Stage};
use scheduler::{simulate_pipeline, PipelineTrace, SimPipeline, SimStage, SimStageKind};

#[path = "common/images.rs"]
mod images;

#[path = "common/args.rs"]
mod args;
use args::{arg, draw, num, spin_cpu as spin, thread_cpu_ns, usage};

/// Burn `ns` of this thread's CPU time.
/// While set, every cpu stage's function logs its thread CPU time (the recorded run).
static RECORD: AtomicBool = AtomicBool::new(false);
/// (stage, thread CPU ns) of each call, in completion order.
static CPU_LOG: Mutex<Vec<(&'static str, u64)>> = Mutex::new(Vec::new());

/// Run `f`, logging its thread CPU time under `stage` while [`RECORD`] is set.
fn timed<T>(stage: &'static str, f: impl FnOnce() -> T) -> T {
    if !RECORD.load(Relaxed) {
        return f();
    }
    let t = thread_cpu_ns();
    let v = f();
    let ns = thread_cpu_ns() - t;
    CPU_LOG
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((stage, ns));
    v
}

/// `trace` with each cpu stage's times replaced by the thread CPU times logged for it.
fn cpu_time_trace(trace: &PipelineTrace) -> PipelineTrace {
    let log = std::mem::take(&mut *CPU_LOG.lock().unwrap_or_else(|e| e.into_inner()));
    let mut t = trace.clone();
    for s in t.stages.iter_mut().filter(|s| s.cpu) {
        let v: Vec<u64> = log.iter().filter(|l| l.0 == s.name).map(|l| l.1).collect();
        if v.len() == s.cost_ns.len() {
            s.cost_ns = v;
        }
    }
    t
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// One configuration: CPU workers, read threads, window (None: the default).
#[derive(Clone, Copy)]
struct Config {
    workers: usize,
    read: usize,
    window: Option<usize>,
}

impl Config {
    fn show(&self) -> String {
        format!(
            "P={} read={} window={}",
            self.workers,
            self.read,
            self.window.map_or("auto".into(), |w| w.to_string())
        )
    }
}

/// Predict `c` from `trace` with the stages' strategies at their default (central), on
/// `cores` cores (`None`: a core per worker).
fn predict(
    trace: &PipelineTrace,
    c: Config,
    items: usize,
    batch: usize,
    cores: Option<f64>,
) -> f64 {
    let stages = trace
        .stages
        .iter()
        .enumerate()
        .map(|(k, s)| SimStage {
            name: s.name.clone(),
            kind: if s.cpu {
                SimStageKind::Cpu {
                    strategy: Arc::from(strategies::parse("central").expect("central")),
                    concurrency: None,
                }
            } else {
                SimStageKind::Blocking { threads: c.read }
            },
            queue: None,
            cost_ns: Arc::from(trace.replay_costs(k, items, batch).0),
        })
        .collect();
    let mut p = SimPipeline::new(stages, c.workers, items);
    p.batch = batch;
    p.window = c.window;
    p.cores = cores;
    simulate_pipeline(&p).expect("a valid pipeline").items_per_s
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Run the sleep/spin pipeline once; items/s.
fn run_sleep_spin(
    read: &Arc<Vec<u64>>,
    decode: &Arc<Vec<u64>>,
    c: Config,
    trace: Option<&Path>,
) -> f64 {
    let n = read.len();
    let (r, d) = (Arc::clone(read), Arc::clone(decode));
    let p = Pipeline::from_sampler(n, Sampler::sequential())
        .map(Stage::blocking("read", c.read), move |i: usize| {
            std::thread::sleep(Duration::from_nanos(r[i]));
            i
        })
        .map(Stage::cpu("decode"), move |i: usize| {
            timed("decode", || spin(d[i]));
            i
        })
        .batch(32, Remainder::Partial)
        .workers(c.workers);
    let p = match c.window {
        Some(w) => p.window(w),
        None => p,
    };
    let p = match trace {
        Some(t) => p.trace(t),
        None => p,
    };
    let mut p = p.build().expect("a valid pipeline");
    let t = Instant::now();
    let mut items = 0;
    for b in p.epoch(0) {
        items += b.expect("no failing item").len();
    }
    assert_eq!(items, n);
    n as f64 / t.elapsed().as_secs_f64()
}

/// Run the image pipeline once; images/s.
fn run_images(
    files: &Arc<Vec<PathBuf>>,
    latency: Duration,
    c: Config,
    trace: Option<&Path>,
) -> f64 {
    let paths = Arc::clone(files);
    let p = Pipeline::from_sampler(files.len(), Sampler::sequential())
        .try_map(Stage::blocking("read", c.read), move |i: usize| {
            std::thread::sleep(latency);
            std::fs::read(&paths[i]).map_err(|e| e.to_string())
        })
        .try_map(Stage::cpu("decode"), |bytes: Vec<u8>| {
            timed("decode", || {
                image::load_from_memory(&bytes).map_err(|e| e.to_string())
            })
        })
        .map(Stage::cpu("resize"), |img: image::DynamicImage| {
            timed("resize", || images::normalise(&img))
        })
        .batch(images::BATCH, Remainder::Partial)
        .map(Stage::cpu("collate"), |b: Vec<Vec<f32>>| {
            timed("collate", || b.concat())
        })
        .workers(c.workers);
    let p = match c.window {
        Some(w) => p.window(w),
        None => p,
    };
    let p = match trace {
        Some(t) => p.trace(t),
        None => p,
    };
    let mut p = p.build().expect("a valid pipeline");
    let t = Instant::now();
    let mut n = 0;
    for b in p.epoch(0) {
        n += b.expect("no failing batch").len() / (3 * (images::SIDE * images::SIDE) as usize);
    }
    assert_eq!(n, files.len());
    n as f64 / t.elapsed().as_secs_f64()
}

fn validate(
    name: &str,
    configs: &[Config],
    batch: usize,
    items: usize,
    reps: usize,
    mut run: impl FnMut(Config, Option<&Path>) -> f64,
) {
    let before = loadavg();
    let path =
        std::env::temp_dir().join(format!("whatif-validate-{}-{name}.csv", std::process::id()));
    // A warm-up run first (page cache, allocator, lazily built tables), then the recorded one.
    run(configs[0], None);
    RECORD.store(true, Relaxed);
    run(configs[0], Some(&path));
    RECORD.store(false, Relaxed);
    let trace = PipelineTrace::load(&path).unwrap_or_else(|e| usage(&e.to_string()));
    let _ = std::fs::remove_file(&path);
    let cpu_trace = cpu_time_trace(&trace);
    // The cores the recorded run's cpu stages really had: P × CPU time / wall time.
    let total = |t: &PipelineTrace| -> f64 {
        t.stages
            .iter()
            .filter(|s| s.cpu)
            .flat_map(|s| &s.cost_ns)
            .map(|&x| x as f64)
            .sum()
    };
    let cores = configs[0].workers as f64 * total(&cpu_trace) / total(&trace);
    let means = |t: &PipelineTrace| -> String {
        t.stages
            .iter()
            .map(|s| {
                let m = s.cost_ns.iter().sum::<u64>() as f64 / s.cost_ns.len() as f64;
                format!("{} {:.0} us", s.name, m / 1e3)
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "\n({name}) trace recorded at {}: {} items; mean service (wall, as traced): {}; cpu \
         stages at their thread CPU time: {}; cores the cpu stages had: {cores:.2}",
        configs[0].show(),
        items,
        means(&trace),
        means(&cpu_trace)
    );
    println!("| workload | configuration | predicted items/s: trace | CPU time | CPU time on {cores:.2} cores | measured items/s (median of {reps}) | trace / measured | CPU time / measured | on {cores:.2} cores / measured |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for &c in configs {
        let t = Instant::now();
        let predicted = predict(&trace, c, items, batch, None);
        let predicted_cpu = predict(&cpu_trace, c, items, batch, None);
        let predicted_cores = predict(&cpu_trace, c, items, batch, Some(cores));
        let predict_ms = t.elapsed().as_secs_f64() * 1e3;
        let measured = median((0..reps).map(|_| run(c, None)).collect());
        println!(
            "| ({name}) | {} | {predicted:.0} | {predicted_cpu:.0} | {predicted_cores:.0} | {measured:.0} | {:.3} | {:.3} | {:.3} |",
            c.show(),
            predicted / measured,
            predicted_cpu / measured,
            predicted_cores / measured
        );
        eprintln!(
            "  ({name}) {}: prediction took {predict_ms:.0} ms",
            c.show()
        );
    }
    println!("load average before: {before}; after: {}", loadavg());
}

fn main() {
    let n = num("--items", 8192);
    let reps = num("--reps", 3);
    let only = arg("--only").unwrap_or_default();
    if !["", "a", "b", "image"].contains(&only.as_str()) {
        usage(&format!(
            "--only: '{only}' is not allowed; allowed: a, b, image"
        ));
    }
    let want = |w: &str| only.is_empty() || only == w;
    let configs = |read: [usize; 3]| {
        [
            Config {
                workers: 2,
                read: read[0],
                window: None,
            },
            Config {
                workers: 2,
                read: read[1],
                window: None,
            },
            Config {
                workers: 2,
                read: read[2],
                window: None,
            },
            Config {
                workers: 1,
                read: read[0],
                window: None,
            },
            Config {
                workers: 2,
                read: read[0],
                window: Some(64),
            },
            Config {
                workers: 1,
                read: read[2],
                window: None,
            },
        ]
    };
    println!(
        "whatif_validate: {n} items, {reps} reps, {} cpus; command: cargo run --release -p loader --example whatif_validate -- {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    for (name, decode_mean, reads) in [("a", "250us", [32, 16, 8]), ("b", "50us", [32, 16, 8])] {
        if !want(name) {
            continue;
        }
        let read = draw("lognormal(mean=2ms,sigma=1)", n, 1);
        let decode = draw(&format!("lognormal(mean={decode_mean},sigma=1)"), n, 2);
        validate(name, &configs(reads), 32, n, reps, |c, t| {
            run_sleep_spin(&read, &decode, c, t)
        });
    }
    if want("image") {
        let count = num("--images", 300);
        let dir = images::default_folder();
        if images::list_images(&dir).map_or(0, |f| f.len()) < count {
            images::write_images(&dir, count).unwrap_or_else(|e| {
                usage(&format!("cannot write images to {}: {e}", dir.display()))
            });
        }
        let mut files = images::list_images(&dir).unwrap_or_else(|e| usage(&e));
        files.truncate(count);
        let files = Arc::new(files);
        let latency = Duration::from_millis(5);
        validate(
            "image",
            &configs([8, 4, 2]),
            images::BATCH,
            files.len(),
            reps,
            |c, t| run_images(&files, latency, c, t),
        );
    }
}

//! `schedlab whatif TRACE`: replay a recorded pipeline trace on the simulator over a grid of
//! configurations (CPU workers, each stage's concurrency, strategies, window, queues) and
//! recommend the cheapest configuration within 5% of the best. See `docs/whatif.md`.
//!
//! Everything is validated and simulated before anything is printed or written: bad input
//! exits 2 with one line, and no partial output is left behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use rayon::prelude::*;
use scheduler::{
    simulate_pipeline, PipelineTrace, SimPipeline, SimPipelineError, SimPipelineReport, SimStage,
    SimStageKind, Strategy,
};
use serde::Serialize;

use crate::CliError;

/// Most configurations in one grid.
pub const MAX_CONFIGS: usize = 100_000;

/// A configuration is recommended when it reaches this fraction of the best throughput.
pub const WITHIN: f64 = 0.95;

/// Most CPU workers P in `--workers`: the threads engine's limit ([`crate::limits::MAX_THREADS`]),
/// since a configuration that cannot run is not worth predicting.
pub const MAX_WORKERS: usize = crate::limits::MAX_THREADS;

/// Most concurrency of one stage in `--concurrency` (the simulator's limit, 1,048,576).
pub const MAX_CONCURRENCY: usize = SimPipeline::MAX_CONCURRENCY;

/// Largest `--queue` (the simulator's limit, 1,048,576).
pub const MAX_QUEUE: usize = SimPipeline::MAX_QUEUE;

/// Largest `--batch` (the simulator's limit, 1,048,576).
pub const MAX_BATCH: usize = SimPipeline::MAX_BATCH;

/// Largest `--window` (the simulator's limit on items, 2^32 − 1).
pub const MAX_WINDOW: usize = u32::MAX as usize;

/// Smallest `--cores`: a hundredth of a core.
pub const MIN_CORES: f64 = 0.01;

/// Largest `--cores`: as many as the most workers (more change nothing).
pub const MAX_CORES: f64 = MAX_WORKERS as f64;

/// The flags of `schedlab whatif`.
#[derive(Clone, Debug, Args)]
pub struct WhatifArgs {
    /// The pipeline trace, as `Pipeline::trace(path)` writes it (`# schedlab pipeline trace v1`).
    pub trace: PathBuf,
    /// CPU workers P, a comma-separated list: 2,4,8 (each 1 to 4096).
    #[arg(long, default_value = "2", value_name = "LIST")]
    pub workers: String,
    /// One stage's concurrency as STAGE=LIST, repeated per stage: read=16,32. A blocking
    /// stage's is its threads and must be given; a cpu stage's defaults to P (`p` in a list).
    /// Each 1 to 1048576.
    #[arg(long = "concurrency", value_name = "STAGE=LIST")]
    pub concurrency: Vec<String>,
    /// Strategies of the cpu stages, a list separated by `;` or by commas outside parentheses:
    /// central,work-stealing,round-robin.
    #[arg(long, default_value = "central", value_name = "LIST")]
    pub strategy: String,
    /// The window (prefetch: most items admitted and not yet handed on), a list of numbers or
    /// `auto` (the loader's default).
    #[arg(long, default_value = "auto", value_name = "LIST")]
    pub window: String,
    /// Every stage's input queue capacity, a list of numbers (1 to 1048576) or `auto`
    /// (max(2c, 4)).
    #[arg(long, default_value = "auto", value_name = "LIST")]
    pub queue: String,
    /// Items per batch at the pipeline's end (as in the recorded pipeline), 1 to 1048576.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Items to replay: the first N of the trace (default: all of them).
    #[arg(long)]
    pub items: Option<usize>,
    /// CPU cores the cpu stages share (0.01 to 4096, may be fractional): with P above it,
    /// every cpu service time is stretched by P / cores. Default: this machine's CPUs.
    #[arg(long, value_name = "N")]
    pub cores: Option<f64>,
    /// Hand items on as they finish instead of in source order.
    #[arg(long)]
    pub as_ready: bool,
    /// Seed for the strategies' randomness.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write DIR/index.html, DIR/whatif.json and the figure (throughput against CPU
    /// workers).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// One value of a list flag that may say `auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auto {
    Auto,
    N(usize),
}

impl Auto {
    fn get(self) -> Option<usize> {
        match self {
            Auto::Auto => None,
            Auto::N(n) => Some(n),
        }
    }
    fn show(self) -> String {
        self.get().map_or("auto".into(), |n| n.to_string())
    }
}

/// A stage's concurrency in the grid: a number, or P.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Conc {
    P,
    N(usize),
}

/// One configuration of the grid.
#[derive(Clone, Debug)]
struct Config {
    workers: usize,
    concurrency: Vec<Conc>,
    strategy: usize,
    window: Auto,
    queue: Auto,
}

/// One predicted configuration, as printed and as JSON.
#[derive(Clone, Debug, Serialize)]
pub struct Prediction {
    /// CPU workers P.
    pub workers: usize,
    /// Each stage's concurrency (a cpu stage's `p` resolved to P).
    pub concurrency: BTreeMap<String, usize>,
    /// The cpu stages' strategy, as given in `--strategy`.
    pub strategy: String,
    /// The window in use.
    pub window: usize,
    /// The window setting (`auto` or a number).
    pub window_setting: String,
    /// The queue setting (`auto` or a number).
    pub queue: String,
    /// Predicted items/s handed to the consumer.
    pub items_per_s: f64,
    /// The limit from the mean service times.
    pub limit_per_s: f64,
    /// `items_per_s / limit_per_s`.
    pub fraction_of_limit: f64,
    /// The stage that sets the limit.
    pub bottleneck: String,
    /// 99th percentile of the time between batches, ns.
    pub batch_p99_ns: u64,
    /// Most items held at once.
    pub held_peak: u64,
    /// The full simulated report.
    pub report: SimPipelineReport,
}

/// The answer of `schedlab whatif`.
#[derive(Clone, Debug, Serialize)]
pub struct Whatif {
    /// The trace replayed.
    pub trace: String,
    /// Its stages, in order, with their kind and mean service time.
    pub stages: Vec<TraceSummary>,
    /// Items replayed per configuration.
    pub items: usize,
    /// Items per batch.
    pub batch: usize,
    /// CPU cores the cpu stages share.
    pub cores: f64,
    /// Where `cores` came from: `this machine` (its available CPUs) or `--cores`.
    pub cores_from: String,
    /// Every configuration, in grid order.
    pub configs: Vec<Prediction>,
    /// Index into `configs` of the best predicted throughput.
    pub best: usize,
    /// Index into `configs` of the recommendation: the cheapest within 5% of the best.
    pub recommended: usize,
    /// Why, in a sentence.
    pub why: String,
}

/// A stage of the trace.
#[derive(Clone, Debug, Serialize)]
pub struct TraceSummary {
    /// Its name.
    pub name: String,
    /// `cpu` or `blocking`.
    pub kind: String,
    /// Rows in the trace.
    pub rows: usize,
    /// Mean service time, ns.
    pub mean_ns: f64,
    /// Whether it runs after the batch (a row per batch): replayed as 1/B of a batch's cost per
    /// item.
    pub after_batch: bool,
}

/// Split a list at `;`, or at commas outside parentheses.
fn split_list(s: &str) -> Vec<String> {
    if s.contains(';') {
        return s.split(';').map(|x| x.trim().to_string()).collect();
    }
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0i32);
    for ch in s.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    out.push(cur.trim().to_string());
    out
}

/// A whole number from 1 to `max`: `Ok(None)` if `x` is not a whole number, `Err` with
/// `what` (`" (every stage's input queue)"`) if it is one above `max`.
fn bounded(flag: &str, x: &str, max: usize, what: &str) -> Result<Option<usize>, CliError> {
    let above = || {
        CliError::input(
            flag,
            format!("{x}{what} is above the limit of {max}; allowed: 1 to {max}"),
        )
    };
    match x.parse::<usize>() {
        Ok(n) if n > max => Err(above()),
        Ok(n) if n >= 1 => Ok(Some(n)),
        // Digits only, too many for a usize: a number above the limit, said so.
        Err(_) if !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()) => Err(above()),
        _ => Ok(None),
    }
}

fn numbers(flag: &str, s: &str, auto: bool, max: usize, what: &str) -> Result<Vec<Auto>, CliError> {
    let allowed = if auto {
        format!("whole numbers from 1 to {max} or auto, comma-separated")
    } else {
        format!("whole numbers from 1 to {max}, comma-separated")
    };
    let mut v = Vec::new();
    for x in s.split(',').map(str::trim) {
        if auto && x == "auto" {
            v.push(Auto::Auto);
            continue;
        }
        match bounded(flag, x, max, what)? {
            Some(n) => v.push(Auto::N(n)),
            None => {
                return Err(CliError::input(
                    flag,
                    format!(
                        "'{}' in '{}' is not allowed; allowed: {allowed}",
                        grammar::one_line(x, 40),
                        grammar::one_line(s, 80)
                    ),
                ))
            }
        }
    }
    Ok(v)
}

/// `--cores`, checked, or this machine's available CPUs; with where it came from.
fn cores(given: Option<f64>) -> Result<(f64, &'static str), CliError> {
    match given {
        Some(c) if (MIN_CORES..=MAX_CORES).contains(&c) => Ok((c, "--cores")),
        Some(c) => Err(CliError::input(
            "--cores",
            format!(
                "{c} is not allowed; allowed: a number from {MIN_CORES} to {MAX_CORES}, e.g. 8 \
                 or 1.5 (default: this machine's CPUs)"
            ),
        )),
        None => Ok((
            std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
            "this machine",
        )),
    }
}

/// Everything a grid needs, validated.
struct Plan {
    trace: PipelineTrace,
    path: PathBuf,
    items: usize,
    batch: usize,
    after_batch: Vec<bool>,
    costs: Vec<Arc<[u64]>>,
    strategies: Vec<(String, Arc<dyn Strategy>)>,
    configs: Vec<Config>,
    cores: f64,
    cores_from: &'static str,
}

fn plan(a: &WhatifArgs) -> Result<Plan, CliError> {
    // Flags first (cheap), then the trace.
    let workers: Vec<usize> = numbers("--workers", &a.workers, false, MAX_WORKERS, "")?
        .into_iter()
        .filter_map(Auto::get)
        .collect();
    let windows = numbers("--window", &a.window, true, MAX_WINDOW, "")?;
    let queues = numbers(
        "--queue",
        &a.queue,
        true,
        MAX_QUEUE,
        " (every stage's input queue)",
    )?;
    let (cores, cores_from) = cores(a.cores)?;
    if a.batch == 0 {
        return Err(CliError::input("--batch", "must be at least 1, got 0"));
    }
    if a.batch > MAX_BATCH {
        return Err(CliError::input(
            "--batch",
            format!(
                "{} is above the limit of {MAX_BATCH}; allowed: 1 to {MAX_BATCH} items per batch",
                a.batch
            ),
        ));
    }
    if a.items == Some(0) {
        return Err(CliError::input("--items", "must be at least 1, got 0"));
    }
    for w in &windows {
        if let Auto::N(n) = w {
            if *n < a.batch {
                return Err(CliError::input(
                    "--window",
                    format!(
                        "{n} is smaller than a batch ({}); allowed: >= --batch",
                        a.batch
                    ),
                ));
            }
        }
    }
    let mut strategies = Vec::new();
    for spec in split_list(&a.strategy) {
        let s = strategies::parse(&spec).map_err(|e| CliError::input("--strategy", e))?;
        for &p in &workers {
            s.validate(p).map_err(|e| {
                CliError::input("--strategy", format!("{spec} with {p} workers: {e}"))
            })?;
        }
        // Shown as given (`work-stealing`), not in full with its defaults.
        strategies.push((spec, Arc::<dyn Strategy>::from(s)));
    }
    let mut given: Vec<(String, Vec<Conc>)> = Vec::new();
    for c in &a.concurrency {
        let Some((name, list)) = c.split_once('=') else {
            return Err(CliError::input(
                "--concurrency",
                format!("'{c}' is not STAGE=LIST; e.g. --concurrency read=16,32"),
            ));
        };
        let mut v = Vec::new();
        for x in list.split(',').map(str::trim) {
            let stage = format!("{name}: ");
            v.push(match x {
                "p" | "P" => Conc::P,
                _ => match bounded("--concurrency", x, MAX_CONCURRENCY, "").map_err(|_| {
                    CliError::input(
                        "--concurrency",
                        format!(
                            "{stage}{x} is above the limit of {MAX_CONCURRENCY}; allowed: 1 \
                                 to {MAX_CONCURRENCY}"
                        ),
                    )
                })? {
                    Some(n) => Conc::N(n),
                    None => {
                        return Err(CliError::input(
                            "--concurrency",
                            format!(
                                "{stage}'{}' is not allowed; allowed: whole numbers from 1 to \
                                 {MAX_CONCURRENCY} or p (= P, cpu stages only), comma-separated",
                                grammar::one_line(x, 40)
                            ),
                        ))
                    }
                },
            });
        }
        if given.iter().any(|g| g.0 == name) {
            return Err(CliError::input(
                "--concurrency",
                format!("stage {name} is given twice; give one list per stage"),
            ));
        }
        given.push((name.to_string(), v));
    }

    let trace = PipelineTrace::load(&a.trace).map_err(|e| CliError::Input(e.to_string()))?;
    let path = a.trace.clone();
    let shown = path.display();
    for (name, _) in &given {
        if !trace.stages.iter().any(|s| &s.name == name) {
            return Err(CliError::input(
                "--concurrency",
                format!(
                    "stage {name} is not in {shown} (its stages: {})",
                    trace.names()
                ),
            ));
        }
    }
    let mut conc = Vec::new();
    for s in &trace.stages {
        match given.iter().find(|g| g.0 == s.name) {
            Some((_, v)) => {
                if !s.cpu && v.contains(&Conc::P) {
                    return Err(CliError::input(
                        "--concurrency",
                        format!(
                            "{}: p (= P) is for cpu stages; {} is blocking: give its threads",
                            s.name, s.name
                        ),
                    ));
                }
                conc.push(v.clone());
            }
            None if s.cpu => conc.push(vec![Conc::P]),
            None => {
                return Err(CliError::input(
                    "--concurrency",
                    format!(
                        "stage {} of {shown} is blocking and needs its threads, e.g. \
                         --concurrency {}=16,32",
                        s.name, s.name
                    ),
                ))
            }
        }
    }

    // Items: the first stage's rows; a stage with fewer than half of them after a batch is a
    // per-batch stage (collate).
    let first = trace.stages[0].cost_ns.len();
    let items = match a.items {
        Some(n) if n > first => {
            return Err(CliError::input(
                "--items",
                format!(
                    "{n}, but {shown} holds {first} items of stage {}; allowed: 1..={first}",
                    trace.stages[0].name
                ),
            ))
        }
        Some(n) => n,
        None => first,
    };
    let mut after_batch = Vec::new();
    let mut costs: Vec<Arc<[u64]>> = Vec::new();
    for k in 0..trace.stages.len() {
        let (v, per_batch) = trace.replay_costs(k, items, a.batch);
        after_batch.push(per_batch);
        costs.push(Arc::from(v));
    }
    if costs.iter().all(|c| c.iter().all(|&x| x == 0)) {
        return Err(CliError::Input(format!(
            "{shown}: every service time is 0 ns (in the first {items} items): a replay takes no \
             simulated time and its throughput has no bound; allowed: a trace with some time \
             in it"
        )));
    }

    // The grid, its size checked before anything is allocated for it.
    let sizes: Vec<usize> = [workers.len(), strategies.len(), windows.len(), queues.len()]
        .into_iter()
        .chain(conc.iter().map(Vec::len))
        .collect();
    let total = sizes
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))
        .unwrap_or(usize::MAX);
    if total > MAX_CONFIGS {
        return Err(CliError::Input(format!(
            "grid: {} = {total} configurations, more than the {MAX_CONFIGS} allowed; give \
             shorter lists",
            sizes
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(" × ")
        )));
    }
    // Memory: each simulation holds ~24 bytes per item and stage, and per simulated worker
    // its state (~64 bytes) and a queue in each cpu stage's strategy (~1 KiB, as measured for
    // `schedlab run`); rayon runs one per CPU.
    let cpu_stages = trace.stages.iter().filter(|s| s.cpu).count() as u128;
    let most_workers = workers.iter().copied().max().unwrap_or(0) as u128;
    let per_run = items as u128 * trace.stages.len() as u128 * 24
        + (items as u128) * 2
        + most_workers * (64 + 1024 * cpu_stages);
    let parallel = rayon::current_num_threads() as u128;
    if let Some(avail) = mem_available() {
        if per_run * parallel > avail as u128 / 2 {
            return Err(CliError::Input(format!(
                "grid: {items} items × {} stages needs ~{} MiB per simulation × {parallel} at \
                 once, more than half the {} MiB available; give --items N",
                trace.stages.len(),
                per_run >> 20,
                avail >> 20
            )));
        }
    }
    let mut configs = Vec::with_capacity(total);
    for &p in &workers {
        for s in 0..strategies.len() {
            for &window in &windows {
                for &queue in &queues {
                    let mut combos: Vec<Vec<Conc>> = vec![Vec::new()];
                    for list in &conc {
                        combos = combos
                            .into_iter()
                            .flat_map(|c| {
                                list.iter().map(move |&x| {
                                    let mut c = c.clone();
                                    c.push(x);
                                    c
                                })
                            })
                            .collect();
                    }
                    for concurrency in combos {
                        configs.push(Config {
                            workers: p,
                            concurrency,
                            strategy: s,
                            window,
                            queue,
                        });
                    }
                }
            }
        }
    }
    Ok(Plan {
        trace,
        path,
        items,
        batch: a.batch,
        after_batch,
        costs,
        strategies,
        configs,
        cores,
        cores_from,
    })
}

/// `MemAvailable` from /proc/meminfo, in bytes, where there is one.
fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl Plan {
    fn pipeline(&self, c: &Config, ordered: bool, seed: u64) -> SimPipeline {
        let stages = self
            .trace
            .stages
            .iter()
            .enumerate()
            .map(|(k, s)| SimStage {
                name: s.name.clone(),
                kind: if s.cpu {
                    SimStageKind::Cpu {
                        strategy: Arc::clone(&self.strategies[c.strategy].1),
                        concurrency: match c.concurrency[k] {
                            Conc::P => None,
                            Conc::N(n) => Some(n),
                        },
                    }
                } else {
                    SimStageKind::Blocking {
                        threads: match c.concurrency[k] {
                            Conc::N(n) => n,
                            Conc::P => c.workers,
                        },
                    }
                },
                queue: c.queue.get(),
                cost_ns: Arc::clone(&self.costs[k]),
            })
            .collect();
        let mut p = SimPipeline::new(stages, c.workers, self.items);
        p.batch = self.batch;
        p.window = c.window.get();
        p.ordered = ordered;
        p.seed = seed;
        p.cores = Some(self.cores);
        p
    }
}

/// Validate, simulate every configuration, and pick the recommendation.
///
/// # Errors
/// [`CliError::Input`] for bad flags or a bad trace (one line naming the flag or file);
/// [`CliError::Run`] if a simulation fails.
pub fn predict(a: &WhatifArgs) -> Result<Whatif, CliError> {
    let plan = plan(a)?;
    let shown = plan.path.display();
    // Every configuration is simulated; the first failure in grid order is reported, so the
    // message does not depend on which simulation finished first.
    let results: Vec<Result<Prediction, CliError>> = plan
        .configs
        .par_iter()
        .map(|c| {
            let p = plan.pipeline(c, !a.as_ready, a.seed);
            let window = p.window();
            let r = simulate_pipeline(&p).map_err(|e| match e {
                // Costs too large for the clock, or a pipeline out of bounds: the input.
                SimPipelineError::TimeOverflow { .. } | SimPipelineError::Invalid(_) => {
                    CliError::Input(format!(
                        "{shown}: {e} (configuration {}); allowed: service times whose sum \
                         fits in the simulator's clock",
                        describe(&plan, c)
                    ))
                }
                SimPipelineError::Contract(_) => {
                    CliError::Run(anyhow::anyhow!("simulating {}: {e}", describe(&plan, c)))
                }
            })?;
            let concurrency = plan
                .trace
                .stages
                .iter()
                .enumerate()
                .map(|(k, s)| (s.name.clone(), p.concurrency(k)))
                .collect();
            Ok(Prediction {
                workers: c.workers,
                concurrency,
                strategy: plan.strategies[c.strategy].0.clone(),
                window,
                window_setting: c.window.show(),
                queue: c.queue.show(),
                items_per_s: r.items_per_s,
                limit_per_s: r.limit_per_s,
                fraction_of_limit: r.fraction_of_limit,
                bottleneck: r.bottleneck.clone(),
                batch_p99_ns: r.batch_p99_ns,
                held_peak: r.held_peak,
                report: r,
            })
        })
        .collect();
    let configs = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    let best = (0..configs.len())
        .max_by(|&i, &j| {
            configs[i]
                .items_per_s
                .total_cmp(&configs[j].items_per_s)
                .then(j.cmp(&i)) // the first of equals
        })
        .expect("a grid has at least one configuration");
    let cost = |c: &Prediction| {
        let blocking: usize = plan
            .trace
            .stages
            .iter()
            .filter(|s| !s.cpu)
            .map(|s| c.concurrency[&s.name])
            .sum();
        let cpu: usize = plan
            .trace
            .stages
            .iter()
            .filter(|s| s.cpu)
            .map(|s| c.concurrency[&s.name])
            .sum();
        (c.workers, blocking, cpu, c.window)
    };
    let target = configs[best].items_per_s * WITHIN;
    let recommended = (0..configs.len())
        .filter(|&i| configs[i].items_per_s >= target)
        .min_by_key(|&i| (cost(&configs[i]), i))
        .expect("the best is within 5% of itself");
    let (r, b) = (&configs[recommended], &configs[best]);
    let why = if recommended == best {
        format!(
            "{} is the best ({} items/s, {:.2} of its limit) and no cheaper configuration \
             comes within 5% of it; its bottleneck is {}",
            show(r),
            fmt_rate(r.items_per_s),
            r.fraction_of_limit,
            r.bottleneck
        )
    } else {
        format!(
            "{} gives {} items/s, {:.1}% of the best ({} items/s with {}), with fewer \
             workers, threads, concurrency or window (cheapest first, in that order); its \
             bottleneck is {} (limit {} items/s), the best's is {}",
            show(r),
            fmt_rate(r.items_per_s),
            100.0 * r.items_per_s / b.items_per_s,
            fmt_rate(b.items_per_s),
            show(b),
            r.bottleneck,
            fmt_rate(r.limit_per_s),
            b.bottleneck
        )
    };
    Ok(Whatif {
        trace: plan.path.display().to_string(),
        stages: plan
            .trace
            .stages
            .iter()
            .zip(&plan.after_batch)
            .map(|(s, &after)| TraceSummary {
                name: s.name.clone(),
                kind: if s.cpu { "cpu" } else { "blocking" }.into(),
                rows: s.cost_ns.len(),
                mean_ns: s.cost_ns.iter().map(|&x| x as f64).sum::<f64>() / s.cost_ns.len() as f64,
                after_batch: after,
            })
            .collect(),
        items: plan.items,
        batch: plan.batch,
        cores: plan.cores,
        cores_from: plan.cores_from.into(),
        configs,
        best,
        recommended,
        why,
    })
}

fn describe(plan: &Plan, c: &Config) -> String {
    let conc: Vec<String> = plan
        .trace
        .stages
        .iter()
        .zip(&c.concurrency)
        .map(|(s, x)| match x {
            Conc::P => format!("{}=p", s.name),
            Conc::N(n) => format!("{}={n}", s.name),
        })
        .collect();
    format!(
        "P={} {} {} window={} queue={}",
        c.workers,
        conc.join(" "),
        plan.strategies[c.strategy].0,
        c.window.show(),
        c.queue.show()
    )
}

/// A configuration in one line: `P=4 read=32 decode=4 central window=512 queue=auto`.
pub fn show(p: &Prediction) -> String {
    let conc: Vec<String> = p
        .concurrency
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "P={} {} {} window={} queue={}",
        p.workers,
        conc.join(" "),
        p.strategy,
        p.window,
        p.queue
    )
}

/// The table and the recommendation, for people.
pub fn render_text(w: &Whatif) -> String {
    let mut s = format!(
        "what-if: {} ({} items, batch {}): {}\n",
        w.trace,
        w.items,
        w.batch,
        w.stages
            .iter()
            .map(|t| format!(
                "{} ({}, mean {}{})",
                t.name,
                t.kind,
                fmt_ns(t.mean_ns),
                if t.after_batch { ", per batch" } else { "" }
            ))
            .collect::<Vec<_>>()
            .join(" -> ")
    );
    s.push_str(&format!(
        "cores: {} ({})\n",
        w.cores,
        if w.cores_from == "this machine" {
            "this machine; --cores to change"
        } else {
            "--cores"
        }
    ));
    let names: Vec<&String> = w.configs[0].concurrency.keys().collect();
    let mut header = format!("{:>4}", "P");
    for n in &names {
        header.push_str(&format!(" {:>8}", truncate(n, 8)));
    }
    header.push_str(&format!(
        " {:<22} {:>7} {:>6} {:>12} {:>8} {:>14} {:>10} {:>6}\n",
        "strategy", "window", "queue", "items/s", "of limit", "bottleneck", "p99 batch", "held"
    ));
    s.push_str(&header);
    for (i, c) in w.configs.iter().enumerate() {
        s.push_str(&format!("{:>4}", c.workers));
        for n in &names {
            s.push_str(&format!(" {:>8}", c.concurrency[*n]));
        }
        let mark = if i == w.recommended {
            "  <- recommended"
        } else if i == w.best {
            "  <- best"
        } else {
            ""
        };
        s.push_str(&format!(
            " {:<22} {:>7} {:>6} {:>12} {:>8.3} {:>14} {:>10} {:>6}{mark}\n",
            truncate(&c.strategy, 22),
            c.window,
            c.queue,
            fmt_rate(c.items_per_s),
            c.fraction_of_limit,
            truncate(&c.bottleneck, 14),
            fmt_ns(c.batch_p99_ns as f64),
            c.held_peak
        ));
    }
    s.push_str(&format!(
        "\nrecommended: {}\nwhy: {}\n",
        show(&w.configs[w.recommended]),
        w.why
    ));
    s
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    } else {
        s.to_string()
    }
}

/// A rate in items/s: whole numbers from 100 up, two decimals from 1, and three significant
/// digits below 1 (`1.000e-6`), so that a slow rate never reads as 0.
fn fmt_rate(x: f64) -> String {
    if x >= 100.0 || x == 0.0 || !x.is_finite() {
        format!("{x:.0}")
    } else if x >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3e}")
    }
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} us", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// Write `dir/whatif.json`, the figure and `dir/index.html`.
fn write_out(w: &Whatif, dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::Run(anyhow::anyhow!("creating {}: {e}", dir.display())))?;
    let json = serde_json::to_string_pretty(w).map_err(anyhow::Error::from)?;
    crate::output::write_file(&dir.join("whatif.json"), json.as_bytes())?;
    // One line per configuration apart from P: (label, [(P, items/s)]).
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for c in &w.configs {
        let mut conc: Vec<String> = c
            .concurrency
            .iter()
            .filter(|(name, &v)| {
                // A cpu stage at P is "p" in every line: leave it out of the label.
                !(w.stages.iter().any(|s| &s.name == *name && s.kind == "cpu") && v == c.workers)
            })
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        conc.push(c.strategy.clone());
        if w.configs
            .iter()
            .any(|o| o.window_setting != c.window_setting)
        {
            conc.push(format!("window {}", c.window_setting));
        }
        if w.configs.iter().any(|o| o.queue != c.queue) {
            conc.push(format!("queue {}", c.queue));
        }
        let label = conc.join(" ");
        match series.iter_mut().find(|s| s.0 == label) {
            Some(s) => s.1.push((c.workers as f64, c.items_per_s)),
            None => series.push((label, vec![(c.workers as f64, c.items_per_s)])),
        }
    }
    let fig = reports::whatif::throughput_figure(dir, &series)
        .map_err(|e| CliError::Run(anyhow::anyhow!("{e}")))?;
    let rows: Vec<reports::whatif::Row> = w
        .configs
        .iter()
        .enumerate()
        .map(|(i, c)| reports::whatif::Row {
            config: show(c),
            items_per_s: c.items_per_s,
            fraction_of_limit: c.fraction_of_limit,
            bottleneck: c.bottleneck.clone(),
            batch_p99: fmt_ns(c.batch_p99_ns as f64),
            held_peak: c.held_peak,
            mark: if i == w.recommended {
                "recommended".into()
            } else if i == w.best {
                "best".into()
            } else {
                String::new()
            },
        })
        .collect();
    let intro = format!(
        "{} replayed: {} items, batch {}. Recommended: {}. Why: {}",
        w.trace,
        w.items,
        w.batch,
        show(&w.configs[w.recommended]),
        w.why
    );
    reports::whatif::page(dir, &intro, &rows, &fig)
        .map_err(|e| CliError::Run(anyhow::anyhow!("{e}")))?;
    Ok(())
}

/// `schedlab whatif`: predict, then print (and write `--out`), all or nothing.
///
/// # Errors
/// As [`predict`], and a failure writing the output.
pub fn main(a: &WhatifArgs) -> Result<(), CliError> {
    let w = predict(a)?;
    let text = if a.json {
        serde_json::to_string(&w).map_err(anyhow::Error::from)? + "\n"
    } else {
        render_text(&w)
    };
    if let Some(dir) = &a.out {
        write_out(&w, dir)?;
    }
    crate::output::emit(&text, None)
}

//! `schedlab run`: validate every input up front, then run one strategy on one workload.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use scheduler::{CostModel, Labels, Pin, RunReport, RunSpec, Strategy, Tasks, Timing, Topology};
use workloads::{Arrivals, Distribution, Executor, Kind, Speeds, TaskSet, Workload};

use crate::CliError;

/// The flags of `schedlab run`.
#[derive(Clone, Debug, Args)]
pub struct RunArgs {
    /// Strategy spec, e.g. 'work-stealing(victim=numa,steal=half)' (see `schedlab strategies`).
    #[arg(long, short = 's')]
    pub strategy: String,
    /// Workload spec, e.g. 'lognormal(mean=100us,sigma=1.5)' or 'constant(50us)'.
    #[arg(long, short = 'w')]
    pub workload: String,
    /// Number of tasks.
    #[arg(long, short = 'n', default_value_t = 20_000)]
    pub tasks: usize,
    /// Number of workers P.
    #[arg(long, short = 'p', default_value_t = 2)]
    pub workers: usize,
    /// Engine: threads (real OS threads) or sim (discrete-event simulation).
    #[arg(long, default_value = "threads")]
    pub engine: String,
    /// Kind of work a task does on the threads engine: spin, compute, sleep or memory.
    #[arg(long, default_value = "spin")]
    pub kind: String,
    /// Pinning of worker threads: none, cores or numa.
    #[arg(long, default_value = "none")]
    pub pin: String,
    /// Worker speeds: uniform, big-little, or one factor per worker (1,1,0.5,0.5).
    #[arg(long, default_value = "uniform")]
    pub speeds: String,
    /// Arrivals: closed (all at 0) or poisson(rate=20000/s).
    #[arg(long, default_value = "closed")]
    pub arrivals: String,
    /// Sigma of the log-normal error on the estimates SPT/LPT see (0 = exact).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub estimate_error: f64,
    /// Seed for the task set and the strategies' randomness.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Synthetic topology NxM (N nodes of M cpus); default: this machine's.
    #[arg(long)]
    pub topology: Option<String>,
    /// Simulator cost model, e.g. 'local=20ns,shared=100ns' (see the scheduler docs).
    #[arg(long)]
    pub cost: Option<String>,
    /// Keep a timeline of at most this many task spans in the report.
    #[arg(long, default_value_t = 0)]
    pub timeline: usize,
    /// Print the RunReport as JSON (same as --format json).
    #[arg(long)]
    pub json: bool,
    /// Output format: text (for people), json (the RunReport plus its inputs) or csv (a header
    /// and one row).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the report to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Output format of `schedlab run`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A short report for people.
    #[default]
    Text,
    /// The RunReport as one line of JSON, with an `inputs` object.
    Json,
    /// A CSV header and one row.
    Csv,
}

impl RunArgs {
    /// The format asked for (`--json` wins over the default text).
    pub fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else {
            self.format
        }
    }
}

impl Default for RunArgs {
    fn default() -> Self {
        RunArgs {
            strategy: "work-stealing".into(),
            workload: "constant(50us)".into(),
            tasks: 20_000,
            workers: 2,
            engine: "threads".into(),
            kind: "spin".into(),
            pin: "none".into(),
            speeds: "uniform".into(),
            arrivals: "closed".into(),
            estimate_error: 0.0,
            seed: 1,
            topology: None,
            cost: None,
            timeline: 0,
            json: false,
            format: Format::Text,
            output: None,
        }
    }
}

/// Which engine runs the plan.
#[derive(Clone, Debug)]
pub enum Engine {
    /// Real threads doing this kind of work.
    Threads(Kind),
    /// The simulator with this cost model.
    Sim(CostModel),
}

/// A fully validated run: nothing in it can be bad input any more.
#[derive(Debug)]
pub struct RunPlan {
    /// The strategy.
    pub strategy: Box<dyn Strategy>,
    /// The engine.
    pub engine: Engine,
    /// The run's description.
    pub spec: RunSpec,
    /// The generated tasks.
    pub taskset: TaskSet,
    /// Notes on flags that this engine or strategy ignores (added to the report).
    pub notes: Vec<String>,
    /// The inputs that change a result, as recorded in the JSON report and the text header.
    pub inputs: Inputs,
}

/// Every input that changes a result, recorded beside the report (`inputs` in the JSON output,
/// a header line in the text output).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Inputs {
    /// Sigma of the log-normal error on the estimates (0 = exact).
    pub estimate_error: f64,
    /// The speed of each worker.
    pub speeds: Vec<f64>,
    /// The speeds as given (`uniform`, `big-little` or a list).
    pub speeds_spec: String,
    /// The topology used: nodes × cpus and where it came from.
    pub topology: TopologyInput,
    /// The simulator's cost model (`None` on the threads engine).
    pub cost: Option<CostModel>,
    /// Per-task timing (`tasks`) or counts only (`off`).
    pub timing: String,
    /// Seed of the task set and of the strategy's randomness.
    pub seed: u64,
    /// Task spans kept for a timeline (0 = none).
    pub timeline: usize,
}

/// The topology of a run, in short.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TopologyInput {
    /// NUMA nodes.
    pub nodes: usize,
    /// Cpus.
    pub cpus: usize,
    /// `hwloc`, `sysfs`, `fallback` or `synthetic`.
    pub source: String,
}

impl Inputs {
    /// The text header line.
    pub fn header(&self) -> String {
        let speeds = if self.speeds.iter().all(|&s| s == 1.0) {
            "all 1".to_string()
        } else {
            format!("{} ({})", self.speeds_spec, summarize_speeds(&self.speeds))
        };
        let cost = match &self.cost {
            Some(c) => format!(
                "cost local={} shared={} steal_same={} steal_cross={} migrate={} backoff={} wake={}",
                fmt_ns(c.local_ns),
                fmt_ns(c.shared_ns),
                fmt_ns(c.steal_same_ns),
                fmt_ns(c.steal_cross_ns),
                fmt_ns(c.migrate_ns),
                fmt_ns(c.backoff_ns),
                fmt_ns(c.wake_ns)
            ),
            None => "cost model n/a (threads)".to_string(),
        };
        format!(
            "seed {}  speeds {}  topology {}x{} ({})  estimate error {}  timing {}  {}",
            self.seed,
            speeds,
            self.topology.nodes,
            self.topology.cpus / self.topology.nodes.max(1),
            self.topology.source,
            self.estimate_error,
            self.timing,
            cost
        )
    }
}

fn fmt_ns(v: u64) -> String {
    workloads::format_ns(v as f64)
}

fn summarize_speeds(s: &[f64]) -> String {
    if s.len() <= 8 {
        return s
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",");
    }
    let min = s.iter().copied().fold(f64::INFINITY, f64::min);
    let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{} workers, {min}..{max}", s.len())
}

/// This machine's topology, detected once per process (a suite checks thousands of cells; with
/// hwloc one detection takes milliseconds).
fn detected_topology() -> Topology {
    static DETECTED: std::sync::OnceLock<Topology> = std::sync::OnceLock::new();
    DETECTED.get_or_init(Topology::detect).clone()
}

/// Strategies whose decisions read the cost estimates.
fn reads_estimates(strategy: &dyn Strategy) -> bool {
    let spec = strategy.spec();
    let name = spec.split('(').next().unwrap_or(&spec);
    matches!(name, "spt" | "lpt") || (name == "work-stealing" && spec.contains("steal=work"))
}

impl RunPlan {
    /// Validate every input and generate the task set. Each error names its flag.
    pub fn new(args: &RunArgs) -> Result<RunPlan, CliError> {
        let checked = Checked::new(args)?;
        let taskset = checked
            .workload
            .generate(args.tasks, args.seed)
            .map_err(|e| CliError::input("--workload", e))?;
        crate::limits::check_duration(args, &taskset, &checked.spec.speeds())?;
        Ok(RunPlan {
            strategy: checked.strategy,
            engine: checked.engine,
            spec: checked.spec,
            taskset,
            notes: checked.notes,
            inputs: checked.inputs,
        })
    }
}

/// A run whose every input is valid, before its task set is generated (cheap: suites check all
/// their runs this way before running any).
#[derive(Debug)]
pub struct Checked {
    /// The strategy.
    pub strategy: Box<dyn Strategy>,
    /// The engine.
    pub engine: Engine,
    /// The run's description.
    pub spec: RunSpec,
    /// The workload to generate.
    pub workload: Workload,
    /// Notes on ignored flags.
    pub notes: Vec<String>,
    /// The inputs that change a result.
    pub inputs: Inputs,
}

impl Checked {
    /// Validate every input; each error names its flag. Memory is checked against this
    /// process's limits now.
    pub fn new(args: &RunArgs) -> Result<Checked, CliError> {
        Checked::within(args, &crate::limits::MemoryLimits::detect()?)
    }

    /// [`Checked::new`] against memory limits already detected (a suite checks every cell
    /// against one detection).
    pub fn within(
        args: &RunArgs,
        limits: &crate::limits::MemoryLimits,
    ) -> Result<Checked, CliError> {
        use crate::CliError as E;
        fn input(flag: &str, e: impl std::fmt::Display) -> E {
            E::input(flag, grammar::one_line(&e.to_string(), 1000))
        }
        crate::limits::check_sizes_within(args, limits)?;
        let strategy = strategies::parse(&args.strategy).map_err(|e| input("--strategy", e))?;
        let distribution =
            Distribution::parse(&args.workload).map_err(|e| input("--workload", e))?;
        let arrivals = Arrivals::parse(&args.arrivals).map_err(|e| input("--arrivals", e))?;
        if args.workers == 0 {
            return Err(input("--workers", "must be at least 1, got 0"));
        }
        if args.tasks == 0 {
            return Err(input("--tasks", "must be at least 1, got 0"));
        }
        let speeds = Speeds::parse(&args.speeds)
            .and_then(|s| s.resolve(args.workers))
            .map_err(|e| input("--speeds", e))?;
        let pin: Pin = args.pin.parse().map_err(|e| input("--pin", e))?;
        let topology = match &args.topology {
            Some(t) => t.parse::<Topology>().map_err(|e| input("--topology", e))?,
            None => detected_topology(),
        };
        let kind = Kind::parse(&args.kind).map_err(|e| input("--kind", e))?;
        let engine = match args.engine.trim().to_ascii_lowercase().as_str() {
            "threads" => {
                if args.cost.is_some() {
                    return Err(input(
                        "--cost",
                        "only the sim engine takes a cost model (add --engine sim)",
                    ));
                }
                Engine::Threads(kind)
            }
            "sim" => Engine::Sim(match &args.cost {
                Some(c) => c.parse().map_err(|e| input("--cost", e))?,
                None => CostModel::default(),
            }),
            _ => {
                return Err(input(
                    "--engine",
                    format!(
                        "{} is not an engine (allowed: threads, sim)",
                        grammar::quote(args.engine.trim())
                    ),
                ))
            }
        };
        strategy
            .validate(args.workers)
            .map_err(|e| input("--strategy", e))?;
        let estimate_error = workloads::validate_estimate_error(args.estimate_error)
            .map_err(|e| input("--estimate-error", e))?;
        let workload = Workload {
            distribution,
            estimate_error,
            arrivals,
        };
        let mut notes = Vec::new();
        if matches!(engine, Engine::Sim(_)) && args.kind != "spin" {
            notes.push(format!(
                "--kind {} is ignored by the sim engine (task times are virtual)",
                args.kind
            ));
        }
        if estimate_error > 0.0 && !reads_estimates(strategy.as_ref()) {
            notes.push(format!(
                "--estimate-error {estimate_error} is ignored: {} reads no estimates (only spt, lpt and work-stealing(steal=work) do)",
                strategy.spec()
            ));
        }
        let inputs = Inputs {
            estimate_error,
            speeds: speeds.clone(),
            speeds_spec: args.speeds.clone(),
            topology: TopologyInput {
                nodes: topology.nodes.len(),
                cpus: topology.cpus(),
                source: topology.source.to_string(),
            },
            cost: match &engine {
                Engine::Sim(c) => Some(c.clone()),
                Engine::Threads(_) => None,
            },
            timing: "tasks".into(),
            seed: args.seed,
            timeline: args.timeline,
        };
        let spec = RunSpec {
            workers: args.workers,
            pin,
            topology,
            speeds,
            seed: args.seed,
            timing: Timing::Tasks,
            timeline_cap: args.timeline,
            labels: Labels {
                workload: workload.distribution.to_string(),
                kind: match &engine {
                    Engine::Threads(k) => k.to_string(),
                    Engine::Sim(_) => "virtual".into(),
                },
                arrivals: workload.arrivals.to_string(),
            },
        };
        Ok(Checked {
            strategy,
            engine,
            spec,
            workload,
            notes,
            inputs,
        })
    }
}

impl RunPlan {
    /// The task table the engines see.
    pub fn tasks(&self) -> Tasks<'_> {
        let t = &self.taskset;
        Tasks {
            n: t.len(),
            cost_ns: Some(&t.cost_ns),
            estimate_ns: Some(&t.estimate_ns),
            release_ns: Some(&t.arrival_ns),
        }
    }

    /// Run it.
    pub fn execute(&self) -> Result<RunReport, CliError> {
        let tasks = self.tasks();
        let report = match &self.engine {
            Engine::Threads(kind) => {
                let exec = Executor::new(*kind);
                let speeds = self.spec.speeds();
                let costs = &self.taskset.cost_ns;
                let mut report = scheduler::run_threads_with_init(
                    &self.spec,
                    self.strategy.as_ref(),
                    &tasks,
                    |_| exec.prepare_thread(),
                    |id, w| exec.run_at_speed(costs[id], speeds[w]),
                )
                .map_err(run_error)?;
                if let Some(over) = exec.sleep_overshoot() {
                    report.notes.push(format!(
                        "sleep overshoot: mean {:.1}us per task",
                        over / 1000.0
                    ));
                }
                if let Some(ns) = exec
                    .calibration()
                    .compute_ns_per_iter
                    .filter(|_| *kind == Kind::Compute)
                {
                    report
                        .notes
                        .push(format!("compute calibration: {ns:.3} ns per iteration"));
                }
                report
            }
            Engine::Sim(cost) => {
                scheduler::run_sim(&self.spec, self.strategy.as_ref(), &tasks, cost)
                    .map_err(run_error)?
            }
        };
        let mut report = report;
        report.notes.extend(self.notes.iter().cloned());
        Ok(report)
    }
}

fn run_error(e: scheduler::RunError) -> CliError {
    match e {
        scheduler::RunError::Invalid(e) => CliError::Input(e.to_string()),
        other => CliError::Run(anyhow::Error::new(other)),
    }
}

//! Fuzzing every parser a user reaches (strategy, workload distribution, arrivals, speeds,
//! kind, duration, cost model, topology, trace text) with proptest: generated inputs mix the
//! grammar's own tokens (names, keys, units, parentheses, commas, quotes) with arbitrary
//! Unicode and control characters. For every input: no panic; an error is one line (no
//! control character) of bounded length; an accepted value prints back to a spec that parses
//! to the same value. A counting allocator fails any single allocation above 64 MiB, the
//! parsers' stated ceiling for inputs this small.
//!
//! - default (CI): 5,000 inputs per parser family;
//! - big run: `SCHEDLAB_FUZZ=200000 cargo test --release -p experiments --test fuzz -- --nocapture`
//!   (`just fuzz`): 200,000 inputs for each of the 6 families, 1.2 million in all.
//!
//! `fuzz_whatif_arguments` runs the `schedlab whatif` binary itself on seeded random and edge
//! values of every flag and on small traces with edge costs (0, u64::MAX, 10^18): each run
//! exits 0 or 2 (2 with one line on stderr and nothing on stdout), never panics, never dies of
//! a signal, and ends within its timeout. 200 runs by default (`SCHEDLAB_WHATIF_FUZZ=N` for
//! more; `SCHEDLAB_WHATIF_SEED=S` for another seed).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// The system allocator, remembering the largest single request.
struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MAX_ALLOCATION: usize = 64 << 20;

fn cases() -> u32 {
    std::env::var("SCHEDLAB_FUZZ")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(5_000)
}

/// Tokens of the spec grammar, and some that are not.
const TOKENS: &[&str] = &[
    "central",
    "guided",
    "work-stealing",
    "round-robin",
    "block",
    "spt",
    "lpt",
    "range-stealing",
    "weighted-rr",
    "Central",
    "constant",
    "uniform",
    "exponential",
    "lognormal",
    "gamma",
    "pareto",
    "bimodal",
    "mix",
    "trace",
    "poisson",
    "closed",
    "zero",
    "default",
    "local",
    "shared",
    "steal_same",
    "steal_cross",
    "migrate",
    "backoff",
    "wake",
    "chunk",
    "min",
    "max",
    "victim",
    "steal",
    "weights",
    "mean",
    "sigma",
    "k",
    "alpha",
    "rate",
    "file",
    "value",
    "cv",
    "numa",
    "random",
    "half",
    "one",
    "auto",
    "spin",
    "compute",
    "sleep",
    "memory",
    "big-little",
    "(",
    ")",
    ",",
    "=",
    ":",
    "/",
    ".",
    "-",
    "+",
    "e",
    "E",
    "x",
    "\"",
    "'",
    " ",
    "ns",
    "us",
    "µs",
    "ms",
    "s",
    "0",
    "1",
    "2",
    "7",
    "10",
    "1e3",
    "1e-300",
    "1e300",
    "0.5",
    "1.5",
    "-1",
    "nan",
    "inf",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999",
    "\n",
    "\u{1b}[2J",
    "\r",
    "\t",
    "\0",
    "é",
    "\u{202e}",
    "\u{feff}",
    "𝔘",
];

fn spec_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(prop::sample::select(TOKENS), 0..24)
            .prop_map(|t| t.concat()),
        1 => any::<String>(),
        1 => "[a-z(),=0-9.:/ -]{0,64}",
    ]
}

/// A number as users write them, and some they should not.
fn number() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[0-9]{1,4}(\\.[0-9]{1,3})?([eE]-?[0-9]{1,2})?",
        1 => prop::sample::select(&["0", "-1", "1e-300", "1e300", "nan", "inf", ".5", "18446744073709551616"][..])
            .prop_map(String::from),
    ]
    .boxed()
}

/// A duration: mostly well-formed, sometimes not.
fn duration() -> BoxedStrategy<String> {
    (
        number(),
        prop::sample::select(&["", " "][..]),
        prop::sample::select(&["ns", "us", "µs", "ms", "s", "NS", "Ms", "", "min", "sec"][..]),
    )
        .prop_map(|(n, sp, u)| format!("{n}{sp}{u}"))
        .boxed()
}

/// `name(key=value,...)` from these names, keys and values, with a chance of mutation.
fn call(
    names: &'static [&'static str],
    keys: &'static [&'static str],
    values: BoxedStrategy<String>,
) -> BoxedStrategy<String> {
    (
        prop::sample::select(names),
        prop::collection::vec((prop::sample::select(keys), values), 0..4),
        0..6usize,
        any::<bool>(),
    )
        .prop_map(|(name, args, mutation, upper)| {
            let name = if upper {
                name.to_ascii_uppercase()
            } else {
                name.to_string()
            };
            let args: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let mut text = if args.is_empty() && mutation % 2 == 0 {
                name
            } else {
                format!("{name}({})", args.join(","))
            };
            match mutation {
                0 => text.push(')'),
                1 => {
                    text.pop();
                }
                2 => text = text.replacen('=', "==", 1),
                _ => {}
            }
            text
        })
        .boxed()
}

fn strategy_text() -> BoxedStrategy<String> {
    let values = prop_oneof![
        number(),
        prop::sample::select(
            &[
                "random",
                "numa",
                "NUMA",
                "half",
                "one",
                "auto",
                "1,1,0.5",
                "2,0",
                "1e308,1e308",
                "x"
            ][..]
        )
        .prop_map(String::from),
    ]
    .boxed();
    prop_oneof![
        3 => call(
            &["central", "guided", "work-stealing", "round-robin", "block", "spt", "lpt",
              "range-stealing", "weighted-rr", "fastest"],
            &["chunk", "min", "victim", "steal", "weights", "size"],
            values,
        ),
        1 => spec_text(),
    ]
    .boxed()
}

fn workload_text() -> BoxedStrategy<String> {
    let values = prop_oneof![3 => duration(), 2 => number()].boxed();
    let simple = call(
        &[
            "constant",
            "uniform",
            "exponential",
            "lognormal",
            "gamma",
            "pareto",
            "bimodal",
            "weibull",
            "poisson",
            "closed",
        ],
        &[
            "mean", "sigma", "k", "alpha", "min", "max", "value", "cv", "theta", "mu", "unit",
            "rate", "shape",
        ],
        values,
    );
    prop_oneof![
        3 => simple.clone(),
        1 => (duration()).prop_map(|d| format!("constant({d})")),
        1 => (number(), simple.clone(), number(), simple)
            .prop_map(|(a, x, b, y)| format!("mix({a}:{x},{b}:{y})")),
        1 => spec_text(),
    ]
    .boxed()
}

fn cost_text() -> BoxedStrategy<String> {
    let keys = &[
        "local",
        "shared",
        "steal_same",
        "steal_cross",
        "migrate",
        "backoff",
        "wake",
        "LOCAL",
        "locl",
    ][..];
    (
        prop::sample::select(&["", "zero,", "default,", "zero"][..]),
        prop::collection::vec((prop::sample::select(keys), duration()), 0..5),
    )
        .prop_map(|(base, items)| {
            let items: Vec<String> = items.iter().map(|(k, d)| format!("{k}={d}")).collect();
            format!("{base}{}", items.join(","))
        })
        .boxed()
        .prop_union(spec_text().boxed())
        .boxed()
}

fn topology_text() -> BoxedStrategy<String> {
    let side = prop::sample::select(
        &[
            "0",
            "1",
            "2",
            "8",
            "64",
            "1500",
            "2097153",
            "18446744073709551615",
            "-1",
            " 3",
        ][..],
    );
    prop_oneof![
        3 => (side.clone(), prop::sample::select(&["x", "X", "*"][..]), side)
            .prop_map(|(a, x, b)| format!("{a}{x}{b}")),
        1 => spec_text(),
    ]
    .boxed()
}

fn trace_text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::collection::vec(prop_oneof![duration(), number()], 0..8)
            .prop_map(|rows| rows.join("\n")),
        1 => spec_text(),
    ]
    .boxed()
}

fn check_error(what: &str, input: &str, e: &dyn std::fmt::Display) -> Result<(), TestCaseError> {
    let msg = e.to_string();
    prop_assert!(
        !msg.chars().any(|c| c.is_control()),
        "{what} {input:?}: error with a control character: {msg:?}"
    );
    prop_assert!(
        msg.len() <= 1_200,
        "{what} {input:?}: error of {} bytes",
        msg.len()
    );
    Ok(())
}

/// Run `test` on generated inputs; it answers whether its main parser accepted the input.
fn run(
    name: &str,
    inputs: BoxedStrategy<String>,
    test: impl Fn(&str) -> Result<bool, TestCaseError>,
) {
    let accepted = std::cell::Cell::new(0u64);
    let n = cases();
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    });
    let start = std::time::Instant::now();
    runner
        .run(&inputs, |s| {
            if test(&s)? {
                accepted.set(accepted.get() + 1);
            }
            let largest = LARGEST.load(Ordering::Relaxed);
            prop_assert!(
                largest <= MAX_ALLOCATION,
                "{name} {s:?}: an allocation of {largest} bytes"
            );
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    println!(
        "fuzz {name}: {n} inputs ({} accepted by the main parser), no panic, in {:.1} s",
        accepted.get(),
        start.elapsed().as_secs_f64()
    );
}

#[test]
fn fuzz_strategy_specs() {
    run("strategy", strategy_text(), |s| {
        let accepted = strategies::parse(s).is_ok();
        match strategies::parse(s) {
            Ok(st) => {
                let canonical = st.spec();
                let again = strategies::parse(&canonical);
                prop_assert!(again.is_ok(), "{s:?} -> {canonical:?} does not parse back");
                prop_assert_eq!(again.unwrap().spec(), canonical);
                // Whatever parsed runs a small simulation (if it accepts the worker count):
                // every task exactly once.
                let p = 1 + s.len() % 8;
                if st.validate(p).is_ok() {
                    let costs: Vec<u64> = (0..17).map(|j| 1 + (j * 37 % 11)).collect();
                    let mut seen = [0u8; 17];
                    let r = scheduler::run_sim_with(
                        &scheduler::RunSpec::new(p)
                            .with_topology(scheduler::Topology::synthetic(2, 2)),
                        st.as_ref(),
                        &scheduler::Tasks::with_costs(&costs),
                        &scheduler::CostModel::default(),
                        |span| seen[span.task] += 1,
                    );
                    prop_assert!(r.is_ok(), "{s:?}: {:?}", r.err());
                    prop_assert!(seen.iter().all(|&k| k == 1), "{s:?}: {seen:?}");
                }
            }
            Err(e) => check_error("strategy", s, &e)?,
        }
        Ok(accepted)
    });
}

#[test]
fn fuzz_workload_specs() {
    run("workload", workload_text(), |s| {
        let accepted = workloads::Distribution::parse(s).is_ok();
        match workloads::Distribution::parse(s) {
            Ok(d) => {
                let text = d.to_string();
                let again = workloads::Distribution::parse(&text);
                prop_assert!(again.is_ok(), "{s:?} -> {text:?} does not parse back");
                prop_assert_eq!(again.unwrap(), d.clone());
                // Small task sets from whatever parsed.
                let _ = workloads::Workload::new(d).generate(16, 1);
            }
            Err(e) => check_error("workload", s, &e)?,
        }
        match workloads::Arrivals::parse(s) {
            Ok(a) => prop_assert_eq!(workloads::Arrivals::parse(&a.to_string()).unwrap(), a),
            Err(e) => check_error("arrivals", s, &e)?,
        }
        match workloads::Speeds::parse(s) {
            Ok(sp) => {
                let _ = sp.resolve(1 + s.len() % 8);
            }
            Err(e) => check_error("speeds", s, &e)?,
        }
        if let Err(e) = workloads::Kind::parse(s) {
            check_error("kind", s, &e)?;
        }
        Ok(accepted)
    });
}

#[test]
fn fuzz_durations() {
    run(
        "duration",
        duration().prop_union(spec_text().boxed()).boxed(),
        |s| {
            let accepted = grammar::parse_duration(s).is_ok();
            match grammar::parse_duration(s) {
                Ok(ns) => {
                    let text = grammar::format_duration(ns);
                    prop_assert_eq!(grammar::parse_duration(&text).unwrap(), ns);
                    // The workloads crate reads durations with the same grammar.
                    prop_assert_eq!(workloads::parse_duration(s).unwrap(), ns);
                }
                Err(e) => {
                    check_error("duration", s, &e)?;
                    prop_assert!(workloads::parse_duration(s).is_err());
                }
            }
            Ok(accepted)
        },
    );
}

#[test]
fn fuzz_cost_models() {
    run("cost", cost_text(), |s| {
        let accepted = s.parse::<scheduler::CostModel>().is_ok();
        match s.parse::<scheduler::CostModel>() {
            Ok(m) => {
                let text = m.to_string();
                prop_assert_eq!(text.parse::<scheduler::CostModel>().unwrap(), m);
            }
            Err(e) => check_error("cost", s, &e)?,
        }
        Ok(accepted)
    });
}

#[test]
fn fuzz_topologies_and_pins() {
    run("topology", topology_text(), |s| {
        let accepted = s.parse::<scheduler::Topology>().is_ok();
        match s.parse::<scheduler::Topology>() {
            Ok(t) => prop_assert!(t.cpus() <= scheduler::Topology::MAX_CPUS),
            Err(e) => check_error("topology", s, &e)?,
        }
        if let Err(e) = s.parse::<scheduler::Pin>() {
            check_error("pin", s, &e)?;
        }
        Ok(accepted)
    });
}

#[test]
fn fuzz_trace_text() {
    // Trace bodies: lines of grammar tokens under a plausible header, or arbitrary text.
    run("trace", trace_text(), |s| {
        let mut accepted = false;
        for (name, text, json) in [
            (
                "t.csv",
                format!("cost,arrival\n{}", s.replace(['(', ')'], "\n")),
                false,
            ),
            ("t.csv", format!("cost_ns,arrival_ns\n{s}"), false),
            ("t.json", format!("[{}]", s.replace('\n', ",")), true),
            ("t.csv", s.to_string(), false),
        ] {
            match workloads::Trace::from_text(name, &text, json) {
                Ok(t) => {
                    accepted = true;
                    prop_assert!(!t.is_empty())
                }
                Err(e) => check_error("trace", &text, &e)?,
            }
        }
        Ok(accepted)
    });
}

/// A small seeded generator (SplitMix64) for the what-if fuzz: the runs are the same every time.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    /// A list of one or two values from `xs` (lists multiply the grid: kept short).
    fn list(&mut self, xs: &[&str]) -> String {
        let n = 1 + self.below(2);
        (0..n).map(|_| self.pick(xs)).collect::<Vec<_>>().join(",")
    }
}

/// Run `schedlab` with `args`; `None` if it was still running after `limit` (then killed).
fn schedlab_within(
    args: &[String],
    limit: std::time::Duration,
) -> Option<(std::process::ExitStatus, String, String)> {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_schedlab"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("schedlab starts");
    // Read both pipes on threads, so that a large output cannot block the child.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some((status, out.join().unwrap(), err.join().unwrap()));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn fuzz_whatif_arguments() {
    let runs: usize = std::env::var("SCHEDLAB_WHATIF_FUZZ")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(200);
    let seed: u64 = std::env::var("SCHEDLAB_WHATIF_SEED")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(27);
    let mut rng = Mix(seed);
    let dir = std::env::temp_dir().join(format!("schedlab-fuzz-whatif-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    const COSTS: &[&str] = &[
        "0",
        "1",
        "1000",
        "250000",
        "2000000",
        "1000000000000000",
        "1000000000000000000",
        "9223372036854775807",
        "18446744073709551615",
        "18446744073709551616",
        "-1",
        "1e3",
        "x",
    ];
    const NUMBERS: &[&str] = &[
        "0",
        "1",
        "2",
        "3",
        "8",
        "4096",
        "4097",
        "1048576",
        "1048577",
        "1000000000",
        "18446744073709551615",
        "18446744073709551616",
        "-1",
        "nan",
        "inf",
        "1e-12",
        "1.5",
        "auto",
        "p",
        "",
        " 2",
        "abc",
    ];
    const CORES: &[&str] = &[
        "0", "0.01", "0.009", "1", "1.5", "2", "4096", "4097", "1e-12", "1e300", "-1", "nan",
        "inf", "-inf", "abc", "",
    ];
    const STRATEGIES: &[&str] = &[
        "central",
        "work-stealing",
        "round-robin",
        "guided",
        "spt",
        "block",
        "weighted-rr(weights=1,2)",
        "work-stealing(victim=numa)",
        "central(chunk=0)",
        "nope",
        "",
    ];
    // Small traces: a fixed well-formed one and, per run, one with random costs.
    let trace = |name: &str, rows: usize, rng: &mut Mix, costs: &dyn Fn(&mut Mix) -> String| {
        let mut t = String::from("# schedlab pipeline trace v1\nstage,kind,epoch,item,cost_ns\n");
        for i in 0..rows {
            t.push_str(&format!("read,blocking,0,{i},{}\n", costs(rng)));
            t.push_str(&format!("decode,cpu,0,{i},{}\n", costs(rng)));
        }
        let p = dir.join(name);
        std::fs::write(&p, t).unwrap();
        p.display().to_string()
    };
    let good = trace("good.csv", 12, &mut rng, &|_| "250000".into());
    let (mut ok, mut refused, mut failures) = (0, 0, Vec::new());
    for run in 0..runs {
        let path = if rng.chance(60) {
            good.clone()
        } else {
            let rows = 1 + rng.below(6);
            trace(&format!("t{run}.csv"), rows, &mut rng, &|r: &mut Mix| {
                if r.chance(85) {
                    r.pick(&["0", "1000", "250000", "2000000"]).into()
                } else {
                    r.pick(COSTS).into()
                }
            })
        };
        let mut args = vec!["whatif".to_string(), path];
        // Blocking `read` needs its threads: mostly given, sometimes wrong or missing.
        if rng.chance(85) {
            let stage = if rng.chance(90) {
                "read"
            } else {
                rng.pick(&["decode", "nope", ""])
            };
            let list = if rng.chance(85) {
                rng.list(&["1", "2", "4", "8"])
            } else {
                rng.list(NUMBERS)
            };
            args.push(format!("--concurrency={stage}={list}"));
        }
        if rng.chance(30) {
            let list = if rng.chance(70) {
                rng.list(&["1", "2", "p"])
            } else {
                rng.list(NUMBERS)
            };
            args.push(format!("--concurrency=decode={list}"));
        }
        for (flag, values, valid) in [
            ("--workers", NUMBERS, &["1", "2", "4"][..]),
            ("--window", NUMBERS, &["auto", "16", "64"][..]),
            ("--queue", NUMBERS, &["auto", "2", "8"][..]),
        ] {
            if rng.chance(50) {
                let list = if rng.chance(85) {
                    rng.list(valid)
                } else {
                    rng.list(values)
                };
                args.push(format!("{flag}={list}"));
            }
        }
        if rng.chance(40) {
            let b = if rng.chance(80) {
                rng.pick(&["1", "4", "16"])
            } else {
                rng.pick(NUMBERS)
            };
            args.push(format!("--batch={b}"));
        }
        if rng.chance(50) {
            let c = if rng.chance(70) {
                rng.pick(&["0.5", "1", "2", "3.5"])
            } else {
                rng.pick(CORES)
            };
            args.push(format!("--cores={c}"));
        }
        if rng.chance(40) {
            args.push(format!("--strategy={}", rng.list(STRATEGIES)));
        }
        if rng.chance(15) {
            args.push(format!("--items={}", rng.pick(NUMBERS)));
        }
        if rng.chance(20) {
            args.push("--as-ready".into());
        }
        let json = rng.chance(30);
        if json {
            args.push("--json".into());
        }
        let shown = format!("{args:?}");
        let Some((status, out, err)) = schedlab_within(&args, std::time::Duration::from_secs(30))
        else {
            failures.push(format!("{shown}: still running after 30 s (killed)"));
            continue;
        };
        let problem = match status.code() {
            None => Some(format!("killed by a signal ({status})")),
            Some(0) if out.is_empty() => Some("exit 0 with nothing on stdout".into()),
            Some(0) if json && serde_json::from_str::<serde_json::Value>(&out).is_err() => {
                Some("exit 0 with --json that does not parse".into())
            }
            Some(0) => {
                ok += 1;
                None
            }
            Some(2) if !out.is_empty() => Some("exit 2 with output on stdout".into()),
            Some(2) if err.lines().count() != 1 || !err.starts_with("schedlab: ") => Some(format!(
                "exit 2 with {} lines on stderr",
                err.lines().count()
            )),
            Some(2) => {
                refused += 1;
                None
            }
            Some(c) => Some(format!("exit {c}")),
        };
        let problem = problem.or_else(|| {
            (err.contains("panicked") || out.contains("panicked")).then(|| "a panic".to_string())
        });
        if let Some(p) = problem {
            failures.push(format!("{shown}: {p}: {}", err.trim_end()));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "{} of {runs} what-if runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Both outcomes were reached: the fuzz exercised refusals and real predictions.
    assert!(ok > 0 && refused > 0, "{ok} predicted, {refused} refused");
    println!("fuzz whatif: {runs} runs (seed {seed}): {ok} predicted, {refused} refused (exit 2)");
}

//! Command-line definitions.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::bench::BenchArgs;
use crate::run::RunArgs;
use crate::runner::{MergeArgs, SuiteArgs};

/// Compare how tasks are handed to workers: strategies × workloads × engines.
#[derive(Debug, Parser)]
#[command(
    name = "schedlab",
    version,
    about,
    after_help = EXAMPLES,
    arg_required_else_help = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "Examples:
  schedlab suite quick          # the default suite and its report: results/quick/{runs.jsonl,runs.csv,summary.json,report/index.html}
  schedlab run --strategy work-stealing --workload 'lognormal(mean=100us,sigma=1.5)' --tasks 20000 --workers 2
  schedlab run --engine sim --workers 1024 --tasks 1000000 --strategy central --workload 'constant(20us)' --json
  schedlab workload 'gamma(mean=100us,k=0.5)' -n 100000
  schedlab strategies
  schedlab bench --workers 2";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one strategy on one workload and print its report.
    #[command(after_help = RUN_EXAMPLES)]
    Run(Box<RunArgs>),
    /// Run a suite (a matrix of runs) into results/SUITE/ and draw its report; resumable and
    /// shardable.
    #[command(after_help = SUITE_EXAMPLES)]
    Suite(SuiteArgs),
    /// Join the results directories of a suite's shards into one.
    #[command(
        after_help = "Example:\n  schedlab merge results/quick.1 results/quick.2 results/quick.3 --out results/quick"
    )]
    Merge(MergeArgs),
    /// List every strategy with its parameters and defaults.
    Strategies {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show the detected NUMA nodes and cpus, and where that came from.
    Topology {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Sample a workload distribution: mean, cv, quantiles and a histogram.
    #[command(
        after_help = "Example:\n  schedlab workload 'mix(0.9:constant(20us),0.1:constant(2ms))' -n 200000"
    )]
    Workload {
        /// The distribution spec, e.g. 'lognormal(mean=100us,sigma=1.5)'.
        spec: String,
        /// Number of samples.
        #[arg(short = 'n', long = "samples", default_value_t = 100_000)]
        samples: usize,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Overhead benchmark: every strategy against rayon on the same worker count.
    #[command(
        after_help = "Example:\n  cargo run --release -p experiments -- bench --workers 2 --tasks 1000000"
    )]
    Bench(BenchArgs),
    /// Draw the figures, index.html and summary.md of a results directory (no rerun).
    #[command(after_help = "Example:\n  schedlab report results/quick --out /tmp/quick-report")]
    Report(crate::report_cmd::ReportArgs),
    /// Compare two results directories of the same suite: relative change per cell, 95% CI.
    #[command(after_help = "Example:\n  schedlab compare results/quick-before results/quick")]
    Compare(crate::report_cmd::CompareArgs),
    /// Replay a recorded pipeline trace on the simulator over a grid of configurations
    /// (workers, concurrency, strategies, window): predicted items/s and a recommendation.
    #[command(after_help = WHATIF_EXAMPLES)]
    Whatif(crate::whatif::WhatifArgs),
}

const WHATIF_EXAMPLES: &str = "Examples:
  schedlab whatif pipe.csv --batch 32 --workers 1,2,4,8 --concurrency read=8,16,32 --strategy central,work-stealing
  schedlab whatif pipe.csv --batch 32 --workers 2 --concurrency read=32 --concurrency decode=1,2 --window 64,auto --json
  schedlab whatif pipe.csv --batch 32 --workers 2,4,8,16 --concurrency read=32 --out /tmp/whatif   # index.html + figure

From a checkout, `schedlab` is `cargo run --release -p experiments -- whatif pipe.csv ...`.
Record the trace with Pipeline::trace(path), e.g. the example image pipeline's:
  cargo run --release -p loader --example image_pipeline -- --trace pipe.csv   # (just image-pipeline --trace pipe.csv)
Every list flag multiplies the grid; blocking stages need --concurrency STAGE=LIST (their threads).
--cores defaults to this machine's CPUs: P above it share them (give --cores for another machine).";

const RUN_EXAMPLES: &str = "Examples:
  schedlab run --strategy 'central(chunk=4)' --workload 'constant(50us)' --tasks 20000 --workers 2 --json
  schedlab run --strategy spt --workload 'gamma(mean=100us,k=0.5)' --estimate-error 0.3 --tasks 5000 --workers 4 --kind sleep
  schedlab run --engine sim --topology 2x8 --strategy 'work-stealing(victim=numa)' --workload 'pareto(mean=100us,alpha=1.5)' --tasks 100000 --workers 16";

const SUITE_EXAMPLES: &str = "Examples:
  schedlab suite quick                      # the default suite, into results/quick, and its report
  schedlab suite quick --no-report          # the runs only (schedlab report results/quick draws it later)
  schedlab suite heterogeneity --dry-run    # expand and check; print each run's command
  schedlab suite quick --resume             # finish an interrupted suite
  schedlab suite quick --shard 2/3          # into results/quick.shard-2-of-3
  schedlab suite my-suite.toml --out /tmp/mine";

/// Turn a clap error into the exit: help and version print normally (exit 0); `schedlab` with
/// no subcommand prints the help on stderr (exit 2); usage errors print clap's whole message,
/// usage and suggestions included (exit 2).
pub fn clap_exit(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // `schedlab` alone: the help, on stderr, and exit 2 (nothing was done).
            let _ = e.print();
            ExitCode::from(2)
        }
        _ => {
            // A usage error: clap's whole message (what is missing or wrong, its "did you
            // mean" tip, the usage line) as one line; a closed stderr is ignored.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "schedlab: {}", one_line_usage(&e));
            ExitCode::from(2)
        }
    }
}

/// Clap's usage error as one line: `message; tip (usage: …; see --help)`.
pub fn one_line_usage(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut out = String::new();
    let mut after_colon = false;
    let mut usage = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(u) = line.strip_prefix("Usage: ") {
            usage = Some(u.to_string());
        } else if line.starts_with("For more information") {
            continue;
        } else {
            let line = line.strip_prefix("error: ").unwrap_or(line);
            if !out.is_empty() {
                out.push_str(if after_colon { " " } else { "; " });
            }
            out.push_str(line);
            after_colon = line.ends_with(':');
        }
    }
    if let Some(u) = usage {
        out.push_str(&format!(" (usage: {u}; see --help)"));
    }
    out
}

//! Command-line definitions.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::bench::BenchArgs;
use crate::run::RunArgs;

/// Compare how tasks are handed to workers: strategies × workloads × engines.
#[derive(Debug, Parser)]
#[command(name = "schedlab", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

const EXAMPLES: &str = "Examples:
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
    Run(RunArgs),
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
}

const RUN_EXAMPLES: &str = "Examples:
  schedlab run --strategy 'central(chunk=4)' --workload 'constant(50us)' --tasks 20000 --workers 2 --json
  schedlab run --strategy spt --workload 'gamma(mean=100us,k=0.5)' --estimate-error 0.3 --tasks 5000 --workers 4 --kind sleep
  schedlab run --engine sim --topology 2x8 --strategy 'work-stealing(victim=numa)' --workload 'pareto(mean=100us,alpha=1.5)' --tasks 100000 --workers 16";

/// Turn a clap error into the exit: help and version print normally (exit 0); usage errors
/// print their first line (exit 2).
pub fn clap_exit(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        _ => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("schedlab: {first} (see schedlab --help)");
            ExitCode::from(2)
        }
    }
}

//! `schedlab report` and `schedlab compare`: turn results directories into figures and pages
//! (the drawing lives in the `reports` crate; this is the command-line glue).

use std::path::PathBuf;

use clap::Args;
use reports::ReportError;

use crate::CliError;

/// The flags of `schedlab report`.
#[derive(Clone, Debug, Args)]
pub struct ReportArgs {
    /// A results directory (holds runs.jsonl, e.g. results/quick).
    pub results_dir: PathBuf,
    /// Where to write index.html, summary.md and the figures [default: RESULTS_DIR/report].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The flags of `schedlab compare`.
#[derive(Clone, Debug, Args)]
pub struct CompareArgs {
    /// The baseline results directory.
    pub base: PathBuf,
    /// The results directory to compare against it (same suite).
    pub new: PathBuf,
    /// Where to write compare.html, compare.md and the change figure [default: NEW/compare].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn cli_error(what: &str, e: ReportError) -> CliError {
    match e {
        ReportError::Input(e) => CliError::Input(format!("{what}: {e}")),
        ReportError::Write(e) => CliError::Run(anyhow::anyhow!("writing the report: {e}")),
    }
}

/// `--out` must be a directory or not exist yet.
fn check_out(out: &std::path::Path) -> Result<(), CliError> {
    if out.exists() && !out.is_dir() {
        return Err(CliError::Input(format!(
            "--out: {} is a file; give a directory (created if missing)",
            out.display()
        )));
    }
    Ok(())
}

/// Run `schedlab report`.
pub fn report(args: &ReportArgs) -> Result<(), CliError> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.results_dir.join("report"));
    let suite = reports::suite::Suite::load(&args.results_dir)
        .map_err(|e| CliError::Input(format!("RESULTS_DIR: {e}")))?;
    check_out(&out)?;
    let r = reports::render(&suite, &out).map_err(|e| cli_error("RESULTS_DIR", e))?;
    for b in &r.bad {
        eprintln!(
            "schedlab: warning: {}: line {} left out: {}",
            reports::results::Layout::new(&args.results_dir)
                .runs_jsonl()
                .display(),
            b.line,
            b.error
        );
    }
    let n: usize = r.figures.iter().map(|(_, f)| f.len()).sum();
    let mut text = String::new();
    for (_, figs) in &r.figures {
        for note in figs.iter().flat_map(|f| &f.notes) {
            text.push_str(note);
            text.push('\n');
        }
    }
    text.push_str(&format!(
        "{n} figures, {} skipped (listed in the report); open {}\n",
        r.skipped.len(),
        r.index.display()
    ));
    crate::output::emit(&text, None)
}

/// Run `schedlab compare`.
pub fn compare(args: &CompareArgs) -> Result<(), CliError> {
    let load = |flag: &str, dir: &std::path::Path| {
        reports::suite::Suite::load(dir).map_err(|e| CliError::Input(format!("{flag}: {e}")))
    };
    let (base, new) = (load("BASE", &args.base)?, load("NEW", &args.new)?);
    let out = args.out.clone().unwrap_or_else(|| args.new.join("compare"));
    check_out(&out)?;
    let c = reports::compare::compare_suites(&base, &new, &out)
        .map_err(|e| cli_error("BASE/NEW", e))?;
    let (same, better, worse) = c.comparison.counts();
    let text = format!(
        "{}\n{same} no change, {better} improved, {worse} regressed; open {}\n",
        c.comparison.markdown(),
        c.html.display()
    );
    crate::output::emit(&text, None)
}

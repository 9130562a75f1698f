//! # reports — plotted reports for schedlab
//!
//! Turns a suite's results directory (`results/<suite>/runs.jsonl`, one [`results::RunRow`] per
//! line) into figures and an HTML/Markdown report, from the result files alone: nothing is rerun.
//!
//! - [`results`]: the results layout and row types (shared with the suite runner), tolerant
//!   reading, per-cell statistics with Student-t confidence intervals;
//! - [`suite`]: a loaded directory, the axes that vary and the grouping of cells;
//! - [`figures`]: one function per figure, each with a small options struct, writing SVG and
//!   PNG in the shared [`style`] (embedded DejaVu font, Okabe–Ito palette with hatches and
//!   markers); a figure the suite's axes cannot support is skipped with the reason;
//! - [`theory`]: Amdahl/Gustafson (with a least-squares fit of the serial fraction) and
//!   Erlang C, the reference curves;
//! - [`html`]: `index.html` (self-contained, every user string escaped) and `summary.md`;
//! - [`answer`]: the sentences that open a report: the best strategy per setting, where the
//!   ranking changes, and the comparisons the suite file names, each with its 95% CI;
//! - [`compare`]: the change per cell between two directories with its 95% CI;
//! - [`whatif`]: the page and figure of `schedlab whatif --out DIR`.
//!
//! [`report`] does it all for a directory; `schedlab report` and `schedlab compare` call it.
//!
//! ```
//! use reports::results::{Layout, Stat};
//! use reports::theory::{amdahl, fit_amdahl};
//! let layout = Layout::new("results/quick");
//! assert!(layout.runs_jsonl().ends_with("runs.jsonl"));
//! let s = Stat::of(&[1.0, 1.2, 1.1]);
//! assert!((s.mean - 1.1).abs() < 1e-12 && s.ci95 > 0.0);
//! let points: Vec<(f64, f64)> = [1.0, 2.0, 4.0, 8.0].iter().map(|&p| (p, amdahl(0.05, p))).collect();
//! assert!((fit_amdahl(&points).unwrap() - 0.05).abs() < 1e-9);
//! // A directory without runs is an input error that names the file.
//! let err = reports::report("no/such/dir".as_ref(), "out".as_ref()).unwrap_err();
//! assert!(err.to_string().contains("no/such/dir"));
//! ```
#![deny(missing_docs)]

pub mod answer;
pub mod compare;
pub mod figures;
pub mod html;
pub mod results;
pub mod style;
pub mod suite;
pub mod theory;
pub mod tuning;
pub mod whatif;

use std::path::{Path, PathBuf};

use results::{BadLine, Layout};
use suite::{LoadError, Suite};

/// What [`report`] wrote.
#[derive(Debug)]
pub struct Report {
    /// The output directory.
    pub out: PathBuf,
    /// `out/index.html`.
    pub index: PathBuf,
    /// `out/summary.md`.
    pub summary_md: PathBuf,
    /// Figures drawn, per matrix.
    pub figures: Vec<(String, Vec<figures::Figure>)>,
    /// Figures skipped: (matrix, figure, why).
    pub skipped: Vec<(String, String, String)>,
    /// Unreadable lines of runs.jsonl.
    pub bad: Vec<BadLine>,
}

/// Why a report could not be made.
#[derive(Debug)]
pub enum ReportError {
    /// Bad input: the results directory (exit 2).
    Input(LoadError),
    /// Writing the output failed (exit 1).
    Write(String),
}

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportError::Input(e) => write!(f, "{e}"),
            ReportError::Write(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ReportError {}

/// Render the report of the results directory `results` into `out`: one SVG and PNG per
/// figure, `index.html` and `summary.md`.
pub fn report(results: &Path, out: &Path) -> Result<Report, ReportError> {
    let suite = Suite::load(results).map_err(ReportError::Input)?;
    render(&suite, out)
}

/// Render the report of an already loaded suite into `out`.
pub fn render(suite: &Suite, out: &Path) -> Result<Report, ReportError> {
    let werr = |p: &Path, e: std::io::Error| ReportError::Write(format!("{}: {e}", p.display()));
    std::fs::create_dir_all(out).map_err(|e| werr(out, e))?;
    let mut matrices = Vec::new();
    let mut figures_out = Vec::new();
    let mut skipped_out = Vec::new();
    let answer = answer::answer(suite, &answer::asks_of(&suite.dir));
    // The matrix that answers the question first (the answer's order).
    for m in answer.order() {
        let (figs, skipped) = figures::render_matrix(suite, &m, out);
        if let Some((_, e)) = skipped
            .iter()
            .find(|(_, why)| why.starts_with("drawing failed"))
        {
            return Err(ReportError::Write(format!("matrix {m}: {e}")));
        }
        for (what, why) in &skipped {
            skipped_out.push((m.clone(), what.clone(), why.clone()));
        }
        figures_out.push((m.clone(), figs.clone()));
        matrices.push((html::table(suite, &m), figs, skipped));
    }
    let layout = Layout::new(&suite.dir);
    let raw: Vec<(String, String)> = [
        layout.runs_csv(),
        layout.runs_jsonl(),
        layout.summary_json(),
    ]
    .into_iter()
    .filter(|p| p.is_file())
    .map(|p| {
        let name = p
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        (name, html::href(&html::relative(&p, out)))
    })
    .collect();
    let page = html::Page {
        suite,
        matrices,
        raw,
        answer,
    };
    let index = out.join("index.html");
    std::fs::write(&index, html::index_html(&page)).map_err(|e| werr(&index, e))?;
    let summary_md = out.join("summary.md");
    std::fs::write(&summary_md, html::summary_md(&page)).map_err(|e| werr(&summary_md, e))?;
    Ok(Report {
        out: out.to_path_buf(),
        index,
        summary_md,
        figures: figures_out,
        skipped: skipped_out,
        bad: suite.bad.clone(),
    })
}

//! `schedlab compare BASE NEW`: the relative change per cell between two results directories of
//! the same suite, with its 95% confidence interval, and "no change" where the interval covers
//! zero (criterion's change report, for schedulers).

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::figures::{fmt_ns, wrap, Chart, Grid, Marks};
use crate::html::escape;
use crate::results::{t975, CellSummary, RunRow, Stat};
use crate::style::{
    color, draw_marker, err, render_both, text_width, Files, Marker, FONT, LABEL_PX, REFERENCE,
};
use crate::suite::{label, varying, Suite};
use crate::theory;
use crate::ReportError;

/// What the interval says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The 95% CI of the change covers zero.
    NoChange,
    /// Lower (better) with 95% confidence.
    Improved,
    /// Higher (worse) with 95% confidence.
    Regressed,
}

impl Verdict {
    /// As printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::NoChange => "no change",
            Verdict::Improved => "improved",
            Verdict::Regressed => "regressed",
        }
    }
}

/// One cell present in both directories.
#[derive(Clone, Debug)]
pub struct Change {
    /// Cell key.
    pub cell: String,
    /// Matrix.
    pub matrix: String,
    /// Strategy and the varying axes.
    pub label: String,
    /// `makespan` (closed arrivals) or `p99 latency` (open).
    pub metric: &'static str,
    /// The metric in BASE.
    pub base: Stat,
    /// The metric in NEW.
    pub new: Stat,
    /// `new / base − 1`.
    pub rel: f64,
    /// 95% CI half-width of `rel`: paired (Student t over the per-seed ratios) when both sides
    /// ran the same seeds, else Welch (Welch–Satterthwaite degrees of freedom).
    pub ci95: f64,
    /// Whether the interval is the paired one.
    pub paired: bool,
    /// The verdict.
    pub verdict: Verdict,
}

/// The comparison of two results directories.
#[derive(Clone, Debug)]
pub struct Comparison {
    /// BASE's name.
    pub base: String,
    /// NEW's name.
    pub new: String,
    /// Cells in both.
    pub changes: Vec<Change>,
    /// Cells only in BASE.
    pub only_base: Vec<String>,
    /// Cells only in NEW.
    pub only_new: Vec<String>,
}

/// Standard error of a mean from its CI half-width.
fn se(s: &Stat) -> f64 {
    if s.n < 2 {
        0.0
    } else {
        s.ci95 / t975(s.n - 1)
    }
}

/// The relative change `new/base − 1` and its 95% CI half-width.
pub fn relative_change(base: &Stat, new: &Stat) -> (f64, f64) {
    if base.mean <= 0.0 {
        return (0.0, 0.0);
    }
    let rel = new.mean / base.mean - 1.0;
    let (sb, sn) = (se(base), se(new));
    let var = sb * sb + sn * sn;
    if var == 0.0 {
        return (rel, 0.0);
    }
    let mut den = 0.0;
    if base.n >= 2 {
        den += sb.powi(4) / (base.n - 1) as f64;
    }
    if new.n >= 2 {
        den += sn.powi(4) / (new.n - 1) as f64;
    }
    let df = if den > 0.0 {
        (var * var / den).floor().max(1.0) as usize
    } else {
        1
    };
    (rel, t975(df) * var.sqrt() / base.mean)
}

/// The paired relative change: mean and 95% CI half-width of `new_i / base_i − 1` over pairs
/// (runs with the same seed, hence the same task set). `None` with fewer than 2 pairs.
pub fn paired_change(pairs: &[(f64, f64)]) -> Option<(f64, f64)> {
    if pairs.len() < 2 || pairs.iter().any(|p| p.0 <= 0.0) {
        return None;
    }
    let d: Vec<f64> = pairs.iter().map(|(b, n)| n / b - 1.0).collect();
    let s = Stat::of(&d);
    Some((s.mean, s.ci95))
}

/// The relative change `new/base − 1` of `value` between two sets of runs, its 95% CI
/// half-width, and whether runs were paired: when both sets hold the same distinct seeds
/// (the same task sets), runs are paired by seed; otherwise the summaries `stats` are compared
/// as independent samples (Welch).
pub fn change_of_rows(
    base: &[&RunRow],
    new: &[&RunRow],
    value: impl Fn(&RunRow) -> f64,
    stats: (&Stat, &Stat),
) -> (f64, f64, bool) {
    let mut bseeds: Vec<u64> = base.iter().map(|r| r.seed).collect();
    let mut nseeds: Vec<u64> = new.iter().map(|r| r.seed).collect();
    bseeds.sort_unstable();
    nseeds.sort_unstable();
    let unique = bseeds.windows(2).all(|w| w[0] != w[1]);
    let pairs: Vec<(f64, f64)> = if unique && bseeds == nseeds {
        base.iter()
            .filter_map(|x| {
                let y = new.iter().find(|y| y.seed == x.seed)?;
                Some((value(x), value(y)))
            })
            .collect()
    } else {
        Vec::new()
    };
    match paired_change(&pairs) {
        Some((rel, ci)) => (rel, ci, true),
        None => {
            let (rel, ci) = relative_change(stats.0, stats.1);
            (rel, ci, false)
        }
    }
}

/// Compare `new` against `base`, cell by cell (matched by cell key). When both sides ran the
/// same seeds for a cell, runs are paired by seed (the same task set on both sides), which
/// removes the workload-to-workload variance from the interval; otherwise the two sides are
/// compared as independent samples (Welch).
pub fn compare(base: &Suite, new: &Suite) -> Comparison {
    let open = |c: &CellSummary| theory::poisson_rate(&c.coords.arrivals).is_some();
    let metric_of = |c: &CellSummary| {
        if open(c) {
            ("p99 latency", c.p99_ns)
        } else {
            ("makespan", c.makespan_ns)
        }
    };
    let value = |open: bool, r: &RunRow| {
        if open {
            r.report.latency_ns.p99 as f64
        } else {
            r.report.makespan_ns as f64
        }
    };
    let mut changes = Vec::new();
    let mut only_base = Vec::new();
    for m in base.matrices() {
        let cells = base.cells_of(&m);
        let axes = varying(&cells);
        for b in cells {
            let Some(n) = new
                .cells
                .iter()
                .find(|c| c.cell == b.cell && c.matrix == b.matrix)
            else {
                only_base.push(b.cell.clone());
                continue;
            };
            let (metric, bs) = metric_of(b);
            let (_, ns) = metric_of(n);
            let is_open = open(b);
            let (rel, ci95, paired) = change_of_rows(
                &base.rows_of(b),
                &new.rows_of(n),
                |r| value(is_open, r),
                (&bs, &ns),
            );
            let verdict = if rel.abs() <= ci95 {
                Verdict::NoChange
            } else if rel < 0.0 {
                Verdict::Improved
            } else {
                Verdict::Regressed
            };
            // The varying axes first, the strategy last (long specs get cut at the end).
            let others = label(&b.coords, &axes, &[crate::suite::Axis::Strategy]);
            let label = if others == "all" {
                b.coords.strategy.clone()
            } else {
                format!("{others} · {}", b.coords.strategy)
            };
            changes.push(Change {
                cell: b.cell.clone(),
                matrix: m.clone(),
                label,
                metric,
                base: bs,
                new: ns,
                rel,
                ci95,
                paired,
                verdict,
            });
        }
    }
    let only_new = new
        .cells
        .iter()
        .filter(|c| {
            !base
                .cells
                .iter()
                .any(|b| b.cell == c.cell && b.matrix == c.matrix)
        })
        .map(|c| c.cell.clone())
        .collect();
    Comparison {
        base: base.name(),
        new: new.name(),
        changes,
        only_base,
        only_new,
    }
}

fn pct(x: f64) -> String {
    if (x * 100.0).abs() < 0.05 {
        "0%".into()
    } else {
        format!("{:+.1}%", x * 100.0)
    }
}

impl Comparison {
    /// The change table as Markdown (also what the CLI prints).
    pub fn markdown(&self) -> String {
        let mut m = format!("# Compare: {} (base) → {} (new)\n\n", self.base, self.new);
        for a in self.answer() {
            let _ = writeln!(m, "- {a}");
        }
        m.push('\n');
        m.push_str("| matrix | cell | metric | base | new | change | 95% CI | verdict |\n|---|---|---|---:|---:|---:|---:|---|\n");
        let paired = self.changes.iter().filter(|c| c.paired).count();
        for c in &self.changes {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} | {} | ±{:.1}% | {} |",
                c.matrix.replace('|', "\\|"),
                c.label.replace('|', "\\|"),
                c.metric,
                fmt_ns(c.base.mean),
                fmt_ns(c.new.mean),
                pct(c.rel),
                c.ci95 * 100.0,
                c.verdict.as_str()
            );
        }
        let _ = writeln!(
            m,
            "\nChange = new/base − 1 of the mean; 95% CI paired by seed for {paired} of {} cells (same seeds on both sides), Welch otherwise; \"no change\" where the CI covers zero.",
            self.changes.len()
        );
        for (what, list) in [
            ("Only in base", &self.only_base),
            ("Only in new", &self.only_new),
        ] {
            if !list.is_empty() {
                let _ = writeln!(m, "\n{what} ({}): {}", list.len(), list.join("; "));
            }
        }
        m
    }

    /// The sentences that open the compare page: what changed, by how much (each with its 95%
    /// CI), and what did not.
    pub fn answer(&self) -> Vec<String> {
        let mut out = Vec::new();
        let n = self.changes.len();
        let strategy = |c: &Change| {
            c.label
                .rsplit_once(" · ")
                .map_or(c.label.clone(), |(_, s)| s.to_string())
        };
        for verdict in [Verdict::Regressed, Verdict::Improved] {
            let moved: Vec<&Change> = self
                .changes
                .iter()
                .filter(|c| c.verdict == verdict)
                .collect();
            if moved.is_empty() {
                continue;
            }
            let mut names: Vec<String> = Vec::new();
            for c in &moved {
                let s = strategy(c);
                if !names.contains(&s) {
                    names.push(s);
                }
            }
            let lo = moved
                .iter()
                .map(|c| c.rel.abs())
                .fold(f64::INFINITY, f64::min);
            let top = moved
                .iter()
                .max_by(|a, b| a.rel.abs().total_cmp(&b.rel.abs()))
                .expect("not empty");
            let range = if moved.len() == 1 {
                String::new()
            } else {
                format!(" by {:.1}% to {:.1}%;", lo * 100.0, top.rel.abs() * 100.0)
            };
            out.push(format!(
                "{} of {n} cells {} ({}):{range} the largest change is {} {} at {}{} ({} → {}, 95% CI ±{:.1}%).",
                moved.len(),
                verdict.as_str(),
                names.join(", "),
                pct(top.rel),
                top.metric,
                if self.changes.iter().any(|c| c.matrix != top.matrix) {
                    format!("{}: ", top.matrix)
                } else {
                    String::new()
                },
                top.label,
                fmt_ns(top.base.mean),
                fmt_ns(top.new.mean),
                top.ci95 * 100.0
            ));
        }
        let same: Vec<&Change> = self
            .changes
            .iter()
            .filter(|c| c.verdict == Verdict::NoChange)
            .collect();
        if !same.is_empty() {
            let widest = same.iter().map(|c| c.rel.abs()).fold(0.0, f64::max);
            out.push(format!(
                "{} of {n} cells did not change (each 95% CI covers zero; the largest of their changes is {:.1}%).",
                same.len(),
                widest * 100.0
            ));
        }
        if !self.only_base.is_empty() || !self.only_new.is_empty() {
            out.push(format!(
                "{} cells only in base, {} only in new (not compared).",
                self.only_base.len(),
                self.only_new.len()
            ));
        }
        out
    }

    /// Counts of (no change, improved, regressed).
    pub fn counts(&self) -> (usize, usize, usize) {
        let n = |v| self.changes.iter().filter(|c| c.verdict == v).count();
        (
            n(Verdict::NoChange),
            n(Verdict::Improved),
            n(Verdict::Regressed),
        )
    }
}

/// Size of the change figure's row labels.
const ROW_LABEL_PX: u32 = LABEL_PX - 1;

/// The row labels of the change figure, each as the lines it is drawn on, and the pixel width of
/// the widest line. A label is `matrix: cell label [verdict]` in full (the matrix only when the
/// comparison spans several); one wider than `max_w` pixels is wrapped (after its " · "
/// separators, commas, parentheses and `=` signs, see [`wrap`]) until every line fits.
pub fn row_labels(cmp: &Comparison, max_w: u32) -> (Vec<Vec<String>>, u32) {
    let many = cmp
        .changes
        .iter()
        .any(|c| c.matrix != cmp.changes[0].matrix);
    let mut widest = 0;
    let labels = cmp
        .changes
        .iter()
        .map(|c| {
            let full = format!(
                "{}{} [{}]",
                if many {
                    format!("{}: ", c.matrix)
                } else {
                    String::new()
                },
                c.label,
                c.verdict.as_str()
            );
            let mut chars = full.chars().count();
            let mut lines = vec![full.clone()];
            while chars > 8 && lines.iter().any(|l| text_width(l, ROW_LABEL_PX) > max_w) {
                chars = chars * 9 / 10;
                lines = wrap(&full, chars);
            }
            widest = lines
                .iter()
                .map(|l| text_width(l, ROW_LABEL_PX))
                .fold(widest, u32::max);
            lines
        })
        .collect();
    (labels, widest)
}

/// The change figure: one row per cell, its relative change with the 95% CI, a line at zero.
/// The label area on the left is as wide as the widest label (at most 55% of the figure; longer
/// labels wrap onto more lines and their rows grow), so no label is cut at the edge.
pub fn change_figure(cmp: &Comparison, dir: &Path) -> Result<Files, String> {
    let n = cmp.changes.len().max(1);
    let width = 1100u32;
    let (labels, widest) = row_labels(cmp, width * 55 / 100);
    let lines = labels.iter().map(Vec::len).max().unwrap_or(1) as u32;
    let line_h = ROW_LABEL_PX + 3;
    let pitch = (line_h * lines + 8).max(26);
    let size = (width, (110 + pitch * n as u32).min(12_000));
    let span = cmp
        .changes
        .iter()
        .map(|c| c.rel.abs() + c.ci95)
        .fold(0.01, f64::max)
        * 1.2;
    let title = format!("Change {} → {} (95% CI)", cmp.base, cmp.new);
    let percent = |x: &f64| pct(*x);
    let axes = Chart::titled(&title)
        .areas(40, widest.max(100) + 16)
        .text(LABEL_PX, LABEL_PX + 1)
        .grid(Grid::Vertical)
        .y_ticks(0)
        .x_fmt(&percent)
        .x_desc("relative change new / base − 1 (negative = faster)");
    render_both!(dir, "change", size, |root| {
        let mut chart = axes.build(&root, -span..span, -0.5f64..n as f64 - 0.5)?;
        chart.segment(
            (0.0, -0.5),
            (0.0, n as f64 - 0.5),
            REFERENCE.stroke_width(2),
        )?;
        let right = TextStyle::from((FONT, ROW_LABEL_PX).into_font())
            .pos(Pos::new(HPos::Right, VPos::Center));
        for (i, (c, lines)) in cmp.changes.iter().zip(&labels).enumerate() {
            let y = (n - 1 - i) as f64;
            let (col, m) = match c.verdict {
                Verdict::NoChange => (REFERENCE, Marker::Ring),
                Verdict::Improved => (color(0), Marker::Circle),
                Verdict::Regressed => (color(3), Marker::Triangle),
            };
            if c.ci95 > 0.0 {
                chart.segment(
                    (c.rel - c.ci95, y),
                    (c.rel + c.ci95, y),
                    col.stroke_width(2),
                )?;
            }
            draw_marker(chart.plotting_area(), (c.rel, y), m, col)?;
            let p = chart.backend_coord(&(-span, y));
            // The lines centred on the row.
            let top = p.1 - (line_h as i32 * (lines.len() as i32 - 1)) / 2;
            for (k, line) in lines.iter().enumerate() {
                root.draw(&Text::new(
                    line.clone(),
                    (p.0 - 8, top + k as i32 * line_h as i32),
                    right.clone(),
                ))
                .map_err(err)?;
            }
        }
        Ok::<(), String>(())
    })
}

/// The compare page.
pub fn compare_html(cmp: &Comparison, figure: &Files) -> String {
    let (same, better, worse) = cmp.counts();
    let mut h = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>schedlab compare: {b} → {n}</title>\n<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}table{{border-collapse:collapse;font-size:.9em}}th,td{{border:1px solid #ddd;padding:.3em .6em;text-align:right}}td.l{{text-align:left}}.improved{{background:#e6f0fa}}.regressed{{background:#fbe9e0}}img{{max-width:100%}}ul.answer{{background:#f3f7fc;border:1px solid #c9d8ec;padding:.6em 2em;font-size:1.05em}}</style></head><body>\n<h1>Compare: {b} (base) → {n} (new)</h1>\n<ul class=\"answer\">\n",
        b = escape(&cmp.base),
        n = escape(&cmp.new)
    );
    for a in cmp.answer() {
        let _ = writeln!(h, "<li>{}</li>", escape(&a));
    }
    let _ = writeln!(h, "</ul>\n<p>{same} cells with no change (the 95% CI of the change covers zero), {better} improved, {worse} regressed.</p>");
    let png = figure
        .png
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let _ = writeln!(h, "<figure><img src=\"{}\" alt=\"relative change per cell\"><figcaption>Each row is a cell; the marker is the relative change of its metric (makespan for closed workloads, p99 latency for open arrivals) from base to new, the bar its 95% confidence interval (paired by seed where both sides ran the same seeds, Welch otherwise). A bar that crosses the zero line is no change.</figcaption></figure>", escape(&png));
    h.push_str("<table><tr><th>matrix</th><th>cell</th><th>metric</th><th>base</th><th>new</th><th>change</th><th>95% CI</th><th>verdict</th></tr>\n");
    for c in &cmp.changes {
        let class = match c.verdict {
            Verdict::NoChange => "",
            Verdict::Improved => "improved",
            Verdict::Regressed => "regressed",
        };
        let _ = writeln!(
            h,
            "<tr class=\"{class}\"><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{} ± {}</td><td>{} ± {}</td><td>{}</td><td>±{:.1}%</td><td>{}</td></tr>",
            escape(&c.matrix),
            escape(&c.label),
            c.metric,
            fmt_ns(c.base.mean),
            fmt_ns(c.base.ci95),
            fmt_ns(c.new.mean),
            fmt_ns(c.new.ci95),
            pct(c.rel),
            c.ci95 * 100.0,
            c.verdict.as_str()
        );
    }
    h.push_str("</table>\n");
    for (what, list) in [
        ("Only in base", &cmp.only_base),
        ("Only in new", &cmp.only_new),
    ] {
        if !list.is_empty() {
            let _ = writeln!(h, "<p>{what}: {}</p>", escape(&list.join("; ")));
        }
    }
    h.push_str("</body></html>\n");
    h
}

/// What [`compare_dirs`] wrote.
#[derive(Debug)]
pub struct CompareOutput {
    /// The comparison.
    pub comparison: Comparison,
    /// `out/compare.html`.
    pub html: std::path::PathBuf,
    /// `out/compare.md`.
    pub markdown: std::path::PathBuf,
    /// The change figure.
    pub figure: Files,
}

/// Load two results directories, compare them and write `compare.html`, `compare.md` and the
/// `change` figure into `out`.
pub fn compare_dirs(base: &Path, new: &Path, out: &Path) -> Result<CompareOutput, ReportError> {
    let b = Suite::load(base).map_err(ReportError::Input)?;
    let n = Suite::load(new).map_err(ReportError::Input)?;
    compare_suites(&b, &n, out)
}

/// [`compare_dirs`] for suites already loaded.
pub fn compare_suites(b: &Suite, n: &Suite, out: &Path) -> Result<CompareOutput, ReportError> {
    let cmp = compare(b, n);
    let werr = |p: &Path, e: std::io::Error| ReportError::Write(format!("{}: {e}", p.display()));
    std::fs::create_dir_all(out).map_err(|e| werr(out, e))?;
    let figure = change_figure(&cmp, out).map_err(ReportError::Write)?;
    let html = out.join("compare.html");
    std::fs::write(&html, compare_html(&cmp, &figure)).map_err(|e| werr(&html, e))?;
    let markdown = out.join("compare.md");
    std::fs::write(&markdown, cmp.markdown()).map_err(|e| werr(&markdown, e))?;
    Ok(CompareOutput {
        comparison: cmp,
        html,
        markdown,
        figure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_stats_are_no_change_and_a_shift_is_a_change() {
        let s = Stat::of(&[100.0, 102.0, 98.0, 101.0, 99.0]);
        let (rel, ci) = relative_change(&s, &s);
        assert_eq!(rel, 0.0);
        assert!(ci > 0.0 && rel.abs() <= ci);
        let slow = Stat::of(&[120.0, 122.0, 118.0, 121.0, 119.0]);
        let (rel, ci) = relative_change(&s, &slow);
        assert!((rel - 0.2).abs() < 1e-12 && rel > ci, "{rel} ± {ci}");
    }
}

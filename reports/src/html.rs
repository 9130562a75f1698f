//! `index.html` and `summary.md`: the summary table (best per row marked, others as
//! "+x% vs best"), the run's provenance, every figure with its caption, and the raw files.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use crate::answer::{self, Answer};
use crate::figures::{fmt_ns, Figure};
use crate::results::{BadLine, SuiteMeta};
use crate::suite::Suite;

/// Escape `s` for HTML text and attribute values.
///
/// ```
/// assert_eq!(reports::html::escape("<script>&\"'"), "&lt;script&gt;&amp;&quot;&#39;");
/// ```
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escape `s` for a Markdown table cell.
fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// One cell of the summary table.
#[derive(Clone, Debug, PartialEq)]
pub struct TableCell {
    /// The value the row is ranked by (makespan for closed arrivals, p99 latency for open).
    pub primary: f64,
    /// Its 95% CI half-width.
    pub primary_ci: f64,
    /// Mean efficiency.
    pub efficiency: f64,
    /// Mean LIF.
    pub lif: f64,
    /// Mean p99 latency, ns.
    pub p99: f64,
    /// The best (lowest) `primary` of its row.
    pub best: bool,
    /// `primary / best − 1`.
    pub vs_best: f64,
    /// Whether the gap to the best is outside the noise: the 95% CI of the relative difference
    /// excludes zero (paired by seed where both cells ran the same seeds, else Welch). Always
    /// false for the best.
    pub clear: bool,
}

/// One row: a workload (and the other varying axes) across strategies.
#[derive(Clone, Debug, PartialEq)]
pub struct TableRow {
    /// The row's label.
    pub label: String,
    /// `makespan` or `p99 latency`.
    pub ranked_by: &'static str,
    /// One entry per strategy of the table (`None` where that strategy did not run).
    pub cells: Vec<Option<TableCell>>,
}

/// A matrix's summary table.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// The matrix.
    pub matrix: String,
    /// Column headers.
    pub strategies: Vec<String>,
    /// Rows.
    pub rows: Vec<TableRow>,
    /// Settings shown once because an axis made no difference there, e.g. "topology made no
    /// difference for P ≤ 64".
    pub notes: Vec<String>,
}

/// The summary table of `matrix`: one row per setting, where settings equal within noise
/// along an axis are one row ([`answer::regimes`]), with what was merged in [`Table::notes`].
pub fn table(suite: &Suite, matrix: &str) -> Table {
    let rs = answer::regimes(suite, matrix, None);
    let metric = rs.metric;
    let rows = rs
        .regimes
        .iter()
        .map(|r| {
            let g = &r.cells;
            let best = g
                .iter()
                .map(|c| metric.stat(c).mean)
                .fold(f64::INFINITY, f64::min);
            let best_cell = *g
                .iter()
                .find(|c| metric.stat(c).mean <= best)
                .unwrap_or(&g[0]);
            let cells = rs
                .strategies
                .iter()
                .map(|s| {
                    g.iter().find(|c| &c.coords.strategy == s).map(|c| {
                        let p = metric.stat(c);
                        TableCell {
                            primary: p.mean,
                            primary_ci: p.ci95,
                            efficiency: c.efficiency.mean,
                            lif: c.lif.mean,
                            p99: c.p99_ns.mean,
                            best: p.mean <= best,
                            vs_best: if best > 0.0 { p.mean / best - 1.0 } else { 0.0 },
                            clear: p.mean > best
                                && answer::gap(suite, metric, best_cell, c).clear(),
                        }
                    })
                })
                .collect();
            TableRow {
                label: r.label(&rs.axes),
                ranked_by: metric.name(),
                cells,
            }
        })
        .collect();
    Table {
        matrix: matrix.to_string(),
        strategies: rs.strategies.clone(),
        rows,
        notes: rs.notes.clone(),
    }
}

/// One matrix's table, figures, and skipped figures with the reason.
pub type MatrixPage = (Table, Vec<Figure>, Vec<(String, String)>);

/// Everything the report pages show.
pub struct Page<'a> {
    /// The suite.
    pub suite: &'a Suite,
    /// Per matrix: its table, figures, and skipped figures with the reason.
    pub matrices: Vec<MatrixPage>,
    /// Links to raw files: (label, href relative to the page).
    pub raw: Vec<(String, String)>,
    /// The answer to the suite's question, shown first.
    pub answer: Answer,
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1300px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ddd}
.question{font-size:1.15em;color:#333}.meta{color:#555;font-size:.92em}.meta code{background:#f4f4f4;padding:0 .3em}
.scroll{overflow-x:auto}table{border-collapse:collapse;margin:1em 0;font-size:.84em;width:100%}.nw{white-space:nowrap}th,td{border:1px solid #ddd;padding:.35em .6em;text-align:right;vertical-align:top}
th{background:#f4f4f4}td.label{text-align:left}td.best{background:#e8f3ea;font-weight:600}.small{color:#666;font-size:.85em;font-weight:400}
figure{margin:1.5em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}figcaption{color:#444;font-size:.92em;max-width:900px}
.answer{background:#f3f7fc;border:1px solid #c9d8ec;padding:.2em 1.2em .6em;margin:1em 0}.answer h2{margin-top:.4em;border:0}.answer ul{margin:.2em 0 .6em}.answer li{margin:.15em 0}.am{margin:.5em 0 0;font-weight:600}p.note{color:#444;font-size:.92em}
.warn{background:#fff4e0;border:1px solid #e0b060;padding:.6em 1em}ul.skipped{color:#555;font-size:.92em}";

fn pct(x: f64) -> String {
    format!("+{:.1}%", x * 100.0)
}

/// Render `index.html`.
pub fn index_html(page: &Page<'_>) -> String {
    let s = page.suite;
    let name = s.name();
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>schedlab report: {}</title>\n<style>{CSS}</style></head><body>\n<h1>Suite: {}</h1>\n",
        escape(&name),
        escape(&name)
    );
    if let Some(q) = s
        .meta
        .as_ref()
        .map(|m| &m.question)
        .filter(|q| !q.is_empty())
    {
        let _ = writeln!(h, "<p class=\"question\">{}</p>", escape(q));
    }
    answer_html(&mut h, &page.answer);
    match &s.meta {
        Some(m) => meta_html(&mut h, m, s),
        None => {
            let _ = writeln!(h, "<p class=\"meta\">No meta.json: when and where the suite ran is unknown. {} runs.</p>", s.rows.len());
        }
    }
    if !s.bad.is_empty() {
        let _ = writeln!(
            h,
            "<div class=\"warn\"><strong>{} line(s) of runs.jsonl could not be read and are left out:</strong><ul>",
            s.bad.len()
        );
        for b in s.bad.iter().take(50) {
            let _ = writeln!(h, "<li>line {}: {}</li>", b.line, escape(&b.error));
        }
        if s.bad.len() > 50 {
            let _ = writeln!(h, "<li>… and {} more</li>", s.bad.len() - 50);
        }
        h.push_str("</ul></div>\n");
    }
    if !page.raw.is_empty() {
        h.push_str("<p class=\"meta\">Raw data: ");
        let links: Vec<String> = page
            .raw
            .iter()
            .map(|(l, href)| format!("<a href=\"{}\">{}</a>", escape(href), escape(l)))
            .collect();
        h.push_str(&links.join(" · "));
        h.push_str(" · <a href=\"summary.md\">summary.md</a></p>\n");
    }
    if page.matrices.len() > 1 {
        h.push_str("<p class=\"meta\">Matrices: ");
        let toc: Vec<String> = page
            .matrices
            .iter()
            .enumerate()
            .map(|(i, (t, figs, _))| {
                format!(
                    "<a href=\"#m{i}\">{}</a> ({} figures)",
                    escape(&t.matrix),
                    figs.len()
                )
            })
            .collect();
        h.push_str(&toc.join(" · "));
        h.push_str("</p>\n");
    }
    for (i, (t, figs, skipped)) in page.matrices.iter().enumerate() {
        let _ = writeln!(h, "<h2 id=\"m{i}\">Matrix: {}</h2>", escape(&t.matrix));
        table_html(&mut h, t);
        for f in figs {
            let png = file_name(&f.files.png);
            let svg = file_name(&f.files.svg);
            let _ = writeln!(
                h,
                "<figure id=\"{}\"><a href=\"{}\"><img src=\"{}\" alt=\"{}\"></a>\n<figcaption><strong>{}.</strong> {} <a href=\"{}\">SVG</a></figcaption></figure>",
                escape(&f.name),
                escape(&svg),
                escape(&png),
                escape(&f.title),
                escape(&f.title),
                escape(&f.caption),
                escape(&svg)
            );
        }
        if !skipped.is_empty() {
            h.push_str(
                "<p class=\"meta\">Figures not drawn for this matrix:</p><ul class=\"skipped\">\n",
            );
            for (what, why) in skipped {
                let _ = writeln!(h, "<li>{}: {}</li>", escape(what), escape(why));
            }
            h.push_str("</ul>\n");
        }
    }
    h.push_str("<p class=\"meta\">Made by <code>schedlab report</code> from the result files alone; nothing was rerun.</p>\n</body></html>\n");
    h
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The answer box: per matrix, its sentences; then how they were computed.
fn answer_html(h: &mut String, a: &Answer) {
    h.push_str("<section class=\"answer\"><h2>Answer</h2>\n");
    for (i, m) in a.matrices.iter().enumerate() {
        let _ = writeln!(
            h,
            "<p class=\"am\"><a href=\"#m{i}\">{}</a></p><ul>",
            escape(&m.matrix)
        );
        for s in &m.sentences {
            let _ = writeln!(h, "<li>{}</li>", escape(s));
        }
        h.push_str("</ul>\n");
    }
    let _ = writeln!(h, "<p class=\"small\">{}</p></section>", escape(&a.method));
}

/// The answer as Markdown.
pub fn answer_md(a: &Answer) -> String {
    let mut m = String::from("## Answer\n\n");
    for am in &a.matrices {
        let _ = writeln!(m, "**{}**\n", md(&am.matrix));
        for s in &am.sentences {
            let _ = writeln!(m, "- {}", s.replace('\n', " "));
        }
        m.push('\n');
    }
    let _ = writeln!(m, "_{}_\n", a.method);
    m
}

fn meta_html(h: &mut String, m: &SuiteMeta, s: &Suite) {
    let _ = writeln!(
        h,
        "<p class=\"meta\">Ran {} → {} on <strong>{}</strong> ({} cpus, {} NUMA node(s), topology: {}), schedlab {}; {} runs in {} cells.<br>Command: <code>{}</code></p>",
        escape(&m.started_at),
        escape(m.finished_at.as_deref().unwrap_or("(unfinished)")),
        escape(&m.hostname),
        m.cpus,
        m.nodes,
        escape(&m.topology_source),
        escape(&m.version),
        s.rows.len(),
        s.cells.len(),
        escape(&m.command)
    );
}

fn table_html(h: &mut String, t: &Table) {
    h.push_str("<div class=\"scroll\"><table><thead><tr><th>workload / setting</th>");
    for s in &t.strategies {
        // Let long specs break after '(' and commas rather than widen the column.
        let breakable = escape(s).replace('(', "(<wbr>").replace(',', ",<wbr>");
        let _ = write!(h, "<th>{breakable}</th>");
    }
    h.push_str("</tr></thead><tbody>\n");
    for r in &t.rows {
        let _ = write!(
            h,
            "<tr><td class=\"label\">{}<br><span class=\"small\">ranked by {}</span></td>",
            escape(&r.label).replace(',', ",<wbr>"),
            r.ranked_by
        );
        for c in &r.cells {
            match c {
                None => h.push_str("<td>—</td>"),
                Some(c) => {
                    let rank = if c.best {
                        "★ best".to_string()
                    } else if c.clear {
                        format!("{} vs best", pct(c.vs_best))
                    } else {
                        format!(
                            "{} vs best <span class=\"small\">(within noise)</span>",
                            pct(c.vs_best)
                        )
                    };
                    let _ = write!(
                        h,
                        "<td class=\"{}\"><span class=\"nw\">{} ± {}</span><br>{}<br><span class=\"small\"><span class=\"nw\">eff {:.3}</span> · <span class=\"nw\">LIF {:.3}</span> · <span class=\"nw\">p99 {}</span></span></td>",
                        if c.best { "best" } else { "" },
                        fmt_ns(c.primary),
                        fmt_ns(c.primary_ci),
                        rank,
                        c.efficiency,
                        c.lif,
                        fmt_ns(c.p99)
                    );
                }
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n");
    for n in &t.notes {
        let _ = writeln!(h, "<p class=\"note\">Shown once: {}.</p>", escape(n));
    }
    h.push_str("<p class=\"meta\">Each cell: mean ± 95% CI half-width over repetitions of the ranking metric (makespan for closed workloads, p99 latency for open arrivals; lower is better), the best of the row marked ★, the others as how much worse than the best (\"within noise\" when the 95% CI of the difference covers zero; runs with the same seed, hence the same task set, are compared in pairs); below: efficiency (lower bound / makespan, 1 = ideal), LIF (max busy / mean busy, 1 = balanced) and p99 latency.</p>\n");
}

/// The Markdown table of `t`.
pub fn table_md(t: &Table) -> String {
    let mut m = String::new();
    let _ = write!(m, "| workload / setting |");
    for s in &t.strategies {
        let _ = write!(m, " {} |", md(s));
    }
    m.push('\n');
    m.push_str("|---|");
    for _ in &t.strategies {
        m.push_str("---:|");
    }
    m.push('\n');
    for r in &t.rows {
        let _ = write!(m, "| {} (by {}) |", md(&r.label), r.ranked_by);
        for c in &r.cells {
            match c {
                None => m.push_str(" — |"),
                Some(c) => {
                    let rank = if c.best {
                        "**best**".to_string()
                    } else if c.clear {
                        pct(c.vs_best)
                    } else {
                        format!("{} (within noise)", pct(c.vs_best))
                    };
                    let _ = write!(
                        m,
                        " {} ± {} {} (eff {:.3}, LIF {:.3}, p99 {}) |",
                        fmt_ns(c.primary),
                        fmt_ns(c.primary_ci),
                        rank,
                        c.efficiency,
                        c.lif,
                        fmt_ns(c.p99)
                    );
                }
            }
        }
        m.push('\n');
    }
    m
}

/// Render `summary.md`.
pub fn summary_md(page: &Page<'_>) -> String {
    let s = page.suite;
    let mut m = format!("# Suite: {}\n\n", md(&s.name()));
    if let Some(meta) = &s.meta {
        if !meta.question.is_empty() {
            let _ = writeln!(m, "{}\n", meta.question);
        }
        let _ = writeln!(
            m,
            "Ran {} on {} ({} cpus, {} nodes, topology {}), schedlab {}: `{}`\n",
            meta.started_at,
            meta.hostname,
            meta.cpus,
            meta.nodes,
            meta.topology_source,
            meta.version,
            meta.command
        );
    }
    m.push_str(&answer_md(&page.answer));
    if !s.bad.is_empty() {
        let lines: Vec<String> = s.bad.iter().map(|b: &BadLine| b.line.to_string()).collect();
        let _ = writeln!(
            m,
            "**Left out unreadable lines of runs.jsonl:** {}\n",
            lines.join(", ")
        );
    }
    for (t, figs, skipped) in &page.matrices {
        let _ = writeln!(m, "## {}\n", md(&t.matrix));
        m.push_str(&table_md(t));
        for n in &t.notes {
            let _ = writeln!(m, "\nShown once: {n}.");
        }
        m.push_str("\nMean ± 95% CI of makespan (closed) or p99 latency (open arrivals); lower is better.\n\n");
        for f in figs {
            let _ = writeln!(m, "![{}]({})", md(&f.title), file_name(&f.files.png));
        }
        for (what, why) in skipped {
            let _ = writeln!(m, "\n- not drawn: {what}: {why}");
        }
        m.push('\n');
    }
    m
}

/// `target` relative to the directory `base` (both made absolute first), with `/` separators.
pub fn relative(target: &Path, base: &Path) -> PathBuf {
    let abs = |p: &Path| {
        std::fs::canonicalize(p)
            .unwrap_or_else(|_| std::env::current_dir().unwrap_or_default().join(p))
    };
    let (t, b) = (abs(target), abs(base));
    let tc: Vec<Component> = t.components().collect();
    let bc: Vec<Component> = b.components().collect();
    let common = tc.iter().zip(&bc).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..bc.len() {
        out.push("..");
    }
    for c in &tc[common..] {
        out.push(c);
    }
    out
}

/// A path as an href: `/` separators, unsafe bytes percent-encoded.
pub fn href(p: &Path) -> String {
    let s = p.to_string_lossy().replace('\\', "/");
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_./~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

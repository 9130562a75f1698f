//! The report from a small sim fixture: every figure renders (PNGs decode at their size, SVGs
//! parse and name their axes and strategies), the HTML links only to files that exist and
//! escapes user strings, bad lines are named, and compare tells no change from a change.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use reports::compare::{compare, Verdict};
use reports::figures::{self, GanttOptions};
use reports::results::{Layout, RunRow};
use reports::suite::Suite;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("reports-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The fixture rows (3 repetitions of every cell), made once per test binary.
fn fixture() -> &'static [RunRow] {
    static ROWS: OnceLock<Vec<RunRow>> = OnceLock::new();
    ROWS.get_or_init(|| common::rows("fixture", &common::cells(), 3))
}

/// Figure kind suffix, an axis label its SVG must contain.
const AXIS_LABELS: &[(&str, &str)] = &[
    ("-lif", "LIF = max busy / mean busy"),
    ("-efficiency", "lower bound / makespan"),
    ("-latency-cdf", "latency (completion"),
    ("-per-worker", "busy time"),
    ("-gantt", "time since the run began"),
    ("-scaling", "workers P"),
    ("-queueing", "utilisation"),
    ("-estimates", "estimate error"),
    ("-heterogeneous", "share of total speed"),
];

#[test]
fn every_figure_renders_to_valid_svg_and_png() {
    let dir = tmp("figures");
    common::write_results(
        &dir.join("results"),
        "fixture",
        "Which strategy balances best?",
        fixture(),
    );
    let out = dir.join("report");
    let r = reports::report(&dir.join("results"), &out).unwrap();
    let all: Vec<&figures::Figure> = r.figures.iter().flat_map(|(_, f)| f).collect();
    // Every kind of figure is drawn for some matrix of the fixture.
    for (suffix, _) in AXIS_LABELS {
        assert!(
            all.iter().any(|f| f.name.ends_with(suffix)),
            "no {suffix} figure; skipped: {:?}",
            r.skipped
        );
    }
    let suite = Suite::load(&dir.join("results")).unwrap();
    for f in &all {
        let (_, label) = AXIS_LABELS
            .iter()
            .find(|(s, _)| f.name.ends_with(s))
            .unwrap();
        // PNG decodes at the figure's size.
        let img =
            image::open(&f.files.png).unwrap_or_else(|e| panic!("{}: {e}", f.files.png.display()));
        let want = if f.name.ends_with("-gantt") {
            GanttOptions::default().size
        } else {
            reports::style::SIZE
        };
        assert_eq!((img.width(), img.height()), want, "{}", f.name);
        // Not blank: the PNG has many distinct colours' worth of non-white pixels.
        let rgb = img.to_rgb8();
        let ink = rgb.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        assert!(ink > 2_000, "{}: only {ink} non-white pixels", f.name);
        // SVG parses as XML and holds the axis label and every strategy of its matrix.
        let svg = std::fs::read_to_string(&f.files.svg).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{}: {e}", f.name));
        let text: String = doc
            .descendants()
            .filter(|n| n.is_text())
            .map(|n| n.text().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(text.contains(label), "{}: no axis label {label:?}", f.name);
        // Long names wrap onto several lines (legends, group labels): their lines in order.
        let flat: String = text.lines().map(str::trim).collect();
        let matrix = r
            .figures
            .iter()
            .find(|(_, fs)| fs.iter().any(|g| g.name == f.name))
            .unwrap()
            .0
            .clone();
        let strategies: Vec<String> = suite
            .cells_of(&matrix)
            .iter()
            .map(|c| c.coords.strategy.clone())
            .collect();
        let per_group = f.name.ends_with("-per-worker") || f.name.ends_with("-gantt");
        for s in &strategies {
            if per_group && !flat.contains(s.as_str()) {
                // These show one group's runs; its strategies are all in the legend.
                continue;
            }
            assert!(
                flat.contains(s.as_str()),
                "{}: strategy {s:?} not named",
                f.name
            );
        }
    }
    // The scaling figure prints the fitted serial fraction.
    let scaling = all.iter().find(|f| f.name == "scaling-scaling").unwrap();
    assert!(
        scaling
            .notes
            .iter()
            .any(|n| n.contains("serial fraction S =")),
        "{:?}",
        scaling.notes
    );
    // Skipped figures are listed in the page with a reason.
    let html = std::fs::read_to_string(&r.index).unwrap();
    assert!(!r.skipped.is_empty());
    for (_, what, why) in &r.skipped {
        assert!(
            html.contains(&reports::html::escape(why)),
            "{what}: reason not in the page"
        );
    }
}

/// Every `href="…"`/`src="…"` of `html`, unescaped and percent-decoded.
fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=\"", "src=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let end = rest.find('"').unwrap();
            let raw = rest[..end].replace("&amp;", "&");
            let mut bytes = Vec::new();
            let b = raw.as_bytes();
            let mut k = 0;
            while k < b.len() {
                if b[k] == b'%' && k + 2 < b.len() {
                    bytes.push(u8::from_str_radix(&raw[k + 1..k + 3], 16).unwrap());
                    k += 3;
                } else {
                    bytes.push(b[k]);
                    k += 1;
                }
            }
            out.push(String::from_utf8(bytes).unwrap());
        }
    }
    out
}

#[test]
fn html_links_only_to_existing_files_and_escapes_user_strings() {
    let dir = tmp("html");
    let evil = "<script>alert(1)</script>";
    let cells: Vec<common::Cell> = common::cells()
        .into_iter()
        .filter(|c| c.matrix == "balance")
        .collect();
    let mut rows = common::rows(evil, &cells, 2);
    for r in &mut rows {
        r.matrix = format!("m{evil}");
    }
    // A directory name with a space, to exercise the href encoding.
    let results = dir.join("my results");
    common::write_results(&results, evil, &format!("Is {evil} escaped?"), &rows);
    std::fs::write(Layout::new(&results).runs_csv(), "suite,cell\n").unwrap();
    let out = dir.join("out");
    let r = reports::report(&results, &out).unwrap();
    let html = std::fs::read_to_string(&r.index).unwrap();
    assert!(
        !html.contains("<script"),
        "an unescaped <script> in the page"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let found = links(&html);
    assert!(found.iter().any(|l| l.ends_with("runs.jsonl")), "{found:?}");
    assert!(found.iter().any(|l| l.ends_with("runs.csv")), "{found:?}");
    assert!(found.iter().any(|l| l.ends_with(".png")), "{found:?}");
    for l in &found {
        if l.starts_with('#') {
            continue; // in-page anchor
        }
        let target = out.join(l.split('#').next().unwrap());
        assert!(target.exists(), "link to a missing file: {l}");
    }
    let md = std::fs::read_to_string(&r.summary_md).unwrap();
    assert!(
        md.contains("| workload / setting |") && md.contains("**best**"),
        "{md}"
    );
}

#[test]
fn summary_table_marks_the_best_per_row() {
    let cells: Vec<common::Cell> = common::cells()
        .into_iter()
        .filter(|c| c.matrix == "balance")
        .collect();
    let suite = Suite::from_rows(
        Path::new("x"),
        fixture()
            .iter()
            .filter(|r| r.matrix == "balance")
            .cloned()
            .collect(),
    );
    assert_eq!(suite.cells.len(), cells.len());
    let t = reports::html::table(&suite, "balance");
    assert_eq!(t.rows.len(), 2, "one row per workload");
    for row in &t.rows {
        let present: Vec<_> = row.cells.iter().flatten().collect();
        assert_eq!(present.len(), t.strategies.len());
        let best = present
            .iter()
            .map(|c| c.primary)
            .fold(f64::INFINITY, f64::min);
        for c in &present {
            assert_eq!(c.best, c.primary == best);
            assert!(
                !(c.best && c.clear),
                "the best is not clearly worse than itself"
            );
            assert!((c.vs_best - (c.primary / best - 1.0)).abs() < 1e-12);
        }
    }
}

#[test]
fn a_truncated_last_line_is_named_and_the_rest_still_reports() {
    let dir = tmp("truncated");
    let cells: Vec<common::Cell> = common::cells()
        .into_iter()
        .filter(|c| c.matrix == "balance")
        .take(2)
        .collect();
    let rows = common::rows("trunc", &cells, 2);
    common::write_results(&dir, "trunc", "q", &rows);
    let path = Layout::new(&dir).runs_jsonl();
    let full = serde_json::to_string(&rows[0]).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    write!(f, "{}", &full[..full.len() / 2]).unwrap();
    drop(f);
    let suite = Suite::load(&dir).unwrap();
    assert_eq!(suite.rows.len(), rows.len());
    assert_eq!(suite.bad.len(), 1);
    assert_eq!(suite.bad[0].line, rows.len() + 1);
    let r = reports::render(&suite, &dir.join("report")).unwrap();
    assert_eq!(r.bad.len(), 1);
    let html = std::fs::read_to_string(&r.index).unwrap();
    assert!(
        html.contains(&format!("line {}:", rows.len() + 1)),
        "the bad line is not named"
    );
}

#[test]
fn missing_and_empty_results_are_input_errors() {
    let dir = tmp("empty");
    assert!(matches!(
        Suite::load(&dir.join("nope")),
        Err(reports::suite::LoadError::NoDir(_))
    ));
    assert!(matches!(
        Suite::load(&dir),
        Err(reports::suite::LoadError::NoRuns(..))
    ));
    let file = dir.join("runs.txt");
    std::fs::write(&file, "x").unwrap();
    let e = Suite::load(&file).unwrap_err();
    assert!(matches!(e, reports::suite::LoadError::NotDir(_)), "{e:?}");
    assert!(e.to_string().contains("is a file, not a directory"), "{e}");
    std::fs::write(dir.join("runs.jsonl"), "not json\n").unwrap();
    let e = Suite::load(&dir).unwrap_err();
    assert!(matches!(e, reports::suite::LoadError::Empty(_, 1)), "{e:?}");
    assert!(!e.to_string().contains('\n'));
}

#[test]
fn compare_says_no_change_for_the_same_suite_and_a_change_for_a_slower_strategy() {
    let rows = fixture();
    let base = Suite::from_rows(Path::new("base"), rows.to_vec());
    let again = Suite::from_rows(
        Path::new("new"),
        common::rows("fixture", &common::cells(), 3),
    );
    let same = compare(&base, &again);
    assert_eq!(same.changes.len(), base.cells.len());
    assert!(
        same.changes.iter().all(|c| c.verdict == Verdict::NoChange),
        "{}",
        same.markdown()
    );

    // NEW: work-stealing on the skewed workload got slower (10us per local pick, as if its
    // code regressed); the other cells are rerun unchanged.
    let cells: Vec<common::Cell> = common::cells()
        .into_iter()
        .filter(|c| c.matrix == "balance")
        .collect();
    let slow_rows: Vec<RunRow> = cells
        .iter()
        .flat_map(|c| {
            (0..3).map(move |rep| {
                if c.strategy == "work-stealing" && c.workload.starts_with("lognormal") {
                    common::run_as("fixture", c, rep, "local=10us")
                } else {
                    common::run("fixture", c, rep)
                }
            })
        })
        .collect();
    let slow = Suite::from_rows(Path::new("slow"), slow_rows);
    let base_balance = Suite::from_rows(
        Path::new("base"),
        rows.iter()
            .filter(|r| r.matrix == "balance")
            .cloned()
            .collect(),
    );
    let cmp = compare(&base_balance, &slow);
    let changed: Vec<_> = cmp
        .changes
        .iter()
        .filter(|c| c.verdict != Verdict::NoChange)
        .collect();
    assert_eq!(changed.len(), 1, "{}", cmp.markdown());
    assert_eq!(changed[0].verdict, Verdict::Regressed);
    assert!(changed[0].cell.contains("work-stealing") && changed[0].cell.contains("lognormal"));
    assert!(changed[0].rel > changed[0].ci95);
    assert!(cmp.markdown().contains("regressed") && cmp.markdown().contains("no change"));

    // And the files: a figure and pages.
    let dir = tmp("compare");
    common::write_results(&dir.join("a"), "fixture", "q", base_balance.rows.as_slice());
    common::write_results(&dir.join("b"), "fixture", "q", &slow.rows);
    let out =
        reports::compare::compare_dirs(&dir.join("a"), &dir.join("b"), &dir.join("cmp")).unwrap();
    let img = image::open(&out.figure.png).unwrap();
    assert!(img.width() > 0 && img.height() > 0);
    let html = std::fs::read_to_string(&out.html).unwrap();
    assert!(html.contains("1 regressed"), "{html}");
}

#[test]
fn summarize_keeps_the_same_coordinates_in_two_matrices_apart() {
    let rows = fixture();
    let cells = reports::results::summarize(rows);
    // The fixture's lpt cell at estimate error 0 is also the balance matrix's lpt cell.
    let lpt: Vec<_> = cells
        .iter()
        .filter(|c| {
            c.coords.strategy == "lpt"
                && c.coords
                    .workload
                    .starts_with("lognormal(mean=100us,sigma=1.5)")
                && c.coords.estimate_error == 0.0
        })
        .collect();
    assert_eq!(lpt.len(), 2, "one per matrix");
    assert!(
        lpt.iter().all(|c| c.makespan_ns.n == 3),
        "each with its own 3 repetitions"
    );
    assert_eq!(lpt[0].cell, lpt[1].cell);
    assert_ne!(lpt[0].matrix, lpt[1].matrix);
    let total: usize = cells.iter().map(|c| c.makespan_ns.n).sum();
    assert_eq!(total, rows.len());
}

#[test]
fn a_capped_timeline_is_drawn_as_a_window_and_said_so() {
    let mut rows: Vec<RunRow> = fixture()
        .iter()
        .filter(|r| r.matrix == "balance")
        .cloned()
        .collect();
    for r in &mut rows {
        if let Some(t) = r.report.timeline.as_mut() {
            t.truncate(100);
        }
    }
    let suite = Suite::from_rows(Path::new("capped"), rows);
    let dir = tmp("capped");
    let f = figures::gantt(&suite, "balance", &GanttOptions::default(), &dir).unwrap();
    assert!(f.caption.contains("capped"), "{}", f.caption);
    assert!(f.caption.contains("100 of 1000 tasks"), "{}", f.caption);
    // Every panel title says where its record ends, so the cut is not read as the run's end.
    let svg = std::fs::read_to_string(&f.files.svg).unwrap();
    // One panel per strategy of the group drawn (every workload has the same four).
    let panels = reports::suite::strategies(&suite.cells_of("balance")).len();
    assert_eq!(
        svg.matches("(record ends at ").count(),
        panels,
        "panel titles"
    );
    let img = image::open(&f.files.png).unwrap();
    assert_eq!((img.width(), img.height()), GanttOptions::default().size);
}

#[test]
fn scaling_over_a_wide_worker_range_renders_on_log_axes() {
    let cells: Vec<common::Cell> = [1, 4, 16, 64]
        .into_iter()
        .flat_map(|p| {
            ["central", "work-stealing"].map(|s| {
                let mut c = common::Cell::new("wide", s, "lognormal(mean=100us,sigma=1)", p);
                c.tasks = 2_000;
                c
            })
        })
        .collect();
    let suite = Suite::from_rows(Path::new("wide"), common::rows("wide", &cells, 2));
    let dir = tmp("wide");
    let f = figures::scaling(&suite, "wide", &figures::ScalingOptions::default(), &dir).unwrap();
    assert_eq!(f.notes.len(), 2, "one fitted S per strategy: {:?}", f.notes);
    let svg = std::fs::read_to_string(&f.files.svg).unwrap();
    assert!(svg.contains("workers P (log scale)"));
    roxmltree::Document::parse(&svg).unwrap();
    let img = image::open(&f.files.png).unwrap();
    assert_eq!((img.width(), img.height()), reports::style::SIZE);
}

#[test]
fn gantt_marks_every_steal_of_a_complete_timeline() {
    let rows: Vec<RunRow> = fixture()
        .iter()
        .filter(|r| r.matrix == "balance")
        .cloned()
        .collect();
    let suite = Suite::from_rows(Path::new("steals"), rows);
    let dir = tmp("steals");
    let f = figures::gantt(&suite, "balance", &GanttOptions::default(), &dir).unwrap();
    assert!(f.caption.contains("marks a steal"), "{}", f.caption);
    let svg = std::fs::read_to_string(&f.files.svg).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    // The steal counts of the panel titles ("<strategy> — makespan …, N steals").
    let titled: u64 = doc
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .filter_map(|t| t.trim().strip_suffix(" steals"))
        .filter_map(|t| t.rsplit(", ").next()?.parse::<u64>().ok())
        .sum();
    assert!(titled > 0, "the fixture's work-stealing run has steals");
    let (r, g, b) = (
        reports::style::STEAL.0,
        reports::style::STEAL.1,
        reports::style::STEAL.2,
    );
    let fill = format!("#{r:02X}{g:02X}{b:02X}");
    let markers = doc
        .descendants()
        .filter(|n| n.has_tag_name("polygon"))
        .filter(|n| {
            n.attribute("fill")
                .is_some_and(|f| f.eq_ignore_ascii_case(&fill))
        })
        .count() as u64;
    // The timelines are complete (cap 5,000 > 1,000 tasks): one marker per steal, plus the
    // legend's.
    assert_eq!(markers, titled + 1, "markers vs steals in the titles");
    let text: Vec<&str> = doc
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    assert!(text.contains(&"steal"), "no legend entry 'steal'");
}

#[test]
fn bar_labels_show_every_varying_coordinate_speeds_included() {
    let mut cells = Vec::new();
    for w in ["constant(100us)", "lognormal(mean=100us,sigma=1.5)"] {
        for sp in ["", "big-little", "1,1,1,1,1,1,1,0.25"] {
            for s in ["round-robin", "weighted-rr", "work-stealing"] {
                let mut c = common::Cell::new("speeds", s, w, 8);
                c.tasks = 400;
                c.speeds = sp.into();
                cells.push(c);
            }
        }
    }
    let suite = Suite::from_rows(Path::new("speeds"), common::rows("speeds", &cells, 1));
    let dir = tmp("speeds");
    let f = figures::lif_bars(&suite, "speeds", &figures::BarOptions::default(), &dir).unwrap();
    let svg = std::fs::read_to_string(&f.files.svg).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let text: String = doc
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect::<Vec<_>>()
        .concat();
    // Each group's label, its wrapped lines put back together, is in the figure in full.
    let cs = suite.cells_of("speeds");
    let groups = reports::suite::group(&cs, &[reports::suite::Axis::Strategy]);
    for (label, _) in &groups {
        assert!(label.contains("speeds="), "{label}");
        let joined = label.replace(" · ", "");
        assert!(
            text.contains(&joined),
            "label {label:?} not in full in the figure"
        );
    }
    // Too narrow for the labels: the groups are lettered and the caption spells each one out.
    let narrow = figures::BarOptions { size: (520, 400) };
    let f = figures::lif_bars(&suite, "speeds", &narrow, &dir).unwrap();
    for (i, (label, _)) in groups.iter().enumerate() {
        let key = format!("{} = {label}", char::from(b'A' + i as u8));
        assert!(f.caption.contains(&key), "{key:?} not in {:?}", f.caption);
    }
}

#[test]
fn queueing_draws_one_erlang_c_reference_per_panel_with_one_legend_entry() {
    let mut cells = Vec::new();
    for w in ["exponential(mean=100us)", "lognormal(mean=100us,sigma=1)"] {
        for s in ["central", "work-stealing"] {
            for rate in [12_000, 24_000, 32_000] {
                let mut c = common::Cell::new("open", s, w, 4);
                c.arrivals = format!("poisson(rate={rate}/s)");
                c.tasks = 2_000;
                cells.push(c);
            }
        }
    }
    let suite = Suite::from_rows(Path::new("open"), common::rows("open", &cells, 1));
    let dir = tmp("open");
    let f = figures::queueing(&suite, "open", &figures::QueueingOptions::default(), &dir).unwrap();
    let svg = std::fs::read_to_string(&f.files.svg).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    let erlang = texts.iter().filter(|t| t.contains("Erlang C")).count();
    assert_eq!(erlang, 1, "one legend entry for the reference: {texts:?}");
    // Two panels (one per workload), each titled by its setting, and each strategy once in the legend.
    for w in ["exponential(mean=100us)", "lognormal(mean=100us,sigma=1)"] {
        assert!(texts.iter().any(|t| t.starts_with(w)), "no panel for {w}");
    }
    // (A long name wraps onto lines drawn one after another.)
    let flat = texts.concat();
    for s in reports::suite::strategies(&suite.cells_of("open")) {
        assert_eq!(
            flat.matches(s.as_str()).count(),
            1,
            "{s} in the legend once"
        );
    }
}

/// Every text of an SVG: (x, y, anchor, font size in points, text).
fn svg_texts(svg: &str) -> Vec<(f64, f64, String, f64, String)> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| {
            let num = |a: &str| n.attribute(a).and_then(|v| v.parse().ok()).unwrap_or(0.0);
            (
                num("x"),
                num("y"),
                n.attribute("text-anchor").unwrap_or("start").to_string(),
                num("font-size"),
                n.text().unwrap_or("").trim().to_string(),
            )
        })
        .collect()
}

#[test]
fn every_label_of_the_compare_figure_lies_inside_the_image() {
    // Long matrix names, long strategy specs and several varying axes: the labels of the
    // quick suite's compare ("sim-125-per-worker: lognormal(…) · …") and longer.
    let mut cells = Vec::new();
    for matrix in [
        "sim-125-per-worker",
        "sim-1250-per-worker-on-uneven-workers",
    ] {
        for s in [
            "work-stealing(victim=random,steal=half,order=fifo)",
            "central",
        ] {
            for w in [
                "lognormal(mean=100us,sigma=1.5)",
                "mix(0.9:constant(20us),0.1:lognormal(mean=2ms,sigma=1.5))",
            ] {
                for sp in ["", "1,1,1,1,1,1,1,0.25"] {
                    let mut c = common::Cell::new(matrix, s, w, 8);
                    c.tasks = 300;
                    c.speeds = sp.into();
                    cells.push(c);
                }
            }
        }
    }
    let base = Suite::from_rows(Path::new("base"), common::rows("long", &cells, 2));
    let new = Suite::from_rows(Path::new("new"), common::rows("long", &cells, 2));
    let cmp = compare(&base, &new);
    let dir = tmp("compare-labels");
    let files = reports::compare::change_figure(&cmp, &dir).unwrap();
    let svg = std::fs::read_to_string(&files.svg).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let root = doc.root_element();
    let size = |a: &str| root.attribute(a).unwrap().parse::<f64>().unwrap();
    let (width, height) = (size("width"), size("height"));
    let texts = svg_texts(&svg);
    // Every label is there in full (its wrapped lines joined), with its verdict.
    let all: String = texts
        .iter()
        .map(|t| t.4.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    for c in &cmp.changes {
        for part in c.label.split(" · ") {
            assert!(all.contains(part), "{part:?} not in the figure");
        }
    }
    for (x, y, anchor, pt, text) in &texts {
        // The layout width at the size the figure asked for (the SVG writes it / 1.24).
        let w = f64::from(reports::style::text_width(text, (pt * 1.24).round() as u32));
        let (left, right) = match anchor.as_str() {
            "end" => (x - w, *x),
            "middle" => (x - w / 2.0, x + w / 2.0),
            _ => (*x, x + w),
        };
        assert!(
            left >= 0.0 && right <= width,
            "{text:?} spans x {left:.0}..{right:.0}, outside 0..{width}"
        );
        assert!(
            *y >= 0.0 && *y <= height,
            "{text:?} at y {y} outside 0..{height}"
        );
    }
    // And in the PNG: no ink in the outermost columns.
    let img = image::open(&files.png).unwrap().to_rgb8();
    for x in [0, 1, img.width() - 2, img.width() - 1] {
        let ink = (0..img.height())
            .filter(|&y| img.get_pixel(x, y).0 != [255, 255, 255])
            .count();
        assert_eq!(ink, 0, "ink in column {x} of the PNG");
    }
}

//! Figures with many series (issue 18, item 7): a matrix of 6 strategies on 3 topologies, of 12
//! or 20 strategies on 2 workloads, and so on. No panel draws more than `MAX_SERIES` series,
//! every series a panel draws is named in the figure, no legend is cut ("… and N more") and
//! every text lies inside the image.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use reports::figures::{self, Figure, MAX_SERIES};
use reports::results::RunRow;
use reports::suite::Suite;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("reports-series-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Twelve strategies, more than the palette has colours.
const TWELVE: [&str; 12] = [
    "round-robin",
    "block",
    "central",
    "guided",
    "work-stealing",
    "spt",
    "lpt",
    "range-stealing",
    "factoring",
    "tss",
    "awf",
    "jsq",
];

/// The scaling suite's six strategies (it draws them on three topologies).
const SCALING: [&str; 6] = [
    "block",
    "central",
    "guided",
    "work-stealing(victim=random)",
    "work-stealing(victim=numa)",
    "range-stealing",
];

fn cell(matrix: &'static str, strategy: &str, workload: &str, workers: usize) -> common::Cell {
    let mut c = common::Cell::new(matrix, strategy, workload, workers);
    c.tasks = 300;
    c
}

/// Matrices with many series for every kind of figure.
fn cells() -> Vec<common::Cell> {
    let mut cells = Vec::new();
    // The scaling suite in small: 6 strategies x 3 topologies = 18 lines.
    for topology in ["1x16", "2x8", "4x4"] {
        for s in SCALING {
            for p in [2, 4, 8] {
                let mut c = cell("scaling-topo", s, "lognormal(mean=100us,sigma=1)", p);
                c.topology = topology.into();
                cells.push(c);
            }
        }
    }
    // 12 strategies x 2 workloads = 24 lines: more strategies than colours on each setting.
    for w in ["constant(100us)", "lognormal(mean=100us,sigma=1.5)"] {
        for s in TWELVE {
            for p in [1, 2, 4] {
                cells.push(cell("scaling-many", s, w, p));
            }
        }
    }
    // 20 strategies (long names among them) on 2 workloads: bars, CDF, per-worker, Gantt.
    let twenty: Vec<String> = TWELVE
        .iter()
        .map(|s| s.to_string())
        .chain((2..=7).map(|k| format!("central(chunk={k})")))
        .chain([
            "work-stealing(victim=numa,steal=one,order=lifo)".into(),
            "adaptive-spt(range=32,first=longest)".into(),
        ])
        .collect();
    for w in ["constant(100us)", "lognormal(mean=100us,sigma=1.5)"] {
        for s in &twenty {
            cells.push(cell("balance-many", s, w, 4));
        }
    }
    for s in TWELVE {
        for rate in [12_000, 28_000] {
            let mut c = cell("queueing-many", s, "exponential(mean=100us)", 4);
            c.arrivals = format!("poisson(rate={rate}/s)");
            cells.push(c);
        }
        for e in [0.0, 1.0] {
            let mut c = cell("estimates-many", s, "lognormal(mean=100us,sigma=1.5)", 4);
            c.estimate_error = e;
            cells.push(c);
        }
        let mut c = cell("hetero-many", s, "constant(100us)", 4);
        c.speeds = "1,1,2,4".into();
        cells.push(c);
    }
    cells
}

/// The rows (one repetition of every cell), made once per test binary.
fn rows() -> &'static [RunRow] {
    static ROWS: OnceLock<Vec<RunRow>> = OnceLock::new();
    ROWS.get_or_init(|| common::rows("many", &cells(), 1))
}

/// Every text of an SVG, with its y.
fn texts(svg: &str) -> (f64, Vec<(f64, String)>) {
    let doc = roxmltree::Document::parse(svg).unwrap();
    let height: f64 = doc
        .root_element()
        .attribute("height")
        .unwrap()
        .parse()
        .unwrap();
    let texts = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| {
            let y = n.attribute("y").and_then(|v| v.parse().ok()).unwrap_or(0.0);
            (y, n.text().unwrap_or("").trim().to_string())
        })
        .collect();
    (height, texts)
}

/// The checks every figure passes: at most `MAX_SERIES` series in any panel, each of them
/// named in the figure (long names wrap onto lines drawn one after another), no legend cut,
/// every text inside the image, and the PNG as large as the SVG.
fn check(f: &Figure) {
    assert!(!f.panels.is_empty(), "{}: no panels listed", f.name);
    let svg = std::fs::read_to_string(&f.files.svg).unwrap();
    let (height, texts) = texts(&svg);
    let flat: String = texts.iter().map(|t| t.1.as_str()).collect();
    for t in &texts {
        assert!(
            !t.1.contains("… and") && !t.1.ends_with("more"),
            "{}: a cut legend: {:?}",
            f.name,
            t.1
        );
        assert!(
            t.0 >= 0.0 && t.0 <= height,
            "{}: {:?} at y {} outside 0..{height}",
            f.name,
            t.1,
            t.0
        );
    }
    for (k, panel) in f.panels.iter().enumerate() {
        assert!(
            panel.len() <= MAX_SERIES,
            "{}: panel {k} draws {} series: {panel:?}",
            f.name,
            panel.len()
        );
        for s in panel {
            assert!(flat.contains(s.as_str()), "{}: {s:?} not named", f.name);
        }
    }
    let img = image::open(&f.files.png).unwrap();
    assert_eq!(f64::from(img.height()), height, "{}", f.name);
}

/// Render the many-series results and check every figure.
fn report() -> &'static reports::Report {
    static REPORT: OnceLock<reports::Report> = OnceLock::new();
    REPORT.get_or_init(|| {
        let dir = tmp("report");
        common::write_results(&dir.join("results"), "many", "Many series?", rows());
        reports::report(&dir.join("results"), &dir.join("report")).unwrap()
    })
}

fn figure<'a>(r: &'a reports::Report, name: &str) -> &'a Figure {
    r.figures
        .iter()
        .flat_map(|(_, f)| f)
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no figure {name}; skipped: {:?}", r.skipped))
}

#[test]
fn no_panel_holds_more_than_max_series_and_no_legend_is_cut() {
    let r = report();
    let all: Vec<&Figure> = r.figures.iter().flat_map(|(_, f)| f).collect();
    for f in &all {
        check(f);
    }
    // Every kind of figure met more series than colours somewhere.
    for name in [
        "scaling-topo-scaling",
        "scaling-many-scaling",
        "balance-many-lif",
        "balance-many-efficiency",
        "balance-many-latency-cdf",
        "balance-many-per-worker",
        "balance-many-gantt",
        "queueing-many-queueing",
        "estimates-many-estimates",
        "hetero-many-heterogeneous",
    ] {
        let f = figure(r, name);
        assert!(f.panels.len() > 1, "{name}: one panel for {:?}", f.panels);
    }
    // Every strategy of a matrix is named in each of its figures that draws every strategy.
    let suite = Suite::load(&r.index.parent().unwrap().join("../results")).unwrap();
    for (matrix, figs) in &r.figures {
        let strategies = reports::suite::strategies(&suite.cells_of(matrix));
        for f in figs {
            let shown: Vec<&String> = f.panels.iter().flatten().collect();
            if f.name.ends_with("-per-worker") || f.name.ends_with("-gantt") {
                continue; // a panel per strategy, up to a limit the caption states
            }
            for s in &strategies {
                let named = shown.contains(&s) || f.caption.contains(s.as_str());
                assert!(named, "{}: strategy {s:?} neither drawn nor named", f.name);
            }
        }
    }
}

#[test]
fn scaling_on_three_topologies_is_one_pair_of_panels_per_topology() {
    let r = report();
    let f = figure(r, "scaling-topo-scaling");
    // Speedup and efficiency per topology, each with the six strategies.
    assert_eq!(f.panels.len(), 6, "{:?}", f.panels);
    let suite = Suite::load(&r.index.parent().unwrap().join("../results")).unwrap();
    let strategies = reports::suite::strategies(&suite.cells_of("scaling-topo"));
    for p in &f.panels {
        assert_eq!(p, &strategies);
    }
    let svg = std::fs::read_to_string(&f.files.svg).unwrap();
    for t in ["1x16", "2x8", "4x4"] {
        for what in ["speedup", "efficiency"] {
            let caption = format!("{what} — topo={t}");
            assert!(svg.contains(&caption), "no panel {caption:?}");
        }
    }
    // Every line still has its fitted serial fraction.
    assert_eq!(f.notes.len(), 18, "{:?}", f.notes);
    assert!(f.caption.contains("per setting"), "{}", f.caption);
    // 12 strategies on 2 workloads: per workload, two pairs of 6.
    let f = figure(r, "scaling-many-scaling");
    assert_eq!(f.panels.len(), 8, "{:?}", f.panels);
    assert!(f.panels.iter().all(|p| p.len() == 6), "{:?}", f.panels);
}

#[test]
fn the_legend_grows_the_figure_instead_of_being_cut() {
    // 20 strategies: 3 panels of bars, and a legend of 21 entries, some on two lines.
    let r = report();
    let f = figure(r, "balance-many-lif");
    assert_eq!(f.panels.len(), 3, "{:?}", f.panels);
    assert_eq!(f.panels.iter().map(Vec::len).sum::<usize>(), 20);
    let img = image::open(&f.files.png).unwrap();
    assert_eq!(img.width(), reports::style::SIZE.0);
    assert!(img.height() >= reports::style::SIZE.1);
    // Asked for a figure too short for its legend of 20 strategies, the CDF grows to hold it.
    let suite = Suite::from_rows(
        Path::new("short"),
        rows()
            .iter()
            .filter(|r| r.matrix == "balance-many")
            .cloned()
            .collect(),
    );
    let dir = tmp("short");
    let short = figures::CdfOptions {
        size: (960, 360),
        ..Default::default()
    };
    let f = figures::latency_cdf(&suite, "balance-many", &short, &dir).unwrap();
    check(&f);
    let img = image::open(&f.files.png).unwrap();
    assert!(img.height() > 360, "{}", img.height());
    assert_eq!(f.panels.iter().map(Vec::len).sum::<usize>(), 20);
}

#[test]
fn few_series_keep_one_panel_and_the_default_size() {
    // The scaling suite's threads matrix in small: 3 strategies, one workload.
    let cells: Vec<common::Cell> = ["central", "work-stealing", "block"]
        .into_iter()
        .flat_map(|s| [1, 2, 4].map(|p| cell("few", s, "constant(100us)", p)))
        .collect();
    let suite = Suite::from_rows(Path::new("few"), common::rows("few", &cells, 1));
    let dir = tmp("few");
    let f = figures::scaling(&suite, "few", &figures::ScalingOptions::default(), &dir).unwrap();
    assert_eq!(f.panels.len(), 2, "speedup and efficiency: {:?}", f.panels);
    check(&f);
    let svg = std::fs::read_to_string(&f.files.svg).unwrap();
    // Each line's fitted Amdahl curve is in the legend.
    assert_eq!(svg.matches("Amdahl S=").count(), 3);
    let img = image::open(&f.files.png).unwrap();
    assert_eq!((img.width(), img.height()), reports::style::SIZE);
}

#[test]
fn scaling_with_more_settings_than_strategies_is_one_pair_per_strategy() {
    // 2 strategies on 9 workloads: 18 lines, split by strategy (2 values, not 9), and each
    // strategy's 9 lines again into 4 and 5.
    let workloads: Vec<String> = (1..=9).map(|k| format!("constant({}us)", 10 * k)).collect();
    let cells: Vec<common::Cell> = ["central", "block"]
        .into_iter()
        .flat_map(|s| {
            workloads
                .iter()
                .flat_map(move |w| [1, 2, 4].map(|p| cell("settings", s, w, p)))
        })
        .collect();
    let suite = Suite::from_rows(Path::new("settings"), common::rows("settings", &cells, 1));
    let dir = tmp("settings");
    let f = figures::scaling(&suite, "settings", &Default::default(), &dir).unwrap();
    check(&f);
    assert_eq!(f.panels.len(), 8, "{:?}", f.panels);
    let sizes: Vec<usize> = f.panels.iter().map(Vec::len).collect();
    assert_eq!(sizes, [4, 4, 5, 5, 4, 4, 5, 5]);
    // The lines are the workloads, each in the legend; the panels name the strategies.
    let drawn: Vec<&String> = f.panels.iter().flatten().collect();
    for w in &workloads {
        assert!(drawn.contains(&w), "{w} not drawn");
    }
    let svg = std::fs::read_to_string(&f.files.svg).unwrap();
    for s in ["central", "block"] {
        for part in ["(1/2)", "(2/2)"] {
            let caption = format!("speedup — {s}");
            assert!(
                svg.contains(&caption) && svg.contains(part),
                "no panel {caption:?} {part}"
            );
        }
    }
    assert!(f.caption.contains("per strategy"), "{}", f.caption);
}

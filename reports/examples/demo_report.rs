//! Make a small results directory with the sim engine and render its report:
//!
//! ```text
//! cargo run --release -p reports --example demo_report -- OUT_DIR [--readme FIG_DIR]
//! ```
//!
//! writes `OUT_DIR/results` (runs.jsonl, meta.json) and `OUT_DIR/report` (index.html,
//! summary.md, figures). With `--readme`, also draws the README's two small figures into
//! FIG_DIR.

#[path = "../tests/common/mod.rs"]
mod common;

use reports::figures::{self, BarOptions, GanttOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = std::path::PathBuf::from(
        args.first()
            .cloned()
            .unwrap_or_else(|| "target/demo-report".into()),
    );
    let results = out.join("results");
    let rows = common::rows("demo", &common::cells(), 3);
    common::write_results(
        &results,
        "demo",
        "Which strategy balances skewed tasks best on 4 simulated workers, how does work stealing scale, and how do queueing, estimates and uneven workers change the picture?",
        &rows,
    );
    let suite = reports::suite::Suite::load(&results).expect("the demo results load");
    let r = reports::render(&suite, &out.join("report")).expect("the demo report renders");
    for (_, figs) in &r.figures {
        for n in figs.iter().flat_map(|f| &f.notes) {
            println!("{n}");
        }
    }
    println!("{}", r.index.display());
    if let Some(i) = args.iter().position(|a| a == "--readme") {
        let dir = std::path::PathBuf::from(args.get(i + 1).expect("--readme DIR"));
        std::fs::create_dir_all(&dir).unwrap();
        let lif = figures::lif_bars(&suite, "balance", &BarOptions { size: (820, 400) }, &dir)
            .expect("lif figure");
        let gantt = figures::gantt(
            &suite,
            "balance",
            &GanttOptions {
                size: (820, 560),
                max_panels: 4,
            },
            &dir,
        )
        .expect("gantt figure");
        for f in [lif, gantt] {
            // The README shows the PNGs only.
            let _ = std::fs::remove_file(&f.files.svg);
            println!("{}", f.files.png.display());
        }
    }
}

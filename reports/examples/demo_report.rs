//! Make a small results directory with the sim engine and render its report:
//!
//! ```text
//! cargo run --release -p reports --example demo_report -- OUT_DIR [--readme FIG_DIR]
//! cargo run --release -p reports --example demo_report -- --from results/quick --matrix sim-125-per-worker --readme docs/figures
//! ```
//!
//! The first writes `OUT_DIR/results` (runs.jsonl, meta.json) and `OUT_DIR/report`
//! (index.html, summary.md, figures). `--readme` also draws the README's two small figures
//! (LIF bars and the Gantt timeline of one matrix) into FIG_DIR; `--from` takes them from an
//! existing results directory instead of the demo suite.

#[path = "../tests/common/mod.rs"]
mod common;

use reports::figures::{self, BarOptions, GanttOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter().position(|a| a == name).map(|i| {
            args.get(i + 1)
                .cloned()
                .unwrap_or_else(|| panic!("{name} needs a value"))
        })
    };
    let out = std::path::PathBuf::from(
        args.first()
            .filter(|a| !a.starts_with("--"))
            .cloned()
            .unwrap_or_else(|| "target/demo-report".into()),
    );
    // --from RESULTS_DIR: draw the README figures from an existing suite instead of the demo.
    let (suite, matrix) = match flag("--from") {
        Some(dir) => {
            let suite =
                reports::suite::Suite::load(std::path::Path::new(&dir)).expect("results load");
            (
                suite,
                flag("--matrix").unwrap_or_else(|| "sim-125-per-worker".into()),
            )
        }
        None => {
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
            (suite, "balance".to_string())
        }
    };
    if let Some(dir) = flag("--readme") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        let lif = figures::lif_bars(&suite, &matrix, &BarOptions { size: (900, 440) }, &dir)
            .expect("lif figure");
        let gantt = figures::gantt(
            &suite,
            &matrix,
            &GanttOptions {
                size: (900, 700),
                max_panels: 6,
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

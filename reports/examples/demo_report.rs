//! Make a small results directory with the sim engine and render its report:
//! `cargo run -p reports --example demo_report -- OUT_DIR` (writes OUT_DIR/results and
//! OUT_DIR/report).

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    let out = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/demo-report".into()),
    );
    let results = out.join("results");
    let rows = common::rows("demo", &common::cells(), 3);
    common::write_results(
        &results,
        "demo",
        "Which strategy balances best, and how do they scale?",
        &rows,
    );
    let suite = reports::suite::Suite::load(&results).expect("fixture loads");
    let r = reports::render(&suite, &out.join("report")).expect("report renders");
    for (_, figs) in &r.figures {
        for f in figs {
            for n in &f.notes {
                println!("{n}");
            }
        }
    }
    println!("{}", r.index.display());
}

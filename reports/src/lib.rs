//! # reports — plotted reports for schedlab
//!
//! Turns a suite's results directory (`results/<suite>/runs.jsonl`, one [`results::RunRow`] per
//! line) into figures and an HTML/Markdown report, from the result files alone: nothing is rerun.
//!
//! ```
//! use reports::results::{Layout, Stat};
//! let layout = Layout::new("results/quick");
//! assert!(layout.runs_jsonl().ends_with("runs.jsonl"));
//! let s = Stat::of(&[1.0, 1.2, 1.1]);
//! assert!((s.mean - 1.1).abs() < 1e-12 && s.ci95 > 0.0);
//! ```
#![deny(missing_docs)]

pub mod results;

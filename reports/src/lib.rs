//! # reports — plotted reports for schedlab (not built yet)
//!
//! This crate will render suites' result files (`results/<suite>/runs.jsonl`, one `RunReport`
//! per line) into an HTML/Markdown report with one SVG and PNG per figure, drawn with plotters,
//! from the result files alone (see DESIGN.md, "Crates and who may import whom"). It holds no
//! code yet: the workspace member exists so that the crate graph is the one DESIGN.md fixes.
#![deny(missing_docs)]

//! The what-if page (`schedlab whatif --out DIR`): predicted throughput against CPU workers,
//! one line per setting of the other knobs, and the table of every configuration.

use std::path::{Path, PathBuf};

use plotters::coord::combinators::BindKeyPoints;
use plotters::prelude::*;

use crate::html::escape;
use crate::style::{
    color, draw_marker, err, marker, render_both, Files, AXIS_PX, FONT, GRID, LABEL_PX, SIZE,
    TITLE_PX,
};

/// File stem of the figure.
pub const FIGURE: &str = "whatif-throughput";

/// Most lines drawn; the rest are listed in the page's table only.
pub const MAX_LINES: usize = crate::figures::MAX_SERIES;

/// One row of the page's table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The configuration in one line.
    pub config: String,
    /// Predicted items/s.
    pub items_per_s: f64,
    /// Predicted items/s over the limit from mean service times.
    pub fraction_of_limit: f64,
    /// The stage that sets the limit.
    pub bottleneck: String,
    /// 99th percentile of the time between batches, formatted.
    pub batch_p99: String,
    /// Most items held at once.
    pub held_peak: u64,
    /// `recommended`, `best` or empty.
    pub mark: String,
}

/// Draw predicted items/s (y) against CPU workers (x), one line per `(label, points)`; lines
/// that coincide are drawn once with one legend entry (`central = work-stealing`), then at
/// most [`MAX_LINES`] lines (those with the highest peak), so the figure stays readable; the x
/// axis is labelled with whole numbers, each once. What is drawn is
/// [`crate::figures::whatif_plot`]. Writes `dir/whatif-throughput.svg` and `.png`.
///
/// # Errors
/// A message naming the file that could not be drawn or written.
pub fn throughput_figure(
    dir: &Path,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<Files, String> {
    let plot = crate::figures::whatif_plot(series, MAX_LINES);
    render_both!(dir, FIGURE, SIZE, |root| draw(&root, &plot))
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    fig: &crate::figures::WhatifPlot,
) -> Result<(), String> {
    let lines = &fig.lines;
    // P is a whole number: an integer axis whose labels are exactly the ticks, each once.
    let x = |p: f64| p.round().max(0.0) as u64;
    {
        let (plot, legend) = root.split_horizontally(SIZE.0 - 300);
        let mut chart = ChartBuilder::on(&plot)
            .caption(
                "Predicted throughput against CPU workers",
                (FONT, TITLE_PX).into_font(),
            )
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(80)
            .build_cartesian_2d(
                (0..fig.x_end).with_key_points(fig.x_ticks.clone()),
                0.0..fig.y_end,
            )
            .map_err(err)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .x_label_formatter(&|v| format!("{v}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .x_desc("CPU workers P")
            .y_desc("items/s")
            .axis_desc_style((FONT, AXIS_PX).into_font())
            .label_style((FONT, LABEL_PX).into_font())
            .draw()
            .map_err(err)?;
        for (i, (_, pts)) in lines.iter().enumerate() {
            let mut pts: Vec<(u64, f64)> = pts.iter().map(|&(p, y)| (x(p), y)).collect();
            pts.sort_by_key(|p| p.0);
            chart
                .draw_series(LineSeries::new(pts.clone(), color(i).stroke_width(2)))
                .map_err(err)?;
            for p in pts {
                draw_marker(chart.plotting_area(), p, marker(i), color(i))?;
            }
        }
        for (i, (label, _)) in lines.iter().enumerate() {
            let y = 60 + 26 * i as i32;
            legend
                .draw(&PathElement::new(
                    vec![(8, y), (38, y)],
                    color(i).stroke_width(2),
                ))
                .map_err(err)?;
            let short: String = if label.chars().count() > 38 {
                label.chars().take(37).chain(['…']).collect()
            } else {
                label.clone()
            };
            legend
                .draw(&Text::new(short, (44, y - 7), (FONT, LABEL_PX).into_font()))
                .map_err(err)?;
        }
        Ok(())
    }
}

/// Write `dir/index.html`: `intro`, the figure and the table of `rows`. Every string is escaped.
///
/// # Errors
/// A message naming the file that could not be written.
pub fn page(dir: &Path, intro: &str, rows: &[Row], figure: &Files) -> Result<PathBuf, String> {
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default()
    };
    let mut h = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>schedlab what-if</title>\
         <style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}\
         table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;\
         text-align:right}td:first-child{text-align:left}tr.recommended{background:#e6f4ea}\
         tr.best{background:#eef}</style></head><body>\n<h1>What-if</h1>\n",
    );
    h.push_str(&format!("<p>{}</p>\n", escape(intro)));
    h.push_str(&format!(
        "<figure><img src=\"{}\" alt=\"predicted throughput against CPU workers\" width=\"960\">\
         <figcaption>Predicted items/s against CPU workers, one line per setting of the other \
         knobs (at most {MAX_LINES}, those with the highest peak; lines that coincide within 0.1% \
         are drawn once, their labels joined by =; <a href=\"{}\">SVG</a>).\
         </figcaption></figure>\n",
        escape(&name(&figure.png)),
        escape(&name(&figure.svg))
    ));
    h.push_str(
        "<table><tr><th>configuration</th><th>items/s</th><th>of limit</th><th>bottleneck</th>\
         <th>p99 per batch</th><th>peak held</th><th></th></tr>\n",
    );
    for r in rows {
        h.push_str(&format!(
            "<tr class=\"{}\"><td>{}</td><td>{:.0}</td><td>{:.3}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td></tr>\n",
            escape(&r.mark),
            escape(&r.config),
            r.items_per_s,
            r.fraction_of_limit,
            escape(&r.bottleneck),
            escape(&r.batch_p99),
            r.held_peak,
            escape(&r.mark)
        ));
    }
    h.push_str(
        "</table>\n<p>Raw data: <a href=\"whatif.json\">whatif.json</a>.</p>\n</body></html>\n",
    );
    let path = dir.join("index.html");
    std::fs::write(&path, h).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

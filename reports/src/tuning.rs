//! The autotune trajectory: throughput over the epoch (with the best static configuration's
//! for reference) above each tuned stage's concurrency, a mark at every change.

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::style::{color, err, render_both, Files, AXIS_PX, FONT, GRID, LABEL_PX, TITLE_PX};

/// What the figure draws: every series is `(seconds from the start, value)`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trajectory {
    /// The figure's title.
    pub title: String,
    /// Items/s at each reading.
    pub items_per_s: Vec<(f64, f64)>,
    /// The best static configuration's steady items/s, drawn as a dashed line, and its label.
    pub reference: Option<(f64, String)>,
    /// The tuned settings over time, one series each: each stage's concurrency for a
    /// pipeline, the prefetch for the loader.
    pub concurrency: Vec<(String, Vec<(f64, f64)>)>,
    /// The lower panel's axis label (`concurrency` when empty).
    pub setting: String,
    /// When the tuner changed something.
    pub changes: Vec<f64>,
}

const SIZE: (u32, u32) = (960, 640);

/// Draw `t` into `dir/STEM.svg` and `.png`.
///
/// # Errors
/// A message naming the file that could not be drawn or written.
pub fn trajectory_figure(dir: &Path, stem: &str, t: &Trajectory) -> Result<Files, String> {
    render_both!(dir, stem, SIZE, |root| draw(&root, t))
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    t: &Trajectory,
) -> Result<(), String> {
    let root = root
        .titled(&t.title, (FONT, TITLE_PX).into_font())
        .map_err(err)?;
    let (top, bottom) = root.split_vertically(SIZE.1 * 55 / 100);
    let tmax = t
        .items_per_s
        .iter()
        .chain(t.concurrency.iter().flat_map(|c| c.1.iter()))
        .map(|p| p.0)
        .fold(0.0, f64::max)
        .max(1e-3);
    let ymax = t
        .items_per_s
        .iter()
        .map(|p| p.1)
        .chain(t.reference.iter().map(|r| r.0))
        .fold(1.0, f64::max)
        * 1.1;
    let mut chart = panel(&top, 30, tmax, ymax, None, "items/s")?;
    for &at in &t.changes {
        chart
            .draw_series(LineSeries::new(
                vec![(at, 0.0), (at, ymax)],
                RGBColor(200, 200, 200).stroke_width(1),
            ))
            .map_err(err)?;
    }
    chart
        .draw_series(LineSeries::new(
            t.items_per_s.clone(),
            color(0).stroke_width(2),
        ))
        .map_err(err)?
        .label("autotune, per reading")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color(0).stroke_width(2)));
    if let Some((y, label)) = &t.reference {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, *y), (tmax, *y)],
                8,
                6,
                BLACK.stroke_width(2),
            ))
            .map_err(err)?
            .label(label.as_str())
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], BLACK.stroke_width(2)));
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    let cmax = t
        .concurrency
        .iter()
        .flat_map(|c| c.1.iter().map(|p| p.1))
        .fold(1.0, f64::max)
        * 1.15;
    let mut chart = panel(
        &bottom,
        44,
        tmax,
        cmax,
        Some("seconds into the epoch"),
        if t.setting.is_empty() {
            "concurrency"
        } else {
            &t.setting
        },
    )?;
    for (i, (name, pts)) in t.concurrency.iter().enumerate() {
        let c = color(i + 1);
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(2)));
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    Ok(())
}

type Panel<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One panel over `0..tmax` × `0..ymax` with its mesh drawn.
fn panel<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, plotters::coord::Shift>,
    x_label_px: u32,
    tmax: f64,
    ymax: f64,
    x_desc: Option<&str>,
    y_desc: &str,
) -> Result<Panel<'a, DB>, String> {
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(x_label_px)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..tmax, 0.0..ymax)
        .map_err(err)?;
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(WHITE)
        .bold_line_style(GRID)
        .y_desc(y_desc)
        .x_label_formatter(&|v| format!("{v:.1}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .axis_desc_style((FONT, AXIS_PX).into_font())
        .label_style((FONT, LABEL_PX).into_font());
    if let Some(d) = x_desc {
        mesh.x_desc(d);
    }
    mesh.draw().map_err(err)?;
    Ok(chart)
}

/// The panel's legend at `pos`.
fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut Panel<'a, DB>,
    pos: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(pos)
        .background_style(WHITE.mix(0.85))
        .border_style(GRID)
        .label_font((FONT, LABEL_PX).into_font())
        .draw()
        .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_both_panels_into_svg_and_png() {
        let dir = std::env::temp_dir().join(format!("schedlab-tuning-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let t = Trajectory {
            title: "moving bottleneck".into(),
            items_per_s: (0..50).map(|i| (i as f64 * 0.02, 9000.0)).collect(),
            reference: Some((9300.0, "best static (read=64)".into())),
            concurrency: vec![("read".into(), vec![(0.0, 4.0), (0.5, 14.0), (1.0, 39.0)])],
            setting: String::new(),
            changes: vec![0.02, 0.5],
        };
        let files = trajectory_figure(&dir, "trajectory", &t).unwrap();
        let svg = std::fs::read_to_string(&files.svg).unwrap();
        assert!(svg.contains("moving bottleneck"));
        assert!(svg.contains("best static (read=64)"));
        assert!(svg.contains("concurrency"));
        assert!(std::fs::metadata(&files.png).unwrap().len() > 1000);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! One function per figure. Each takes the loaded [`Suite`], the matrix to draw, a small
//! options struct and the output directory; it writes `<matrix>-<figure>.svg` and `.png` and
//! returns a [`Figure`] (title, caption, files), or [`FigureError::Skip`] with the reason when
//! the matrix lacks the axes the figure needs.
//!
//! Every figure is drawn with one small chart builder, so a new figure type is one function
//! (and a line in [`render_matrix`]): `Frame` lays out the title, the panels and the legend
//! column, `Chart` sets up a panel's axes the way every figure draws them (grid, fonts, tick
//! labels, descriptions), `Marks` draws reference lines, segments and measured series with
//! their CIs, and the legend takes `strategy_keys`. Options structs are declared with
//! `options!` (fields, docs and defaults in one place).

use std::path::Path;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::results::{CellSummary, RunRow, Stat};
use crate::style::{
    self, color, draw_hatched, draw_marker, draw_steal, err, hatch, marker, render_both, Files,
    Hatch, Marker, AXIS_PX, FONT, GRID, LABEL_PX, REFERENCE, SIZE, TITLE_PX,
};
use crate::suite::{group, label, strategies, varying, Axis, Suite};
use crate::theory;

/// A figure written to disk.
#[derive(Clone, Debug)]
pub struct Figure {
    /// File stem, e.g. `balance-lif`.
    pub name: String,
    /// Title.
    pub title: String,
    /// How to read it.
    pub caption: String,
    /// Results worth printing (e.g. the fitted serial fraction).
    pub notes: Vec<String>,
    /// The SVG and PNG.
    pub files: Files,
}

/// Why a figure was not drawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FigureError {
    /// The matrix does not have what the figure needs (the reason says what).
    Skip(String),
    /// Drawing or writing failed.
    Draw(String),
}

impl From<String> for FigureError {
    fn from(e: String) -> Self {
        FigureError::Draw(e)
    }
}

/// Result of one figure function.
pub type FigureResult = Result<Figure, FigureError>;

fn skip<T>(why: impl Into<String>) -> Result<T, FigureError> {
    Err(FigureError::Skip(why.into()))
}

/// Width of the legend column on the right of every figure: wide enough for the suite's
/// longest strategy name (with a prefix such as "measured: "), between 220 and 300 pixels;
/// longer names wrap onto more lines.
fn legend_w(suite: &Suite) -> u32 {
    let longest = suite
        .cells
        .iter()
        .map(|c| c.coords.strategy.chars().count())
        .max()
        .unwrap_or(10);
    ((longest + 6) as f64 * 6.5 + 45.0).clamp(220.0, 300.0) as u32
}

fn text_style(px: u32) -> TextStyle<'static> {
    TextStyle::from((FONT, px).into_font()).color(&BLACK)
}

/// One legend entry.
enum Key {
    Bar(Hatch, RGBColor),
    Line(Option<Marker>, RGBColor, bool),
    /// The Gantt steal marker.
    Steal,
}

/// Draw the legend `items` in `area` (the right-hand column), top-aligned at `y0`.
fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    y0: i32,
    items: &[(String, Key)],
) -> Result<(), String> {
    legend_y(area, y0, items).map(|_| ())
}

/// [`legend`], returning where the next line of the column may go.
fn legend_y<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    y0: i32,
    items: &[(String, Key)],
) -> Result<i32, String> {
    let mut y = y0;
    let bottom = area.dim_in_pixel().1 as i32 - 16;
    for (i, (name, key)) in items.iter().enumerate() {
        if y > bottom - 22 && i + 1 < items.len() {
            area.draw(&Text::new(
                format!("… and {} more", items.len() - i),
                (8, y - (LABEL_PX as i32) / 2),
                text_style(LABEL_PX - 1),
            ))
            .map_err(err)?;
            y += 22;
            break;
        }
        match key {
            Key::Bar(h, c) => draw_hatched(area, (8, y - 7), (30, y + 7), *h, *c)?,
            Key::Line(m, c, dashed) => {
                if *dashed {
                    for k in 0..3 {
                        area.draw(&PathElement::new(
                            vec![(6 + k * 9, y), (12 + k * 9, y)],
                            c.stroke_width(2),
                        ))
                        .map_err(err)?;
                    }
                } else {
                    area.draw(&PathElement::new(vec![(6, y), (32, y)], c.stroke_width(2)))
                        .map_err(err)?;
                }
                if let Some(m) = m {
                    draw_marker(area, (19, y), *m, *c)?;
                }
            }
            Key::Steal => {
                draw_steal(area, (19, y + 5), 10, true)?;
                draw_steal(area, (19, y + 5), 10, false)?;
            }
        }
        let fit = ((area.dim_in_pixel().0 as f64 - 45.0) / 7.0).max(8.0) as usize;
        let lines = wrap(name, fit);
        for (k, line) in lines.iter().enumerate() {
            area.draw(&Text::new(
                line.clone(),
                (
                    38 + if k > 0 { 8 } else { 0 },
                    y - (LABEL_PX as i32) / 2 + 15 * k as i32,
                ),
                text_style(LABEL_PX - 1),
            ))
            .map_err(err)?;
        }
        y += 22 + 15 * (lines.len() as i32 - 1);
    }
    Ok(y)
}

/// `matrix` as a file-name stem: ASCII letters, digits, `-` and `_` kept, the rest `_`.
///
/// ```
/// assert_eq!(reports::figures::slug("a b/<c>"), "a_b__c_");
/// ```
pub fn slug(matrix: &str) -> String {
    let s: String = matrix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "matrix".into()
    } else {
        s
    }
}

/// A " · "-joined label as lines of at most `width` characters, nothing dropped: one line per
/// part, a long part broken after its commas, opening parentheses and `=` signs, and a piece
/// still too long split where it reaches `width`.
///
/// ```
/// use reports::figures::wrap;
/// assert_eq!(wrap("lognormal(mean=50us,sigma=1.5) · n=2000", 20),
///            vec!["lognormal(mean=50us,", "sigma=1.5)", "n=2000"]);
/// assert_eq!(wrap("lognormal(mean=50us,sigma=1.5)", 12),
///            vec!["lognormal(", "mean=50us,", "sigma=1.5)"]);
/// assert_eq!(wrap("speeds=1,1,1,1,1,1,1,0.25", 10),
///            vec!["speeds=1,", "1,1,1,1,1,", "1,0.25"]);
/// assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
/// ```
pub fn wrap(label: &str, width: usize) -> Vec<String> {
    let width = width.max(4);
    let mut lines: Vec<String> = Vec::new();
    for part in label.split(" · ") {
        let mut cur = String::new();
        for piece in part.split_inclusive([',', '(', '=']) {
            if !cur.is_empty() && cur.chars().count() + piece.chars().count() > width {
                lines.push(std::mem::take(&mut cur));
            }
            cur.push_str(piece);
            while cur.chars().count() > width {
                let head: String = cur.chars().take(width).collect();
                cur = cur.chars().skip(width).collect();
                lines.push(head);
            }
        }
        if !cur.is_empty() {
            lines.push(cur);
        }
    }
    lines
}

/// `s` cut to `n` characters with an ellipsis.
pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// A duration in ns as a short label (`850ns`, `12.5us`, `3.2ms`, `1.5s`).
pub fn fmt_ns(ns: f64) -> String {
    let a = ns.abs();
    if a == 0.0 {
        return "0".into();
    }
    let (v, u) = if a >= 1e9 {
        (ns / 1e9, "s")
    } else if a >= 1e6 {
        (ns / 1e6, "ms")
    } else if a >= 1e3 {
        (ns / 1e3, "us")
    } else {
        (ns, "ns")
    };
    let digits = if v.abs() >= 100.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$}{u}")
}

/// A tick label for worker `x` (`w3`); none between workers.
fn worker_tick(x: &f64) -> String {
    if (x - x.round()).abs() < 1e-9 && *x >= 0.0 {
        format!("w{}", x.round() as usize)
    } else {
        String::new()
    }
}

/// A tick label for a time in ns ([`fmt_ns`]).
fn ns_tick(x: &f64) -> String {
    fmt_ns(*x)
}

/// A tick label for `x`; on a log axis only the 1-2-5 ticks of each decade are labelled.
fn tick_125(x: f64, log: bool) -> String {
    if !log {
        return format!("{x}");
    }
    let lead = x / 10f64.powf(x.log10().floor());
    if [1.0, 2.0, 5.0].iter().any(|d| (lead - d).abs() < 1e-6) {
        format!("{}", (x * 1e6).round() / 1e6)
    } else {
        String::new()
    }
}

/// Grid shape for `n` panels.
fn grid(n: usize) -> (usize, usize) {
    match n {
        0 | 1 => (1, 1),
        2 => (1, 2),
        3 | 4 => (2, 2),
        5 | 6 => (2, 3),
        _ => (2, 4),
    }
}

/// [`group`], where a single group (nothing but the excluded axes varies) is named by its
/// setting (workload, workers, and speeds where uneven) instead of "all".
fn named_groups<'a>(
    cells: &[&'a CellSummary],
    exclude: &[Axis],
) -> Vec<(String, Vec<&'a CellSummary>)> {
    let mut out = group(cells, exclude);
    if let [(label, g)] = out.as_mut_slice() {
        if label == "all" {
            if let Some(c) = g.first() {
                let mut axes = vec![Axis::Workload, Axis::Workers];
                if !c.coords.speeds.is_empty() && c.coords.speeds != "uniform" {
                    axes.push(Axis::Speeds);
                }
                *label = crate::suite::label(&c.coords, &axes, &[]);
            }
        }
    }
    out
}

/// Groups of cells, each named by its setting.
type Groups<'a> = Vec<(String, Vec<&'a CellSummary>)>;

/// For the figures that set strategies side by side: the cells of `matrix` that `keep`
/// accepts, grouped by everything but the strategy ([`named_groups`]), and the strategies in
/// palette order; skipped with `none` when no cell is kept.
fn by_strategy<'a>(
    suite: &'a Suite,
    matrix: &str,
    keep: impl Fn(&CellSummary) -> bool,
    none: &str,
) -> Result<(Vec<&'a CellSummary>, Groups<'a>, Vec<String>), FigureError> {
    let cells: Vec<&CellSummary> = suite
        .cells_of(matrix)
        .into_iter()
        .filter(|c| keep(c))
        .collect();
    if cells.is_empty() {
        return skip(none);
    }
    let groups = named_groups(&cells, &[Axis::Strategy]);
    let strats = strategies(&cells);
    Ok((cells, groups, strats))
}

/// Map a chart coordinate to pixels relative to `area`'s origin.
fn rel(base: (i32, i32), p: (i32, i32)) -> (i32, i32) {
    (p.0 - base.0, p.1 - base.1)
}

// ---------------------------------------------------------------------------------------------
// The chart builder every figure uses

/// An options struct of a figure: its fields, documented, each with its default.
macro_rules! options {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident: $ty:ty = $default:expr,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: $ty,)*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $($field: $default,)* }
            }
        }
    };
}

/// The canvas of a figure: the legend column on the right (as wide as [`legend_w`]) and, on the
/// left, the title over a grid of panels. A figure of one panel may leave the title to its
/// chart's caption ([`Frame::single`]).
pub(crate) struct Frame<DB: DrawingBackend> {
    /// The panels, row by row.
    pub panels: Vec<DrawingArea<DB, Shift>>,
    /// The legend column.
    pub side: DrawingArea<DB, Shift>,
}

impl<DB: DrawingBackend> Frame<DB> {
    /// `title` over `rows` × `cols` panels, beside the legend column.
    pub fn new(
        root: &DrawingArea<DB, Shift>,
        suite: &Suite,
        title: &str,
        (rows, cols): (usize, usize),
    ) -> Result<Frame<DB>, String> {
        let (main, side) = Frame::split(root, suite);
        let (head, body) = main.split_vertically(36);
        head.draw(&Text::new(title.to_string(), (12, 6), text_style(TITLE_PX)))
            .map_err(err)?;
        Ok(Frame {
            panels: body.split_evenly((rows, cols)),
            side,
        })
    }

    /// One panel beside the legend column; the panel's chart carries the title
    /// ([`Chart::titled`]).
    pub fn single(root: &DrawingArea<DB, Shift>, suite: &Suite) -> Frame<DB> {
        let (main, side) = Frame::split(root, suite);
        Frame {
            panels: vec![main],
            side,
        }
    }

    fn split(
        root: &DrawingArea<DB, Shift>,
        suite: &Suite,
    ) -> (DrawingArea<DB, Shift>, DrawingArea<DB, Shift>) {
        let width = root.dim_in_pixel().0;
        root.split_horizontally(width.saturating_sub(legend_w(suite)))
    }
}

/// Which grid lines a chart draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grid {
    /// Both.
    Both,
    /// Horizontal lines only (bar charts).
    Horizontal,
    /// Vertical lines only (rows of labelled values).
    Vertical,
    /// None (timelines).
    None,
}

/// A tick-label formatter.
pub(crate) type Fmt<'f> = &'f dyn Fn(&f64) -> String;

/// One chart's axes, set up the way every figure draws them: light grey grid lines, tick
/// labels and axis descriptions in the shared font, a caption above. Start from
/// [`Chart::titled`] (a figure's only chart, its caption the figure's title) or
/// [`Chart::panel`] (one of several panels), adjust, and [`Chart::build`] on an area.
#[derive(Clone)]
pub(crate) struct Chart<'f> {
    caption: (String, u32),
    margin: u32,
    x_area: u32,
    y_area: u32,
    x_desc: Option<String>,
    y_desc: Option<String>,
    tick_px: u32,
    desc_px: u32,
    x_ticks: Option<usize>,
    y_ticks: Option<usize>,
    x_fmt: Option<Fmt<'f>>,
    y_fmt: Option<Fmt<'f>>,
    grid: Grid,
}

impl<'f> Chart<'f> {
    /// A figure's only chart: the title as its caption, large tick labels.
    pub fn titled(title: &str) -> Chart<'f> {
        Chart {
            caption: (title.to_string(), TITLE_PX),
            margin: 10,
            x_area: 40,
            y_area: 70,
            x_desc: None,
            y_desc: None,
            tick_px: LABEL_PX,
            desc_px: AXIS_PX,
            x_ticks: None,
            y_ticks: None,
            x_fmt: None,
            y_fmt: None,
            grid: Grid::Both,
        }
    }

    /// One panel of several, captioned `caption` at `caption_px`.
    pub fn panel(caption: impl Into<String>, caption_px: u32) -> Chart<'f> {
        Chart {
            caption: (caption.into(), caption_px),
            margin: 8,
            x_area: 36,
            y_area: 50,
            tick_px: LABEL_PX - 1,
            desc_px: LABEL_PX,
            ..Chart::titled("")
        }
    }

    /// The caption above the chart.
    pub fn caption(mut self, text: impl Into<String>, px: u32) -> Chart<'f> {
        self.caption = (text.into(), px);
        self
    }

    /// Smaller text, for panels in a grid: tick labels `LABEL_PX - 2`, descriptions
    /// `LABEL_PX - 1`.
    pub fn small(self) -> Chart<'f> {
        self.text(LABEL_PX - 2, LABEL_PX - 1)
    }

    /// Tick label and axis description sizes.
    pub fn text(mut self, tick_px: u32, desc_px: u32) -> Chart<'f> {
        self.tick_px = tick_px;
        self.desc_px = desc_px;
        self
    }

    /// Margin around the chart.
    pub fn margin(mut self, px: u32) -> Chart<'f> {
        self.margin = px;
        self
    }

    /// Room for the x tick labels and description (below) and the y ones (left).
    pub fn areas(mut self, x: u32, y: u32) -> Chart<'f> {
        self.x_area = x;
        self.y_area = y;
        self
    }

    /// The x axis: its description.
    pub fn x_desc(mut self, desc: &str) -> Chart<'f> {
        self.x_desc = Some(desc.to_string());
        self
    }

    /// The y axis: its description.
    pub fn y_desc(mut self, desc: &str) -> Chart<'f> {
        self.y_desc = Some(desc.to_string());
        self
    }

    /// How many x tick labels at most (0: none).
    pub fn x_ticks(mut self, n: usize) -> Chart<'f> {
        self.x_ticks = Some(n);
        self
    }

    /// How many y tick labels at most (0: none).
    pub fn y_ticks(mut self, n: usize) -> Chart<'f> {
        self.y_ticks = Some(n);
        self
    }

    /// The x tick labels' text.
    pub fn x_fmt(mut self, f: Fmt<'f>) -> Chart<'f> {
        self.x_fmt = Some(f);
        self
    }

    /// The y tick labels' text.
    pub fn y_fmt(mut self, f: Fmt<'f>) -> Chart<'f> {
        self.y_fmt = Some(f);
        self
    }

    /// Which grid lines to draw.
    pub fn grid(mut self, grid: Grid) -> Chart<'f> {
        self.grid = grid;
        self
    }

    /// The chart on `area` over `x` × `y`, its axes drawn.
    #[allow(clippy::type_complexity)]
    pub fn build<'a, DB, X, Y>(
        &self,
        area: &'a DrawingArea<DB, Shift>,
        x: X,
        y: Y,
    ) -> Result<ChartContext<'a, DB, Cartesian2d<X::CoordDescType, Y::CoordDescType>>, String>
    where
        DB: DrawingBackend + 'a,
        X: AsRangedCoord<Value = f64>,
        Y: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let mut builder = ChartBuilder::on(area);
        builder
            .margin(self.margin)
            .x_label_area_size(self.x_area)
            .y_label_area_size(self.y_area);
        if !self.caption.0.is_empty() {
            builder.caption(&self.caption.0, (FONT, self.caption.1));
        }
        let mut chart = builder.build_cartesian_2d(x, y).map_err(err)?;
        let mut mesh = chart.configure_mesh();
        mesh.bold_line_style(GRID.stroke_width(1))
            .light_line_style(WHITE.stroke_width(0))
            .label_style((FONT, self.tick_px))
            .axis_desc_style((FONT, self.desc_px));
        match self.grid {
            Grid::Both => {}
            Grid::Horizontal => {
                mesh.disable_x_mesh();
            }
            Grid::Vertical => {
                mesh.disable_y_mesh();
            }
            Grid::None => {
                mesh.disable_mesh();
            }
        }
        if let Some(n) = self.x_ticks {
            mesh.x_labels(n);
        }
        if let Some(n) = self.y_ticks {
            mesh.y_labels(n);
        }
        if let Some(f) = self.x_fmt {
            mesh.x_label_formatter(f);
        }
        if let Some(f) = self.y_fmt {
            mesh.y_label_formatter(f);
        }
        if let Some(d) = &self.x_desc {
            mesh.x_desc(d.as_str());
        }
        if let Some(d) = &self.y_desc {
            mesh.y_desc(d.as_str());
        }
        mesh.draw().map_err(err)?;
        Ok(chart)
    }
}

/// What figures draw on a chart besides their data's own marks.
pub(crate) trait Marks {
    /// A dashed reference line through `pts` in the reference grey, 2 px wide, dashes of
    /// `dash` pixels (on, off).
    fn reference_line(&mut self, pts: Vec<(f64, f64)>, dash: (u32, u32)) -> Result<(), String>;
    /// A straight segment from `a` to `b` in `style`.
    fn segment(&mut self, a: (f64, f64), b: (f64, f64), style: ShapeStyle) -> Result<(), String>;
    /// Measured series: a line, a marker and a 95% CI whisker at each point.
    fn measured(&mut self, series: &[Series]) -> Result<(), String>;
}

impl<DB, X, Y> Marks for ChartContext<'_, DB, Cartesian2d<X, Y>>
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    fn reference_line(&mut self, pts: Vec<(f64, f64)>, dash: (u32, u32)) -> Result<(), String> {
        let style = REFERENCE.stroke_width(2);
        self.draw_series(DashedLineSeries::new(pts, dash.0, dash.1, style))
            .map_err(err)?;
        Ok(())
    }

    fn segment(&mut self, a: (f64, f64), b: (f64, f64), style: ShapeStyle) -> Result<(), String> {
        self.draw_series(std::iter::once(PathElement::new(vec![a, b], style)))
            .map_err(err)?;
        Ok(())
    }

    fn measured(&mut self, series: &[Series]) -> Result<(), String> {
        for (_, j, pts) in series {
            let c = color(*j);
            self.draw_series(LineSeries::new(
                pts.iter().map(|p| (p.0, p.1)),
                c.stroke_width(2),
            ))
            .map_err(err)?;
            for &(x, y, ci) in pts {
                if ci > 0.0 {
                    self.segment((x, y - ci), (x, y + ci), c.stroke_width(1))?;
                }
                draw_marker(self.plotting_area(), (x, y), marker(*j), c)?;
            }
        }
        Ok(())
    }
}

/// Legend entries for the strategies whose index `shown` accepts: each its line, marker and
/// colour.
fn strategy_keys(strats: &[String], shown: impl Fn(usize) -> bool) -> Vec<(String, Key)> {
    strats
        .iter()
        .enumerate()
        .filter(|(j, _)| shown(*j))
        .map(|(j, s)| (s.clone(), Key::Line(Some(marker(j)), color(j), false)))
        .collect()
}

/// For a caption: " Showing 4 of 6 settings." where panels were left out, else nothing.
fn showing(shown: usize, total: usize, what: &str) -> String {
    if total > shown {
        format!(" Showing {shown} of {total} {what}.")
    } else {
        String::new()
    }
}

impl Figure {
    /// A figure with no notes.
    fn new(name: String, title: String, caption: String, files: Files) -> Figure {
        Figure {
            name,
            title,
            caption,
            notes: Vec::new(),
            files,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bars: LIF and efficiency

/// Which metric a bar figure shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarMetric {
    /// Load imbalance factor (max busy / mean busy); 1 is perfect.
    Lif,
    /// Efficiency (lower bound / makespan); 1 is perfect.
    Efficiency,
}

options! {
    /// Options of [`lif_bars`] and [`efficiency_bars`].
    BarOptions {
        /// Pixel size.
        size: (u32, u32) = SIZE,
    }
}

/// LIF by strategy for each workload (and other varying axes): grouped bars with 95% CI
/// whiskers over repetitions and a reference line at 1.0.
pub fn lif_bars(suite: &Suite, matrix: &str, opts: &BarOptions, dir: &Path) -> FigureResult {
    bars(suite, matrix, BarMetric::Lif, opts, dir)
}

/// Efficiency (lower bound / makespan) by strategy, the same layout as [`lif_bars`].
pub fn efficiency_bars(suite: &Suite, matrix: &str, opts: &BarOptions, dir: &Path) -> FigureResult {
    bars(suite, matrix, BarMetric::Efficiency, opts, dir)
}

fn bars(
    suite: &Suite,
    matrix: &str,
    metric: BarMetric,
    opts: &BarOptions,
    dir: &Path,
) -> FigureResult {
    let (cells, cats, strats) = by_strategy(suite, matrix, |_| true, "no cells")?;
    let stat = |c: &CellSummary| -> Stat {
        match metric {
            BarMetric::Lif => c.lif,
            BarMetric::Efficiency => c.efficiency,
        }
    };
    let (what, ylabel, kind) = match metric {
        BarMetric::Lif => (
            "Load imbalance (LIF)",
            "LIF = max busy / mean busy (1 = perfect)",
            "lif",
        ),
        BarMetric::Efficiency => (
            "Efficiency",
            "efficiency = lower bound / makespan (1 = ideal)",
            "efficiency",
        ),
    };
    let top = cells
        .iter()
        .map(|c| stat(c).mean + stat(c).ci95)
        .fold(1.0f64, f64::max)
        * 1.12;
    let n = cats.len();
    let name = format!("{}-{kind}", slug(matrix));
    let title = format!("{what} by strategy — {matrix}");
    // Category labels: every coordinate that varies within the figure, one line per axis,
    // long specs broken after commas. Where that needs more than MAX_LINES lines, the groups
    // are lettered and the caption spells them out.
    const MAX_LINES: usize = 6;
    let max_chars =
        ((opts.size.0.saturating_sub(legend_w(suite) + 90)) as usize / n.max(1) / 8).max(4);
    let mut wrapped: Vec<Vec<String>> = cats.iter().map(|(c, _)| wrap(c, max_chars)).collect();
    let lettered = wrapped.iter().any(|w| w.len() > MAX_LINES);
    if lettered {
        wrapped = (0..n).map(|i| vec![group_key(i)]).collect();
    }
    let lines = wrapped.iter().map(|w| w.len()).max().unwrap_or(1) as u32;
    let files = render_both!(dir, &name, opts.size, |root| {
        let frame = Frame::single(&root, suite);
        let main = &frame.panels[0];
        let mut chart = Chart::titled(&title)
            .areas(16 + 16 * lines, 70)
            .grid(Grid::Horizontal)
            .x_ticks(0)
            .y_desc(ylabel)
            .build(main, -0.5f64..n as f64 - 0.5, 0f64..top)?;
        let ns = strats.len().max(1) as f64;
        let bw = 0.8 / ns;
        let base = main.get_base_pixel();
        let below = text_style(LABEL_PX - 1).pos(Pos::new(HPos::Center, VPos::Top));
        for (i, w) in wrapped.iter().enumerate() {
            let p = rel(base, chart.backend_coord(&(i as f64, 0.0)));
            for (k, line) in w.iter().enumerate() {
                main.draw(&Text::new(
                    line.clone(),
                    (p.0, p.1 + 8 + 16 * k as i32),
                    below.clone(),
                ))
                .map_err(err)?;
            }
        }
        for (i, (_, group)) in cats.iter().enumerate() {
            for (j, s) in strats.iter().enumerate() {
                let Some(c) = group.iter().find(|c| &c.coords.strategy == s) else {
                    continue;
                };
                let st = stat(c);
                let x0 = i as f64 - 0.4 + j as f64 * bw;
                let a = rel(base, chart.backend_coord(&(x0 + 0.1 * bw, 0.0)));
                let b = rel(base, chart.backend_coord(&(x0 + 0.9 * bw, st.mean)));
                draw_hatched(main, a, b, hatch(j), color(j))?;
                if st.ci95 > 0.0 {
                    let xc = x0 + 0.5 * bw;
                    let (lo, hi) = (st.mean - st.ci95, st.mean + st.ci95);
                    let cap = 0.2 * bw;
                    for (a, b) in [
                        ((xc, lo), (xc, hi)),
                        ((xc - cap, lo), (xc + cap, lo)),
                        ((xc - cap, hi), (xc + cap, hi)),
                    ] {
                        chart.segment(a, b, BLACK.stroke_width(1))?;
                    }
                }
            }
        }
        chart.reference_line(vec![(-0.5, 1.0), (n as f64 - 0.5, 1.0)], (8, 5))?;
        let mut items: Vec<(String, Key)> = strats
            .iter()
            .enumerate()
            .map(|(j, s)| (s.clone(), Key::Bar(hatch(j), color(j))))
            .collect();
        items.push(("1.0 (perfect)".into(), Key::Line(None, REFERENCE, true)));
        legend(&frame.side, 50, &items)
    })?;
    let caption = match metric {
        BarMetric::Lif => "Each bar is one strategy's mean load imbalance factor (busiest worker's busy time over the mean) over repetitions; whiskers are 95% confidence intervals of the mean (Student t). The dashed line at 1.0 is perfect balance: the further a bar rises above it, the longer the busiest worker ran while others idled.",
        BarMetric::Efficiency => "Each bar is one strategy's mean efficiency, the lower bound on the makespan (total work over total speed, or the longest task) divided by the measured makespan; whiskers are 95% confidence intervals. 1.0 (dashed) means the run finished as early as any schedule could; 0.8 means it took 25% longer than that bound.",
    };
    let mut caption = caption.to_string();
    if lettered {
        let key: Vec<String> = cats
            .iter()
            .enumerate()
            .map(|(i, (c, _))| format!("{} = {c}", group_key(i)))
            .collect();
        caption.push_str(&format!(" Groups: {}.", key.join("; ")));
    }
    Ok(Figure::new(name, title, caption, files))
}

/// The letter naming group `i` where its label does not fit under the axis: A–Z, then A2….
fn group_key(i: usize) -> String {
    let l = char::from(b'A' + (i % 26) as u8);
    if i < 26 {
        l.to_string()
    } else {
        format!("{l}{}", i / 26 + 1)
    }
}

// ---------------------------------------------------------------------------------------------
// Latency CDF

options! {
    /// Options of [`latency_cdf`].
    CdfOptions {
        /// Pixel size.
        size: (u32, u32) = SIZE,
        /// At most this many panels (categories); the rest are listed in the caption.
        max_panels: usize = 4,
    }
}

/// The merged `[upper_ns, count]` buckets of `rows`.
fn merged_buckets(rows: &[&RunRow]) -> Vec<(u64, u64)> {
    let mut m: std::collections::BTreeMap<u64, u64> = Default::default();
    for r in rows {
        for [u, c] in &r.report.latency_buckets {
            *m.entry(*u).or_default() += c;
        }
    }
    m.into_iter().collect()
}

/// Latency CDF per strategy on a log time axis, from the stored histograms (all repetitions
/// merged), one panel per workload (and other varying axes); p50 and p99 marked.
pub fn latency_cdf(suite: &Suite, matrix: &str, opts: &CdfOptions, dir: &Path) -> FigureResult {
    let has = |c: &CellSummary| {
        suite
            .rows_of(c)
            .iter()
            .any(|r| !r.report.latency_buckets.is_empty())
    };
    let why = "no run stored a latency histogram (latency_buckets)";
    let (_, cats, strats) = by_strategy(suite, matrix, has, why)?;
    let shown: Vec<_> = cats.iter().take(opts.max_panels.max(1)).collect();
    let curves: Vec<Vec<Curve>> = shown
        .iter()
        .map(|(_, g)| {
            g.iter()
                .map(|c| {
                    let rows = suite.rows_of(c);
                    let b = merged_buckets(&rows);
                    let total: u64 = b.iter().map(|x| x.1).sum();
                    let mut cum = 0u64;
                    let mut pts = Vec::with_capacity(b.len() + 1);
                    if let Some(first) = b.first() {
                        pts.push((first.0 as f64 / 1.19, 0.0));
                    }
                    for (u, n) in &b {
                        cum += n;
                        pts.push((*u as f64, cum as f64 / total.max(1) as f64));
                    }
                    let mean = |f: &dyn Fn(&RunRow) -> u64| {
                        rows.iter().map(|r| f(r) as f64).sum::<f64>() / rows.len().max(1) as f64
                    };
                    let j = strats
                        .iter()
                        .position(|s| s == &c.coords.strategy)
                        .unwrap_or(0);
                    (
                        j,
                        pts,
                        mean(&|r| r.report.latency_ns.p50),
                        mean(&|r| r.report.latency_ns.p99),
                    )
                })
                .collect()
        })
        .collect();
    let all = curves
        .iter()
        .flatten()
        .flat_map(|c| c.1.iter().map(|p| p.0));
    let (lo, hi) = all.fold((f64::INFINITY, 0f64), |(a, b), x| (a.min(x), b.max(x)));
    let (lo, hi) = ((lo / 1.5).max(1.0), (hi * 1.5).max(lo * 10.0));
    let name = format!("{}-latency-cdf", slug(matrix));
    let title = format!("Latency CDF — {matrix}");
    let files = render_both!(dir, &name, opts.size, |root| {
        let frame = Frame::new(&root, suite, &title, grid(shown.len()))?;
        for (k, ((cat, _), curves)) in shown.iter().zip(&curves).enumerate() {
            let mut chart = Chart::panel(truncate(cat, 60), LABEL_PX + 1)
                .x_ticks(6)
                .x_fmt(&ns_tick)
                .x_desc("latency (completion − release), log scale")
                .y_desc("fraction of tasks ≤ x")
                .build(&frame.panels[k], (lo..hi).log_scale(), 0f64..1.02)?;
            for y in [0.5, 0.99] {
                chart
                    .draw_series(DashedLineSeries::new(
                        vec![(lo, y), (hi, y)],
                        4,
                        4,
                        GRID.mix(1.0).stroke_width(1),
                    ))
                    .map_err(err)?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        if y == 0.5 { "p50" } else { "p99" },
                        (lo * 1.05, y - 0.01),
                        text_style(LABEL_PX - 2).color(&REFERENCE),
                    )))
                    .map_err(err)?;
            }
            for (j, pts, p50, p99) in curves {
                let c = color(*j);
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
                    .map_err(err)?;
                for (x, y) in [(*p50, 0.5), (*p99, 0.99)] {
                    if x > 0.0 {
                        draw_marker(chart.plotting_area(), (x.max(lo), y), marker(*j), c)?;
                    }
                }
            }
        }
        legend(&frame.side, 60, &strategy_keys(&strats, |_| true))
    })?;
    let mut caption = "Each curve is the fraction of tasks (y) that completed within a latency x after their release, from the runs' stored log-bucket histograms (buckets 2^(1/4) wide, all repetitions merged). Markers sit at each strategy's measured p50 (y = 0.5) and p99 (y = 0.99). A curve further left is faster; a long flat tail to the right is a latency tail.".to_string();
    if cats.len() > shown.len() {
        let rest: Vec<&str> = cats[shown.len()..].iter().map(|c| c.0.as_str()).collect();
        caption.push_str(&format!(
            "{}; not shown: {}.",
            showing(shown.len(), cats.len(), "groups").trim_end_matches('.'),
            rest.join("; ")
        ));
    }
    Ok(Figure::new(name, title, caption, files))
}

// ---------------------------------------------------------------------------------------------
// Per-worker busy time and Gantt

/// The group whose strategies differ most in LIF (the one the per-worker figures show).
fn most_imbalanced<'a>(
    cats: &'a [(String, Vec<&'a CellSummary>)],
) -> &'a (String, Vec<&'a CellSummary>) {
    let spread = |g: &[&CellSummary]| {
        let it = g.iter().map(|c| c.lif.mean);
        it.clone().fold(f64::NEG_INFINITY, f64::max) - it.fold(f64::INFINITY, f64::min)
    };
    cats.iter()
        .max_by(|a, b| spread(&a.1).total_cmp(&spread(&b.1)))
        .unwrap_or(&cats[0])
}

options! {
    /// Options of [`per_worker_busy`].
    BusyOptions {
        /// Pixel size.
        size: (u32, u32) = SIZE,
        /// At most this many strategies (panels).
        max_panels: usize = 8,
    }
}

/// Per-worker busy time of one run per strategy (repetition 0), for the group where the
/// strategies' LIF differs most: the imbalance made visible.
pub fn per_worker_busy(
    suite: &Suite,
    matrix: &str,
    opts: &BusyOptions,
    dir: &Path,
) -> FigureResult {
    let (_, cats, strats) = by_strategy(suite, matrix, |_| true, "no cells")?;
    let (cat, g) = most_imbalanced(&cats);
    let runs: Vec<(usize, &CellSummary, &RunRow)> = g
        .iter()
        .filter_map(|c| {
            let j = strats.iter().position(|s| s == &c.coords.strategy)?;
            Some((j, *c, suite.first_row(c)?))
        })
        .take(opts.max_panels.max(1))
        .collect();
    if runs.iter().all(|r| r.2.report.per_worker.is_empty()) {
        return skip("no per-worker data in the runs");
    }
    let ymax = runs
        .iter()
        .flat_map(|r| r.2.report.per_worker.iter().map(|w| w.busy_ns as f64))
        .fold(1.0, f64::max)
        * 1.1;
    let name = format!("{}-per-worker", slug(matrix));
    let title = format!("Busy time per worker — {matrix}: {}", truncate(cat, 50));
    let files = render_both!(dir, &name, opts.size, |root| {
        let frame = Frame::new(&root, suite, &title, grid(runs.len()))?;
        for (k, (j, _, row)) in runs.iter().enumerate() {
            let area = &frame.panels[k];
            let rep = &row.report;
            let p = rep.per_worker.len();
            // The title fits the panel: the strategy is cut, the LIF kept; steals go below.
            let fit = (area.dim_in_pixel().0 as usize / 7)
                .saturating_sub(12)
                .max(8);
            let caption = format!("{} · LIF {:.2}", truncate(&rep.strategy, fit), rep.lif);
            let mut chart = Chart::panel(caption, LABEL_PX)
                .small()
                .areas(32, 68)
                .grid(Grid::Horizontal)
                // A label every ~28 px at most ("w12" is ~22 px wide); plotters then picks a
                // 1-2-5 step, and only whole workers are labelled.
                .x_ticks(p.min((area.dim_in_pixel().0.saturating_sub(84) as usize / 28).max(2)))
                .x_fmt(&worker_tick)
                .y_fmt(&ns_tick)
                .x_desc(&format!("worker ({} steals in the run)", rep.steals))
                .y_desc("busy time")
                .build(area, -0.5f64..p as f64 - 0.5, 0f64..ymax)?;
            let base = area.get_base_pixel();
            for w in &rep.per_worker {
                let x = w.id as f64;
                let a = rel(base, chart.backend_coord(&(x - 0.4, 0.0)));
                let b = rel(base, chart.backend_coord(&(x + 0.4, w.busy_ns as f64)));
                draw_hatched(area, a, b, hatch(*j), color(*j))?;
            }
            let mean =
                rep.per_worker.iter().map(|w| w.busy_ns as f64).sum::<f64>() / p.max(1) as f64;
            chart.reference_line(vec![(-0.5, mean), (p as f64 - 0.5, mean)], (6, 4))?;
        }
        let mut items: Vec<(String, Key)> = runs
            .iter()
            .map(|(j, c, _)| (c.coords.strategy.clone(), Key::Bar(hatch(*j), color(*j))))
            .collect();
        items.push(("mean busy time".into(), Key::Line(None, REFERENCE, true)));
        legend(&frame.side, 60, &items)
    })?;
    Ok(Figure::new(
        name,
        title,
        format!(
            "One run (repetition 0) per strategy on {cat}, the group where the strategies' load imbalance differs most. Each bar is the time a worker spent inside tasks; the dashed line is the mean. A bar far above the line is the worker that finished last: its excess over the mean is the time the other workers idled (LIF = tallest bar / mean). Titles give each run's LIF, axis labels its steal count.{}",
            if g.len() > runs.len() {
                format!(" Not shown (panel limit): {}.", g[runs.len()..].iter().map(|c| c.coords.strategy.as_str()).collect::<Vec<_>>().join(", "))
            } else {
                String::new()
            }
        ),
        files,
    ))
}

options! {
    /// Options of [`gantt`].
    GanttOptions {
        /// Pixel size.
        size: (u32, u32) = (960, 800),
        /// At most this many strategies (stacked panels).
        max_panels: usize = 6,
    }
}

/// Gantt timeline of one run per strategy (the run's stored timeline, repetition 0): one row
/// per worker, each task a bar coloured by its duration (log scale).
pub fn gantt(suite: &Suite, matrix: &str, opts: &GanttOptions, dir: &Path) -> FigureResult {
    let has = |c: &CellSummary| {
        suite
            .first_row(c)
            .is_some_and(|r| r.report.timeline.as_ref().is_some_and(|t| !t.is_empty()))
    };
    let why = "no run stored a timeline (the suite runner keeps one for repetition 0 of each cell)";
    let (_, cats, strats) = by_strategy(suite, matrix, has, why)?;
    let (cat, g) = most_imbalanced(&cats);
    let runs: Vec<&RunRow> = g
        .iter()
        .filter_map(|c| suite.first_row(c))
        .take(opts.max_panels.max(1))
        .collect();
    let left_out: Vec<String> = g
        .iter()
        .skip(opts.max_panels.max(1))
        .map(|c| c.coords.strategy.clone())
        .collect();
    let spans = |r: &RunRow| r.report.timeline.clone().unwrap_or_default();
    let durs = runs.iter().flat_map(|r| {
        spans(r)
            .into_iter()
            .map(|s| (s.end_ns - s.start_ns).max(1) as f64)
    });
    let (dmin, dmax) = durs.fold((f64::INFINITY, 1f64), |(a, b), d| (a.min(d), b.max(d)));
    let (lmin, lmax) = (dmin.ln(), dmax.ln().max(dmin.ln() + 1e-9));
    // A capped timeline holds every task that started before its last kept start (engines keep
    // each worker's first spans, then the earliest overall): show that window, not the makespan.
    let complete = |r: &RunRow| {
        r.report.timeline.as_ref().map_or(0, |t| t.len()) as u64
            >= r.report.executed + r.report.failed
    };
    let window = |r: &RunRow| {
        if complete(r) {
            r.report.makespan_ns as f64
        } else {
            spans(r).iter().map(|s| s.start_ns).max().unwrap_or(0) as f64
        }
    };
    let tmax = runs.iter().map(|r| window(r)).fold(1.0, f64::max);
    let name = format!("{}-gantt", slug(matrix));
    let title = format!("Timeline — {matrix}: {}", truncate(cat, 50));
    let mut truncated = Vec::new();
    for r in &runs {
        let n = r.report.timeline.as_ref().map_or(0, |t| t.len());
        if (n as u64) < r.report.executed + r.report.failed {
            truncated.push(format!(
                "{} ({} of {} tasks)",
                r.report.strategy,
                n,
                r.report.executed + r.report.failed
            ));
        }
    }
    let any_steal = runs.iter().any(|r| {
        spans(r)
            .iter()
            .any(|s| s.stolen && s.start_ns as f64 <= window(r))
    });
    let files = render_both!(dir, &name, opts.size, |root| {
        let frame = Frame::new(&root, suite, &title, (runs.len(), 1))?;
        let side = &frame.side;
        // Worker labels 13 px apart at most.
        let panel_h = (opts.size.1.saturating_sub(36) / runs.len().max(1) as u32) as usize;
        let row_labels = (panel_h.saturating_sub(60) / 13).max(2);
        for (k, r) in runs.iter().enumerate() {
            let area = &frame.panels[k];
            let p = r.report.workers;
            let j = strats
                .iter()
                .position(|s| s == &r.coords.strategy)
                .unwrap_or(0);
            // The title fits the panel (~7.5 px a character): the strategy is cut, not the rest.
            let tail = format!(
                " — makespan {}, {} steals{}",
                fmt_ns(r.report.makespan_ns as f64),
                r.report.steals,
                if complete(r) {
                    String::new()
                } else {
                    format!(" (record ends at {})", fmt_ns(window(r)))
                }
            );
            let fit = (area.dim_in_pixel().0 as f64 / 7.5) as usize;
            let fit = fit.saturating_sub(tail.chars().count()).max(12);
            let last = k + 1 == runs.len();
            let caption = format!("{}{tail}", truncate(&r.report.strategy, fit));
            let mut chart = Chart::panel(caption, LABEL_PX)
                .text(LABEL_PX - 3, LABEL_PX - 1)
                .margin(6)
                .areas(if last { 34 } else { 18 }, 50)
                .grid(Grid::None)
                .x_ticks(8)
                .y_ticks(p.min(row_labels))
                .x_fmt(&ns_tick)
                .y_fmt(&worker_tick)
                .x_desc(if last { "time since the run began" } else { "" })
                .build(area, 0f64..tmax, -0.5f64..p as f64 - 0.5)?;
            let w = window(r);
            let sp: Vec<scheduler::Span> = spans(r)
                .into_iter()
                .filter(|s| (s.start_ns as f64) <= w)
                .map(|mut s| {
                    s.end_ns = s.end_ns.min(tmax as u64);
                    s
                })
                .collect();
            chart
                .draw_series(sp.iter().map(|s| {
                    let d = (s.end_ns - s.start_ns).max(1) as f64;
                    let t = (d.ln() - lmin) / (lmax - lmin);
                    let y = s.worker as f64;
                    Rectangle::new(
                        [(s.start_ns as f64, y - 0.38), (s.end_ns as f64, y + 0.38)],
                        style::viridis(t).filled(),
                    )
                }))
                .map_err(err)?;
            // Steals: a triangle pointing down at the start of each task a steal took, its
            // tip at the row's centre, as tall as the upper half of the bar (5 px at least, so
            // it shows on thin rows too, where it reaches into the row above).
            let row_px =
                (chart.backend_coord(&(0.0, 0.0)).1 - chart.backend_coord(&(0.0, 1.0)).1).abs();
            let h = ((row_px as f64 * 0.38).round() as i32).clamp(5, 8);
            for halo in [true, false] {
                for s in sp.iter().filter(|s| s.stolen) {
                    draw_steal(
                        chart.plotting_area(),
                        (s.start_ns as f64, s.worker as f64),
                        h,
                        halo,
                    )?;
                }
            }
            // The makespan, in the strategy's colour: where the last worker finished.
            if complete(r) {
                let m = r.report.makespan_ns as f64;
                chart.segment((m, -0.5), (m, p as f64 - 0.5), color(j).stroke_width(2))?;
            } else {
                // A capped timeline: where the record stops (the run went on), dashed grey;
                // the title gives the time, so the cut is not read as the end of the run.
                chart.reference_line(vec![(w, -0.5), (w, p as f64 - 0.5)], (5, 4))?;
            }
        }
        // Colour bar.
        side.draw(&Text::new("task duration", (10, 50), text_style(LABEL_PX)))
            .map_err(err)?;
        let (y0, y1) = (75, 275);
        for y in y0..y1 {
            let t = 1.0 - (y - y0) as f64 / (y1 - y0) as f64;
            side.draw(&PathElement::new(
                vec![(12, y), (36, y)],
                style::viridis(t).stroke_width(1),
            ))
            .map_err(err)?;
        }
        side.draw(&Text::new(
            fmt_ns(dmax),
            (42, y0 - 6),
            text_style(LABEL_PX - 1),
        ))
        .map_err(err)?;
        side.draw(&Text::new(
            fmt_ns(dmin),
            (42, y1 - 10),
            text_style(LABEL_PX - 1),
        ))
        .map_err(err)?;
        side.draw(&Text::new(
            "(log scale)",
            (42, (y0 + y1) / 2),
            text_style(LABEL_PX - 2),
        ))
        .map_err(err)?;
        let mut items: Vec<(String, Key)> = Vec::new();
        if any_steal {
            items.push(("steal".into(), Key::Steal));
        }
        if runs.iter().any(|r| !complete(r)) {
            items.push((
                "end of a capped timeline".into(),
                Key::Line(None, REFERENCE, true),
            ));
        }
        items.extend(runs.iter().filter(|r| complete(r)).map(|r| {
            let j = strats
                .iter()
                .position(|s| s == &r.coords.strategy)
                .unwrap_or(0);
            (
                format!("end: {}", r.coords.strategy),
                Key::Line(None, color(j), false),
            )
        }));
        legend(side, 310, &items)
    })?;
    let mut caption = format!(
        "One run (repetition 0) per strategy on {cat}. Each row is a worker, each bar a task from its start to its end, coloured by its duration (dark = short, yellow = long, log scale). White gaps are idle or scheduling time; the vertical line is the makespan. Rows that end early beside one that runs on show imbalance. A small black triangle pointing down at a bar's start marks a steal: the task was the first of a batch taken from another worker's queue (the other tasks of the batch run later as local ones); steal counts are in the panel titles."
    );
    if !left_out.is_empty() {
        caption.push_str(&format!(
            " Not shown (panel limit): {}.",
            left_out.join(", ")
        ));
    }
    if !truncated.is_empty() {
        caption.push_str(&format!(
            " Timelines are capped, so the figure shows the start of those runs up to the last recorded start (every task that started earlier is drawn; a dashed grey line marks where the record ends, in place of the makespan line): {}.",
            truncated.join(", ")
        ));
    }
    Ok(Figure::new(name, title, caption, files))
}

// ---------------------------------------------------------------------------------------------
// Line figures: scaling, queueing, estimates, heterogeneous workers

/// A CDF curve: palette index, points, p50, p99.
type Curve = (usize, Vec<(f64, f64)>, f64, f64);

/// A measured series: label, palette index, points `(x, mean, ci95)`.
pub(crate) type Series = (String, usize, Vec<(f64, f64, f64)>);

fn mean_of(rows: &[&RunRow], f: impl Fn(&RunRow) -> f64) -> Stat {
    Stat::of(&rows.iter().map(|r| f(r)).collect::<Vec<_>>())
}

options! {
    /// Options of [`scaling`].
    ScalingOptions {
        /// Pixel size.
        size: (u32, u32) = SIZE,
    }
}

/// Speedup and efficiency vs workers per strategy, with the ideal line, a fitted Amdahl curve
/// (its serial fraction S in the legend and in [`Figure::notes`]) and Gustafson's line for the
/// same S. Needs at least three worker counts in one series.
pub fn scaling(suite: &Suite, matrix: &str, opts: &ScalingOptions, dir: &Path) -> FigureResult {
    let cells = suite.cells_of(matrix);
    let groups = group(&cells, &[Axis::Workers]);
    let strats = strategies(&cells);
    // Series: one per group (strategy and the other axes), points by worker count.
    let mut speed: Vec<Series> = Vec::new();
    let mut eff: Vec<Series> = Vec::new();
    let mut fits: Vec<(String, usize, f64)> = Vec::new();
    let mut notes = Vec::new();
    let mut relative = false;
    for (lab, g) in &groups {
        let lab = if lab == "all" {
            &g[0].coords.strategy
        } else {
            lab
        };
        let mut ps: Vec<&CellSummary> = g.clone();
        ps.sort_by_key(|c| c.coords.workers);
        ps.dedup_by_key(|c| c.coords.workers);
        if ps.len() < 3 {
            continue;
        }
        let j = strats
            .iter()
            .position(|s| s == &ps[0].coords.strategy)
            .unwrap_or(0);
        let p0 = ps[0].coords.workers as f64;
        relative |= p0 > 1.0;
        let t0 = ps[0].makespan_ns.mean;
        let pts: Vec<(f64, f64, f64)> = ps
            .iter()
            .map(|c| {
                let s = p0 * t0 / c.makespan_ns.mean.max(1.0);
                // CI of T0/T by the delta method on T.
                let ci = s * c.makespan_ns.ci95 / c.makespan_ns.mean.max(1.0);
                (c.coords.workers as f64, s, ci)
            })
            .collect();
        let fit = theory::fit_amdahl(&pts.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>());
        if let Some(s) = fit {
            notes.push(format!(
                "{matrix}: {lab}: fitted Amdahl serial fraction S = {s:.4}"
            ));
            fits.push((lab.clone(), j, s));
        }
        speed.push((lab.clone(), j, pts));
        eff.push((
            lab.clone(),
            j,
            ps.iter()
                .map(|c| {
                    (
                        c.coords.workers as f64,
                        c.efficiency.mean,
                        c.efficiency.ci95,
                    )
                })
                .collect(),
        ));
    }
    if speed.is_empty() {
        return skip("needs at least 3 worker counts for one strategy and workload");
    }
    let pmin = speed
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.0))
        .fold(f64::INFINITY, f64::min);
    let pmax = speed
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let smax = speed
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1 + p.2))
        .fold(pmax, f64::max)
        * 1.05;
    let emax = eff
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1 + p.2))
        .fold(1.0, f64::max)
        * 1.08;
    let name = format!("{}-scaling", slug(matrix));
    let title = format!("Scaling — {matrix}");
    // Wide worker ranges (1 to 1,024) read better on log axes, where ideal speedup is a line.
    let log = pmax / pmin >= 32.0;
    let smin = speed
        .iter()
        .flat_map(|s| s.2.iter().map(|p| (p.1 - p.2).max(p.1 / 2.0)))
        .fold(pmin, f64::min)
        .max(1e-3)
        / 1.2;
    let curve = |f: &dyn Fn(f64) -> f64| -> Vec<(f64, f64)> {
        (0..=80)
            .map(|i| {
                let t = i as f64 / 80.0;
                if log {
                    pmin * (pmax / pmin).powf(t)
                } else {
                    pmin + (pmax - pmin) * t
                }
            })
            .map(|n| (n, f(n)))
            .collect()
    };
    let drawn = ScalingPanels {
        speed: &speed,
        eff: &eff,
        fits: fits
            .iter()
            .map(|(_, j, s)| {
                (
                    *j,
                    curve(&|n| theory::amdahl(*s, n)),
                    curve(&|n| theory::gustafson(*s, n).min(smax)),
                )
            })
            .collect(),
        ideal: curve(&|n| n),
        p: (pmin, pmax),
        log,
        speed_desc: if relative {
            "speedup (relative, S(P0) = P0)"
        } else {
            "speedup T1 / TP"
        },
    };
    let files = render_both!(dir, &name, opts.size, |root| {
        let frame = Frame::new(&root, suite, &title, (1, 2))?;
        if log {
            drawn.draw(
                &frame.panels,
                (
                    (pmin / 1.2..pmax * 1.2).log_scale(),
                    (smin..smax).log_scale(),
                ),
                ((pmin / 1.2..pmax * 1.2).log_scale(), 0f64..emax),
            )?;
        } else {
            drawn.draw(
                &frame.panels,
                (0f64..pmax * 1.05, 0f64..smax),
                (0f64..pmax * 1.05, 0f64..emax),
            )?;
        }
        let mut items: Vec<(String, Key)> = speed
            .iter()
            .map(|(l, j, _)| (l.clone(), Key::Line(Some(marker(*j)), color(*j), false)))
            .collect();
        for (l, j, s) in &fits {
            items.push((
                format!("Amdahl S={s:.3}: {l}"),
                Key::Line(None, color(*j), true),
            ));
        }
        items.push(("ideal (S = P)".into(), Key::Line(None, REFERENCE, true)));
        let y = legend_y(&frame.side, 60, &items)?;
        frame
            .side
            .draw(&Text::new(
                "dotted: Gustafson, same S",
                (8, y - 8),
                text_style(LABEL_PX - 2),
            ))
            .map_err(err)
    })?;
    let fitted: Vec<String> = fits
        .iter()
        .map(|(l, _, s)| format!("{l}: S = {s:.4}"))
        .collect();
    Ok(Figure {
        name,
        title,
        caption: format!(
            "Left: speedup (makespan at the fewest workers over makespan at P{}) against P, with whiskers for 95% CIs. The grey dashed line is ideal linear speedup; the coloured dashed curve is Amdahl's law 1/(S + (1 − S)/P) with the serial fraction S fitted by least squares on 1/speedup; the dotted line is Gustafson's scaled speedup S + P(1 − S) for the same S (what a problem growing with P could reach). Right: efficiency against P; 1 is ideal. Fitted: {}.",
            if relative { ", scaled so that the first point equals its P" } else { "" },
            fitted.join("; ")
        ),
        notes,
        files,
    })
}

/// Points of a curve.
type Points = Vec<(f64, f64)>;

/// What the two panels of [`scaling`] draw, computed once for both backends.
struct ScalingPanels<'a> {
    speed: &'a [Series],
    eff: &'a [Series],
    /// Per fitted series: palette index, Amdahl curve, Gustafson curve.
    fits: Vec<(usize, Points, Points)>,
    ideal: Points,
    /// Fewest and most workers.
    p: (f64, f64),
    log: bool,
    speed_desc: &'static str,
}

impl ScalingPanels<'_> {
    /// Speedup on the left over `speed_axes`, efficiency on the right over `eff_axes` (linear
    /// or log scales).
    fn draw<DB, XS, YS, XE, YE>(
        &self,
        panels: &[DrawingArea<DB, Shift>],
        speed_axes: (XS, YS),
        eff_axes: (XE, YE),
    ) -> Result<(), String>
    where
        DB: DrawingBackend,
        XS: AsRangedCoord<Value = f64>,
        YS: AsRangedCoord<Value = f64>,
        XE: AsRangedCoord<Value = f64>,
        YE: AsRangedCoord<Value = f64>,
        XS::CoordDescType: ValueFormatter<f64>,
        YS::CoordDescType: ValueFormatter<f64>,
        XE::CoordDescType: ValueFormatter<f64>,
        YE::CoordDescType: ValueFormatter<f64>,
    {
        let log = self.log;
        let tick = |x: &f64| tick_125(*x, log);
        let axes = Chart::panel("", LABEL_PX + 1).x_fmt(&tick).x_desc(if log {
            "workers P (log scale)"
        } else {
            "workers P"
        });
        let mut chart = axes
            .clone()
            .caption("speedup", LABEL_PX + 1)
            .y_desc(self.speed_desc)
            .build(&panels[0], speed_axes.0, speed_axes.1)?;
        chart.reference_line(self.ideal.clone(), (8, 5))?;
        for (j, amdahl, gustafson) in &self.fits {
            let c = color(*j);
            chart
                .draw_series(DashedLineSeries::new(
                    amdahl.clone(),
                    4,
                    4,
                    c.stroke_width(2),
                ))
                .map_err(err)?;
            chart
                .draw_series(DottedLineSeries::new(gustafson.clone(), 0, 5, move |p| {
                    Circle::new(p, 1, c.filled())
                }))
                .map_err(err)?;
        }
        chart.measured(self.speed)?;
        let mut chart = axes
            .caption("efficiency", LABEL_PX + 1)
            .y_desc("lower bound / makespan")
            .build(&panels[1], eff_axes.0, eff_axes.1)?;
        chart.reference_line(vec![(self.p.0, 1.0), (self.p.1, 1.0)], (8, 5))?;
        chart.measured(self.eff)
    }
}

options! {
    /// Options of [`queueing`].
    QueueingOptions {
        /// Pixel size.
        size: (u32, u32) = SIZE,
        /// At most this many panels (settings other than the arrival rate and strategy).
        max_panels: usize = 4,
    }
}

/// Measured mean wait (start − release) against utilisation ρ = λ E\[S\] / P, for open (Poisson)
/// arrivals, with the M/M/c mean wait from Erlang C for the same P and mean service time.
pub fn queueing(suite: &Suite, matrix: &str, opts: &QueueingOptions, dir: &Path) -> FigureResult {
    let cells: Vec<&CellSummary> = suite
        .cells_of(matrix)
        .into_iter()
        .filter(|c| theory::poisson_rate(&c.coords.arrivals).is_some())
        .collect();
    if cells.is_empty() {
        return skip("no open (poisson) arrivals in this matrix");
    }
    let strats = strategies(&cells);
    // One panel per setting (workload, workers, cost model, ...), one series per strategy in it,
    // and one Erlang C reference per panel.
    struct Panel {
        label: String,
        series: Vec<Series>,
        servers: usize,
        reference: Vec<(f64, f64)>,
    }
    let mut panels_data: Vec<Panel> = Vec::new();
    for (label, g) in named_groups(&cells, &[Axis::Arrivals, Axis::Strategy]) {
        let mut series: Vec<Series> = Vec::new();
        let mut services = Vec::new();
        for (j, s) in strats.iter().enumerate() {
            let mut pts = Vec::new();
            for c in g.iter().filter(|c| &c.coords.strategy == s) {
                let rows = suite.rows_of(c);
                let lambda = theory::poisson_rate(&c.coords.arrivals).unwrap_or(0.0) / 1e9; // per ns
                let es = mean_of(&rows, |r| {
                    r.report.total_work_ns as f64 / r.report.tasks.max(1) as f64
                })
                .mean;
                let p = c.coords.workers.max(1) as f64;
                let wait = mean_of(&rows, |r| r.report.wait_ns.mean);
                pts.push((lambda * es / p, wait.mean, wait.ci95));
                services.push(es);
            }
            if pts.len() >= 2 {
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                series.push((s.clone(), j, pts));
            }
        }
        if series.is_empty() {
            continue;
        }
        let es = services.iter().sum::<f64>() / services.len() as f64;
        let servers = g[0].coords.workers.max(1);
        let mu = 1.0 / es;
        let reference = (1..100)
            .map(|i| i as f64 / 100.0)
            .filter_map(|rho| {
                theory::mmc_wait(servers, rho * servers as f64 * mu, mu).map(|w| (rho, w))
            })
            .collect();
        panels_data.push(Panel {
            label,
            series,
            servers,
            reference,
        });
    }
    if panels_data.is_empty() {
        return skip("needs at least 2 arrival rates for one strategy");
    }
    let total = panels_data.len();
    panels_data.truncate(opts.max_panels.max(1));
    let all_pts = || {
        panels_data
            .iter()
            .flat_map(|p| p.series.iter().flat_map(|s| s.2.iter()))
    };
    let ymax = all_pts().map(|p| p.1 + p.2).fold(1.0, f64::max) * 1.3;
    let xmax = all_pts().map(|p| p.0).fold(0.0, f64::max).clamp(0.5, 1.0) * 1.05;
    // From just below the lowest measured utilisation (to 0.1), not from 0.
    let xmin = (((all_pts().map(|p| p.0).fold(1.0, f64::min) - 0.05) * 10.0).floor() / 10.0)
        .clamp(0.0, (xmax - 0.1).max(0.0));
    let name = format!("{}-queueing", slug(matrix));
    let title = format!("Queueing: mean wait vs utilisation — {matrix}");
    let files = render_both!(dir, &name, opts.size, |root| {
        let frame = Frame::new(&root, suite, &title, grid(panels_data.len()))?;
        for (k, panel) in panels_data.iter().enumerate() {
            let mut chart = Chart::panel(truncate(&panel.label, 60), LABEL_PX)
                .small()
                .areas(36, 64)
                .y_fmt(&ns_tick)
                .x_desc("utilisation ρ = λ · E[service] / P")
                .y_desc("mean wait (start − release)")
                .build(&frame.panels[k], xmin..xmax, 0f64..ymax)?;
            let pts: Vec<(f64, f64)> = panel
                .reference
                .iter()
                .copied()
                .filter(|p| p.1 <= ymax && p.0 >= xmin && p.0 <= xmax)
                .collect();
            chart.reference_line(pts, (6, 4))?;
            chart.measured(&panel.series)?;
        }
        let mut items = strategy_keys(&strats, |j| {
            panels_data
                .iter()
                .any(|p| p.series.iter().any(|s| s.1 == j))
        });
        let servers: Vec<String> = {
            let mut v: Vec<usize> = panels_data.iter().map(|p| p.servers).collect();
            v.sort_unstable();
            v.dedup();
            v.iter().map(|c| c.to_string()).collect()
        };
        items.push((
            format!("M/M/c, c = {} (Erlang C)", servers.join(", ")),
            Key::Line(None, REFERENCE, true),
        ));
        legend(&frame.side, 60, &items)
    })?;
    let mut caption = "Each marker is one arrival rate: the measured mean time tasks waited before starting (95% CI whiskers), against the utilisation ρ = λ · E[service] / P; one panel per setting. The grey dashed curve is the mean wait of an M/M/c queue with c = P servers and the panel's mean service time, from Erlang C: W_q = C(c, λ/μ) / (cμ − λ). A shared FIFO queue with exponential service should sit on it; a strategy above it loses capacity to imbalance, overhead or an unlucky order; service less variable than exponential (or an order like SPT that favours short tasks) sits below it. Waits grow without bound as ρ → 1.".to_string();
    caption.push_str(&showing(panels_data.len(), total, "settings"));
    Ok(Figure::new(name, title, caption, files))
}

options! {
    /// Options of [`estimates`].
    EstimatesOptions {
        /// Pixel size.
        size: (u32, u32) = SIZE,
        /// At most this many settings (rows of panels).
        max_rows: usize = 3,
    }
}

/// Mean latency and makespan against the error of the cost estimates (for SPT/LPT and any other
/// strategy in the matrix). Needs at least two estimate-error values.
pub fn estimates(suite: &Suite, matrix: &str, opts: &EstimatesOptions, dir: &Path) -> FigureResult {
    let cells = suite.cells_of(matrix);
    let strats = strategies(&cells);
    // One row of two panels (mean latency, makespan) per setting; one series per strategy.
    let mut rows_data: Vec<(String, Vec<Series>, Vec<Series>)> = Vec::new();
    for (label, g) in group(&cells, &[Axis::EstimateError, Axis::Strategy]) {
        let (mut lat, mut mk) = (Vec::new(), Vec::new());
        for (j, s) in strats.iter().enumerate() {
            let mut g: Vec<&CellSummary> = g
                .iter()
                .copied()
                .filter(|c| &c.coords.strategy == s)
                .collect();
            g.sort_by(|a, b| a.coords.estimate_error.total_cmp(&b.coords.estimate_error));
            g.dedup_by(|a, b| a.coords.estimate_error == b.coords.estimate_error);
            if g.len() < 2 {
                continue;
            }
            let latency = |c: &&CellSummary| {
                let s = mean_of(&suite.rows_of(c), |r| r.report.latency_ns.mean);
                (c.coords.estimate_error, s.mean, s.ci95)
            };
            let makespan = |c: &&CellSummary| {
                (
                    c.coords.estimate_error,
                    c.makespan_ns.mean,
                    c.makespan_ns.ci95,
                )
            };
            lat.push((s.clone(), j, g.iter().map(latency).collect()));
            mk.push((s.clone(), j, g.iter().map(makespan).collect()));
        }
        if !lat.is_empty() {
            rows_data.push((label, lat, mk));
        }
    }
    if rows_data.is_empty() {
        return skip("needs at least 2 estimate-error values for one strategy");
    }
    let total = rows_data.len();
    rows_data.truncate(opts.max_rows.max(1));
    let all = |k: usize| -> Vec<(f64, f64, f64)> {
        rows_data
            .iter()
            .flat_map(|r| {
                if k == 0 { &r.1 } else { &r.2 }
                    .iter()
                    .flat_map(|s| s.2.iter().copied())
            })
            .collect()
    };
    let xmax = all(0).iter().map(|p| p.0).fold(0.0, f64::max).max(0.1) * 1.05;
    let top = |k: usize| all(k).iter().map(|p| p.1 + p.2).fold(1.0, f64::max) * 1.1;
    let (lmax, mmax) = (top(0), top(1));
    let name = format!("{}-estimates", slug(matrix));
    let title = format!("Sensitivity to estimate error — {matrix}");
    let files = render_both!(dir, &name, opts.size, |root| {
        let frame = Frame::new(&root, suite, &title, (rows_data.len(), 2))?;
        for (r, (label, lat, mk)) in rows_data.iter().enumerate() {
            for (k, (series, ymax, what)) in [(lat, lmax, "mean latency"), (mk, mmax, "makespan")]
                .into_iter()
                .enumerate()
            {
                let caption = if label == "all" {
                    what.to_string()
                } else {
                    format!("{what} — {}", truncate(label, 40))
                };
                let mut chart = Chart::panel(caption, LABEL_PX)
                    .small()
                    .areas(36, 72)
                    .y_fmt(&ns_tick)
                    .x_desc("estimate error σ (log-normal)")
                    .y_desc(what)
                    .build(&frame.panels[2 * r + k], 0f64..xmax, 0f64..ymax)?;
                chart.measured(series)?;
            }
        }
        let shown = |j: usize| rows_data.iter().any(|r| r.1.iter().any(|s| s.1 == j));
        legend(&frame.side, 60, &strategy_keys(&strats, shown))
    })?;
    let mut caption = "How much each estimate-based strategy loses when the cost estimates it orders by are wrong: estimates are the true cost times a log-normal error of the given σ (0 = exact). Left: mean task latency (SPT's target); right: makespan (LPT's target); one row per setting. A strategy that reads no estimates (e.g. central) is a flat reference line; whiskers are 95% CIs.".to_string();
    caption.push_str(&showing(rows_data.len(), total, "settings"));
    Ok(Figure::new(name, title, caption, files))
}

options! {
    /// Options of [`heterogeneous`].
    HeteroOptions {
        /// Pixel size.
        size: (u32, u32) = SIZE,
    }
}

/// Per-worker share of the work against its share of the total speed, for runs on workers of
/// different speeds (repetition 0 of each cell). On the diagonal, work follows speed.
pub fn heterogeneous(
    suite: &Suite,
    matrix: &str,
    opts: &HeteroOptions,
    dir: &Path,
) -> FigureResult {
    let cells = suite.cells_of(matrix);
    let axes = varying(&cells);
    let mut series: Vec<Series> = Vec::new();
    let strats = strategies(&cells);
    for c in &cells {
        let Some(r) = suite.first_row(c) else {
            continue;
        };
        let pw = &r.report.per_worker;
        let speeds: Vec<f64> = pw.iter().map(|w| w.speed).collect();
        if speeds.is_empty() || speeds.iter().all(|s| (s - speeds[0]).abs() < 1e-12) {
            continue;
        }
        let ssum: f64 = speeds.iter().sum();
        let work: Vec<f64> = pw.iter().map(|w| w.busy_ns as f64 * w.speed).collect();
        let wsum: f64 = work.iter().sum::<f64>().max(1.0);
        let mut pts: Vec<(f64, f64, f64)> = pw
            .iter()
            .zip(&work)
            .map(|(w, x)| (w.speed / ssum, x / wsum, 0.0))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let j = strats
            .iter()
            .position(|s| s == &c.coords.strategy)
            .unwrap_or(0);
        series.push((label(&c.coords, &axes, &[]), j, pts));
    }
    if series.is_empty() {
        return skip("all workers have the same speed (no speeds axis)");
    }
    let top = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.0.max(p.1)))
        .fold(0.0, f64::max)
        * 1.1;
    let name = format!("{}-heterogeneous", slug(matrix));
    let title = format!("Work share vs speed share — {matrix}");
    let files = render_both!(dir, &name, opts.size, |root| {
        let frame = Frame::single(&root, suite);
        let mut chart = Chart::titled(&title)
            .x_desc("worker's share of total speed")
            .y_desc("worker's share of work done (busy × speed)")
            .build(&frame.panels[0], 0f64..top, 0f64..top)?;
        chart.reference_line(vec![(0.0, 0.0), (top, top)], (8, 5))?;
        for (_, j, pts) in &series {
            for &(x, y, _) in pts {
                draw_marker(chart.plotting_area(), (x, y), marker(*j), color(*j))?;
            }
        }
        // One entry per strategy: runs of other settings share its colour and marker.
        let mut items = strategy_keys(&strats, |j| series.iter().any(|s| s.1 == j));
        items.push(("work ∝ speed".into(), Key::Line(None, REFERENCE, true)));
        legend(&frame.side, 60, &items)
    })?;
    Ok(Figure::new(
        name,
        title,
        "Each marker is one worker of one run (repetition 0 of every cell whose workers differ in speed; settings pooled, coloured by strategy): its share of the total speed (x) against its share of the work it did (busy time × speed, y). On the dashed diagonal, work follows speed and all workers finish together; markers below it at high speed mean fast workers were starved (a static, speed-blind split), markers above it at low speed mean slow workers held work the fast ones could have taken.".into(),
        files,
    ))
}

/// A figure function with its options.
type FigureFn<O> = fn(&Suite, &str, &O, &Path) -> FigureResult;

/// A figure function with its default options.
type DefaultFigure = Box<dyn Fn(&Suite, &str, &Path) -> FigureResult>;

/// `figure` with `O::default()` for its options.
fn defaults<O: Default + 'static>(figure: FigureFn<O>) -> DefaultFigure {
    Box::new(move |suite, matrix, dir| figure(suite, matrix, &O::default(), dir))
}

/// The figures a matrix gets, in report order, with the ones skipped and why.
pub fn render_matrix(
    suite: &Suite,
    matrix: &str,
    dir: &Path,
) -> (Vec<Figure>, Vec<(String, String)>) {
    let figures = [
        ("LIF bars", defaults(lif_bars)),
        ("efficiency bars", defaults(efficiency_bars)),
        ("latency CDF", defaults(latency_cdf)),
        ("per-worker busy time", defaults(per_worker_busy)),
        ("Gantt timeline", defaults(gantt)),
        ("scaling", defaults(scaling)),
        ("queueing", defaults(queueing)),
        ("estimates", defaults(estimates)),
        ("heterogeneous workers", defaults(heterogeneous)),
    ];
    let attempts = figures.map(|(what, draw)| (what, draw(suite, matrix, dir)));
    let mut figs = Vec::new();
    let mut skipped = Vec::new();
    for (what, r) in attempts {
        match r {
            Ok(f) => figs.push(f),
            Err(FigureError::Skip(why)) => skipped.push((what.to_string(), why)),
            Err(FigureError::Draw(e)) => {
                skipped.push((what.to_string(), format!("drawing failed: {e}")))
            }
        }
    }
    (figs, skipped)
}

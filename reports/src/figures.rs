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
//!
//! No panel draws more than [`MAX_SERIES`] series (one per palette colour): a figure with more
//! splits them into small multiples on the same axes (the scaling figure one pair of panels per
//! setting or per strategy, whichever has fewer values; the others runs of strategies), and
//! [`Figure::panels`] says what each panel draws. A figure grows taller rather than cut its
//! legend.

use std::ops::Range;
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
    /// What each panel draws, panel by panel: its series by their names in the legend (at
    /// most [`MAX_SERIES`] in any panel).
    pub panels: Vec<Vec<String>>,
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
#[derive(Clone, Copy)]
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
        let lines = legend_lines(area.dim_in_pixel().0, name);
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

/// A legend entry's name as the lines it is drawn on in a column `width` pixels wide.
fn legend_lines(width: u32, name: &str) -> Vec<String> {
    wrap(name, ((width as f64 - 45.0) / 7.0).max(8.0) as usize)
}

/// Where a legend of `items` drawn from `y0` in a column `width` pixels wide ends: the `y` that
/// [`legend_y`] returns when the column is tall enough.
fn legend_end(width: u32, y0: i32, items: &[(String, Key)]) -> i32 {
    items
        .iter()
        .map(|(name, _)| 22 + 15 * (legend_lines(width, name).len() as i32 - 1))
        .sum::<i32>()
        + y0
}

/// The tallest a figure grows to hold its legend.
const MAX_HEIGHT: u32 = 12_000;

/// `size`, made taller where the legend `items`, drawn from `y0` with `below` more pixels under
/// them, would not fit in the legend column, so that no entry is cut (up to [`MAX_HEIGHT`]).
fn room_for_legend(
    size: (u32, u32),
    suite: &Suite,
    y0: i32,
    items: &[(String, Key)],
    below: i32,
) -> (u32, u32) {
    let end = legend_end(legend_w(suite), y0, items) + below + 16;
    (
        size.0,
        size.1.max(end.max(0) as u32).min(MAX_HEIGHT.max(size.1)),
    )
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

/// Grid shape for `n` panels: up to 8 in at most two rows, more in rows of four.
fn grid(n: usize) -> (usize, usize) {
    match n {
        0 | 1 => (1, 1),
        2 => (1, 2),
        3 | 4 => (2, 2),
        5 | 6 => (2, 3),
        7 | 8 => (2, 4),
        _ => (n.div_ceil(4), 4),
    }
}

/// At most this many series share a panel: one per palette colour, so that no two series of a
/// panel look alike and none is lost among too many. A figure with more splits them into small
/// multiples (several panels on the same axes).
pub const MAX_SERIES: usize = 8;

/// `0..n` in consecutive runs of at most [`MAX_SERIES`], as even as possible (12: 6 and 6). A
/// run of consecutive palette indices has no colour twice.
fn chunks(n: usize) -> Vec<Range<usize>> {
    let k = n.div_ceil(MAX_SERIES).max(1);
    (0..k).map(|i| i * n / k..(i + 1) * n / k).collect()
}

/// For a panel's caption: which run of the strategies (of `of`) it shows, 1-based.
fn strategies_part(r: &Range<usize>, of: usize) -> String {
    format!("strategies {}–{} of {of}", r.start + 1, r.end)
}

/// The panel caption `caption(head)` with `head` cut (to 8 characters at least) until it fits
/// `width` pixels at `px`.
fn fit_caption(head: &str, px: u32, width: u32, caption: impl Fn(&str) -> String) -> String {
    let mut n = head.chars().count();
    loop {
        let text = caption(&truncate(head, n));
        if n <= 8 || style::text_width(&text, px) <= width {
            return text;
        }
        n -= 1;
    }
}

/// `size`, at least as tall as `rows` rows of panels `row_px` high under the title.
fn room_for_rows(size: (u32, u32), rows: usize, row_px: u32) -> (u32, u32) {
    (size.0, size.1.max(36 + rows as u32 * row_px))
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
            panels: Vec::new(),
            files,
        }
    }

    /// The figure with what each of its panels draws.
    fn with_panels(mut self, panels: Vec<Vec<String>>) -> Figure {
        self.panels = panels;
        self
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
    // The axis description, and a short one for panels of several.
    let (what, ylabel, short, kind) = match metric {
        BarMetric::Lif => (
            "Load imbalance (LIF)",
            "LIF = max busy / mean busy (1 = perfect)",
            "LIF (1 = perfect)",
            "lif",
        ),
        BarMetric::Efficiency => (
            "Efficiency",
            "efficiency = lower bound / makespan (1 = ideal)",
            "efficiency (1 = ideal)",
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
    // More strategies than colours: one panel per run of them, stacked, on the same axes.
    let mut parts = chunks(strats.len());
    parts.truncate(MAX_BAR_ROWS);
    let shown = parts.last().map_or(0, |r| r.end);
    let mut items: Vec<(String, Key)> = strats[..shown]
        .iter()
        .enumerate()
        .map(|(j, s)| (s.clone(), Key::Bar(hatch(j), color(j))))
        .collect();
    items.push(("1.0 (perfect)".into(), Key::Line(None, REFERENCE, true)));
    let size = if parts.len() > 1 {
        room_for_rows(opts.size, parts.len(), 180 + 16 * lines)
    } else {
        opts.size
    };
    let size = room_for_legend(size, suite, 50, &items, 0);
    let files = render_both!(dir, &name, size, |root| {
        let frame = if parts.len() > 1 {
            Frame::new(&root, suite, &title, (parts.len(), 1))?
        } else {
            Frame::single(&root, suite)
        };
        for (part, main) in parts.iter().zip(&frame.panels) {
            let axes = if parts.len() > 1 {
                Chart::panel(strategies_part(part, strats.len()), LABEL_PX).y_desc(short)
            } else {
                Chart::titled(&title).y_desc(ylabel)
            };
            let mut chart = axes
                .areas(16 + 16 * lines, 70)
                .grid(Grid::Horizontal)
                .x_ticks(0)
                .build(main, -0.5f64..n as f64 - 0.5, 0f64..top)?;
            let ns = part.len().max(1) as f64;
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
                for (j, s) in strats.iter().enumerate().take(part.end).skip(part.start) {
                    let Some(c) = group.iter().find(|c| &c.coords.strategy == s) else {
                        continue;
                    };
                    let st = stat(c);
                    let x0 = i as f64 - 0.4 + (j - part.start) as f64 * bw;
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
        }
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
    if parts.len() > 1 {
        caption.push_str(&format!(
            " The {} strategies are split over {} panels on the same axes, at most {MAX_SERIES} to a panel, in legend order.",
            shown,
            parts.len()
        ));
    }
    if shown < strats.len() {
        caption.push_str(&format!(
            " Not shown (panel limit): {}.",
            strats[shown..].join(", ")
        ));
    }
    let panels = parts.iter().map(|r| strats[r.clone()].to_vec()).collect();
    Ok(Figure::new(name, title, caption, files).with_panels(panels))
}

/// At most this many panels of bars (runs of [`MAX_SERIES`] strategies) in a bar figure.
const MAX_BAR_ROWS: usize = 4;

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
    // More strategies than colours: each group's curves over several panels, and fewer groups.
    let parts = chunks(strats.len());
    let groups_shown = (opts.max_panels.max(1) / parts.len()).max(1);
    let shown: Vec<_> = cats.iter().take(groups_shown).collect();
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
    // Each panel: its group, which strategies where they are split (the caption is fitted to
    // the panel's width when drawn), and its curves.
    let (parts, n) = (&parts, strats.len());
    let panels: Vec<(String, String, Vec<&Curve>)> = shown
        .iter()
        .zip(&curves)
        .flat_map(|((cat, _), curves)| {
            parts.iter().map(move |part| {
                let mine = curves.iter().filter(|c| part.contains(&c.0)).collect();
                if parts.len() > 1 {
                    (cat.clone(), strategies_part(part, n), mine)
                } else {
                    (truncate(cat, 60), String::new(), mine)
                }
            })
        })
        .collect();
    let items = strategy_keys(&strats, |_| true);
    let shape = grid(panels.len());
    let size = room_for_rows(opts.size, shape.0, 200);
    let size = room_for_legend(size, suite, 60, &items, 0);
    let files = render_both!(dir, &name, size, |root| {
        let frame = Frame::new(&root, suite, &title, shape)?;
        for (k, (head, tail, curves)) in panels.iter().enumerate() {
            let width = frame.panels[k].dim_in_pixel().0.saturating_sub(16);
            let caption = if tail.is_empty() {
                head.clone()
            } else {
                fit_caption(head, LABEL_PX + 1, width, |h| format!("{h} · {tail}"))
            };
            let mut chart = Chart::panel(caption, LABEL_PX + 1)
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
            for &(j, pts, p50, p99) in curves {
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
        legend(&frame.side, 60, &items)
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
    if parts.len() > 1 {
        caption.push_str(&format!(
            " The {} strategies are split over {} panels per group, at most {MAX_SERIES} to a panel, in legend order.",
            strats.len(),
            parts.len()
        ));
    }
    let names = panels
        .iter()
        .map(|(_, _, curves)| curves.iter().map(|c| strats[c.0].clone()).collect())
        .collect();
    Ok(Figure::new(name, title, caption, files).with_panels(names))
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
    let mut items: Vec<(String, Key)> = runs
        .iter()
        .map(|(j, c, _)| (c.coords.strategy.clone(), Key::Bar(hatch(*j), color(*j))))
        .collect();
    items.push(("mean busy time".into(), Key::Line(None, REFERENCE, true)));
    let size = room_for_legend(opts.size, suite, 60, &items, 0);
    let files = render_both!(dir, &name, size, |root| {
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
        legend(&frame.side, 60, &items)
    })?;
    let panels = runs
        .iter()
        .map(|(_, c, _)| vec![c.coords.strategy.clone()])
        .collect();
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
    )
    .with_panels(panels))
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
    let size = room_for_legend(opts.size, suite, 310, &items, 0);
    let files = render_both!(dir, &name, size, |root| {
        let frame = Frame::new(&root, suite, &title, (runs.len(), 1))?;
        let side = &frame.side;
        // Worker labels 13 px apart at most.
        let panel_h = (size.1.saturating_sub(36) / runs.len().max(1) as u32) as usize;
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
    let panels = runs
        .iter()
        .map(|r| vec![r.coords.strategy.clone()])
        .collect();
    Ok(Figure::new(name, title, caption, files).with_panels(panels))
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
        /// Pixel size (taller where the panels take more than one row of pairs).
        size: (u32, u32) = SIZE,
        /// Where the lines are split over several pairs of panels: at most this many pairs; the
        /// caption names the rest.
        max_panels: usize = 6,
    }
}

/// One measured line of [`scaling`]: a strategy on one setting, over the worker counts.
struct Line {
    /// The strategy's index in the matrix.
    strategy: usize,
    /// Every varying coordinate but the workers and the strategy ("all" where none varies).
    setting: String,
    /// The strategy and its setting, as one label.
    label: String,
    /// Points `(P, speedup, ci95)`.
    speed: Vec<(f64, f64, f64)>,
    /// Points `(P, efficiency, ci95)`.
    eff: Vec<(f64, f64, f64)>,
    /// The fitted Amdahl serial fraction.
    fit: Option<f64>,
}

/// A pair of panels of [`scaling`] (speedup, efficiency): what it shows, and its lines as
/// `(index into the lines, name in the legend, palette index)`.
struct Facet {
    caption: String,
    /// Where a pair's lines are split over several pairs: which of them this is (`(1/2)`).
    part: String,
    lines: Vec<(usize, String, usize)>,
}

/// How [`scaling`] splits its lines into pairs of panels, and what one pair stands for in the
/// caption (`None`: a single pair holds every line).
///
/// Up to [`MAX_SERIES`] lines share one pair: each strategy keeps its palette colour where each
/// has one line, else each line gets its own. More are split into small multiples along the
/// axis with fewer values: one pair per setting (the strategies as lines, in their colours) or
/// one per strategy (the settings as lines); a pair with still too many lines is split again.
fn scaling_facets(lines: &[Line], strats: &[String]) -> (Vec<Facet>, Option<&'static str>) {
    let mut settings: Vec<&str> = Vec::new();
    let mut used: Vec<usize> = Vec::new();
    for l in lines {
        if !settings.contains(&l.setting.as_str()) {
            settings.push(&l.setting);
        }
        if !used.contains(&l.strategy) {
            used.push(l.strategy);
        }
    }
    if lines.len() <= MAX_SERIES {
        let own = used.len() == lines.len();
        let lines = lines
            .iter()
            .enumerate()
            .map(|(i, l)| (i, l.label.clone(), if own { l.strategy } else { i }))
            .collect();
        let one = Facet {
            caption: String::new(),
            part: String::new(),
            lines,
        };
        return (vec![one], None);
    }
    let by_setting = settings.len() <= used.len();
    let facets: Vec<Facet> = if by_setting {
        settings
            .iter()
            .map(|s| Facet {
                caption: s.to_string(),
                part: String::new(),
                lines: (lines.iter().enumerate())
                    .filter(|(_, l)| l.setting == *s)
                    .map(|(i, l)| (i, strats[l.strategy].clone(), l.strategy))
                    .collect(),
            })
            .collect()
    } else {
        used.sort_unstable();
        used.iter()
            .map(|&j| Facet {
                caption: strats[j].clone(),
                part: String::new(),
                lines: (lines.iter().enumerate())
                    .filter(|(_, l)| l.strategy == j)
                    .map(|(i, l)| {
                        let k = settings.iter().position(|s| *s == l.setting).unwrap_or(0);
                        (i, l.setting.clone(), k)
                    })
                    .collect(),
            })
            .collect()
    };
    let split = facets
        .into_iter()
        .flat_map(|f| {
            let parts = chunks(f.lines.len());
            let n = parts.len();
            parts.into_iter().enumerate().map(move |(k, r)| Facet {
                caption: f.caption.clone(),
                part: if n > 1 {
                    format!(" ({}/{n})", k + 1)
                } else {
                    String::new()
                },
                lines: f.lines[r].to_vec(),
            })
        })
        .collect();
    (split, Some(if by_setting { "setting" } else { "strategy" }))
}

/// Speedup and efficiency vs workers per strategy, with the ideal line, a fitted Amdahl curve
/// (its serial fraction S in [`Figure::notes`], the caption, and the legend where it fits) and
/// Gustafson's line for the same S. Needs at least three worker counts in one series. More
/// than [`MAX_SERIES`] lines (strategies × settings) are split into pairs of panels on the same
/// axes: one per setting or one per strategy, whichever has fewer values, and a pair with still
/// too many lines is split again; at most [`ScalingOptions::max_panels`] pairs.
pub fn scaling(suite: &Suite, matrix: &str, opts: &ScalingOptions, dir: &Path) -> FigureResult {
    let cells = suite.cells_of(matrix);
    let axes = varying(&cells);
    let groups = group(&cells, &[Axis::Workers]);
    let strats = strategies(&cells);
    // Lines: one per group (strategy and the other axes), points by worker count.
    let mut lines: Vec<Line> = Vec::new();
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
        }
        lines.push(Line {
            strategy: j,
            setting: label(&ps[0].coords, &axes, &[Axis::Workers, Axis::Strategy]),
            label: lab.clone(),
            speed: pts,
            eff: ps
                .iter()
                .map(|c| {
                    (
                        c.coords.workers as f64,
                        c.efficiency.mean,
                        c.efficiency.ci95,
                    )
                })
                .collect(),
            fit,
        });
    }
    if lines.is_empty() {
        return skip("needs at least 3 worker counts for one strategy and workload");
    }
    let (mut facets, by) = scaling_facets(&lines, &strats);
    let total = facets.len();
    let left_out: Vec<String> = (facets.iter().skip(opts.max_panels.max(1)))
        .map(|f| format!("{}{}", f.caption, f.part))
        .collect();
    facets.truncate(opts.max_panels.max(1));
    // The axes are shared by every panel, so they span every line, shown or not.
    let all = || lines.iter().flat_map(|l| l.speed.iter());
    let pmin = all().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let pmax = all().map(|p| p.0).fold(1.0, f64::max);
    let smax = all().map(|p| p.1 + p.2).fold(pmax, f64::max) * 1.05;
    let emax = (lines.iter().flat_map(|l| l.eff.iter()))
        .map(|p| p.1 + p.2)
        .fold(1.0, f64::max)
        * 1.08;
    let name = format!("{}-scaling", slug(matrix));
    let title = format!("Scaling — {matrix}");
    // Wide worker ranges (1 to 1,024) read better on log axes, where ideal speedup is a line.
    let log = pmax / pmin >= 32.0;
    let smin = all()
        .map(|p| (p.1 - p.2).max(p.1 / 2.0))
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
    let drawn: Vec<FacetLines> = facets
        .iter()
        .map(|f| {
            let series = |pts: fn(&Line) -> &Vec<(f64, f64, f64)>| -> Vec<Series> {
                (f.lines.iter())
                    .map(|(i, n, p)| (n.clone(), *p, pts(&lines[*i]).clone()))
                    .collect()
            };
            FacetLines {
                speed: series(|l| &l.speed),
                eff: series(|l| &l.eff),
                fits: (f.lines.iter())
                    .filter_map(|(i, _, p)| {
                        let s = lines[*i].fit?;
                        Some((
                            *p,
                            curve(&|n| theory::amdahl(s, n)),
                            curve(&|n| theory::gustafson(s, n).min(smax)),
                        ))
                    })
                    .collect(),
            }
        })
        .collect();
    let common = ScalingPanels {
        ideal: curve(&|n| n),
        p: (pmin, pmax),
        log,
        small: by.is_some(),
        speed_desc: if relative {
            "speedup (relative, S(P0) = P0)"
        } else {
            "speedup T1 / TP"
        },
    };
    // The legend: each line's key once (in palette order where the pairs share them), the
    // fitted curves, the ideal line.
    let mut keys: Vec<(String, usize)> = Vec::new();
    for (_, n, p) in facets.iter().flat_map(|f| f.lines.iter()) {
        if !keys.iter().any(|k| k.1 == *p) {
            keys.push((n.clone(), *p));
        }
    }
    if by.is_some() {
        keys.sort_by_key(|k| k.1);
    }
    let mut items: Vec<(String, Key)> = keys
        .iter()
        .map(|(n, p)| (n.clone(), Key::Line(Some(marker(*p)), color(*p), false)))
        .collect();
    let ideal = (
        "ideal (S = P)".to_string(),
        Key::Line(None, REFERENCE, true),
    );
    let mut full = items.clone();
    for (i, n, p) in &facets[0].lines {
        if let Some(s) = lines[*i].fit {
            full.push((
                format!("Amdahl S={s:.3}: {n}"),
                Key::Line(None, color(*p), true),
            ));
        }
    }
    full.push(ideal.clone());
    let below = 8;
    if by.is_none() && room_for_legend(opts.size, suite, 60, &full, below) == opts.size {
        items = full;
    } else {
        if lines.iter().any(|l| l.fit.is_some()) {
            let first = keys.first().map_or(0, |k| k.1);
            items.push((
                "Amdahl fit (dashed, its line's colour)".into(),
                Key::Line(None, color(first), true),
            ));
        }
        items.push(ideal);
    }
    let (cols, pairs) = match by {
        None => (2, 1),
        Some(_) => {
            // At most three pairs to a row, the rows as full as they can be evenly.
            let pairs = facets.len().div_ceil(3);
            (facets.len().div_ceil(pairs), pairs)
        }
    };
    let size = if by.is_some() {
        room_for_rows(opts.size, 2 * pairs, 230)
    } else {
        opts.size
    };
    let size = room_for_legend(size, suite, 60, &items, below);
    let files = render_both!(dir, &name, size, |root| {
        let shape = if by.is_some() {
            (2 * pairs, cols)
        } else {
            (1, 2)
        };
        let frame = Frame::new(&root, suite, &title, shape)?;
        for (k, (facet, data)) in facets.iter().zip(&drawn).enumerate() {
            let (speed_area, eff_area) = if by.is_some() {
                let (r, c) = (2 * (k / cols), k % cols);
                (
                    &frame.panels[r * cols + c],
                    &frame.panels[(r + 1) * cols + c],
                )
            } else {
                (&frame.panels[0], &frame.panels[1])
            };
            // The setting or strategy after "speedup — ", cut to the panel's width.
            let width = speed_area.dim_in_pixel().0.saturating_sub(16);
            let caption = |what: &str| {
                if facet.caption.is_empty() {
                    what.to_string()
                } else {
                    fit_caption(&facet.caption, LABEL_PX, width, |h| {
                        format!("{what} — {h}{}", facet.part)
                    })
                }
            };
            let captions = (caption("speedup"), caption("efficiency"));
            let areas = (speed_area, eff_area);
            if log {
                common.draw(
                    areas,
                    &captions,
                    data,
                    (
                        (pmin / 1.2..pmax * 1.2).log_scale(),
                        (smin..smax).log_scale(),
                    ),
                    ((pmin / 1.2..pmax * 1.2).log_scale(), 0f64..emax),
                )?;
            } else {
                common.draw(
                    areas,
                    &captions,
                    data,
                    (0f64..pmax * 1.05, 0f64..smax),
                    (0f64..pmax * 1.05, 0f64..emax),
                )?;
            }
        }
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
    let fitted: Vec<String> = (lines.iter())
        .filter_map(|l| Some(format!("{}: S = {:.4}", l.label, l.fit?)))
        .collect();
    let (first, second) = match by {
        None => ("Left: s", " Right: e"),
        Some(_) => ("S", " Below it: e"),
    };
    let mut caption = format!(
        "{first}peedup (makespan at the fewest workers over makespan at P{}) against P, with whiskers for 95% CIs. The grey dashed line is ideal linear speedup; the coloured dashed curve is Amdahl's law 1/(S + (1 − S)/P) with the serial fraction S fitted by least squares on 1/speedup; the dotted line is Gustafson's scaled speedup S + P(1 − S) for the same S (what a problem growing with P could reach).{second}fficiency against P; 1 is ideal.",
        if relative { ", scaled so that the first point equals its P" } else { "" },
    );
    if let Some(by) = by {
        caption.push_str(&format!(
            " {} lines, so one pair of panels (speedup above efficiency) per {by}, at most {MAX_SERIES} lines to a pair (a pair split further is numbered), every panel on the same axes.",
            lines.len()
        ));
        caption.push_str(&showing(facets.len(), total, "pairs of panels"));
        if !left_out.is_empty() {
            caption.push_str(&format!(" Not shown: {}.", left_out.join("; ")));
        }
    }
    caption.push_str(&format!(" Fitted: {}.", fitted.join("; ")));
    let panels = facets
        .iter()
        .flat_map(|f| {
            let names: Vec<String> = f.lines.iter().map(|l| l.1.clone()).collect();
            [names.clone(), names]
        })
        .collect();
    Ok(Figure {
        name,
        title,
        caption,
        notes,
        panels,
        files,
    })
}

/// Points of a curve.
type Points = Vec<(f64, f64)>;

/// What one pair of panels of [`scaling`] draws.
struct FacetLines {
    speed: Vec<Series>,
    eff: Vec<Series>,
    /// Per fitted line: palette index, Amdahl curve, Gustafson curve.
    fits: Vec<(usize, Points, Points)>,
}

/// What every pair of panels of [`scaling`] shares, computed once for both backends.
struct ScalingPanels {
    ideal: Points,
    /// Fewest and most workers.
    p: (f64, f64),
    log: bool,
    /// Smaller text (several pairs of panels).
    small: bool,
    speed_desc: &'static str,
}

impl ScalingPanels {
    /// Speedup on the first area over `speed_axes`, efficiency on the second over `eff_axes`
    /// (linear or log scales), captioned `captions`.
    fn draw<DB, XS, YS, XE, YE>(
        &self,
        areas: (&DrawingArea<DB, Shift>, &DrawingArea<DB, Shift>),
        captions: &(String, String),
        data: &FacetLines,
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
        let mut axes = Chart::panel("", LABEL_PX + 1).x_fmt(&tick).x_desc(if log {
            "workers P (log scale)"
        } else {
            "workers P"
        });
        if self.small {
            axes = axes.small();
        }
        let px = if self.small { LABEL_PX } else { LABEL_PX + 1 };
        let mut chart = axes
            .clone()
            .caption(captions.0.as_str(), px)
            .y_desc(self.speed_desc)
            .build(areas.0, speed_axes.0, speed_axes.1)?;
        chart.reference_line(self.ideal.clone(), (8, 5))?;
        for (j, amdahl, gustafson) in &data.fits {
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
        chart.measured(&data.speed)?;
        let mut chart = axes
            .caption(captions.1.as_str(), px)
            .y_desc("lower bound / makespan")
            .build(areas.1, eff_axes.0, eff_axes.1)?;
        chart.reference_line(vec![(self.p.0, 1.0), (self.p.1, 1.0)], (8, 5))?;
        chart.measured(&data.eff)
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
        /// Which strategies, where a setting's lines are split over several panels.
        part: String,
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
            part: String::new(),
            series,
            servers,
            reference,
        });
    }
    if panels_data.is_empty() {
        return skip("needs at least 2 arrival rates for one strategy");
    }
    let total = panels_data.len();
    // More strategies than colours: each setting's lines over several panels, and fewer
    // settings.
    let parts = chunks(strats.len());
    panels_data.truncate((opts.max_panels.max(1) / parts.len()).max(1));
    let settings = panels_data.len();
    if parts.len() > 1 {
        panels_data = panels_data
            .into_iter()
            .flat_map(|p| {
                let parts = &parts;
                let n = strats.len();
                parts.iter().filter_map(move |part| {
                    let series: Vec<Series> = (p.series.iter())
                        .filter(|s| part.contains(&s.1))
                        .cloned()
                        .collect();
                    (!series.is_empty()).then(|| Panel {
                        label: p.label.clone(),
                        part: strategies_part(part, n),
                        series,
                        servers: p.servers,
                        reference: p.reference.clone(),
                    })
                })
            })
            .collect();
    }
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
    let shape = grid(panels_data.len());
    let size = room_for_rows(opts.size, shape.0, 200);
    let size = room_for_legend(size, suite, 60, &items, 0);
    let files = render_both!(dir, &name, size, |root| {
        let frame = Frame::new(&root, suite, &title, shape)?;
        for (k, panel) in panels_data.iter().enumerate() {
            let caption = if panel.part.is_empty() {
                truncate(&panel.label, 60)
            } else {
                let width = frame.panels[k].dim_in_pixel().0.saturating_sub(16);
                fit_caption(&panel.label, LABEL_PX, width, |h| {
                    format!("{h} · {}", panel.part)
                })
            };
            let mut chart = Chart::panel(caption, LABEL_PX)
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
        legend(&frame.side, 60, &items)
    })?;
    let mut caption = "Each marker is one arrival rate: the measured mean time tasks waited before starting (95% CI whiskers), against the utilisation ρ = λ · E[service] / P; one panel per setting. The grey dashed curve is the mean wait of an M/M/c queue with c = P servers and the panel's mean service time, from Erlang C: W_q = C(c, λ/μ) / (cμ − λ). A shared FIFO queue with exponential service should sit on it; a strategy above it loses capacity to imbalance, overhead or an unlucky order; service less variable than exponential (or an order like SPT that favours short tasks) sits below it. Waits grow without bound as ρ → 1.".to_string();
    caption.push_str(&showing(settings, total, "settings"));
    if parts.len() > 1 {
        caption.push_str(&format!(
            " The {} strategies are split over {} panels per setting, at most {MAX_SERIES} to a panel, in legend order.",
            strats.len(),
            parts.len()
        ));
    }
    let names = panels_data
        .iter()
        .map(|p| p.series.iter().map(|s| s.0.clone()).collect())
        .collect();
    Ok(Figure::new(name, title, caption, files).with_panels(names))
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

/// One row of [`estimates`]: its setting, and the lines of its latency and makespan panels.
type EstimatesRow = (String, Vec<Series>, Vec<Series>);

/// Mean latency and makespan against the error of the cost estimates (for SPT/LPT and any other
/// strategy in the matrix). Needs at least two estimate-error values.
pub fn estimates(suite: &Suite, matrix: &str, opts: &EstimatesOptions, dir: &Path) -> FigureResult {
    let cells = suite.cells_of(matrix);
    let strats = strategies(&cells);
    // One row of two panels (mean latency, makespan) per setting; one series per strategy.
    let mut rows_data: Vec<EstimatesRow> = Vec::new();
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
    // More strategies than colours: each setting's lines over several rows, and fewer settings.
    let parts = chunks(strats.len());
    rows_data.truncate((opts.max_rows.max(1) / parts.len()).max(1));
    let settings = rows_data.len();
    // Which strategies each row shows, where a setting's lines are split over several rows.
    let mut row_parts = vec![String::new(); rows_data.len()];
    if parts.len() > 1 {
        let n = strats.len();
        let mine = |series: &[Series], part: &Range<usize>| -> Vec<Series> {
            (series.iter())
                .filter(|s| part.contains(&s.1))
                .cloned()
                .collect()
        };
        let split: Vec<(EstimatesRow, String)> = (rows_data.iter())
            .flat_map(|(label, lat, mk)| {
                parts.iter().filter_map(move |part| {
                    let lat = mine(lat, part);
                    let row = (label.clone(), lat, mine(mk, part));
                    (!row.1.is_empty()).then(|| (row, strategies_part(part, n)))
                })
            })
            .collect();
        (rows_data, row_parts) = split.into_iter().unzip();
    }
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
    let shown = |j: usize| rows_data.iter().any(|r| r.1.iter().any(|s| s.1 == j));
    let items = strategy_keys(&strats, shown);
    let size = room_for_rows(opts.size, rows_data.len(), 160);
    let size = room_for_legend(size, suite, 60, &items, 0);
    let files = render_both!(dir, &name, size, |root| {
        let frame = Frame::new(&root, suite, &title, (rows_data.len(), 2))?;
        for (r, (label, lat, mk)) in rows_data.iter().enumerate() {
            for (k, (series, ymax, what)) in [(lat, lmax, "mean latency"), (mk, mmax, "makespan")]
                .into_iter()
                .enumerate()
            {
                let part = &row_parts[r];
                let width = frame.panels[2 * r + k].dim_in_pixel().0.saturating_sub(16);
                let caption = match (label == "all", part.is_empty()) {
                    (true, true) => what.to_string(),
                    (false, true) => format!("{what} — {}", truncate(label, 40)),
                    (true, false) => format!("{what} — {part}"),
                    (false, false) => {
                        fit_caption(label, LABEL_PX, width, |h| format!("{what} — {h} · {part}"))
                    }
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
        legend(&frame.side, 60, &items)
    })?;
    let mut caption = "How much each estimate-based strategy loses when the cost estimates it orders by are wrong: estimates are the true cost times a log-normal error of the given σ (0 = exact). Left: mean task latency (SPT's target); right: makespan (LPT's target); one row per setting. A strategy that reads no estimates (e.g. central) is a flat reference line; whiskers are 95% CIs.".to_string();
    caption.push_str(&showing(settings, total, "settings"));
    if parts.len() > 1 {
        caption.push_str(&format!(
            " The {} strategies are split over {} rows per setting, at most {MAX_SERIES} to a row, in legend order.",
            strats.len(),
            parts.len()
        ));
    }
    let panels = (rows_data.iter())
        .flat_map(|(_, lat, mk)| {
            [lat, mk].map(|series| series.iter().map(|s| s.0.clone()).collect())
        })
        .collect();
    Ok(Figure::new(name, title, caption, files).with_panels(panels))
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
    // One entry per strategy: runs of other settings share its colour and marker.
    let mut items = strategy_keys(&strats, |j| series.iter().any(|s| s.1 == j));
    items.push(("work ∝ speed".into(), Key::Line(None, REFERENCE, true)));
    // More strategies than colours: one panel per run of them, on the same axes.
    let present: Vec<usize> = (0..strats.len())
        .filter(|j| series.iter().any(|s| s.1 == *j))
        .collect();
    let parts: Vec<Range<usize>> = chunks(present.len())
        .into_iter()
        .map(|r| present[r.start]..present[r.end - 1] + 1)
        .collect();
    let shape = grid(parts.len());
    let size = room_for_rows(opts.size, shape.0, 200);
    let size = room_for_legend(size, suite, 60, &items, 0);
    let files = render_both!(dir, &name, size, |root| {
        let frame = if parts.len() > 1 {
            Frame::new(&root, suite, &title, shape)?
        } else {
            Frame::single(&root, suite)
        };
        for (part, area) in parts.iter().zip(&frame.panels) {
            let axes = if parts.len() > 1 {
                let nth = |j: usize| present.iter().position(|p| *p == j).unwrap_or(0);
                let which = nth(part.start)..nth(part.end - 1) + 1;
                Chart::panel(strategies_part(&which, present.len()), LABEL_PX).small()
            } else {
                Chart::titled(&title)
            };
            let mut chart = axes
                .x_desc("worker's share of total speed")
                .y_desc("worker's share of work done (busy × speed)")
                .build(area, 0f64..top, 0f64..top)?;
            chart.reference_line(vec![(0.0, 0.0), (top, top)], (8, 5))?;
            for (_, j, pts) in series.iter().filter(|s| part.contains(&s.1)) {
                for &(x, y, _) in pts {
                    draw_marker(chart.plotting_area(), (x, y), marker(*j), color(*j))?;
                }
            }
        }
        legend(&frame.side, 60, &items)
    })?;
    let mut caption = "Each marker is one worker of one run (repetition 0 of every cell whose workers differ in speed; settings pooled, coloured by strategy): its share of the total speed (x) against its share of the work it did (busy time × speed, y). On the dashed diagonal, work follows speed and all workers finish together; markers below it at high speed mean fast workers were starved (a static, speed-blind split), markers above it at low speed mean slow workers held work the fast ones could have taken.".to_string();
    if parts.len() > 1 {
        caption.push_str(&format!(
            " The {} strategies are split over {} panels on the same axes, at most {MAX_SERIES} to a panel, in legend order.",
            present.len(),
            parts.len()
        ));
    }
    let panels = parts
        .iter()
        .map(|r| {
            (r.clone())
                .filter(|j| series.iter().any(|s| s.1 == *j))
                .map(|j| strats[j].clone())
                .collect()
        })
        .collect();
    Ok(Figure::new(name, title, caption, files).with_panels(panels))
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

/// Whole-number ticks from `lo` to `hi` (inclusive) for an integer axis (CPU workers): at
/// most `max` of them (at least 2 are allowed), the step the smallest of 1, 2, 5, 10, 20, 50, …
/// that keeps within `max`, every tick a multiple of the step and each once. A float axis
/// labelled `{:.0}` repeats labels between whole numbers (`0 0 1 2 2 3`); this does not.
///
/// ```
/// use reports::figures::integer_ticks;
/// assert_eq!(integer_ticks(0, 5, 10), vec![0, 1, 2, 3, 4, 5]);
/// assert_eq!(integer_ticks(0, 65, 10), vec![0, 10, 20, 30, 40, 50, 60]);
/// ```
pub fn integer_ticks(lo: u64, hi: u64, max: usize) -> Vec<u64> {
    let (lo, hi) = (lo.min(hi), lo.max(hi));
    let max = max.max(2) as u64;
    let first_at = |step: u64| lo.div_ceil(step).checked_mul(step);
    let count = |step: u64| match first_at(step) {
        Some(f) if f <= hi => ((hi - f) / step).saturating_add(1),
        _ => 0,
    };
    let mut step = 1;
    for k in 0..60u32 {
        let Some(s) = 10u64
            .checked_pow(k / 3)
            .and_then(|d| d.checked_mul([1, 2, 5][(k % 3) as usize]))
        else {
            break;
        };
        step = s;
        if count(step) <= max {
            break;
        }
    }
    let mut ticks = Vec::new();
    let mut t = first_at(step);
    while let Some(x) = t.filter(|&x| x <= hi) {
        ticks.push(x);
        t = x.checked_add(step);
    }
    if ticks.is_empty() {
        ticks.push(lo);
    }
    ticks
}

/// Two series whose every y differs by at most this fraction of the larger are the same line
/// in a figure (0.1%: less than a pixel on any axis drawn here).
pub const COINCIDE: f64 = 1e-3;

/// A named series of points.
pub type NamedSeries = (String, Vec<(f64, f64)>);

/// Whether `a` and `b` are the same line: the same x values (in any order) and every y within
/// [`COINCIDE`] of the other's.
fn coincide(a: &[(f64, f64)], b: &[(f64, f64)]) -> bool {
    let sorted = |v: &[(f64, f64)]| {
        let mut v = v.to_vec();
        v.sort_by(|p, q| p.0.total_cmp(&q.0));
        v
    };
    let (a, b) = (sorted(a), sorted(b));
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(p, q)| p.0 == q.0 && (p.1 - q.1).abs() <= COINCIDE * p.1.abs().max(q.1.abs()))
}

/// One label for series drawn as one: the words all labels share at the start and at the end
/// once, the differing middles joined by ` = ` (`read=4 central` and `read=4 work-stealing`
/// give `read=4 central = work-stealing`); the whole labels joined if a middle is empty.
fn merged_label(labels: &[&str]) -> String {
    let words: Vec<Vec<&str>> = labels.iter().map(|l| l.split(' ').collect()).collect();
    let shortest = words.iter().map(Vec::len).min().unwrap_or(0);
    let head = (0..shortest)
        .take_while(|&i| words.iter().all(|w| w[i] == words[0][i]))
        .count();
    let tail = (0..shortest - head)
        .take_while(|&i| {
            words
                .iter()
                .all(|w| w[w.len() - 1 - i] == words[0][words[0].len() - 1 - i])
        })
        .count();
    let middles: Vec<String> = words
        .iter()
        .map(|w| w[head..w.len() - tail].join(" "))
        .collect();
    if middles.iter().any(String::is_empty) {
        return labels.join(" = ");
    }
    let mut parts: Vec<String> = Vec::new();
    if head > 0 {
        parts.push(words[0][..head].join(" "));
    }
    parts.push(middles.join(" = "));
    if tail > 0 {
        parts.push(words[0][words[0].len() - tail..].join(" "));
    }
    parts.join(" ")
}

/// `series` with the ones that coincide (the same x values, every y within [`COINCIDE`])
/// drawn as one line with one legend entry: the first of them, labelled by
/// [`merged_label`]-style joining (`central = work-stealing`). Order is kept (a merged line
/// stands where its first member stood).
///
/// ```
/// use reports::figures::merge_coinciding;
/// let pts = vec![(1.0, 500.0), (2.0, 1000.0)];
/// let merged = merge_coinciding(&[
///     ("central".into(), pts.clone()),
///     ("work-stealing".into(), vec![(1.0, 500.2), (2.0, 1000.0)]),
///     ("round-robin".into(), vec![(1.0, 400.0), (2.0, 800.0)]),
/// ]);
/// assert_eq!(merged.len(), 2);
/// assert_eq!(merged[0].0, "central = work-stealing");
/// assert_eq!(merged[0].1, pts);
/// ```
pub fn merge_coinciding(series: &[NamedSeries]) -> Vec<NamedSeries> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, s) in series.iter().enumerate() {
        match groups.iter_mut().find(|g| coincide(&series[g[0]].1, &s.1)) {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
        .into_iter()
        .map(|g| {
            let labels: Vec<&str> = g.iter().map(|&i| series[i].0.as_str()).collect();
            let label = if g.len() == 1 {
                labels[0].to_string()
            } else {
                merged_label(&labels)
            };
            (label, series[g[0]].1.clone())
        })
        .collect()
}

/// What the what-if figure (`reports::whatif::throughput_figure`) draws, computed before any
/// drawing: the lines (coinciding ones merged by [`merge_coinciding`], then at most
/// `max_lines`, those with the highest peak), the x ticks (whole numbers, each once:
/// [`integer_ticks`]) and the axes' ends.
#[derive(Clone, Debug, PartialEq)]
pub struct WhatifPlot {
    /// The lines, highest peak first, each with its legend label.
    pub lines: Vec<NamedSeries>,
    /// The x axis's tick labels (CPU workers P), whole numbers, each once.
    pub x_ticks: Vec<u64>,
    /// The x axis runs from 0 to this (one past the largest P).
    pub x_end: u64,
    /// The y axis runs from 0 to this (10% above the highest point, at least 1.1).
    pub y_end: f64,
}

/// Most tick labels on the what-if figure's x axis.
pub const WHATIF_X_TICKS: usize = 12;

/// The [`WhatifPlot`] of `series` (items/s against P, one series per setting of the other
/// knobs), keeping at most `max_lines` lines.
pub fn whatif_plot(series: &[NamedSeries], max_lines: usize) -> WhatifPlot {
    let peak = |s: &NamedSeries| s.1.iter().map(|p| p.1).fold(0.0, f64::max);
    let mut lines = merge_coinciding(series);
    // A stable sort: equal peaks keep the grid's order.
    lines.sort_by(|a, b| peak(b).total_cmp(&peak(a)));
    lines.truncate(max_lines);
    let xmax = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.0))
        .filter(|x| x.is_finite())
        .fold(1.0, f64::max);
    let x_end = xmax.ceil() as u64 + 1;
    let y_end = series.iter().map(peak).fold(1.0, f64::max) * 1.1;
    WhatifPlot {
        lines,
        x_ticks: integer_ticks(0, x_end, WHATIF_X_TICKS),
        x_end,
        y_end,
    }
}

#[cfg(test)]
mod whatif_tests {
    use super::*;

    #[test]
    fn integer_ticks_are_whole_numbers_each_once() {
        // P = 1, 2, 4: the axis runs 0..=5; it was labelled "0 0 1 2 2 3 4 4 5".
        assert_eq!(integer_ticks(0, 5, 12), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(
            integer_ticks(0, 17, 12),
            vec![0, 2, 4, 6, 8, 10, 12, 14, 16]
        );
        assert_eq!(
            integer_ticks(0, 4097, 12),
            (0..=8).map(|i| i * 500).collect::<Vec<_>>()
        );
        assert_eq!(integer_ticks(3, 3, 12), vec![3]);
        assert_eq!(integer_ticks(0, 1, 1), vec![0, 1]);
        for hi in 0..300 {
            for max in 2..15 {
                let t = integer_ticks(0, hi, max);
                assert!(!t.is_empty() && t.len() <= max, "hi={hi} max={max}: {t:?}");
                assert!(t.windows(2).all(|w| w[0] < w[1]), "hi={hi}: {t:?}");
                assert!(t.iter().all(|&x| x <= hi));
            }
        }
        assert!(integer_ticks(0, u64::MAX, 12).len() <= 12);
    }

    #[test]
    fn coinciding_series_are_one_line_with_one_legend_entry() {
        // Central and work stealing on a read-bound trace: identical within rounding.
        let central = vec![(1.0, 1980.0), (2.0, 1999.6), (4.0, 1999.9)];
        let stealing = vec![(2.0, 1999.5), (1.0, 1980.4), (4.0, 1999.9)];
        let rr = vec![(1.0, 1980.0), (2.0, 1900.0), (4.0, 1800.0)];
        let series = vec![
            ("read=4 central".to_string(), central.clone()),
            ("read=4 work-stealing".to_string(), stealing),
            ("read=4 round-robin".to_string(), rr.clone()),
            ("read=8 central".to_string(), vec![(1.0, 3000.0)]),
        ];
        let plot = whatif_plot(&series, 8);
        let labels: Vec<&str> = plot.lines.iter().map(|l| l.0.as_str()).collect();
        assert_eq!(
            labels,
            vec![
                "read=8 central",
                "read=4 central = work-stealing",
                "read=4 round-robin"
            ]
        );
        assert_eq!(plot.lines[1].1, central);
        assert_eq!(plot.lines[2].1, rr);
        assert_eq!(plot.x_ticks, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(plot.x_end, 5);
        // 0.1% apart is one line; 0.2% apart is two.
        let a = ("a".to_string(), vec![(1.0, 1000.0)]);
        let b = ("b".to_string(), vec![(1.0, 1001.0)]);
        let c = ("c".to_string(), vec![(1.0, 1002.1)]);
        let m = merge_coinciding(&[a.clone(), b, c]);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].0, "a = b");
        // Different x values never merge, whatever the y.
        let d = ("d".to_string(), vec![(2.0, 1000.0)]);
        assert_eq!(merge_coinciding(&[a, d]).len(), 2);
        // A label that is a prefix of another: the whole labels are joined.
        assert_eq!(
            merged_label(&["central", "central window 64"]),
            "central = central window 64"
        );
        assert_eq!(
            merged_label(&["x central y", "x work-stealing y", "x guided y"]),
            "x central = work-stealing = guided y"
        );
    }
}

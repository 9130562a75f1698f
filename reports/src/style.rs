//! The one style every figure shares: size, font, a palette that survives greyscale printing and
//! colour-blind readers (Okabe–Ito, plus a marker and a hatch per series), and the helpers that
//! draw a figure to both SVG and PNG.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

/// Font family name every figure uses; [`ensure_font`] registers DejaVu Sans under it.
pub const FONT: &str = "sans-serif";
/// Default figure size in pixels (width, height).
pub const SIZE: (u32, u32) = (960, 540);
/// Title font size.
pub const TITLE_PX: u32 = 22;
/// Axis description font size.
pub const AXIS_PX: u32 = 16;
/// Tick label and legend font size.
pub const LABEL_PX: u32 = 14;

/// The Okabe–Ito palette (colour-blind safe), ordered so that neighbours differ in lightness too.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(230, 159, 0),   // orange
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(240, 228, 66),  // yellow
    RGBColor(0, 0, 0),       // black
];

/// Reference lines (ideal, theory): dark grey.
pub const REFERENCE: RGBColor = RGBColor(80, 80, 80);
/// Grid lines.
pub const GRID: RGBColor = RGBColor(225, 225, 225);
/// Steal markers on Gantt timelines: near-black, outlined in white so they show on the dark
/// end of the duration scale too.
pub const STEAL: RGBColor = RGBColor(17, 17, 17);

/// Series `i`'s colour.
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Point markers, one per series, so lines stay distinguishable without colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// Filled circle.
    Circle,
    /// Filled triangle.
    Triangle,
    /// Open square.
    Square,
    /// Cross.
    Cross,
    /// Open circle.
    Ring,
}

/// Series `i`'s marker.
pub fn marker(i: usize) -> Marker {
    [
        Marker::Circle,
        Marker::Triangle,
        Marker::Square,
        Marker::Cross,
        Marker::Ring,
    ][i % 5]
}

/// Bar fills: a hatch per series, so bars stay distinguishable in greyscale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hatch {
    /// Solid fill.
    Solid,
    /// Diagonal lines `/`.
    Forward,
    /// Horizontal lines.
    Horizontal,
    /// Diagonal lines `\`.
    Backward,
    /// Vertical lines.
    Vertical,
    /// Both diagonals.
    Crossed,
}

/// Series `i`'s hatch.
pub fn hatch(i: usize) -> Hatch {
    [
        Hatch::Solid,
        Hatch::Forward,
        Hatch::Horizontal,
        Hatch::Backward,
        Hatch::Vertical,
        Hatch::Crossed,
    ][i % 6]
}

/// Register the embedded DejaVu Sans as [`FONT`] (once per process): text renders on a machine
/// with no fonts installed and no fontconfig.
pub fn ensure_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let ok = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .is_ok()
            && plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).is_ok();
        debug_assert!(ok, "the embedded DejaVu font parses");
    });
}

/// The width in pixels of `text` in [`FONT`] at `px`, as the figures lay it out (the PNG draws
/// it this wide; the SVG a little narrower, at `px / 1.24` points). A string the font cannot
/// measure counts 0.6 `px` a character.
pub fn text_width(text: &str, px: u32) -> u32 {
    ensure_font();
    (FONT, px)
        .into_font()
        .box_size(text)
        .map(|(w, _)| w)
        .unwrap_or_else(|_| (text.chars().count() as f64 * px as f64 * 0.6).ceil() as u32)
}

/// A drawing error as text.
pub(crate) fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Draw `marker` at `p` (in `area`'s coordinates).
pub(crate) fn draw_marker<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    p: CT::From,
    m: Marker,
    c: RGBColor,
) -> Result<(), String>
where
    CT::From: Clone,
{
    let size = 5;
    match m {
        Marker::Circle => area.draw(&Circle::new(p, size, c.filled())),
        Marker::Ring => area.draw(&Circle::new(p, size, c.stroke_width(2))),
        Marker::Triangle => area.draw(&TriangleMarker::new(p, size + 1, c.filled())),
        Marker::Cross => area.draw(&Cross::new(p, size, c.stroke_width(2))),
        Marker::Square => area
            .draw(&(EmptyElement::at(p) + Rectangle::new([(-4, -4), (4, 4)], c.stroke_width(2)))),
    }
    .map_err(err)
}

/// Draw a steal marker: a downward triangle `size` pixels high whose tip is at `p` (in
/// `area`'s coordinates), filled with [`STEAL`]; with `halo`, only its white outline (2 px),
/// drawn under the fills of all markers first so that a cluster of steals reads as one dark
/// shape with a light edge on any bar colour.
pub(crate) fn draw_steal<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    p: CT::From,
    size: i32,
    halo: bool,
) -> Result<(), String>
where
    CT::From: Clone,
{
    let h = size.max(3);
    let w = (h * 2 + 2) / 3;
    let pts = vec![(-w, -h), (w, -h), (0, 0)];
    if halo {
        let mut outline = pts.clone();
        outline.push(pts[0]);
        area.draw(&(EmptyElement::at(p) + PathElement::new(outline, WHITE.stroke_width(2))))
    } else {
        area.draw(&(EmptyElement::at(p) + Polygon::new(pts, STEAL.filled())))
    }
    .map_err(err)
}

/// Fill the pixel rectangle `(x0, y0)–(x1, y1)` of `root` with `h` in colour `c`, outlined.
pub(crate) fn draw_hatched<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    (x0, y0): (i32, i32),
    (x1, y1): (i32, i32),
    h: Hatch,
    c: RGBColor,
) -> Result<(), String> {
    let (x0, x1) = (x0.min(x1), x0.max(x1));
    let (y0, y1) = (y0.min(y1), y0.max(y1));
    let line = c.stroke_width(1);
    if h == Hatch::Solid {
        root.draw(&Rectangle::new([(x0, y0), (x1, y1)], c.filled()))
            .map_err(err)?;
    } else {
        root.draw(&Rectangle::new([(x0, y0), (x1, y1)], c.mix(0.25).filled()))
            .map_err(err)?;
        let step = 6;
        let mut segs: Vec<((i32, i32), (i32, i32))> = Vec::new();
        let (w, hgt) = (x1 - x0, y1 - y0);
        let diag = |segs: &mut Vec<_>, forward: bool| {
            // Lines x - x0 ± (y - y0) = k, clipped to the rectangle.
            let mut k = -hgt;
            while k <= w {
                let mut pts = Vec::new();
                for t in 0..=hgt {
                    let x = k + t;
                    if (0..=w).contains(&x) {
                        let y = if forward { y1 - t } else { y0 + t };
                        pts.push((x0 + x, y));
                    }
                }
                if let (Some(a), Some(b)) = (pts.first(), pts.last()) {
                    segs.push((*a, *b));
                }
                k += step;
            }
        };
        match h {
            Hatch::Forward => diag(&mut segs, true),
            Hatch::Backward => diag(&mut segs, false),
            Hatch::Crossed => {
                diag(&mut segs, true);
                diag(&mut segs, false);
            }
            Hatch::Horizontal => {
                let mut y = y0 + step / 2;
                while y < y1 {
                    segs.push(((x0, y), (x1, y)));
                    y += step;
                }
            }
            Hatch::Vertical => {
                let mut x = x0 + step / 2;
                while x < x1 {
                    segs.push(((x, y0), (x, y1)));
                    x += step;
                }
            }
            Hatch::Solid => {}
        }
        for (a, b) in segs {
            root.draw(&PathElement::new(vec![a, b], line))
                .map_err(err)?;
        }
    }
    root.draw(&Rectangle::new([(x0, y0), (x1, y1)], c.stroke_width(1)))
        .map_err(err)
}

/// A sequential, colour-blind-safe colour map (viridis, 5 stops) at `t` in [0, 1].
pub fn viridis(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 5] = [
        (68, 1, 84),
        (59, 82, 139),
        (33, 145, 140),
        (94, 201, 98),
        (253, 231, 37),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let lerp = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(lerp(a.0, b.0), lerp(a.1, b.1), lerp(a.2, b.2))
}

/// The two files a figure is written to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Files {
    /// The SVG.
    pub svg: PathBuf,
    /// The PNG.
    pub png: PathBuf,
}

/// Evaluate `$body` (with `$root` bound to the drawing area) on an SVG and then a PNG backend of `$size`, writing `$dir/$name.svg`
/// and `$dir/$name.png`; evaluates to `Result<Files, String>`.
macro_rules! render_both {
    ($dir:expr, $name:expr, $size:expr, |$root:ident| $body:expr) => {{
        (|| -> Result<$crate::style::Files, String> {
            $crate::style::ensure_font();
            let files = $crate::style::files($dir, $name);
            let at = |p: &std::path::Path| {
                let p = p.display().to_string();
                move |e: String| format!("{p}: {e}")
            };
            (|| -> Result<(), String> {
                let $root =
                    plotters::prelude::SVGBackend::new(&files.svg, $size).into_drawing_area();
                $root
                    .fill(&plotters::prelude::WHITE)
                    .map_err($crate::style::err)?;
                $body?;
                $root.present().map_err($crate::style::err)
            })()
            .map_err(at(&files.svg))?;
            (|| -> Result<(), String> {
                let $root =
                    plotters::prelude::BitMapBackend::new(&files.png, $size).into_drawing_area();
                $root
                    .fill(&plotters::prelude::WHITE)
                    .map_err($crate::style::err)?;
                $body?;
                $root.present().map_err($crate::style::err)
            })()
            .map_err(at(&files.png))?;
            Ok(files)
        })()
    }};
}
pub(crate) use render_both;

/// The SVG and PNG paths of figure `name` in `dir`.
pub(crate) fn files(dir: &Path, name: &str) -> Files {
    Files {
        svg: dir.join(format!("{name}.svg")),
        png: dir.join(format!("{name}.png")),
    }
}

//! Curves against t: lines, dashed lines and markers with error bars, reference lines, log axes
//! with a label at every decade, and a legend where it covers no data.

use plotters::coord::combinators::{BindKeyPoints, WithKeyPoints};
use plotters::coord::ranged1d::Ranged;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{compact, Curves, DrawResult, Mark};

/// Twelve colours told apart at a glance (Tableau's ten, then navy and black). Series beyond
/// them take the colours again with another line style or marker (`round`).
const PALETTE: [RGBColor; 12] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
    RGBColor(127, 127, 127),
    RGBColor(0, 0, 128),
    RGBColor(0, 0, 0),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// How many times the palette has gone round before colour `i`.
fn round(i: usize) -> usize {
    i / PALETTE.len()
}

/// Dash pattern (dash, gap) in pixels of a series line in round `r` (solid in the first).
fn line_dash(mark: Mark, r: usize) -> Option<(u32, u32)> {
    match (mark, r % 3) {
        (Mark::Dashed, _) => Some((8, 5)),
        (_, 0) => None,
        (_, 1) => Some((12, 5)),
        _ => Some((3, 4)),
    }
}

/// Reference line `j` (PCA rank): each its own shade of grey and dash pattern.
fn reference_style(j: usize) -> (RGBColor, (u32, u32)) {
    const SHADES: [u8; 4] = [60, 105, 145, 180];
    const DASHES: [(u32, u32); 5] = [(14, 4), (6, 4), (2, 3), (20, 6), (9, 9)];
    let shade = SHADES[j % SHADES.len()];
    (RGBColor(shade, shade, shade), DASHES[j % DASHES.len()])
}

/// The range of the finite (and, on a log axis, positive) values, widened a little.
fn range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (1.0, 10.0);
    }
    if log {
        let (lo, hi) = if hi / lo < 1.5 { (lo / 1.5, hi * 1.5) } else { (lo, hi) };
        (lo / 1.15, hi * 1.15)
    } else {
        let pad = if hi > lo {
            0.05 * (hi - lo)
        } else {
            0.5 * lo.abs().max(1.0)
        };
        (lo - pad, hi + pad)
    }
}

/// Ticks of a log axis over `[lo, hi]`: (labelled, light). Every decade is labelled; where
/// fewer than two decades fall inside, 2 and 5 times each decade are too, and where that still
/// gives fewer than three labels, every multiple. Light grid lines at every multiple.
pub(super) fn log_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    let multiples = |keep: &dyn Fn(u32) -> bool| -> Vec<f64> {
        let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        (first..=last)
            .flat_map(|e| {
                (1..10u32)
                    .filter(|m| keep(*m))
                    .map(move |m| f64::from(m) * 10f64.powi(e))
            })
            .filter(|v| (lo..=hi).contains(v))
            .collect()
    };
    let mut labelled = multiples(&|m| m == 1);
    if labelled.len() < 2 {
        labelled = multiples(&|m| matches!(m, 1 | 2 | 5));
    }
    if labelled.len() < 3 {
        labelled = multiples(&|_| true);
    }
    let light = multiples(&|_| true)
        .into_iter()
        .filter(|v| !labelled.contains(v))
        .collect();
    (labelled, light)
}

fn log_axis((lo, hi): (f64, f64)) -> WithKeyPoints<LogCoord<f64>> {
    let (labelled, light) = log_ticks(lo, hi);
    (lo..hi).log_scale().with_key_points(labelled).with_light_points(light)
}

/// Pixel layout of a curves plot: margins, label areas, caption, legend rows.
const MARGIN: i32 = 16;
const X_LABEL_AREA: i32 = 48;
const Y_LABEL_AREA: i32 = 72;
const CAPTION: i32 = 40;
const LEGEND_ROW: i32 = 21;
const SWATCH: i32 = 24;
/// Average advance of a 15-pixel DejaVu Sans character, generously.
const LEGEND_CHAR: f64 = 8.2;

/// How a legend entry's sample is drawn.
enum Swatch {
    Line(RGBColor, Option<(u32, u32)>),
    Marker(RGBColor, usize),
    Reference(RGBColor, (u32, u32)),
}

fn legend_entries(c: &Curves) -> Vec<(Swatch, &str)> {
    let references = c.hlines.iter().enumerate().map(|(j, (label, _))| {
        let (shade, dash) = reference_style(j);
        (Swatch::Reference(shade, dash), label.as_str())
    });
    let series = c.series.iter().map(|s| {
        let swatch = match s.mark {
            Mark::Points => Swatch::Marker(color(s.color), round(s.color)),
            mark => Swatch::Line(color(s.color), line_dash(mark, round(s.color))),
        };
        (swatch, s.label.as_str())
    });
    series.chain(references).collect()
}

fn legend_size(entries: &[(Swatch, &str)]) -> (i32, i32) {
    let chars = entries.iter().map(|(_, l)| l.chars().count()).max().unwrap_or(0);
    let width = 8 + SWATCH + 8 + (chars as f64 * LEGEND_CHAR).ceil() as i32 + 10;
    (width, 10 + LEGEND_ROW * entries.len() as i32)
}

/// Maps data to the unit square of the plotting area (0 left or bottom, 1 right or top).
fn unit(v: f64, (lo, hi): (f64, f64), log: bool) -> f64 {
    if log {
        (v.ln() - lo.ln()) / (hi.ln() - lo.ln())
    } else {
        (v - lo) / (hi - lo)
    }
}

/// Every point, segment and reference line of the plot in pixels of a `w` x `h` plotting
/// area (y down), for finding where a legend covers nothing: markers and error bars as points,
/// lines sampled every few pixels.
fn data_pixels(c: &Curves, xs: (f64, f64), ys: (f64, f64), (w, h): (i32, i32)) -> Vec<(f64, f64)> {
    let to_pixel = |x: f64, y: f64| {
        let ok = x.is_finite() && y.is_finite() && (!c.log_x || x > 0.0) && (!c.log_y || y > 0.0);
        ok.then(|| (unit(x, xs, c.log_x) * w as f64, (1.0 - unit(y, ys, c.log_y)) * h as f64))
    };
    let mut out = Vec::new();
    for s in &c.series {
        let pts: Vec<(f64, f64)> = s.x.iter().zip(&s.y).filter_map(|(x, y)| to_pixel(*x, *y)).collect();
        out.extend(&pts);
        if s.mark != Mark::Points {
            for pair in pts.windows(2) {
                let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
                let steps = ((x1 - x0).hypot(y1 - y0) / 3.0).ceil().max(1.0) as usize;
                out.extend((1..steps).map(|i| {
                    let f = i as f64 / steps as f64;
                    (x0 + f * (x1 - x0), y0 + f * (y1 - y0))
                }));
            }
        }
        if let Some(err) = &s.err {
            for ((x, y), e) in s.x.iter().zip(&s.y).zip(err) {
                out.extend(
                    [to_pixel(*x, y + e), to_pixel(*x, (y - e).max(y * 0.5))]
                        .into_iter()
                        .flatten(),
                );
            }
        }
    }
    for (_, y) in &c.hlines {
        if let Some((_, py)) = to_pixel(xs.0, *y) {
            out.extend((0..=w / 3).map(|i| (f64::from(i * 3), py)));
        }
    }
    out
}

/// Top-left corner, in the plotting area's pixels, of a legend of `size` that covers no data:
/// the first free one of the upper right, upper left, lower right and lower left corners.
fn free_corner(data: &[(f64, f64)], (w, h): (i32, i32), size: (i32, i32)) -> Option<(i32, i32)> {
    // Markers reach 5 pixels beyond their centre.
    let (inset, reach) = (10, 6.0);
    let corners = [
        (w - size.0 - inset, inset),
        (inset, inset),
        (w - size.0 - inset, h - size.1 - inset),
        (inset, h - size.1 - inset),
    ];
    corners.into_iter().find(|&(x, y)| {
        x >= 0
            && y >= 0
            && !data.iter().any(|&(px, py)| {
                px > f64::from(x) - reach
                    && px < f64::from(x + size.0) + reach
                    && py > f64::from(y) - reach
                    && py < f64::from(y + size.1) + reach
            })
    })
}

/// Draws a legend box with its top-left corner at `at` (pixels of `area`).
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(Swatch, &str)],
    at: (i32, i32),
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    let (w, h) = legend_size(entries);
    area.draw(&Rectangle::new([at, (at.0 + w, at.1 + h)], WHITE.mix(0.9).filled()))?;
    area.draw(&Rectangle::new([at, (at.0 + w, at.1 + h)], RGBColor(180, 180, 180)))?;
    for (i, (swatch, label)) in entries.iter().enumerate() {
        let y = at.1 + 5 + LEGEND_ROW * i as i32 + LEGEND_ROW / 2;
        let x = at.0 + 8;
        let dashes = |col: RGBColor, (dash, gap): (u32, u32), width: u32| -> DrawResult<()> {
            let (dash, gap) = (dash.min(8) as i32, gap as i32);
            let mut from = x;
            while from < x + SWATCH {
                let to = (from + dash).min(x + SWATCH);
                area.draw(&PathElement::new(vec![(from, y), (to, y)], col.stroke_width(width)))?;
                from = to + gap;
            }
            Ok(())
        };
        match swatch {
            Swatch::Line(col, None) => {
                area.draw(&PathElement::new(vec![(x, y), (x + SWATCH, y)], col.stroke_width(2)))?
            }
            Swatch::Line(col, Some(dash)) => dashes(*col, *dash, 2)?,
            Swatch::Reference(shade, dash) => dashes(*shade, *dash, 2)?,
            Swatch::Marker(col, r) => draw_marker(area, (x + SWATCH / 2, y), *col, *r)?,
        }
        let style = ("sans-serif", 15)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        area.draw(&Text::new(label.to_string(), (x + SWATCH + 8, y), style))?;
    }
    Ok(())
}

/// A legend's marker at a pixel: a disc in the first round of colours, then a triangle, then a
/// cross (as `draw_data` draws them).
fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    col: RGBColor,
    r: usize,
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    match r % 3 {
        0 => area.draw(&Circle::new(at, 4, col.filled()))?,
        1 => area.draw(&TriangleMarker::new(at, 5, col.filled()))?,
        _ => area.draw(&Cross::new(at, 4, col.stroke_width(2)))?,
    }
    Ok(())
}

/// The series and reference lines, on a chart of any axis types.
fn draw_data<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    c: &Curves,
    xs: (f64, f64),
) -> DrawResult<()>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (j, (_, y)) in c.hlines.iter().enumerate() {
        let (shade, (dash, gap)) = reference_style(j);
        let style = ShapeStyle::from(&shade).stroke_width(2);
        chart.draw_series(DashedLineSeries::new(vec![(xs.0, *y), (xs.1, *y)], dash, gap, style))?;
    }
    let ok = |x: f64, y: f64| x.is_finite() && y.is_finite() && (!c.log_x || x > 0.0) && (!c.log_y || y > 0.0);
    for s in &c.series {
        let (col, r) = (color(s.color), round(s.color));
        let pts: Vec<(f64, f64)> =
            s.x.iter()
                .zip(&s.y)
                .map(|(x, y)| (*x, *y))
                .filter(|(x, y)| ok(*x, *y))
                .collect();
        match (s.mark, line_dash(s.mark, r)) {
            (Mark::Points, _) => {
                if let Some(err) = &s.err {
                    let bars = s.x.iter().zip(&s.y).zip(err).filter_map(|((x, y), e)| {
                        let lo = if c.log_y { (y - e).max(y * 0.5) } else { y - e };
                        ok(*x, *y).then(|| ErrorBar::new_vertical(*x, lo, *y, y + e, col.stroke_width(1), 6))
                    });
                    chart.draw_series(bars)?;
                }
                match r % 3 {
                    0 => chart.draw_series(pts.iter().map(|p| Circle::new(*p, 4, col.filled())))?,
                    1 => chart.draw_series(pts.iter().map(|p| TriangleMarker::new(*p, 5, col.filled())))?,
                    _ => chart.draw_series(pts.iter().map(|p| Cross::new(*p, 4, col.stroke_width(2))))?,
                };
            }
            (_, None) => {
                chart.draw_series(LineSeries::new(pts, col.stroke_width(2)))?;
            }
            (_, Some((dash, gap))) => {
                chart.draw_series(DashedLineSeries::new(pts, dash, gap, col.stroke_width(2)))?;
            }
        }
    }
    Ok(())
}

/// Draws `c` on `root`: the legend inside the plotting area where a corner is free of data,
/// else in a column of its own to the right.
pub(super) fn draw_curves<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, c: &Curves) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let xs = range(c.series.iter().flat_map(|s| s.x.iter().copied()), c.log_x);
    let ys = range(
        c.series
            .iter()
            .flat_map(|s| s.y.iter().copied())
            .chain(c.hlines.iter().map(|h| h.1)),
        c.log_y,
    );
    let entries = legend_entries(c);
    let size = legend_size(&entries);
    let (width, height) = root.dim_in_pixel();
    let plot = |w: u32| {
        (
            w as i32 - 2 * MARGIN - Y_LABEL_AREA,
            height as i32 - 2 * MARGIN - X_LABEL_AREA - CAPTION,
        )
    };
    let inside = free_corner(&data_pixels(c, xs, ys, plot(width)), plot(width), size);
    // The title spans the whole width whatever the legend takes.
    let below_title = root.titled(&c.title, ("sans-serif", 24))?;
    // A legend that finds no free corner gets a column to the right, or, when that would take
    // more than a third of the width, a band below.
    let (chart_area, legend_area) = match inside {
        Some(_) => (below_title, None),
        None if size.0 <= width as i32 / 3 => {
            let (left, right) = below_title.split_horizontally(width as i32 - size.0 - 12);
            (left, Some((right, (4, MARGIN))))
        }
        None => {
            let (_, rest) = below_title.dim_in_pixel();
            let (top, bottom) = below_title.split_vertically(rest as i32 - size.1 - 8);
            (top, Some((bottom, (Y_LABEL_AREA + MARGIN, 0))))
        }
    };
    let mut builder = ChartBuilder::on(&chart_area);
    builder
        .margin(MARGIN)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(Y_LABEL_AREA);
    // plotters types a log axis differently from a linear one: four cases, one body.
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(c.x_label.as_str())
                .y_desc(c.y_label.as_str())
                .label_style(("sans-serif", 16))
                .axis_desc_style(("sans-serif", 18))
                .light_line_style(RGBColor(235, 235, 235))
                .x_label_formatter(&|x| compact(*x))
                .y_label_formatter(&|y| compact(*y))
                .draw()?;
            draw_data(&mut chart, c, xs)?;
            if let Some(corner) = inside {
                let area = chart.plotting_area().strip_coord_spec();
                draw_legend(&area, &entries, corner)?;
            }
        }};
    }
    let linear = |(lo, hi): (f64, f64)| -> RangedCoordf64 { (lo..hi).into() };
    match (c.log_x, c.log_y) {
        (true, true) => body!(builder.build_cartesian_2d(log_axis(xs), log_axis(ys))?),
        (true, false) => body!(builder.build_cartesian_2d(log_axis(xs), linear(ys))?),
        (false, true) => body!(builder.build_cartesian_2d(linear(xs), log_axis(ys))?),
        (false, false) => body!(builder.build_cartesian_2d(linear(xs), linear(ys))?),
    }
    if let Some((area, at)) = legend_area {
        draw_legend(&area, &entries, at)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axes_are_labelled_at_every_decade_and_below_a_decade_more_finely() {
        assert_eq!(log_ticks(0.005, 2000.0).0, vec![0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]);
        // 0.4 to 7 holds one decade: 0.5, 1, 2 and 5 are labelled too.
        assert_eq!(log_ticks(0.4, 7.0).0, vec![0.5, 1.0, 2.0, 5.0]);
        // 0.3 to 0.9 holds none: every multiple.
        let (labelled, light) = log_ticks(0.3, 0.9);
        assert_eq!(labelled.len(), 7, "{labelled:?}");
        assert!(light.is_empty());
    }

    #[test]
    fn the_legend_goes_to_a_free_corner_or_outside() {
        let size = (100, 50);
        // Data along the top: the lower right is free.
        let top: Vec<(f64, f64)> = (0..400).map(|x| (f64::from(x), 5.0)).collect();
        assert_eq!(free_corner(&top, (400, 300), size), Some((290, 240)));
        // A point in each of the four corners: none is free.
        let corners = [(15.0, 15.0), (385.0, 15.0), (15.0, 285.0), (385.0, 285.0)];
        assert_eq!(free_corner(&corners, (400, 300), size), None);
    }
}

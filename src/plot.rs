//! Figures as PNG and SVG (plotters): curves on log axes with error bars and reference lines,
//! and heat maps of overlap matrices. Text uses the bundled DejaVu Sans, so PNGs render the same
//! on a machine without fonts.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Only fails on a malformed font file, which is bundled and fixed.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Line,
    Dashed,
    /// Markers, with vertical error bars when the series has them.
    Points,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    /// Half-widths of error bars (standard deviations), same length as y.
    pub err: Option<Vec<f64>>,
    pub mark: Mark,
    /// Index into the palette: series that belong together share it.
    pub color: usize,
}

#[derive(Debug, Clone)]
pub struct Curves {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
    /// Horizontal reference lines (label, y), drawn grey and dotted.
    pub hlines: Vec<(String, f64)>,
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Tick labels: `1e4` rather than `10000.0`, `0.5` rather than `0.5000`.
/// A legend swatch that looks like the dashed line it stands for: three dashes. (A macro: the
/// element's type depends on the drawing backend.)
macro_rules! dashed_swatch {
    ($x:expr, $y:expr, $style:expr) => {
        EmptyElement::at(($x, $y))
            + PathElement::new(vec![(0, 0), (5, 0)], $style)
            + PathElement::new(vec![(8, 0), (13, 0)], $style)
            + PathElement::new(vec![(16, 0), (21, 0)], $style)
    };
}

fn compact(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e4).contains(&a) {
        let s = format!("{v:.0e}");
        if s.parse::<f64>().is_ok_and(|p| (p - v).abs() <= 1e-9 * a) {
            return s;
        }
        return format!("{v:.1e}");
    }
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

type DrawResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Writes `<stem>.png` and `<stem>.svg`.
pub fn write_curves(curves: &Curves, stem: &std::path::Path) -> Result<(), String> {
    register_font();
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    let err = |e: Box<dyn std::error::Error>| format!("cannot draw {}: {e}", stem.display());
    {
        let root = BitMapBackend::new(&png, (1000, 680)).into_drawing_area();
        draw_curves(&root, curves).map_err(err)?;
        root.present().map_err(|e| err(Box::new(e)))?;
    }
    let root = SVGBackend::new(&svg, (1000, 680)).into_drawing_area();
    draw_curves(&root, curves).map_err(err)?;
    root.present().map_err(|e| err(Box::new(e)))?;
    Ok(())
}

/// Writes `<stem>.png` and `<stem>.svg` with the plots `panels` side by side.
pub fn write_panels(panels: &[Curves], stem: &std::path::Path) -> Result<(), String> {
    register_font();
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    let size = (760 * panels.len().max(1) as u32, 600);
    let err = |e: Box<dyn std::error::Error>| format!("cannot draw {}: {e}", stem.display());
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(Box::new(e)))?;
        for (area, curves) in root.split_evenly((1, panels.len().max(1))).iter().zip(panels) {
            draw_curves(area, curves).map_err(err)?;
        }
        root.present().map_err(|e| err(Box::new(e)))?;
    }
    let root = SVGBackend::new(&svg, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(Box::new(e)))?;
    for (area, curves) in root.split_evenly((1, panels.len().max(1))).iter().zip(panels) {
        draw_curves(area, curves).map_err(err)?;
    }
    root.present().map_err(|e| err(Box::new(e)))?;
    Ok(())
}

/// Rows of square grey images (`side` x `side` pixels, row-major), each row labelled on its
/// left, written as `<stem>.png` and `<stem>.svg`. Each image is shaded from its own minimum
/// (black) to its maximum (white): reconstructions are compared by their patterns, and the
/// decoder rows have their own scales.
pub fn write_image_grid(
    title: &str,
    rows: &[(String, Vec<Vec<f64>>)],
    side: usize,
    stem: &std::path::Path,
) -> Result<(), String> {
    register_font();
    let columns = rows.iter().map(|(_, images)| images.len()).max().unwrap_or(0).max(1);
    let pixel = (96 / side.max(1)).max(2) as u32;
    let cell = pixel * side as u32 + 6;
    let label = 230;
    let size = (
        label + cell * columns as u32 + 10,
        50 + cell * rows.len().max(1) as u32 + 10,
    );
    let err = |e: Box<dyn std::error::Error>| format!("cannot draw {}: {e}", stem.display());
    {
        let png = stem.with_extension("png");
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        draw_image_grid(&root, title, rows, side, pixel, cell, label).map_err(err)?;
        root.present().map_err(|e| err(Box::new(e)))?;
    }
    let svg = stem.with_extension("svg");
    let root = SVGBackend::new(&svg, size).into_drawing_area();
    draw_image_grid(&root, title, rows, side, pixel, cell, label).map_err(err)?;
    root.present().map_err(|e| err(Box::new(e)))?;
    Ok(())
}

fn draw_image_grid<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    rows: &[(String, Vec<Vec<f64>>)],
    side: usize,
    pixel: u32,
    cell: u32,
    label: u32,
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    root.draw(&Text::new(title.to_string(), (10, 12), ("sans-serif", 20).into_font()))?;
    let (pixel, cell, label) = (pixel as i32, cell as i32, label as i32);
    for (r, (name, images)) in rows.iter().enumerate() {
        let top = 50 + r as i32 * cell;
        let style = ("sans-serif", 16)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new(name.clone(), (10, top + cell / 2), style))?;
        for (c, image) in images.iter().enumerate() {
            let left = label + c as i32 * cell;
            let (lo, hi) = image
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(*v), h.max(*v)));
            let span = if hi > lo { hi - lo } else { 1.0 };
            for (i, v) in image.iter().enumerate().take(side * side) {
                let (y, x) = ((i / side) as i32, (i % side) as i32);
                let shade = (255.0 * ((v - lo) / span).clamp(0.0, 1.0)).round() as u8;
                let corner = (left + x * pixel, top + y * pixel);
                root.draw(&Rectangle::new(
                    [corner, (corner.0 + pixel, corner.1 + pixel)],
                    RGBColor(shade, shade, shade).filled(),
                ))?;
            }
        }
    }
    Ok(())
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

fn draw_curves<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, c: &Curves) -> DrawResult<()>
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
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(&c.title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72);
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
            for (label, y) in &c.hlines {
                let style = ShapeStyle::from(&RGBColor(120, 120, 120)).stroke_width(1);
                chart
                    .draw_series(DashedLineSeries::new(vec![(xs.0, *y), (xs.1, *y)], 4, 4, style))?
                    .label(label.as_str())
                    .legend(move |(x, y)| dashed_swatch!(x, y, style));
            }
            for s in &c.series {
                let col = color(s.color);
                let ok =
                    |x: f64, y: f64| x.is_finite() && y.is_finite() && (!c.log_x || x > 0.0) && (!c.log_y || y > 0.0);
                let pts: Vec<(f64, f64)> =
                    s.x.iter()
                        .zip(&s.y)
                        .map(|(x, y)| (*x, *y))
                        .filter(|(x, y)| ok(*x, *y))
                        .collect();
                match s.mark {
                    Mark::Line => {
                        chart
                            .draw_series(LineSeries::new(pts, col.stroke_width(2)))?
                            .label(s.label.as_str())
                            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(2)));
                    }
                    Mark::Dashed => {
                        chart
                            .draw_series(DashedLineSeries::new(pts, 8, 5, col.stroke_width(2).into()))?
                            .label(s.label.as_str())
                            .legend(move |(x, y)| dashed_swatch!(x, y, col.stroke_width(2)));
                    }
                    Mark::Points => {
                        if let Some(err) = &s.err {
                            let bars = s.x.iter().zip(&s.y).zip(err).filter_map(|((x, y), e)| {
                                let lo = if c.log_y { (y - e).max(y * 0.5) } else { y - e };
                                ok(*x, *y).then(|| ErrorBar::new_vertical(*x, lo, *y, y + e, col.stroke_width(1), 6))
                            });
                            chart.draw_series(bars)?;
                        }
                        chart
                            .draw_series(pts.iter().map(|p| Circle::new(*p, 4, col.filled())))?
                            .label(s.label.as_str())
                            .legend(move |(x, y)| Circle::new((x + 10, y), 4, col.filled()));
                    }
                }
            }
            chart
                .configure_series_labels()
                .label_font(("sans-serif", 15))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(180, 180, 180))
                .position(SeriesLabelPosition::UpperRight)
                .draw()?;
        }};
    }
    match (c.log_x, c.log_y) {
        (true, true) => body!(builder.build_cartesian_2d((xs.0..xs.1).log_scale(), (ys.0..ys.1).log_scale())?),
        (true, false) => body!(builder.build_cartesian_2d((xs.0..xs.1).log_scale(), ys.0..ys.1)?),
        (false, true) => body!(builder.build_cartesian_2d(xs.0..xs.1, (ys.0..ys.1).log_scale())?),
        (false, false) => body!(builder.build_cartesian_2d(xs.0..xs.1, ys.0..ys.1)?),
    }
    Ok(())
}

/// Heat maps of matrices with entries in [0, 1] (|overlaps|), side by side, written as
/// `<stem>.png` and `<stem>.svg`. Rows are hidden units, columns are spikes.
pub fn write_heatmaps(title: &str, panels: &[(String, Vec<Vec<f64>>)], stem: &std::path::Path) -> Result<(), String> {
    register_font();
    let width = 420 * panels.len().max(1) as u32;
    let err = |e: Box<dyn std::error::Error>| format!("cannot draw {}: {e}", stem.display());
    {
        let png = stem.with_extension("png");
        let root = BitMapBackend::new(&png, (width, 470)).into_drawing_area();
        draw_heatmaps(&root, title, panels).map_err(err)?;
        root.present().map_err(|e| err(Box::new(e)))?;
    }
    let svg = stem.with_extension("svg");
    let root = SVGBackend::new(&svg, (width, 470)).into_drawing_area();
    draw_heatmaps(&root, title, panels).map_err(err)?;
    root.present().map_err(|e| err(Box::new(e)))?;
    Ok(())
}

fn draw_heatmaps<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    panels: &[(String, Vec<Vec<f64>>)],
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for ((name, m), area) in panels.iter().zip(areas) {
        let rows = m.len();
        let cols = m.first().map_or(0, |r| r.len());
        let mut chart = ChartBuilder::on(&area)
            .caption(name, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(40)
            // A segmented range a..b has the segments a..=b.
            .build_cartesian_2d(
                (0..cols.max(1) - 1).into_segmented(),
                (0..rows.max(1) - 1).into_segmented(),
            )?;
        // Row k is drawn from the top, so the matrix reads as printed.
        let flip = |k: usize| rows - 1 - k;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("spike m")
            .y_desc("unit k")
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => i.to_string(),
                _ => String::new(),
            })
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) if *i < rows => flip(*i).to_string(),
                _ => String::new(),
            })
            .label_style(("sans-serif", 14))
            .draw()?;
        chart.draw_series(m.iter().enumerate().flat_map(|(k, row)| {
            row.iter().enumerate().map(move |(j, v)| {
                let shade = (255.0 * (1.0 - v.clamp(0.0, 1.0))) as u8;
                Rectangle::new(
                    [
                        (SegmentValue::Exact(j), SegmentValue::Exact(flip(k))),
                        (SegmentValue::Exact(j + 1), SegmentValue::Exact(flip(k) + 1)),
                    ],
                    RGBColor(shade, shade, 255).filled(),
                )
            })
        }))?;
        chart.draw_series(m.iter().enumerate().flat_map(|(k, row)| {
            row.iter().enumerate().map(move |(j, v)| {
                let ink = if *v > 0.5 { WHITE } else { BLACK };
                let style = ("sans-serif", 18)
                    .into_font()
                    .color(&ink)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                Text::new(
                    format!("{v:.2}"),
                    (SegmentValue::CenterOf(j), SegmentValue::CenterOf(flip(k))),
                    style,
                )
            })
        }))?;
    }
    Ok(())
}

/// A CSV table of numbers as written by this crate (header line, then rows; empty cells NaN).
#[derive(Debug, Clone)]
pub struct Table {
    pub header: Vec<String>,
    pub columns: Vec<Vec<f64>>,
}

impl Table {
    pub fn parse(text: &str) -> Result<Table, String> {
        let mut lines = text.lines();
        let header: Vec<String> = lines
            .next()
            .ok_or("empty CSV")?
            .split(',')
            .map(str::to_string)
            .collect();
        let mut columns = vec![Vec::new(); header.len()];
        for (i, line) in lines.enumerate() {
            for (j, cell) in line.split(',').enumerate().take(header.len()) {
                let v = if cell.is_empty() {
                    f64::NAN
                } else {
                    cell.parse::<f64>()
                        .map_err(|_| format!("line {}: `{cell}` is not a number", i + 2))?
                };
                columns[j].push(v);
            }
        }
        Ok(Table { header, columns })
    }

    pub fn column(&self, name: &str) -> Option<&[f64]> {
        self.header.iter().position(|h| h == name).map(|i| &self.columns[i][..])
    }
}

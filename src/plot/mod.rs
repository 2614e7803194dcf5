//! Figures as PNG and SVG (plotters): curves on log axes with error bars and reference lines,
//! rows of images, and heat maps of overlap matrices. Text uses the bundled DejaVu Sans, so PNGs render the same
//! on a machine without fonts.

use plotters::prelude::*;
use plotters::style::FontStyle;

/// Draws `$draw` (a `DrawResult<()>` expression of the drawing area `$root`) into
/// `<stem>.png` and `<stem>.svg` of `$size` pixels; evaluates to `Result<(), String>`. A
/// macro, because the drawing area's type differs between the two backends.
macro_rules! write_png_and_svg {
    ($stem:expr, $size:expr, |$root:ident| $draw:expr) => {{
        register_font();
        let stem: &std::path::Path = $stem;
        let err = |e: Box<dyn std::error::Error>| format!("cannot draw {}: {e}", stem.display());
        let png = stem.with_extension("png");
        let svg = stem.with_extension("svg");
        (|| -> Result<(), String> {
            {
                let $root = BitMapBackend::new(&png, $size).into_drawing_area();
                $draw.map_err(err)?;
                $root.present().map_err(|e| err(Box::new(e)))?;
            }
            let $root = SVGBackend::new(&svg, $size).into_drawing_area();
            $draw.map_err(err)?;
            $root.present().map_err(|e| err(Box::new(e)))
        })()
    }};
}

mod curves;
mod grids;

use curves::draw_curves;
pub use grids::{write_heatmaps, write_image_grid, write_value_heatmap};

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

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

/// Tick labels: `1e4` rather than `10000.0`, `0.5` rather than `0.5000`.
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
    write_png_and_svg!(stem, (1000, 680), |root| draw_curves(&root, curves))
}

/// Writes `<stem>.png` and `<stem>.svg` with the plots `panels` side by side.
pub fn write_panels(panels: &[Curves], stem: &std::path::Path) -> Result<(), String> {
    let size = (760 * panels.len().max(1) as u32, 600);
    write_png_and_svg!(stem, size, |root| draw_panels(&root, panels))
}

fn draw_panels<DB: DrawingBackend>(root: &DrawingArea<DB, plotters::coord::Shift>, panels: &[Curves]) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    for (area, curves) in root.split_evenly((1, panels.len().max(1))).iter().zip(panels) {
        draw_curves(area, curves)?;
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

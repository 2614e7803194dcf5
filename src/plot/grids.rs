//! Rows of images and heat maps of overlap matrices.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{register_font, DrawResult};

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

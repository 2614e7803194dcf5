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
    let columns = rows.iter().map(|(_, images)| images.len()).max().unwrap_or(0).max(1);
    let pixel = (96 / side.max(1)).max(2) as u32;
    let cell = pixel * side as u32 + 6;
    let label = 230;
    let size = (
        label + cell * columns as u32 + 10,
        50 + cell * rows.len().max(1) as u32 + 10,
    );
    write_png_and_svg!(stem, size, |root| draw_image_grid(
        &root, title, rows, side, pixel, cell, label
    ))
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
    let width = 420 * panels.len().max(1) as u32;
    write_png_and_svg!(stem, (width, 470), |root| draw_heatmaps(&root, title, panels))
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

/// A colour from pale yellow (0) to dark blue (1), through green: a gradient that reads in
/// grey too.
fn shade(f: f64) -> RGBColor {
    const STOPS: [(f64, (f64, f64, f64)); 3] = [
        (0.0, (255.0, 247.0, 188.0)),
        (0.5, (65.0, 182.0, 196.0)),
        (1.0, (8.0, 29.0, 88.0)),
    ];
    let f = f.clamp(0.0, 1.0);
    let i = usize::from(f > 0.5);
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let w = (f - a.0) / (b.0 - a.0);
    let mix = |p: f64, q: f64| (p + w * (q - p)).round() as u8;
    RGBColor(mix(a.1 .0, b.1 .0), mix(a.1 .1, b.1 .1), mix(a.1 .2, b.1 .2))
}

/// One value over two categorical axes (`(name, labels)`), each cell shaded and printed, with
/// a colour bar; `grid[row][column]` is the value at (x = column, y = row), None where no
/// point has one. Written as `<stem>.png` and `<stem>.svg`.
pub fn write_value_heatmap(
    title: &str,
    x: (&str, &[String]),
    y: (&str, &[String]),
    grid: &[Vec<Option<f64>>],
    value: &str,
    stem: &std::path::Path,
) -> Result<(), String> {
    let size = (
        220 + 90 * x.1.len().max(1) as u32 + 140,
        140 + 60 * y.1.len().max(1) as u32,
    );
    write_png_and_svg!(stem, size, |root| draw_value_heatmap(&root, title, x, y, grid, value))
}

fn draw_value_heatmap<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    (x_name, xs): (&str, &[String]),
    (y_name, ys): (&str, &[String]),
    grid: &[Vec<Option<f64>>],
    value: &str,
) -> DrawResult<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 20))?;
    let (width, _) = root.dim_in_pixel();
    let (chart_area, bar_area) = root.split_horizontally(width as i32 - 130);
    let finite = grid.iter().flatten().flatten().copied();
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    let scale = |v: f64| if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
    let mut chart = ChartBuilder::on(&chart_area)
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d(
            (0..xs.len().max(1) - 1).into_segmented(),
            (0..ys.len().max(1) - 1).into_segmented(),
        )?;
    let label = |labels: &[String], v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(x_name)
        .y_desc(y_name)
        .x_label_formatter(&|v| label(xs, v))
        .y_label_formatter(&|v| label(ys, v))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .draw()?;
    let cells = grid
        .iter()
        .enumerate()
        .flat_map(|(r, row)| row.iter().enumerate().map(move |(c, v)| (r, c, *v)));
    chart.draw_series(cells.clone().map(|(r, c, v)| {
        let fill = v.map_or(RGBColor(230, 230, 230), |v| shade(scale(v)));
        Rectangle::new(
            [
                (SegmentValue::Exact(c), SegmentValue::Exact(r)),
                (SegmentValue::Exact(c + 1), SegmentValue::Exact(r + 1)),
            ],
            fill.filled(),
        )
    }))?;
    chart.draw_series(cells.map(|(r, c, v)| {
        let ink = if v.is_some_and(|v| scale(v) > 0.55) {
            WHITE
        } else {
            BLACK
        };
        let style = ("sans-serif", 15)
            .into_font()
            .color(&ink)
            .pos(Pos::new(HPos::Center, VPos::Center));
        let text = v.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
        Text::new(text, (SegmentValue::CenterOf(c), SegmentValue::CenterOf(r)), style)
    }))?;
    // The colour bar: the gradient from the smallest value (bottom) to the largest (top).
    let (_, bar_height) = bar_area.dim_in_pixel();
    let (top, bottom) = (30, bar_height as i32 - 70);
    for y in top..bottom {
        let f = 1.0 - f64::from(y - top) / f64::from((bottom - top).max(1));
        bar_area.draw(&Rectangle::new([(20, y), (45, y + 1)], shade(f).filled()))?;
    }
    let small = ("sans-serif", 14).into_font().color(&BLACK);
    bar_area.draw(&Text::new(format!("{hi:.4}"), (50, top), small.clone()))?;
    bar_area.draw(&Text::new(format!("{lo:.4}"), (50, bottom - 12), small.clone()))?;
    bar_area.draw(&Text::new(value.to_string(), (5, bottom + 14), small))?;
    Ok(())
}

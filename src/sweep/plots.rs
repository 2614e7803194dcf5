//! A sweep's pictures, drawn from its two tables: `lines` (one curve per point against t,
//! coloured by one axis) and `heatmap` (a final value over two axes, with a colour bar).

use std::path::{Path, PathBuf};

use super::store::cells;
use super::{cell, Sweep, Tables};
use crate::experiment::{is_plain_name, key_line, located};
use crate::plot::{self, Curves, Mark, Series};

/// What a sweep plot draws.
#[derive(Debug, Clone, PartialEq)]
pub enum SweepPlotKind {
    /// `column` of trajectories.csv against t, one curve per point, coloured by axis `by`.
    Lines { column: String, by: Option<String> },
    /// `value` of points.csv over axes `x` and `y` (the mean where other axes vary).
    Heatmap { value: String, x: String, y: String },
    /// The time to escape the first plateau (eg first below the midpoint between its start and
    /// the rank-1 PCA error) against axis `x`: an ODE line and SGD markers per value of `by`.
    Escape { x: String, by: Option<String> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct SweepPlot {
    pub file: String,
    pub title: String,
    pub kind: SweepPlotKind,
    pub log_x: bool,
    pub log_y: bool,
    pub y_label: Option<String>,
}

/// The `[[plot]]` tables of a sweep file, checked against its axes; errors at their line.
pub fn parse_plots(doc: &toml::Table, axes: &[String], path: &str, text: &str) -> Result<Vec<SweepPlot>, String> {
    let Some(list) = doc.get("plot") else {
        return Ok(Vec::new());
    };
    let tables = list
        .as_array()
        .ok_or_else(|| located(path, key_line(text, 0, "plot"), "`plot` must be [[plot]] tables"))?;
    let mut plots = Vec::new();
    let mut from = 0;
    for table in tables {
        let start = text[from..].find("[[plot]]").map_or(from, |i| from + i);
        from = start + 1;
        let line = crate::experiment::line_of(text, start);
        let at = |key: &str| key_line(text, start, key);
        let t = table
            .as_table()
            .ok_or_else(|| located(path, line, "a [[plot]] must be a table"))?;
        let text_key = |key: &str| -> Result<Option<String>, String> {
            match t.get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(located(path, at(key), format!("key `{key}`: expected a string"))),
            }
        };
        let need = |key: &str| text_key(key)?.ok_or_else(|| located(path, line, format!("this plot needs `{key}`")));
        let axis = |key: &str, value: String| -> Result<String, String> {
            if axes.contains(&value) {
                Ok(value)
            } else {
                Err(located(
                    path,
                    at(key),
                    format!(
                        "key `{key}`: `{value}` is not one of the sweep's axes ({})",
                        axes.join(", ")
                    ),
                ))
            }
        };
        let file = need("file")?;
        if !is_plain_name(&file) {
            return Err(located(
                path,
                at("file"),
                format!("key `file`: `{file}` must be a plain file name"),
            ));
        }
        let kind = match need("kind")?.as_str() {
            "lines" => SweepPlotKind::Lines {
                column: need("column")?,
                by: text_key("by")?.map(|b| axis("by", b)).transpose()?,
            },
            "heatmap" => SweepPlotKind::Heatmap {
                value: need("value")?,
                x: axis("x", need("x")?)?,
                y: axis("y", need("y")?)?,
            },
            "escape" => SweepPlotKind::Escape {
                x: axis("x", need("x")?)?,
                by: text_key("by")?.map(|b| axis("by", b)).transpose()?,
            },
            other => {
                let msg = format!("unknown plot kind `{other}`: expected lines, heatmap or escape");
                return Err(located(path, at("kind"), msg));
            }
        };
        let flag = |key: &str| t.get(key).and_then(toml::Value::as_bool).unwrap_or(false);
        plots.push(SweepPlot {
            title: text_key("title")?.unwrap_or_else(|| file.clone()),
            file,
            kind,
            log_x: flag("log_x"),
            log_y: flag("log_y"),
            y_label: text_key("y_label")?,
        });
    }
    Ok(plots)
}

/// The rows of trajectories.csv that belong to the point whose axis values (as cells) are `key`:
/// the rows that begin with them.
fn point_rows<'r>(rows: &'r [Vec<String>], key: &[String]) -> Vec<&'r Vec<String>> {
    rows.iter()
        .filter(|r| r.len() >= key.len() && r[..key.len()] == *key)
        .collect()
}

fn column_of(header: &[String], name: &str, file: &str) -> Result<usize, String> {
    header
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| format!("a sweep plot reads `{name}`, which {file} does not have"))
}

/// Draws every plot of `sweep` into `dir` from its tables; returns the files written.
pub fn draw(sweep: &Sweep, tables: &Tables, dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    for p in &sweep.plots {
        let stem = dir.join(&p.file);
        match &p.kind {
            SweepPlotKind::Lines { column, by } => lines(sweep, p, column, by.as_deref(), &tables.trajectories, &stem)?,
            SweepPlotKind::Heatmap { value, x, y } => heatmap(sweep, p, value, (x, y), &tables.points, &stem)?,
            SweepPlotKind::Escape { x, by } => {
                written.push(escape(sweep, p, x, by.as_deref(), &tables.trajectories, &stem)?);
            }
        }
        written.extend([stem.with_extension("png"), stem.with_extension("svg")]);
    }
    Ok(written)
}

fn lines(
    sweep: &Sweep,
    p: &SweepPlot,
    column: &str,
    by: Option<&str>,
    trajectories: &[u8],
    stem: &Path,
) -> Result<(), String> {
    let (header, rows) = cells(trajectories);
    let (t, y) = (
        column_of(&header, "t", "trajectories.csv")?,
        column_of(&header, column, "trajectories.csv")?,
    );
    let by_index = by.and_then(|b| sweep.axes.iter().position(|a| a == b));
    let mut colours: Vec<String> = Vec::new();
    let mut members: Vec<usize> = Vec::new();
    let mut series: Vec<Series> = Vec::new();
    for (i, point) in sweep.points.iter().enumerate() {
        let key: Vec<String> = point.iter().map(cell).collect();
        let mine = point_rows(&rows, &key);
        let number = |s: &String| s.parse::<f64>().unwrap_or(f64::NAN);
        let colour_key = by_index.map_or(i.to_string(), |b| key[b].clone());
        let colour = colours.iter().position(|c| *c == colour_key).unwrap_or_else(|| {
            colours.push(colour_key.clone());
            members.push(0);
            colours.len() - 1
        });
        // Points of one colour alternate solid and dashed lines, so that each can be told.
        members[colour] += 1;
        let mark = if members[colour].is_multiple_of(2) {
            Mark::Dashed
        } else {
            Mark::Line
        };
        series.push(Series {
            label: sweep.describe(i),
            x: mine.iter().map(|r| number(&r[t])).collect(),
            y: mine.iter().map(|r| r.get(y).map_or(f64::NAN, number)).collect(),
            err: None,
            mark,
            color: colour,
        });
    }
    let curves = Curves {
        title: p.title.clone(),
        x_label: "t (SGD steps / D)".into(),
        y_label: p.y_label.clone().unwrap_or_else(|| crate::schema::describe(column)),
        log_x: p.log_x,
        log_y: p.log_y,
        series,
        hlines: vec![],
    };
    plot::write_curves(&curves, stem)
}

fn heatmap(
    sweep: &Sweep,
    p: &SweepPlot,
    value: &str,
    (x, y): (&String, &String),
    points: &[u8],
    stem: &Path,
) -> Result<(), String> {
    let (header, rows) = cells(points);
    let v = column_of(&header, value, "points.csv")?;
    let (xi, yi) = (
        column_of(&header, x, "points.csv")?,
        column_of(&header, y, "points.csv")?,
    );
    let distinct = |i: usize| -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        for r in &rows {
            if !seen.contains(&r[i]) {
                seen.push(r[i].clone());
            }
        }
        seen
    };
    let (xs, ys) = (distinct(xi), distinct(yi));
    let grid: Vec<Vec<Option<f64>>> = ys
        .iter()
        .map(|yv| {
            xs.iter()
                .map(|xv| {
                    let cells: Vec<f64> = rows
                        .iter()
                        .filter(|r| r[xi] == *xv && r[yi] == *yv)
                        .filter_map(|r| r.get(v).and_then(|c| c.parse::<f64>().ok()))
                        .filter(|c| c.is_finite())
                        .collect();
                    (!cells.is_empty()).then(|| cells.iter().sum::<f64>() / cells.len() as f64)
                })
                .collect()
        })
        .collect();
    let others = sweep.axes.len() > 2;
    let label = format!(
        "{}{}",
        crate::schema::describe(value),
        if others { " (mean over the other axes)" } else { "" }
    );
    plot::write_value_heatmap(&p.title, (x, &xs), (y, &ys), &grid, &label, stem)
}

/// When an eg series first falls below the midpoint between its first value and `floor`,
/// interpolated in log t between the two output times around it (None if it never does).
pub fn escape_time(t: &[f64], eg: &[f64], floor: f64) -> Option<f64> {
    let mid = (eg.first()? + floor) / 2.0;
    let i = eg.iter().position(|e| *e < mid)?;
    if i == 0 || t[i - 1] <= 0.0 {
        return Some(t[i]);
    }
    let f = (eg[i - 1] - mid) / (eg[i - 1] - eg[i]);
    Some((t[i - 1].ln() + f * (t[i].ln() - t[i - 1].ln())).exp())
}

/// The escape plot, and its numbers as `<file>.csv` (the axes, `escape_ode`, `escape_sgd`).
fn escape(
    sweep: &Sweep,
    p: &SweepPlot,
    x: &str,
    by: Option<&str>,
    trajectories: &[u8],
    stem: &Path,
) -> Result<PathBuf, String> {
    let (header, rows) = cells(trajectories);
    let t = column_of(&header, "t", "trajectories.csv")?;
    let pca = column_of(&header, "eg_pca_1", "trajectories.csv")?;
    let ode = header
        .iter()
        .position(|h| h == "eg_ode")
        .or_else(|| header.iter().position(|h| h == "eg"));
    let sgd = header.iter().position(|h| h == "eg_sgd_mean");
    let (xi, bi) = (
        sweep.axes.iter().position(|a| a == x),
        by.and_then(|b| sweep.axes.iter().position(|a| a == b)),
    );
    let number = |s: &String| s.parse::<f64>().unwrap_or(f64::NAN);
    let mut csv = format!("{x},{},escape_ode,escape_sgd\n", by.unwrap_or("all"));
    // Each point's group (its value of `by`), x, and escape time by the ODE and by SGD.
    let mut found: Vec<(String, f64, [Option<f64>; 2])> = Vec::new();
    for point in &sweep.points {
        let key: Vec<String> = point.iter().map(cell).collect();
        let mine = point_rows(&rows, &key);
        let series = |c: Option<usize>| -> Option<f64> {
            let c = c?;
            let ts: Vec<f64> = mine.iter().map(|r| number(&r[t])).collect();
            let eg: Vec<f64> = mine.iter().map(|r| r.get(c).map_or(f64::NAN, number)).collect();
            escape_time(&ts, &eg, number(&mine.first()?[pca]))
        };
        let xv = xi.map_or(f64::NAN, |i| number(&key[i]));
        let group = bi.map_or_else(|| "all".to_string(), |i| key[i].clone());
        let escapes = [series(ode), series(sgd)];
        let show = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:e}"));
        csv += &format!(
            "{},{},{},{}\n",
            key[xi.unwrap_or(0)],
            group,
            show(escapes[0]),
            show(escapes[1])
        );
        found.push((group, xv, escapes));
    }
    let mut groups: Vec<String> = Vec::new();
    for (g, ..) in &found {
        if !groups.contains(g) {
            groups.push(g.clone());
        }
    }
    let mut series = Vec::new();
    for (colour, g) in groups.iter().enumerate() {
        let mine: Vec<&(String, f64, [Option<f64>; 2])> = found.iter().filter(|f| f.0 == *g).collect();
        let label = by.map_or_else(String::new, |b| format!("{b} = {g}: "));
        for (side, (name, mark)) in [("ODE", Mark::Line), ("SGD", Mark::Points)].into_iter().enumerate() {
            if mine.iter().all(|f| f.2[side].is_none()) {
                continue;
            }
            series.push(Series {
                label: format!("{label}{name}"),
                x: mine.iter().map(|f| f.1).collect(),
                y: mine.iter().map(|f| f.2[side].unwrap_or(f64::NAN)).collect(),
                err: None,
                mark,
                color: colour,
            });
        }
    }
    let curves = Curves {
        title: p.title.clone(),
        x_label: x.to_string(),
        y_label: p
            .y_label
            .clone()
            .unwrap_or_else(|| "time to escape the first plateau".into()),
        log_x: p.log_x,
        log_y: p.log_y,
        series,
        hlines: vec![],
    };
    plot::write_curves(&curves, stem)?;
    let path = stem.with_extension("csv");
    crate::cli::write_file_atomically(&path.to_string_lossy(), csv.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

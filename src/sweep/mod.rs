//! Sweep files: one subcommand over a grid of its options (`[grid]`, a Cartesian product, and
//! `[zip]`, lists that vary together), each point a command line checked before any runs.

mod plots;
pub mod store;

pub use plots::{draw, SweepPlot, SweepPlotKind};

pub use store::{collect, Tables};

use crate::experiment::{key_line, located, push_key, RunCommand, RESERVED};
use crate::names::Named;

/// A sweep file, parsed.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub title: String,
    pub command: RunCommand,
    /// Options of every point, in the file's order.
    pub fixed: Vec<(String, toml::Value)>,
    /// The varying options: grid axes first (the first varies slowest), then the zipped lists.
    pub axes: Vec<String>,
    /// Every point's values of `axes`, in order.
    pub points: Vec<Vec<toml::Value>>,
    /// The pictures drawn from the tables (`[[plot]]`).
    pub plots: Vec<SweepPlot>,
}

/// A table of the file as (key, value) in the file's order.
fn entries(table: Option<&toml::Value>) -> Vec<(String, toml::Value)> {
    match table.and_then(toml::Value::as_table) {
        Some(t) => t.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        None => Vec::new(),
    }
}

impl Sweep {
    /// Parses `text` (the file at `path`); errors are `path:line: message`.
    pub fn parse(path: &str, text: &str) -> Result<Sweep, String> {
        let at = |key: &str| key_line(text, 0, key);
        let doc: toml::Table = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| crate::experiment::line_of(text, s.start));
            located(path, line, e.message())
        })?;
        for key in doc.keys() {
            if !matches!(
                key.as_str(),
                "title" | "about" | "figure" | "command" | "fixed" | "grid" | "zip" | "plot"
            ) {
                return Err(located(
                    path,
                    at(key),
                    format!("unknown key `{key}`: expected title, command, fixed, grid or zip"),
                ));
            }
        }
        let name = doc.get("command").and_then(|v| v.as_str()).ok_or_else(|| {
            located(
                path,
                1,
                "no `command`: give ode, compare, sgd, spectrum or reduced-vs-full",
            )
        })?;
        let command = RunCommand::ALL
            .iter()
            .copied()
            .find(|c| c.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = RunCommand::ALL.iter().map(|c| c.name()).collect();
                located(
                    path,
                    at("command"),
                    format!("unknown command `{name}`: expected {}", names.join(", ")),
                )
            })?;
        let fixed = entries(doc.get("fixed"));
        let grid = entries(doc.get("grid"));
        let zip = entries(doc.get("zip"));
        if grid.is_empty() && zip.is_empty() {
            return Err(located(path, 1, "nothing varies: give a [grid] (or [zip]) of lists"));
        }
        // The line of `key` within the section `[name]`.
        let in_section = |name: &str, key: &str| key_line(text, text.find(&format!("[{name}]")).unwrap_or(0), key);
        let mut seen: Vec<&str> = Vec::new();
        let sections = [("fixed", &fixed), ("grid", &grid), ("zip", &zip)];
        for (section, key) in sections.iter().flat_map(|(s, kv)| kv.iter().map(move |(k, _)| (*s, k))) {
            if RESERVED.contains(&key.as_str()) {
                let msg = format!("key `{key}`: the sweep chooses its outputs (see --out-dir)");
                return Err(located(path, in_section(section, key), msg));
            }
            if seen.contains(&key.as_str()) {
                let msg = format!("key `{key}` is given twice (in [fixed], [grid] or [zip])");
                return Err(located(path, in_section(section, key), msg));
            }
            seen.push(key);
        }
        let list = |key: &str, value: &toml::Value| -> Result<Vec<toml::Value>, String> {
            let line = in_section(
                if grid.iter().any(|(k, _)| k == key) {
                    "grid"
                } else {
                    "zip"
                },
                key,
            );
            match value.as_array() {
                Some(values) if !values.is_empty() => Ok(values.clone()),
                Some(_) => Err(located(path, line, format!("`{key}`: an empty list gives no points"))),
                None => Err(located(
                    path,
                    line,
                    format!("`{key}`: expected a list of values (a fixed value goes in [fixed])"),
                )),
            }
        };
        let (axes, points) = grid_points(&grid, &zip, &list, path, &in_section)?;
        let title = doc
            .get("title")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let plots = plots::parse_plots(&doc, &axes, path, text)?;
        Ok(Sweep {
            title,
            command,
            fixed,
            axes,
            points,
            plots,
        })
    }

    /// Point `i`'s command line, without the program name and outputs.
    pub fn argv(&self, i: usize, path: &str, text: &str) -> Result<Vec<String>, String> {
        let mut argv = vec![self.command.name().to_string()];
        let values = self.points[i].iter();
        for (key, value) in self
            .fixed
            .iter()
            .map(|(k, v)| (k, v))
            .chain(self.axes.iter().zip(values))
        {
            push_key(&mut argv, key, value).map_err(|msg| located(path, key_line(text, 0, key), msg))?;
        }
        Ok(argv)
    }

    /// Point `i` in words: `lr = 0.5, k = 2`.
    pub fn describe(&self, i: usize) -> String {
        self.axes
            .iter()
            .zip(&self.points[i])
            .map(|(k, v)| format!("{k} = {}", cell(v)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A list of values, or the located error of a key that is no list (see `Sweep::parse`).
type ListOf<'a> = dyn Fn(&str, &toml::Value) -> Result<Vec<toml::Value>, String> + 'a;

/// The axes and every point's values: the Cartesian product of the grid's lists (the first
/// varies slowest), each combined with every row of the zipped lists.
#[allow(clippy::type_complexity)]
fn grid_points(
    grid: &[(String, toml::Value)],
    zip: &[(String, toml::Value)],
    list: &ListOf,
    path: &str,
    in_section: &dyn Fn(&str, &str) -> usize,
) -> Result<(Vec<String>, Vec<Vec<toml::Value>>), String> {
    let mut axes: Vec<String> = Vec::new();
    let mut points: Vec<Vec<toml::Value>> = vec![Vec::new()];
    for (key, value) in grid {
        let values = list(key, value)?;
        points = points
            .iter()
            .flat_map(|p| values.iter().map(move |v| [p.clone(), vec![v.clone()]].concat()))
            .collect();
        axes.push(key.clone());
    }
    if let Some((first, _)) = zip.first() {
        let rows = list(first, &zip[0].1)?.len();
        let columns = zip
            .iter()
            .map(|(key, value)| list(key, value))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(((key, _), column)) = zip.iter().zip(&columns).find(|(_, c)| c.len() != rows) {
            let msg = format!(
                "[zip] lists vary together: `{key}` has {} values, `{first}` {rows}",
                column.len()
            );
            return Err(located(path, in_section("zip", key), msg));
        }
        points = points
            .iter()
            .flat_map(|p| {
                (0..rows)
                    .map(|r| [p.clone(), columns.iter().map(|c| c[r].clone()).collect()].concat())
                    .collect::<Vec<_>>()
            })
            .collect();
        axes.extend(zip.iter().map(|(k, _)| k.clone()));
    }
    Ok((axes, points))
}

/// A value as a table cell: numbers as written, strings bare, lists comma-separated.
pub fn cell(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

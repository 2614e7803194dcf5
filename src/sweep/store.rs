//! A sweep's results on disk: one pair of files per point in `DIR/points/`, named by a key that
//! hashes everything that decides the point, and the two tables collected from them.

use std::path::{Path, PathBuf};

use super::{cell, Sweep};

/// What a point left: its main CSV and how long it took.
#[derive(Debug, Clone)]
pub struct Stored {
    pub csv: Vec<u8>,
    pub seconds: f64,
}

/// The folder of the points' files.
pub fn points_dir(dir: &Path) -> PathBuf {
    dir.join("points")
}

/// Whether `key` is a point key: 32 lower-case hex digits, so never a path.
pub fn is_key(key: &str) -> bool {
    key.len() == 32 && key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The stored result of point `key`, if it finished: its `.json` is written last and holds the
/// CSV's SHA-256, so a point cut short (a killed process, or a machine that crashed before the
/// files reached the disk) has no record or a CSV that does not match it, and counts as missing.
pub fn load(dir: &Path, key: &str) -> Option<Stored> {
    if !is_key(key) {
        return None;
    }
    let base = points_dir(dir).join(key);
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(base.with_extension("json")).ok()?).ok()?;
    let csv = std::fs::read(base.with_extension("csv")).ok()?;
    if meta["csv_sha256"].as_str() != Some(&crate::cli::provenance::sha256(&csv)) {
        return None;
    }
    Some(Stored {
        csv,
        seconds: meta["seconds"].as_f64()?,
    })
}

/// Stores point `key`: the CSV first, then the record that marks it finished (with the CSV's
/// hash), each whole or not at all, without a sync per file (see `load`).
pub fn save(dir: &Path, key: &str, stored: &Stored, record: serde_json::Value) -> std::io::Result<()> {
    let base = points_dir(dir).join(key);
    std::fs::create_dir_all(points_dir(dir))?;
    let write = |path: PathBuf, bytes: &[u8]| crate::cli::write_file_unsynced(&path.to_string_lossy(), bytes);
    write(base.with_extension("csv"), &stored.csv)?;
    let mut record = record;
    record["seconds"] = serde_json::json!(stored.seconds);
    record["csv_sha256"] = serde_json::json!(crate::cli::provenance::sha256(&stored.csv));
    write(
        base.with_extension("json"),
        (serde_json::to_string_pretty(&record)? + "\n").as_bytes(),
    )
}

/// The two tables of a sweep, as CSV text.
pub struct Tables {
    pub points: Vec<u8>,
    pub trajectories: Vec<u8>,
}

/// A CSV field: quoted where it holds a comma, a quote or a line break.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// A CSV's header and rows as text cells.
type Cells = (Vec<String>, Vec<Vec<String>>);

/// Splits a CSV line, honouring quoted fields (a point's status may hold commas).
fn fields(line: &str) -> Vec<String> {
    let (mut out, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    out.push(field);
    out
}

/// A CSV's header and rows as text cells (numbers are copied, never reformatted), quoted
/// fields honoured: a point's CSV, or the tables themselves.
pub(super) fn cells(bytes: &[u8]) -> Cells {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.lines();
    let header = lines.next().map(fields).unwrap_or_default();
    (header, lines.map(fields).collect())
}

/// The tables of `sweep` from each point's outcome (its stored result or its one-line error):
/// `points.csv` with the axes, the last row of each point's CSV, `seconds` and `status`, and
/// `trajectories.csv` with the axes and every row. Points whose CSVs have other columns leave
/// the missing cells empty.
pub fn collect(sweep: &Sweep, outcomes: &[Result<Stored, String>]) -> Tables {
    let texts: Vec<Option<std::borrow::Cow<str>>> = outcomes
        .iter()
        .map(|o| o.as_ref().ok().map(|s| String::from_utf8_lossy(&s.csv)))
        .collect();
    let headers: Vec<Option<Vec<String>>> = texts
        .iter()
        .map(|t| t.as_ref().map(|t| t.lines().next().map(fields).unwrap_or_default()))
        .collect();
    let mut columns: Vec<String> = Vec::new();
    for header in headers.iter().flatten() {
        for name in header {
            if !columns.contains(name) && !sweep.axes.contains(name) {
                columns.push(name.clone());
            }
        }
    }
    let axes: Vec<String> = sweep.axes.iter().map(|a| field(a)).collect();
    let names = columns.iter().map(|c| field(c));
    let mut points = [
        axes.clone(),
        names.clone().collect(),
        vec!["seconds".into(), "status".into()],
    ]
    .concat()
    .join(",")
        + "\n";
    let mut trajectories = [axes, names.collect()].concat().join(",") + "\n";
    let empty_row = vec![String::new(); columns.len()].join(",");
    // One table line: the point's axis values (if the sweep has axes), its cells (if any
    // point has columns), then `tail` (points.csv's seconds and status).
    let line = |values: &str, row: &str, tail: Option<&str>| {
        let parts = [(!sweep.axes.is_empty(), values), (!columns.is_empty(), row)];
        let present = parts.into_iter().filter(|(present, _)| *present).map(|(_, part)| part);
        present.chain(tail).collect::<Vec<_>>().join(",") + "\n"
    };
    for (i, ((outcome, text), header)) in outcomes.iter().zip(&texts).zip(&headers).enumerate() {
        let values = sweep.points[i]
            .iter()
            .map(|v| field(&cell(v)))
            .collect::<Vec<_>>()
            .join(",");
        let (last, seconds, status) = match (outcome, text, header) {
            (Ok(stored), Some(text), Some(header)) => {
                // A CSV with the tables' columns in their order (every point of most sweeps)
                // is copied line by line; others are spread cell by cell into the columns.
                let placed: Option<Vec<Option<usize>>> =
                    (*header != columns).then(|| columns.iter().map(|c| header.iter().position(|h| h == c)).collect());
                let spread = |row: &str| match &placed {
                    None => row.to_string(),
                    Some(places) => {
                        let cells = fields(row);
                        places
                            .iter()
                            .map(|j| j.and_then(|j| cells.get(j)).map_or("", String::as_str))
                            .collect::<Vec<_>>()
                            .join(",")
                    }
                };
                let mut last = None;
                for row in text.lines().skip(1) {
                    trajectories += &line(&values, &spread(row), None);
                    last = Some(row);
                }
                let last = last.map_or_else(|| empty_row.clone(), spread);
                (last, format!("{}", stored.seconds), "ok".to_string())
            }
            (Err(e), _, _) => (empty_row.clone(), String::new(), field(e)),
            _ => (empty_row.clone(), String::new(), String::new()),
        };
        points += &line(&values, &last, Some(&format!("{seconds},{status}")));
    }
    Tables {
        points: points.into_bytes(),
        trajectories: trajectories.into_bytes(),
    }
}

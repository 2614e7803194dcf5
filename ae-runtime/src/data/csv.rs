//! CSV: one sample per line, comma-separated numbers (optionally gzipped).

use super::load::{check_dimension, fail, read_bytes, DataError, LoadOptions, Samples};

pub(super) fn load_csv(path: &str, options: &LoadOptions) -> Result<Samples, DataError> {
    let drop_last = options.drop_last_column;
    let bytes = read_bytes(path, options.budget())?;
    let text = std::str::from_utf8(&bytes).map_err(|e| DataError {
        file: path.to_string(),
        location: format!("byte {}", e.valid_up_to()),
        message: "not UTF-8 text".into(),
    })?;
    let mut rows: Vec<Vec<f64>> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if options.max_samples > 0 && rows.len() == options.max_samples {
            break;
        }
        let mut row = Vec::new();
        for (j, field) in line.split(',').enumerate() {
            match field.trim().parse::<f64>() {
                Ok(v) if v.is_finite() => row.push(v),
                _ if rows.is_empty() && row.is_empty() && j == 0 && field.trim().chars().any(|c| c.is_alphabetic()) => {
                    // A header line: skip it.
                    row.clear();
                    break;
                }
                _ => {
                    return fail(
                        path,
                        format!("line {}", i + 1),
                        format!("field {} `{}` is not a finite number", j + 1, field.trim()),
                    )
                }
            }
        }
        if row.is_empty() {
            continue;
        }
        if drop_last {
            row.pop();
        }
        if rows.is_empty() {
            check_dimension(path, format!("line {}", i + 1), row.len())?;
        }
        if let Some(first) = rows.first() {
            if row.len() != first.len() {
                return fail(
                    path,
                    format!("line {}", i + 1),
                    format!(
                        "{} values where the first row has {} (ragged rows)",
                        row.len() + usize::from(drop_last),
                        first.len() + usize::from(drop_last)
                    ),
                );
            }
        }
        rows.push(row);
    }
    let d = rows.first().map_or(0, |r| r.len());
    Ok(Samples {
        source: path.to_string(),
        d,
        rows,
    })
}

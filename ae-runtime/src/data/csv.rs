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
    // A UTF-8 byte-order mark is accepted and skipped, as in every text file aedyn reads.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows: Vec<Vec<f64>> = Vec::new();
    // The header, if the first line is one: (its line, its number of fields).
    let mut header: Option<(usize, usize)> = None;
    let mut first_line = true;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if options.max_samples > 0 && rows.len() == options.max_samples {
            break;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        // Only the first line can be a header, and only if no field is a number of any
        // spelling and some field is a word: `nan,1,2` or `inf,...` is data (and refused below
        // as not finite).
        let names = fields.iter().all(|f| !is_number(f)) && fields.iter().any(|f| f.chars().any(char::is_alphabetic));
        if std::mem::take(&mut first_line) && names {
            header = Some((i + 1, fields.len()));
            continue;
        }
        let mut row = Vec::with_capacity(fields.len());
        for (j, field) in fields.iter().enumerate() {
            match field.parse::<f64>() {
                Ok(v) if v.is_finite() => row.push(v),
                _ => {
                    return fail(
                        path,
                        format!("line {}", i + 1),
                        format!("field {} `{field}` is not a finite number", j + 1),
                    )
                }
            }
        }
        if let Some((at, names)) = header.filter(|_| rows.is_empty()) {
            if names != row.len() {
                return fail(
                    path,
                    format!("line {at}"),
                    format!("a header of {names} names over rows of {} values", row.len()),
                );
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

/// Whether a CSV field spells a number in any way a reader might mean one: decimal, `nan`,
/// `inf`, `infinity` (any case, signed), or hexadecimal (`0x1f`).
fn is_number(field: &str) -> bool {
    if field.parse::<f64>().is_ok() {
        return true;
    }
    let unsigned = field.trim_start_matches(['+', '-']);
    let hex = unsigned.strip_prefix("0x").or_else(|| unsigned.strip_prefix("0X"));
    hex.is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit() || c == '.'))
}

//! NumPy `.npy`: a 2-D array (samples x D) of floats or integers.

use super::load::{check_dimension, check_size, fail, read_bytes, DataError, LoadOptions, Samples};

pub(super) fn load_npy(path: &str, options: &LoadOptions) -> Result<Samples, DataError> {
    let bytes = read_bytes(path, options.budget())?;
    if !bytes.starts_with(b"\x93NUMPY") {
        return fail(path, "byte 0", "wrong magic number: not a NumPy .npy file");
    }
    if bytes.len() < 10 {
        return fail(path, format!("byte {}", bytes.len()), "truncated header");
    }
    let major = bytes[6];
    let (len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => return fail(path, "byte 6", format!("unsupported .npy version {major}")),
    };
    if bytes.len() < start + len {
        return fail(path, format!("byte {}", bytes.len()), "truncated header");
    }
    let header = String::from_utf8_lossy(&bytes[start..start + len]).to_string();
    let field = |key: &str| -> Option<String> {
        let at = header.find(&format!("'{key}'"))? + key.len() + 2;
        let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
        Some(rest.to_string())
    };
    let descr = field("descr").and_then(|r| r.split('\'').nth(1).map(str::to_string));
    let fortran = field("fortran_order").is_some_and(|r| r.starts_with("True"));
    let shape: Vec<usize> = field("shape")
        .and_then(|r| {
            r.strip_prefix('(')
                .map(|r| r.split(')').next().unwrap_or("").to_string())
        })
        .map(|r| r.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_default();
    let Some(descr) = descr else {
        return fail(path, format!("byte {start}"), "header without a dtype ('descr')");
    };
    if shape.len() != 2 {
        return fail(
            path,
            format!("byte {start}"),
            format!("shape {shape:?}: expected a 2-D array (samples x D)"),
        );
    }
    if fortran {
        return fail(
            path,
            format!("byte {start}"),
            "Fortran-ordered arrays are not supported; save with np.ascontiguousarray",
        );
    }
    let (n, d) = (shape[0], shape[1]);
    check_dimension(path, "header", d)?;
    let data = &bytes[start + len..];
    let (size, read): (usize, fn(&[u8]) -> f64) = match descr.as_str() {
        "<f8" => (8, |b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))),
        "<f4" => (4, |b| f32::from_le_bytes(b.try_into().unwrap_or([0; 4])) as f64),
        "|u1" | "<u1" => (1, |b| b[0] as f64),
        "<i8" => (8, |b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f64),
        "<i4" => (4, |b| i32::from_le_bytes(b.try_into().unwrap_or([0; 4])) as f64),
        other => {
            return fail(
                path,
                format!("byte {start}"),
                format!("dtype {other} is not supported (use float64, float32, int64, int32 or uint8)"),
            )
        }
    };
    let need = n.checked_mul(d).and_then(|v| v.checked_mul(size));
    if need.is_none_or(|need| data.len() < need) {
        return fail(
            path,
            format!("byte {}", bytes.len()),
            format!(
                "truncated: {n} x {d} values of {size} bytes need {} bytes of data",
                need.map_or_else(|| "more than 2^64".to_string(), |v| v.to_string())
            ),
        );
    }
    let n = options.keep(n);
    check_size(path, n, d, options)?;
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let mut row = Vec::with_capacity(d);
        for j in 0..d {
            let at = (i * d + j) * size;
            let v = read(&data[at..at + size]);
            if !v.is_finite() {
                return fail(
                    path,
                    format!("byte {}", start + len + at),
                    format!("value {v} is not finite"),
                );
            }
            row.push(v);
        }
        rows.push(row);
    }
    Ok(Samples {
        source: path.to_string(),
        d,
        rows,
    })
}

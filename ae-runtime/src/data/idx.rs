//! IDX: the MNIST / FashionMNIST format (unsigned bytes), sizes checked before allocation.

use super::load::{check_size, fail, read_bytes, DataError, LoadOptions, Samples, MAX_DIMENSION};

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

pub(super) fn load_idx(path: &str, options: &LoadOptions) -> Result<Samples, DataError> {
    let bytes = read_bytes(path, options.budget())?;
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return fail(
            path,
            "byte 0",
            "wrong magic number: an IDX file starts with two zero bytes",
        );
    }
    if bytes[2] != 0x08 {
        return fail(
            path,
            "byte 2",
            format!(
                "element type 0x{:02x}; only unsigned bytes (0x08) are supported",
                bytes[2]
            ),
        );
    }
    let dims = bytes[3] as usize;
    if dims < 2 {
        return fail(
            path,
            "byte 3",
            format!("{dims} dimension(s): images need at least 2 (count, pixels...)"),
        );
    }
    let header = 4 + 4 * dims;
    if bytes.len() < header {
        return fail(path, format!("byte {}", bytes.len()), "truncated header");
    }
    let sizes: Vec<usize> = (0..dims).map(|i| be_u32(&bytes, 4 + 4 * i) as usize).collect();
    let n = sizes[0];
    // Declared sizes are checked before anything is allocated: against overflow, the
    // dimension cap, and the file's real length.
    let d = sizes[1..]
        .iter()
        .try_fold(1usize, |acc, s| acc.checked_mul(*s))
        .filter(|d| *d <= MAX_DIMENSION)
        .ok_or_else(|| DataError {
            file: path.to_string(),
            location: "byte 4".into(),
            message: format!(
                "declared image size {:?} exceeds D = {MAX_DIMENSION} (the D x D covariance would take minutes to diagonalise)",
                &sizes[1..]
            ),
        })?;
    let need = n
        .checked_mul(d)
        .and_then(|b| b.checked_add(header))
        .unwrap_or(usize::MAX);
    if bytes.len() < need {
        return fail(
            path,
            format!("byte {}", bytes.len()),
            format!("truncated: {n} samples of {d} bytes need {need} bytes"),
        );
    }
    let n = options.keep(n);
    check_size(path, n, d, options)?;
    let rows = (0..n)
        .map(|i| {
            bytes[header + i * d..header + (i + 1) * d]
                .iter()
                .map(|b| *b as f64)
                .collect()
        })
        .collect();
    Ok(Samples {
        source: path.to_string(),
        d,
        rows,
    })
}

//! CIFAR-10 binary batches, turned grey by luminance.

use super::load::{check_size, fail, read_bytes, DataError, LoadOptions, Samples};
use super::photo::luminance;

pub(super) fn load_cifar(path: &str, options: &LoadOptions) -> Result<Samples, DataError> {
    const RECORD: usize = 1 + 3072;
    let bytes = read_bytes(path, options.budget())?;
    if bytes.is_empty() || bytes.len() % RECORD != 0 {
        return fail(
            path,
            format!("byte {}", bytes.len() - bytes.len() % RECORD),
            format!(
                "a CIFAR-10 batch is a whole number of {RECORD}-byte records; {} bytes are left over",
                bytes.len() % RECORD
            ),
        );
    }
    let n = options.keep(bytes.len() / RECORD);
    check_size(path, n, 1024, options)?;
    // Grey as the paper did: the luminance of the 32x32 planes.
    let rows = bytes
        .chunks(RECORD)
        .take(n)
        .map(|rec| {
            let (r, g, b) = (&rec[1..1025], &rec[1025..2049], &rec[2049..3073]);
            (0..1024).map(|i| luminance(r[i], g[i], b[i])).collect()
        })
        .collect();
    Ok(Samples {
        source: path.to_string(),
        d: 1024,
        rows,
    })
}

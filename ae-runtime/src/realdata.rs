//! Real data: loaders (CSV optionally gzipped, IDX, CIFAR-10 binary, NumPy .npy, grey patches of
//! JPEG/PNG photographs), standardisation, and the empirical spectrum whose eigenpairs are the
//! modes of the full-spectrum equations (SPEC section 2).
//!
//! Standardisation: samples are centred (the mean image is subtracted) and scaled by one common
//! factor so that the average variance per input coordinate is 1, i.e. tr(Omega)/D = 1 (the
//! spiked model with sigma = 1 and no spikes has the same normalisation).

use std::io::Read;
use std::path::Path;

use nalgebra::{DMatrix, SymmetricEigen};

/// A problem with a data file, located by byte offset or line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {location}: {message}")]
pub struct DataError {
    pub file: String,
    /// `line 3`, `byte 16`, ...
    pub location: String,
    pub message: String,
}

fn fail<T>(file: &str, location: impl Into<String>, message: impl Into<String>) -> Result<T, DataError> {
    Err(DataError {
        file: file.to_string(),
        location: location.into(),
        message: message.into(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Format {
    /// One sample per line, comma-separated numbers (`.csv`, `.csv.gz`).
    Csv,
    /// The MNIST / FashionMNIST format (`-idx3-ubyte`, `.idx`).
    Idx,
    /// CIFAR-10 binary batches (`.bin`): 1 label byte + 3072 colour bytes, converted to grey.
    Cifar,
    /// NumPy `.npy`, a 2-D array (samples x D) of floats or integers.
    Npy,
    /// A JPEG or PNG photograph cut into grey P x P patches (`--patch P`).
    Image,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "csv" => Some(Format::Csv),
            "idx" => Some(Format::Idx),
            "cifar" => Some(Format::Cifar),
            "npy" => Some(Format::Npy),
            "image" => Some(Format::Image),
            _ => None,
        }
    }

    /// The format a file name suggests.
    pub fn from_path(path: &str) -> Option<Format> {
        let p = path.to_ascii_lowercase();
        if p.ends_with(".csv") || p.ends_with(".csv.gz") || p.ends_with(".txt") {
            Some(Format::Csv)
        } else if p.ends_with("ubyte") || p.ends_with("ubyte.gz") || p.ends_with(".idx") || p.ends_with(".idx.gz") {
            Some(Format::Idx)
        } else if p.ends_with(".bin") {
            Some(Format::Cifar)
        } else if p.ends_with(".npy") {
            Some(Format::Npy)
        } else if p.ends_with(".jpg") || p.ends_with(".jpeg") || p.ends_with(".png") {
            Some(Format::Image)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadOptions {
    pub format: Option<Format>,
    /// Patch size for photographs.
    pub patch: Option<usize>,
    /// Pixels between the corners of neighbouring patches (default: the patch size, so that
    /// patches do not overlap).
    pub stride: Option<usize>,
    /// CSV: drop the last column (a class label, as in the shipped digits).
    pub drop_last_column: bool,
    /// Keep at most this many samples (0: all). Loaders stop reading there.
    pub max_samples: usize,
    /// The most memory the samples may take, in bytes, as the file is read and as samples of
    /// 8-byte numbers [default: `DEFAULT_MAX_BYTES`].
    pub max_bytes: Option<u64>,
}

impl LoadOptions {
    fn budget(&self) -> u64 {
        self.max_bytes.unwrap_or(DEFAULT_MAX_BYTES)
    }

    /// How many of `n` samples to keep.
    fn keep(&self, n: usize) -> usize {
        if self.max_samples > 0 {
            n.min(self.max_samples)
        } else {
            n
        }
    }
}

/// The default memory budget of a data set: 8 GB, the command line's default limit.
pub const DEFAULT_MAX_BYTES: u64 = 8_000_000_000;

/// The largest dimension D a data file may declare: the covariance is D x D doubles and its
/// eigendecomposition takes about 80 s at this D with nalgebra (32 s at 3072), and grows as D^3.
pub const MAX_DIMENSION: usize = 4096;

/// Refuses `n` samples of dimension `d` (8-byte numbers, and a vector's own 24 bytes each)
/// beyond the budget, and samples of dimension 0, before they are allocated.
fn check_size(path: &str, n: usize, d: usize, options: &LoadOptions) -> Result<(), DataError> {
    if d == 0 {
        return fail(
            path,
            "size",
            format!("{n} samples of dimension 0: there is nothing to learn"),
        );
    }
    let needed = (n as f64) * (d as f64 * 8.0 + 24.0);
    if needed > options.budget() as f64 {
        return fail(
            path,
            "size",
            format!(
                "{n} samples of dimension {d} would take {}, more than the limit of {} (--max-samples takes fewer; AEDYN_MAX_MEMORY_GB raises the limit)",
                readable_size(needed),
                readable_size(options.budget() as f64)
            ),
        );
    }
    Ok(())
}

/// A number of bytes for people: `500 B`, `3.20 MB`, `8.00 GB`.
fn readable_size(n: f64) -> String {
    match n {
        n if n >= 1e9 => format!("{:.2} GB", n / 1e9),
        n if n >= 1e6 => format!("{:.2} MB", n / 1e6),
        n if n >= 1e3 => format!("{:.0} kB", n / 1e3),
        n => format!("{n:.0} B"),
    }
}

/// Refuses a declared dimension above `MAX_DIMENSION`.
fn check_dimension(path: &str, location: impl Into<String>, d: usize) -> Result<(), DataError> {
    if d > MAX_DIMENSION {
        return fail(
            path,
            location,
            format!("D = {d} exceeds {MAX_DIMENSION}: the D x D covariance would take minutes to diagonalise"),
        );
    }
    Ok(())
}

/// Raw samples as loaded (not yet standardised).
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    pub source: String,
    pub d: usize,
    pub rows: Vec<Vec<f64>>,
}

/// Reads a file, un-gzipping it when it starts with the gzip magic bytes, within the memory
/// budget: the raw and unpacked bytes at most half of it (the samples made of them take about
/// as much again), a regular file refused from its length before it is read, and a stream
/// that is no regular file (a pipe, `/dev/zero`) or a gzip stream read no further than the
/// limit: a stream at most 1/32 of the budget (250 MB by default), as its length is unknown.
fn read_bytes(path: &str, budget: u64) -> Result<Vec<u8>, DataError> {
    let limit = budget / 2;
    let too_large = |what: &str, limit: u64| DataError {
        file: path.to_string(),
        location: "size".into(),
        message: format!(
            "{what} more than {}, the most data the limit of {} allows (AEDYN_MAX_MEMORY_GB raises it)",
            readable_size(limit as f64),
            readable_size(budget as f64)
        ),
    };
    let file = std::fs::File::open(path).map_err(|e| DataError {
        file: path.to_string(),
        location: "open".into(),
        message: e.to_string(),
    })?;
    let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
    let read_limit = if regular { limit } else { budget / 32 };
    if regular && file.metadata().map_or(0, |m| m.len()) > limit {
        return Err(too_large("the file holds", limit));
    }
    let mut raw = Vec::new();
    file.take(read_limit.saturating_add(1))
        .read_to_end(&mut raw)
        .map_err(|e| DataError {
            file: path.to_string(),
            location: "read".into(),
            message: e.to_string(),
        })?;
    if raw.len() as u64 > read_limit {
        return Err(too_large(
            if regular {
                "the file holds"
            } else {
                "the stream (not a regular file) holds"
            },
            read_limit,
        ));
    }
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .take(limit.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| DataError {
                file: path.to_string(),
                location: "gzip stream".into(),
                message: format!("corrupt or truncated gzip data: {e}"),
            })?;
        if out.len() as u64 > limit {
            return Err(too_large("the gzip stream unpacks to", limit));
        }
        Ok(out)
    } else {
        Ok(raw)
    }
}

pub fn load(path: &str, options: &LoadOptions) -> Result<Samples, DataError> {
    let format = match options.format.or_else(|| Format::from_path(path)) {
        Some(f) => f,
        None => {
            return fail(
                path,
                "name",
                "cannot tell the format from the file name; give --format csv|idx|cifar|npy|image",
            )
        }
    };
    if format != Format::Image && options.patch.is_some() {
        return fail(path, "name", "--patch applies to photographs (JPEG/PNG) only");
    }
    if options.drop_last_column && format != Format::Csv {
        return fail(path, "name", "--drop-last-column applies to CSV data only");
    }
    if options.stride.is_some() && options.patch.is_none() {
        return fail(path, "name", "--stride goes with --patch (photographs)");
    }
    let samples = match format {
        Format::Csv => load_csv(path, options)?,
        Format::Idx => load_idx(path, options)?,
        Format::Cifar => load_cifar(path, options)?,
        Format::Npy => load_npy(path, options)?,
        Format::Image => match options.patch {
            Some(p) => load_patches(path, p, options.stride.unwrap_or(p), options)?,
            None => {
                return fail(
                    path,
                    "name",
                    "a photograph needs --patch P (the side of the grey patches)",
                )
            }
        },
    };
    Ok(samples)
}

fn load_csv(path: &str, options: &LoadOptions) -> Result<Samples, DataError> {
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

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn load_idx(path: &str, options: &LoadOptions) -> Result<Samples, DataError> {
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

fn load_cifar(path: &str, options: &LoadOptions) -> Result<Samples, DataError> {
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

fn load_npy(path: &str, options: &LoadOptions) -> Result<Samples, DataError> {
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

/// Grey from colour, in floating point, for photographs and CIFAR-10 alike: the luminance
/// 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601), as the paper's grey CIFAR-10.
pub fn luminance(r: u8, g: u8, b: u8) -> f64 {
    0.299 * r as f64 + 0.587 * g as f64 + 0.114 * b as f64
}

/// Grey P x P patches of a photograph (luminance, 0..255), row by row, their top-left corners
/// `stride` pixels apart (`stride = P`: non-overlapping).
fn load_patches(path: &str, p: usize, stride: usize, options: &LoadOptions) -> Result<Samples, DataError> {
    if p == 0 || p > 64 {
        return fail(
            path,
            "name",
            format!("--patch {p}: the side must be between 1 and 64 (D = P^2 at most 4096)"),
        );
    }
    if stride == 0 || stride > 4096 {
        return fail(
            path,
            "name",
            format!("--stride {stride}: the step between patches must be between 1 and 4096 pixels"),
        );
    }
    let bytes = read_bytes(path, options.budget())?;
    if bytes.starts_with(&[0xFF, 0xD8]) && !ends_with_jpeg_end_marker(&bytes) {
        // The JPEG decoder fills a cut-off scan with grey and reports success.
        return fail(
            path,
            format!("byte {}", bytes.len()),
            "the JPEG data stops before its end marker (FF D9): the file is truncated",
        );
    }
    let undecodable = |e: image::ImageError| DataError {
        file: path.to_string(),
        location: "image data".into(),
        message: format!("cannot decode the photograph: {e}"),
    };
    // The declared size is checked before decoding: a small file can declare an image of
    // gigabytes. Decoded, a pixel takes 4 bytes (RGBA at most), then 3 (RGB) and 8 (grey).
    let reader = image::io::Reader::new(std::io::Cursor::new(&bytes[..]))
        .with_guessed_format()
        .map_err(|e| undecodable(e.into()))?;
    let (w, h) = reader.into_dimensions().map_err(undecodable)?;
    let (w, h) = (w as usize, h as usize);
    let pixels = (w as f64) * (h as f64);
    let patches = |extent: usize| (extent.saturating_sub(p - 1)).div_ceil(stride);
    let n = options.keep(patches(w) * patches(h));
    if pixels * 15.0 > options.budget() as f64 {
        return fail(
            path,
            "size",
            format!(
                "a {w} x {h} image would take {} to decode, more than the limit of {} (AEDYN_MAX_MEMORY_GB raises it)",
                readable_size(pixels * 15.0),
                readable_size(options.budget() as f64)
            ),
        );
    }
    check_size(path, n, p * p, options)?;
    let img = image::load_from_memory(&bytes).map_err(undecodable)?;
    let rgb = img.to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let grey: Vec<f64> = rgb.pixels().map(|px| luminance(px[0], px[1], px[2])).collect();
    let mut rows = Vec::with_capacity(n);
    'rows: for top in (0..h.saturating_sub(p - 1)).step_by(stride) {
        for left in (0..w.saturating_sub(p - 1)).step_by(stride) {
            if rows.len() == n {
                break 'rows;
            }
            let mut row = Vec::with_capacity(p * p);
            for y in top..top + p {
                row.extend_from_slice(&grey[y * w + left..y * w + left + p]);
            }
            rows.push(row);
        }
    }
    Ok(Samples {
        source: path.to_string(),
        d: p * p,
        rows,
    })
}

/// Samples centred and scaled (see the module doc), with their empirical spectrum.
#[derive(Debug, Clone)]
pub struct RealData {
    pub source: String,
    pub d: usize,
    pub rows: Vec<Vec<f64>>,
    /// Eigenvalues of the empirical covariance, largest first.
    pub eigenvalues: Vec<f64>,
    /// The matching unit eigenvectors (rows).
    pub eigenvectors: Vec<Vec<f64>>,
    /// The common factor the centred samples were divided by.
    pub scale: f64,
}

impl RealData {
    /// Centres, scales and diagonalises. Needs more samples than dimensions for a covariance
    /// of full rank; at least 2 samples in any case.
    pub fn new(samples: Samples) -> Result<RealData, DataError> {
        let (n, d) = (samples.rows.len(), samples.d);
        if n < 2 || d == 0 {
            return fail(
                &samples.source,
                "samples",
                format!("{n} sample(s) of dimension {d}: a covariance needs at least 2 samples"),
            );
        }
        if n <= d {
            return fail(
                &samples.source,
                "samples",
                format!("{n} samples for D = {d}: a covariance of full rank needs more samples than dimensions"),
            );
        }
        let mut mean = vec![0.0; d];
        for row in &samples.rows {
            for (m, x) in mean.iter_mut().zip(row) {
                *m += x / n as f64;
            }
        }
        let mut rows: Vec<Vec<f64>> = samples
            .rows
            .iter()
            .map(|r| r.iter().zip(&mean).map(|(x, m)| x - m).collect())
            .collect();
        let var: f64 = rows.iter().flatten().map(|x| x * x).sum::<f64>() / (n * d) as f64;
        if var <= 0.0 {
            return fail(
                &samples.source,
                "samples",
                "every sample is the same: the covariance is zero",
            );
        }
        // Samples that differ only in their last few bits would be scaled up to unit
        // variance, and the run would integrate rounding noise.
        let mean_square: f64 = samples.rows.iter().flatten().map(|x| x * x).sum::<f64>() / (n * d) as f64;
        let rounding = (64.0 * f64::EPSILON).powi(2) * mean_square;
        if var <= rounding {
            return fail(
                &samples.source,
                "samples",
                format!(
                    "the samples differ only by rounding (variance {var:.3e} against a mean square of {mean_square:.3e}): there is nothing to learn"
                ),
            );
        }
        let scale = var.sqrt();
        rows.iter_mut().flatten().for_each(|x| *x /= scale);
        let (eigenvalues, eigenvectors) = eigen(covariance(&rows, d));
        Ok(RealData {
            source: samples.source,
            d,
            rows,
            eigenvalues,
            eigenvectors,
            scale,
        })
    }

    /// Rescaled eigenvalues rho_tau / D, the modes of the full-spectrum equations.
    pub fn rho(&self) -> Vec<f64> {
        self.eigenvalues.iter().map(|r| r / self.d as f64).collect()
    }

    /// PCA error of rank r: (tr Omega - top r eigenvalues) / (2D).
    pub fn pca_error(&self, r: usize) -> f64 {
        let total: f64 = self.eigenvalues.iter().sum();
        let top: f64 = self.eigenvalues.iter().take(r).sum();
        (total - top) / (2.0 * self.d as f64)
    }
}

/// The covariance `Xᵀ X / n` of centred rows, by one matrix product (a rank-one update per
/// sample streams the whole D x D matrix through memory once per sample: 20 times slower at
/// D = 1024).
pub fn covariance(rows: &[Vec<f64>], d: usize) -> DMatrix<f64> {
    let n = rows.len();
    let mut x = Vec::with_capacity(n * d);
    for row in rows {
        x.extend_from_slice(&row[..d]);
    }
    let mut cov = DMatrix::<f64>::zeros(d, d);
    if n == 0 || d == 0 {
        return cov;
    }
    let (d_, one) = (d as isize, 1isize);
    // SAFETY: X is n x d row-major (strides d, 1) in `x`, Xᵀ is d x n with strides (1, d) in the
    // same buffer, and `cov` is d x d column-major (strides 1, d); all sizes as allocated.
    unsafe {
        matrixmultiply::dgemm(
            d,
            n,
            d,
            1.0 / n as f64,
            x.as_ptr(),
            one,
            d_,
            x.as_ptr(),
            d_,
            one,
            0.0,
            cov.as_mut_ptr(),
            one,
            d_,
        );
    }
    // The product is symmetric up to rounding of two summation orders; make it exactly so.
    for i in 0..d {
        for j in 0..i {
            let v = 0.5 * (cov[(i, j)] + cov[(j, i)]);
            cov[(i, j)] = v;
            cov[(j, i)] = v;
        }
    }
    cov
}

/// Eigenpairs of a symmetric matrix, eigenvalues descending, eigenvectors as rows: with the
/// `faer` feature, faer's self-adjoint eigensolver on one thread (measured against nalgebra's:
/// 0.15 s against 0.84 s at D = 1024, 3.9 s against 32 s at D = 3072; `cargo bench --bench
/// eigen --features fast-eigen`), nalgebra's should faer's not converge; without it,
/// nalgebra's.
#[cfg(not(feature = "faer"))]
pub fn eigen(m: DMatrix<f64>) -> (Vec<f64>, Vec<Vec<f64>>) {
    eigen_nalgebra(m)
}

/// See the other `eigen`.
#[cfg(feature = "faer")]
pub fn eigen(m: DMatrix<f64>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let d = m.nrows();
    let a = faer::Mat::<f64>::from_fn(d, d, |i, j| m[(i, j)]);
    let Ok(eig) = a.self_adjoint_eigen(faer::Side::Lower) else {
        return eigen_nalgebra(m);
    };
    let (values, vectors) = (eig.S(), eig.U());
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|a, b| values[*b].total_cmp(&values[*a]));
    let sorted = order.iter().map(|i| values[*i].max(0.0)).collect();
    let rows = order
        .iter()
        .map(|&j| (0..d).map(|i| vectors[(i, j)]).collect())
        .collect();
    (sorted, rows)
}

/// [`eigen`] by nalgebra's symmetric eigensolver (the fallback, and the reference in tests
/// and benchmarks).
pub fn eigen_nalgebra(m: DMatrix<f64>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let d = m.nrows();
    let eig = SymmetricEigen::new(m);
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|a, b| eig.eigenvalues[*b].total_cmp(&eig.eigenvalues[*a]));
    let values = order.iter().map(|i| eig.eigenvalues[*i].max(0.0)).collect();
    let vectors = order
        .iter()
        .map(|i| eig.eigenvectors.column(*i).iter().copied().collect())
        .collect();
    (values, vectors)
}

/// How SGD draws from real data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Draw {
    /// A sample chosen uniformly at every step (online).
    Online,
    /// Epochs over the fixed set, each in a fresh random order.
    Epochs,
    /// Gaussian samples with the same covariance (for the universality comparison).
    Gaussian,
}

/// A sampler over real data.
pub struct DataSampler {
    data: std::sync::Arc<RealData>,
    draw: Draw,
    order: Vec<usize>,
    next: usize,
    /// Gaussian draws, made a batch at a time (built at the first draw).
    gaussian: Option<GaussianBatch>,
}

/// Gaussian samples with the data's covariance, `GAUSSIAN_BATCH` at a time: the normals are
/// drawn in the same order as one sample at a time (sample by sample, mode by mode), and
/// `X = Z A` with `A[τ] = √λ_τ e_τ` is one matrix product (D² multiply-adds a sample either
/// way, but at matrix-product speed).
struct GaussianBatch {
    /// D x D, row τ is √λ_τ e_τ.
    amplitudes: Vec<f64>,
    z: Vec<f64>,
    x: Vec<f64>,
    next: usize,
}

const GAUSSIAN_BATCH: usize = 64;

impl GaussianBatch {
    fn new(data: &RealData) -> Self {
        let d = data.d;
        let mut amplitudes = Vec::with_capacity(d * d);
        for (e, l) in data.eigenvectors.iter().zip(&data.eigenvalues) {
            let s = l.sqrt();
            amplitudes.extend(e.iter().map(|v| s * v));
        }
        GaussianBatch {
            amplitudes,
            z: vec![0.0; GAUSSIAN_BATCH * d],
            x: vec![0.0; GAUSSIAN_BATCH * d],
            next: GAUSSIAN_BATCH,
        }
    }

    fn sample(&mut self, rng: &mut crate::sgd::SampleRng, out: &mut [f64]) {
        let d = out.len();
        if self.next == GAUSSIAN_BATCH {
            rng.fill_normal(&mut self.z);
            let (d_, one) = (d as isize, 1isize);
            // SAFETY: Z is B x D, A is D x D and X is B x D, all row-major (strides D, 1) in
            // buffers of exactly those sizes.
            unsafe {
                matrixmultiply::dgemm(
                    GAUSSIAN_BATCH,
                    d,
                    d,
                    1.0,
                    self.z.as_ptr(),
                    d_,
                    one,
                    self.amplitudes.as_ptr(),
                    d_,
                    one,
                    0.0,
                    self.x.as_mut_ptr(),
                    d_,
                    one,
                );
            }
            self.next = 0;
        }
        out.copy_from_slice(&self.x[self.next * d..(self.next + 1) * d]);
        self.next += 1;
    }
}

impl DataSampler {
    pub fn new(data: std::sync::Arc<RealData>, draw: Draw) -> Self {
        let n = data.rows.len();
        DataSampler {
            data,
            draw,
            order: (0..n).collect(),
            next: n,
            gaussian: None,
        }
    }
}

impl crate::sgd::Sampler for DataSampler {
    fn d(&self) -> usize {
        self.data.d
    }
    fn sample(&mut self, rng: &mut crate::sgd::SampleRng, x: &mut [f64]) {
        use rand::Rng;
        let n = self.data.rows.len();
        match self.draw {
            Draw::Online => x.copy_from_slice(&self.data.rows[rng.random_range(0..n)]),
            Draw::Epochs => {
                if self.next >= n {
                    // Fisher-Yates with the run's own generator: reproducible.
                    for i in (1..n).rev() {
                        let j = rng.random_range(0..=i);
                        self.order.swap(i, j);
                    }
                    self.next = 0;
                }
                x.copy_from_slice(&self.data.rows[self.order[self.next]]);
                self.next += 1;
            }
            Draw::Gaussian => {
                let data = &self.data;
                self.gaussian
                    .get_or_insert_with(|| GaussianBatch::new(data))
                    .sample(rng, x)
            }
        }
    }
}

/// Whether JPEG data ends with its end-of-image marker, allowing the padding some writers put
/// after it (zero bytes, line ends, spaces).
fn ends_with_jpeg_end_marker(bytes: &[u8]) -> bool {
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, 0x00 | b'\n' | b'\r' | b' '))
        .map_or(0, |i| i + 1);
    bytes[..end].ends_with(&[0xFF, 0xD9])
}

/// Whether `path` exists and is a file (for messages that say which argument is wrong).
pub fn is_file(path: &str) -> bool {
    Path::new(path).is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> String {
        let dir = std::env::temp_dir().join(format!("ae-runtime-realdata-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name).to_string_lossy().into_owned()
    }

    /// A 9 x 7 PNG whose pixel (x, y) has colour (x, y, x + y) times a few primes.
    fn photo() -> (String, image::RgbImage) {
        let img = image::RgbImage::from_fn(9, 7, |x, y| {
            image::Rgb([(17 * x) as u8, (29 * y) as u8, (7 * (x + y)) as u8])
        });
        let path = temp("colours.png");
        img.save(&path).unwrap();
        (path, img)
    }

    fn patches(path: &str, p: usize, stride: Option<usize>) -> Samples {
        let options = LoadOptions {
            patch: Some(p),
            stride,
            ..LoadOptions::default()
        };
        load(path, &options).unwrap()
    }

    /// A cut-off JPEG (the shipped photograph's first 20 000 bytes, which the decoder would
    /// fill with grey) is an error at the byte where it stops; the whole file, also with
    /// padding after its end marker, loads.
    #[test]
    fn a_truncated_jpeg_is_an_error() {
        let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/china.jpg");
        let bytes = std::fs::read(shipped).unwrap();
        let options = LoadOptions {
            patch: Some(8),
            ..LoadOptions::default()
        };
        let cut = temp("cut.jpg");
        std::fs::write(&cut, &bytes[..20_000]).unwrap();
        let err = load(&cut, &options).unwrap_err();
        assert_eq!(err.location, "byte 20000");
        assert!(err.message.contains("truncated"), "{}", err.message);
        let padded = temp("padded.jpg");
        std::fs::write(&padded, [bytes.as_slice(), b"\n\0\0"].concat()).unwrap();
        assert!(load(&padded, &options).is_ok());
    }

    /// A PNG of `width` x `height` grey pixels with no pixel data: a valid header and an empty
    /// first data chunk, enough for a reader that checks the declared size before decoding.
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
        let mut crc = flate2::Crc::new();
        crc.update(&ihdr);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc.sum().to_be_bytes());
        // An empty IDAT chunk: the reader stops at the first one to report the size.
        let mut idat = flate2::Crc::new();
        idat.update(b"IDAT");
        png.extend_from_slice(&0u32.to_be_bytes());
        png.extend_from_slice(b"IDAT");
        png.extend_from_slice(&idat.sum().to_be_bytes());
        png
    }

    fn idx_bytes(n: u32, side: u32) -> Vec<u8> {
        let mut bytes = vec![0, 0, 8, 3];
        for s in [n, side, side] {
            bytes.extend_from_slice(&s.to_be_bytes());
        }
        bytes.extend((0..n * side * side).map(|i| (i % 251) as u8));
        bytes
    }

    /// Every loader stops at the memory budget before allocating past it: a file longer than
    /// it (as /dev/zero is), a gzip stream that unpacks past it, an image whose declared size
    /// would decode past it, and samples that would take more than it as numbers.
    #[test]
    fn data_beyond_the_memory_budget_is_refused_before_it_is_read_whole() {
        let budget = |bytes: u64| LoadOptions {
            max_bytes: Some(bytes),
            ..LoadOptions::default()
        };
        let csv = temp("long.csv");
        std::fs::write(&csv, "1,2\n3,4\n".repeat(300)).unwrap();
        let err = load(&csv, &budget(1000)).unwrap_err();
        assert!(
            err.message
                .contains("the file holds more than 500 B, the most data the limit of 1 kB allows"),
            "{err}"
        );
        assert!(load(&csv, &budget(100_000)).is_ok());
        // 10 MB of zeros in a gzip stream of 10 kB.
        let bomb = temp("bomb.csv.gz");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut encoder, &vec![b'0'; 10_000_000]).unwrap();
        std::fs::write(&bomb, encoder.finish().unwrap()).unwrap();
        let err = load(&bomb, &budget(1_000_000)).unwrap_err();
        assert!(
            err.message
                .contains("the gzip stream unpacks to more than 500 kB, the most data the limit of 1.00 MB allows"),
            "{err}"
        );
        // 100 000 x 100 000 pixels declared in a 45-byte file: refused from its header.
        let png = temp("huge.png");
        std::fs::write(&png, png_header(100_000, 100_000)).unwrap();
        let err = load(
            &png,
            &LoadOptions {
                patch: Some(8),
                ..LoadOptions::default()
            },
        )
        .unwrap_err();
        assert!(
            err.message
                .contains("a 100000 x 100000 image would take 150.00 GB to decode"),
            "{err}"
        );
        // 1000 IDX samples of 64 bytes are 536 kB as numbers: refused at 200 kB, and read
        // in part with --max-samples, which stops the loader there.
        let idx = temp("many-idx3-ubyte");
        std::fs::write(&idx, idx_bytes(1000, 8)).unwrap();
        let err = load(&idx, &budget(200_000)).unwrap_err();
        assert!(err.message.contains("1000 samples of dimension 64 would take"), "{err}");
        let some = load(
            &idx,
            &LoadOptions {
                max_samples: 100,
                ..budget(200_000)
            },
        )
        .unwrap();
        assert_eq!((some.rows.len(), some.d), (100, 64));
        assert_eq!(some.rows[99][0], ((99 * 64) % 251) as f64);
    }

    /// --max-samples stops every format at the same samples as loading all and cutting.
    #[test]
    fn max_samples_keeps_the_first_samples_of_every_format() {
        let (png, _) = photo();
        let csv = temp("rows.csv");
        std::fs::write(&csv, (0..20).map(|i| format!("{i},{}\n", 2 * i)).collect::<String>()).unwrap();
        let idx = temp("rows-idx3-ubyte");
        std::fs::write(&idx, idx_bytes(20, 2)).unwrap();
        for (path, patch) in [(png.as_str(), Some(2)), (csv.as_str(), None), (idx.as_str(), None)] {
            let all = load(
                path,
                &LoadOptions {
                    patch,
                    stride: patch.map(|_| 1),
                    ..LoadOptions::default()
                },
            )
            .unwrap();
            let first = load(
                path,
                &LoadOptions {
                    patch,
                    stride: patch.map(|_| 1),
                    max_samples: 5,
                    ..LoadOptions::default()
                },
            )
            .unwrap();
            assert!(all.rows.len() > 5, "{path}");
            assert_eq!(first.rows, all.rows[..5], "{path}");
        }
    }

    /// A CSV whose rows are wider than the dimension cap is refused at its first row.
    #[test]
    fn csv_rows_wider_than_the_cap_are_refused() {
        let csv = temp("wide.csv");
        let row = vec!["1"; MAX_DIMENSION + 1].join(",");
        std::fs::write(&csv, format!("{row}\n{row}\n")).unwrap();
        let err = load(&csv, &LoadOptions::default()).unwrap_err();
        assert_eq!(err.location, "line 1");
        assert!(err.message.contains("D = 4097 exceeds 4096"), "{err}");
    }

    /// Samples that differ only in their last bits are refused (scaled to unit variance they
    /// would be rounding noise); a relative spread of 1e-10, far above rounding, is data.
    #[test]
    fn samples_that_differ_only_by_rounding_are_refused() {
        let rows = |spread: f64| Samples {
            source: "t".into(),
            d: 2,
            rows: (0..10)
                .map(|i| vec![1.0 + spread * (i % 3) as f64, 1.0 - spread * (i % 2) as f64])
                .collect(),
        };
        let err = RealData::new(rows(f64::EPSILON)).unwrap_err();
        assert!(err.message.contains("differ only by rounding"), "{}", err.message);
        assert!(RealData::new(rows(1e-10)).is_ok());
    }

    /// Photographs and CIFAR-10 records become grey by the same floating-point formula.
    #[test]
    fn photographs_and_cifar_share_the_luminance() {
        let (path, img) = photo();
        let grey = patches(&path, 1, None);
        assert_eq!(grey.rows.len(), 63);
        let mut record = vec![0u8; 3073];
        for (i, px) in img.pixels().enumerate() {
            assert_eq!(
                grey.rows[i][0],
                0.299 * px[0] as f64 + 0.587 * px[1] as f64 + 0.114 * px[2] as f64
            );
            if i < 1024 {
                record[1 + i] = px[0];
                record[1025 + i] = px[1];
                record[2049 + i] = px[2];
            }
        }
        let cifar_path = temp("one.bin");
        std::fs::write(&cifar_path, &record).unwrap();
        let cifar = load(&cifar_path, &LoadOptions::default()).unwrap();
        for i in 0..63 {
            assert_eq!(cifar.rows[0][i], grey.rows[i][0], "pixel {i}");
        }
    }

    /// `--stride S` puts patch corners S pixels apart: ((W - P)/S + 1)((H - P)/S + 1) patches,
    /// neighbours overlapping by P - S columns; the default stride is P.
    #[test]
    fn strided_patches_overlap() {
        let (path, _) = photo();
        let p = 3;
        let dense = patches(&path, p, Some(1));
        assert_eq!(dense.rows.len(), 7 * 5);
        assert_eq!(dense.d, 9);
        // The patch one column to the right repeats the last two columns of its neighbour.
        for row in 0..p {
            for col in 0..p - 1 {
                assert_eq!(dense.rows[1][row * p + col], dense.rows[0][row * p + col + 1]);
            }
        }
        let strided = patches(&path, p, Some(2));
        assert_eq!(strided.rows.len(), 4 * 3);
        assert_eq!(patches(&path, p, None).rows, patches(&path, p, Some(p)).rows);
        assert_eq!(patches(&path, p, None).rows.len(), 3 * 2);
        let err = load(
            &path,
            &LoadOptions {
                patch: Some(3),
                stride: Some(0),
                ..LoadOptions::default()
            },
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("--stride 0: the step between patches must be between 1 and 4096 pixels"),
            "{err}"
        );
        let err = load(
            &path,
            &LoadOptions {
                stride: Some(2),
                ..LoadOptions::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("--stride goes with --patch"), "{err}");
    }

    /// The matrix-product covariance equals the sum of outer products (rounding: 1e-14 of
    /// entries of order one, 500 terms).
    #[test]
    fn covariance_is_the_mean_outer_product() {
        let (n, d) = (500, 7);
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|i| (0..d).map(|j| ((i * d + j) as f64 * 0.37).sin()).collect())
            .collect();
        let cov = covariance(&rows, d);
        for a in 0..d {
            for b in 0..d {
                let naive: f64 = rows.iter().map(|r| r[a] * r[b]).sum::<f64>() / n as f64;
                assert!(
                    (cov[(a, b)] - naive).abs() < 1e-14,
                    "({a},{b}): {} vs {naive}",
                    cov[(a, b)]
                );
                assert_eq!(cov[(a, b)], cov[(b, a)]);
            }
        }
    }

    /// Batched Gaussian draws are the one-at-a-time formula x = Σ_τ z_τ √λ_τ e_τ with the same
    /// normals in the same order (two summation orders: 1e-12 of entries of order one), and a
    /// batch leaves the generator where drawing its normals directly does.
    #[test]
    fn batched_gaussian_draws_equal_single_draws() {
        use crate::sgd::Sampler;
        let (n, d) = (40, 5);
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                (0..d)
                    .map(|j| ((i * d + j) as f64 * 0.61).sin() * (1.0 + j as f64))
                    .collect()
            })
            .collect();
        let data = std::sync::Arc::new(
            RealData::new(Samples {
                source: "t".into(),
                d,
                rows,
            })
            .unwrap(),
        );
        let mut sampler = DataSampler::new(data.clone(), Draw::Gaussian);
        let mut rng = crate::sgd::sample_rng(3, 0);
        let mut reference = rng.clone();
        let mut normals = vec![0.0; GAUSSIAN_BATCH * d];
        let mut x = vec![0.0; d];
        for draw in 0..(2 * GAUSSIAN_BATCH + 3) {
            sampler.sample(&mut rng, &mut x);
            if draw % GAUSSIAN_BATCH == 0 {
                reference.fill_normal(&mut normals);
                assert!(
                    rng == reference,
                    "draw {draw}: the batch drew a different number of words"
                );
            }
            let z = &normals[(draw % GAUSSIAN_BATCH) * d..][..d];
            let mut expect = vec![0.0; d];
            for ((e, l), z) in data.eigenvectors.iter().zip(&data.eigenvalues).zip(z) {
                for (v, ev) in expect.iter_mut().zip(e) {
                    *v += z * l.sqrt() * ev;
                }
            }
            for (a, b) in x.iter().zip(&expect) {
                assert!((a - b).abs() < 1e-12, "draw {draw}: {a} vs {b}");
            }
        }
    }

    /// faer's eigenpairs against nalgebra's: eigenvalues to 1e-10 of the largest, eigenvectors
    /// equal up to sign where the eigenvalues are well separated (gaps here >= 1e-2 of the
    /// largest; the error of a vector is ~eps / gap). CI runs it with `--features faer`.
    #[cfg(feature = "faer")]
    #[test]
    fn eigen_matches_nalgebra() {
        let d = 40;
        let rows: Vec<Vec<f64>> = (0..200)
            .map(|i| {
                (0..d)
                    .map(|j| ((i * d + j) as f64 * 0.37).sin() / (1.0 + j as f64))
                    .collect()
            })
            .collect();
        let cov = covariance(&rows, d);
        let (va, ea) = eigen(cov.clone());
        let (vb, eb) = eigen_nalgebra(cov);
        let top = vb[0];
        for i in 0..d {
            assert!(
                (va[i] - vb[i]).abs() <= 1e-10 * top,
                "eigenvalue {i}: {} vs {}",
                va[i],
                vb[i]
            );
        }
        for i in 0..d {
            let separated =
                (i == 0 || vb[i - 1] - vb[i] > 1e-2 * top) && (i + 1 == d || vb[i] - vb[i + 1] > 1e-2 * top);
            if !separated {
                continue;
            }
            let dot: f64 = ea[i].iter().zip(&eb[i]).map(|(a, b)| a * b).sum();
            assert!((dot.abs() - 1.0).abs() < 1e-8, "eigenvector {i}: |dot| = {}", dot.abs());
        }
    }
}

//! Reading data files within a memory budget, and the dispatch to each format's loader.
//!
//! Standardisation happens later (`empirical`): loaders return the raw numbers.

use std::io::Read;
use std::path::Path;

/// A problem with a data file, located by byte offset or line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: {location}: {message}")]
pub struct DataError {
    pub file: String,
    /// `line 3`, `byte 16`, ...
    pub location: String,
    pub message: String,
}

pub(super) fn fail<T>(file: &str, location: impl Into<String>, message: impl Into<String>) -> Result<T, DataError> {
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
    pub(super) fn budget(&self) -> u64 {
        self.max_bytes.unwrap_or(DEFAULT_MAX_BYTES)
    }

    /// How many of `n` samples to keep.
    pub(super) fn keep(&self, n: usize) -> usize {
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
pub(super) fn check_size(path: &str, n: usize, d: usize, options: &LoadOptions) -> Result<(), DataError> {
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
pub(super) fn readable_size(n: f64) -> String {
    match n {
        n if n >= 1e9 => format!("{:.2} GB", n / 1e9),
        n if n >= 1e6 => format!("{:.2} MB", n / 1e6),
        n if n >= 1e3 => format!("{:.0} kB", n / 1e3),
        n => format!("{n:.0} B"),
    }
}

/// Refuses a declared dimension above `MAX_DIMENSION`.
pub(super) fn check_dimension(path: &str, location: impl Into<String>, d: usize) -> Result<(), DataError> {
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
pub(super) fn read_bytes(path: &str, budget: u64) -> Result<Vec<u8>, DataError> {
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
    let gzip = |bytes: &[u8]| bytes.starts_with(&[0x1f, 0x8b]);
    if !gzip(&raw) {
        if path.ends_with(".gz") {
            return Err(DataError {
                file: path.to_string(),
                location: "byte 0".into(),
                message: "the name ends in .gz but the file is not gzip data".into(),
            });
        }
        return Ok(raw);
    }
    // Every member of a multi-member file (`cat a.gz b.gz`), one after the other; anything
    // after the last member that is not another one is an error, not ignored.
    let mut out = Vec::new();
    let mut rest: &[u8] = &raw;
    while !rest.is_empty() {
        if !gzip(rest) {
            return Err(DataError {
                file: path.to_string(),
                location: format!("byte {}", raw.len() - rest.len()),
                message: format!("{} bytes after the gzip data that are not gzip", rest.len()),
            });
        }
        let budget_left = (limit + 1).saturating_sub(out.len() as u64);
        let mut member = flate2::bufread::GzDecoder::new(rest);
        (&mut member)
            .take(budget_left)
            .read_to_end(&mut out)
            .map_err(|e| DataError {
                file: path.to_string(),
                location: "gzip stream".into(),
                message: format!("corrupt or truncated gzip data: {e}"),
            })?;
        if out.len() as u64 > limit {
            return Err(too_large("the gzip stream unpacks to", limit));
        }
        rest = member.into_inner();
    }
    Ok(out)
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
        Format::Csv => super::csv::load_csv(path, options)?,
        Format::Idx => super::idx::load_idx(path, options)?,
        Format::Cifar => super::cifar::load_cifar(path, options)?,
        Format::Npy => super::npy::load_npy(path, options)?,
        Format::Image => match options.patch {
            Some(p) => super::photo::load_patches(path, p, options.stride.unwrap_or(p), options)?,
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

/// Whether `path` exists and is a file (for messages that say which argument is wrong).
pub fn is_file(path: &str) -> bool {
    Path::new(path).is_file()
}

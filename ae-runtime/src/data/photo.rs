//! Photographs (JPEG, PNG) cut into grey P x P patches.

use super::load::{check_size, fail, read_bytes, readable_size, DataError, LoadOptions, Samples};

/// Grey from colour, in floating point, for photographs and CIFAR-10 alike: the luminance
/// 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601), as the paper's grey CIFAR-10.
pub fn luminance(r: u8, g: u8, b: u8) -> f64 {
    0.299 * r as f64 + 0.587 * g as f64 + 0.114 * b as f64
}

/// Grey P x P patches of a photograph (luminance, 0..255), row by row, their top-left corners
/// `stride` pixels apart (`stride = P`: non-overlapping).
pub(super) fn load_patches(path: &str, p: usize, stride: usize, options: &LoadOptions) -> Result<Samples, DataError> {
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
    if bytes.starts_with(&[0xFF, 0xD8]) && !jpeg_is_complete(&bytes) {
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

/// Whether JPEG data reaches its end-of-image marker (FF D9), walking its segments: markers
/// with a length are skipped whole (an EXIF thumbnail's own FF D9 is inside one), and a scan's
/// coded data runs to the next marker that is not a stuffed byte or a restart. Bytes after the
/// end marker (padding, appended data) do not make the image incomplete.
fn jpeg_is_complete(b: &[u8]) -> bool {
    let mut i = 2;
    loop {
        while i < b.len() && b[i] != 0xFF {
            i += 1;
        }
        while i < b.len() && b[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = b.get(i) else { return false };
        i += 1;
        match marker {
            0xD9 => return true,
            0x01 | 0xD0..=0xD7 => continue,
            _ => {
                let Some(length) = b.get(i..i + 2).map(|l| usize::from(u16::from_be_bytes([l[0], l[1]]))) else {
                    return false;
                };
                if length < 2 {
                    return false;
                }
                i += length;
                if marker == 0xDA {
                    while i + 1 < b.len() && (b[i] != 0xFF || matches!(b[i + 1], 0x00 | 0xFF | 0xD0..=0xD7)) {
                        i += 1;
                    }
                    if i + 1 >= b.len() {
                        return false;
                    }
                }
            }
        }
    }
}

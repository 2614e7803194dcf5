//! Tests of the loaders, the standardisation and the samplers.

use ae_runtime::data::*;
use ae_runtime::internals::GAUSSIAN_BATCH;

/// A file path in a directory of its own, which is removed with this value: at the end of the
/// test that holds it, passed or failed.
struct TempFile {
    path: String,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TempFile {
    type Target = str;
    fn deref(&self) -> &str {
        &self.path
    }
}

impl AsRef<std::path::Path> for TempFile {
    fn as_ref(&self) -> &std::path::Path {
        std::path::Path::new(&self.path)
    }
}

fn temp(name: &str) -> TempFile {
    let dir = tempfile::Builder::new().prefix("ae-runtime-loader-").tempdir().unwrap();
    TempFile {
        path: dir.path().join(name).to_string_lossy().into_owned(),
        _dir: dir,
    }
}

/// A 9 x 7 PNG whose pixel (x, y) has colour (x, y, x + y) times a few primes.
fn photo() -> (TempFile, image::RgbImage) {
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
    for (path, patch) in [(&*png, Some(2)), (&*csv, None), (&*idx, None)] {
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
    let cov = covariance(&rows, d).unwrap();
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
    use ae_runtime::sgd::Sampler;
    let (n, d) = (40, 5);
    let data = small_data(n, d, |i, j| ((i * d + j) as f64 * 0.61).sin() * (1.0 + j as f64));
    let mut sampler = DataSampler::new(data.clone(), Draw::Gaussian);
    let mut rng = ae_runtime::sgd::sample_rng(3, 0);
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
/// largest; the error of a vector is ~eps / gap).
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
    let cov = covariance(&rows, d).unwrap();
    let (va, ea) = eigen_faer(cov.clone());
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
        let separated = (i == 0 || vb[i - 1] - vb[i] > 1e-2 * top) && (i + 1 == d || vb[i] - vb[i + 1] > 1e-2 * top);
        if !separated {
            continue;
        }
        let dot: f64 = ea[i].iter().zip(&eb[i]).map(|(a, b)| a * b).sum();
        assert!((dot.abs() - 1.0).abs() < 1e-8, "eigenvector {i}: |dot| = {}", dot.abs());
    }
}

/// A covariance whose D x D entries cannot be had is an error, not an abort: at D = 2^23 they
/// take 563 TB.
#[test]
fn a_covariance_that_cannot_be_held_is_an_error() {
    assert!(covariance(&[], 1 << 23).is_err());
    assert_eq!(covariance(&[vec![1.0, 2.0]], 2).unwrap()[(0, 1)], 2.0);
}

/// A data set of n samples in d dimensions, entry (i, j) from `entry`, standardised as loaded
/// data are.
fn small_data(n: usize, d: usize, entry: impl Fn(usize, usize) -> f64) -> std::sync::Arc<RealData> {
    let rows = (0..n).map(|i| (0..d).map(|j| entry(i, j)).collect()).collect();
    let samples = Samples {
        source: "t".into(),
        d,
        rows,
    };
    std::sync::Arc::new(RealData::new(samples).unwrap())
}

/// Online draws read the next sample's row ahead from a copy of the generator: the run's own
/// generator advances exactly as one index draw per sample, and the rows are those draws'.
#[test]
fn reading_the_next_row_ahead_leaves_the_draws_as_they_were() {
    use ae_runtime::sgd::Sampler;
    use rand::Rng;
    let (n, d) = (50, 3);
    let data = small_data(n, d, |i, j| ((i * d + j) as f64 * 0.37).cos());
    let mut sampler = DataSampler::new(data.clone(), Draw::Online);
    let mut rng = ae_runtime::sgd::sample_rng(5, 0);
    let mut reference = rng.clone();
    let mut x = vec![0.0; d];
    for draw in 0..200 {
        sampler.sample(&mut rng, &mut x);
        let row = &data.rows[reference.random_range(0..n)];
        assert_eq!(&x, row, "draw {draw}");
        assert!(rng == reference, "draw {draw}: the generator moved differently");
    }
}

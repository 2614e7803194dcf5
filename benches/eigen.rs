//! One-shot timings of the real-data set-up, side by side (too slow for criterion's repeated
//! samples at D = 3072): the empirical covariance of 15 000 samples at D = 1024 by one matrix
//! product against rank-one updates, and the symmetric eigendecomposition at D = 1024
//! (grey 32x32 images) and D = 3072 (colour CIFAR-10), the one in use (faer's with the
//! `fast-eigen` feature, otherwise nalgebra's) against nalgebra's.
//! Run: `cargo bench --bench eigen --features fast-eigen`.

use std::time::Instant;

use ae_runtime::data::{covariance, eigen, eigen_nalgebra};

mod common;

use common::power_law_rows as rows;

fn seconds(what: &str, f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    let s = start.elapsed().as_secs_f64();
    println!("{what}: {s:.2} s");
    s
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run only for bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let d = 1024;
    let data = rows(15_000, d);
    let product = seconds("covariance, 15000 samples, D = 1024, one matrix product", || {
        std::hint::black_box(covariance(&data, d).unwrap());
    });
    let updates = seconds("covariance, 15000 samples, D = 1024, rank-one updates", || {
        let mut cov = nalgebra::DMatrix::<f64>::zeros(d, d);
        for row in &data {
            let x = nalgebra::DVectorView::from_slice(row, d);
            cov.ger(1.0 / data.len() as f64, &x, &x, 1.0);
        }
        std::hint::black_box(cov);
    });
    println!("matrix product {:.1}x faster", updates / product);
    for d in [1024, 3072] {
        let cov = covariance(&rows(d + 500, d), d).unwrap();
        let reference = seconds(&format!("symmetric eigendecomposition (nalgebra), D = {d}"), || {
            std::hint::black_box(eigen_nalgebra(cov.clone()));
        });
        let used = seconds(
            &format!(
                "symmetric eigendecomposition ({}), D = {d}",
                if cfg!(feature = "fast-eigen") {
                    "faer, one thread"
                } else {
                    "nalgebra again: build with --features fast-eigen for faer"
                }
            ),
            || {
                std::hint::black_box(eigen(cov));
            },
        );
        println!("in use: {:.1}x faster than nalgebra", reference / used);
    }
}

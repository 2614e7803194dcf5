//! Synthetic data and scratch space shared by the benchmarks.
// Each bench uses part of this module.
#![allow(dead_code)]

use rand_distr::{Distribution, StandardNormal};

/// `n` Gaussian samples in dimension `d` with a power-law spectrum (scale (1 + i)^-0.8 along
/// coordinate i), like natural images'.
pub fn power_law_rows(n: usize, d: usize) -> Vec<Vec<f64>> {
    let mut rng = ae_runtime::data::rng(5, 77);
    let scales: Vec<f64> = (0..d).map(|i| 1.0 / (1.0 + i as f64).powf(0.8)).collect();
    (0..n)
        .map(|_| {
            scales
                .iter()
                .map(|s| {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    s * z
                })
                .collect()
        })
        .collect()
}

/// This bench process's own directory under the system's temporary one, created on first use;
/// a bench's `main` removes it at the end.
pub fn scratch() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("aedyn-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

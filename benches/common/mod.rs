//! Synthetic data shared by the benchmarks.

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

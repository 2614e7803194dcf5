//! Helpers shared by the unit tests of the closed forms.

use ae_dsl::ir::Avg;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// Monte Carlo means of the five averages' integrands (I2, J2, I21, I22, I3) over `n` samples
/// of x = L z, z standard normal in three dimensions (so C = L Lᵀ).
pub(crate) fn monte_carlo_averages(
    l: [[f64; 3]; 3],
    g: impl Fn(f64) -> f64,
    dg: impl Fn(f64) -> f64,
    n: usize,
    seed: u64,
) -> [f64; 5] {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut sums = [0.0; 5];
    for _ in 0..n {
        let z: [f64; 3] = std::array::from_fn(|_| rng.sample(StandardNormal));
        let x: [f64; 3] = std::array::from_fn(|i| (0..3).map(|m| l[i][m] * z[m]).sum());
        sums[0] += g(x[0]) * g(x[1]);
        sums[1] += x[0] * g(x[1]);
        sums[2] += dg(x[0]) * x[0] * x[1];
        sums[3] += dg(x[0]) * x[1] * x[1];
        sums[4] += dg(x[0]) * x[1] * g(x[2]);
    }
    sums.map(|s| s / n as f64)
}

/// Each average with its arguments: the two-variable ones at `c2`, I3 at `c3`.
pub(crate) fn every_average<'a>(c2: &'a [f64; 3], c3: &'a [f64; 6]) -> [(Avg, &'a [f64]); 5] {
    [
        (Avg::I2, &c2[..]),
        (Avg::J2, &c2[..]),
        (Avg::I21, &c2[..]),
        (Avg::I22, &c2[..]),
        (Avg::I3, &c3[..]),
    ]
}

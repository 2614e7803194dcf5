//! The spiked covariance model (docs/theory.md section 2), its eigenvectors, and seeded draws
//! of initial weights. Every random draw has its own ChaCha stream so that changing one option
//! (say the eigenvector family) does not change another draw (the weights).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Streams of the ChaCha generator, one per purpose.
pub mod stream {
    pub const WEIGHTS: u64 = 0;
    pub const EIGENVECTORS: u64 = 1;
    /// Held-out test samples for Monte-Carlo estimates of eg.
    pub const TEST: u64 = 2;
    /// SGD samples use `SAMPLES + replica`.
    pub const SAMPLES: u64 = 16;
}

/// A seeded generator on one stream.
pub fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum EigenFamily {
    /// Orthonormalised Gaussian vectors.
    Random,
    /// Orthonormalised sin((m + 2) i / 100), i = 0..D-1.
    Sinusoidal,
    /// The first M unit vectors.
    Canonical,
}

/// Input dimension: finite, or the strict limit D -> infinity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    Finite(usize),
    Infinite,
}

/// The spiked model: spikes of strength `rho~_m` along `e_m` on a bulk of variance `sigma^2`.
#[derive(Debug, Clone, PartialEq)]
pub struct Spiked {
    pub d: Dim,
    /// Spike strengths rho~_m as the user gives them (largest first is customary, not required).
    pub spikes: Vec<f64>,
    pub sigma: f64,
}

impl Spiked {
    /// Rescaled eigenvalues that enter the equations for the spikes: rho~_m + sigma^2 / D.
    pub fn spike_rho(&self) -> Vec<f64> {
        let extra = self.rho_bulk();
        self.spikes.iter().map(|s| s + extra).collect()
    }
    /// Rescaled eigenvalue of every bulk mode: sigma^2 / D (0 in the strict limit).
    pub fn rho_bulk(&self) -> f64 {
        match self.d {
            Dim::Finite(d) => self.sigma * self.sigma / d as f64,
            Dim::Infinite => 0.0,
        }
    }
    /// The bulk's share of tr(Omega)/D: (D - M) sigma^2 / D.
    pub fn bulk_trace(&self) -> f64 {
        match self.d {
            Dim::Finite(d) => (d - self.spikes.len()) as f64 * self.sigma * self.sigma / d as f64,
            Dim::Infinite => self.sigma * self.sigma,
        }
    }
    /// tr(Omega) / (2D) = (sum rho~ + sigma^2) / 2.
    pub fn half_trace(&self) -> f64 {
        (self.spikes.iter().sum::<f64>() + self.sigma * self.sigma) / 2.0
    }
    /// PCA error of rank r: (tr Omega - sum of the top r eigenvalues) / (2D).
    pub fn pca_error(&self, r: usize) -> f64 {
        let mut rho = self.spike_rho();
        rho.sort_by(|a, b| b.total_cmp(a));
        let bulk = self.rho_bulk();
        let top: f64 = (0..r).map(|i| rho.get(i).copied().unwrap_or(bulk)).sum();
        let trace = self.spike_rho().iter().sum::<f64>() + self.bulk_trace();
        (trace - top) / 2.0
    }
}

/// Orthonormalises the rows in place (modified Gram-Schmidt, twice for stability).
pub fn orthonormalise(rows: &mut [Vec<f64>]) {
    for _pass in 0..2 {
        for i in 0..rows.len() {
            for j in 0..i {
                let (head, tail) = rows.split_at_mut(i);
                let dot: f64 = head[j].iter().zip(&tail[0]).map(|(a, b)| a * b).sum();
                for (x, e) in tail[0].iter_mut().zip(&head[j]) {
                    *x -= dot * e;
                }
            }
            let norm = rows[i].iter().map(|x| x * x).sum::<f64>().sqrt();
            for x in rows[i].iter_mut() {
                *x /= norm;
            }
        }
    }
}

/// The M spike eigenvectors (rows) of the given family in dimension `d`.
pub fn eigenvectors(family: EigenFamily, m: usize, d: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rows: Vec<Vec<f64>> = match family {
        EigenFamily::Random => {
            let mut r = rng(seed, stream::EIGENVECTORS);
            (0..m)
                .map(|_| (0..d).map(|_| StandardNormal.sample(&mut r)).collect())
                .collect()
        }
        EigenFamily::Sinusoidal => (0..m)
            .map(|j| (0..d).map(|i| ((j as f64 + 2.0) * i as f64 / 100.0).sin()).collect())
            .collect(),
        EigenFamily::Canonical => (0..m)
            .map(|j| (0..d).map(|i| if i == j { 1.0 } else { 0.0 }).collect())
            .collect(),
    };
    if family != EigenFamily::Canonical {
        orthonormalise(&mut rows);
    }
    rows
}

/// Encoder and decoder weights, rows w_k and v_k in R^D.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    pub w: Vec<Vec<f64>>,
    pub v: Vec<Vec<f64>>,
}

impl Weights {
    /// I.i.d. N(0, std^2) entries from the seed's weight stream: encoder rows first, then decoder.
    pub fn random(k: usize, d: usize, std: f64, seed: u64) -> Weights {
        let mut r = rng(seed, stream::WEIGHTS);
        let mut draw = |_| -> Vec<f64> {
            (0..d)
                .map(|_| {
                    let z: f64 = StandardNormal.sample(&mut r);
                    std * z
                })
                .collect()
        };
        let w = (0..k).map(&mut draw).collect();
        let v = (0..k).map(&mut draw).collect();
        Weights { w, v }
    }

    pub fn k(&self) -> usize {
        self.w.len()
    }
    pub fn d(&self) -> usize {
        self.w.first().map_or(0, |r| r.len())
    }
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

//! The spectrum of an empirical covariance (paper figure 1(b)): for the spiked model, the
//! eigenvalues of N samples' covariance against the Marchenko-Pastur law of the bulk and the
//! predicted positions of the outliers; for real data, the data set's own spectrum.

use ae_runtime::data::Spiked;
use ae_runtime::sgd::{test_set, SpikedSampler};

use crate::error::RunError;
use crate::memory::cannot_hold;
use crate::source::DataSource;

/// What `aedyn spectrum` computes.
#[derive(Debug, Clone)]
pub struct SpectrumJob {
    pub source: DataSource,
    /// Samples drawn from the spiked model (unused for real data).
    pub samples: usize,
    pub bins: usize,
    pub seed: u64,
}

/// The Marchenko-Pastur law of the sample covariance of N i.i.d. samples with covariance
/// sigma^2 I in D dimensions, ratio gamma = D / N <= 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarchenkoPastur {
    pub sigma2: f64,
    pub ratio: f64,
}

impl MarchenkoPastur {
    /// The edges sigma^2 (1 -+ sqrt(gamma))^2 of the support.
    pub fn edges(&self) -> (f64, f64) {
        let r = self.ratio.sqrt();
        (self.sigma2 * (1.0 - r).powi(2), self.sigma2 * (1.0 + r).powi(2))
    }

    pub fn density(&self, x: f64) -> f64 {
        let (a, b) = self.edges();
        if x <= a || x >= b {
            return 0.0;
        }
        ((b - x) * (x - a)).sqrt() / (2.0 * std::f64::consts::PI * self.sigma2 * self.ratio * x)
    }

    /// The distribution function, by the midpoint rule in theta with x = a + (b - a)(1 - cos
    /// theta)/2, where the integrand is smooth (the square-root edges become sin^2): 4000
    /// points give it to about 1e-7.
    pub fn cdf(&self, x: f64) -> f64 {
        let (a, b) = self.edges();
        if x <= a {
            return 0.0;
        }
        if x >= b {
            return 1.0;
        }
        let theta_x = (1.0 - 2.0 * (x - a) / (b - a)).clamp(-1.0, 1.0).acos();
        let n = 4000;
        let h = theta_x / n as f64;
        (0..n).map(|i| self.density_in_theta((i as f64 + 0.5) * h)).sum::<f64>() * h
    }

    /// The density in theta, where x = a + (b - a)(1 - cos theta)/2: smooth on [0, pi].
    fn density_in_theta(&self, theta: f64) -> f64 {
        let (a, b) = self.edges();
        let half = 0.5 * (b - a);
        let xi = a + half * (1.0 - theta.cos());
        let s = half * theta.sin();
        s * s / (2.0 * std::f64::consts::PI * self.sigma2 * self.ratio * xi)
    }

    /// The quantiles at probabilities `ps`, from one table of the distribution function in
    /// theta (the variable of `cdf`): 2^16 midpoint steps over [0, pi] and linear interpolation
    /// in theta, each accurate to about 1e-9 in probability. A D = 1000 spectrum asked for 1000
    /// quantiles, each by 60 bisection steps over a 4000-point `cdf`: 2.4e8 sines and cosines.
    pub fn quantiles(&self, ps: &[f64]) -> Vec<f64> {
        let (a, b) = self.edges();
        let half = 0.5 * (b - a);
        let steps = 1 << 16;
        let h = std::f64::consts::PI / steps as f64;
        // table[j] = F at theta = j h.
        let mut table = Vec::with_capacity(steps + 1);
        let mut total = 0.0;
        table.push(0.0);
        for i in 0..steps {
            total += self.density_in_theta((i as f64 + 0.5) * h) * h;
            table.push(total);
        }
        ps.iter()
            .map(|&p| {
                let j = table.partition_point(|&f| f < p).clamp(1, steps);
                let (f0, f1) = (table[j - 1], table[j]);
                let within = if f1 > f0 {
                    ((p - f0) / (f1 - f0)).clamp(0.0, 1.0)
                } else {
                    0.5
                };
                let theta = (j as f64 - 1.0 + within) * h;
                a + half * (1.0 - theta.cos())
            })
            .collect()
    }
}

/// Where a spike of population eigenvalue `ell` lands in the sample covariance, and its
/// standard error (Baik-Ben Arous-Peche; Paul 2007): above the threshold sigma^2 (1 +
/// sqrt(gamma)), ell (1 + gamma sigma^2 / (ell - sigma^2)) with variance 2 ell^2 (1 - gamma
/// sigma^4 / (ell - sigma^2)^2) / N; below it, the spike is lost in the bulk (None).
pub fn outlier(ell: f64, mp: MarchenkoPastur, n: usize) -> Option<(f64, f64)> {
    let excess = ell - mp.sigma2;
    if excess <= mp.sigma2 * mp.ratio.sqrt() {
        return None;
    }
    let position = ell * (1.0 + mp.ratio * mp.sigma2 / excess);
    let variance = 2.0 * ell * ell * (1.0 - mp.ratio * mp.sigma2 * mp.sigma2 / (excess * excess)) / n as f64;
    Some((position, variance.max(0.0).sqrt()))
}

/// The result: eigenvalues (largest first) and, for the spiked model, their predictions.
#[derive(Debug, Clone)]
pub struct Spectrum {
    pub eigenvalues: Vec<f64>,
    /// For the spiked model: the law of the bulk and, per rank, the predicted eigenvalue (the
    /// outliers' positions, then the Marchenko-Pastur quantiles of the bulk's ranks) with a
    /// standard error for the outliers.
    pub theory: Option<Theory>,
    pub samples: usize,
    pub bins: usize,
}

#[derive(Debug, Clone)]
pub struct Theory {
    pub law: MarchenkoPastur,
    /// The number of outliers: spikes above the threshold.
    pub outliers: usize,
    pub predicted: Vec<f64>,
    pub stderr: Vec<Option<f64>>,
}

impl SpectrumJob {
    /// The columns of the two files, without running.
    pub fn columns(&self) -> crate::schema::OutputColumns {
        crate::schema::spectrum_columns(matches!(self.source, DataSource::Spiked { .. }))
    }

    pub fn run(&self) -> Result<Spectrum, RunError> {
        match &self.source {
            DataSource::Empirical(real) => Ok(Spectrum {
                eigenvalues: real.eigenvalues.clone(),
                theory: None,
                samples: real.rows.len(),
                bins: self.bins,
            }),
            DataSource::Spiked { model, .. } => self.spiked(model),
        }
    }

    fn spiked(&self, model: &Spiked) -> Result<Spectrum, RunError> {
        let d = self.source.finite_d("spectrum")?;
        let n = self.samples;
        let eig = self.source.eigenvectors(d);
        let mut sampler = SpikedSampler::new(eig, &model.spikes, model.sigma);
        let rows = test_set(&mut sampler, self.seed, n)
            .map_err(|_| cannot_hold(&format!("{n} samples of D = {d}"), n as f64 * d as f64 * 8.0))?;
        // The model has mean zero: the covariance is X^T X / N, not centred.
        let cov = ae_runtime::data::covariance(&rows, d)
            .map_err(|_| cannot_hold("their covariance", ae_runtime::data::covariance_bytes(n, d)))?;
        drop(rows);
        let eigenvalues = ae_runtime::data::eigenvalues(cov);
        let law = MarchenkoPastur {
            sigma2: model.sigma * model.sigma,
            ratio: d as f64 / n as f64,
        };
        let mut spikes: Vec<f64> = model.spikes.iter().map(|s| s * d as f64 + law.sigma2).collect();
        spikes.sort_by(|a, b| b.total_cmp(a));
        let found: Vec<(f64, f64)> = spikes.iter().filter_map(|ell| outlier(*ell, law, n)).collect();
        let bulk = d - found.len();
        let mut predicted: Vec<f64> = found.iter().map(|o| o.0).collect();
        let mut stderr: Vec<Option<f64>> = found.iter().map(|o| Some(o.1)).collect();
        // Rank i of the bulk (largest first) at the quantile 1 - (i + 1/2) / bulk.
        let ranks: Vec<f64> = (0..bulk).map(|i| 1.0 - (i as f64 + 0.5) / bulk as f64).collect();
        predicted.extend(law.quantiles(&ranks));
        stderr.extend(std::iter::repeat_n(None, bulk));
        Ok(Spectrum {
            eigenvalues,
            theory: Some(Theory {
                law,
                outliers: found.len(),
                predicted,
                stderr,
            }),
            samples: n,
            bins: self.bins,
        })
    }
}

impl Spectrum {
    /// The eigenvalues of the bulk (all of them for real data).
    pub fn bulk(&self) -> &[f64] {
        let outliers = self.theory.as_ref().map_or(0, |t| t.outliers);
        &self.eigenvalues[outliers..]
    }

    /// Columns rank (from 1), eigenvalue, and for the spiked model predicted and stderr
    /// (empty for the bulk).
    pub fn write_csv(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let columns = crate::schema::spectrum_columns(self.theory.is_some());
        writeln!(out, "{}", columns.main.join(","))?;
        for (i, e) in self.eigenvalues.iter().enumerate() {
            match &self.theory {
                Some(t) => {
                    let err = t.stderr[i].map_or_else(String::new, |s| format!("{s:e}"));
                    writeln!(out, "{},{e:e},{:e},{err}", i + 1, t.predicted[i])?
                }
                None => writeln!(out, "{},{e:e}", i + 1)?,
            }
        }
        Ok(())
    }

    /// The histogram of the bulk: columns bin centre, left edge, right edge, density and, for
    /// the spiked model, the Marchenko-Pastur probability of the bin divided by its width.
    pub fn write_density_csv(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        use crate::schema;
        let bulk = self.bulk();
        let (mut lo, mut hi) = bulk
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(*v), h.max(*v)));
        if let Some(t) = &self.theory {
            let (a, b) = t.law.edges();
            lo = lo.min(a);
            hi = hi.max(b);
        }
        // One value (or none): a bin of width one around it.
        if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
            lo = if lo.is_finite() { lo } else { 0.0 };
            hi = lo + 1.0;
        }
        let width = (hi - lo) / self.bins as f64;
        let mut counts = vec![0usize; self.bins];
        for v in bulk {
            let i = (((v - lo) / width) as usize).min(self.bins - 1);
            counts[i] += 1;
        }
        let columns = schema::spectrum_columns(self.theory.is_some());
        writeln!(out, "{}", columns.second.unwrap_or_default().join(","))?;
        for (i, c) in counts.iter().enumerate() {
            let (left, right) = (lo + i as f64 * width, lo + (i + 1) as f64 * width);
            let density = *c as f64 / (bulk.len() as f64 * width);
            write!(out, "{:e},{left:e},{right:e},{density:e}", 0.5 * (left + right))?;
            if let Some(t) = &self.theory {
                write!(out, ",{:e}", (t.law.cdf(right) - t.law.cdf(left)) / width)?;
            }
            writeln!(out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The law integrates to one, its mean is sigma^2 (E tr S / D), and the quantiles invert
    /// the distribution function: numerical checks of the quadrature (1e-6 covers the
    /// midpoint rule's 4000 points). The quantiles are held to 1e-9 in probability against the
    /// same integral with 4e5 points (its error about 1e-11), since `cdf`'s own 4000 points
    /// are accurate only to about 1e-7.
    #[test]
    fn the_marchenko_pastur_law_is_a_distribution_with_mean_sigma2() {
        for (sigma2, ratio) in [(1.0, 0.25), (2.5, 0.8), (0.3, 0.05)] {
            let mp = MarchenkoPastur { sigma2, ratio };
            let (a, b) = mp.edges();
            assert!((mp.cdf(b - 1e-12) - 1.0).abs() < 1e-6, "{sigma2} {ratio}");
            let n = 200_000;
            let h = (b - a) / n as f64;
            let mean: f64 = (0..n)
                .map(|i| {
                    let x = a + (i as f64 + 0.5) * h;
                    x * mp.density(x) * h
                })
                .sum();
            // The midpoint rule on the square-root edges converges as h^1.5: 1e-5 here.
            assert!((mean - sigma2).abs() < 1e-5 * sigma2, "mean {mean} against {sigma2}");
            let fine_cdf = |x: f64| {
                let theta_x = (1.0 - 2.0 * (x - a) / (b - a)).clamp(-1.0, 1.0).acos();
                let n = 400_000;
                let h = theta_x / n as f64;
                (0..n).map(|i| mp.density_in_theta((i as f64 + 0.5) * h)).sum::<f64>() * h
            };
            let ps = [0.01, 0.3, 0.5, 0.97];
            for (p, q) in ps.iter().zip(mp.quantiles(&ps)) {
                assert!((fine_cdf(q) - p).abs() < 1e-9, "{p}: {}", fine_cdf(q));
            }
        }
    }

    #[test]
    fn spikes_below_the_threshold_have_no_outlier() {
        let mp = MarchenkoPastur {
            sigma2: 1.0,
            ratio: 0.25,
        };
        assert_eq!(outlier(1.4, mp, 100), None);
        let (position, _) = outlier(3.0, mp, 100).unwrap();
        // ell (1 + gamma/(ell - 1)) = 3 (1 + 0.125).
        assert!((position - 3.375).abs() < 1e-12);
    }
}

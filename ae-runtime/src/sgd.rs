//! Exact online SGD of SPEC section 3: one fresh sample per step, time t = steps / D. Variants:
//! vanilla, truncated (neuron k sees the reconstruction of neurons j <= k), tied weights,
//! trained biases, weight decay, and Sanger's rule. Seeded: the same seed gives the same bits.

use crate::averages::Evaluate as _;
use rand::{RngCore, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::averages::ActivationKind;
use crate::data::{rng, stream, Weights};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Rule {
    /// Plain SGD on the reconstruction loss.
    Vanilla,
    /// Each neuron k uses delta_k = x - sum_{j<=k} v_j g(lambda_j).
    Truncated,
    /// Generalised Hebbian learning (linear, encoder only).
    Sanger,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SgdConfig {
    pub activation: ActivationKind,
    pub rule: Rule,
    pub lr: f64,
    pub kappa: f64,
    /// Decoder = encoder, one set of weights receiving both updates.
    pub tied: bool,
    /// Train a bias beta_k in each pre-activation.
    pub train_bias: bool,
    /// Initial value of every trained bias (ReLU learns best from a positive start).
    pub bias_init: f64,
}

impl SgdConfig {
    /// Plain SGD with learning rate 1: untied, no bias, no weight decay.
    pub fn vanilla(activation: ActivationKind) -> Self {
        SgdConfig {
            activation,
            rule: Rule::Vanilla,
            lr: 1.0,
            kappa: 0.0,
            tied: false,
            train_bias: false,
            bias_init: 0.0,
        }
    }
}

/// A source of input samples x in R^D.
pub trait Sampler: Send {
    fn d(&self) -> usize;
    fn sample(&mut self, rng: &mut SampleRng, x: &mut [f64]);
}

/// The spiked model: x = sum_m sqrt(rho~_m D) c_m e_m + sigma xi.
#[derive(Debug, Clone)]
pub struct SpikedSampler {
    /// Spike directions (rows, unit norm).
    pub eig: Vec<Vec<f64>>,
    /// sqrt(rho~_m D) per spike.
    pub amplitude: Vec<f64>,
    pub sigma: f64,
}

impl SpikedSampler {
    pub fn new(eig: Vec<Vec<f64>>, spikes: &[f64], sigma: f64) -> Self {
        let d = eig.first().map_or(0, |e| e.len()) as f64;
        SpikedSampler {
            amplitude: spikes.iter().map(|s| (s * d).sqrt()).collect(),
            eig,
            sigma,
        }
    }
}

impl Sampler for SpikedSampler {
    fn d(&self) -> usize {
        self.eig.first().map_or(0, |e| e.len())
    }
    fn sample(&mut self, rng: &mut SampleRng, x: &mut [f64]) {
        for xi in x.iter_mut() {
            let z: f64 = StandardNormal.sample(rng);
            *xi = self.sigma * z;
        }
        for (e, a) in self.eig.iter().zip(&self.amplitude) {
            let z: f64 = StandardNormal.sample(rng);
            axpy(a * z, e, x);
        }
    }
}

/// Dot product with four accumulators: a fixed summation order (so results do not depend on
/// the machine) that still vectorises.
#[inline]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 4];
    let chunks = n / 4;
    for c in 0..chunks {
        for l in 0..4 {
            acc[l] += a[4 * c + l] * b[4 * c + l];
        }
    }
    let mut tail = 0.0;
    for i in 4 * chunks..n {
        tail += a[i] * b[i];
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// y += alpha x
#[inline]
pub fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// Decoder row j: the encoder row itself when the weights are tied.
fn decoder_row<'a>(config: &SgdConfig, w: &'a [f64], v: &'a [f64], j: usize, d: usize) -> &'a [f64] {
    if config.tied {
        &w[j * d..(j + 1) * d]
    } else {
        &v[j * d..(j + 1) * d]
    }
}

/// The state of one SGD run.
#[derive(Debug, Clone)]
pub struct Sgd {
    pub config: SgdConfig,
    pub k: usize,
    pub d: usize,
    /// Encoder rows, K x D, row-major.
    pub w: Vec<f64>,
    /// Decoder rows (unused when tied), K x D.
    pub v: Vec<f64>,
    pub bias: Vec<f64>,
    pub steps: u64,
    x: Vec<f64>,
    residual: Vec<f64>,
    g: Vec<f64>,
    dg: Vec<f64>,
    vd: Vec<f64>,
}

impl Sgd {
    pub fn new(config: SgdConfig, weights: &Weights, bias: Vec<f64>) -> Self {
        let (k, d) = (weights.k(), weights.d());
        let bias = match (bias.is_empty(), config.train_bias) {
            (false, _) => bias,
            (true, true) => vec![config.bias_init; k],
            (true, false) => vec![0.0; k],
        };
        let flat = |rows: &[Vec<f64>]| rows.iter().flatten().copied().collect::<Vec<f64>>();
        let v = if config.tied {
            flat(&weights.w)
        } else {
            flat(&weights.v)
        };
        Sgd {
            config,
            k,
            d,
            w: flat(&weights.w),
            v,
            bias,
            steps: 0,
            x: vec![0.0; d],
            residual: vec![0.0; d],
            g: vec![0.0; k],
            dg: vec![0.0; k],
            vd: vec![0.0; k],
        }
    }

    /// Time t = steps / D.
    pub fn time(&self) -> f64 {
        self.steps as f64 / self.d as f64
    }

    pub fn weights(&self) -> Weights {
        let rows = |m: &[f64]| m.chunks(self.d).map(|r| r.to_vec()).collect::<Vec<_>>();
        Weights {
            w: rows(&self.w),
            v: if self.config.tied { rows(&self.w) } else { rows(&self.v) },
        }
    }

    /// The network's reconstruction of `x`.
    pub fn reconstruct(&self, x: &[f64], out: &mut [f64]) {
        let d = self.d;
        let sqrt_d = (d as f64).sqrt();
        out.iter_mut().for_each(|o| *o = 0.0);
        for j in 0..self.k {
            let lambda = dot(&self.w[j * d..(j + 1) * d], x) / sqrt_d + self.bias[j];
            axpy(
                self.config.activation.g(lambda),
                decoder_row(&self.config, &self.w, &self.v, j, d),
                out,
            );
        }
    }

    /// Monte-Carlo generalisation error on a held-out set: the mean of ||x - x_hat||^2 / (2D).
    pub fn test_error(&self, test: &[Vec<f64>]) -> f64 {
        let mut xhat = vec![0.0; self.d];
        let total: f64 = test
            .iter()
            .map(|x| {
                self.reconstruct(x, &mut xhat);
                x.iter().zip(&xhat).map(|(a, b)| (a - b) * (a - b)).sum::<f64>()
            })
            .sum();
        total / (2.0 * self.d as f64 * test.len() as f64)
    }

    /// Runs `n` steps on fresh samples.
    pub fn run(&mut self, sampler: &mut dyn Sampler, rng: &mut SampleRng, n: u64) {
        let mut x = std::mem::take(&mut self.x);
        for _ in 0..n {
            sampler.sample(rng, &mut x);
            self.step(&x);
        }
        self.x = x;
    }

    /// One SGD step on sample `x`.
    pub fn step(&mut self, x: &[f64]) {
        let (k, d) = (self.k, self.d);
        let sqrt_d = (d as f64).sqrt();
        let lr_d = self.config.lr / d as f64;
        let act = self.config.activation;
        for j in 0..k {
            let lambda = dot(&self.w[j * d..(j + 1) * d], x) / sqrt_d + self.bias[j];
            self.g[j] = act.g(lambda);
            self.dg[j] = act.dg(lambda);
        }
        match self.config.rule {
            Rule::Sanger => self.sanger_step(x),
            Rule::Vanilla | Rule::Truncated => {
                // residual = x - sum_j v_j g_j with the weights from before the step. Truncated
                // neuron j sees only the neurons i <= j, so it updates as soon as its own
                // term is in; vanilla neurons all wait for the whole sum.
                let truncated = self.config.rule == Rule::Truncated;
                self.residual.copy_from_slice(x);
                for j in 0..k {
                    axpy(
                        -self.g[j],
                        decoder_row(&self.config, &self.w, &self.v, j, d),
                        &mut self.residual,
                    );
                    if truncated {
                        self.update_neuron(j, x, lr_d, sqrt_d);
                    }
                }
                if !truncated {
                    for j in 0..k {
                        self.update_neuron(j, x, lr_d, sqrt_d);
                    }
                }
            }
        }
        if self.config.kappa != 0.0 {
            let shrink = 1.0 - self.config.kappa / d as f64;
            self.w.iter_mut().for_each(|w| *w *= shrink);
            if !self.config.tied {
                self.v.iter_mut().for_each(|v| *v *= shrink);
            }
        }
        self.steps += 1;
    }

    /// Decoder and encoder update of neuron j against `self.residual` (its delta).
    fn update_neuron(&mut self, j: usize, x: &[f64], lr_d: f64, sqrt_d: f64) {
        let d = self.d;
        let (g, dg) = (self.g[j], self.dg[j]);
        let delta = &self.residual;
        if self.config.tied {
            let w = &mut self.w[j * d..(j + 1) * d];
            let vd = dot(w, delta) / d as f64;
            let enc = lr_d * vd * dg / sqrt_d;
            let dec = lr_d * g;
            for i in 0..d {
                w[i] += dec * delta[i] + enc * x[i];
            }
            self.vd[j] = vd;
        } else {
            let v = &mut self.v[j * d..(j + 1) * d];
            let vd = dot(v, delta) / d as f64;
            axpy(lr_d * g, delta, v);
            axpy(lr_d * vd * dg / sqrt_d, x, &mut self.w[j * d..(j + 1) * d]);
            self.vd[j] = vd;
        }
        if self.config.train_bias {
            self.bias[j] += lr_d * self.vd[j] * dg;
        }
    }

    /// W <- W + (eta/D)(y x^T/sqrt(D) - tril(y y^T) W), y = W x / sqrt(D) (linear, encoder only).
    fn sanger_step(&mut self, x: &[f64]) {
        let (k, d) = (self.k, self.d);
        let sqrt_d = (d as f64).sqrt();
        let lr_d = self.config.lr / d as f64;
        let y: Vec<f64> = (0..k).map(|j| dot(&self.w[j * d..(j + 1) * d], x) / sqrt_d).collect();
        // Row j's update reads rows i <= j from before the step: go from the last row down.
        for j in (0..k).rev() {
            let mut update = vec![0.0; d];
            axpy(y[j] / sqrt_d, x, &mut update);
            for i in 0..=j {
                axpy(-y[j] * y[i], &self.w[i * d..(i + 1) * d], &mut update);
            }
            axpy(lr_d, &update, &mut self.w[j * d..(j + 1) * d]);
        }
    }
}

/// The generator of samples: xoshiro256++ (several times faster than ChaCha per normal, and
/// sampling x is the bottleneck of a step), seeded from the ChaCha stream of its replica.
pub type SampleRng = Xoshiro256PlusPlus;

/// `n` held-out samples for Monte-Carlo estimates of eg, the same for every replica of `seed`.
pub fn test_set(sampler: &mut dyn Sampler, seed: u64, n: usize) -> Vec<Vec<f64>> {
    let mut seeder = rng(seed, stream::TEST);
    let mut key = [0u8; 32];
    seeder.fill_bytes(&mut key);
    let mut r = Xoshiro256PlusPlus::from_seed(key);
    (0..n)
        .map(|_| {
            let mut x = vec![0.0; sampler.d()];
            sampler.sample(&mut r, &mut x);
            x
        })
        .collect()
}

/// The sample generator of replica `replica` of a run seeded with `seed`.
pub fn sample_rng(seed: u64, replica: u64) -> SampleRng {
    let mut seeder = rng(seed, stream::SAMPLES + replica);
    let mut key = [0u8; 32];
    seeder.fill_bytes(&mut key);
    Xoshiro256PlusPlus::from_seed(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{eigenvectors, EigenFamily};

    /// SPEC section 3 written out naively, one neuron at a time, as the reference.
    fn reference_step(config: &SgdConfig, w: &mut [Vec<f64>], v: &mut [Vec<f64>], bias: &mut [f64], x: &[f64]) {
        let (k, d) = (w.len(), x.len());
        let (sd, lr_d) = ((d as f64).sqrt(), config.lr / d as f64);
        let act = config.activation;
        let lambda: Vec<f64> = (0..k)
            .map(|j| w[j].iter().zip(x).map(|(a, b)| a * b).sum::<f64>() / sd + bias[j])
            .collect();
        let dec: Vec<Vec<f64>> = if config.tied { w.to_vec() } else { v.to_vec() };
        let (old_w, old_dec) = (w.to_vec(), dec.clone());
        for j in 0..k {
            let upto = if config.rule == Rule::Truncated { j + 1 } else { k };
            let delta: Vec<f64> = (0..d)
                .map(|i| x[i] - (0..upto).map(|a| old_dec[a][i] * act.g(lambda[a])).sum::<f64>())
                .collect();
            let vd = old_dec[j].iter().zip(&delta).map(|(a, b)| a * b).sum::<f64>() / d as f64;
            let dec_step: Vec<f64> = delta.iter().map(|e| lr_d * act.g(lambda[j]) * e).collect();
            let enc_step: Vec<f64> = x.iter().map(|xi| lr_d * vd * act.dg(lambda[j]) * xi / sd).collect();
            for i in 0..d {
                if config.tied {
                    w[j][i] = old_w[j][i] + dec_step[i] + enc_step[i];
                } else {
                    v[j][i] = old_dec[j][i] + dec_step[i];
                    w[j][i] = old_w[j][i] + enc_step[i];
                }
            }
            if config.train_bias {
                bias[j] += lr_d * vd * act.dg(lambda[j]);
            }
        }
        let shrink = 1.0 - config.kappa / d as f64;
        for row in w.iter_mut().chain(v.iter_mut()) {
            row.iter_mut().for_each(|x| *x *= shrink);
        }
    }

    #[test]
    fn every_rule_matches_the_reference_update() {
        let d = 37;
        let weights = Weights::random(3, d, 0.5, 4);
        let x: Vec<f64> = (0..d).map(|i| ((i * 7 % 11) as f64 - 5.0) / 3.0).collect();
        for rule in [Rule::Vanilla, Rule::Truncated] {
            for tied in [false, true] {
                for train_bias in [false, true] {
                    for activation in [ActivationKind::Erf, ActivationKind::Relu, ActivationKind::Tanh] {
                        let config = SgdConfig {
                            activation,
                            rule,
                            lr: 0.8,
                            kappa: 0.3,
                            tied,
                            train_bias,
                            bias_init: 0.0,
                        };
                        let mut sgd = Sgd::new(config.clone(), &weights, vec![0.1, -0.2, 0.3]);
                        let (mut w, mut v, mut b) = (weights.w.clone(), weights.v.clone(), vec![0.1, -0.2, 0.3]);
                        for _ in 0..3 {
                            sgd.step(&x);
                            reference_step(&config, &mut w, &mut v, &mut b, &x);
                        }
                        let got = sgd.weights();
                        let expect_v = if tied { w.clone() } else { v.clone() };
                        for (a, e) in got
                            .w
                            .iter()
                            .flatten()
                            .zip(w.iter().flatten())
                            .chain(got.v.iter().flatten().zip(expect_v.iter().flatten()))
                        {
                            assert!(
                                (a - e).abs() <= 1e-12 * e.abs().max(1.0),
                                "{rule:?} tied={tied} bias={train_bias} {activation:?}: {a} vs {e}"
                            );
                        }
                        if train_bias {
                            for (a, e) in sgd.bias.iter().zip(&b) {
                                assert!((a - e).abs() <= 1e-12, "bias {a} vs {e}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn sanger_rows_converge_to_the_unit_leading_eigenvectors() {
        // SPEC section 3: for K = 3 and spikes (9, 3, 1) rows reach +-e_m with |w| = 1 by t = 30
        // (da/dt = eta a (rho~_m - Y)). The tolerance 0.05 on the overlap covers the O(1/sqrt(D))
        // fluctuations of the stationary state at D = 400 and the slow tail of the third row.
        let (k, d) = (3, 400);
        let eig = eigenvectors(EigenFamily::Random, 3, d, 2);
        let config = SgdConfig {
            rule: Rule::Sanger,
            ..SgdConfig::vanilla(ActivationKind::Linear)
        };
        let mut sgd = Sgd::new(config, &Weights::random(k, d, 0.05, 3), vec![]);
        let mut sampler = SpikedSampler::new(eig.clone(), &[9.0, 3.0, 1.0], 1.0);
        let mut rng = sample_rng(3, 0);
        sgd.run(&mut sampler, &mut rng, 30 * d as u64);
        let w = sgd.weights().w;
        for m in 0..k {
            let overlap = dot(&w[m], &eig[m]).abs();
            let norm = dot(&w[m], &w[m]).sqrt();
            assert!(
                (overlap - 1.0).abs() < 0.05 && (norm - 1.0).abs() < 0.05,
                "row {m}: overlap {overlap}, norm {norm}"
            );
        }
    }
}

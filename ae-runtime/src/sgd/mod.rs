//! Exact online SGD of docs/theory.md section 3: one fresh sample per step, time t = steps / D. Variants:
//! vanilla, truncated (neuron k sees the reconstruction of neurons j <= k), tied weights,
//! trained biases, weight decay, and Sanger's rule. Seeded: the same seed gives the same bits.

use ae_core::averages::Evaluate as _;
use rand::RngCore;
use std::collections::TryReserveError;

pub use normal::Xoshiro256PlusPlusX8;

use crate::data::{rng, stream, Weights};
use ae_core::activation::Activation;

pub(crate) mod fused;
pub mod normal;

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

/// The two rates that every variant of SGD has and that the equations model: the learning
/// rate eta and the weight decay kappa (docs/theory.md section 3). One type for the ODE job and
/// the simulator, holding the command line's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    pub lr: f64,
    pub kappa: f64,
}

impl Default for Rates {
    fn default() -> Self {
        Rates { lr: 1.0, kappa: 0.0 }
    }
}

impl Rates {
    /// The rates as the equation files name their parameters (`param lr`, `param kappa`).
    pub fn named(self) -> [(&'static str, f64); 2] {
        [("lr", self.lr), ("kappa", self.kappa)]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SgdConfig {
    pub activation: Activation,
    pub rule: Rule,
    pub rates: Rates,
    /// Decoder = encoder, one set of weights receiving both updates.
    pub tied: bool,
    /// Train a bias beta_k in each pre-activation.
    pub train_bias: bool,
    /// Initial value of every trained bias (ReLU learns best from a positive start).
    pub bias_init: f64,
    /// The paper's rescaled SGD, or SGD without the rescalings.
    pub scaling: Scaling,
}

/// How inputs, pre-activations and learning rates scale with D.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Scaling {
    /// docs/theory.md section 3: lambda = w.x/sqrt(D), steps eta/D, the encoder's further 1/D^(3/2).
    #[default]
    Rescaled,
    /// Plain SGD on (1/2)|x - x_hat|^2 (docs/theory.md section 3, "standard conditions"): lambda = w.x,
    /// v += eta g delta, w += eta g' (v.delta) x.
    Standard,
}

impl Scaling {
    /// The pre-activation of a unit whose encoder row has the product `dot` with x in
    /// dimension `d`: dot/sqrt(D) rescaled, dot itself in the standard scaling.
    #[inline(always)]
    pub fn pre_activation(self, dot: f64, d: usize) -> f64 {
        match self {
            Scaling::Rescaled => dot / (d as f64).sqrt(),
            Scaling::Standard => dot,
        }
    }
}

impl SgdConfig {
    /// Plain SGD with learning rate 1: untied, no bias, no weight decay.
    pub fn vanilla(activation: impl Into<Activation>) -> Self {
        SgdConfig {
            activation: activation.into(),
            rule: Rule::Vanilla,
            rates: Rates::default(),
            tied: false,
            train_bias: false,
            bias_init: 0.0,
            scaling: Scaling::Rescaled,
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
    /// The spikes' coefficients c_m of the sample being drawn.
    coefficients: Vec<f64>,
}

impl SpikedSampler {
    pub fn new(eig: Vec<Vec<f64>>, spikes: &[f64], sigma: f64) -> Self {
        let d = eig.first().map_or(0, |e| e.len()) as f64;
        SpikedSampler {
            amplitude: spikes.iter().map(|s| (s * d).sqrt()).collect(),
            eig,
            sigma,
            coefficients: vec![0.0; spikes.len()],
        }
    }
}

impl Sampler for SpikedSampler {
    fn d(&self) -> usize {
        self.eig.first().map_or(0, |e| e.len())
    }
    fn sample(&mut self, rng: &mut SampleRng, x: &mut [f64]) {
        rng.fill_normal(x);
        rng.fill_normal(&mut self.coefficients);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { self.add_spikes_avx2(x) };
        }
        self.add_spikes(x)
    }
}

impl SpikedSampler {
    /// x <- sigma x + sum_m sqrt(rho~_m D) c_m e_m, given the normals x and c.
    #[inline(always)]
    fn add_spikes(&self, x: &mut [f64]) {
        x.iter_mut().for_each(|xi| *xi *= self.sigma);
        for ((e, a), z) in self.eig.iter().zip(&self.amplitude).zip(&self.coefficients) {
            axpy(a * z, e, x);
        }
    }

    /// The same element-wise operations in wider vectors: the same samples.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn add_spikes_avx2(&self, x: &mut [f64]) {
        self.add_spikes(x)
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

/// Columns per block of the fused step: two AVX2 registers, and fixed-width loops the compiler
/// vectorises without changing the order of any sum.
const LANES: usize = 8;

/// Sums of `LANES` partial sums in a fixed order.
#[inline(always)]
fn lane_sum(a: &[f64; LANES]) -> f64 {
    ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
}

/// Loads `N` columns from `c` on.
#[inline(always)]
fn load<const N: usize>(row: &[f64], c: usize) -> [f64; N] {
    row[c..c + N].try_into().expect("N columns")
}

/// out[j] = decoder[j] . delta_j, where delta_j = x - sum_i g_i decoder[i] over all rows
/// (vanilla) or over rows i <= j (truncated), without storing any delta.
#[inline(always)]
fn decoder_dot_residual(
    decoder: &[f64],
    x: &[f64],
    g: &[f64],
    truncated: bool,
    acc: &mut [[f64; LANES]],
    out: &mut [f64],
) {
    #[inline(always)]
    fn block<const N: usize>(
        c: usize,
        decoder: &[f64],
        x: &[f64],
        g: &[f64],
        truncated: bool,
        acc: &mut [[f64; LANES]],
    ) {
        let d = x.len();
        let mut r: [f64; N] = load(x, c);
        if !truncated {
            for (j, gj) in g.iter().enumerate() {
                let v: [f64; N] = load(decoder, j * d + c);
                for l in 0..N {
                    r[l] -= gj * v[l];
                }
            }
        }
        for (j, (gj, sums)) in g.iter().zip(acc.iter_mut()).enumerate() {
            let v: [f64; N] = load(decoder, j * d + c);
            if truncated {
                for l in 0..N {
                    r[l] -= gj * v[l];
                }
            }
            let mut a = *sums;
            for l in 0..N {
                a[l] += v[l] * r[l];
            }
            *sums = a;
        }
    }
    let acc = &mut acc[..g.len()];
    acc.iter_mut().for_each(|a| *a = [0.0; LANES]);
    // Whole blocks of LANES columns, then the rest one at a time.
    let whole = x.len() / LANES * LANES;
    for c in (0..whole).step_by(LANES) {
        block::<LANES>(c, decoder, x, g, truncated, acc);
    }
    for c in whole..x.len() {
        block::<1>(c, decoder, x, g, truncated, acc);
    }
    for (o, a) in out.iter_mut().zip(acc.iter()) {
        *o = lane_sum(a);
    }
}

/// Networks up to this width take the fused pass (`fused`) and get the residual overlaps from
/// the decoder's Gram matrix, carried forward at O(K^3) a step; wider ones take the tile pass
/// and read the decoder a second time (`decoder_dot_residual`).
#[doc(hidden)]
pub const GRAM_MAX_K: usize = fused::MAX_K;

/// Steps between two Gram matrices summed afresh from the rows; in between it is carried forward
/// (`Sgd::carry_gram`), whose rounding errors (about 1e-16 relative a step) the refresh wipes.
const GRAM_REFRESH: u64 = 64;

/// One step's update, applied in the next step's pass: row j of the decoder gains
/// decoder[j] * delta_j, row j of the encoder encoder[j] * x, then every weight is multiplied
/// by `shrink`.
struct Update<'a> {
    g: &'a [f64],
    decoder: &'a [f64],
    encoder: &'a [f64],
    shrink: f64,
    truncated: bool,
}

/// Columns per tile of a pass: the tile's rows are updated, then summed while they are still
/// in the first-level cache, with each partial sum held in registers across the tile.
#[doc(hidden)]
pub const TILE: usize = 32 * LANES;

/// The pending update of the columns `columns` (at most `TILE`): the residual of the tile
/// from the old decoder rows, then each row. `v` is empty when the weights are tied. Plain
/// element-wise loops over slices, which the compiler vectorises.
#[inline(always)]
fn update_tile<const DECAY: bool>(
    columns: std::ops::Range<usize>,
    w: &mut [f64],
    v: &mut [f64],
    x_prev: &[f64],
    up: &Update,
    residual: &mut [f64; TILE],
) {
    let tied = v.is_empty();
    let d = x_prev.len();
    let n = columns.len();
    let xs = &x_prev[columns.clone()];
    let r = &mut residual[..n];
    r.copy_from_slice(xs);
    let row = |j: usize| j * d + columns.start..j * d + columns.end;
    if !up.truncated {
        let decoder: &[f64] = if tied { w } else { v };
        for (j, gj) in up.g.iter().enumerate() {
            for (r, dj) in r.iter_mut().zip(&decoder[row(j)]) {
                *r -= gj * dj;
            }
        }
    }
    for j in 0..up.g.len() {
        let (gj, a, b, shrink) = (up.g[j], up.decoder[j], up.encoder[j], up.shrink);
        let scale = |value: f64| if DECAY { value * shrink } else { value };
        if tied {
            let wj = &mut w[row(j)];
            if up.truncated {
                for (r, wj) in r.iter_mut().zip(wj.iter()) {
                    *r -= gj * wj;
                }
            }
            for ((wj, r), x) in wj.iter_mut().zip(r.iter()).zip(xs) {
                *wj = scale(*wj + a * r + b * x);
            }
        } else {
            let vj = &mut v[row(j)];
            if up.truncated {
                for (r, vj) in r.iter_mut().zip(vj.iter()) {
                    *r -= gj * vj;
                }
            }
            for (vj, r) in vj.iter_mut().zip(r.iter()) {
                *vj = scale(*vj + a * r);
            }
            for (wj, x) in w[row(j)].iter_mut().zip(xs) {
                *wj = scale(*wj + b * x);
            }
        }
    }
}

/// sum[l] += a[row_a + c + l] * b[row_b + c + l] over the blocks of `N` columns in
/// `columns`. Four interleaved sets of partial sums in registers (a dot product is bound by
/// the latency of its additions, not by loads), folded into `sum` in a fixed order at the end.
#[inline(always)]
fn accumulate<const N: usize>(
    sum: &mut [f64; LANES],
    a: &[f64],
    row_a: usize,
    b: &[f64],
    row_b: usize,
    columns: std::ops::Range<usize>,
) {
    let (a, b) = (
        &a[row_a + columns.start..row_a + columns.end],
        &b[row_b + columns.start..row_b + columns.end],
    );
    let (a_blocks, _) = a.as_chunks::<N>();
    let (b_blocks, _) = b.as_chunks::<N>();
    let mut acc = [[0.0; N]; 4];
    let (a_fours, a_rest) = a_blocks.as_chunks::<4>();
    let (b_fours, b_rest) = b_blocks.as_chunks::<4>();
    for (a4, b4) in a_fours.iter().zip(b_fours) {
        for s in 0..4 {
            for l in 0..N {
                acc[s][l] += a4[s][l] * b4[s][l];
            }
        }
    }
    for (a, b) in a_rest.iter().zip(b_rest) {
        for l in 0..N {
            acc[0][l] += a[l] * b[l];
        }
    }
    for l in 0..N {
        sum[l] += (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]);
    }
}

/// The sums w_j . x of the (updated) rows over the columns of one tile, `N` at a time.
#[inline(always)]
fn sum_tile<const N: usize>(columns: std::ops::Range<usize>, w: &[f64], x: &[f64], lambda: &mut [[f64; LANES]]) {
    let d = x.len();
    for (j, sum) in lambda.iter_mut().enumerate() {
        accumulate::<N>(sum, w, j * d, x, 0, columns.clone());
    }
}

/// One pass over the weights of a network wider than `GRAM_MAX_K`: the pending update against
/// `x_prev`, then the sums w_j . x (either may be absent), tile by tile.
#[inline(always)]
fn pass(
    w: &mut [f64],
    v: &mut [f64],
    x: Option<&[f64]>,
    pending: Option<(&[f64], &Update)>,
    lambda: &mut [[f64; LANES]],
    residual: &mut [f64; TILE],
) {
    lambda.iter_mut().for_each(|a| *a = [0.0; LANES]);
    let Some(d) = x.or(pending.map(|p| p.0)).map(<[f64]>::len) else {
        return;
    };
    let whole = d / LANES * LANES;
    let mut start = 0;
    while start < d {
        // Whole tiles of LANES-wide blocks, then the last columns one at a time.
        let (end, one_by_one) = if start < whole {
            ((start + TILE).min(whole), false)
        } else {
            (d, true)
        };
        if let Some((x_prev, update)) = pending {
            // The product by the weight decay's factor only where there is weight decay (by 1
            // it would change nothing, at a sixth of the update's operations).
            if update.shrink == 1.0 {
                update_tile::<false>(start..end, w, v, x_prev, update, residual);
            } else {
                update_tile::<true>(start..end, w, v, x_prev, update, residual);
            }
        }
        if let Some(x) = x {
            if one_by_one {
                sum_tile::<1>(start..end, w, x, lambda);
            } else {
                sum_tile::<LANES>(start..end, w, x, lambda);
            }
        }
        start = end;
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
    x_prev: Vec<f64>,
    /// One tile's residual, kept here so that a pass neither allocates nor clears it.
    residual: Box<[f64; TILE]>,
    acc: Vec<[f64; LANES]>,
    sum_lambda: Vec<[f64; LANES]>,
    /// The decoder's Gram matrix (K x K, row-major) for the rows as they are after the pending
    /// update (K <= GRAM_MAX_K): summed afresh every `GRAM_REFRESH` steps, carried forward
    /// by the update's own algebra in between (see `carry_gram`).
    gram: Vec<f64>,
    lambda: Vec<f64>,
    /// v_j . x of the step's sample (w_j . x when tied).
    decoder_x: Vec<f64>,
    g: Vec<f64>,
    dg: Vec<f64>,
    vd: Vec<f64>,
    decoder_step: Vec<f64>,
    encoder_step: Vec<f64>,
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
            x_prev: vec![0.0; d],
            residual: Box::new([0.0; TILE]),
            acc: vec![[0.0; LANES]; k],
            sum_lambda: vec![[0.0; LANES]; k],
            gram: vec![0.0; if k > GRAM_MAX_K { 0 } else { k * k }],
            lambda: vec![0.0; k],
            decoder_x: vec![0.0; k],
            g: vec![0.0; k],
            dg: vec![0.0; k],
            vd: vec![0.0; k],
            decoder_step: vec![0.0; k],
            encoder_step: vec![0.0; k],
        }
    }

    /// Time t = steps / D.
    pub fn time(&self) -> f64 {
        self.steps as f64 / self.d as f64
    }

    /// The flat encoder and decoder rows, the biases and the carried Gram matrix, as the
    /// runtime's own tests (`tests/internals`) check them.
    #[doc(hidden)]
    pub fn raw_state(&self) -> (&[f64], &[f64], &[f64], &[f64]) {
        (&self.w, &self.v, &self.bias, &self.gram)
    }

    pub fn weights(&self) -> Weights {
        let rows = |m: &[f64]| m.chunks(self.d).map(|r| r.to_vec()).collect::<Vec<_>>();
        Weights {
            w: rows(&self.w),
            v: if self.config.tied { rows(&self.w) } else { rows(&self.v) },
        }
    }

    /// The weights in docs/theory.md section 1's scaling, whatever the run's: the network computes the
    /// same function with w.x/sqrt(D) from encoder rows multiplied by sqrt(D), so the order
    /// parameters and eg of a standard run are those of these weights.
    pub fn rescaled_weights(&self) -> Weights {
        let mut weights = self.weights();
        if self.config.scaling == Scaling::Standard {
            let sqrt_d = (self.d as f64).sqrt();
            weights.w.iter_mut().flatten().for_each(|x| *x *= sqrt_d);
        }
        weights
    }

    /// |w_k| and |v_k| of every unit, in the run's own scaling.
    pub fn norms(&self) -> (Vec<f64>, Vec<f64>) {
        let d = self.d;
        let norm = |row: &[f64]| dot(row, row).sqrt();
        (
            (0..self.k).map(|j| norm(&self.w[j * d..(j + 1) * d])).collect(),
            (0..self.k)
                .map(|j| norm(decoder_row(&self.config, &self.w, &self.v, j, d)))
                .collect(),
        )
    }

    /// The network's reconstruction of `x`.
    pub fn reconstruct(&self, x: &[f64], out: &mut [f64]) {
        self.reconstruct_first(self.k, x, out)
    }

    /// The reconstruction of `x` by the first `units` neurons alone (a partial reconstruction).
    pub fn reconstruct_first(&self, units: usize, x: &[f64], out: &mut [f64]) {
        let d = self.d;
        out.iter_mut().for_each(|o| *o = 0.0);
        for j in 0..units.min(self.k) {
            let lambda = self
                .config
                .scaling
                .pre_activation(dot(&self.w[j * d..(j + 1) * d], x), d)
                + self.bias[j];
            axpy(
                self.config.activation.g(lambda),
                decoder_row(&self.config, &self.w, &self.v, j, d),
                out,
            );
        }
    }

    /// Monte-Carlo generalisation error on a held-out set: the mean of ||x - x_hat||^2 / (2D).
    pub fn test_error(&self, test: &[Vec<f64>]) -> f64 {
        self.partial_test_error(self.k, test)
    }

    /// The same for the reconstruction by the first `units` neurons alone.
    pub fn partial_test_error(&self, units: usize, test: &[Vec<f64>]) -> f64 {
        let mut xhat = vec![0.0; self.d];
        let total: f64 = test
            .iter()
            .map(|x| {
                self.reconstruct_first(units, x, &mut xhat);
                x.iter().zip(&xhat).map(|(a, b)| (a - b) * (a - b)).sum::<f64>()
            })
            .sum();
        total / (2.0 * self.d as f64 * test.len() as f64)
    }

    /// Runs `n` steps on fresh samples. Each step's update is applied in the next step's pass
    /// over the weights (and the last one in a final pass), so the weights are read and
    /// written once per step; on return they are exactly those of `n` calls of `step`.
    pub fn run(&mut self, sampler: &mut dyn Sampler, rng: &mut SampleRng, n: u64) {
        let mut x = std::mem::take(&mut self.x);
        if self.config.rule == Rule::Sanger {
            for _ in 0..n {
                sampler.sample(rng, &mut x);
                self.step(&x);
            }
            self.x = x;
            return;
        }
        if n == 0 {
            self.x = x;
            return;
        }
        let mut x_prev = std::mem::take(&mut self.x_prev);
        sampler.sample(rng, &mut x);
        self.advance(Some(&x), None);
        for _ in 1..n {
            std::mem::swap(&mut x, &mut x_prev);
            sampler.sample(rng, &mut x);
            self.advance(Some(&x), Some(&x_prev));
        }
        self.advance(None, Some(&x));
        self.x = x;
        self.x_prev = x_prev;
    }

    /// One SGD step on sample `x`.
    pub fn step(&mut self, x: &[f64]) {
        if self.config.rule == Rule::Sanger {
            self.sanger_step(x);
            let shrink = 1.0 - self.config.rates.kappa / self.d as f64;
            self.w.iter_mut().for_each(|w| *w *= shrink);
            self.steps += 1;
            return;
        }
        self.advance(Some(x), None);
        self.advance(None, Some(x));
    }

    /// One pass: the pending update of the step on `x_prev` (if any), then the pre-activations
    /// and residual overlaps of a step on `x` (if any), whose update becomes the pending one.
    fn advance(&mut self, x: Option<&[f64]>, x_prev: Option<&[f64]>) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { self.advance_avx2(x, x_prev) };
        }
        self.advance_portable(x, x_prev)
    }

    /// The same operations in the same order as the portable path (Rust does not fuse or
    /// reassociate floating-point operations), in wider vectors: bit-identical weights.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn advance_avx2(&mut self, x: Option<&[f64]>, x_prev: Option<&[f64]>) {
        self.advance_portable(x, x_prev)
    }

    #[inline(always)]
    #[doc(hidden)]
    pub fn advance_portable(&mut self, x: Option<&[f64]>, x_prev: Option<&[f64]>) {
        let (k, d) = (self.k, self.d);
        let truncated = self.config.rule == Rule::Truncated;
        let tied = self.config.tied;
        // Exactly 1 without weight decay, so the product then changes nothing.
        let shrink = 1.0 - self.config.rates.kappa / d as f64;
        let with_gram = !self.gram.is_empty();
        let v: &mut [f64] = if tied { &mut [] } else { &mut self.v };
        // The fused pass returns its sums; the tile pass leaves its own in `sum_lambda`.
        let fused_sums = if with_gram {
            let pending = x_prev.map(|x_prev| fused::Pending {
                x_prev,
                g: &self.g,
                decoder: &self.decoder_step,
                encoder: &self.encoder_step,
                shrink,
            });
            // The last pass of a run has no new sample: it sums against the old one, unused.
            let Some(summed) = x.or(x_prev) else { return };
            let rows = fused::Rows {
                w: &mut self.w,
                v,
                x: summed,
                k,
                truncated,
            };
            Some(fused::pass(rows, pending.as_ref()))
        } else {
            let update = Update {
                g: &self.g,
                decoder: &self.decoder_step,
                encoder: &self.encoder_step,
                shrink,
                truncated,
            };
            pass(
                &mut self.w,
                v,
                x,
                x_prev.map(|p| (p, &update)),
                &mut self.sum_lambda,
                &mut self.residual,
            );
            None
        };
        let Some(x) = x else { return };
        match &fused_sums {
            Some(sums) => {
                self.lambda.copy_from_slice(&sums.lambda[..k]);
                self.decoder_x
                    .copy_from_slice(if tied { &sums.lambda[..k] } else { &sums.decoder_x[..k] });
            }
            None => {
                for (lambda, sum) in self.lambda.iter_mut().zip(&self.sum_lambda) {
                    *lambda = lane_sum(sum);
                }
            }
        }
        // The Gram matrix of the updated decoder is summed afresh every GRAM_REFRESH steps
        // (and at the first), and carried forward in between.
        if with_gram && self.steps.is_multiple_of(GRAM_REFRESH) {
            let row = |r: usize| decoder_row(&self.config, &self.w, &self.v, r, d);
            for j in 0..k {
                for i in 0..=j {
                    let value = dot(row(j), row(i));
                    self.gram[i * k + j] = value;
                    self.gram[j * k + i] = value;
                }
            }
        }

        let sqrt_d = (d as f64).sqrt();
        let lr_d = self.config.rates.lr / d as f64;
        let act = self.config.activation;
        let standard = self.config.scaling == Scaling::Standard;
        for j in 0..k {
            let lambda = self.config.scaling.pre_activation(self.lambda[j], d) + self.bias[j];
            (self.g[j], self.dg[j]) = act.g_dg(lambda);
        }
        if !with_gram {
            let decoder = if tied { &self.w } else { &self.v };
            decoder_dot_residual(decoder, x, &self.g, truncated, &mut self.acc, &mut self.vd);
        } else {
            // v_j . delta_j = v_j . x - sum_i g_i v_j . v_i over the rows i in delta_j.
            for j in 0..k {
                let upto = if truncated { j + 1 } else { k };
                let mut overlap = self.decoder_x[j];
                for i in 0..upto {
                    overlap -= self.g[i] * self.gram[j * k + i];
                }
                self.vd[j] = overlap;
            }
        }
        if standard {
            let lr = self.config.rates.lr;
            for j in 0..k {
                self.decoder_step[j] = lr * self.g[j];
                self.encoder_step[j] = lr * self.vd[j] * self.dg[j];
                if self.config.train_bias {
                    self.bias[j] += lr * self.vd[j] * self.dg[j];
                }
            }
        } else {
            for j in 0..k {
                self.vd[j] /= d as f64;
                self.decoder_step[j] = lr_d * self.g[j];
                self.encoder_step[j] = lr_d * self.vd[j] * self.dg[j] / sqrt_d;
                if self.config.train_bias {
                    self.bias[j] += lr_d * self.vd[j] * self.dg[j];
                }
            }
        }
        if let Some(sums) = fused_sums {
            self.carry_gram(sums.xx);
        }
        self.steps += 1;
    }

    /// The Gram matrix of the decoder rows after the pending update, from the one before it:
    /// row j becomes s (u_j + a_j delta_j + c_j x) (a: the decoder step, c: the encoder step
    /// when the rows are tied, else 0; s: the weight decay's factor), and every product of two
    /// such rows is a sum of products the step already knows: u_i . u_j (the Gram matrix),
    /// u_i . x, x . x, and through them u_i . delta_j, delta_i . x and delta_i . delta_j.
    /// O(K^3) numbers instead of K(K+1)/2 products of D-vectors a step.
    fn carry_gram(&mut self, xx: f64) {
        let k = self.k;
        let truncated = self.config.rule == Rule::Truncated;
        let tied = self.config.tied;
        let upto = |j: usize| if truncated { j + 1 } else { k };
        let (g, dx, gram) = (&self.g, &self.decoder_x, &self.gram);
        // p[i * k + j] = u_i . delta_j, q[i] = delta_i . x.
        let mut p = [0.0; GRAM_MAX_K * GRAM_MAX_K];
        let mut q = [0.0; GRAM_MAX_K];
        for j in 0..k {
            for i in 0..k {
                let mut value = dx[i];
                for l in 0..upto(j) {
                    value -= g[l] * gram[i * k + l];
                }
                p[i * k + j] = value;
            }
            let mut value = xx;
            for l in 0..upto(j) {
                value -= g[l] * dx[l];
            }
            q[j] = value;
        }
        let a = &self.decoder_step;
        let c = |j: usize| if tied { self.encoder_step[j] } else { 0.0 };
        let shrink = 1.0 - self.config.rates.kappa / self.d as f64;
        let mut next = [0.0; GRAM_MAX_K * GRAM_MAX_K];
        for i in 0..k {
            for j in 0..=i {
                // delta_i . delta_j = q_i + q_j - x.x + sum_{l in delta_i} g_l (u_l . x - u_l . delta_j).
                let mut dd = q[i] + q[j] - xx;
                for l in 0..upto(i) {
                    dd += g[l] * (dx[l] - p[l * k + j]);
                }
                let (ci, cj) = (c(i), c(j));
                let value = gram[i * k + j]
                    + a[j] * p[i * k + j]
                    + a[i] * p[j * k + i]
                    + a[i] * a[j] * dd
                    + cj * dx[i]
                    + ci * dx[j]
                    + a[i] * cj * q[i]
                    + ci * a[j] * q[j]
                    + ci * cj * xx;
                let value = value * shrink * shrink;
                next[i * k + j] = value;
                next[j * k + i] = value;
            }
        }
        self.gram.copy_from_slice(&next[..k * k]);
    }

    /// W <- W + (eta/D)(y x^T/sqrt(D) - tril(y y^T) W), y = W x / sqrt(D) (linear, encoder only).
    fn sanger_step(&mut self, x: &[f64]) {
        let (k, d) = (self.k, self.d);
        let sqrt_d = (d as f64).sqrt();
        let lr_d = self.config.rates.lr / d as f64;
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

/// The generator of samples: eight xoshiro256++ lanes with a batched ziggurat (drawing x is
/// most of a step; see `normal`), seeded from the ChaCha stream of its replica.
pub type SampleRng = Xoshiro256PlusPlusX8;

/// A sample generator keyed by 32 bytes of `seeder` per lane.
fn keyed(seeder: &mut impl RngCore) -> SampleRng {
    let mut key = [0u8; 32 * crate::sgd::normal::STREAMS];
    seeder.fill_bytes(&mut key);
    Xoshiro256PlusPlusX8::from_seed_bytes(&key)
}

/// `n` held-out samples for Monte-Carlo estimates of eg, the same for every replica of `seed`;
/// memory that cannot be had is an error, not an abort.
pub fn test_set(sampler: &mut dyn Sampler, seed: u64, n: usize) -> Result<Vec<Vec<f64>>, TryReserveError> {
    let mut r = keyed(&mut rng(seed, stream::TEST));
    let d = sampler.d();
    let mut rows = Vec::new();
    rows.try_reserve_exact(n)?;
    for _ in 0..n {
        let mut x = Vec::new();
        x.try_reserve_exact(d)?;
        x.resize(d, 0.0);
        sampler.sample(&mut r, &mut x);
        rows.push(x);
    }
    Ok(rows)
}

/// The sample generator of replica `replica` of a run seeded with `seed`.
pub fn sample_rng(seed: u64, replica: u64) -> SampleRng {
    keyed(&mut rng(seed, stream::SAMPLES + replica))
}

//! Exact averages for a user's continuous piecewise-linear activation (a hard tanh
//! `(abs(x + 1) - abs(x - 1))/2`, a shifted or clipped ReLU): every such g is
//! `a + b x + sum_i d_i (x - k_i)_+`, so its averages and their gradients are sums of
//! bivariate normal probabilities and densities (docs/theory.md section 5), not quadrature over
//! its kinks.
//!
//! Notation: for (x1, x2) Gaussian with variances c11, c22 and covariance c12, `s = sqrt(c)`,
//! `rho = c12 / (s1 s2)`, `sigma = sqrt(1 - rho^2)`, and for kinks k (of x1) and m (of x2) the
//! standardised `h = k / s1`, `l = m / s2`. Then, with `L = P(U > h, V > l)` for standard
//! (U, V) of correlation rho,
//!
//!   E[1{x1 > k} 1{x2 > m}] = L,
//!   E[(x1 - k)_+ (x2 - m)_+] = s1 s2 [(rho + h l) L - l phi(h) A - h phi(l) B + sigma phi(l) phi(b)],
//!
//! where `A = P(V > l | U = h) = Phi((rho h - l) / sigma)`, `B` likewise with h and l swapped,
//! and `b = (h - rho l) / sigma`. Both stay finite as sigma reaches 0 (one unit seen twice), where
//! A and B become steps. A kink's Dirac part in g'' enters through the density of x1 at the
//! kink times the conditional average of the other variable: E[g''(x1) f(x2)] =
//! sum_i d_i phi_c11(k_i) E[f(x2) | x1 = k_i].

use std::f64::consts::PI;
use std::sync::OnceLock;

use ae_dsl::ir::Avg;

use crate::quadrature::gauss_legendre;

/// More kinks than this are left to the quadrature (the pair sums grow as their square).
const MAX_KINKS: usize = 16;

/// `g(x) = offset + slope x + sum (x - k) d` over `kinks` (k, d): g' jumps by d at k.
#[derive(Debug, Clone, PartialEq)]
pub struct PiecewiseLinear {
    offset: f64,
    slope: f64,
    kinks: Vec<(f64, f64)>,
}

/// In the gradients, a correlation within this (in sigma) of +-1, or a conditional spread this
/// small relative to the variable's, is one unit seen twice. Rounding alone leaves sigma near
/// 1e-8 where the covariance is exactly degenerate, and the left-out terms (of order 1/sigma,
/// with coefficients that cancel only to rounding) would swamp the entries.
const SINGULAR: f64 = 1e-6;

const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

fn phi(x: f64) -> f64 {
    INV_SQRT_2PI * (-0.5 * x * x).exp()
}

/// P(Z > x) for a standard normal Z, accurate in the far tail (no 1 - Phi cancellation).
fn upper(x: f64) -> f64 {
    0.5 * libm::erfc(x * std::f64::consts::FRAC_1_SQRT_2)
}

/// P(Z > num / width), with the step it becomes at width 0 (1/2 on the step itself, as the
/// language's `sign` is 0 there).
pub(crate) fn tail(num: f64, width: f64) -> f64 {
    if width > 0.0 {
        upper(num / width)
    } else if num < 0.0 {
        1.0
    } else if num > 0.0 {
        0.0
    } else {
        0.5
    }
}

/// width phi(num / width), 0 at width 0.
fn spread(num: f64, width: f64) -> f64 {
    if width > 0.0 {
        width * phi(num / width)
    } else {
        0.0
    }
}

/// phi(num / width) / width, the density of N(0, width^2) at num; its Dirac limit at width 0
/// is left out (see `PiecewiseLinear::gradient`).
pub(crate) fn density(num: f64, width: f64) -> f64 {
    if width > 0.0 {
        phi(num / width) / width
    } else {
        0.0
    }
}

/// Gauss-Legendre rules of 6, 12 and 20 nodes on [-1, 1], computed once.
fn legendre_rules() -> &'static [(Vec<f64>, Vec<f64>); 3] {
    static RULES: OnceLock<[(Vec<f64>, Vec<f64>); 3]> = OnceLock::new();
    RULES.get_or_init(|| [gauss_legendre(6), gauss_legendre(12), gauss_legendre(20)])
}

/// P(U > h, V > l) for standard normals of correlation `r`, to about 1e-15: Genz's algorithm
/// (A. Genz, "Numerical computation of rectangular bivariate and trivariate normal and t
/// probabilities", Statistics and Computing 14, 2004), after Drezner and Wesolowsky: a
/// Gauss-Legendre rule over the arcsine of the correlation, and for |r| >= 0.925 an expansion
/// around r = +-1 whose remainder is integrated instead.
fn upper_orthant(h: f64, l: f64, r: f64) -> f64 {
    let rules = legendre_rules();
    let (x, w) = if r.abs() < 0.3 {
        &rules[0]
    } else if r.abs() < 0.75 {
        &rules[1]
    } else {
        &rules[2]
    };
    let mut hk = h * l;
    if r.abs() < 0.925 {
        let hs = (h * h + l * l) / 2.0;
        let asr = r.asin();
        let sum: f64 = x
            .iter()
            .zip(w)
            .map(|(x, w)| {
                let sn = (asr * (1.0 + x) / 2.0).sin();
                w * ((sn * hk - hs) / (1.0 - sn * sn)).exp()
            })
            .sum();
        return sum * asr / (4.0 * PI) + upper(h) * upper(l);
    }
    let k = if r < 0.0 {
        hk = -hk;
        -l
    } else {
        l
    };
    let mut bvn = 0.0;
    if r.abs() < 1.0 {
        let a_s = (1.0 - r) * (1.0 + r);
        let mut a = a_s.sqrt();
        let bs = (h - k) * (h - k);
        let c = (4.0 - hk) / 8.0;
        let d = (12.0 - hk) / 16.0;
        bvn = a
            * (-(bs / a_s + hk) / 2.0).exp()
            * (1.0 - c * (bs - a_s) * (1.0 - d * bs / 5.0) / 3.0 + c * d * a_s * a_s / 5.0);
        if hk > -160.0 {
            let b = bs.sqrt();
            bvn -=
                (-hk / 2.0).exp() * (2.0 * PI).sqrt() * upper(b / a) * b * (1.0 - c * bs * (1.0 - d * bs / 5.0) / 3.0);
        }
        a /= 2.0;
        for (x, w) in x.iter().zip(w) {
            let xs = (a * (x + 1.0)).powi(2);
            let rs = (1.0 - xs).sqrt();
            let asr = -(bs / xs + hk) / 2.0;
            if asr > -100.0 {
                bvn += a
                    * w
                    * asr.exp()
                    * ((-hk * (1.0 - rs) / (2.0 * (1.0 + rs))).exp() / rs - (1.0 + c * xs * (1.0 + d * xs)));
            }
        }
        bvn = -bvn / (2.0 * PI);
    }
    if r > 0.0 {
        bvn + upper(h.max(k))
    } else {
        // P(h < U < k) less the remainder, with U's two tails kept accurate.
        let between = if k > h { upper(h) - upper(k) } else { 0.0 };
        (-bvn + between).max(0.0)
    }
}

/// One pair of variables: scales, correlation and what the pair sums share.
pub(crate) struct Pair {
    s1: f64,
    s2: f64,
    rho: f64,
    sigma: f64,
}

impl Pair {
    /// None where a variance is 0 or not finite (the quadrature takes those).
    pub(crate) fn new(c11: f64, c12: f64, c22: f64) -> Option<Pair> {
        if !(c11 > 0.0 && c22 > 0.0 && c11.is_finite() && c22.is_finite() && c12.is_finite()) {
            return None;
        }
        let (s1, s2) = (c11.sqrt(), c22.sqrt());
        // One unit seen twice gives |rho| = 1 only to a few ulps; taken as exactly 1, so that
        // its averages do not carry the sqrt(rounding) noise of sigma (about 1e-8).
        let rho = (c12 / (s1 * s2)).clamp(-1.0, 1.0);
        let rho = if 1.0 - rho.abs() < 1e-15 { rho.signum() } else { rho };
        let sigma = ((1.0 - rho) * (1.0 + rho)).sqrt();
        Some(Pair { s1, s2, rho, sigma })
    }

    /// P(x1 > k, x2 > m).
    pub(crate) fn both_above(&self, k: f64, m: f64) -> f64 {
        let (h, l) = (k / self.s1, m / self.s2);
        if self.sigma == 0.0 {
            return if self.rho > 0.0 {
                upper(h.max(l))
            } else if -l > h {
                upper(h) - upper(-l)
            } else {
                0.0
            };
        }
        upper_orthant(h, l, self.rho)
    }

    /// E[(x1 - k)_+ (x2 - m)_+].
    fn ramps(&self, k: f64, m: f64) -> f64 {
        let (h, l, rho, sigma) = (k / self.s1, m / self.s2, self.rho, self.sigma);
        let both = self.both_above(k, m);
        let a = tail(l - rho * h, sigma);
        let b = tail(h - rho * l, sigma);
        self.s1
            * self.s2
            * ((rho + h * l) * both - l * phi(h) * a - h * phi(l) * b + phi(l) * spread(h - rho * l, sigma))
    }

    /// The partial derivatives of `both_above(k, m)` with respect to (c11, c12, c22), leaving out
    /// the correlation's term where sigma is 0 (see `PiecewiseLinear::gradient`).
    fn both_above_grad(&self, k: f64, m: f64) -> [f64; 3] {
        let (h, l, rho, sigma) = (k / self.s1, m / self.s2, self.rho, self.sigma);
        let d_h = -phi(h) * tail(l - rho * h, sigma);
        let d_l = -phi(l) * tail(h - rho * l, sigma);
        let d_rho = if sigma < SINGULAR {
            0.0
        } else {
            phi(h) * density(l - rho * h, sigma)
        };
        let (c11, c22) = (self.s1 * self.s1, self.s2 * self.s2);
        [
            d_h * (-h / (2.0 * c11)) + d_rho * (-rho / (2.0 * c11)),
            d_rho / (self.s1 * self.s2),
            d_l * (-l / (2.0 * c22)) + d_rho * (-rho / (2.0 * c22)),
        ]
    }
}

/// phi_c(k), the density of N(0, c) at k, and its derivative in c.
fn kink_density(k: f64, c: f64) -> (f64, f64) {
    let p = phi(k / c.sqrt()) / c.sqrt();
    (p, p * (k * k / (2.0 * c * c) - 1.0 / (2.0 * c)))
}

impl PiecewiseLinear {
    /// The piecewise-linear function that `g` is, if it is one with its kinks among `kinks`:
    /// slopes are read between the kinks, and the result must match g to 1e-12 of its terms'
    /// size at 1281 points spanning |x| <= 64 and on both sides of every kink. None for no
    /// kinks (smooth activations have their own routes) or more than `MAX_KINKS`.
    pub fn of(g: impl Fn(f64) -> f64, kinks: &[f64]) -> Option<PiecewiseLinear> {
        let mut points: Vec<f64> = kinks.iter().copied().filter(|k| k.is_finite()).collect();
        points.sort_by(f64::total_cmp);
        points.dedup();
        if points.is_empty() || points.len() > MAX_KINKS {
            return None;
        }
        let (first, last) = (points[0], points[points.len() - 1]);
        let slope_between = |p: f64, q: f64| {
            let (u, v) = (p + (q - p) / 4.0, q - (q - p) / 4.0);
            (g(v) - g(u)) / (v - u)
        };
        let slope = slope_between(first - 2.0, first);
        let mut previous = slope;
        let mut found = Vec::new();
        for (i, &k) in points.iter().enumerate() {
            let next = points.get(i + 1).copied().unwrap_or(last + 2.0);
            let s = slope_between(k, next);
            found.push((k, s - previous));
            previous = s;
        }
        let offset = g(first) - slope * first;
        let scale = found.iter().map(|(_, d)| d.abs()).fold(slope.abs(), f64::max);
        found.retain(|(_, d)| d.abs() > 1e-13 * scale);
        let model = PiecewiseLinear {
            offset,
            slope,
            kinks: found,
        };
        let wide = (-640..=640).map(|i| f64::from(i) / 10.0);
        let near = points
            .iter()
            .flat_map(|k| (0..=8).flat_map(move |e| [k - 10f64.powi(-e), *k, k + 10f64.powi(-e)]));
        // The size of the terms a spelling of g may round: `(abs(x) - abs(x - 6) + 6)/2` is 0
        // left of 0 only to the rounding of numbers near 6.
        let fits = wide.chain(near).all(|x| {
            let size = offset.abs()
                + (slope * x).abs()
                + model
                    .kinks
                    .iter()
                    .map(|(k, d)| d.abs() * (x.abs() + k.abs()))
                    .sum::<f64>();
            (g(x) - model.g(x)).abs() <= 1e-12 * size.max(1e-300)
        });
        let finite = offset.is_finite() && slope.is_finite() && model.kinks.iter().all(|(_, d)| d.is_finite());
        (fits && finite && !model.kinks.is_empty()).then_some(model)
    }

    pub fn g(&self, x: f64) -> f64 {
        self.offset + self.slope * x + self.kinks.iter().map(|(k, d)| d * (x - k).max(0.0)).sum::<f64>()
    }

    /// E[g(x)] and E[g'(x)], x ~ N(0, c), c > 0.
    fn means(&self, c: f64) -> (f64, f64) {
        let s = c.sqrt();
        let (mut mean, mut mean_slope) = (self.offset, self.slope);
        for &(k, d) in &self.kinks {
            let h = k / s;
            mean += d * s * (phi(h) - h * upper(h));
            mean_slope += d * upper(h);
        }
        (mean, mean_slope)
    }

    /// dE[g'(x)]/dc, x ~ N(0, c): half the sum of E[g'''] (d phi_c(k) k / (2c) per kink).
    fn mean_slope_grad(&self, c: f64) -> f64 {
        self.kinks
            .iter()
            .map(|&(k, d)| d * kink_density(k, c).0 * k / (2.0 * c))
            .sum()
    }

    /// E[g(y)], E[g'(y)] and E[g''(y)] (its Dirac parts' densities) for y ~ N(mean, width^2).
    fn conditional(&self, mean: f64, width: f64) -> [f64; 3] {
        let mut out = [self.offset + self.slope * mean, self.slope, 0.0];
        for &(k, d) in &self.kinks {
            let t = tail(k - mean, width);
            out[0] += d * ((mean - k) * t + spread(k - mean, width));
            out[1] += d * t;
            out[2] += d * density(k - mean, width);
        }
        out
    }

    /// E[g''(x1) g(x2)] and, with `GRAD`, its gradient in (c11, c12, c22) (else zeros): the
    /// kinks' Dirac parts, each the density of x1 at the kink times g's average given x1 there.
    fn second_and_value<const GRAD: bool>(&self, c11: f64, c12: f64, c22: f64) -> (f64, [f64; 3]) {
        // Zero where the pair is one unit to rounding, as `Pair::new` takes it.
        let v = c22 - c12 * c12 / c11;
        let v = if v < 2e-15 * c22 { 0.0 } else { v };
        let width = v.sqrt();
        let (mut value, mut grad) = (0.0, [0.0; 3]);
        for &(k, d) in &self.kinks {
            let (p, dp) = kink_density(k, c11);
            let mean = c12 * k / c11;
            let [e, e_mean, e_second] = self.conditional(mean, width);
            // dE/dv = E[g''] / 2 (Price); left out where the conditional variance is 0.
            let e_var = if width < SINGULAR * c22.sqrt() {
                0.0
            } else {
                e_second / 2.0
            };
            value += d * p * e;
            if GRAD {
                grad[0] += d * (dp * e + p * (e_mean * (-mean / c11) + e_var * c12 * c12 / (c11 * c11)));
                grad[1] += d * p * (e_mean * k / c11 - e_var * 2.0 * c12 / c11);
                grad[2] += d * p * e_var;
            }
        }
        (value, grad)
    }

    /// E[g'(x1) g'(x2)] and, with `GRAD`, its gradient in (c11, c12, c22) (else zeros).
    fn slopes<const GRAD: bool>(&self, pair: &Pair, c11: f64, c22: f64) -> (f64, [f64; 3]) {
        let (b, m1, m2) = (self.slope, self.means(c11).1, self.means(c22).1);
        let mut value = b * (m1 + m2 - b);
        let mut grad = [0.0; 3];
        if GRAD {
            grad = [b * self.mean_slope_grad(c11), 0.0, b * self.mean_slope_grad(c22)];
        }
        for &(k, dk) in &self.kinks {
            for &(m, dm) in &self.kinks {
                value += dk * dm * pair.both_above(k, m);
                if GRAD {
                    for (g, p) in grad.iter_mut().zip(pair.both_above_grad(k, m)) {
                        *g += dk * dm * p;
                    }
                }
            }
        }
        (value, grad)
    }

    /// E[g(x1) g(x2)].
    fn values(&self, pair: &Pair, c11: f64, c12: f64, c22: f64) -> f64 {
        let (a, b) = (self.offset, self.slope);
        let ((e1, m1), (e2, m2)) = (self.means(c11), self.means(c22));
        let mut value = a * (e1 + e2 - a) + b * c12 * (m1 + m2 - b);
        for &(k, dk) in &self.kinks {
            for &(m, dm) in &self.kinks {
                value += dk * dm * pair.ramps(k, m);
            }
        }
        value
    }

    /// Average `avg` at covariance entries `c` (the order of [`crate::averages::Averages`]);
    /// None where a variance the closed forms divide by is 0 (the caller's quadrature takes it).
    pub fn average(&self, avg: Avg, c: &[f64]) -> Option<f64> {
        match avg {
            Avg::I2 => {
                let pair = Pair::new(c[0], c[1], c[2])?;
                Some(self.values(&pair, c[0], c[1], c[2]))
            }
            Avg::J2 => (c[2] > 0.0).then(|| c[1] * self.means(c[2]).1),
            // E[g'(x1) x1 x2] = c12 (E[g'] + E[x g'']), E[x g''] = sum d k phi_c11(k).
            Avg::I21 => (c[0] > 0.0).then(|| c[1] * (self.means(c[0]).1 + self.moment(c[0]).0)),
            // E[g'(x1) x2^2] = c22 E[g'] + c12^2 E[g'''], E[g'''] = sum d k phi_c11(k) / c11.
            Avg::I22 => (c[0] > 0.0).then(|| c[2] * self.means(c[0]).1 + c[1] * c[1] * self.moment(c[0]).0 / c[0]),
            // Stein's lemma on x2: c12 E[g''(x1) g(x3)] + c23 E[g'(x1) g'(x3)].
            Avg::I3 => {
                let pair = Pair::new(c[0], c[2], c[5])?;
                let second = self.second_and_value::<false>(c[0], c[2], c[5]).0;
                Some(c[1] * second + c[4] * self.slopes::<false>(&pair, c[0], c[5]).0)
            }
        }
    }

    /// sum d k phi_c(k) (= E[x g''(x)], x ~ N(0, c)) and its derivative in c.
    fn moment(&self, c: f64) -> (f64, f64) {
        self.kinks.iter().fold((0.0, 0.0), |(v, g), &(k, d)| {
            let (p, dp) = kink_density(k, c);
            (v + d * k * p, g + d * k * dp)
        })
    }

    /// The gradient of `average` in its arguments. Where one unit is seen twice (sigma = 0, a
    /// conditional variance 0), the terms of the correlation's derivative are infinite or
    /// undefined at a shared kink; they are left out there, as ReLU's closed forms do: their
    /// coefficients cancel along the directions in which the covariance can move while the
    /// two variables stay one, so the result is the gradient of the restricted function.
    pub fn gradient(&self, avg: Avg, c: &[f64]) -> Option<Vec<f64>> {
        match avg {
            Avg::I2 => {
                let pair = Pair::new(c[0], c[1], c[2])?;
                let first = self.second_and_value::<false>(c[0], c[1], c[2]).0;
                let last = self.second_and_value::<false>(c[2], c[1], c[0]).0;
                Some(vec![first / 2.0, self.slopes::<false>(&pair, c[0], c[2]).0, last / 2.0])
            }
            Avg::J2 => (c[2] > 0.0).then(|| vec![0.0, self.means(c[2]).1, c[1] * self.mean_slope_grad(c[2])]),
            Avg::I21 => (c[0] > 0.0).then(|| {
                let (x, dx) = self.moment(c[0]);
                vec![c[1] * (self.mean_slope_grad(c[0]) + dx), self.means(c[0]).1 + x, 0.0]
            }),
            Avg::I22 => (c[0] > 0.0).then(|| {
                let (x, dx) = self.moment(c[0]);
                let third = (c[1] * c[1]) * (dx / c[0] - x / (c[0] * c[0]));
                vec![
                    c[2] * self.mean_slope_grad(c[0]) + third,
                    2.0 * c[1] * x / c[0],
                    self.means(c[0]).1,
                ]
            }),
            Avg::I3 => {
                let pair = Pair::new(c[0], c[2], c[5])?;
                let (second, ds) = self.second_and_value::<true>(c[0], c[2], c[5]);
                let (slopes, dm) = self.slopes::<true>(&pair, c[0], c[5]);
                let (c12, c23) = (c[1], c[4]);
                Some(vec![
                    c12 * ds[0] + c23 * dm[0],
                    second,
                    c12 * ds[1] + c23 * dm[1],
                    0.0,
                    slopes,
                    c12 * ds[2] + c23 * dm[2],
                ])
            }
        }
    }
}

#[cfg(test)]
mod tests;

//! I2 of an activation that jumps (a step, `tanh(x) + sign(x - 0.3)/2`): with g = h + the sum of
//! c_k 1{x > k} and h continuous, I2 is h's own I2, whose series converge as a continuous
//! function's do, plus one-variable averages of h against the other unit's probability of
//! passing a jump, plus orthant probabilities of pairs of jumps (docs/theory.md section 5). A
//! jump's Hermite coefficients decay like n^(-3/4), too slowly for any series at strong
//! correlations, where g's own I2 goes to the two-variable quadrature.

use std::cell::RefCell;

use crate::mehler::{keep, Map, Series};
use crate::piecewise::{tail, Pair};
use crate::quadrature::{chol2, expect1_features, feature_width, Smooth};

/// Where g jumps and by how much: (k, c), g(k+) - g(k-) = c.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Jumps(pub Vec<(f64, f64)>);

/// `g` less its jumps: continuous, with g's derivatives between them (`cache_id`: `id`).
pub struct Continuous<'a, S: ?Sized> {
    pub g: &'a S,
    pub jumps: &'a Jumps,
    /// Of h, as [`Smooth::continuous_derivatives`] (at least 1: h is continuous).
    pub continuous_derivatives: usize,
    pub id: u64,
}

impl Jumps {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The sum of c 1{x > k}, with 1/2 at a jump itself (as the language's `sign` is 0 there).
    pub fn value(&self, x: f64) -> f64 {
        self.0.iter().map(|&(k, c)| c * tail(k - x, 0.0)).sum()
    }

    /// I2 of `h.g`, or None where a variance is 0 or not finite (the caller's usual path takes
    /// those). Kept per thread: a differenced Jacobian asks again for every pair but the
    /// one whose covariance it moved.
    pub fn i2<S: Smooth + ?Sized>(&self, h: &Continuous<S>, c11: f64, c12: f64, c22: f64) -> Option<f64> {
        let key = [h.id, c11.to_bits(), c12.to_bits(), c22.to_bits()];
        if let Some(v) = CACHE.with(|c| c.borrow().get(&key).copied()) {
            return Some(v);
        }
        let v = self.i2_afresh(h, Pair::new(c11, c12, c22)?, c11, c12, c22);
        keep(&CACHE, key, v);
        Some(v)
    }

    /// `pair` takes one unit seen twice as exactly that: the orthant probabilities grow like
    /// sqrt(1 - r) there, and the last bit of a rounded r = 1 moved them by 2e-9, noise that a
    /// differenced Jacobian turns into garbage (Rodas4 took 25 times the steps to t = 10 on a
    /// step).
    fn i2_afresh<S: Smooth + ?Sized>(&self, h: &Continuous<S>, pair: Pair, c11: f64, c12: f64, c22: f64) -> f64 {
        let mut sum = Series(h).i2(c11, c12, c22);
        for &(m, c) in &self.0 {
            sum += c * (passing(h, c11, c12, c22, m) + passing(h, c22, c12, c11, m));
        }
        for &(k, a) in &self.0 {
            for &(m, b) in &self.0 {
                sum += a * b * pair.both_above(k, m);
            }
        }
        sum
    }
}

thread_local! {
    static CACHE: RefCell<Map<[u64; 4], f64>> = RefCell::new(Map::default());
}

/// Empties this thread's cache of I2 values (see `mehler::clear_caches`).
pub(crate) fn clear_cache() {
    CACHE.with(|c| c.borrow_mut().clear());
}

/// E[h(x1) 1{x2 > m}] = E[h(s1 z) P(x2 > m | x1 = s1 z)], where x2 given x1 is normal with
/// mean (c12 / s1) z and variance c22 - c12^2 / c11: a one-variable average whose factor
/// P(Z > (m - b z) / sigma) turns over around z = m / b on a scale sigma / |b| (a step at
/// sigma = 0), a feature beside h's own (at 0 and at its kinks).
fn passing<S: Smooth + ?Sized>(h: &Continuous<S>, c11: f64, c12: f64, c22: f64, m: f64) -> f64 {
    // sigma = 0 for one unit seen twice, as in `Jumps::i2`.
    let (s1, b, sigma) = chol2(c11, c12, c22);
    let mut centers = vec![0.0];
    centers.extend(h.kinks().iter().map(|k| k / s1));
    let mut d = feature_width(s1);
    if b != 0.0 {
        centers.push(m / b);
        if sigma > 0.0 {
            d = d.min(feature_width(b.abs() / sigma));
        }
    }
    expect1_features(&centers, d, |z| h.g(s1 * z) * tail(m - b * z, sigma))
}

impl<S: Smooth + ?Sized> Smooth for Continuous<'_, S> {
    fn g(&self, x: f64) -> f64 {
        self.g.g(x) - self.jumps.value(x)
    }
    fn dg(&self, x: f64) -> f64 {
        self.g.dg(x)
    }
    fn d2g(&self, x: f64) -> f64 {
        self.g.d2g(x)
    }
    fn d3g(&self, x: f64) -> f64 {
        self.g.d3g(x)
    }
    /// g's kinks, but none where h is smooth at all of them (where g only jumps, between
    /// smooth pieces), so that its rules need no panels there.
    fn kinks(&self) -> &[f64] {
        if self.continuous_derivatives >= 4 {
            &[]
        } else {
            self.g.kinks()
        }
    }
    fn continuous_derivatives(&self) -> usize {
        self.continuous_derivatives
    }
    fn all(&self, x: f64) -> [f64; 4] {
        let mut all = self.g.all(x);
        all[0] -= self.jumps.value(x);
        all
    }
    fn cache_id(&self) -> u64 {
        self.id
    }
}

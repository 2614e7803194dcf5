//! I2 and I3 of an activation that jumps (a step, `tanh(x) + sign(x - 0.3)/2`): with g = h + the
//! sum of c_k 1{x > k} and h continuous, each is h's own average, whose series converge as a
//! continuous function's do, plus one-variable averages of h (or h') against the other unit's
//! passing a jump, plus (I2) orthant probabilities of pairs of jumps (docs/theory.md section
//! 5). A jump's Hermite coefficients decay like n^(-3/4), too slowly for any series at strong
//! correlations, where g's own averages go to the two-variable quadrature.

use std::cell::RefCell;

use crate::mehler::{remembered, Map, Series};
use crate::piecewise::{density, tail, Pair};
use crate::quadrature::{chol2, expect1_features, feature_width, singular_features, widest_panel, Smooth};

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
        let pair = Pair::new(c11, c12, c22)?;
        let key = [h.id, c11.to_bits(), c12.to_bits(), c22.to_bits()];
        Some(remembered(&CACHE, key, || self.i2_afresh(h, pair, c11, c12, c22)))
    }

    /// J2 of `h.g`, E[x1 g(x2)] = c12 E[g'(x2)] (Stein), where g' has a Dirac part c delta(x - k)
    /// at each jump: c12 (E[h'(x2)] + sum c phi_(s2)(k)). None where x2's variance is 0 or an
    /// entry is not finite (the caller's quadrature takes those).
    pub fn j2<S: Smooth + ?Sized>(&self, h: &Continuous<S>, c11: f64, c12: f64, c22: f64) -> Option<f64> {
        if !(c22 > 0.0 && [c11, c12, c22].iter().all(|v| v.is_finite())) {
            return None;
        }
        let s2 = c22.sqrt();
        let dirac: f64 = self.0.iter().map(|&(k, c)| c * density(k, s2)).sum();
        Some(Series(h).j2(c11, c12, c22) + c12 * dirac)
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

    /// I3 of `h.g`, E[g'(x1) x2 g(x3)] with g' the pointwise derivative (no Dirac part, as in
    /// the simulator's update): g' = h' between the jumps, so I3 is h's own I3 plus, for each
    /// jump, E[h'(x1) x2 1{x3 > m}]. None where x1's variance is 0 or an entry is not finite
    /// (the caller's usual path takes those). Kept per thread, as I2.
    pub fn i3<S: Smooth + ?Sized>(&self, h: &Continuous<S>, c: [f64; 6]) -> Option<f64> {
        let [c11, c12, c13, c22, c23, c33] = c;
        if !(c11 > 0.0 && c22 >= 0.0 && c33 >= 0.0 && c.iter().all(|v| v.is_finite())) {
            return None;
        }
        let key = [
            h.id,
            c11.to_bits(),
            c12.to_bits(),
            c13.to_bits(),
            c22.to_bits(),
            c23.to_bits(),
            c33.to_bits(),
        ];
        Some(remembered(&CACHE_I3, key, || {
            let own = Series(h).i3(c11, c12, c13, c22, c23, c33);
            own + self
                .0
                .iter()
                .map(|&(m, c)| c * weighted_passing(h, [c11, c12, c13, c23, c33], m))
                .sum::<f64>()
        }))
    }
}

/// E[f([s1, b, sigma], z)] over z ~ N(0, 1), for a function of x1 = s1 z times a function of
/// where x3 stands against a jump at `m`: given x1, x3 is normal with mean b z and deviation
/// sigma (0 for one unit seen twice), and its probability of passing m turns over around
/// z = m / b on a scale sigma / |b| (a step at sigma = 0), a feature beside h's own (at 0, at
/// its kinks and at its near singularities).
fn passing_expect<S: Smooth + ?Sized>(
    h: &Continuous<S>,
    [c11, c13, c33]: [f64; 3],
    m: f64,
    f: impl Fn([f64; 3], f64) -> f64,
) -> f64 {
    let (s1, b, sigma) = chol2(c11, c13, c33);
    let mut centers = vec![0.0];
    centers.extend(h.kinks().iter().map(|k| k / s1));
    let mut d = feature_width(s1);
    if b != 0.0 {
        centers.push(m / b);
        if sigma > 0.0 {
            d = d.min(feature_width(b.abs() / sigma));
        }
    }
    let mut singular = Vec::new();
    singular_features(h, s1, 0.0, &mut singular);
    expect1_features(&centers, d, &singular, widest_panel(h, s1), |z| f([s1, b, sigma], z))
}

/// E[h'(x1) x2 1{x3 > m}] (`c` = c11, c12, c13, c23, c33). By Stein's lemma on x2 it is
/// c12 E[h''(x1) 1{x3 > m}] + c23 E[h'(x1) delta(x3 - m)], two Mehler series, where h' is
/// continuous (so that h'' has no Dirac part) and they converge. Else by quadrature: given
/// x1 = s1 z, x2 has mean (c12 / s1) z and covariance v23 = c23 - c12 c13 / c11 with x3, so
/// E[x2 1{x3 > m} | x1] is that mean times x3's probability of passing m, plus v23 times x3's
/// density at m.
fn weighted_passing<S: Smooth + ?Sized>(h: &Continuous<S>, c: [f64; 5], m: f64) -> f64 {
    let [c11, c12, c13, c23, c33] = c;
    if h.continuous_derivatives >= 2 {
        let series = Series(h);
        let by_series = series
            .passing([c11, c13, c33], m, 2)
            .zip(series.at_level([c11, c13, c33], m, 1));
        if let Some((second, first)) = by_series {
            return c12 * second + c23 * first;
        }
    }
    let v23 = c23 - c12 * c13 / c11;
    passing_expect(h, [c11, c13, c33], m, |[s1, b, sigma], z| {
        let u = m - b * z;
        h.dg(s1 * z) * (c12 / s1 * z * tail(u, sigma) + v23 * density(u, sigma))
    })
}

thread_local! {
    static CACHE: RefCell<Map<[u64; 4], f64>> = RefCell::new(Map::default());
    static CACHE_I3: RefCell<Map<[u64; 7], f64>> = RefCell::new(Map::default());
}

/// Empties this thread's caches of I2 and I3 values (see `mehler::clear_caches`).
pub(crate) fn clear_cache() {
    CACHE.with(|c| c.borrow_mut().clear());
    CACHE_I3.with(|c| c.borrow_mut().clear());
}

/// E[h(x1) 1{x2 > m}]: by Mehler's series (`Series::passing`) where they converge, else as
/// E[h(s1 z) P(x2 > m | x1 = s1 z)], where x2 given x1 is normal with mean b z and variance
/// c22 - c12^2 / c11 (see `passing_expect`).
fn passing<S: Smooth + ?Sized>(h: &Continuous<S>, c11: f64, c12: f64, c22: f64, m: f64) -> f64 {
    if let Some(v) = Series(h).passing([c11, c12, c22], m, 0) {
        return v;
    }
    passing_expect(h, [c11, c12, c22], m, |[s1, b, sigma], z| {
        h.g(s1 * z) * tail(m - b * z, sigma)
    })
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
    fn singularities(&self) -> &[(f64, f64)] {
        self.g.singularities()
    }
    fn widest_panel(&self) -> f64 {
        self.g.widest_panel()
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

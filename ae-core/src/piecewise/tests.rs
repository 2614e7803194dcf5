//! Tests of the piecewise-linear closed forms: against the two-variable quadrature, Monte
//! Carlo and central differences.

use super::*;
use crate::quadrature::{Quad, Smooth};

/// A piecewise-linear function as the quadrature sees it (g' its one-sided mean at a kink).
struct Pieces {
    model: PiecewiseLinear,
    kinks: Vec<f64>,
}

impl Pieces {
    fn new(offset: f64, slope: f64, kinks: &[(f64, f64)]) -> Pieces {
        Pieces {
            model: PiecewiseLinear {
                offset,
                slope,
                kinks: kinks.to_vec(),
            },
            kinks: kinks.iter().map(|k| k.0).collect(),
        }
    }
}

impl Smooth for Pieces {
    fn g(&self, x: f64) -> f64 {
        self.model.g(x)
    }
    fn dg(&self, x: f64) -> f64 {
        let step = |k: f64| match x.total_cmp(&k) {
            std::cmp::Ordering::Greater => 1.0,
            std::cmp::Ordering::Equal => 0.5,
            std::cmp::Ordering::Less => 0.0,
        };
        self.model.slope + self.model.kinks.iter().map(|&(k, d)| d * step(k)).sum::<f64>()
    }
    fn d2g(&self, _x: f64) -> f64 {
        0.0
    }
    fn d3g(&self, _x: f64) -> f64 {
        0.0
    }
    fn kinks(&self) -> &[f64] {
        &self.kinks
    }
    fn cache_id(&self) -> u64 {
        7
    }
}

fn hard_tanh() -> Pieces {
    Pieces::new(-1.0, 0.0, &[(-1.0, 1.0), (1.0, -1.0)])
}

/// An offset, a slope and three kinks of either sign, none at 0.
fn uneven() -> Pieces {
    Pieces::new(0.3, 0.2, &[(-1.2, -0.7), (0.4, 1.5), (2.1, -0.6)])
}

#[test]
fn piecewise_linear_functions_are_found_and_others_are_not() {
    let found = PiecewiseLinear::of(|x: f64| x.clamp(-1.0, 1.0), &[-1.0, 1.0]).unwrap();
    assert_eq!(found, hard_tanh().model);
    let clipped = PiecewiseLinear::of(|x: f64| x.clamp(0.0, 6.0), &[0.0, 6.0]).unwrap();
    assert_eq!(clipped.kinks, vec![(0.0, 1.0), (6.0, -1.0)]);
    // The same spelt with abs, which leaves rounding errors where it is 0.
    let spelt = PiecewiseLinear::of(|x: f64| (x.abs() - (x - 6.0).abs() + 6.0) / 2.0, &[0.0, 6.0]);
    assert_eq!(spelt.unwrap().kinks, clipped.kinks);
    // A kink the language reports but g does not have is dropped.
    let shifted = PiecewiseLinear::of(|x: f64| (x - 0.5).max(0.0), &[0.5, 3.0]).unwrap();
    assert_eq!(shifted.kinks, vec![(0.5, 1.0)]);
    // Read from values, the uneven function's numbers are exact to rounding.
    let (u, read) = (
        uneven(),
        PiecewiseLinear::of(|x| uneven().model.g(x), &uneven().kinks).unwrap(),
    );
    let close = |a: f64, b: f64| (a - b).abs() < 1e-13;
    assert!(close(read.offset, u.model.offset) && close(read.slope, u.model.slope));
    assert_eq!(read.kinks.len(), 3);
    for ((k, d), (kk, dd)) in read.kinks.iter().zip(&u.model.kinks) {
        assert!(k == kk && close(*d, *dd), "{read:?}");
    }
    // Curved pieces, a jump, a kink the list lacks, no kinks at all.
    assert!(PiecewiseLinear::of(|x: f64| x * x.abs(), &[0.0]).is_none());
    assert!(PiecewiseLinear::of(|x: f64| x.clamp(-1.0, 1.0).tanh(), &[-1.0, 1.0]).is_none());
    assert!(PiecewiseLinear::of(|x: f64| if x > 0.0 { 1.0 } else { 0.0 }, &[0.0]).is_none());
    assert!(PiecewiseLinear::of(|x: f64| x.clamp(-1.0, 1.0), &[-1.0]).is_none());
    assert!(PiecewiseLinear::of(|x: f64| x, &[]).is_none());
}

/// P(U > h, V > l) as a one-variable integral, int_h^inf phi(u) P(V > l | u) du, with panels
/// graded towards the step of P(V > l | u) at u = l / r (width sigma / r): 20-point
/// Gauss-Legendre per panel, exact to rounding for these smooth pieces.
fn orthant_by_integral(h: f64, l: f64, r: f64) -> f64 {
    let sigma = ((1.0 - r) * (1.0 + r)).sqrt();
    let (x, w) = gauss_legendre(20);
    let (start, end) = (h, h.max(0.0) + 40.0);
    let mut edges = vec![start, end];
    let mut e = start;
    while e < end {
        e += 0.25;
        edges.push(e.min(end));
    }
    let step = l / r;
    for j in -3..14 {
        for side in [-1.0, 1.0] {
            let at = step + side * sigma * 2f64.powi(j) / r.abs();
            if at > start && at < end {
                edges.push(at);
            }
        }
    }
    edges.sort_by(f64::total_cmp);
    edges.dedup();
    let f = |u: f64| phi(u) * upper((l - r * u) / sigma);
    edges
        .windows(2)
        .map(|p| {
            let (mid, half) = ((p[0] + p[1]) / 2.0, (p[1] - p[0]) / 2.0);
            x.iter().zip(&w).map(|(x, w)| w * half * f(mid + half * x)).sum::<f64>()
        })
        .sum()
}

/// Genz's orthant probabilities against the integral, in each of the algorithm's three
/// ranges of the correlation and near +-1, where its expansion takes over. Both are exact to
/// rounding; 1e-13 leaves room for the integral's sum of a few thousand terms.
#[test]
fn orthant_probabilities_match_their_integral() {
    for &r in &[0.0, 0.2, -0.29, 0.5, -0.7, 0.8, 0.93, -0.95, 0.999, -0.99999, 0.9999999] {
        for &(h, l) in &[
            (0.0, 0.0),
            (1.0, -1.0),
            (-0.3, 0.7),
            (2.0, 2.5),
            (-2.0, -1.5),
            (0.5, 0.5),
        ] {
            let (fast, slow) = (upper_orthant(h, l, r), orthant_by_integral(h, l, r));
            assert!((fast - slow).abs() < 1e-13, "h {h} l {l} r {r}: {fast} against {slow}");
        }
    }
}

/// A covariance of three variables from a factor L (C = L L^T), in the averages' order.
fn covariances(l: [[f64; 3]; 3]) -> ([f64; 3], [f64; 6]) {
    let cov = |i: usize, j: usize| (0..3).map(|m| l[i][m] * l[j][m]).sum::<f64>();
    (
        [cov(0, 0), cov(0, 1), cov(1, 1)],
        [cov(0, 0), cov(0, 1), cov(0, 2), cov(1, 1), cov(1, 2), cov(2, 2)],
    )
}

/// The factors the comparisons run at: generic, strongly and exactly correlated (x3 = x1, as
/// where a unit meets itself), anti-correlated, wide and narrow.
fn factors() -> Vec<[[f64; 3]; 3]> {
    vec![
        [[1.1, 0.0, 0.0], [0.4, 0.9, 0.0], [-0.3, 0.5, 0.7]],
        [[0.8, 0.0, 0.0], [0.3, 0.6, 0.0], [0.799, 0.1, 0.03]],
        [[1.3, 0.0, 0.0], [0.2, 1.1, 0.0], [1.3, 0.0, 0.0]],
        [[0.9, 0.0, 0.0], [-0.85, 0.2, 0.0], [-0.5, -0.4, 0.3]],
        [[3.0, 0.0, 0.0], [1.0, 2.5, 0.0], [2.0, -1.0, 1.5]],
        [[0.2, 0.0, 0.0], [0.1, 0.15, 0.0], [0.05, 0.1, 0.2]],
    ]
}

fn averages_of(model: &PiecewiseLinear, c2: &[f64; 3], c3: &[f64; 6]) -> [f64; 5] {
    [
        model.average(Avg::I2, c2).unwrap(),
        model.average(Avg::J2, c2).unwrap(),
        model.average(Avg::I21, c2).unwrap(),
        model.average(Avg::I22, c2).unwrap(),
        model.average(Avg::I3, c3).unwrap(),
    ]
}

/// Every average against the quadrature, which resolves the kinks with panels and is held to
/// 1e-10 (`activations` tests); 1e-9 allows for both.
#[test]
fn closed_forms_match_the_quadrature() {
    for pieces in [hard_tanh(), uneven()] {
        let q = Quad(&pieces);
        for l in factors() {
            let (c2, c3) = covariances(l);
            let exact = averages_of(&pieces.model, &c2, &c3);
            let quadrature = [
                q.i2(c2[0], c2[1], c2[2]),
                q.j2(c2[0], c2[1], c2[2]),
                q.i21(c2[0], c2[1], c2[2]),
                q.i22(c2[0], c2[1], c2[2]),
                q.i3(c3[0], c3[1], c3[2], c3[3], c3[4], c3[5]),
            ];
            for (i, (e, q)) in exact.iter().zip(quadrature).enumerate() {
                assert!((e - q).abs() < 1e-9, "{l:?} average {i}: {e} against {q}");
            }
            // I2 of one variable with itself (the diagonal).
            let same = pieces.model.average(Avg::I2, &[c2[0], c2[0], c2[0]]).unwrap();
            assert!((same - q.i2(c2[0], c2[0], c2[0])).abs() < 1e-9);
        }
    }
}

/// Every average of the uneven function against Monte Carlo: 2e6 samples give standard errors
/// below 1.5e-3 on these averages (of order 1), so 7e-3 is about five of them.
#[test]
fn closed_forms_agree_with_monte_carlo() {
    let pieces = uneven();
    let l = factors()[0];
    let (c2, c3) = covariances(l);
    let exact = averages_of(&pieces.model, &c2, &c3);
    let sampled = crate::testing::monte_carlo_averages(l, |x| pieces.g(x), |x| pieces.dg(x), 2_000_000, 11);
    for (s, e) in sampled.iter().zip(exact) {
        assert!((s - e).abs() < 7e-3, "{s} against {e}");
    }
}

/// Central difference of `avg` along `direction` (step 1e-5: rounding 1e-16 / 1e-5 and
/// curvature 1e-10 both far below the 1e-7 the gradients are held to).
fn difference(model: &PiecewiseLinear, avg: Avg, c: &[f64], direction: &[f64]) -> f64 {
    let h = 1e-5;
    let at = |s: f64| c.iter().zip(direction).map(|(c, d)| c + s * d).collect::<Vec<f64>>();
    (model.average(avg, &at(h)).unwrap() - model.average(avg, &at(-h)).unwrap()) / (2.0 * h)
}

#[test]
fn gradients_are_the_averages_derivatives() {
    for pieces in [hard_tanh(), uneven()] {
        let model = &pieces.model;
        for l in [factors()[0], factors()[3], factors()[4]] {
            let (c2, c3) = covariances(l);
            for (avg, c) in crate::testing::every_average(&c2, &c3) {
                let grad = model.gradient(avg, c).unwrap();
                for i in 0..c.len() {
                    let mut unit = vec![0.0; c.len()];
                    unit[i] = 1.0;
                    let numeric = difference(model, avg, c, &unit);
                    assert!(
                        (grad[i] - numeric).abs() < 1e-7,
                        "{avg:?} {i}: {} against {numeric}",
                        grad[i]
                    );
                }
            }
        }
    }
}

/// Where one unit is seen twice (x3 = x1 in I3, x2 = x1 in I2) the covariance can only move
/// with both variables: the gradient's entries summed along that direction are the derivative
/// of the restricted average.
#[test]
fn gradients_of_one_unit_seen_twice_follow_the_unit() {
    for pieces in [hard_tanh(), uneven()] {
        let model = &pieces.model;
        let c3 = [1.3, 0.4, 1.3, 0.9, 0.4, 1.3];
        let grad = model.gradient(Avg::I3, &c3).unwrap();
        let along = grad[0] + grad[2] + grad[5];
        let numeric = difference(model, Avg::I3, &c3, &[1.0, 0.0, 1.0, 0.0, 0.0, 1.0]);
        assert!((along - numeric).abs() < 1e-7, "I3: {along} against {numeric}");
        let c2 = [0.7, 0.7, 0.7];
        let grad = model.gradient(Avg::I2, &c2).unwrap();
        let numeric = difference(model, Avg::I2, &c2, &[1.0, 1.0, 1.0]);
        assert!((grad.iter().sum::<f64>() - numeric).abs() < 1e-7);
    }
}

/// A variance of 0 is left to the quadrature, not divided by.
#[test]
fn a_zero_variance_is_declined() {
    let model = hard_tanh().model;
    assert!(model.average(Avg::I2, &[0.0, 0.0, 1.0]).is_none());
    assert!(model.average(Avg::I3, &[1.0, 0.2, 0.0, 1.0, 0.1, 0.0]).is_none());
    assert!(model.gradient(Avg::I22, &[0.0, 0.0, 1.0]).is_none());
}

/// Hostile covariances (variances from 1e-12 to 1e6, correlations a rounding error from +-1,
/// one unit seen twice, a kink far out in the tails) give finite averages and gradients, never
/// NaN: the closed forms or the quadrature they decline to.
#[test]
fn extreme_covariances_give_finite_numbers() {
    for pieces in [hard_tanh(), uneven()] {
        let model = &pieces.model;
        for &(c11, c22) in &[(1e-12, 1.0), (1.0, 1e-12), (1e6, 1e6), (1e-12, 1e6), (0.3f64, 0.3f64)] {
            let s = (c11 * c22).sqrt();
            for &r in &[0.0, 0.5, 1.0 - 1e-14, -1.0 + 1e-14, 1.0, -1.0] {
                let c2 = [c11, r * s, c22];
                let c3 = [c11, 0.1 * c11.sqrt(), r * s, 1.0, 0.2 * c22.sqrt(), c22];
                for (avg, c) in crate::testing::every_average(&c2, &c3) {
                    if let Some(v) = model.average(avg, c) {
                        assert!(v.is_finite(), "{avg:?} at {c:?}: {v}");
                    }
                    if let Some(g) = model.gradient(avg, c) {
                        assert!(g.iter().all(|x| x.is_finite()), "{avg:?} gradient at {c:?}: {g:?}");
                    }
                }
            }
        }
    }
}

//! Exact averages for a user's positively homogeneous activation (a ramp such as
//! `(x + abs(x))/2`, a leaky ReLU or `abs(x)`): every such g is `b x + k relu(x)`, so its
//! averages are ReLU's closed forms and linear terms, not quadrature over a kink.

use ae_dsl::ir::Avg;

use crate::averages::{Averages, Relu};

/// `g(x) = below * x + kink * relu(x)`: slope `below` left of 0, `below + kink` right of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ramp {
    pub below: f64,
    pub kink: f64,
}

impl Ramp {
    /// The ramp that `g` is, if it is one: `g(x) = below * x + kink * relu(x)` to 1e-12 of
    /// the terms' size at 1281 points spanning |x| <= 64 (where the averages look; see
    /// `CHECKED_RANGE` of the compiler) and at small |x| down to 1e-6.
    pub fn of(g: impl Fn(f64) -> f64) -> Option<Ramp> {
        let below = -g(-1.0);
        let kink = g(1.0) - below;
        let ramp = Ramp { below, kink };
        let wide = (-640..=640).map(|i| f64::from(i) / 10.0);
        let small = (1..=6).flat_map(|e| [10f64.powi(-e), -(10f64.powi(-e))]);
        let fits = wide.chain(small).all(|x| {
            let want = ramp.g(x);
            let size = (below * x).abs() + (kink * x.max(0.0)).abs();
            (g(x) - want).abs() <= 1e-12 * size
        });
        (fits && below.is_finite() && kink.is_finite()).then_some(ramp)
    }

    pub fn g(self, x: f64) -> f64 {
        self.below * x + self.kink * x.max(0.0)
    }

    /// The linear part's weight in the averages with one g and one g' or x (`E[x1 g(x2)] =
    /// C12 (below + kink/2)`, as `E[x relu(y)] = E[1{x>0} x y] = C/2`).
    fn mean_slope(self) -> f64 {
        self.below + 0.5 * self.kink
    }

    /// Average `avg` at covariance entries `c` (the order of [`Averages`]).
    pub fn average(self, avg: Avg, c: &[f64]) -> f64 {
        let (b, k) = (self.below, self.kink);
        // ReLU's part, left out for a linear g (its I3 is 0/0 where x1 has variance 0).
        let relu = |f: &dyn Fn() -> f64| if k == 0.0 { 0.0 } else { k * k * f() };
        match avg {
            // E[(b x1 + k r1)(b x2 + k r2)] = b² C12 + b k C12 + k² I2_relu.
            Avg::I2 => (b * b + b * k) * c[1] + relu(&|| Relu::i2(c[0], c[1], c[2])),
            Avg::J2 | Avg::I21 => self.mean_slope() * c[1],
            Avg::I22 => self.mean_slope() * c[2],
            // E[(b + k 1{x1>0}) x2 (b x3 + k r3)] = (b² + b k) C23 + k² I3_relu.
            Avg::I3 => (b * b + b * k) * c[4] + relu(&|| Relu::i3(c[0], c[1], c[2], c[3], c[4], c[5])),
        }
    }

    /// The gradient of `average` with respect to its arguments, exact (ReLU's are).
    pub fn gradient(self, avg: Avg, c: &[f64]) -> Vec<f64> {
        let (b, k) = (self.below, self.kink);
        let scaled = |g: &[f64]| {
            g.iter()
                .map(|v| if k == 0.0 { 0.0 } else { k * k * v })
                .collect::<Vec<f64>>()
        };
        match avg {
            Avg::I2 => {
                let mut g = scaled(&Relu::i2_grad(c[0], c[1], c[2]));
                g[1] += b * b + b * k;
                g
            }
            Avg::J2 | Avg::I21 => vec![0.0, self.mean_slope(), 0.0],
            Avg::I22 => vec![0.0, 0.0, self.mean_slope()],
            Avg::I3 => {
                let mut g = scaled(&Relu::i3_grad(c[0], c[1], c[2], c[3], c[4], c[5]));
                g[4] += b * b + b * k;
                g
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaky(x: f64) -> f64 {
        (x + 3.0 * x.abs()) / 4.0
    }

    #[test]
    fn ramps_are_found_and_other_functions_are_not() {
        assert_eq!(Ramp::of(|x: f64| x.max(0.0)), Some(Ramp { below: 0.0, kink: 1.0 }));
        assert_eq!(Ramp::of(leaky), Some(Ramp { below: -0.5, kink: 1.5 }));
        assert_eq!(Ramp::of(f64::abs), Some(Ramp { below: -1.0, kink: 2.0 }));
        assert!(Ramp::of(|x: f64| (x - 0.5).max(0.0)).is_none());
        assert!(Ramp::of(|x: f64| x.clamp(-1.0, 1.0)).is_none());
        assert!(Ramp::of(f64::tanh).is_none());
        // Homogeneous near 0 only: the check reaches |x| = 64.
        assert!(Ramp::of(|x: f64| if x.abs() < 20.0 { x.max(0.0) } else { 0.0 }).is_none());
    }

    /// Every average of a leaky ramp against Monte Carlo: 4e6 samples give a standard error
    /// of about 1e-3 on averages of order 1, so 5e-3 is five standard errors.
    #[test]
    fn ramp_averages_agree_with_monte_carlo() {
        let ramp = Ramp::of(leaky).unwrap();
        let dg = |x: f64| if x > 0.0 { 1.0 } else { -0.5 };
        // A covariance of three variables, from a fixed factor L (C = L Lᵀ).
        let l = [[1.1, 0.0, 0.0], [0.4, 0.9, 0.0], [-0.3, 0.5, 0.7]];
        let cov = |i: usize, j: usize| (0..3).map(|m| l[i][m] * l[j][m]).sum::<f64>();
        let c2 = [cov(0, 0), cov(0, 1), cov(1, 1)];
        let c3 = [cov(0, 0), cov(0, 1), cov(0, 2), cov(1, 1), cov(1, 2), cov(2, 2)];
        let sampled = crate::testing::monte_carlo_averages(l, leaky, dg, 4_000_000, 7);
        let exact = [
            ramp.average(Avg::I2, &c2),
            ramp.average(Avg::J2, &c2),
            ramp.average(Avg::I21, &c2),
            ramp.average(Avg::I22, &c2),
            ramp.average(Avg::I3, &c3),
        ];
        for (s, e) in sampled.iter().zip(exact) {
            assert!((s - e).abs() < 5e-3, "{s} against {e}");
        }
    }

    /// The gradients against central differences of the averages (step 1e-6: the error is of
    /// order 1e-12 / 1e-6 from rounding plus 1e-12 from curvature).
    #[test]
    fn ramp_gradients_are_the_averages_derivatives() {
        let ramp = Ramp::of(leaky).unwrap();
        let c2 = [1.3, 0.4, 0.8];
        let c3 = [1.3, 0.4, -0.2, 0.8, 0.3, 1.1];
        for (avg, c) in crate::testing::every_average(&c2, &c3) {
            let grad = ramp.gradient(avg, c);
            for i in 0..c.len() {
                let h = 1e-6;
                let (mut up, mut down) = (c.to_vec(), c.to_vec());
                up[i] += h;
                down[i] -= h;
                let numeric = (ramp.average(avg, &up) - ramp.average(avg, &down)) / (2.0 * h);
                assert!(
                    (grad[i] - numeric).abs() < 1e-8,
                    "{avg:?} {i}: {} against {numeric}",
                    grad[i]
                );
            }
        }
    }
}

//! The averages and their gradients by Mehler series: each reduced by Stein's lemma to pairs
//! of g's derivatives and to their means, with the quadrature wherever a series is refused.

use std::rc::Rc;

use super::sums::promising;
use super::{
    correlation, expansion, products, same_variable, series, series_fourth, series_x, Expansion, ORDERS, TOLERANCE,
};
use crate::piecewise::{density, tail};
use crate::quadrature::{Quad, Smooth};

/// The averages of a quadrature activation by Mehler series, with the quadrature where a
/// series does not meet its tolerance (a correlation near 1 at a large variance, kinks).
pub struct Series<'a, S: ?Sized>(pub &'a S);

impl<S: Smooth + ?Sized> Series<'_, S> {
    /// Whether g, g', ..., g^(n-1) are continuous, so that g^(n) is a function: the reductions
    /// that move derivatives onto g (Stein's lemma, Price's theorem) take derivatives up to
    /// g^(n) from their values, and a derivative beyond a jump has a Dirac part that no series
    /// or rule of values sees. Averages and gradients that need more go to the quadrature.
    fn continuous(&self, n: usize) -> bool {
        self.0.continuous_derivatives() >= n
    }

    /// E[g^(a)(x1) g^(b)(x2)], or None where neither series nor the pair's quadrature serve.
    fn pair(&self, c11: f64, c12: f64, c22: f64, a: usize, b: usize) -> Option<f64> {
        self.pairs(c11, c12, c22, [(a, b)]).map(|[v]| v)
    }

    /// The expansions at (c11, c22) of the first order whose series meet the tolerance for
    /// every (a, b) of `pairs` (so that a gradient's entries come from one order).
    fn pairs<const N: usize>(&self, c11: f64, c12: f64, c22: f64, pairs: [(usize, usize); N]) -> Option<[f64; N]> {
        let r = correlation(c11, c12, c22)?;
        if same_variable(c11, c22, r) {
            let e = expansion(self.0, c11, ORDERS[0]);
            return Some(pairs.map(|(a, b)| e.product(a, b)));
        }
        if r.abs() > 1.0 - 1e-9 {
            return None;
        }
        self.over_orders(c11, c22, r, &pairs, |e1, e2| {
            let mut out = [0.0; N];
            for (o, (a, b)) in out.iter_mut().zip(pairs) {
                *o = series(e1, e2, r, a, b)?;
            }
            Some(out)
        })
        .or_else(|| {
            let m = products(self.0, c11, c12, c22)?;
            Some(pairs.map(|(a, b)| m[a][b]))
        })
    }

    /// E[g^(j)(x)], x ~ N(0, c).
    fn mean(&self, c: f64, j: usize) -> f64 {
        expansion(self.0, c, ORDERS[0]).mean(j)
    }

    pub fn i2(&self, c11: f64, c12: f64, c22: f64) -> f64 {
        self.pair(c11, c12, c22, 0, 0)
            .unwrap_or_else(|| Quad(self.0).i2(c11, c12, c22))
    }

    pub fn j2(&self, c11: f64, c12: f64, c22: f64) -> f64 {
        // E[x1 g(x2)] = c12 E[g'(x2)], where g' has no Dirac part (g continuous).
        match correlation(c11, c12, c22).filter(|_| self.continuous(1)) {
            Some(_) => c12 * self.mean(c22, 1),
            None => Quad(self.0).j2(c11, c12, c22),
        }
    }

    pub fn i21(&self, c11: f64, c12: f64, c22: f64) -> f64 {
        // E[g'(x1) x1 x2] = c12 E[(x g'(x))'] = c12 (E[g'] + c11 E[g''']).
        match correlation(c11, c12, c22).filter(|_| self.continuous(3)) {
            Some(_) => c12 * (self.mean(c11, 1) + c11 * self.mean(c11, 3)),
            None => Quad(self.0).i21(c11, c12, c22),
        }
    }

    pub fn i22(&self, c11: f64, c12: f64, c22: f64) -> f64 {
        // E[g'(x1) x2^2] = c22 E[g'] + c12^2 E[g'''] (Wick).
        match correlation(c11, c12, c22).filter(|_| self.continuous(3)) {
            Some(_) => c22 * self.mean(c11, 1) + c12 * c12 * self.mean(c11, 3),
            None => Quad(self.0).i22(c11, c12, c22),
        }
    }

    pub fn i3(&self, c11: f64, c12: f64, c13: f64, c22: f64, c23: f64, c33: f64) -> f64 {
        let valid = c22 >= 0.0 && c12.is_finite() && c23.is_finite();
        let found = if !valid {
            None
        } else if self.continuous(2) {
            // E[g'(x1) x2 g(x3)] = c12 E[g''(x1) g(x3)] + c23 E[g'(x1) g'(x3)] (Stein on x2).
            self.pairs(c11, c13, c33, [(2, 0), (1, 1)])
                .map(|[m20, m11]| c12 * m20 + c23 * m11)
        } else {
            self.i3_by_regression(c11, c12, c13, c23, c33)
        };
        found.unwrap_or_else(|| Quad(self.0).i3(c11, c12, c13, c22, c23, c33))
    }

    /// I3 where g' or g itself jumps: x2 = a x1 + b x3 + (noise independent of both), so that
    /// E[g'(x1) x2 g(x3)] = a E[x1 g'(x1) g(x3)] + b E[g'(x1) x3 g(x3)], pairs of functions
    /// without Dirac parts (g' is the pointwise derivative, as in the simulator). None where
    /// (x1, x3) is (nearly) degenerate or the series do not converge.
    pub(super) fn i3_by_regression(&self, c11: f64, c12: f64, c13: f64, c23: f64, c33: f64) -> Option<f64> {
        let r = correlation(c11, c13, c33)?;
        let det = c11 * c33 - c13 * c13;
        if det.is_nan() || det <= 1e-9 * c11 * c33 {
            return None;
        }
        let a = (c12 * c33 - c23 * c13) / det;
        let b = (c23 * c11 - c12 * c13) / det;
        self.over_orders(c11, c33, r, &[(1, 0), (0, 1)], |e1, e3| {
            let x_first = series_x(e1, e3, r, 1, 0)?;
            let x_second = series_x(e3, e1, r, 0, 1)?;
            Some(a * x_first + b * x_second)
        })
    }

    /// `attempt` on the expansions at c11 and c22 of each of the series' lengths in turn: the
    /// first result it gives. A longer series is tried only where those of the last length
    /// tried leave it a chance at the pairs (a, b) of derivatives it sums (`sums::promising`):
    /// expansions of a few hundred terms cost more than the series, and at a strong
    /// correlation of two wide units (GELU's anti-aligned pair) every length fails.
    pub(super) fn over_orders<T>(
        &self,
        c11: f64,
        c22: f64,
        r: f64,
        pairs: &[(usize, usize)],
        mut attempt: impl FnMut(&Expansion, &Expansion) -> Option<T>,
    ) -> Option<T> {
        let mut last: Option<(Rc<Expansion>, Rc<Expansion>)> = None;
        for order in ORDERS {
            // The predicted bound falls with the length: a length is skipped while a longer
            // one is promising, and the search ends when none is.
            if let Some((e1, e2)) = &last {
                match ORDERS.iter().find(|&&n| n >= order && promising(e1, e2, r, n, pairs)) {
                    None => return None,
                    Some(&n) if n > order => continue,
                    Some(_) => {}
                }
            }
            let (e1, e2) = (expansion(self.0, c11, order), expansion(self.0, c22, order));
            if let Some(found) = attempt(&e1, &e2) {
                return Some(found);
            }
            last = Some((e1, e2));
        }
        None
    }

    pub fn i2_grad(&self, c11: f64, c12: f64, c22: f64) -> [f64; 3] {
        // Price: dE/dc11 = E[g''(x1) g(x2)] / 2, dE/dc12 = E[g'(x1) g'(x2)].
        match self
            .pairs(c11, c12, c22, [(2, 0), (1, 1), (0, 2)])
            .filter(|_| self.continuous(2))
        {
            Some([m20, m11, m02]) => [m20 / 2.0, m11, m02 / 2.0],
            None => Quad(self.0).i2_grad(c11, c12, c22),
        }
    }

    pub fn j2_grad(&self, c11: f64, c12: f64, c22: f64) -> [f64; 3] {
        match correlation(c11, c12, c22).filter(|_| self.continuous(3)) {
            Some(_) => [0.0, self.mean(c22, 1), c12 * self.mean(c22, 3) / 2.0],
            None => Quad(self.0).j2_grad(c11, c12, c22),
        }
    }

    /// By quadrature (one variable): their c11 entries would need g^(5).
    pub fn i21_grad(&self, c11: f64, c12: f64, c22: f64) -> [f64; 3] {
        Quad(self.0).i21_grad(c11, c12, c22)
    }

    /// By quadrature (one variable), as `i21_grad`.
    pub fn i22_grad(&self, c11: f64, c12: f64, c22: f64) -> [f64; 3] {
        Quad(self.0).i22_grad(c11, c12, c22)
    }

    pub fn i3_grad(&self, c11: f64, c12: f64, c13: f64, c22: f64, c23: f64, c33: f64) -> [f64; 6] {
        // The derivatives of c12 M(2,0) + c23 M(1,1) over (c11, c13, c33), by Price's theorem.
        let quadrature = || Quad(self.0).i3_grad(c11, c12, c13, c22, c23, c33);
        let Some(r) = correlation(c11, c13, c33) else {
            return quadrature();
        };
        if !(c22 >= 0.0 && c12.is_finite() && c23.is_finite() && self.continuous(3)) || r.abs() > 1.0 - 1e-9 {
            return quadrature();
        }
        let summed = [(2, 0), (3, 1), (2, 2), (1, 1), (1, 3), (3, 0)];
        let found = self.over_orders(c11, c33, r, &summed, |e1, e3| {
            let m = |a, b| series(e1, e3, r, a, b);
            let (m20, m31, m22, m11, m13) = (m(2, 0)?, m(3, 1)?, m(2, 2)?, m(1, 1)?, m(1, 3)?);
            // c12 E[g''''(x1) g(x3)] = (c12 / s1) s1 E[g'''' g]; c12 = 0 where s1 = 0.
            let l31 = if e1.s > 0.0 { c12 / e1.s } else { 0.0 };
            let fourth = if l31 == 0.0 {
                0.0
            } else {
                l31 * series_fourth(e1, e3, r)?
            };
            Some([
                (fourth + c23 * m31) / 2.0,
                m20,
                c12 * m31 + c23 * m22,
                0.0,
                m11,
                (c12 * m22 + c23 * m13) / 2.0,
            ])
        });
        found.unwrap_or_else(quadrature)
    }
}

impl<S: Smooth + ?Sized> Series<'_, S> {
    /// E[g^(j)(x1) 1{x3 > m}] (c11, c13, c33 the covariance of x1 and x3) by Mehler's series in
    /// their correlation r, with the indicator's Hermite coefficients in closed form: for
    /// u = x3 / s3 and t = m / s3, E[1{u > t} He_n(u)] / sqrt(n!) = phi(t) p_(n-1)(t) / sqrt(n)
    /// for n >= 1 (p_n = He_n / sqrt(n!); He_n phi is the derivative of -He_(n-1) phi), and
    /// P(u > t) for n = 0. The terms left out are bounded as in `series`, with the indicator's
    /// energy P(u > t) less its kept squares. None where a variance is 0, |r| is (nearly) 1
    /// or no series converges.
    pub(crate) fn passing(&self, [c11, c13, c33]: [f64; 3], m: f64, j: usize) -> Option<f64> {
        let (r, t) = Self::standardised(c11, c13, c33, m)?;
        let energy = tail(t, 1.0);
        let mut p = Vec::new();
        let mut k = Vec::new();
        ORDERS.iter().find_map(|&order| {
            let e = expansion(self.0, c11, order);
            normalised_hermite(t, order, &mut p);
            let (sqrt, phi) = (square_roots(), density(t, 1.0));
            k.extend((k.len()..=order).map(|n| if n == 0 { energy } else { phi * p[n - 1] / sqrt[n] }));
            let kept: f64 = k.iter().map(|k| k * k).sum();
            let k_tail = (energy - kept).max(0.0) + 1e-14 * energy;
            let rn = r.abs().powi(order as i32 + 1);
            let scale = (e.energy[j] * energy).sqrt();
            let met = |a_tail: f64| rn * (a_tail * k_tail).sqrt() <= TOLERANCE * scale;
            if !(met(e.quick_tail[j]) || met(e.tail()[j])) {
                return None;
            }
            let (mut sum, mut rn) = (0.0, 1.0);
            for (a, k) in e.coef[j].iter().zip(&k) {
                sum += rn * a * k;
                rn *= r;
            }
            Some(sum)
        })
    }

    /// E[g^(j)(x1) delta(x3 - m)], the density of x3 at m times g^(j)'s mean given x3 = m, by
    /// Mehler's series: delta(x3 - m) = delta(u - t) / s3 has the coefficients phi(t) p_n(t) / s3.
    /// Those are not square-summable, so the terms left out are bounded by Cramér's
    /// inequality |p_n(t)| <= K e^(t^2/4) (K = 1.0865) and Cauchy-Schwarz over the geometric
    /// weights: at most K e^(t^2/4) phi(t) / s3 |r|^(N+1) sqrt(A / (1 - r^2)), A the energy
    /// g^(j)'s N + 1 coefficients leave out. It is held to the tolerance of the same bound
    /// with g^(j)'s whole energy and no geometric factor (the factor before |r| cancels).
    pub(crate) fn at_level(&self, [c11, c13, c33]: [f64; 3], m: f64, j: usize) -> Option<f64> {
        let (r, t) = Self::standardised(c11, c13, c33, m)?;
        let s3 = c33.sqrt();
        let mut p = Vec::new();
        ORDERS.iter().find_map(|&order| {
            let e = expansion(self.0, c11, order);
            let rn = r.abs().powi(order as i32 + 1) / (1.0 - r * r).sqrt();
            let met = |a_tail: f64| rn * a_tail.sqrt() <= TOLERANCE * e.energy[j].sqrt();
            if !(met(e.quick_tail[j]) || met(e.tail()[j])) {
                return None;
            }
            normalised_hermite(t, order, &mut p);
            let (mut sum, mut rn) = (0.0, 1.0);
            for (a, p) in e.coef[j].iter().zip(&p) {
                sum += rn * a * p;
                rn *= r;
            }
            Some(sum * density(t, 1.0) / s3)
        })
    }

    /// The correlation of x1 and x3 and the level m in x3's standard deviations, or None where
    /// the series do not apply (a variance 0 or not finite, |r| within 1e-9 of 1).
    fn standardised(c11: f64, c13: f64, c33: f64, m: f64) -> Option<(f64, f64)> {
        let r = correlation(c11, c13, c33).filter(|r| r.abs() <= 1.0 - 1e-9)?;
        (c11 > 0.0 && c33 > 0.0 && m.is_finite()).then(|| (r, m / c33.sqrt()))
    }
}

/// He_n(t) / sqrt(n!) for n = 0..=order into `p`, by the normalised three-term recurrence. The
/// values at the last level asked for are kept on this thread and extended: the two series of
/// one jump term (`passing` and `at_level`) ask for the same level, each at growing orders, and
/// the recurrence's chain of divisions was a tenth of a run with a step in g.
fn normalised_hermite(t: f64, order: usize, p: &mut Vec<f64>) {
    thread_local! {
        static LAST: std::cell::RefCell<(u64, Vec<f64>)> = const { std::cell::RefCell::new((0, Vec::new())) };
    }
    LAST.with(|last| {
        let (level, values) = &mut *last.borrow_mut();
        if *level != t.to_bits() {
            *level = t.to_bits();
            values.clear();
        }
        let sqrt = square_roots();
        while values.len() <= order {
            let n = values.len();
            let next = match n {
                0 => 1.0,
                1 => t,
                _ => (t * values[n - 1] - sqrt[n - 1] * values[n - 2]) / sqrt[n],
            };
            values.push(next);
        }
        p.clear();
        p.extend_from_slice(&values[..=order]);
    })
}

/// sqrt(n) for n = 0..=ORDERS' largest + 1, computed once.
fn square_roots() -> &'static [f64] {
    static ROOTS: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| (0..=ORDERS[ORDERS.len() - 1] + 1).map(|n| (n as f64).sqrt()).collect())
}

//! The averages I2, J2, I21, I22, I3 and their gradients by the rules of the parent module:
//! each reduced to the fewest variables its integrand depends on.

use std::cell::Cell;

use super::{chol2, expect1, expect1_slopes, expect1_vec, expect2, expect2_vec, Quad, Smooth};

/// g and its derivatives at the two arguments of a two-variable integrand, each in one call (a
/// declared activation computes them together: separate calls cost an I3 gradient four times
/// as much), those at x1 kept for the outer node they belong to (x1 depends on z1 alone, so
/// every inner node of one outer node shares them).
struct AtBoth<'a, S: ?Sized> {
    g: &'a S,
    first: Cell<(f64, [f64; 4])>,
}

impl<'a, S: Smooth + ?Sized> AtBoth<'a, S> {
    fn new(g: &'a S) -> Self {
        AtBoth {
            g,
            first: Cell::new((f64::NAN, [0.0; 4])),
        }
    }

    /// g, g', g'', g''' at x1 and at x2.
    fn at(&self, x1: f64, x2: f64) -> ([f64; 4], [f64; 4]) {
        let (at, mut d1) = self.first.get();
        if at.to_bits() != x1.to_bits() {
            d1 = self.g.all(x1);
            self.first.set((x1, d1));
        }
        (d1, self.g.all(x2))
    }
}

impl<S: Smooth + ?Sized> Quad<'_, S> {
    pub fn i2(&self, c11: f64, c12: f64, c22: f64) -> f64 {
        // I2 is symmetric in (x1, x2); a fixed orientation makes the rule's rounding symmetric too.
        let (c11, c22) = if c11 >= c22 { (c11, c22) } else { (c22, c11) };
        let (l11, l21, l22) = chol2(c11, c12, c22);
        if l22 == 0.0 {
            let (width, slopes) = (l11.max(l21.abs()), [l11, l21]);
            return expect1_slopes(width, &slopes, self.0, |z| [self.0.g(l11 * z) * self.0.g(l21 * z)])[0];
        }
        expect2(l11, l21, l22, self.0, |z1, z2| {
            self.0.g(l11 * z1) * self.0.g(l21 * z1 + l22 * z2)
        })
    }
    pub fn j2(&self, _c11: f64, c12: f64, c22: f64) -> f64 {
        // x2 = a z, x1 = (c12/a) z + independent part, which averages out.
        let a = c22.max(0.0).sqrt();
        if a == 0.0 {
            return 0.0;
        }
        c12 / a * expect1(a, self.0, |z| z * self.0.g(a * z))
    }
    pub fn i21(&self, c11: f64, c12: f64, _c22: f64) -> f64 {
        // x1 = a z, x2 = (c12/a) z + independent part: E[g'(az) a z (c12/a) z].
        let a = c11.max(0.0).sqrt();
        c12 * expect1(a, self.0, |z| self.0.dg(a * z) * z * z)
    }
    pub fn i22(&self, c11: f64, c12: f64, c22: f64) -> f64 {
        let a = c11.max(0.0).sqrt();
        let b = if a > 0.0 { c12 / a } else { 0.0 };
        let s2 = (c22 - b * b).max(0.0);
        expect1(a, self.0, |z| self.0.dg(a * z) * (b * b * z * z + s2))
    }
    pub fn i3(&self, c11: f64, c12: f64, c13: f64, _c22: f64, c23: f64, c33: f64) -> f64 {
        // Cholesky in the order (x1, x3, x2); x2's own noise averages out.
        let (l11, l21, l22) = chol2(c11, c13, c33);
        let l31 = if l11 > 0.0 { c12 / l11 } else { 0.0 };
        let l32 = if l22 > 0.0 { (c23 - l31 * l21) / l22 } else { 0.0 };
        if l22 == 0.0 {
            let (width, slopes) = (l11.max(l21.abs()), [l11, l21]);
            return expect1_slopes(width, &slopes, self.0, |z| {
                [self.0.dg(l11 * z) * l31 * z * self.0.g(l21 * z)]
            })[0];
        }
        expect2(l11, l21, l22, self.0, |z1, z2| {
            self.0.dg(l11 * z1) * (l31 * z1 + l32 * z2) * self.0.g(l21 * z1 + l22 * z2)
        })
    }

    // Gradients by Price's theorem: for x ~ N(0, C), dE[F]/dC_ij = E[d_i d_j F] (i != j) and
    // dE[F]/dC_ii = E[d_i^2 F] / 2. Each is an average of smooth integrands, finite on
    // degenerate covariances, computed with the same rules as the averages themselves.
    pub fn i2_grad(&self, c11: f64, c12: f64, c22: f64) -> [f64; 3] {
        let (l11, l21, l22) = chol2(c11, c12, c22);
        let both = AtBoth::new(self.0);
        let f = |x1: f64, x2: f64| {
            let (d1, d2) = both.at(x1, x2);
            [d1[2] * d2[0], d1[1] * d2[1], d1[0] * d2[2]]
        };
        let r = if l22 == 0.0 {
            expect1_slopes(l11.max(l21.abs()), &[l11, l21], self.0, |z| f(l11 * z, l21 * z))
        } else {
            expect2_vec(l11, l21, l22, self.0, |z1, z2| f(l11 * z1, l21 * z1 + l22 * z2))
        };
        [r[0] / 2.0, r[1], r[2] / 2.0]
    }
    pub fn j2_grad(&self, _c11: f64, c12: f64, c22: f64) -> [f64; 3] {
        // F = x1 g(x2): d12 F = g'(x2); d22 F = x1 g''(x2), and E[x1 h(x2)] = (C12/C22) E[x2 h(x2)].
        let a = c22.max(0.0).sqrt();
        if a == 0.0 {
            return [0.0, self.0.dg(0.0), 0.0];
        }
        let r = expect1_vec(a, self.0, |z| [self.0.dg(a * z), a * z * self.0.d2g(a * z)]);
        [0.0, r[0], c12 / c22 * r[1] / 2.0]
    }
    pub fn i21_grad(&self, c11: f64, c12: f64, _c22: f64) -> [f64; 3] {
        // F = g'(x1) x1 x2: d11 F = (g'''(x1) x1 + 2 g''(x1)) x2, d12 F = g''(x1) x1 + g'(x1);
        // x2 enters linearly: E[x2 h(x1)] = (C12/C11) E[x1 h(x1)].
        let a = c11.max(0.0).sqrt();
        let r = expect1_vec(a, self.0, |z| {
            let x = a * z;
            [
                (self.0.d3g(x) * x + 2.0 * self.0.d2g(x)) * x,
                self.0.d2g(x) * x + self.0.dg(x),
            ]
        });
        let d11 = if c11 > 0.0 { c12 / c11 * r[0] / 2.0 } else { 0.0 };
        [d11, r[1], 0.0]
    }
    pub fn i22_grad(&self, c11: f64, c12: f64, c22: f64) -> [f64; 3] {
        // F = g'(x1) x2^2: d11 F = g'''(x1) x2^2, d12 F = 2 g''(x1) x2, d22 F = 2 g'(x1).
        let a = c11.max(0.0).sqrt();
        let b = if a > 0.0 { c12 / a } else { 0.0 };
        let s2 = (c22 - b * b).max(0.0);
        let r = expect1_vec(a, self.0, |z| {
            let x = a * z;
            [
                self.0.d3g(x) * (b * b * z * z + s2),
                self.0.d2g(x) * b * z,
                self.0.dg(x),
            ]
        });
        [r[0] / 2.0, 2.0 * r[1], r[2]]
    }
    pub fn i3_grad(&self, c11: f64, c12: f64, c13: f64, _c22: f64, c23: f64, c33: f64) -> [f64; 6] {
        // F = g'(x1) x2 g(x3). With x2 replaced by its projection on (x1, x3) as in `i3`:
        // d11 F = g'''(x1) x2 g(x3), d12 F = g''(x1) g(x3), d13 F = g''(x1) x2 g'(x3),
        // d23 F = g'(x1) g'(x3), d33 F = g'(x1) x2 g''(x3), d22 F = 0.
        let (l11, l21, l22) = chol2(c11, c13, c33);
        let l31 = if l11 > 0.0 { c12 / l11 } else { 0.0 };
        let l32 = if l22 > 0.0 { (c23 - l31 * l21) / l22 } else { 0.0 };
        let both = AtBoth::new(self.0);
        let f = |x1: f64, x2: f64, x3: f64| {
            let (d1, d3) = both.at(x1, x3);
            [
                d1[3] * x2 * d3[0],
                d1[2] * d3[0],
                d1[2] * x2 * d3[1],
                d1[1] * d3[1],
                d1[1] * x2 * d3[2],
            ]
        };
        let r = if l22 == 0.0 {
            expect1_slopes(l11.max(l21.abs()), &[l11, l21], self.0, |z| {
                f(l11 * z, l31 * z, l21 * z)
            })
        } else {
            expect2_vec(l11, l21, l22, self.0, |z1, z2| {
                f(l11 * z1, l31 * z1 + l32 * z2, l21 * z1 + l22 * z2)
            })
        };
        [r[0] / 2.0, r[1], r[2], 0.0, r[3], r[4] / 2.0]
    }
}

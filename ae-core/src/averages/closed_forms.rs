//! The closed forms of erf(x/sqrt2), linear and ReLU units (docs/theory.md section 5), checked
//! against Monte Carlo in the tests.

use std::f64::consts::{FRAC_PI_2, PI};

use super::{Averages, Erf, Linear, Relu, SQRT_2_OVER_PI};

impl Averages for Erf {
    #[inline(always)]
    fn i2(c11: f64, c12: f64, c22: f64) -> f64 {
        (2.0 / PI) * (c12 / ((1.0 + c11) * (1.0 + c22)).sqrt()).asin()
    }
    #[inline(always)]
    fn j2(_c11: f64, c12: f64, c22: f64) -> f64 {
        SQRT_2_OVER_PI * c12 / (1.0 + c22).sqrt()
    }
    #[inline(always)]
    fn i21(c11: f64, c12: f64, _c22: f64) -> f64 {
        SQRT_2_OVER_PI * c12 / ((1.0 + c11) * (1.0 + c11).sqrt())
    }
    #[inline(always)]
    fn i22(c11: f64, c12: f64, c22: f64) -> f64 {
        SQRT_2_OVER_PI * (c22 * (1.0 + c11) - c12 * c12) / ((1.0 + c11) * (1.0 + c11).sqrt())
    }
    #[inline(always)]
    fn i3(c11: f64, c12: f64, c13: f64, _c22: f64, c23: f64, c33: f64) -> f64 {
        let a = 1.0 + c11;
        (2.0 / PI) * (c23 * a - c12 * c13) / (a * (a * (1.0 + c33) - c13 * c13).sqrt())
    }

    #[inline(always)]
    fn i2_grad(c11: f64, c12: f64, c22: f64) -> [f64; 3] {
        let (a, b) = (1.0 + c11, 1.0 + c22);
        let s = (a * b).sqrt();
        let u = c12 / s;
        let k = (2.0 / PI) / (1.0 - u * u).sqrt();
        [-k * u / (2.0 * a), k / s, -k * u / (2.0 * b)]
    }
    #[inline(always)]
    fn j2_grad(_c11: f64, c12: f64, c22: f64) -> [f64; 3] {
        let b = 1.0 + c22;
        let d = SQRT_2_OVER_PI / b.sqrt();
        [0.0, d, -0.5 * d * c12 / b]
    }
    #[inline(always)]
    fn i21_grad(c11: f64, c12: f64, _c22: f64) -> [f64; 3] {
        let a = 1.0 + c11;
        let d = SQRT_2_OVER_PI / (a * a.sqrt());
        [-1.5 * d * c12 / a, d, 0.0]
    }
    #[inline(always)]
    fn i22_grad(c11: f64, c12: f64, c22: f64) -> [f64; 3] {
        let a = 1.0 + c11;
        let d = SQRT_2_OVER_PI / (a * a.sqrt());
        [d * (-0.5 * c22 + 1.5 * c12 * c12 / a), -2.0 * d * c12, d * a]
    }
    #[inline(always)]
    fn i3_grad(c11: f64, c12: f64, c13: f64, _c22: f64, c23: f64, c33: f64) -> [f64; 6] {
        // I3 = (2/pi) N / D with N = C23 a - C12 C13, D = a sqrt(W), W = a b - C13^2.
        let (a, b) = (1.0 + c11, 1.0 + c33);
        let sw = (a * b - c13 * c13).sqrt();
        let d = a * sw;
        let f = (c23 * a - c12 * c13) / d;
        let dn = [c23, -c13, -c12, 0.0, a, 0.0];
        let dd = [
            sw + a * b / (2.0 * sw),
            0.0,
            -a * c13 / sw,
            0.0,
            0.0,
            a * a / (2.0 * sw),
        ];
        let mut g = [0.0; 6];
        for i in 0..6 {
            g[i] = (2.0 / PI) * (dn[i] - f * dd[i]) / d;
        }
        g
    }
}

impl Averages for Linear {
    #[inline(always)]
    fn i2(_c11: f64, c12: f64, _c22: f64) -> f64 {
        c12
    }
    #[inline(always)]
    fn j2(_c11: f64, c12: f64, _c22: f64) -> f64 {
        c12
    }
    #[inline(always)]
    fn i21(_c11: f64, c12: f64, _c22: f64) -> f64 {
        c12
    }
    #[inline(always)]
    fn i22(_c11: f64, _c12: f64, c22: f64) -> f64 {
        c22
    }
    #[inline(always)]
    fn i3(_c11: f64, _c12: f64, _c13: f64, _c22: f64, c23: f64, _c33: f64) -> f64 {
        c23
    }

    #[inline(always)]
    fn i2_grad(_c11: f64, _c12: f64, _c22: f64) -> [f64; 3] {
        [0.0, 1.0, 0.0]
    }
    #[inline(always)]
    fn j2_grad(_c11: f64, _c12: f64, _c22: f64) -> [f64; 3] {
        [0.0, 1.0, 0.0]
    }
    #[inline(always)]
    fn i21_grad(_c11: f64, _c12: f64, _c22: f64) -> [f64; 3] {
        [0.0, 1.0, 0.0]
    }
    #[inline(always)]
    fn i22_grad(_c11: f64, _c12: f64, _c22: f64) -> [f64; 3] {
        [0.0, 0.0, 1.0]
    }
    #[inline(always)]
    fn i3_grad(_c11: f64, _c12: f64, _c13: f64, _c22: f64, _c23: f64, _c33: f64) -> [f64; 6] {
        [0.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    }
}

/// ReLU closed forms. I3 is derived here (docs/theory.md section 5 describes how):
///
/// `I3 = E[Θ(x1) x2 relu(x3)] = E[x2 x3 1{x1>0, x3>0}]`. Regress `x2 = α x1 + γ x3 + z` with `z`
/// independent of `(x1, x3)`; then `I3 = α E[x1 x3 1{..}] + γ E[x3² 1{..}]`. With
/// `ρ = C13/√(C11 C33)`, `s = √(1-ρ²)`, `θ = π/2 + asin ρ`, the orthant moments are
/// `E[x1 x3 1{..}] = √(C11 C33)(ρθ + s)/(2π)` and `E[x3² 1{..}] = C33 (θ + ρ s)/(2π)`.
/// Substituting `α, γ` (the inverse of the (x1, x3) covariance) every `1/(1-ρ²)` cancels:
///
/// `I3 = [ C23 (π/2 + atan2(C13, √Δ13)) + C12 √Δ13 / C11 ] / (2π)`, `Δ13 = C11 C33 - C13²`,
///
/// finite on the degenerate set `Δ13 = 0` (for example `I3_kk = Q/2`). Checked against Monte
/// Carlo in the tests.
impl Averages for Relu {
    #[inline(always)]
    fn i2(c11: f64, c12: f64, c22: f64) -> f64 {
        let delta = (c11 * c22 - c12 * c12).max(0.0).sqrt();
        (delta + c12 * (FRAC_PI_2 + c12.atan2(delta))) / (2.0 * PI)
    }
    #[inline(always)]
    fn j2(_c11: f64, c12: f64, _c22: f64) -> f64 {
        0.5 * c12
    }
    #[inline(always)]
    fn i21(_c11: f64, c12: f64, _c22: f64) -> f64 {
        0.5 * c12
    }
    #[inline(always)]
    fn i22(_c11: f64, _c12: f64, c22: f64) -> f64 {
        0.5 * c22
    }
    #[inline(always)]
    fn i3(c11: f64, c12: f64, c13: f64, _c22: f64, c23: f64, c33: f64) -> f64 {
        let delta = (c11 * c33 - c13 * c13).max(0.0).sqrt();
        (c23 * (FRAC_PI_2 + c13.atan2(delta)) + c12 * delta / c11) / (2.0 * PI)
    }

    /// `dI2/dC12 = P(x1 > 0, x2 > 0)` and `dI2/dC11 = E[δ(x1) relu(x2)] / 2 = Δ / (4π C11)`
    /// (Price's theorem; the same as differentiating the closed form).
    #[inline(always)]
    fn i2_grad(c11: f64, c12: f64, c22: f64) -> [f64; 3] {
        let delta = (c11 * c22 - c12 * c12).max(0.0).sqrt();
        let side = |c: f64| if delta > 0.0 { delta / (4.0 * PI * c) } else { 0.0 };
        [side(c11), (FRAC_PI_2 + c12.atan2(delta)) / (2.0 * PI), side(c22)]
    }
    #[inline(always)]
    fn j2_grad(_c11: f64, _c12: f64, _c22: f64) -> [f64; 3] {
        [0.0, 0.5, 0.0]
    }
    #[inline(always)]
    fn i21_grad(_c11: f64, _c12: f64, _c22: f64) -> [f64; 3] {
        [0.0, 0.5, 0.0]
    }
    #[inline(always)]
    fn i22_grad(_c11: f64, _c12: f64, _c22: f64) -> [f64; 3] {
        [0.0, 0.0, 0.5]
    }
    /// Differentiating the closed form, `2π I3 = C23 θ + C12 Δ13 / C11` with
    /// `θ = π/2 + atan2(C13, Δ13)`, gives regular terms plus terms in `1/Δ13` (for C11, C13,
    /// C33). `Δ13 = 0` exactly only where x1 and x3 are one pre-activation, so that C11, C13
    /// and C33 are one variable: there the `1/Δ13` coefficients sum to zero, and the restricted
    /// function `C23/2` has exactly the regular terms as its gradient. So at `Δ13 = 0` the
    /// singular terms are left out.
    #[inline(always)]
    fn i3_grad(c11: f64, c12: f64, c13: f64, _c22: f64, c23: f64, c33: f64) -> [f64; 6] {
        let delta = (c11 * c33 - c13 * c13).max(0.0).sqrt();
        let theta = FRAC_PI_2 + c13.atan2(delta);
        let inv = if delta > 0.0 { 1.0 / delta } else { 0.0 };
        let two_pi = 2.0 * PI;
        [
            ((c12 * c33 - c23 * c13) / (2.0 * c11) * inv - c12 * delta / (c11 * c11)) / two_pi,
            delta / (c11 * two_pi),
            (c23 * c11 - c12 * c13) / c11 * inv / two_pi,
            0.0,
            theta / two_pi,
            (c12 - c23 * c13 / c33) / 2.0 * inv / two_pi,
        ]
    }
}

//! Gaussian averages of docs/theory.md section 5: closed forms for erf(x/sqrt2), linear and ReLU, and
//! graded composite Gauss-Legendre quadrature over the Cholesky factor of the covariance for any other g.
//!
//! Arguments are covariance entries: `(C11, C12, C22)` for the two-variable averages and
//! `(C11, C12, C13, C22, C23, C33)` for I3.

use std::f64::consts::{FRAC_PI_2, PI};
use std::marker::PhantomData;

use ae_dsl::ir::Avg;

use crate::mehler::Series;
use crate::quadrature::{Quad, Smooth};

/// The five averages for one activation. Generated code calls these through static dispatch.
pub trait Averages {
    /// E[g(x1) g(x2)]
    fn i2(c11: f64, c12: f64, c22: f64) -> f64;
    /// E[x1 g(x2)]
    fn j2(c11: f64, c12: f64, c22: f64) -> f64;
    /// E[g'(x1) x1 x2]
    fn i21(c11: f64, c12: f64, c22: f64) -> f64;
    /// E[g'(x1) x2^2]
    fn i22(c11: f64, c12: f64, c22: f64) -> f64;
    /// E[g'(x1) x2 g(x3)]
    fn i3(c11: f64, c12: f64, c13: f64, c22: f64, c23: f64, c33: f64) -> f64;

    /// Gradients with respect to the arguments, in argument order: the leaves of the symbolic
    /// Jacobian. Each covariance entry is one variable (`C12` stands for both `C12` and `C21`).
    fn i2_grad(c11: f64, c12: f64, c22: f64) -> [f64; 3];
    fn j2_grad(c11: f64, c12: f64, c22: f64) -> [f64; 3];
    fn i21_grad(c11: f64, c12: f64, c22: f64) -> [f64; 3];
    fn i22_grad(c11: f64, c12: f64, c22: f64) -> [f64; 3];
    fn i3_grad(c11: f64, c12: f64, c13: f64, c22: f64, c23: f64, c33: f64) -> [f64; 6];
}

/// An activation function and its derivative (what the simulator and the quadrature need).
pub trait Activation {
    fn g(x: f64) -> f64;
    fn dg(x: f64) -> f64;
    /// g'' and g''', which the quadrature gradients need (Price's theorem). An activation
    /// without them (ReLU: distributions) gets NaN gradients by quadrature, never wrong numbers.
    fn d2g(_x: f64) -> f64 {
        f64::NAN
    }
    fn d3g(_x: f64) -> f64 {
        f64::NAN
    }
}

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;

/// The error function, as generated code calls it (the equation language's `erf`).
#[inline]
pub fn erf(x: f64) -> f64 {
    libm::erf(x)
}

/// The language's `sign`, as generated code calls it (the kernels depend on this crate only).
pub use ae_dsl::ir::sign;

/// g(x) = erf(x / sqrt 2), the paper's "sigmoidal" activation.
#[derive(Debug, Clone, Copy)]
pub struct Erf;
/// g(x) = x.
#[derive(Debug, Clone, Copy)]
pub struct Linear;
/// g(x) = max(x, 0).
#[derive(Debug, Clone, Copy)]
pub struct Relu;
/// g(x) = tanh(x), averages by Mehler series (quadrature where they would not converge).
pub type Tanh = Mehler<TanhFn>;

impl Activation for Erf {
    #[inline]
    fn g(x: f64) -> f64 {
        libm::erf(x * std::f64::consts::FRAC_1_SQRT_2)
    }
    #[inline]
    fn dg(x: f64) -> f64 {
        SQRT_2_OVER_PI * (-0.5 * x * x).exp()
    }
    #[inline]
    fn d2g(x: f64) -> f64 {
        -x * Self::dg(x)
    }
    #[inline]
    fn d3g(x: f64) -> f64 {
        (x * x - 1.0) * Self::dg(x)
    }
}

impl Activation for Linear {
    #[inline]
    fn g(x: f64) -> f64 {
        x
    }
    #[inline]
    fn dg(_x: f64) -> f64 {
        1.0
    }
    #[inline]
    fn d2g(_x: f64) -> f64 {
        0.0
    }
    #[inline]
    fn d3g(_x: f64) -> f64 {
        0.0
    }
}

impl Activation for Relu {
    #[inline]
    fn g(x: f64) -> f64 {
        x.max(0.0)
    }
    #[inline]
    fn dg(x: f64) -> f64 {
        if x > 0.0 {
            1.0
        } else {
            0.0
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct TanhFn;
impl Activation for TanhFn {
    #[inline]
    fn g(x: f64) -> f64 {
        x.tanh()
    }
    #[inline]
    fn dg(x: f64) -> f64 {
        let t = x.tanh();
        1.0 - t * t
    }
    #[inline]
    fn d2g(x: f64) -> f64 {
        let t = x.tanh();
        -2.0 * t * (1.0 - t * t)
    }
    #[inline]
    fn d3g(x: f64) -> f64 {
        let t = x.tanh();
        (1.0 - t * t) * (6.0 * t * t - 2.0)
    }
}

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

/// Quadrature averages for any activation `A` (see [`crate::quadrature`]).
pub struct Quadrature<A>(PhantomData<A>);

pub use crate::quadrature::{gauss_hermite, gauss_legendre, with_quadrature_rule, QuadratureRule};

/// A static activation as the quadrature sees it (no kinks: the built-in activations with
/// kinks have closed forms).
struct Static<A>(PhantomData<A>);

impl<A: Activation + 'static> Smooth for Static<A> {
    #[inline(always)]
    fn g(&self, x: f64) -> f64 {
        A::g(x)
    }
    #[inline(always)]
    fn dg(&self, x: f64) -> f64 {
        A::dg(x)
    }
    #[inline(always)]
    fn d2g(&self, x: f64) -> f64 {
        A::d2g(x)
    }
    #[inline(always)]
    fn d3g(&self, x: f64) -> f64 {
        A::d3g(x)
    }
    fn cache_id(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::any::TypeId::of::<A>().hash(&mut h);
        h.finish()
    }
}

/// Averages of a static activation `A` through `$engine` (`Quad` or `Series`).
macro_rules! engine_averages {
    ($ty:ident, $engine:ident) => {
        impl<A: Activation + 'static> Averages for $ty<A> {
            fn i2(c11: f64, c12: f64, c22: f64) -> f64 {
                $engine(&Static::<A>(PhantomData)).i2(c11, c12, c22)
            }
            fn j2(c11: f64, c12: f64, c22: f64) -> f64 {
                $engine(&Static::<A>(PhantomData)).j2(c11, c12, c22)
            }
            fn i21(c11: f64, c12: f64, c22: f64) -> f64 {
                $engine(&Static::<A>(PhantomData)).i21(c11, c12, c22)
            }
            fn i22(c11: f64, c12: f64, c22: f64) -> f64 {
                $engine(&Static::<A>(PhantomData)).i22(c11, c12, c22)
            }
            fn i3(c11: f64, c12: f64, c13: f64, c22: f64, c23: f64, c33: f64) -> f64 {
                $engine(&Static::<A>(PhantomData)).i3(c11, c12, c13, c22, c23, c33)
            }
            fn i2_grad(c11: f64, c12: f64, c22: f64) -> [f64; 3] {
                $engine(&Static::<A>(PhantomData)).i2_grad(c11, c12, c22)
            }
            fn j2_grad(c11: f64, c12: f64, c22: f64) -> [f64; 3] {
                $engine(&Static::<A>(PhantomData)).j2_grad(c11, c12, c22)
            }
            fn i21_grad(c11: f64, c12: f64, c22: f64) -> [f64; 3] {
                $engine(&Static::<A>(PhantomData)).i21_grad(c11, c12, c22)
            }
            fn i22_grad(c11: f64, c12: f64, c22: f64) -> [f64; 3] {
                $engine(&Static::<A>(PhantomData)).i22_grad(c11, c12, c22)
            }
            fn i3_grad(c11: f64, c12: f64, c13: f64, c22: f64, c23: f64, c33: f64) -> [f64; 6] {
                $engine(&Static::<A>(PhantomData)).i3_grad(c11, c12, c13, c22, c23, c33)
            }
        }
    };
}

/// Mehler-series averages for any smooth activation `A` (see [`crate::mehler`]): the
/// quadrature's accuracy at a fraction of its cost, falling back on it.
pub struct Mehler<A>(PhantomData<A>);

engine_averages!(Quadrature, Quad);
engine_averages!(Mehler, Series);

pub use ae_dsl::ActivationKind;

/// The runtime's side of an activation named by [`ActivationKind`]: g, g' and the averages,
/// dispatched to the types above (interpreter, simulator, measurements).
pub trait Evaluate {
    fn g(self, x: f64) -> f64;
    fn dg(self, x: f64) -> f64;
    /// Evaluates average `avg` on covariance entries `c` (3 or 6 of them).
    fn average(self, avg: Avg, c: &[f64]) -> f64;
    /// The gradient of average `avg` with respect to its arguments `c` (3 or 6 of them).
    fn average_grad(self, avg: Avg, c: &[f64]) -> Vec<f64>;
    /// The gradient by quadrature (Price's theorem), whatever the activation: NaN for ReLU.
    fn average_grad_by_quadrature(self, avg: Avg, c: &[f64]) -> Vec<f64>;
    /// The same average by quadrature, whatever the activation (to check closed forms).
    fn average_by_quadrature(self, avg: Avg, c: &[f64]) -> f64;
}

fn dispatch_grad<T: Averages>(avg: Avg, c: &[f64]) -> Vec<f64> {
    match avg {
        Avg::I2 => T::i2_grad(c[0], c[1], c[2]).to_vec(),
        Avg::J2 => T::j2_grad(c[0], c[1], c[2]).to_vec(),
        Avg::I21 => T::i21_grad(c[0], c[1], c[2]).to_vec(),
        Avg::I22 => T::i22_grad(c[0], c[1], c[2]).to_vec(),
        Avg::I3 => T::i3_grad(c[0], c[1], c[2], c[3], c[4], c[5]).to_vec(),
    }
}

impl Evaluate for ActivationKind {
    fn g(self, x: f64) -> f64 {
        match self {
            ActivationKind::Erf => Erf::g(x),
            ActivationKind::Linear => Linear::g(x),
            ActivationKind::Relu => Relu::g(x),
            ActivationKind::Tanh => TanhFn::g(x),
        }
    }

    fn dg(self, x: f64) -> f64 {
        match self {
            ActivationKind::Erf => Erf::dg(x),
            ActivationKind::Linear => Linear::dg(x),
            ActivationKind::Relu => Relu::dg(x),
            ActivationKind::Tanh => TanhFn::dg(x),
        }
    }

    /// Evaluates average `avg` on covariance entries `c` (3 or 6 of them).
    fn average(self, avg: Avg, c: &[f64]) -> f64 {
        fn dispatch<T: Averages>(avg: Avg, c: &[f64]) -> f64 {
            match avg {
                Avg::I2 => T::i2(c[0], c[1], c[2]),
                Avg::J2 => T::j2(c[0], c[1], c[2]),
                Avg::I21 => T::i21(c[0], c[1], c[2]),
                Avg::I22 => T::i22(c[0], c[1], c[2]),
                Avg::I3 => T::i3(c[0], c[1], c[2], c[3], c[4], c[5]),
            }
        }
        match self {
            ActivationKind::Erf => dispatch::<Erf>(avg, c),
            ActivationKind::Linear => dispatch::<Linear>(avg, c),
            ActivationKind::Relu => dispatch::<Relu>(avg, c),
            ActivationKind::Tanh => dispatch::<Tanh>(avg, c),
        }
    }

    /// The gradient of average `avg` with respect to its arguments `c` (3 or 6 of them).
    fn average_grad(self, avg: Avg, c: &[f64]) -> Vec<f64> {
        match self {
            ActivationKind::Erf => dispatch_grad::<Erf>(avg, c),
            ActivationKind::Linear => dispatch_grad::<Linear>(avg, c),
            ActivationKind::Relu => dispatch_grad::<Relu>(avg, c),
            ActivationKind::Tanh => dispatch_grad::<Tanh>(avg, c),
        }
    }

    /// The gradient by quadrature (Price's theorem), whatever the activation: NaN for ReLU.
    fn average_grad_by_quadrature(self, avg: Avg, c: &[f64]) -> Vec<f64> {
        fn dispatch<A: Activation + 'static>(avg: Avg, c: &[f64]) -> Vec<f64> {
            dispatch_grad::<Quadrature<A>>(avg, c)
        }
        match self {
            ActivationKind::Erf => dispatch::<Erf>(avg, c),
            ActivationKind::Linear => dispatch::<Linear>(avg, c),
            ActivationKind::Relu => dispatch::<Relu>(avg, c),
            ActivationKind::Tanh => dispatch::<TanhFn>(avg, c),
        }
    }

    /// The same average by quadrature, whatever the activation (to check closed forms).
    fn average_by_quadrature(self, avg: Avg, c: &[f64]) -> f64 {
        fn dispatch<A: Activation + 'static>(avg: Avg, c: &[f64]) -> f64 {
            type Q<A> = Quadrature<A>;
            match avg {
                Avg::I2 => Q::<A>::i2(c[0], c[1], c[2]),
                Avg::J2 => Q::<A>::j2(c[0], c[1], c[2]),
                Avg::I21 => Q::<A>::i21(c[0], c[1], c[2]),
                Avg::I22 => Q::<A>::i22(c[0], c[1], c[2]),
                Avg::I3 => Q::<A>::i3(c[0], c[1], c[2], c[3], c[4], c[5]),
            }
        }
        match self {
            ActivationKind::Erf => dispatch::<Erf>(avg, c),
            ActivationKind::Linear => dispatch::<Linear>(avg, c),
            ActivationKind::Relu => dispatch::<Relu>(avg, c),
            ActivationKind::Tanh => dispatch::<TanhFn>(avg, c),
        }
    }
}

//! Gaussian averages of docs/theory.md section 5: closed forms for erf(x/sqrt2), linear and ReLU, and
//! graded composite Gauss-Legendre quadrature over the Cholesky factor of the covariance for any other g.
//!
//! Arguments are covariance entries: `(C11, C12, C22)` for the two-variable averages and
//! `(C11, C12, C13, C22, C23, C33)` for I3.

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

/// The equation language's `erf`, as generated code calls it (the kernels depend on this crate
/// only).
pub use ae_dsl::ir::erf;

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

mod closed_forms;

#[cfg(test)]
mod tests {
    use super::erf;

    /// The language's erf (the C library's) against the `libm` crate's port of the same
    /// algorithm, on a grid over the range where erf is not yet +-1 to rounding and at its
    /// special points: each is within 1 ulp of the true value (both libraries' documented
    /// bounds), so they must agree within 2 ulp of the value.
    #[test]
    fn the_language_erf_is_the_error_function() {
        let n = 100_000;
        for i in 0..=n {
            let x = -7.0 + 14.0 * i as f64 / n as f64 + 1e-7;
            let (ours, reference) = (erf(x), libm::erf(x));
            let ulp = reference.abs().max(f64::MIN_POSITIVE) * f64::EPSILON;
            assert!(
                (ours - reference).abs() <= 2.0 * ulp,
                "erf({x}) = {ours}, libm {reference}"
            );
        }
        let tiny = 1e-300;
        assert!((erf(tiny) / (tiny * std::f64::consts::FRAC_2_SQRT_PI) - 1.0).abs() <= 4.0 * f64::EPSILON);
        assert_eq!(erf(0.0).to_bits(), 0.0f64.to_bits());
        assert_eq!(erf(-0.0).to_bits(), (-0.0f64).to_bits());
        assert_eq!((erf(f64::INFINITY), erf(f64::NEG_INFINITY)), (1.0, -1.0));
        assert!(erf(f64::NAN).is_nan());
    }
}

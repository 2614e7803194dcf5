//! How wide a panel of the quadrature's rules an activation allows, estimated once per
//! activation from its Chebyshev coefficients on intervals of growing width (docs/theory.md
//! section 5).
//!
//! The rules grade their panels away from g's features (where its argument changes sign, its
//! kinks, its near singularities): a panel is at most as wide as its distance from the nearest
//! feature plus that feature's first panel, up to 3 standard deviations. That suits a g that
//! flattens out away from its features (tanh, GELU, the pieces of an ELU), whose nearest
//! singularity recedes as fast as the panels widen. A g that keeps varying (`sin(3 x)`) does
//! not: on a panel 10 wide its 12 Gauss-Legendre nodes miss oscillations that the averages
//! see, and I2 of `sin(3 x)` was off by 3e-4 at variance 16. Such a g gets a widest panel, in
//! x, that every rule keeps to.

use std::f64::consts::{FRAC_PI_2, PI, SQRT_2};

use crate::quadrature::QuadratureRule;
use crate::singularities::{chebyshev, chebyshev_points, typical_size};

/// The range the rules integrate over (8.5 standard deviations at variances up to 56), as the
/// singularity scan covers it.
const RANGE: f64 = 64.0;
/// Chebyshev points per interval, less one.
const ORDER: usize = 32;
/// A panel's 12 Gauss-Legendre nodes integrate polynomials of degree 23 exactly, so the
/// coefficients from this one on bound its error.
const FIRST_UNRESOLVED: usize = 24;
/// Coefficients from `FIRST_UNRESOLVED` on must stay below this fraction of g's size: a
/// thousandth of the 1e-10 the averages are held to, for the several panels a rule has.
const TOLERANCE: f64 = 1e-13;
/// The narrowest panel tried, in x (a g that needs narrower ones is beyond the rules, and
/// gets this: the documented limit).
const NARROWEST: f64 = PI / 64.0;
/// Intervals of width w start every w / STARTS.
const STARTS: f64 = 4.0;
/// The rules' first panel beside the point where g's argument changes sign and beside a kink,
/// in x (`panel_rule`: that fraction of the distance pi/2 they assume), pi/4.
const FIRST: f64 = QuadratureRule::DEFAULT.first_panel * FRAC_PI_2;

/// The widest panel, in x, on which g's 12-node rule is exact to `TOLERANCE` of g's size
/// wherever the graded rules could place one, or infinity where every width up to the range's
/// passes. The features are the point where g's argument changes sign, its `kinks` and its near
/// `singularities` (real part, distance), each with the width of its first panel in x. Widths
/// are tried from `FIRST` upwards by factors sqrt(2): a panel of width in (w / sqrt 2, w] lies at
/// least w / sqrt 2 less its feature's first panel from it, so it is inside an interval of
/// width w as far away, which is the one checked. Below `FIRST` every interval away from the
/// features is checked, down to `NARROWEST`.
pub(crate) fn widest_panel(g: impl Fn(f64) -> f64, kinks: &[f64], singularities: &[(f64, f64)]) -> f64 {
    let first_panel = QuadratureRule::DEFAULT.first_panel;
    let features: Vec<(f64, f64)> = std::iter::once(0.0)
        .chain(kinks.iter().copied())
        .map(|x| (x, FIRST))
        .chain(singularities.iter().map(|&(x, y)| (x, first_panel * y)))
        .collect();
    let (nodes, cosines) = chebyshev_points(ORDER);
    let typical = typical_size(&g);
    let resolved = |width: f64| {
        let step = width / STARTS;
        let count = ((2.0 * RANGE - width) / step).floor() as usize;
        (0..=count).all(|i| {
            let (a, b) = (-RANGE + i as f64 * step, -RANGE + i as f64 * step + width);
            let clear = features.iter().all(|&(x, first)| {
                let distance = if x < a { a - x } else { x - b };
                distance > (width / SQRT_2 - first).max(0.0)
            });
            if !clear {
                return true;
            }
            let centre = (a + b) / 2.0;
            let values: Vec<f64> = nodes.iter().map(|t| g(centre + width / 2.0 * t)).collect();
            let size = values.iter().fold(typical, |m, v| m.max(v.abs()));
            let tail = chebyshev(&values, &cosines, FIRST_UNRESOLVED)
                .iter()
                .fold(0.0f64, |m, c| m.max(c.abs()));
            // Not finite: the finiteness check at the definition speaks for g there.
            tail.is_nan() || tail <= TOLERANCE * size
        })
    };
    let mut width = FIRST;
    if !resolved(width) {
        while width > NARROWEST {
            width /= SQRT_2;
            if resolved(width) {
                return width;
            }
        }
        return width;
    }
    while width * SQRT_2 <= 2.0 * RANGE {
        if !resolved(width * SQRT_2) {
            return width;
        }
        width *= SQRT_2;
    }
    f64::INFINITY
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An activation by name, as the tests list them.
    type Named = (&'static str, fn(f64) -> f64);

    /// Activations that flatten out away from their features allow any panel the graded rules
    /// place, so their rules stay as they were: tanh, sigmoid and softplus, GELU and exp
    /// (Gaussian and exponential tails), polynomials of degree up to the rule's (x^3, x^20, which
    /// a 12-node panel integrates exactly), and ELU and tanh + step beside their kinks.
    #[test]
    fn activations_that_flatten_out_allow_any_panel() {
        let flat: [Named; 7] = [
            ("tanh", f64::tanh),
            ("sigmoid", |x| 1.0 / (1.0 + (-x).exp())),
            ("softplus", |x| (1.0 + x.exp()).ln()),
            ("GELU", |x| x * 0.5 * (1.0 + libm::erf(x / SQRT_2))),
            ("exp", |x| (x / 8.0).exp()),
            ("x^3", |x| x * x * x),
            ("x^20 / 64^20", |x| (x / 64.0).powi(20)),
        ];
        for (name, g) in flat {
            assert_eq!(widest_panel(g, &[], &[]), f64::INFINITY, "{name}");
        }
        let elu = |x: f64| if x > 0.0 { x } else { x.exp() - 1.0 };
        assert_eq!(widest_panel(elu, &[0.0], &[]), f64::INFINITY, "ELU");
        let tanh_step = |x: f64| x.tanh() + if x > 0.3 { 0.5 } else { -0.5 };
        assert_eq!(widest_panel(tanh_step, &[0.3], &[]), f64::INFINITY, "tanh + step");
    }

    /// sin(w x) keeps varying: its widest panel shrinks like 1 / w, and a 12-node panel of that
    /// width integrates it to the tolerance (its coefficients on [-W/2, W/2] are
    /// 2 J_n(w W / 2), below 1e-13 from n = 24 on where w W / 2 is at most about 5.6).
    #[test]
    fn an_oscillating_activation_gets_panels_of_its_period() {
        for w in [0.5, 1.0, 3.0, 10.0] {
            let widest = widest_panel(|x| (w * x).sin(), &[], &[]);
            let half_phase = w * widest / 2.0;
            assert!((2.0..=5.6).contains(&half_phase), "sin({w} x): widest panel {widest}");
        }
    }
}

//! The series against the quadrature they replace and against closed forms.

use super::*;
use crate::averages::{Averages, Erf, Mehler, Quadrature, Relu, Tanh, TanhFn};

/// Covariances (c11, c12, c22) where the paper's runs go: small and moderate variances,
/// correlations up to 0.95, one variance zero, and one variable with itself.
const PAIRS: [(f64, f64, f64); 9] = [
    (1.0, 0.3, 0.8),
    (0.01, 0.004, 0.02),
    (2.6, 2.3, 2.2),
    (2.0, -1.5, 1.9),
    (0.7, 0.0, 1.3),
    (0.0, 0.0, 1.5),
    (1.7, 1.7, 1.7),
    (9.0, 4.0, 4.0),
    (25.0, 20.0, 30.0),
];

/// Every pair above as the (x1, x3) pair of an I3, with x2 correlated to both.
fn triples() -> Vec<[f64; 6]> {
    PAIRS
        .iter()
        .map(|&(c11, c13, c33)| {
            // x2 = 0.4 x1 + 0.3 x3 + 0.5 xi: a valid covariance whatever the pair.
            let c12 = 0.4 * c11 + 0.3 * c13;
            let c23 = 0.4 * c13 + 0.3 * c33;
            let c22 = 0.16 * c11 + 0.09 * c33 + 0.24 * c13 + 0.25;
            [c11, c12, c13, c22, c23, c33]
        })
        .collect()
}

fn close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{what}: {got:?} against {want:?}"
        );
    }
}

/// The coefficients do not move when the rule is refined (twice the nodes per panel, panels
/// half as wide, a wider range): the rule has converged, to rounding.
#[test]
fn coefficients_are_converged_in_their_rule() {
    let g = Static::<TanhFn>(std::marker::PhantomData);
    for c in [0.01, 1.0, 2.6, 9.0] {
        for order in ORDERS {
            let e = Expansion::new(&g, c, order);
            let fine = rule(order);
            let fine = QuadratureRule {
                panel_nodes: 2 * fine.panel_nodes,
                max_panel: fine.max_panel / 2.0,
                first_panel: fine.first_panel / 2.0,
                z_max: fine.z_max + 2.0,
                ..fine
            };
            let f = Expansion::with_rule(&g, c, order, fine);
            for j in 0..4 {
                let scale = f.energy[j].sqrt().max(1.0);
                for n in 0..=order {
                    let d = (e.coef[j][n] - f.coef[j][n]).abs();
                    // 1e-15 of g's scale, and the rounding of sums over ~500 nodes.
                    assert!(d <= 4e-15 * scale, "c = {c}, order {order}, j = {j}, n = {n}: {d:e}");
                }
            }
        }
    }
}

/// The static tanh of the averages module, for the tests.
pub(super) struct Static<A>(pub(super) std::marker::PhantomData<A>);

impl<A: crate::averages::Activation + 'static> Smooth for Static<A> {
    fn g(&self, x: f64) -> f64 {
        A::g(x)
    }
    fn dg(&self, x: f64) -> f64 {
        A::dg(x)
    }
    fn d2g(&self, x: f64) -> f64 {
        A::d2g(x)
    }
    fn d3g(&self, x: f64) -> f64 {
        A::d3g(x)
    }
    fn cache_id(&self) -> u64 {
        // Distinct from the averages module's ids (hashes of type ids).
        7
    }
}

/// tanh's series agree with its converged quadrature to 1e-10 (the quadrature's own accuracy),
/// averages and gradients, including where the series hand over to the quadrature.
#[test]
fn tanh_series_agree_with_quadrature() {
    type Q = Quadrature<TanhFn>;
    for p @ (c11, c12, c22) in PAIRS {
        close(
            &format!("i2 at {p:?}"),
            &[Tanh::i2(c11, c12, c22)],
            &[Q::i2(c11, c12, c22)],
            1e-10,
        );
        close(
            &format!("j2 at {p:?}"),
            &[Tanh::j2(c11, c12, c22)],
            &[Q::j2(c11, c12, c22)],
            1e-10,
        );
        close(
            &format!("i21 at {p:?}"),
            &[Tanh::i21(c11, c12, c22)],
            &[Q::i21(c11, c12, c22)],
            1e-10,
        );
        close(
            &format!("i22 at {p:?}"),
            &[Tanh::i22(c11, c12, c22)],
            &[Q::i22(c11, c12, c22)],
            1e-10,
        );
        close(
            &format!("i2_grad at {p:?}"),
            &Tanh::i2_grad(c11, c12, c22),
            &Q::i2_grad(c11, c12, c22),
            1e-10,
        );
        close(
            &format!("j2_grad at {p:?}"),
            &Tanh::j2_grad(c11, c12, c22),
            &Q::j2_grad(c11, c12, c22),
            1e-10,
        );
    }
    for p @ [a, b, c, d, e, f] in triples() {
        close(
            &format!("i3 at {p:?}"),
            &[Tanh::i3(a, b, c, d, e, f)],
            &[Q::i3(a, b, c, d, e, f)],
            1e-10,
        );
        close(
            &format!("i3_grad at {p:?}"),
            &Tanh::i3_grad(a, b, c, d, e, f),
            &Q::i3_grad(a, b, c, d, e, f),
            1e-10,
        );
    }
}

/// erf's series against its closed forms, which owe nothing to either numerical path: 1e-12.
#[test]
fn erf_series_agree_with_closed_forms() {
    type S = Mehler<Erf>;
    for p @ (c11, c12, c22) in PAIRS {
        close(
            &format!("i2 at {p:?}"),
            &[S::i2(c11, c12, c22)],
            &[Erf::i2(c11, c12, c22)],
            1e-12,
        );
        close(
            &format!("j2 at {p:?}"),
            &[S::j2(c11, c12, c22)],
            &[Erf::j2(c11, c12, c22)],
            1e-12,
        );
        close(
            &format!("i21 at {p:?}"),
            &[S::i21(c11, c12, c22)],
            &[Erf::i21(c11, c12, c22)],
            1e-12,
        );
        close(
            &format!("i22 at {p:?}"),
            &[S::i22(c11, c12, c22)],
            &[Erf::i22(c11, c12, c22)],
            1e-12,
        );
        close(
            &format!("i2_grad at {p:?}"),
            &S::i2_grad(c11, c12, c22),
            &Erf::i2_grad(c11, c12, c22),
            1e-12,
        );
        close(
            &format!("j2_grad at {p:?}"),
            &S::j2_grad(c11, c12, c22),
            &Erf::j2_grad(c11, c12, c22),
            1e-12,
        );
    }
    for p @ [a, b, c, d, e, f] in triples() {
        close(
            &format!("i3 at {p:?}"),
            &[S::i3(a, b, c, d, e, f)],
            &[Erf::i3(a, b, c, d, e, f)],
            1e-12,
        );
        close(
            &format!("i3_grad at {p:?}"),
            &S::i3_grad(a, b, c, d, e, f),
            &Erf::i3_grad(a, b, c, d, e, f),
            1e-12,
        );
    }
}

/// (x + |x|) / 2 with its kink: the series (where their bound lets them) and the quadrature
/// behind them meet ReLU's closed forms to 1e-9.
#[test]
fn kinked_activation_meets_relu_closed_forms() {
    struct Ramp([f64; 1]);
    impl Smooth for Ramp {
        fn g(&self, x: f64) -> f64 {
            x.max(0.0)
        }
        fn dg(&self, x: f64) -> f64 {
            if x > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        fn d2g(&self, _x: f64) -> f64 {
            0.0
        }
        fn d3g(&self, _x: f64) -> f64 {
            0.0
        }
        fn kinks(&self) -> &[f64] {
            &self.0
        }
        fn cache_id(&self) -> u64 {
            8
        }
    }
    let s = Series(&Ramp([0.0]));
    // Not at c11 = 0, where x1 sits on the kink and the closed forms take g'(0) = 1/2.
    for p @ (c11, c12, c22) in PAIRS.into_iter().filter(|p| p.0 > 0.0) {
        close(
            &format!("i2 at {p:?}"),
            &[s.i2(c11, c12, c22)],
            &[Relu::i2(c11, c12, c22)],
            1e-9,
        );
        close(
            &format!("j2 at {p:?}"),
            &[s.j2(c11, c12, c22)],
            &[Relu::j2(c11, c12, c22)],
            1e-9,
        );
        close(
            &format!("i21 at {p:?}"),
            &[s.i21(c11, c12, c22)],
            &[Relu::i21(c11, c12, c22)],
            1e-9,
        );
        close(
            &format!("i22 at {p:?}"),
            &[s.i22(c11, c12, c22)],
            &[Relu::i22(c11, c12, c22)],
            1e-9,
        );
    }
    for p @ [a, b, c, d, e, f] in triples().into_iter().filter(|p| p[0] > 0.0) {
        close(
            &format!("i3 at {p:?}"),
            &[s.i3(a, b, c, d, e, f)],
            &[Relu::i3(a, b, c, d, e, f)],
            1e-9,
        );
    }
}

/// The bound refuses what it cannot vouch for: at variance 25 and correlation 0.99 tanh's
/// coefficients have not decayed within 97 terms.
#[test]
fn series_refuse_slow_convergence() {
    let g = Static::<TanhFn>(std::marker::PhantomData);
    let (e1, e2) = (Expansion::new(&g, 25.0, 96), Expansion::new(&g, 25.0, 96));
    assert!(series(&e1, &e2, 0.99, 0, 0).is_none());
    assert!(series(&e1, &e2, 0.2, 0, 0).is_some());
}

/// Within the paper's range the series serve the pairs themselves, for tanh, and the
/// two-variable quadrature is the exception: values (g g, g'' g, g' g') and the gradients'
/// pairs (with g''') at variances up to 5 and correlations up to 0.8 in magnitude. (Beyond,
/// near 0.9 at variance 2, tanh's coefficients decay too slowly for 97 terms.)
#[test]
fn series_serve_the_papers_range() {
    let g = Static::<TanhFn>(std::marker::PhantomData);
    let pairs = [(0, 0), (2, 0), (1, 1), (3, 1), (2, 2), (1, 3)];
    for c in [0.01, 0.1, 0.5, 1.0, 2.0, 3.0, 5.0] {
        for r in [-0.8, -0.5, 0.0, 0.3, 0.5, 0.7, 0.8] {
            let served = ORDERS.iter().any(|&order| {
                let e = Expansion::new(&g, c, order);
                pairs.iter().all(|&(a, b)| series(&e, &e, r, a, b).is_some())
            });
            assert!(served, "variance {c}, correlation {r}");
        }
    }
}

/// I3 by series against the quadrature at every triple (to the 1e-10 every average is held
/// to), and the regression form served by the series at each (c11, c13, c33) of `served`.
fn regression_i3_meets_the_quadrature(g: &impl Smooth, served: &[(f64, f64, f64)]) {
    for [c11, c12, c13, c22, c23, c33] in triples() {
        let want = crate::quadrature::Quad(g).i3(c11, c12, c13, c22, c23, c33);
        let got = Series(g).i3(c11, c12, c13, c22, c23, c33);
        close(
            &format!("i3 at {:?}", [c11, c12, c13, c22, c23, c33]),
            &[got],
            &[want],
            1e-10,
        );
    }
    for &(c11, c13, c33) in served {
        let (c12, c23) = (0.4 * c11 + 0.3 * c13, 0.4 * c13 + 0.3 * c33);
        assert!(
            Series(g).i3_by_regression(c11, c12, c13, c23, c33).is_some(),
            "{c11} {c13} {c33}"
        );
    }
}

/// |tanh(x)|: g' jumps at 0 between curved pieces, so g'' has a Dirac part there and Stein's
/// form of I3 does not hold. The regression form (no derivative beyond g') meets the
/// quadrature to 1e-10 at every triple, and it is the series that serve the moderate
/// correlations (the slow decay of coefficients with a jump refuses the strong ones).
#[test]
fn where_g_prime_jumps_i3_comes_from_series_of_x_g_and_x_g_prime() {
    struct AbsTanh;
    impl Smooth for AbsTanh {
        fn g(&self, x: f64) -> f64 {
            x.tanh().abs()
        }
        fn dg(&self, x: f64) -> f64 {
            x.signum() / x.cosh().powi(2)
        }
        fn d2g(&self, x: f64) -> f64 {
            -2.0 * x.tanh().abs() / x.cosh().powi(2)
        }
        fn d3g(&self, x: f64) -> f64 {
            let (t, c2) = (x.tanh(), x.cosh().powi(-2));
            x.signum() * (4.0 * t * t * c2 - 2.0 * c2 * c2)
        }
        fn kinks(&self) -> &[f64] {
            &[0.0]
        }
        fn cache_id(&self) -> u64 {
            10
        }
    }
    let g = AbsTanh;
    assert_eq!(g.continuous_derivatives(), 1);
    regression_i3_meets_the_quadrature(
        &g,
        &[(1.0, 0.3, 0.8), (0.01, 0.004, 0.02), (0.7, 0.0, 1.3), (2.0, -1.5, 1.9)],
    );
}

/// tanh(x) + sign(x - 0.3)/2: g itself jumps, at 0.3, between curved pieces.
struct TanhStep;

impl Smooth for TanhStep {
    fn g(&self, x: f64) -> f64 {
        x.tanh() + 0.5 * crate::averages::sign(x - 0.3)
    }
    fn dg(&self, x: f64) -> f64 {
        x.cosh().powi(-2)
    }
    fn d2g(&self, x: f64) -> f64 {
        -2.0 * x.tanh() * x.cosh().powi(-2)
    }
    fn d3g(&self, x: f64) -> f64 {
        let (t, c2) = (x.tanh(), x.cosh().powi(-2));
        4.0 * t * t * c2 - 2.0 * c2 * c2
    }
    fn kinks(&self) -> &[f64] {
        &[0.3]
    }
    fn continuous_derivatives(&self) -> usize {
        0
    }
    fn cache_id(&self) -> u64 {
        11
    }
}

/// Where g itself jumps, the regression form of I3 asks nothing of g beyond its values and g'
/// between the jumps (the g' of I3 is the pointwise one, as in the simulator's update), so it
/// holds there too and meets the quadrature to the 1e-10 that every average is held to; the
/// series serve the moderate correlations.
#[test]
fn where_g_jumps_i3_comes_from_the_same_series() {
    regression_i3_meets_the_quadrature(&TanhStep, &[(1.0, 0.3, 0.8), (0.7, 0.0, 1.3), (2.0, -0.5, 1.9)]);
}

/// tanh + step near one unit seen twice: the inner average, as a function of the outer
/// variable, is the jump smoothed over l22 / |l21|. Without a panel edge there the default rule
/// was off by 2e-4 (I2) and 1e-5 (I3) at a correlation of 1 - 1e-6; the refined rule is the
/// reference, within the 1e-10 every average is held to (measured: rounding).
#[test]
fn a_jump_seen_from_the_outer_variable_is_resolved() {
    use crate::quadrature::{with_quadrature_rule, Quad, QuadratureRule};
    let g = TanhStep;
    for gap in [1e-2, 1e-4, 1e-6] {
        let (c11, c13, c33) = (1.0, 1.0 - gap, 1.0);
        let (c12, c23) = (0.4 * c11 + 0.3 * c13, 0.4 * c13 + 0.3 * c33);
        let c22 = 0.16 * c11 + 0.09 * c33 + 0.24 * c13 + 0.25;
        let both = || [Quad(&g).i2(c11, c13, c33), Quad(&g).i3(c11, c12, c13, c22, c23, c33)];
        let (default, refined) = (both(), with_quadrature_rule(QuadratureRule::DEFAULT.refined(), both));
        for (d, r) in default.iter().zip(&refined) {
            assert!((d - r).abs() <= 1e-10 * r.abs().max(1.0), "gap {gap}: {d} against {r}");
        }
    }
}

/// GELU, x Phi(x): entire, and at large variances the anti-aligned pairs of its runs defeat
/// every series length.
struct Gelu;

impl Smooth for Gelu {
    fn g(&self, x: f64) -> f64 {
        self.all(x)[0]
    }
    fn dg(&self, x: f64) -> f64 {
        self.all(x)[1]
    }
    fn d2g(&self, x: f64) -> f64 {
        self.all(x)[2]
    }
    fn d3g(&self, x: f64) -> f64 {
        self.all(x)[3]
    }
    fn all(&self, x: f64) -> [f64; 4] {
        let phi = (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let cdf = 0.5 * (1.0 + libm::erf(x / std::f64::consts::SQRT_2));
        [x * cdf, cdf + x * phi, (2.0 - x * x) * phi, x * (x * x - 4.0) * phi]
    }
    fn cache_id(&self) -> u64 {
        8
    }
}

/// A longer series given up on a prediction (`sums::promising`) is never one that converges:
/// over variances from 0.3 to 40 and correlations of either sign up to 0.999, wherever a series
/// of some length meets its bound for I2's gradient pairs, the search with predictions finds
/// the same value, for tanh and for GELU. The predictions must also spare some lengths (GELU's
/// strong correlations at large variances), or they would be no use.
#[test]
fn predictions_never_give_up_a_series_that_converges() {
    fn check<S: Smooth>(g: &S) -> usize {
        let pairs = [(2, 0), (1, 1), (0, 2)];
        let mut spared = 0;
        let variances = [0.3, 1.0, 4.0, 16.0, 40.0];
        for c11 in variances {
            for c22 in variances {
                for r in [0.5, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, -0.9, -0.995] {
                    let all = |e1: &Expansion, e2: &Expansion| pairs.map(|(a, b)| series(e1, e2, r, a, b));
                    let mut tried = 0;
                    let predicted = Series(g).over_orders(c11, c22, r, &pairs, |e1, e2| {
                        tried += 1;
                        let [a, b, c] = all(e1, e2);
                        Some([a?, b?, c?])
                    });
                    if predicted.is_none() && tried < ORDERS.len() {
                        spared += 1;
                    }
                    let every_length = ORDERS.iter().find_map(|&order| {
                        let (e1, e2) = (expansion(g, c11, order), expansion(g, c22, order));
                        let [a, b, c] = all(&e1, &e2);
                        Some([a?, b?, c?])
                    });
                    if every_length.is_some() {
                        assert_eq!(predicted, every_length, "c11 = {c11}, c22 = {c22}, r = {r}");
                    }
                }
            }
        }
        spared
    }
    // Measured: fewer lengths tried at 82 of the 225 points for tanh, 32 for GELU.
    check(&Static::<TanhFn>(std::marker::PhantomData));
    assert!(check(&Gelu) > 0, "GELU's hopeless pairs were all tried at every length");
}

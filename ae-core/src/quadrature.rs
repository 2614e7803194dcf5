//! Gaussian averages of any activation by quadrature: a graded composite Gauss-Legendre rule
//! over the Cholesky factor of the covariance, reduced to one dimension for J2, I21, I22 (and
//! for degenerate covariances) and to two for I2 and I3, with panel edges at the points where
//! the activation's argument changes sign and at its kinks (docs/theory.md section 5).

use std::f64::consts::FRAC_PI_2;

/// What the quadrature needs of an activation: g and its first three derivatives (the gradients
/// use the second and third, by Price's theorem), and where g' jumps.
pub trait Smooth {
    fn g(&self, x: f64) -> f64;
    fn dg(&self, x: f64) -> f64;
    fn d2g(&self, x: f64) -> f64;
    fn d3g(&self, x: f64) -> f64;
    /// Where g' jumps (in x), in increasing order: panel edges of every rule.
    fn kinks(&self) -> &[f64] {
        &[]
    }
    /// How many of g, g', g'', g''' are continuous at every kink: 4 where none jumps (as where
    /// there are no kinks), 1 where g' jumps. The derivative after the last continuous one has
    /// jumps, and the next a Dirac part that no rule of values sees, so Stein's lemma and
    /// Price's theorem may move derivatives onto g only as far as this count allows.
    fn continuous_derivatives(&self) -> usize {
        if self.kinks().is_empty() {
            4
        } else {
            1
        }
    }
    /// Where g comes nearer a complex singularity than the rules assume (tanh's +-i pi/2 over
    /// the point where its argument changes sign): (real part, distance to the real axis) in
    /// x, each of which gets graded panels of its own (`crate::singularities`).
    fn singularities(&self) -> &[(f64, f64)] {
        &[]
    }
    /// The widest panel, in x, that g allows anywhere (`crate::resolution`): infinite for a g
    /// that flattens out away from its features, as the graded rules assume.
    fn widest_panel(&self) -> f64 {
        f64::INFINITY
    }
    /// g, g', g'', g''' at x (one call where the activation computes them together).
    fn all(&self, x: f64) -> [f64; 4] {
        [self.g(x), self.dg(x), self.d2g(x), self.d3g(x)]
    }
    /// `all` at each of `xs`, into `out` (as long as `xs`).
    fn all_many(&self, xs: &[f64], out: &mut [[f64; 4]]) {
        for (o, &x) in out.iter_mut().zip(xs) {
            *o = self.all(x);
        }
    }
    /// Identifies the activation in the caches of the series averages (`crate::mehler`).
    fn cache_id(&self) -> u64;
}

/// The averages of an activation by quadrature.
pub struct Quad<'a, S: ?Sized>(pub &'a S);

/// The rule in force on this thread and its Gauss-Legendre nodes, and the buffers a rule is
/// built in (the inner rule is rebuilt for every outer node: no allocation there).
struct RuleState {
    rule: QuadratureRule,
    legendre: (Vec<f64>, Vec<f64>),
    /// Gauss-Hermite nodes and weights for inner variables whose own spread is small
    /// (`expect2_vec`), the n-node rule at index n, each built when first needed.
    hermite: Vec<Vec<(f64, f64)>>,
    outer: Vec<(f64, f64)>,
    inner: Vec<(f64, f64)>,
    edges: Vec<f64>,
    centers: Vec<f64>,
    /// g's near singularities in the current variable: (centre, width), as `singular_features`.
    singular: Vec<(f64, f64)>,
}

thread_local! {
    static STATE: std::cell::RefCell<Option<RuleState>> = const { std::cell::RefCell::new(None) };
}

fn with_state<R>(f: impl FnOnce(&mut RuleState) -> R) -> R {
    STATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let state = slot.get_or_insert_with(|| RuleState {
            rule: QuadratureRule::DEFAULT,
            legendre: gauss_legendre(QuadratureRule::DEFAULT.panel_nodes),
            hermite: Vec::new(),
            outer: Vec::new(),
            inner: Vec::new(),
            edges: Vec::new(),
            centers: Vec::new(),
            singular: Vec::new(),
        });
        f(state)
    })
}

/// Runs `f` with the quadrature averages of this thread using `rule` (convergence studies).
pub fn with_quadrature_rule<R>(rule: QuadratureRule, f: impl FnOnce() -> R) -> R {
    let previous = with_state(|s| {
        let previous = s.rule;
        s.rule = rule;
        s.legendre = gauss_legendre(rule.panel_nodes);
        s.hermite.clear();
        previous
    });
    let out = f();
    with_state(|s| {
        s.rule = previous;
        s.legendre = gauss_legendre(previous.panel_nodes);
        s.hermite.clear();
    });
    out
}

const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// How a rule's panels are graded about its features (in z): `d`, the distance from each
/// centre of the nearest singularity the rules assume (the first panel is half of it);
/// `singular`, more features (centre, width) each graded to its own width
/// (`singular_features`); and no panel wider than `widest` (`widest_panel`, where g keeps
/// varying far from its features; infinite for the others).
#[derive(Clone, Copy)]
pub(crate) struct Grading<'a> {
    pub d: f64,
    pub singular: &'a [(f64, f64)],
    pub widest: f64,
}

/// Nodes and weights (Gaussian density included) of a composite Gauss-Legendre rule for
/// E_{z~N(0,1)}[f(z)] where f is analytic except for complex singularities at distance `d`
/// from `center` (tanh(a z): poles at +-i pi/(2a), so d = pi/(2a)). Panels double in width away
/// from the feature, so each panel's distance to it is at least its own width and
/// Gauss-Legendre converges geometrically on every panel (error ~ 5.8^(-2 nodes) on the
/// outer panels, ~4.7^(-2 nodes) on the first: below 1e-13 with 12 nodes). Gauss-Hermite
/// rules, by contrast, converge slowly once poles come close to the real axis: 64 nodes were
/// off by 2e-5 at variance 3 and 4e-4 at variance 9.
///
/// Several features (kinks of g, where g' jumps, besides the point where g's argument changes
/// sign) each get their own graded panels: the rule takes the union of their edges, so that
/// every kink is a panel edge and each piece is integrated as the analytic function it is.
pub(crate) fn panel_rule(
    rule: &QuadratureRule,
    legendre: &(Vec<f64>, Vec<f64>),
    centers: &[f64],
    grading: Grading,
    edges: &mut Vec<f64>,
    out: &mut Vec<(f64, f64)>,
) {
    out.clear();
    edges.clear();
    let Grading { d, singular, widest } = grading;
    let z_max = rule.z_max;
    let max_panel = rule.max_panel.min(widest);
    let mut grade = |center: f64, d: f64| {
        let first = (d * rule.first_panel).clamp(1e-6, max_panel);
        let c = center.clamp(-z_max, z_max);
        for side in [1.0, -1.0] {
            let (mut e, mut step) = (c, first);
            while e * side < z_max {
                e = side * (side * (e + side * step)).min(z_max);
                edges.push(e);
                step = (step * 2.0).min(max_panel);
            }
        }
        edges.push(c);
    };
    for &center in centers {
        grade(center, d);
    }
    for &(center, width) in singular {
        grade(center, width);
    }
    edges.sort_by(f64::total_cmp);
    // Edges a rounding error apart (one kink seen through two slopes that differ in the last
    // bit) would make a panel so thin that its nodes round onto the kink, where g' is NaN.
    edges.dedup_by(|b, a| (*b - *a).abs() <= 1e-12 * a.abs().max(1.0));
    let (x, w) = legendre;
    for pair in edges.windows(2) {
        let (mid, half) = ((pair[0] + pair[1]) / 2.0, (pair[1] - pair[0]) / 2.0);
        for (xi, wi) in x.iter().zip(w) {
            let z = mid + half * xi;
            out.push((z, wi * half * INV_SQRT_2PI * (-0.5 * z * z).exp()));
        }
    }
}

/// Distance of the nearest complex singularity, in the standard-normal variable, of g(s z):
/// tanh's poles at +-i pi/2 in x; any activation is assumed to vary on scale ~1 in x.
pub(crate) fn feature_width(s: f64) -> f64 {
    FRAC_PI_2 / s.abs().max(1e-300)
}

/// Appends g's near singularities as features in z of g(slope z + offset): (centre, width).
pub(crate) fn singular_features<S: Smooth + ?Sized>(g: &S, slope: f64, offset: f64, out: &mut Vec<(f64, f64)>) {
    if slope != 0.0 {
        out.extend(
            g.singularities()
                .iter()
                .map(|&(x, y)| ((x - offset) / slope, y / slope.abs())),
        );
    }
}

/// Appends the near singularities of a product of g at each of `slopes` (in z), each graded
/// to 1/sqrt(k) of its width for k slopes: where a feature is a narrow bump (an entire g's
/// Gaussian shoulders, which the scan reads as singularities), a product of k of them is
/// sqrt(k) times narrower (I2 of exp(-25 (x - 0.5)^2) for one unit seen twice, or nearly, was
/// off by 2.7e-10). For a true singularity it only adds panels.
pub(crate) fn product_singular_features<S: Smooth + ?Sized>(g: &S, slopes: &[f64], out: &mut Vec<(f64, f64)>) {
    let from = out.len();
    for &s in slopes {
        singular_features(g, s, 0.0, out);
    }
    let narrower = (slopes.len() as f64).sqrt();
    for (_, width) in &mut out[from..] {
        *width /= narrower;
    }
}

/// The widest panel, in z, for g(slope z + offset): half g's own (`Smooth::widest_panel`), in
/// z. g's own width leaves g alone a polynomial of the panel rule's degree; the half leaves
/// room for what multiplies it, the Gaussian weight (whose variation over the default panels
/// of 3 is itself of about that degree) and the other factors of an integrand.
pub(crate) fn widest_panel<S: Smooth + ?Sized>(g: &S, slope: f64) -> f64 {
    g.widest_panel() / (2.0 * slope.abs())
}

/// The half-width, in z, of the strip about the real axis in which g(s z) is analytic as the
/// rules see it: `feature_width(s)`, or less where g has near singularities.
pub(crate) fn strip_width<S: Smooth + ?Sized>(g: &S, s: f64) -> f64 {
    g.singularities()
        .iter()
        .fold(feature_width(s), |d, &(_, y)| d.min(y / s.abs().max(1e-300)))
}

/// The features in z where `x = slope z + offset` crosses 0 or one of `kinks` (in x).
pub(crate) fn features(slope: f64, offset: f64, kinks: &[f64], out: &mut Vec<f64>) {
    out.clear();
    if slope == 0.0 {
        out.push(0.0);
        return;
    }
    out.push(-offset / slope);
    out.extend(kinks.iter().map(|k| (k - offset) / slope));
}

/// E[f(z)], z ~ N(0,1), for an f analytic but for features at `centers` (kinks, or places
/// where it changes on a scale `d`), whose nearest complex singularity is at least `d` away.
/// `singular`: more features, each with its own width (`singular_features`).
pub(crate) fn expect1_features(
    centers: &[f64],
    d: f64,
    singular: &[(f64, f64)],
    widest: f64,
    f: impl Fn(f64) -> f64,
) -> f64 {
    with_state(|st| {
        panel_rule(
            &st.rule,
            &st.legendre,
            centers,
            Grading { d, singular, widest },
            &mut st.edges,
            &mut st.outer,
        );
        st.outer.iter().map(|&(z, w)| w * f(z)).sum()
    })
}

/// E[f(z)], z ~ N(0,1), where f varies like g(s z) (features at z = 0, at g's kinks and at
/// its near singularities).
fn expect1<S: Smooth + ?Sized>(s: f64, g: &S, f: impl Fn(f64) -> f64) -> f64 {
    expect1_vec(s, g, |z| [f(z)])[0]
}

/// `expect1` for several integrands sharing one pass over the nodes.
fn expect1_vec<const N: usize, S: Smooth + ?Sized>(s: f64, g: &S, f: impl Fn(f64) -> [f64; N]) -> [f64; N] {
    expect1_slopes(s, &[s], g, f)
}

/// `expect1_vec` for integrands of g at several multiples of z (`slopes`: a degenerate
/// two-variable average), each with its kinks and near singularities; `width` scales the
/// panels.
fn expect1_slopes<const N: usize, S: Smooth + ?Sized>(
    width: f64,
    slopes: &[f64],
    g: &S,
    f: impl Fn(f64) -> [f64; N],
) -> [f64; N] {
    let kinks = g.kinks();
    with_state(|st| {
        st.singular.clear();
        product_singular_features(g, slopes, &mut st.singular);
        st.centers.clear();
        if kinks.is_empty() {
            st.centers.push(0.0);
        }
        let mut more = Vec::new();
        for &s in slopes.iter().filter(|_| !kinks.is_empty()) {
            features(s, 0.0, kinks, &mut more);
            st.centers.extend_from_slice(&more);
        }
        let s = width;
        // A product of g at several slopes varies as fast as the sum of theirs.
        let combined: f64 = slopes.iter().map(|s| s.abs()).sum();
        let grading = Grading {
            d: feature_width(s),
            singular: &st.singular,
            widest: widest_panel(g, combined),
        };
        panel_rule(
            &st.rule,
            &st.legendre,
            &st.centers,
            grading,
            &mut st.edges,
            &mut st.outer,
        );
        let mut acc = [0.0; N];
        for &(z, w) in st.outer.iter() {
            for (a, v) in acc.iter_mut().zip(f(z)) {
                *a += w * v;
            }
        }
        acc
    })
}

/// E[f(z1, z2)] over independent standard normals, for integrands built from g(x1) or g'(x1)
/// with x1 = l11 z1 and g(x3) with x3 = l21 z1 + l22 z2 (l22 > 0). The inner rule centres its
/// panels where x3 changes sign for the current z1; the outer rule where x1 does.
fn expect2<S: Smooth + ?Sized>(l11: f64, l21: f64, l22: f64, g: &S, f: impl Fn(f64, f64) -> f64) -> f64 {
    expect2_vec(l11, l21, l22, g, |z1, z2| [f(z1, z2)])[0]
}

/// `expect2` for several integrands sharing one pass over the nodes; the panels of each
/// variable have edges at its kinks too.
pub(crate) fn expect2_vec<const N: usize, S: Smooth + ?Sized>(
    l11: f64,
    l21: f64,
    l22: f64,
    g: &S,
    f: impl Fn(f64, f64) -> [f64; N],
) -> [f64; N] {
    // Multiplying by an outer factor of 1 is exact: the same sums as without one.
    let [sums] = expect2_factored(
        l11,
        l21,
        l22,
        g,
        |_| [1.0],
        |z1, nodes| {
            let mut part = [0.0; N];
            for &(z2, w2) in nodes {
                for (a, v) in part.iter_mut().zip(f(z1, z2)) {
                    *a += w2 * v;
                }
            }
            part
        },
    );
    sums
}

/// E[o_a(z1) i_b(z1, z2)] for every a and b, as `expect2_vec`, where each integrand is a
/// factor of z1 alone times one of both: the inner rule sums the B inner integrands, and the
/// outer rule multiplies them by the A factors, instead of the inner rule summing all A B
/// products (the products of two units' g, g', g'', g''' take a quarter of the work).
/// `inner_sums(z1, nodes)` is the inner rule's sum, over its (z2, weight) nodes, of each
/// weighted inner integrand: given all nodes at once, it can evaluate g at them in one call.
pub(crate) fn expect2_factored<const A: usize, const B: usize, S: Smooth + ?Sized>(
    l11: f64,
    l21: f64,
    l22: f64,
    g: &S,
    outer_factors: impl Fn(f64) -> [f64; A],
    mut inner_sums: impl FnMut(f64, &[(f64, f64)]) -> [f64; B],
) -> [[f64; B]; A] {
    let kinks = g.kinks();
    with_state(|st| {
        let RuleState {
            rule,
            legendre,
            hermite,
            outer,
            inner,
            edges,
            centers,
            singular,
        } = st;
        features(l11, 0.0, kinks, centers);
        singular.clear();
        // The inner average, as a function of z1, is no nearer a singularity than g(l21 z1),
        // and the outer integrand is its product with g(l11 z1).
        product_singular_features(g, &[l11, l21], singular);
        let mut d1 = feature_width(l11.abs().max(l21.abs()));
        // Where g itself jumps, the inner average is, as a function of z1, a jump smoothed over
        // l22 / |l21| around z1 = k / l21: near one unit seen twice, steeper than any feature of
        // g(x1), and it had no panel edge (I2 of tanh + step was off by 2e-4 at a correlation of
        // 1 - 1e-6). Where only g' jumps, the outer rule met the refined one to rounding.
        if g.continuous_derivatives() == 0 && l21 != 0.0 && l22 > 0.0 {
            centers.extend(kinks.iter().map(|k| k / l21));
            d1 = d1.min(feature_width(l21.abs() / l22));
        }
        // The outer integrand multiplies g(x1) by the inner average, which varies with z1 as
        // g(l21 z1) does: their product as fast as both together.
        let widest_outer = widest_panel(g, l11.abs() + l21.abs());
        let grading = Grading {
            d: d1,
            singular,
            widest: widest_outer,
        };
        panel_rule(rule, legendre, centers, grading, edges, outer);
        let d2 = feature_width(l22);
        let strip = strip_width(g, l22);
        let widest_inner = widest_panel(g, l22);
        let mut smooth_inner = kinks.is_empty() && strip >= rule.hermite_width;
        let hermite: &[(f64, f64)] = if smooth_inner {
            let nodes = hermite_rule(hermite, hermite_nodes(strip, rule));
            // Where g keeps varying, the Gauss-Hermite nodes must all lie on one panel as wide
            // as g allows (there a polynomial of the rule's degree stands for g).
            let span = 2.0 * nodes.iter().fold(0.0f64, |m, &(z, _)| m.max(z.abs()));
            smooth_inner = span <= widest_inner;
            nodes
        } else {
            &[]
        };
        let mut acc = [[0.0; B]; A];
        for &(z1, w1) in outer.iter() {
            let nodes: &[(f64, f64)] = if smooth_inner {
                hermite
            } else {
                features(l22, l21 * z1, kinks, centers);
                singular.clear();
                singular_features(g, l22, l21 * z1, singular);
                let grading = Grading {
                    d: d2,
                    singular,
                    widest: widest_inner,
                };
                panel_rule(rule, legendre, centers, grading, edges, inner);
                inner
            };
            let part = inner_sums(z1, nodes);
            for (row, factor) in acc.iter_mut().zip(outer_factors(z1)) {
                let weight = w1 * factor;
                for (a, p) in row.iter_mut().zip(part) {
                    *a += weight * p;
                }
            }
        }
        acc
    })
}

/// Pivots below this (relative to the diagonal) count as zero: the covariance is singular there.
pub(crate) const PIVOT_EPS: f64 = 1e-13;

/// Cholesky of a 2x2 covariance that tolerates semi-definiteness: (L11, L21, L22).
pub(crate) fn chol2(c11: f64, c12: f64, c22: f64) -> (f64, f64, f64) {
    let l11 = c11.max(0.0).sqrt();
    let l21 = if l11 > 0.0 { c12 / l11 } else { 0.0 };
    let d = c22 - l21 * l21;
    let l22 = if d > PIVOT_EPS * c22.abs() { d.sqrt() } else { 0.0 };
    (l11, l21, l22)
}

mod averages;
mod rules;

pub use rules::{gauss_hermite, gauss_legendre, QuadratureRule};
use rules::{hermite_nodes, hermite_rule};

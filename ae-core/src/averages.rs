//! Gaussian averages of SPEC section 5: closed forms for erf(x/sqrt2), linear and ReLU, and
//! graded composite Gauss-Legendre quadrature over the Cholesky factor of the covariance for any other g.
//!
//! Arguments are covariance entries: `(C11, C12, C22)` for the two-variable averages and
//! `(C11, C12, C13, C22, C23, C33)` for I3.

use std::f64::consts::{FRAC_PI_2, PI};
use std::marker::PhantomData;

use ae_dsl::ir::Avg;

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

/// g(x) = erf(x / sqrt 2), the paper's "sigmoidal" activation.
#[derive(Debug, Clone, Copy)]
pub struct Erf;
/// g(x) = x.
#[derive(Debug, Clone, Copy)]
pub struct Linear;
/// g(x) = max(x, 0).
#[derive(Debug, Clone, Copy)]
pub struct Relu;
/// g(x) = tanh(x), averages by quadrature.
pub type Tanh = Quadrature<TanhFn>;

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

/// ReLU closed forms. I3 is derived here (SPEC asks for it):
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

/// Gauss-Hermite averages for any activation `A`, using the Cholesky factor of the covariance
/// and the linearity of the integrands in some variables to reduce I3 to two dimensions and
/// J2, I21, I22 to one.
pub struct Quadrature<A>(PhantomData<A>);

/// Nodes and weights for E_{z~N(0,1)}[f(z)] with `n` points (n up to 160: beyond, the
/// recurrence's initial guesses stop converging to the right roots).
pub fn gauss_hermite(n: usize) -> (Vec<f64>, Vec<f64>) {
    // Golub-Welsch would need an eigensolver; Newton on the orthonormal Hermite recurrence
    // (Numerical Recipes' gauher) is exact to rounding for n up to a few hundred.
    let mut x = vec![0.0; n];
    let mut w = vec![0.0; n];
    let pim4 = PI.powf(-0.25);
    let m = n.div_ceil(2);
    let mut z = 0.0f64;
    for i in 0..m {
        z = match i {
            0 => (2.0 * n as f64 + 1.0).sqrt() - 1.85575 * (2.0 * n as f64 + 1.0).powf(-1.0 / 6.0),
            1 => z - 1.14 * (n as f64).powf(0.426) / z,
            2 => 1.86 * z - 0.86 * x[0],
            3 => 1.91 * z - 0.91 * x[1],
            _ => 2.0 * z - x[i - 2],
        };
        let mut pp = 0.0;
        for _ in 0..100 {
            let mut p1 = pim4;
            let mut p2 = 0.0;
            for j in 0..n {
                let p3 = p2;
                p2 = p1;
                p1 = z * (2.0 / (j as f64 + 1.0)).sqrt() * p2 - (j as f64 / (j as f64 + 1.0)).sqrt() * p3;
            }
            pp = (2.0 * n as f64).sqrt() * p2;
            let z1 = z;
            z = z1 - p1 / pp;
            if (z - z1).abs() <= 1e-15 * z.abs().max(1.0) {
                break;
            }
        }
        x[i] = z;
        x[n - 1 - i] = -z;
        w[i] = 2.0 / (pp * pp);
        w[n - 1 - i] = w[i];
    }
    // Physicists' (weight e^{-x^2}) to probabilists' (standard normal) form.
    let nodes = x.iter().map(|v| v * std::f64::consts::SQRT_2).collect();
    let weights = w.iter().map(|v| v / PI.sqrt()).collect();
    (nodes, weights)
}

/// The composite Gauss-Legendre rule of the quadrature path, as parameters, so that
/// convergence can be checked by refining it (`with_quadrature_rule`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuadratureRule {
    /// Nodes per panel.
    pub panel_nodes: usize,
    /// Widest panel, in the standard-normal variable.
    pub max_panel: f64,
    /// First panel's width beside a feature, as a fraction of the singularity's distance.
    pub first_panel: f64,
    /// The standard-normal variable is integrated over [-z_max, z_max].
    pub z_max: f64,
}

impl QuadratureRule {
    /// The default: 12 nodes per panel; panels at most 3 wide (the Gaussian weight itself is
    /// resolved to rounding on them); [-8.5, 8.5] (the mass beyond is 2e-17, and the integrands
    /// grow at most polynomially). Checked: erf's closed forms to 1e-12 and tanh against the
    /// refined rules to 1e-10 at covariance entries up to 100 (tests/averages.rs).
    pub const DEFAULT: QuadratureRule = QuadratureRule {
        panel_nodes: 12,
        max_panel: 3.0,
        first_panel: 0.5,
        z_max: 8.5,
    };

    /// Twice the nodes per panel, panels half as wide, and a wider range: for convergence checks.
    pub fn refined(self) -> QuadratureRule {
        QuadratureRule {
            panel_nodes: 2 * self.panel_nodes,
            max_panel: self.max_panel / 2.0,
            first_panel: self.first_panel / 2.0,
            z_max: self.z_max + 1.0,
        }
    }
}

/// Gauss-Legendre nodes and weights on [-1, 1] (Newton on the Legendre recurrence).
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut x = vec![0.0; n];
    let mut w = vec![0.0; n];
    for i in 0..n.div_ceil(2) {
        let mut z = (PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            let (mut p0, mut p1) = (1.0, z);
            for j in 2..=n {
                let p2 = ((2 * j - 1) as f64 * z * p1 - (j - 1) as f64 * p0) / j as f64;
                p0 = p1;
                p1 = p2;
            }
            let (pn, pm) = if n == 1 { (z, 1.0) } else { (p1, p0) };
            dp = n as f64 * (z * pn - pm) / (z * z - 1.0);
            let dz = pn / dp;
            z -= dz;
            if dz.abs() <= 1e-16 {
                break;
            }
        }
        x[i] = -z;
        x[n - 1 - i] = z;
        w[i] = 2.0 / ((1.0 - z * z) * dp * dp);
        w[n - 1 - i] = w[i];
    }
    (x, w)
}

/// The rule in force on this thread and its Gauss-Legendre nodes, and the buffers a rule is
/// built in (the inner rule is rebuilt for every outer node: no allocation there).
struct RuleState {
    rule: QuadratureRule,
    legendre: (Vec<f64>, Vec<f64>),
    outer: Vec<(f64, f64)>,
    inner: Vec<(f64, f64)>,
    edges: Vec<f64>,
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
            outer: Vec::new(),
            inner: Vec::new(),
            edges: Vec::new(),
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
        previous
    });
    let out = f();
    with_state(|s| {
        s.rule = previous;
        s.legendre = gauss_legendre(previous.panel_nodes);
    });
    out
}

const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Nodes and weights (Gaussian density included) of a composite Gauss-Legendre rule for
/// E_{z~N(0,1)}[f(z)] where f is analytic except for complex singularities at distance `d`
/// from `center` (tanh(a z): poles at +-i pi/(2a), so d = pi/(2a)). Panels double in width away
/// from the feature, so each panel's distance to it is at least its own width and
/// Gauss-Legendre converges geometrically on every panel (error ~ 5.8^(-2 nodes) on the
/// outer panels, ~4.7^(-2 nodes) on the first: below 1e-13 with 12 nodes). Gauss-Hermite
/// rules, by contrast, converge slowly once poles come close to the real axis: 64 nodes were
/// off by 2e-5 at variance 3 and 4e-4 at variance 9.
fn panel_rule(
    rule: &QuadratureRule,
    legendre: &(Vec<f64>, Vec<f64>),
    center: f64,
    d: f64,
    edges: &mut Vec<f64>,
    out: &mut Vec<(f64, f64)>,
) {
    out.clear();
    edges.clear();
    let z_max = rule.z_max;
    let c = center.clamp(-z_max, z_max);
    let first = (d * rule.first_panel).clamp(1e-6, rule.max_panel);
    for side in [1.0, -1.0] {
        let (mut e, mut step) = (c, first);
        while e * side < z_max {
            e = side * (side * (e + side * step)).min(z_max);
            edges.push(e);
            step = (step * 2.0).min(rule.max_panel);
        }
    }
    edges.push(c);
    edges.sort_by(f64::total_cmp);
    edges.dedup();
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
fn feature_width(s: f64) -> f64 {
    FRAC_PI_2 / s.abs().max(1e-300)
}

/// E[f(z)], z ~ N(0,1), where f varies like g(s z) (feature at z = 0).
fn expect1(s: f64, f: impl Fn(f64) -> f64) -> f64 {
    expect1_vec(s, |z| [f(z)])[0]
}

/// `expect1` for several integrands sharing one pass over the nodes.
fn expect1_vec<const N: usize>(s: f64, f: impl Fn(f64) -> [f64; N]) -> [f64; N] {
    with_state(|st| {
        panel_rule(
            &st.rule,
            &st.legendre,
            0.0,
            feature_width(s),
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
fn expect2(l11: f64, l21: f64, l22: f64, f: impl Fn(f64, f64) -> f64) -> f64 {
    expect2_vec(l11, l21, l22, |z1, z2| [f(z1, z2)])[0]
}

/// `expect2` for several integrands sharing one pass over the nodes.
fn expect2_vec<const N: usize>(l11: f64, l21: f64, l22: f64, f: impl Fn(f64, f64) -> [f64; N]) -> [f64; N] {
    with_state(|st| {
        let RuleState {
            rule,
            legendre,
            outer,
            inner,
            edges,
        } = st;
        panel_rule(
            rule,
            legendre,
            0.0,
            feature_width(l11.abs().max(l21.abs())),
            edges,
            outer,
        );
        let d2 = feature_width(l22);
        let mut acc = [0.0; N];
        for &(z1, w1) in outer.iter() {
            panel_rule(rule, legendre, -l21 * z1 / l22, d2, edges, inner);
            let mut part = [0.0; N];
            for &(z2, w2) in inner.iter() {
                for (a, v) in part.iter_mut().zip(f(z1, z2)) {
                    *a += w2 * v;
                }
            }
            for (a, p) in acc.iter_mut().zip(part) {
                *a += w1 * p;
            }
        }
        acc
    })
}

/// Pivots below this (relative to the diagonal) count as zero: the covariance is singular there.
const PIVOT_EPS: f64 = 1e-13;

/// Cholesky of a 2x2 covariance that tolerates semi-definiteness: (L11, L21, L22).
fn chol2(c11: f64, c12: f64, c22: f64) -> (f64, f64, f64) {
    let l11 = c11.max(0.0).sqrt();
    let l21 = if l11 > 0.0 { c12 / l11 } else { 0.0 };
    let d = c22 - l21 * l21;
    let l22 = if d > PIVOT_EPS * c22.abs() { d.sqrt() } else { 0.0 };
    (l11, l21, l22)
}

impl<A: Activation> Averages for Quadrature<A> {
    fn i2(c11: f64, c12: f64, c22: f64) -> f64 {
        // I2 is symmetric in (x1, x2); a fixed orientation makes the rule's rounding symmetric too.
        let (c11, c22) = if c11 >= c22 { (c11, c22) } else { (c22, c11) };
        let (l11, l21, l22) = chol2(c11, c12, c22);
        if l22 == 0.0 {
            return expect1(l11.max(l21.abs()), |z| A::g(l11 * z) * A::g(l21 * z));
        }
        expect2(l11, l21, l22, |z1, z2| A::g(l11 * z1) * A::g(l21 * z1 + l22 * z2))
    }
    fn j2(_c11: f64, c12: f64, c22: f64) -> f64 {
        // x2 = a z, x1 = (c12/a) z + independent part, which averages out.
        let a = c22.max(0.0).sqrt();
        if a == 0.0 {
            return 0.0;
        }
        c12 / a * expect1(a, |z| z * A::g(a * z))
    }
    fn i21(c11: f64, c12: f64, _c22: f64) -> f64 {
        // x1 = a z, x2 = (c12/a) z + independent part: E[g'(az) a z (c12/a) z].
        let a = c11.max(0.0).sqrt();
        c12 * expect1(a, |z| A::dg(a * z) * z * z)
    }
    fn i22(c11: f64, c12: f64, c22: f64) -> f64 {
        let a = c11.max(0.0).sqrt();
        let b = if a > 0.0 { c12 / a } else { 0.0 };
        let s2 = (c22 - b * b).max(0.0);
        expect1(a, |z| A::dg(a * z) * (b * b * z * z + s2))
    }
    fn i3(c11: f64, c12: f64, c13: f64, _c22: f64, c23: f64, c33: f64) -> f64 {
        // Cholesky in the order (x1, x3, x2); x2's own noise averages out.
        let (l11, l21, l22) = chol2(c11, c13, c33);
        let l31 = if l11 > 0.0 { c12 / l11 } else { 0.0 };
        let l32 = if l22 > 0.0 { (c23 - l31 * l21) / l22 } else { 0.0 };
        if l22 == 0.0 {
            return expect1(l11.max(l21.abs()), |z| A::dg(l11 * z) * l31 * z * A::g(l21 * z));
        }
        expect2(l11, l21, l22, |z1, z2| {
            A::dg(l11 * z1) * (l31 * z1 + l32 * z2) * A::g(l21 * z1 + l22 * z2)
        })
    }

    // Gradients by Price's theorem: for x ~ N(0, C), dE[F]/dC_ij = E[d_i d_j F] (i != j) and
    // dE[F]/dC_ii = E[d_i^2 F] / 2. Each is an average of smooth integrands, finite on
    // degenerate covariances, computed with the same rules as the averages themselves.
    fn i2_grad(c11: f64, c12: f64, c22: f64) -> [f64; 3] {
        let (l11, l21, l22) = chol2(c11, c12, c22);
        let f = |x1: f64, x2: f64| [A::d2g(x1) * A::g(x2), A::dg(x1) * A::dg(x2), A::g(x1) * A::d2g(x2)];
        let r = if l22 == 0.0 {
            expect1_vec(l11.max(l21.abs()), |z| f(l11 * z, l21 * z))
        } else {
            expect2_vec(l11, l21, l22, |z1, z2| f(l11 * z1, l21 * z1 + l22 * z2))
        };
        [r[0] / 2.0, r[1], r[2] / 2.0]
    }
    fn j2_grad(_c11: f64, c12: f64, c22: f64) -> [f64; 3] {
        // F = x1 g(x2): d12 F = g'(x2); d22 F = x1 g''(x2), and E[x1 h(x2)] = (C12/C22) E[x2 h(x2)].
        let a = c22.max(0.0).sqrt();
        if a == 0.0 {
            return [0.0, A::dg(0.0), 0.0];
        }
        let r = expect1_vec(a, |z| [A::dg(a * z), a * z * A::d2g(a * z)]);
        [0.0, r[0], c12 / c22 * r[1] / 2.0]
    }
    fn i21_grad(c11: f64, c12: f64, _c22: f64) -> [f64; 3] {
        // F = g'(x1) x1 x2: d11 F = (g'''(x1) x1 + 2 g''(x1)) x2, d12 F = g''(x1) x1 + g'(x1);
        // x2 enters linearly: E[x2 h(x1)] = (C12/C11) E[x1 h(x1)].
        let a = c11.max(0.0).sqrt();
        let r = expect1_vec(a, |z| {
            let x = a * z;
            [(A::d3g(x) * x + 2.0 * A::d2g(x)) * x, A::d2g(x) * x + A::dg(x)]
        });
        let d11 = if c11 > 0.0 { c12 / c11 * r[0] / 2.0 } else { 0.0 };
        [d11, r[1], 0.0]
    }
    fn i22_grad(c11: f64, c12: f64, c22: f64) -> [f64; 3] {
        // F = g'(x1) x2^2: d11 F = g'''(x1) x2^2, d12 F = 2 g''(x1) x2, d22 F = 2 g'(x1).
        let a = c11.max(0.0).sqrt();
        let b = if a > 0.0 { c12 / a } else { 0.0 };
        let s2 = (c22 - b * b).max(0.0);
        let r = expect1_vec(a, |z| {
            let x = a * z;
            [A::d3g(x) * (b * b * z * z + s2), A::d2g(x) * b * z, A::dg(x)]
        });
        [r[0] / 2.0, 2.0 * r[1], r[2]]
    }
    fn i3_grad(c11: f64, c12: f64, c13: f64, _c22: f64, c23: f64, c33: f64) -> [f64; 6] {
        // F = g'(x1) x2 g(x3). With x2 replaced by its projection on (x1, x3) as in `i3`:
        // d11 F = g'''(x1) x2 g(x3), d12 F = g''(x1) g(x3), d13 F = g''(x1) x2 g'(x3),
        // d23 F = g'(x1) g'(x3), d33 F = g'(x1) x2 g''(x3), d22 F = 0.
        let (l11, l21, l22) = chol2(c11, c13, c33);
        let l31 = if l11 > 0.0 { c12 / l11 } else { 0.0 };
        let l32 = if l22 > 0.0 { (c23 - l31 * l21) / l22 } else { 0.0 };
        let f = |x1: f64, x2: f64, x3: f64| {
            let (g1, g3) = (A::dg(x1), A::g(x3));
            let (h1, h3) = (A::d2g(x1), A::dg(x3));
            [
                A::d3g(x1) * x2 * g3,
                h1 * g3,
                h1 * x2 * h3,
                g1 * h3,
                g1 * x2 * A::d2g(x3),
            ]
        };
        let r = if l22 == 0.0 {
            expect1_vec(l11.max(l21.abs()), |z| f(l11 * z, l31 * z, l21 * z))
        } else {
            expect2_vec(l11, l21, l22, |z1, z2| {
                f(l11 * z1, l31 * z1 + l32 * z2, l21 * z1 + l22 * z2)
            })
        };
        [r[0] / 2.0, r[1], r[2], 0.0, r[3], r[4] / 2.0]
    }
}

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
        fn dispatch<A: Activation>(avg: Avg, c: &[f64]) -> Vec<f64> {
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
        fn dispatch<A: Activation>(avg: Avg, c: &[f64]) -> f64 {
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

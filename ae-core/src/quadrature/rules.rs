//! The quadrature's rules as parameters, and the Gauss-Legendre and Gauss-Hermite nodes they
//! are built from.

use std::f64::consts::PI;

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
    /// An inner variable whose integrand is analytic within this distance of the real axis (in
    /// its standard-normal variable) is integrated by Gauss-Hermite where g has no kinks (see
    /// `hermite_nodes`); infinite: always by panels.
    pub hermite_width: f64,
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
        hermite_width: HERMITE_WIDTH,
    };

    /// Twice the nodes per panel, panels half as wide, and a wider range: for convergence checks.
    pub fn refined(self) -> QuadratureRule {
        QuadratureRule {
            panel_nodes: 2 * self.panel_nodes,
            max_panel: self.max_panel / 2.0,
            first_panel: self.first_panel / 2.0,
            z_max: self.z_max + 1.0,
            hermite_width: self.hermite_width,
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

/// An inner variable whose own spread l22 leaves g's nearest complex singularity this many
/// standard deviations away (`feature_width(l22)`) is integrated by Gauss-Hermite where g has no
/// kinks: its integrand is then a polynomial times a function of z2 analytic in a strip of
/// that half-width, which `hermite_nodes` nodes integrate as well as the panels do (within
/// 1e-12 of them, tested at nearly degenerate covariances), where the panels over [-8.5, 8.5]
/// need 72 or more, rebuilt for every outer node. A nearly degenerate pair (two units almost
/// aligned at a large variance, where no series converges) spends its time there. At 3 the
/// rule has 48 nodes; below, it would soon need more than the panels.
pub(super) const HERMITE_WIDTH: f64 = 3.0;

/// The Gauss-Hermite nodes for an integrand analytic in the strip |Im z| < d: the n-node rule's
/// error falls like exp(-2 d sqrt(n)) for the standard-normal weight (the rate of Gauss-Hermite
/// rules on functions analytic in a strip; the 64-node rule's errors measured on tanh, 2e-5 at
/// variance 3 and 4e-4 at 9, are within a factor 40 of it), so n = (20.7 / d)^2 leaves about 1e-18 of the
/// integrand's size, far below the 1e-10 the averages are held to: the margin is for the
/// rate's unknown constant. Never fewer than 12 (8 left 4e-14 at d = 8, before the rate sets
/// in), and scaled with the panels' nodes of a refined rule, so that refining refines this rule
/// too: 12 nodes at d = 6 or more, 18 at 5, 48 at 3.
pub(super) fn hermite_nodes(d: f64, rule: &QuadratureRule) -> usize {
    let n = ((20.7 / d).powi(2).ceil() as usize).max(12);
    (n * rule.panel_nodes)
        .div_ceil(QuadratureRule::DEFAULT.panel_nodes)
        .min(160)
}

/// The n-node Gauss-Hermite rule of `rules`, built on first use.
pub(super) fn hermite_rule(rules: &mut Vec<Vec<(f64, f64)>>, n: usize) -> &[(f64, f64)] {
    if rules.len() <= n {
        rules.resize(n + 1, Vec::new());
    }
    if rules[n].is_empty() {
        let (x, w) = gauss_hermite(n);
        rules[n] = x.into_iter().zip(w).collect();
    }
    &rules[n]
}

//! Every closed form and the quadrature are checked against Monte Carlo on random covariances.

use ae_core::averages::ActivationKind;
use ae_core::averages::Evaluate as _;
use ae_dsl::ir::Avg;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// A seeded generator on one stream (as `ae_runtime::data::rng` draws them).
fn rng(seed: u64, stream: u64) -> rand_chacha::ChaCha8Rng {
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// A random 3x3 positive-definite covariance C = A A^T * scale / 3 + 0.05 I.
fn covariance(r: &mut impl rand::Rng, scale: f64) -> [[f64; 3]; 3] {
    let a: Vec<f64> = (0..9).map(|_| StandardNormal.sample(r)).collect();
    let mut c = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            c[i][j] = (0..3).map(|k| a[3 * i + k] * a[3 * j + k]).sum::<f64>() * scale / 3.0;
        }
        c[i][i] += 0.05;
    }
    c
}

/// The arguments of each average, read off a 3x3 covariance of (x1, x2, x3).
fn args(avg: Avg, c: &[[f64; 3]; 3]) -> Vec<f64> {
    match avg {
        Avg::I3 => vec![c[0][0], c[0][1], c[0][2], c[1][1], c[1][2], c[2][2]],
        _ => vec![c[0][0], c[0][1], c[1][1]],
    }
}

/// The integrand of each average at one sample.
fn integrand(act: ActivationKind, avg: Avg, x: [f64; 3]) -> f64 {
    let (g, dg) = (|v| act.g(v), |v| act.dg(v));
    match avg {
        Avg::I2 => g(x[0]) * g(x[1]),
        Avg::J2 => x[0] * g(x[1]),
        Avg::I21 => dg(x[0]) * x[0] * x[1],
        Avg::I22 => dg(x[0]) * x[1] * x[1],
        Avg::I3 => dg(x[0]) * x[1] * g(x[2]),
    }
}

/// Monte-Carlo mean and standard error of every average at covariance `c`.
fn monte_carlo(act: ActivationKind, c: &[[f64; 3]; 3], n: usize, seed: u64) -> Vec<(f64, f64)> {
    // Cholesky of c (positive definite by construction, or semi-definite with explicit zeros).
    let mut l = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..=i {
            let s = c[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>();
            l[i][j] = if i == j {
                s.max(0.0).sqrt()
            } else if l[j][j] > 0.0 {
                s / l[j][j]
            } else {
                0.0
            };
        }
    }
    let mut r = rng(seed, 99);
    let avgs = [Avg::I2, Avg::J2, Avg::I21, Avg::I22, Avg::I3];
    let mut sum = [0.0; 5];
    let mut sum2 = [0.0; 5];
    for _ in 0..n {
        let z: [f64; 3] = [
            StandardNormal.sample(&mut r),
            StandardNormal.sample(&mut r),
            StandardNormal.sample(&mut r),
        ];
        let x = [
            l[0][0] * z[0],
            l[1][0] * z[0] + l[1][1] * z[1],
            l[2][0] * z[0] + l[2][1] * z[1] + l[2][2] * z[2],
        ];
        for (i, avg) in avgs.iter().enumerate() {
            let f = integrand(act, *avg, x);
            sum[i] += f;
            sum2[i] += f * f;
        }
    }
    (0..5)
        .map(|i| {
            let mean = sum[i] / n as f64;
            let var = (sum2[i] / n as f64 - mean * mean).max(0.0);
            (mean, (var / n as f64).sqrt())
        })
        .collect()
}

/// Checks one activation's averages against Monte Carlo on several covariances.
fn check_against_monte_carlo(act: ActivationKind, quadrature: bool) {
    // 200 000 samples; the tolerance is 5 standard errors of the Monte-Carlo mean (a false
    // alarm has probability ~6e-7 per comparison), plus 1e-9 for the average's own rounding.
    let n = 200_000;
    let avgs = [Avg::I2, Avg::J2, Avg::I21, Avg::I22, Avg::I3];
    let mut r = rng(7, 98);
    let mut covs: Vec<[[f64; 3]; 3]> = (0..4).map(|i| covariance(&mut r, [0.3, 1.0, 3.0, 10.0][i])).collect();
    // Degenerate cases met in the equations: x1 = x2 = x3 (I3_kk) and x1 = x2 (I3a).
    covs.push([[1.3, 1.3, 1.3], [1.3, 1.3, 1.3], [1.3, 1.3, 1.3]]);
    covs.push([[0.8, 0.8, 0.3], [0.8, 0.8, 0.3], [0.3, 0.3, 0.6]]);
    for (ci, c) in covs.iter().enumerate() {
        let mc = monte_carlo(act, c, n, ci as u64);
        for (i, avg) in avgs.iter().enumerate() {
            let a = args(*avg, c);
            let value = if quadrature {
                act.average_by_quadrature(*avg, &a)
            } else {
                act.average(*avg, &a)
            };
            let (mean, se) = mc[i];
            assert!(
                (value - mean).abs() <= 5.0 * se + 1e-9,
                "{} {}{} at covariance #{ci} {c:?}: value {value}, Monte Carlo {mean} +- {se}",
                act.name(),
                avg.name(),
                if quadrature { " (quadrature)" } else { "" }
            );
        }
    }
}

#[test]
fn erf_closed_forms_match_monte_carlo() {
    check_against_monte_carlo(ActivationKind::Erf, false);
}

#[test]
fn linear_closed_forms_match_monte_carlo() {
    check_against_monte_carlo(ActivationKind::Linear, false);
}

#[test]
fn relu_closed_forms_match_monte_carlo() {
    check_against_monte_carlo(ActivationKind::Relu, false);
}

#[test]
fn tanh_quadrature_matches_monte_carlo() {
    check_against_monte_carlo(ActivationKind::Tanh, false);
}

#[test]
fn relu_quadrature_matches_monte_carlo() {
    // The quadrature path itself, on an activation with a kink (slow but honest convergence).
    check_against_monte_carlo(ActivationKind::Relu, true);
}

/// Random covariances whose largest entry is `largest`, from nearly singular to well spread.
fn covariances_up_to(largest: f64, seed: u64) -> Vec<[[f64; 3]; 3]> {
    let mut r = rng(seed, 97);
    (0..6)
        .map(|_| {
            let c = covariance(&mut r, 1.0);
            let top = (0..3).map(|i| c[i][i]).fold(0.0, f64::max);
            c.map(|row| row.map(|v| v * largest / top))
        })
        .collect()
}

const LARGEST_ENTRIES: [f64; 7] = [0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0];

#[test]
fn quadrature_reproduces_smooth_closed_forms() {
    // The quadrature path against erf's and linear's closed forms, at covariance entries up to
    // 100 (features of width 0.1 in the standard-normal variable). The rule's own error is
    // below 1e-13 (geometric convergence on every panel, see `averages::panel_rule`); summing
    // ~10^4 weighted terms adds rounding of a few 1e-15 of the largest term. Tolerance 1e-12
    // of the average's size (at least 1: averages of bounded g are O(1)).
    for largest in LARGEST_ENTRIES {
        for c in covariances_up_to(largest, 3) {
            for act in [ActivationKind::Erf, ActivationKind::Linear] {
                for avg in [Avg::I2, Avg::J2, Avg::I21, Avg::I22, Avg::I3] {
                    let a = args(avg, &c);
                    let (closed, quad) = (act.average(avg, &a), act.average_by_quadrature(avg, &a));
                    assert!(
                        (closed - quad).abs() <= 1e-12 * closed.abs().max(1.0),
                        "{} {}: closed {closed} quadrature {quad} at {a:?}",
                        act.name(),
                        avg.name()
                    );
                }
            }
        }
    }
}

#[test]
fn tanh_quadrature_is_converged() {
    // tanh has no closed forms: the reference is the rule refined (twice the nodes per panel,
    // panels half as wide, a wider range) until it stops changing. The refined and twice
    // refined rules agree to rounding (1e-13), and the default agrees with them to 1e-10 of
    // the average's size at entries up to 100, values and gradients alike.
    use ae_core::averages::{with_quadrature_rule, QuadratureRule};
    let act = ActivationKind::Tanh;
    let once = QuadratureRule::DEFAULT.refined();
    for largest in LARGEST_ENTRIES {
        for c in covariances_up_to(largest, 5).iter().take(3) {
            for avg in [Avg::I2, Avg::J2, Avg::I21, Avg::I22, Avg::I3] {
                let a = args(avg, c);
                let default = act.average(avg, &a);
                let refined = with_quadrature_rule(once, || act.average(avg, &a));
                let twice = with_quadrature_rule(once.refined(), || act.average(avg, &a));
                let size = twice.abs().max(1.0);
                assert!(
                    (refined - twice).abs() <= 1e-13 * size,
                    "tanh {} not converged at {a:?}: {refined} vs {twice}",
                    avg.name()
                );
                assert!(
                    (default - twice).abs() <= 1e-10 * size,
                    "tanh {} at {a:?}: default {default} vs converged {twice}",
                    avg.name()
                );
                let grad = act.average_grad(avg, &a);
                let grad_ref = with_quadrature_rule(once.refined(), || act.average_grad(avg, &a));
                for (g, r) in grad.iter().zip(&grad_ref) {
                    assert!(
                        (g - r).abs() <= 1e-10 * r.abs().max(1.0),
                        "tanh d{} at {a:?}: default {g} vs converged {r}",
                        avg.name()
                    );
                }
            }
        }
    }
}

#[test]
fn relu_i2_is_not_off_by_two() {
    // docs/theory.md section 5: a published ReLU I2 is off by a factor of two. At C = I2x2 (independent units),
    // E[relu(x)]^2 = (1/sqrt(2 pi))^2 = 1/(2 pi); at x1 = x2 with variance 1, E[relu(x)^2] = 1/2.
    let i2 = |a: f64, b: f64, c: f64| ActivationKind::Relu.average(Avg::I2, &[a, b, c]);
    assert!((i2(1.0, 0.0, 1.0) - 1.0 / (2.0 * std::f64::consts::PI)).abs() < 1e-15);
    assert!((i2(1.0, 1.0, 1.0) - 0.5).abs() < 1e-15);
    assert!(i2(1.0, -1.0, 1.0).abs() < 1e-15);
}

#[test]
fn gauss_hermite_rules_integrate_moments() {
    // E[z^(2j)] = (2j-1)!!: an n-point rule is exact for polynomials of degree 2n-1, so every
    // rule we use must reproduce the moments up to degree 16 to rounding.
    for n in [48, 64, 96, 128, 160] {
        let (x, w) = ae_core::averages::gauss_hermite(n);
        let mut double_factorial = 1.0;
        for j in 0..=8 {
            if j > 0 {
                double_factorial *= (2 * j - 1) as f64;
            }
            let m: f64 = x.iter().zip(&w).map(|(z, w)| w * z.powi(2 * j)).sum();
            assert!(
                (m - double_factorial).abs() <= 1e-11 * double_factorial,
                "n = {n}: E[z^{}] = {m}",
                2 * j
            );
        }
    }
}

/// Central difference of `f` in argument `i` at `a`, step `h`.
fn central(f: impl Fn(&[f64]) -> f64, a: &[f64], i: usize, h: f64) -> f64 {
    let (mut up, mut down) = (a.to_vec(), a.to_vec());
    up[i] += h;
    down[i] -= h;
    (f(&up) - f(&down)) / (2.0 * h)
}

/// Covariances for the gradient checks: random positive-definite ones at several scales (the
/// smallest eigenvalue is at least 0.05, so a step of 1e-5 keeps them positive-definite).
fn gradient_covariances() -> Vec<[[f64; 3]; 3]> {
    let mut r = rng(11, 96);
    [0.3, 1.0, 3.0, 10.0].iter().map(|s| covariance(&mut r, *s)).collect()
}

#[test]
fn closed_form_gradients_match_finite_differences() {
    // Central differences with h = 1e-5: truncation h^2 |f'''| / 6 ~ 1e-11 and rounding
    // eps |f| / h ~ 1e-11 for averages and derivatives of order one, so 1e-7 relative to
    // max(1, |gradient|) leaves four orders of margin while a wrong term (an O(1) error)
    // cannot pass.
    for act in [ActivationKind::Erf, ActivationKind::Linear, ActivationKind::Relu] {
        for c in gradient_covariances() {
            for avg in [Avg::I2, Avg::J2, Avg::I21, Avg::I22, Avg::I3] {
                let a = args(avg, &c);
                let grad = act.average_grad(avg, &a);
                for (i, gi) in grad.iter().enumerate() {
                    let fd = central(|x| act.average(avg, x), &a, i, 1e-5);
                    assert!(
                        (gi - fd).abs() <= 1e-7 * gi.abs().max(1.0),
                        "{} d{}/d(arg {i}) at {a:?}: closed form {gi} finite difference {fd}",
                        act.name(),
                        avg.name()
                    );
                }
            }
        }
    }
}

#[test]
fn quadrature_gradients_match_closed_form_gradients() {
    // Price's theorem by quadrature against the hand-differentiated closed forms: two
    // independent derivations, at covariance entries up to 100. The quadrature reproduces
    // smooth averages to ~1e-13 (see `quadrature_reproduces_smooth_closed_forms`); its
    // integrands here carry up to g''' (larger, more rounding), so allow 1e-10.
    for act in [ActivationKind::Erf, ActivationKind::Linear] {
        let wide = LARGEST_ENTRIES
            .iter()
            .flat_map(|l| covariances_up_to(*l, 7).into_iter().take(2));
        for c in gradient_covariances().iter().take(3).copied().chain(wide) {
            let c = &c;
            for avg in [Avg::I2, Avg::J2, Avg::I21, Avg::I22, Avg::I3] {
                let a = args(avg, c);
                let (closed, quad) = (act.average_grad(avg, &a), act.average_grad_by_quadrature(avg, &a));
                for i in 0..a.len() {
                    assert!(
                        (closed[i] - quad[i]).abs() <= 1e-10 * closed[i].abs().max(1.0),
                        "{} d{}/d(arg {i}) at {a:?}: closed form {} quadrature {}",
                        act.name(),
                        avg.name(),
                        closed[i],
                        quad[i]
                    );
                }
            }
        }
    }
}

#[test]
fn tanh_gradients_match_finite_differences() {
    // Price's theorem by quadrature against central differences of the averages, at entries
    // up to 10. The averages are accurate to ~1e-13 (`tanh_quadrature_is_converged`); a step
    // h = 1e-4 turns that into ~1e-9 in the difference quotient, truncation adds h^2 |f'''|,
    // ~1e-8 with third derivatives of order one. Tolerance 1e-6.
    let act = ActivationKind::Tanh;
    let mut r = rng(12, 96);
    for c in (0..4)
        .map(|_| covariance(&mut r, 0.3))
        .chain(covariances_up_to(10.0, 9).into_iter().take(2))
    {
        for avg in [Avg::I2, Avg::J2, Avg::I21, Avg::I22, Avg::I3] {
            let a = args(avg, &c);
            let grad = act.average_grad(avg, &a);
            for (i, gi) in grad.iter().enumerate() {
                let fd = central(|x| act.average(avg, x), &a, i, 1e-4);
                assert!(
                    (gi - fd).abs() <= 1e-6 * gi.abs().max(1.0),
                    "tanh d{}/d(arg {i}) at {a:?}: quadrature {gi} finite difference {fd}",
                    avg.name()
                );
            }
        }
    }
}

#[test]
fn gradients_along_tied_arguments_are_finite_and_right() {
    // In the equations one pre-activation often fills several slots (I3(Q_kk, ..., Q_kk),
    // I22(Q_kk, Q_kk, Q_kk)): the Jacobian adds the partials of the tied slots. At such points
    // ReLU's I3 has partials in 1/Δ that cancel; the sum must equal the derivative of the
    // restricted function, checked by a central difference moving the tied slots together
    // (tolerance as in `closed_form_gradients_match_finite_differences`, 1e-5 for tanh's
    // quadrature as in `tanh_gradients_match_finite_differences`).
    let q = 1.3;
    // (average, arguments, which slots move together)
    let cases: [(Avg, Vec<f64>, Vec<usize>); 4] = [
        (Avg::I3, vec![q, q, q, q, q, q], vec![0, 1, 2, 3, 4, 5]),
        (Avg::I3, vec![q, 0.4, q, 0.9, 0.4, q], vec![0, 2, 5]),
        (Avg::I2, vec![q, q, q], vec![0, 1, 2]),
        (Avg::I22, vec![q, q, q], vec![0, 1, 2]),
    ];
    for act in ActivationKind::ALL {
        let (h, tol) = if act == ActivationKind::Tanh {
            (1e-4, 1e-5)
        } else {
            (1e-5, 1e-7)
        };
        for (avg, a, tied) in &cases {
            let grad = act.average_grad(*avg, a);
            let along: f64 = tied.iter().map(|i| grad[*i]).sum();
            let moved = |d: f64| {
                let mut x = a.clone();
                for i in tied {
                    x[*i] += d;
                }
                act.average(*avg, &x)
            };
            let fd = (moved(h) - moved(-h)) / (2.0 * h);
            assert!(
                along.is_finite() && (along - fd).abs() <= tol * along.abs().max(1.0),
                "{} {} tied {tied:?} at {a:?}: sum of partials {along}, finite difference {fd}",
                act.name(),
                avg.name()
            );
        }
    }
}

#[test]
fn relu_gradients_by_quadrature_are_nan_not_wrong() {
    // ReLU's g'' is a delta function: quadrature cannot give its gradients and must say so.
    let g = ActivationKind::Relu.average_grad_by_quadrature(Avg::I2, &[1.0, 0.3, 1.2]);
    assert!(g[0].is_nan() && g[2].is_nan(), "{g:?}");
}

#[test]
fn nearly_degenerate_pairs_are_converged() {
    // Two units almost aligned or anti-aligned at large variances (as two GELU units become in
    // a K = 3 run, where no series converges): the inner variable's own spread is small, and
    // Gauss-Hermite takes it (12 to 48 nodes, by the spread). The references are the rule refined
    // twice (twice and four times the nodes), and the panels alone (no Gauss-Hermite): refined
    // and twice refined agree to rounding (1e-13); the default meets the panels to 1e-12 and the
    // twice refined rule to the 1e-10 the averages are held to, relative to each average's
    // size, values and gradients, tanh by quadrature alone.
    use ae_core::averages::{with_quadrature_rule, Averages, Quadrature, QuadratureRule, TanhFn};
    type Q = Quadrature<TanhFn>;
    let once = QuadratureRule::DEFAULT.refined();
    let panels = QuadratureRule {
        hermite_width: f64::INFINITY,
        ..QuadratureRule::DEFAULT
    };
    let all = |c: [f64; 3]| {
        let [c11, c12, c22] = c;
        // x2 = 0.3 x1 + an independent standard normal: a valid covariance with the pair.
        let (c_12, c_23, c_22) = (0.3 * c11, 0.3 * c12, 0.09 * c11 + 1.0);
        let mut v = vec![Q::i2(c11, c12, c22), Q::i3(c11, c_12, c12, c_22, c_23, c22)];
        v.extend(Q::i2_grad(c11, c12, c22));
        v
    };
    // (c11, c12, spread): c22 = c12^2 / c11 + spread^2, so that x2's own spread is `spread`,
    // and tanh's poles pi / (2 spread) = 3 to 31 of them from the real axis.
    for (c11, c12, spread) in [
        (9.0, -8.99, 0.11),
        (20.0, 19.9, 0.05),
        (4.0, 3.9, 0.19),
        (40.0, -38.0, 0.15),
        (12.0, -11.5, 0.3),
        (30.0, 29.0, 0.4),
        (6.0, -5.0, 0.52),
    ] {
        let c = [c11, c12, c12 * c12 / c11 + spread * spread];
        let default = all(c);
        let by_panels = with_quadrature_rule(panels, || all(c));
        let refined = with_quadrature_rule(once, || all(c));
        let twice = with_quadrature_rule(once.refined(), || all(c));
        for (((d, p), r), t) in default.iter().zip(&by_panels).zip(&refined).zip(&twice) {
            let size = t.abs().max(1.0);
            assert!((r - t).abs() <= 1e-13 * size, "{c:?}: refined {r} against {t}");
            assert!(
                (d - p).abs() <= 1e-12 * size,
                "{c:?}: default {d} against the panels' {p}"
            );
            assert!((d - t).abs() <= 1e-10 * size, "{c:?}: default {d} against {t}");
        }
    }
}

//! Every closed form and the quadrature are checked against Monte Carlo on random covariances.

use ae_dsl::ir::Avg;
use ae_runtime::averages::ActivationKind;
use ae_runtime::data::rng;
use rand_distr::{Distribution, StandardNormal};

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

#[test]
fn quadrature_reproduces_smooth_closed_forms() {
    // For smooth activations Gauss-Hermite converges exponentially: 96 points in 1D and
    // 48x48 in 2D reproduce the closed forms to near rounding.
    let mut r = rng(3, 97);
    for scale in [0.3, 1.0, 3.0] {
        let c = covariance(&mut r, scale);
        for act in [ActivationKind::Erf, ActivationKind::Linear] {
            for avg in [Avg::I2, Avg::J2, Avg::I21, Avg::I22, Avg::I3] {
                let a = args(avg, &c);
                let (closed, quad) = (act.average(avg, &a), act.average_by_quadrature(avg, &a));
                assert!(
                    (closed - quad).abs() <= 1e-9 * closed.abs().max(1.0),
                    "{} {}: closed {closed} quadrature {quad} at {a:?}",
                    act.name(),
                    avg.name()
                );
            }
        }
    }
}

#[test]
fn relu_i2_is_not_off_by_two() {
    // SPEC: a published ReLU I2 is off by a factor of two. At C = I2x2 (independent units),
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
        let (x, w) = ae_runtime::averages::gauss_hermite(n);
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

//! Declared activations that come nearer a complex singularity than tanh (whose poles at
//! +-i pi/2 the quadrature's rules were sized for): their averages against oracles that share
//! no code with the rules.

use crate::activations::{arguments, assert_close, covariances, user};

use ae_core::activation::Activation;
use ae_core::averages::{ActivationKind, Evaluate};
use ae_dsl::ir::Avg;

/// tanh(2x), poles at +-i pi/4, is tanh at four times the covariance: with y = 2x, I2 and I3
/// are tanh's at 4C, and J2, I21, I22 half of tanh's (one x for one y / 2, and g' = 2 tanh'),
/// so each gradient is four times that factor times tanh's. The built-in tanh is checked
/// against refined rules to 1e-10 at covariance entries up to 100 (4C here reaches 30), so
/// every average, by series as a run takes it and by the quadrature alone, is held to the
/// 1e-10 every average is held to (measured: 8e-13 at worst). With the rules sized for tanh's
/// own poles, the quadrature alone was off by 3.6e-6 (the series, 6e-11).
#[test]
fn a_narrower_tanh_is_tanh_at_four_times_the_covariance() {
    let narrow = user("narrowtanh");
    for c in covariances() {
        for (name, avg) in Avg::ALL {
            let factor = match avg {
                Avg::I2 | Avg::I3 => 1.0,
                Avg::J2 | Avg::I21 | Avg::I22 => 0.5,
            };
            let args = arguments(avg, &c);
            let scaled: Vec<f64> = args.iter().map(|v| 4.0 * v).collect();
            let want = factor * ActivationKind::Tanh.average_by_quadrature(avg, &scaled);
            let want_grad: Vec<f64> = ActivationKind::Tanh
                .average_grad_by_quadrature(avg, &scaled)
                .iter()
                .map(|d| 4.0 * factor * d)
                .collect();
            for (how, value, grad) in [
                ("series", narrow.average(avg, &args), narrow.average_grad(avg, &args)),
                (
                    "quadrature",
                    narrow.average_by_quadrature(avg, &args),
                    narrow.average_grad_by_quadrature(avg, &args),
                ),
            ] {
                assert_close(format!("{name} by {how} at {c:?}"), &[value], &[want], 1e-10);
                assert_close(format!("{name} gradient by {how} at {c:?}"), &grad, &want_grad, 1e-10);
            }
        }
    }
}

/// 1 / (1 + 9 (x - 0.2)^2), poles at 0.2 +- i/3, a fifth of tanh's distance. From
/// 1 / (1 + k^2) = int_0^inf e^-t cos(k t) dt and E[cos W] = cos(E W) e^(-Var W / 2),
/// I2 = int int e^(-t-s) (cos(m+) e^(-v+/2) + cos(m-) e^(-v-/2)) / 2 dt ds, with
/// m+- = -0.6 (t +- s) and v+- = 9 (t^2 c11 +- 2 t s c12 + s^2 c22): an integrand that is
/// entire and falls like e^(-t-s), whatever the correlation. Its gradient is the same integral
/// of the derivatives of v+-. The oracle integrates it over [0, 28]^2 (the tail is below
/// e^-28 = 7e-13) on panels 0.5 wide of 20 Gauss-Legendre nodes, whose error on an entire
/// integrand that varies on the scale of its narrowest ridge (1 / (3 sqrt(c (1 - |r|))),
/// 0.17 at the anti-aligned pair below) is below 1e-13. The averages, by series and by the
/// quadrature alone, meet it to the 1e-10 every average is held to: at moderate, strong
/// (0.999) and anti-aligned (-0.995, at variance 8, where no series converges) correlations, at
/// none, and for one unit seen twice (measured: 2e-13 at worst). With the rules sized for
/// tanh's poles, both were off by up to 6e-6 (1e-9 to 1e-6 by series at the other
/// covariances).
#[test]
fn a_near_pole_meets_the_integral_of_its_fourier_representation() {
    let lorentz = user("lorentz");
    let covariances = [
        [1.0, 0.3, 1.0],
        [4.0, 3.996, 4.0],
        [8.0, -7.96, 8.0],
        [0.4, 0.1, 3.0],
        [2.0, 0.0, 0.5],
        [1.0, 1.0, 1.0],
    ];
    for c in covariances {
        let (want, want_grad) = fourier_oracle(c);
        for (how, value, grad) in [
            (
                "series",
                lorentz.average(Avg::I2, &c),
                lorentz.average_grad(Avg::I2, &c),
            ),
            (
                "quadrature",
                lorentz.average_by_quadrature(Avg::I2, &c),
                lorentz.average_grad_by_quadrature(Avg::I2, &c),
            ),
        ] {
            assert_close(format!("I2 by {how} at {c:?}"), &[value], &[want], 1e-10);
            assert_close(format!("I2 gradient by {how} at {c:?}"), &grad, &want_grad, 1e-10);
        }
    }
}

/// I2 of 1 / (1 + 9 (x - 0.2)^2) and its gradient (d/dc11, d/dc12, d/dc22) at (c11, c12, c22),
/// by the integral of its Fourier representation (see the test above).
fn fourier_oracle([c11, c12, c22]: [f64; 3]) -> (f64, [f64; 3]) {
    let (x, w) = ae_core::quadrature::gauss_legendre(20);
    let nodes: Vec<(f64, f64)> = (0..56)
        .flat_map(|panel| {
            let mid = 0.5 * panel as f64 + 0.25;
            x.iter().zip(&w).map(move |(xi, wi)| (mid + 0.25 * xi, 0.25 * wi))
        })
        .collect();
    let (mut value, mut grad) = (0.0, [0.0; 3]);
    for &(t, wt) in &nodes {
        for &(s, ws) in &nodes {
            let weight = wt * ws * (-t - s).exp() / 2.0;
            for sign in [1.0, -1.0] {
                let mean = -0.6 * (t + sign * s);
                let variance = 9.0 * (t * t * c11 + 2.0 * sign * t * s * c12 + s * s * c22);
                let term = weight * mean.cos() * (-variance / 2.0).exp();
                value += term;
                grad[0] -= term * 4.5 * t * t;
                grad[1] -= term * 9.0 * sign * t * s;
                grad[2] -= term * 4.5 * s * s;
            }
        }
    }
    (value, grad)
}

/// A narrow bump away from the origin, exp(-a (x - m)^2): entire, but the scan reads its
/// Gaussian shoulders as singularities near m. Its I2 is a Gaussian integral,
/// det(I + 2 a C)^(-1/2) exp(-a u' (I + 2 a C)^(-1) u) with u = (m, m), so the averages, by
/// series and by the quadrature alone, are held to the 1e-10 every average is held to, at
/// moderate, strong and anti-aligned correlations and for one unit seen twice or nearly
/// (correlation 1 - 4e-7; measured: 2e-13 at worst). There the quadrature integrates g^2, or
/// g times a barely smoothed g, a bump sqrt(2) times narrower, and was off by 2.7e-10 (a = 25,
/// m = 0.5, variance 0.25) while its panels were graded for g alone.
#[test]
fn a_narrow_bump_meets_its_gaussian_integral() {
    let mut source = aedyn::models::shipped_source("vanilla").unwrap().to_string();
    let bumps: [(f64, f64); 4] = [(25.0, 0.1), (25.0, 0.5), (25.0, 2.0), (100.0, 0.5)];
    for (i, (a, m)) in bumps.iter().enumerate() {
        source += &format!("activation bump{i}(x) = exp(-{a} * (x - {m})^2)\n");
    }
    let model = ae_dsl::compile("bumps.ae", &source).expect("compiles");
    let pairs = [
        [1.0, 0.3, 1.0],
        [4.0, -3.98, 4.0],
        [16.0, 15.9, 16.0],
        [0.3, 0.1, 2.0],
        [0.25, 0.25, 0.25],
        [0.25, 0.2499999, 0.25],
        [1.0, 1.0, 1.0],
        [4.0, 4.0, 4.0],
    ];
    for (i, (a, m)) in bumps.into_iter().enumerate() {
        let def = model.activations.iter().find(|d| d.name == format!("bump{i}")).unwrap();
        let g = Activation::User(ae_jit::user_activation(def, &source).expect("a usable activation"));
        for c in pairs {
            let [c11, c12, c22] = c;
            let (p11, p12, p22) = (1.0 + 2.0 * a * c11, 2.0 * a * c12, 1.0 + 2.0 * a * c22);
            let det = p11 * p22 - p12 * p12;
            let form = m * m * (p22 - 2.0 * p12 + p11) / det;
            let want = det.powf(-0.5) * (-a * form).exp();
            for (how, value) in [
                ("series", g.average(Avg::I2, &c)),
                ("quadrature", g.average_by_quadrature(Avg::I2, &c)),
            ] {
                assert_close(
                    format!("bump {a} at {m}: I2 by {how} at {c:?}"),
                    &[value],
                    &[want],
                    1e-10,
                );
            }
        }
    }
}

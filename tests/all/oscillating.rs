//! Declared activations that keep varying far from their features (`sin(w x)`), where the
//! graded rules' wide panels would miss oscillations: their averages against closed forms.

use crate::activations::{arguments, assert_close, covariances};

use ae_core::activation::Activation;
use ae_core::averages::Evaluate;
use ae_dsl::ir::Avg;

/// E[sin(w x1) sin(w x2)] and E[cos(w x1) cos(w x2)] for covariance (c11, c12, c22), from
/// E[cos(w (x1 -+ x2))] = exp(-w^2 Var(x1 -+ x2) / 2).
fn sin_sin_cos_cos(w: f64, [c11, c12, c22]: [f64; 3]) -> (f64, f64) {
    let minus = (-w * w * (c11 + c22 - 2.0 * c12) / 2.0).exp();
    let plus = (-w * w * (c11 + c22 + 2.0 * c12) / 2.0).exp();
    ((minus - plus) / 2.0, (minus + plus) / 2.0)
}

/// `sin(w x)` for w = 1, 3, 10 meets its closed forms to the 1e-10 every average is held to,
/// by series as a run takes them and by the quadrature alone: I2 and its gradient
/// (d/dc11 = d/dc22 = -w^2 I2 / 2, d/dc12 = w^2 E[cos cos]) at moderate, strong, anti-aligned
/// and vanishing correlations, at variances from 0.01 to 40 and for one unit seen twice; and
/// I3 by Stein's lemma, w^2 (c23 E[cos(w x1) cos(w x3)] - c12 E[sin(w x1) sin(w x3)]), at
/// random covariances and at eight times them (variances up to about 56; not at w = 10, where
/// those averages are below rounding). Measured: 5e-12 at
/// worst. Before each activation had a widest panel, I2 of sin(x) was off by 1e-7 at
/// variance 36, of sin(3 x) by 3e-4 at variance 16 and of sin(10 x) by 4e-3.
#[test]
fn an_oscillating_activation_meets_its_closed_forms() {
    let omegas = [1.0, 3.0, 10.0];
    let mut source = aedyn::models::shipped_source("vanilla").unwrap().to_string();
    for (i, w) in omegas.iter().enumerate() {
        source += &format!("activation sine{i}(x) = sin({w} * x)\n");
    }
    let model = ae_dsl::compile("oscillating.ae", &source).expect("compiles");
    let pairs = [
        [1.0, 0.3, 1.0],
        [4.0, -3.98, 4.0],
        [16.0, -15.9, 16.0],
        [16.0, 8.0, 16.0],
        [36.0, 35.0, 36.0],
        [40.0, -39.99, 40.0],
        [16.0, 16.0, 16.0],
        [0.05, 0.01, 0.1],
        [0.01, 0.005, 0.01],
        [2.0, 0.0, 0.5],
    ];
    let mut triples = covariances();
    triples.extend(covariances().iter().map(|c| c.map(|v| 8.0 * v)));
    for (i, w) in omegas.into_iter().enumerate() {
        let def = model.activations.iter().find(|a| a.name == format!("sine{i}")).unwrap();
        let g = Activation::User(ae_jit::user_activation(def, &source).expect("a usable activation"));
        for c in pairs {
            let (sin_sin, cos_cos) = sin_sin_cos_cos(w, c);
            let grad = [-w * w * sin_sin / 2.0, w * w * cos_cos, -w * w * sin_sin / 2.0];
            for (how, value, gradient) in [
                ("series", g.average(Avg::I2, &c), g.average_grad(Avg::I2, &c)),
                (
                    "quadrature",
                    g.average_by_quadrature(Avg::I2, &c),
                    g.average_grad_by_quadrature(Avg::I2, &c),
                ),
            ] {
                assert_close(format!("sin({w} x): I2 by {how} at {c:?}"), &[value], &[sin_sin], 1e-10);
                assert_close(
                    format!("sin({w} x): I2 gradient by {how} at {c:?}"),
                    &gradient,
                    &grad,
                    1e-10,
                );
            }
        }
        // At w = 10 and eight times the variances every average is below rounding.
        let scaled_too = if w < 10.0 { triples.len() } else { triples.len() / 2 };
        for c in &triples[..scaled_too] {
            let [c11, c12, c13, _, c23, c33] = *c;
            let (sin_sin, cos_cos) = sin_sin_cos_cos(w, [c11, c13, c33]);
            let want = w * w * (c23 * cos_cos - c12 * sin_sin);
            let args = arguments(Avg::I3, c);
            for (how, value) in [
                ("series", g.average(Avg::I3, &args)),
                ("quadrature", g.average_by_quadrature(Avg::I3, &args)),
            ] {
                assert_close(format!("sin({w} x): I3 by {how} at {c:?}"), &[value], &[want], 1e-10);
            }
        }
    }
}

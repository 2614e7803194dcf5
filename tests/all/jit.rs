//! The run-time compiler against the interpreter and the generated kernels: every shipped file
//! and activation, unrolled and K-generic, the Jacobians against central differences.

use crate::common;

use ae_core::averages::ActivationKind;
use ae_core::kernel::Kernel;
use ae_jit::{JitKernel, Shape};
use common::*;

/// Sums of the same terms in other orders (the generated code's hash-consed graph, the K-generic
/// matrix products): rounding of sums of a few hundred terms of size up to ~10, far below
/// 1e-12 of the output's scale.
const TOL: f64 = 1e-12;

fn scaled_difference(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(f64::MIN_POSITIVE);
    a.iter().zip(b).map(|(x, y)| (x - y).abs() / scale).fold(0.0, f64::max)
}

fn jit(
    equations: &str,
    k: usize,
    activation: ActivationKind,
    shape: Shape,
    interp: &ae_runtime::interp::Interpreter,
) -> JitKernel {
    let (model, src) = shipped(equations);
    let mut kernel = JitKernel::new(model, src, k, activation, shape).expect("compiles");
    kernel.set_rho(interp.rho().to_vec());
    kernel.params_mut().copy_from_slice(interp.params());
    kernel
}

/// The right-hand side and observables of `kernel` against `reference` at `y`: the worst
/// difference in units of the output's scale.
fn compare(kernel: &dyn Kernel, reference: &dyn Kernel, y: &[f64], n_obs: usize) -> f64 {
    let (mut a, mut b) = (vec![0.0; y.len()], vec![0.0; y.len()]);
    kernel.rhs(y, &mut a);
    reference.rhs(y, &mut b);
    assert!(b.iter().all(|v| v.is_finite()));
    let (mut oa, mut ob) = (vec![0.0; n_obs], vec![0.0; n_obs]);
    kernel.observe(y, &mut oa);
    reference.observe(y, &mut ob);
    scaled_difference(&a, &b).max(scaled_difference(&oa, &ob))
}

#[test]
fn jit_kernels_match_the_interpreter_and_the_generated_kernels() {
    let mut worst = 0.0f64;
    let mut checked = 0;
    for equations in aedyn::models::shipped_equations() {
        let (model, src) = shipped(equations);
        for activation in ActivationKind::ALL {
            for (shape, ks) in [
                (Shape::Unrolled, &[1usize, 2, 3, 5, 9][..]),
                (Shape::Generic, &[2, 5, 17][..]),
            ] {
                for &k in ks {
                    let m = if equations == "reduced" { k } else { 3 };
                    let (rho, inputs) = random_state(&model, k, 24.max(2 * k + m), m, 13 * k as u64);
                    let interp = interpreter(&model, src, k, activation, &rho);
                    let y = interp.init(&inputs);
                    let kernel = jit(equations, k, activation, shape, &interp);
                    let n_obs = ae_dsl::unroll::observable_names(&model, k).len();
                    let what = format!("{equations} {shape:?} K={k} {activation}");
                    let d = compare(&kernel, &interp, &y, n_obs);
                    assert!(d <= TOL, "{what}: against the interpreter {d:e}");
                    if let Some(generated) = aedyn::models::generated(equations, k, activation) {
                        let mut generated = generated;
                        generated.set_rho(rho.clone());
                        generated.params_mut().copy_from_slice(interp.params());
                        let d = compare(&kernel, generated.as_ref(), &y, n_obs);
                        assert!(d <= TOL, "{what}: against the generated kernel {d:e}");
                    }
                    worst = worst.max(d);
                    checked += 1;
                }
            }
        }
    }
    eprintln!("JIT kernels: worst difference {worst:.2e} of the output scale in {checked} kernels");
    assert_eq!(
        checked,
        aedyn::models::shipped_equations().count() * ActivationKind::ALL.len() * 8
    );
}

/// The JIT's symbolic Jacobians against central differences of the interpreter (the tolerance
/// of the generated ones, `differential::TOL`), and against the generated Jacobians where those
/// exist (the same derivation: rounding only).
#[test]
fn jit_jacobians_match_differences_of_the_interpreter() {
    let mut checked = 0;
    for equations in ["vanilla", "truncated", "reduced"] {
        let (model, src) = shipped(equations);
        for activation in ActivationKind::ALL {
            for k in [1usize, 2, 3, 5] {
                let m = if equations == "reduced" { k } else { 3 };
                let (rho, inputs) = random_state(&model, k, 24, m, 7 + k as u64);
                let interp = interpreter(&model, src, k, activation, &rho);
                let y = interp.init(&inputs);
                let n = y.len();
                let kernel = jit(equations, k, activation, Shape::Unrolled, &interp);
                let mut jac = vec![f64::NAN; n * n];
                assert!(
                    kernel.jacobian(&y, &mut jac),
                    "{equations} K={k} {activation}: no Jacobian"
                );
                let what = format!("{equations} JIT K={k} {activation}");
                crate::differential::assert_matches_differences(&what, &jac, &interp, &y);
                if let Some(mut generated) = aedyn::models::unrolled(equations, k, activation) {
                    generated.set_rho(rho.clone());
                    generated.params_mut().copy_from_slice(interp.params());
                    let mut exact = vec![f64::NAN; n * n];
                    if generated.jacobian(&y, &mut exact) {
                        let d = scaled_difference(&jac, &exact);
                        assert!(d <= TOL, "{what}: against the generated Jacobian {d:e}");
                    }
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * ActivationKind::ALL.len() * 4);
}

/// Files that reach what the shipped ones do not: mode sums nested in mode sums, functions of
/// mode-dependent values, every function of the language; unrolled (with the Jacobian) and
/// K-generic.
#[test]
fn jit_through_nested_sums_and_every_function() {
    for (name, src) in [
        ("nested_sums", include_str!("../data/nested_sums.ae")),
        ("every_function", include_str!("../data/every_function.ae")),
    ] {
        let model = std::sync::Arc::new(ae_dsl::compile(&format!("{name}.ae"), src).expect("compiles"));
        for activation in [ActivationKind::Erf, ActivationKind::Relu] {
            for k in [1usize, 2, 4] {
                let (rho, inputs) = random_state(&model, k, 24, 3, 5 + k as u64);
                let interp = interpreter(&model, src, k, activation, &rho);
                let y = interp.init(&inputs);
                let n_obs = ae_dsl::unroll::observable_names(&model, k).len();
                for shape in [Shape::Unrolled, Shape::Generic] {
                    let mut kernel = JitKernel::new(model.clone(), src, k, activation, shape).expect("compiles");
                    kernel.set_rho(rho.clone());
                    kernel.params_mut().copy_from_slice(interp.params());
                    let d = compare(&kernel, &interp, &y, n_obs);
                    assert!(d <= TOL, "{name} {shape:?} K={k} {activation}: {d:e}");
                    if shape == Shape::Unrolled {
                        let n = y.len();
                        let mut jac = vec![f64::NAN; n * n];
                        assert!(kernel.jacobian(&y, &mut jac));
                        let what = format!("{name} JIT K={k} {activation}");
                        crate::differential::assert_matches_differences(&what, &jac, &interp, &y);
                    }
                }
            }
        }
    }
}

//! Generated code against the interpreter: every generated (file, K, activation) on random
//! physical states must agree to 1e-12 relative.

mod common;

use ae_runtime::averages::ActivationKind;
use ae_runtime::kernel::Kernel;
use common::*;

/// Both sides evaluate the same expression trees with the same operand order (the unroller only
/// reorders commutative operands, which is exact in IEEE arithmetic, and drops additions of exact
/// zeros), so they should agree to rounding; 1e-12 relative leaves room for the one reordering
/// that is not exact: I2's arguments are put in canonical order (I2 is symmetric), which changes
/// the quadrature path for tanh at the 1e-15 level.
const REL_TOL: f64 = 1e-12;

fn assert_close(what: &str, generated: &[f64], interpreted: &[f64]) {
    let scale = interpreted.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (g, t)) in generated.iter().zip(interpreted).enumerate() {
        assert!(
            (g - t).abs() <= REL_TOL * t.abs().max(1e-6 * scale),
            "{what}: entry {i}: generated {g}, interpreted {t}"
        );
    }
}

#[test]
fn generated_kernels_match_the_interpreter() {
    let mut checked = 0;
    for &(equations, k, activation) in aedyn::models::default::GENERATED
        .iter()
        .chain(aedyn::models::wide::GENERATED)
    {
        let (model, src) = shipped(equations);
        let act = ActivationKind::parse(activation).expect("known activation");
        for seed in 0..3u64 {
            let (rho, inputs) = random_state(&model, k, 24, 3, 100 * seed + k as u64);
            let interp = interpreter(&model, src, k, act, &rho);
            let y = interp.init(&inputs);
            let mut kernel = aedyn::models::generated(equations, k, activation).expect("generated");
            assert!(kernel.is_generated());
            kernel.set_rho(rho.clone());
            kernel.params_mut().copy_from_slice(interp.params());
            let (mut dg, mut di) = (vec![0.0; y.len()], vec![0.0; y.len()]);
            kernel.rhs(&y, &mut dg);
            interp.rhs(&y, &mut di);
            assert!(
                di.iter().all(|v| v.is_finite()),
                "{equations} K={k} {activation}: non-finite rhs"
            );
            assert!(
                di.iter().any(|v| *v != 0.0),
                "{equations} K={k} {activation}: trivial rhs"
            );
            assert_close(&format!("{equations} K={k} {activation} rhs"), &dg, &di);
            let n_obs = ae_dsl::unroll::observable_names(&model, k).len();
            let (mut og, mut oi) = (vec![0.0; n_obs], vec![0.0; n_obs]);
            kernel.observe(&y, &mut og);
            interp.observe(&y, &mut oi);
            assert_close(&format!("{equations} K={k} {activation} observables"), &og, &oi);
        }
        checked += 1;
    }
    // 5 files x K = 1..=4 x 4 activations, and full_spectrum x K = 5..=8 x {erf, linear}.
    assert_eq!(checked, 88);
}

//! Generated code against the interpreter: every generated (file, K, activation) on random
//! physical states must agree to 1e-12 relative.

use crate::common;

use ae_core::averages::ActivationKind;
use ae_core::kernel::Kernel;
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

/// `kernel` with the interpreter's eigenvalues and parameters.
fn like(mut kernel: Box<dyn Kernel>, interp: &ae_runtime::interp::Interpreter) -> Box<dyn Kernel> {
    kernel.set_rho(interp.rho().to_vec());
    kernel.params_mut().copy_from_slice(interp.params());
    kernel
}

#[test]
fn generated_kernels_match_the_interpreter() {
    let mut checked = 0;
    for &(equations, k, activation) in aedyn::models::default::GENERATED {
        let (model, src) = shipped(equations);
        let act = activation;
        for seed in 0..3u64 {
            let (rho, inputs) = random_state(&model, k, 24, 3, 100 * seed + k as u64);
            let interp = interpreter(&model, src, k, act, &rho);
            let y = interp.init(&inputs);
            let kernel = like(
                aedyn::models::generated(equations, k, activation).expect("generated"),
                &interp,
            );
            assert_eq!(kernel.backend(), ae_core::kernel::Backend::Generated);
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
    assert_eq!(checked, aedyn::models::default::GENERATED.len());
    // The default set holds every shipped file at K = 1..=4 with every activation.
    for equations in aedyn::models::shipped_equations() {
        for k in 1..=4 {
            for activation in ActivationKind::ALL {
                assert!(
                    aedyn::models::default::GENERATED.contains(&(equations, k, activation)),
                    "{equations} K={k} {activation} is not generated"
                );
            }
        }
    }
}

/// Every file of `equations/` is a shipped equation file with generated kernels, found from the
/// folder (no list to keep by hand).
#[test]
fn every_equation_file_of_the_folder_is_generated() {
    let mut files: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/equations"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_string_lossy().strip_suffix(".ae").map(str::to_string))
        .collect();
    files.sort();
    let mut shipped: Vec<String> = aedyn::models::shipped_equations().map(str::to_string).collect();
    shipped.sort();
    assert_eq!(shipped, files);
}

/// The K-generic kernels sum in another order than the interpreter (matrix products over all
/// modes, coefficients collected before they multiply a mode's entries), so they agree to
/// rounding of sums of K M terms rather than bit for bit: with K M <= 27 terms of size up to
/// the largest entry, ~30 eps relative to the output's scale, well below 1e-12.
const GENERIC_TOL: f64 = 1e-12;

/// Largest difference relative to the interpreted output's scale (the largest entry), which
/// is what reassociated sums bound.
fn scaled_difference(generated: &[f64], interpreted: &[f64]) -> f64 {
    let scale = interpreted
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(f64::MIN_POSITIVE);
    generated
        .iter()
        .zip(interpreted)
        .map(|(g, t)| (g - t).abs() / scale)
        .fold(0.0, f64::max)
}

fn assert_generic_matches(what: &str, kernel: &dyn Kernel, reference: &dyn Kernel, y: &[f64], n_obs: usize) -> f64 {
    let (mut dg, mut di) = (vec![0.0; y.len()], vec![0.0; y.len()]);
    kernel.rhs(y, &mut dg);
    reference.rhs(y, &mut di);
    assert!(di.iter().all(|v| v.is_finite()), "{what}: non-finite rhs");
    assert!(di.iter().any(|v| *v != 0.0), "{what}: trivial rhs");
    let (mut og, mut oi) = (vec![0.0; n_obs], vec![0.0; n_obs]);
    kernel.observe(y, &mut og);
    reference.observe(y, &mut oi);
    let worst = scaled_difference(&dg, &di).max(scaled_difference(&og, &oi));
    assert!(
        worst <= GENERIC_TOL,
        "{what}: generic and reference differ by {worst:e} of the scale\n{dg:?}\n{di:?}"
    );
    worst
}

/// The values of K at which the K-generic kernels are checked.
const GENERIC_KS: [usize; 5] = [1, 2, 3, 5, 9];

/// Every K-generic kernel against the interpreter at K = 1, 2, 5 and 9 on random physical
/// states, and against the unrolled kernel at K = 3.
#[test]
fn generic_kernels_match_the_interpreter_and_the_unrolled_kernels() {
    let mut worst = 0.0f64;
    let mut checked = 0;
    for &(equations, activation) in aedyn::models::default::GENERIC {
        let (model, src) = shipped(equations);
        let act = activation;
        // reduced.ae has one unit per spike: K modes; the others get 3 modes.
        for k in GENERIC_KS {
            let m = if equations == "reduced" { k } else { 3 };
            let (rho, inputs) = random_state(&model, k, 24.max(2 * k + m), m, 11 * k as u64);
            let interp = interpreter(&model, src, k, act, &rho);
            let y = interp.init(&inputs);
            let kernel = like(
                aedyn::models::generic(equations, k, activation).expect("generic"),
                &interp,
            );
            assert_eq!(kernel.k(), k);
            // What the dispatcher hands out for a K without an unrolled kernel.
            if k > 4 {
                let dispatched = aedyn::models::generated(equations, k, activation).expect("dispatched");
                assert!(
                    dispatched.backend() == ae_core::kernel::Backend::Generated && dispatched.k() == k,
                    "{equations} K={k} {activation}"
                );
            }
            let n_obs = ae_dsl::unroll::observable_names(&model, k).len();
            let what = format!("{equations} generic K={k} {activation}");
            let against: Box<dyn Kernel> = if k == 3 {
                like(
                    aedyn::models::unrolled(equations, k, activation).expect("unrolled"),
                    &interp,
                )
            } else {
                Box::new(interp)
            };
            worst = worst.max(assert_generic_matches(
                &what,
                kernel.as_ref(),
                against.as_ref(),
                &y,
                n_obs,
            ));
            checked += 1;
        }
    }
    eprintln!("generic kernels: worst difference {worst:.2e} of the output scale");
    // Every generated K-generic type at every K: none skipped.
    assert_eq!(checked, aedyn::models::default::GENERIC.len() * GENERIC_KS.len());
}

/// The paths of the K-generic lowering that the shipped files do not reach: mode sums inside
/// mode sums, functions of mode-dependent values, a state without mode index read per mode.
#[test]
fn generic_kernel_through_nested_mode_sums_and_functions() {
    let src = include_str!("../data/nested_sums.ae");
    let model = std::sync::Arc::new(ae_dsl::compile("nested_sums.ae", src).expect("compiles"));
    for activation in [ActivationKind::Erf, ActivationKind::Relu] {
        let act = activation;
        for k in [1usize, 2, 4] {
            let (rho, inputs) = random_state(&model, k, 24, 3, 5 + k as u64);
            let interp = interpreter(&model, src, k, act, &rho);
            let y = interp.init(&inputs);
            let kernel = like(
                nested::generic_kernel("nested_sums", k, activation).expect("generic"),
                &interp,
            );
            let n_obs = ae_dsl::unroll::observable_names(&model, k).len();
            assert_generic_matches(
                &format!("nested_sums generic K={k} {activation}"),
                kernel.as_ref(),
                &interp,
                &y,
                n_obs,
            );
        }
    }
}

/// Central differences with h = 1e-5 max(1, |y_j|): truncation h^2 |f'''| / 6 and rounding
/// eps |f| / h are both ~1e-11 for a right-hand side and derivatives of order one; measured,
/// the symbolic Jacobians agree to 5e-9 relative (to the entry, or to 1e-3 of the largest entry
/// for small ones). 1e-5 leaves three orders of margin; a wrong term is an O(1) error.
const TOL: f64 = 1e-5;

/// Central-difference Jacobian of `kernel` at `y`, column-major.
fn central_jacobian(kernel: &dyn Kernel, y: &[f64]) -> Vec<f64> {
    let n = y.len();
    let mut jac = vec![0.0; n * n];
    let (mut up, mut down) = (vec![0.0; n], vec![0.0; n]);
    for j in 0..n {
        let h = 1e-5 * y[j].abs().max(1.0);
        let mut x = y.to_vec();
        x[j] = y[j] + h;
        kernel.rhs(&x, &mut up);
        x[j] = y[j] - h;
        kernel.rhs(&x, &mut down);
        for i in 0..n {
            jac[j * n + i] = (up[i] - down[i]) / (2.0 * h);
        }
    }
    jac
}

/// Asserts that `jac` (column-major) matches central differences of the interpreter at `y` to
/// TOL relative to each entry, or to 1e-3 of the largest entry for small ones; returns the
/// largest such relative difference.
pub(crate) fn assert_matches_differences(what: &str, jac: &[f64], interp: &dyn Kernel, y: &[f64]) -> f64 {
    let n = y.len();
    let fd = central_jacobian(interp, y);
    let scale = fd.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut worst = 0.0f64;
    for (i, (exact, diff)) in jac.iter().zip(&fd).enumerate() {
        let bound = diff.abs().max(1e-3 * scale);
        assert!(
            (exact - diff).abs() <= TOL * bound,
            "{what}: d(dy[{}])/dy[{}]: symbolic {exact}, differences {diff}",
            i % n,
            i / n
        );
        worst = worst.max((exact - diff).abs() / bound);
    }
    worst
}

/// The symbolic Jacobians (emitted for the equations that long runs integrate with Rodas4)
/// against central differences of the interpreter's right-hand side, a computation that shares
/// nothing with the differentiation.
#[test]
fn generated_jacobians_match_differences_of_the_interpreter() {
    let with_jacobian = aedyn::models::default::WITH_JACOBIAN;
    let mut checked = 0;
    for &(equations, k, activation) in aedyn::models::default::GENERATED {
        let (model, src) = shipped(equations);
        let act = activation;
        let (rho, inputs) = random_state(&model, k, 24, 3, 7 + k as u64);
        let interp = interpreter(&model, src, k, act, &rho);
        let y = interp.init(&inputs);
        let n = y.len();
        let kernel = like(
            aedyn::models::generated(equations, k, activation).expect("generated"),
            &interp,
        );
        let mut jac = vec![f64::NAN; n * n];
        let has = kernel.jacobian(&y, &mut jac);
        let expected = with_jacobian.contains(&equations) && act.has_exact_gradients();
        assert_eq!(has, expected, "{equations} K={k} {activation}");
        if !has {
            continue;
        }
        let worst = assert_matches_differences(&format!("{equations} K={k} {activation}"), &jac, &interp, &y);
        eprintln!("{equations} K={k} {activation}: n = {n}, worst relative difference {worst:.2e}");
        checked += 1;
    }
    // Every generated type of an equation file listed for the Jacobian, with an activation of
    // exact gradients: none skipped.
    let expected = aedyn::models::default::GENERATED
        .iter()
        .filter(|(equations, _, activation)| with_jacobian.contains(equations) && activation.has_exact_gradients())
        .count();
    assert_eq!(checked, expected);
}

mod nested {
    ae_macros::generate! {
        files = ["tests/data/nested_sums.ae"],
        k = [2],
        activations = [erf, relu],
        jacobian = [nested_sums],
        generic = true,
    }
}

#[test]
fn jacobian_through_nested_mode_sums_and_functions() {
    // Same comparison as above, on equations whose mode sums contain other mode sums and where
    // every function of the language appears (tolerance as there).
    let src = include_str!("../data/nested_sums.ae");
    let model = std::sync::Arc::new(ae_dsl::compile("nested_sums.ae", src).expect("compiles"));
    for activation in [ActivationKind::Erf, ActivationKind::Relu] {
        let act = activation;
        let (rho, inputs) = random_state(&model, 2, 24, 3, 5);
        let interp = interpreter(&model, src, 2, act, &rho);
        let y = interp.init(&inputs);
        let n = y.len();
        let kernel = like(
            nested::kernel("nested_sums", 2, activation).expect("generated"),
            &interp,
        );
        let (mut dg, mut di) = (vec![0.0; n], vec![0.0; n]);
        kernel.rhs(&y, &mut dg);
        interp.rhs(&y, &mut di);
        assert_close("nested_sums rhs", &dg, &di);
        let mut jac = vec![0.0; n * n];
        assert!(kernel.jacobian(&y, &mut jac));
        assert_matches_differences(&format!("nested_sums {activation}"), &jac, &interp, &y);
    }
}

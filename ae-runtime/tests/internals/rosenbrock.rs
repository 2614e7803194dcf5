//! The own Rodas4 on problems with known solutions: order, stiffness, step control, errors.

use ae_runtime::ode::rosenbrock::*;

#[test]
fn fourth_order_on_a_nonlinear_problem() {
    // y' = -y^2, y(0) = 1: y(t) = 1/(1+t). With a tolerance loose enough that the step
    // control takes few steps, tightening rtol by 10^4 must cut the error by about 10^4
    // (order 4 with an order-3 estimate); we only require a factor 300.
    let f = |y: &[f64], dy: &mut [f64]| dy[0] = -y[0] * y[0];
    let solve = |rtol: f64| {
        let mut y = vec![1.0];
        let mut h = 0.0;
        let mut st = RodasStats::default();
        integrate(
            &f,
            None,
            0.0,
            10.0,
            &mut y,
            &mut h,
            rtol,
            rtol,
            100_000,
            &mut st,
            &mut Workspace::default(),
        )
        .unwrap();
        (y[0] - 1.0 / 11.0).abs()
    };
    let (coarse, fine) = (solve(1e-4), solve(1e-8));
    assert!(coarse < 1e-4 && fine < 1e-8 && fine * 300.0 < coarse, "{coarse} {fine}");
}

#[test]
fn a_tight_tolerance_late_start_is_not_a_collapsed_step() {
    // dx/dt = -x/100 from t = 628 at rtol 1e-14, atol 1e-16: the first-step guess (1e-16)
    // is below what t = 628 resolves; the run must go on and land on the exact solution
    // (a few hundred steps at rtol 1e-14: global error ~1e-13 relative).
    let f = |y: &[f64], dy: &mut [f64]| dy[0] = -y[0] / 100.0;
    let mut y = vec![1.0];
    let mut h = 0.0;
    let mut st = RodasStats::default();
    integrate(
        &f,
        None,
        628.0,
        1000.0,
        &mut y,
        &mut h,
        1e-14,
        1e-16,
        1_000_000,
        &mut st,
        &mut Workspace::default(),
    )
    .unwrap();
    let exact = (-3.72f64).exp();
    assert!((y[0] - exact).abs() <= 1e-11 * exact, "{} vs {exact}", y[0]);
}

#[test]
fn exact_jacobian_replaces_the_differences() {
    // y' = -y^2 with J = -2y: the same steps as with differences (forward differences are
    // accurate to ~1e-8 here, far below what changes an accept/reject decision at rtol
    // 1e-8), the same answer to within the tolerance, and no evaluations spent on columns.
    let f = |y: &[f64], dy: &mut [f64]| dy[0] = -y[0] * y[0];
    let jac = |y: &[f64], j: &mut [f64]| j[0] = -2.0 * y[0];
    let run = |exact: Option<JacobianFn>| {
        let (mut y, mut h, mut st) = (vec![1.0], 0.0, RodasStats::default());
        integrate(
            &f,
            exact,
            0.0,
            10.0,
            &mut y,
            &mut h,
            1e-8,
            1e-8,
            100_000,
            &mut st,
            &mut Workspace::default(),
        )
        .unwrap();
        (y[0], st)
    };
    let (fd, fd_stats) = run(None);
    let (exact, exact_stats) = run(Some(&jac));
    assert!(
        (exact - 1.0 / 11.0).abs() < 1e-8 && (exact - fd).abs() < 1e-9,
        "{exact} {fd}"
    );
    assert_eq!(exact_stats.accepted, fd_stats.accepted);
    assert_eq!(exact_stats.evaluations + exact_stats.jacobians, fd_stats.evaluations);
}

#[test]
fn a_non_finite_exact_jacobian_is_an_error_not_a_step() {
    // d|y|/dy is NaN at y = 0 in the generated code (a / |a|): never silently used.
    let f = |y: &[f64], dy: &mut [f64]| dy[0] = -y[0].abs();
    let jac = |y: &[f64], j: &mut [f64]| j[0] = -y[0] / y[0].abs();
    let (mut y, mut h, mut st) = (vec![0.0], 0.0, RodasStats::default());
    let res = integrate(
        &f,
        Some(&jac),
        0.0,
        1.0,
        &mut y,
        &mut h,
        1e-8,
        1e-8,
        100,
        &mut st,
        &mut Workspace::default(),
    );
    assert!(
        matches!(res, Err(RodasFailure::NonFiniteJacobian(0, 0, t, v)) if t == 0.0 && v.is_nan()),
        "{res:?}"
    );
}

#[test]
fn lu_solves_a_pivoting_system_to_rounding() {
    // A zero leading entry forces a row exchange; the matrix is well conditioned, so the
    // residual of the solution is at rounding level (n * eps * |A| |x|).
    let n = 5;
    let mut lu = DenseLu::default();
    let entry = |i: usize, j: usize| if i == j { 0.0 } else { 1.0 / (1.0 + i as f64 + 2.0 * j as f64) } + if i + 1 == j { 3.0 } else { 0.0 } + if i == j + 1 { 2.0 } else { 0.0 };
    let a = lu.matrix_mut(n);
    for j in 0..n {
        for i in 0..n {
            a[j * n + i] = entry(i, j);
        }
    }
    assert!(lu.factor(n));
    let b: Vec<f64> = (0..n).map(|i| 1.0 + i as f64).collect();
    let mut x = b.clone();
    lu.solve(&mut x);
    for (i, bi) in b.iter().enumerate() {
        let ax: f64 = (0..n).map(|j| entry(i, j) * x[j]).sum();
        assert!((ax - bi).abs() < 1e-13, "row {i}: {ax} vs {bi}");
    }
    let singular = lu.matrix_mut(2);
    singular.copy_from_slice(&[1.0, 2.0, 2.0, 4.0]);
    assert!(!lu.factor(2), "a rank-one matrix has a zero pivot");
}

#[test]
fn stiff_linear_problem_takes_large_steps() {
    // y1' = -1000 y1, y2' = -y2: an explicit method's stability region needs h < ~3.3e-3,
    // so at least 6000 steps over [0, 20]; Rodas4's steps are set by accuracy on y2 alone
    // (h ~ rtol^(1/4) ~ 0.05: about 450 steps at rtol 1e-8).
    let f = |y: &[f64], dy: &mut [f64]| {
        dy[0] = -1000.0 * y[0];
        dy[1] = -y[1];
    };
    let mut y = vec![1.0, 1.0];
    let mut h = 0.0;
    let mut st = RodasStats::default();
    integrate(
        &f,
        None,
        0.0,
        20.0,
        &mut y,
        &mut h,
        1e-8,
        1e-10,
        100_000,
        &mut st,
        &mut Workspace::default(),
    )
    .unwrap();
    assert!((y[1] - (-20.0f64).exp()).abs() < 1e-9, "{}", y[1]);
    assert!(st.accepted < 1000, "{} steps", st.accepted);
}

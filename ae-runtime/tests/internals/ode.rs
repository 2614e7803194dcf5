//! Tests of the driver and its stages on small systems with known solutions.

use ae_core::kernel::Kernel;
use ae_runtime::ode::*;

/// A test system given by its right-hand side and, optionally, its exact Jacobian.
struct TestKernel {
    rhs: fn(&[f64], &mut [f64]),
    jacobian: Option<fn(&mut [f64])>,
}

impl Kernel for TestKernel {
    fn equations(&self) -> &str {
        "test"
    }
    fn activation(&self) -> ae_core::activation::Activation {
        // A linear test system: no activation enters it.
        ae_core::averages::ActivationKind::Linear.into()
    }
    fn k(&self) -> usize {
        1
    }
    fn source(&self) -> &str {
        ""
    }
    fn params(&self) -> &[f64] {
        &[]
    }
    fn params_mut(&mut self) -> &mut [f64] {
        &mut []
    }
    fn rho(&self) -> &[f64] {
        &[]
    }
    fn set_rho(&mut self, _rho: Vec<f64>) {}
    fn rhs(&self, y: &[f64], dy: &mut [f64]) {
        (self.rhs)(y, dy)
    }
    fn observe(&self, y: &[f64], out: &mut [f64]) {
        out[0] = y[0];
    }
    fn backend(&self) -> ae_core::kernel::Backend {
        ae_core::kernel::Backend::Generated
    }
    fn jacobian(&self, _y: &[f64], jac: &mut [f64]) -> bool {
        self.jacobian.map(|exact| exact(jac)).is_some()
    }
}

/// dy_i/dt = -(1 + i mod 3) y_i: a state large enough that one stepper may keep only ~20
/// steps, integrated over a stretch that needs more.
const DECAY: TestKernel = TestKernel {
    rhs: |y, dy| {
        for (i, (d, v)) in dy.iter_mut().zip(y).enumerate() {
            *d = -((1 + i % 3) as f64) * v;
        }
    },
    jacobian: None,
};

/// y0' = -1000 (y0 - y1), y1' = -y1: after a transient of width 1e-3, y0 follows
/// (1000/999) e^{-t} and an explicit method is held at h ~ 6e-3 by stability alone.
fn stiff(exact_jacobian: bool) -> TestKernel {
    TestKernel {
        rhs: |y, dy| {
            dy[0] = -1000.0 * (y[0] - y[1]);
            dy[1] = -y[1];
        },
        jacobian: exact_jacobian.then_some(|jac: &mut [f64]| jac.copy_from_slice(&[-1000.0, 0.0, 1000.0, -1.0])),
    }
}

/// Stiffer (eigenvalue -4000) and without a Jacobian, in 31 identical copies (62 entries, every
/// one of them in the error norm as the two of one copy would be): past the size up to which
/// `auto` starts BDF on differences (`differences_as_cheap_as_exact`), so auto begins explicit
/// and the hand-over is what is tested; stiff enough that, at that size, BDF's estimated cost
/// wins on the way to t = 5.
fn stiff_padded() -> TestKernel {
    TestKernel {
        rhs: |y, dy| {
            for (y, dy) in y.chunks(2).zip(dy.chunks_mut(2)) {
                dy[0] = -4000.0 * (y[0] - y[1]);
                dy[1] = -y[1];
            }
        },
        jacobian: None,
    }
}

fn run_padded(method: Method, t_end: f64) -> Trajectory {
    let solver = Solver {
        method,
        ..Solver::default()
    };
    let y0 = [0.0, 1.0].repeat(31);
    integrate(
        &stiff_padded(),
        &[],
        y0,
        &log_times(0.01, t_end, 10),
        &solver,
        &["y0".into()],
        &|_| None,
        |_| {},
    )
    .unwrap()
}

fn run_stiff(method: Method, exact_jacobian: bool) -> Trajectory {
    let solver = Solver {
        method,
        ..Solver::default()
    };
    let times = log_times(0.01, 5.0, 10);
    integrate(
        &stiff(exact_jacobian),
        &[],
        vec![0.0, 1.0],
        &times,
        &solver,
        &["y0".into()],
        &|_| None,
        |_| {},
    )
    .unwrap()
}

/// The exact late solution, against which every method must land within its tolerance:
/// rtol 1e-7 per step leaves a global error of a few 1e-6 relative at most (at t = 5 the value,
/// 6.7e-3, is far above atol = 1e-10).
fn assert_on_the_slow_manifold(traj: &Trajectory, what: &str) {
    assert_on_the_slow_manifold_of(traj, what, 1000.0);
}

/// As above, for the problem with eigenvalue `-lambda`.
fn assert_on_the_slow_manifold_of(traj: &Trajectory, what: &str, lambda: f64) {
    let t = *traj.times.last().unwrap();
    let exact = lambda / (lambda - 1.0) * (-t).exp();
    let got = traj.states.last().unwrap()[0];
    assert!((got - exact).abs() <= 1e-5 * exact, "{what}: {got} vs {exact}");
}

#[test]
fn auto_hands_a_stiff_explicit_run_to_bdf() {
    // Without an exact Jacobian (and a state too large to start on differences) auto starts
    // with dop853; once the steps are held by stability (Hairer's test, 15 in a row) it goes
    // on with BDF (finite differences). dop853 alone is held at h <= 1.6e-3 (its stability
    // interval on the negative axis is ~6.3, the eigenvalue -4000): about 3200 steps to t = 5.
    let auto = run_padded(Method::Auto, 5.0);
    let explicit = run_padded(Method::Dop853, 5.0);
    assert_eq!(auto.stats.started_with, Method::Dop853);
    let switched = auto.stats.switched_at.expect("auto switched");
    assert!(switched < 0.5, "switched at t = {switched}");
    assert_eq!(auto.stats.stiff, Some(Method::Bdf));
    assert!(auto.stats.stiff_accepted > 0 && auto.stats.jacobians > 0);
    assert_eq!(explicit.stats.switched_at, None);
    assert!(explicit.stats.accepted > 3000, "{}", explicit.stats.accepted);
    // Auto's steps: dop853's until the test fires, then BDF's, whose step grows with the
    // slow solution (a few hundred in all at rtol 1e-7, against dop853's ~3200 held by
    // stability at any tolerance).
    assert!(
        auto.stats.accepted * 4 < explicit.stats.accepted,
        "auto {} steps, dop853 {}",
        auto.stats.accepted,
        explicit.stats.accepted
    );
    assert_on_the_slow_manifold_of(&auto, "auto", 4000.0);
    assert_on_the_slow_manifold_of(&explicit, "dop853", 4000.0);
    assert!(
        auto.stats.describe().starts_with("dop853 "),
        "{}",
        auto.stats.describe()
    );
}

#[test]
fn auto_starts_with_bdf_where_an_exact_jacobian_exists() {
    let auto = run_stiff(Method::Auto, true);
    assert_eq!(auto.stats.started_with, Method::Bdf);
    assert_eq!(auto.stats.switched_at, None);
    assert_eq!(auto.stats.accepted, auto.stats.stiff_accepted);
    // BDF keeps its Jacobian while Newton converges: fewer Jacobians than steps.
    assert!(
        auto.stats.jacobians < auto.stats.accepted,
        "{} Jacobians, {} steps",
        auto.stats.jacobians,
        auto.stats.accepted
    );
    assert_on_the_slow_manifold(&auto, "auto with the exact Jacobian");
}

#[test]
fn rodas4_forms_one_jacobian_per_step() {
    let rodas = run_stiff(Method::Rodas4, true);
    assert_eq!(rodas.stats.started_with, Method::Rodas4);
    assert_eq!(rodas.stats.stiff, Some(Method::Rodas4));
    // A rejected attempt retries at the same state with the same Jacobian.
    assert_eq!(rodas.stats.jacobians, rodas.stats.accepted);
    assert_on_the_slow_manifold(&rodas, "rodas4");
}

/// A segment longer than one stepper's share of steps goes on in fresh steppers and still
/// lands on the exact solution (dop853 at rtol 1e-10: the global error is a few times the
/// tolerance, 1e-8 of each entry leaves room).
#[test]
fn long_segments_are_split_without_changing_the_solution() {
    let n = 100_000;
    let chunk = steps_per_stepper(n);
    assert!(chunk < 30, "{chunk}");
    let y0: Vec<f64> = (0..n).map(|i| 1.0 + (i % 7) as f64).collect();
    let solver = Solver {
        rtol: 1e-10,
        atol: 1e-14,
        ..Solver::default()
    };
    for method in [Method::Dop853, Method::Dopri5] {
        let solver = Solver { method, ..solver };
        let traj = integrate(
            &DECAY,
            &[],
            y0.clone(),
            &[0.0, 12.0],
            &solver,
            &["y0".into()],
            &|_| None,
            |_| {},
        )
        .unwrap();
        assert!(
            traj.stats.accepted > 2 * chunk as u64,
            "{method:?}: {} steps",
            traj.stats.accepted
        );
        let end = &traj.states[1];
        for (i, v) in end.iter().enumerate() {
            let exact = y0[i] * (-((1 + i % 3) as f64) * 12.0).exp();
            assert!(
                (v - exact).abs() <= 1e-8 * y0[i],
                "{method:?} entry {i}: {v} vs {exact}"
            );
        }
        assert_eq!(traj.states.len(), 2);
    }
}

/// The step budget counts over all steppers of a segment: 159 steps to t = 30 at rtol
/// 1e-13 (limited by accuracy, not by stability, which would stop the run earlier), in
/// steppers of about 100 steps for this state, against a budget of 120.
#[test]
fn the_step_limit_holds_across_split_segments() {
    let n = 20_000;
    assert!(steps_per_stepper(n) < 120);
    let solver = Solver {
        max_steps: 120,
        rtol: 1e-13,
        atol: 1e-16,
        ..Solver::default()
    };
    let y0 = vec![1.0; n];
    let result = integrate(
        &DECAY,
        &[],
        y0,
        &[0.0, 30.0],
        &solver,
        &["y0".into()],
        &|_| None,
        |_| {},
    );
    match result {
        Err(IntegrationError::TooManySteps { steps: 120, .. }) => {}
        Err(e) => panic!("{e}"),
        Ok(traj) => panic!("finished in {} steps", traj.stats.accepted),
    }
}

/// BDF stops at the step limit between two outputs, with the outputs it had reached.
#[test]
fn bdf_stops_at_the_step_limit() {
    let solver = Solver {
        method: Method::Bdf,
        max_steps: 5,
        ..Solver::default()
    };
    let err = integrate(
        &stiff(true),
        &[],
        vec![0.0, 1.0],
        &[0.0, 5.0],
        &solver,
        &["y0".into()],
        &|_| None,
        |_| {},
    )
    .unwrap_err();
    assert!(matches!(err, IntegrationError::TooManySteps { steps: 5, .. }), "{err}");
}

/// A derivative that turns NaN (here once y1 = e^{-t} falls below 1/2, at t = ln 2) stops
/// BDF with an error naming it and a time past ln 2, not with NaN in the output.
#[test]
fn bdf_names_a_non_finite_derivative() {
    let kernel = TestKernel {
        rhs: |y, dy| {
            dy[0] = -1000.0 * (y[0] - y[1]);
            dy[1] = if y[1] < 0.5 { f64::NAN } else { -y[1] };
        },
        jacobian: Some(|jac: &mut [f64]| jac.copy_from_slice(&[-1000.0, 0.0, 1000.0, -1.0])),
    };
    let solver = Solver {
        method: Method::Bdf,
        ..Solver::default()
    };
    let names = ["y0".to_string(), "y1".to_string()];
    let err = integrate(
        &kernel,
        &names,
        vec![0.0, 1.0],
        &log_times(0.01, 5.0, 10),
        &solver,
        &["y0".into()],
        &|_| None,
        |_| {},
    )
    .unwrap_err();
    match err {
        IntegrationError::NonFinite { quantity, t, .. } => {
            assert_eq!(quantity, "dy1/dt");
            assert!(t > 0.6, "t = {t}");
        }
        other => panic!("{other}"),
    }
}

/// A run may take more than the 5000 steps diffsol allows a whole run by default: the
/// limit is per output interval. A harmonic oscillator over 300 periods at rtol 1e-8
/// needs far more; BDF's damping keeps the radius within a few percent of 1.
#[test]
fn bdf_runs_past_diffsols_default_step_cap() {
    let kernel = TestKernel {
        rhs: |y, dy| {
            dy[0] = y[1];
            dy[1] = -y[0];
        },
        jacobian: Some(|jac: &mut [f64]| jac.copy_from_slice(&[0.0, -1.0, 1.0, 0.0])),
    };
    let solver = Solver {
        method: Method::Bdf,
        rtol: 1e-8,
        ..Solver::default()
    };
    let traj = integrate(
        &kernel,
        &[],
        vec![1.0, 0.0],
        &[0.0, 1000.0, 2000.0],
        &solver,
        &["y0".into()],
        &|_| None,
        |_| {},
    )
    .unwrap();
    assert!(traj.stats.accepted > 5000, "{} steps", traj.stats.accepted);
    let last = traj.states.last().unwrap();
    let radius = (last[0] * last[0] + last[1] * last[1]).sqrt();
    assert!((radius - 1.0).abs() < 0.05, "radius {radius}");
}

/// BDF pays off where the explicit method has many stability-limited steps left, not where it
/// is nearly done: vanilla K = 6 (n = 171) held at h = 0.015 for t = 0..1000 switches by
/// differences; a state of 2000 entries does not for 1000 steps left, but does for 10^6.
#[test]
fn the_stiff_method_is_chosen_by_its_estimated_cost() {
    assert!(stiff_pays_off(171, false, 10.0, 0.015, 1000.0));
    assert!(stiff_pays_off(171, true, 10.0, 0.015, 1000.0));
    assert!(!stiff_pays_off(171, false, 999.9, 0.015, 1000.0));
    assert!(!stiff_pays_off(2000, false, 0.0, 1.0, 1000.0));
    assert!(stiff_pays_off(2000, false, 0.0, 1.0, 1e6));
    // An exact Jacobian is cheaper than n right-hand sides: it pays off sooner.
    let remaining = |exact: bool| {
        (1..100_000)
            .find(|s| stiff_pays_off(500, exact, 0.0, 1.0, *s as f64))
            .unwrap()
    };
    assert!(remaining(true) < remaining(false));
}

/// Near its end a stiff run is finished by the explicit method: dop853 is held at h ~ 1.6e-3
/// right after the transient, and to t = 0.3 only about 190 such steps are left, less than
/// BDF's estimated cost; the run declines the switch and stays accurate.
#[test]
fn auto_keeps_the_explicit_method_where_few_steps_are_left() {
    let traj = run_padded(Method::Auto, 0.3);
    assert_eq!(traj.stats.switched_at, None);
    assert!(traj.stats.stiffness_declined_at.is_some(), "{:?}", traj.stats);
    assert_on_the_slow_manifold_of(&traj, "auto, declined", 4000.0);
}

/// A small state without an exact Jacobian starts on BDF with differences (n right-hand sides
/// a Jacobian, no more than twice an exact one's cost): no explicit stage spent finding the
/// stiffness first.
#[test]
fn auto_starts_small_states_on_bdf_with_differences() {
    let traj = run_stiff(Method::Auto, false);
    assert_eq!(traj.stats.started_with, Method::Bdf);
    assert_eq!(traj.stats.switched_at, None);
    assert!(traj.stats.jacobians > 0);
    assert_on_the_slow_manifold(&traj, "auto on differences");
}

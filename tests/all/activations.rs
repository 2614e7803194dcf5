//! Activations written in equation files (`activation NAME(x) = EXPR`): their averages against
//! the built-in activations they restate, the errors a bad one gets, and ODE against SGD with
//! one (the simulator evaluating the same compiled g).

use crate::common::{aedyn, temp};

use ae_core::activation::{Activation, UserActivation};
use ae_core::averages::{ActivationKind, Evaluate};
use ae_core::quadrature::Smooth;
use ae_dsl::ir::Avg;

/// The declarations the tests use, appended to the vanilla equations.
const DECLARATIONS: &str = "
activation th(x) = tanh(x)
activation lin(x) = x
activation ramp(x) = (x + abs(x)) / 2
activation softplus(x) = log(1 + exp(x))
activation hardtanh(x) = (abs(x + 1) - abs(x - 1)) / 2
activation elu(x) = (x + abs(x)) / 2 + exp((x - abs(x)) / 2) - 1
activation xabs(x) = x * abs(x)
activation cube(x) = x + abs(x - 0.5)^3 / 6
activation square(x) = abs(x)^2
activation faint(x) = x + 1e-7 * x * abs(x) + x^3 / 6
activation step(x) = (1 + sign(x)) / 2
activation tanhstep(x) = tanh(x) + sign(x - 0.3) / 2
activation narrowtanh(x) = tanh(2 * x)
activation lorentz(x) = 1 / (1 + 9 * (x - 0.2)^2)
";

fn source() -> String {
    aedyn::models::shipped_source("vanilla").unwrap().to_string() + DECLARATIONS
}

/// The declared activation `name`, compiled.
pub(crate) fn user(name: &str) -> Activation {
    let source = source();
    let model = ae_dsl::compile("activations.ae", &source).expect("compiles");
    let def = model.activations.iter().find(|a| a.name == name).expect("declared");
    Activation::User(ae_jit::user_activation(def, &source).expect("a usable activation"))
}

/// Covariances (c11, c12, c13, c22, c23, c33) of three Gaussians: random factors at variances
/// up to about 7, a third variable equal to the first, a zero variance, and a unit with itself.
pub(crate) fn covariances() -> Vec<[f64; 6]> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 * 3.0 - 1.5
    };
    let mut out: Vec<[f64; 6]> = (0..12)
        .map(|_| {
            let l: [f64; 6] = std::array::from_fn(|_| uniform());
            let (r1, r2, r3) = ([l[0], 0.0, 0.0], [l[1], l[2], 0.0], [l[3], l[4], l[5]]);
            let dot = |a: [f64; 3], b: [f64; 3]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
            [
                dot(r1, r1),
                dot(r1, r2),
                dot(r1, r3),
                dot(r2, r2),
                dot(r2, r3),
                dot(r3, r3),
            ]
        })
        .collect();
    out.push([1.3, 0.4, 1.3, 0.9, 0.4, 1.3]);
    out.push([0.0, 0.0, 0.0, 1.1, 0.3, 0.8]);
    out.push([0.7; 6]);
    out
}

/// The arguments of `avg` at covariance `c` (x1, x2 for the three-argument averages).
pub(crate) fn arguments(avg: Avg, c: &[f64; 6]) -> Vec<f64> {
    match avg {
        Avg::I3 => c.to_vec(),
        _ => vec![c[0], c[1], c[3]],
    }
}

pub(crate) fn assert_close(what: String, got: &[f64], want: &[f64], tol: f64) {
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{what}: {got:?} against {want:?}"
        );
    }
}

/// `activation th(x) = tanh(x)` gives the built-in tanh's averages and gradients to 1e-10 (the
/// accuracy the quadrature is held to), against the quadrature itself rather than the series
/// both now share.
#[test]
fn a_declared_tanh_equals_the_built_in_one() {
    let th = user("th");
    for c in covariances() {
        for (name, avg) in Avg::ALL {
            let args = arguments(avg, &c);
            let want = ActivationKind::Tanh.average_by_quadrature(avg, &args);
            assert_close(format!("{name} at {c:?}"), &[th.average(avg, &args)], &[want], 1e-10);
            let want = ActivationKind::Tanh.average_grad_by_quadrature(avg, &args);
            assert_close(
                format!("{name} gradient at {c:?}"),
                &th.average_grad(avg, &args),
                &want,
                1e-10,
            );
        }
    }
}

/// Asserts that `declared` gives `builtin`'s closed-form averages and their gradients to
/// `tol` at each covariance of `at`.
fn assert_closed_forms_of(declared: Activation, builtin: ActivationKind, at: &[[f64; 6]], tol: f64) {
    for c in at {
        for (name, avg) in Avg::ALL {
            let args = arguments(avg, c);
            let want = builtin.average(avg, &args);
            assert_close(
                format!("{name} at {c:?}"),
                &[declared.average(avg, &args)],
                &[want],
                tol,
            );
            let want = builtin.average_grad(avg, &args);
            assert_close(
                format!("{name} gradient at {c:?}"),
                &declared.average_grad(avg, &args),
                &want,
                tol,
            );
        }
    }
}

/// `activation lin(x) = x` meets linear's closed forms to 1e-12: its coefficients are exact
/// (one term), so only rounding remains.
#[test]
fn a_declared_identity_equals_the_linear_closed_forms() {
    assert_closed_forms_of(user("lin"), ActivationKind::Linear, &covariances(), 1e-12);
}

/// `(x + abs(x)) / 2` is recognised as a ramp (positively homogeneous), so its averages and
/// their gradients are ReLU's closed forms, to rounding (1e-12). (Not where x1 has variance 0
/// and sits on the kink: there the closed forms take g'(0) = 1/2, a convention.) The quadrature
/// of the same file, with the kink as a panel edge, meets them to 1e-9.
#[test]
fn a_declared_ramp_equals_the_relu_closed_forms() {
    let ramp = user("ramp");
    assert!(ramp.has_exact_gradients());
    let at: Vec<[f64; 6]> = covariances().into_iter().filter(|c| c[0] > 0.0).collect();
    assert_closed_forms_of(ramp, ActivationKind::Relu, &at, 1e-12);
    for c in &at {
        for (name, avg) in Avg::ALL {
            let args = arguments(avg, c);
            let want = ActivationKind::Relu.average(avg, &args);
            let quadrature = ramp.average_by_quadrature(avg, &args);
            assert_close(format!("{name} by quadrature at {c:?}"), &[quadrature], &[want], 1e-9);
        }
    }
}

/// A hard tanh is recognised as piecewise linear: its averages are closed forms (bivariate
/// normal probabilities) with exact gradients, and the quadrature of the same file, with both
/// kinks as panel edges, meets them to 1e-9 (the quadrature's 1e-10 and rounding) at every
/// covariance, the degenerate ones and a zero variance (which the closed forms leave to it)
/// included.
#[test]
fn a_declared_hard_tanh_has_closed_forms_that_the_quadrature_meets() {
    let hard = user("hardtanh");
    assert!(hard.has_exact_gradients());
    assert_meets_the_quadrature(hard, 1e-9);
}

/// Asserts that every average of `g` meets its quadrature to `tol` at every covariance.
fn assert_meets_the_quadrature(g: Activation, tol: f64) {
    for c in covariances() {
        for (name, avg) in Avg::ALL {
            let args = arguments(avg, &c);
            let quadrature = g.average_by_quadrature(avg, &args);
            assert_close(
                format!("{g} {name} at {c:?}"),
                &[g.average(avg, &args)],
                &[quadrature],
                tol,
            );
        }
    }
}

/// A kink that is not a ramp's, a hard tanh, stays finite where a unit meets itself (all six
/// covariance entries equal). There the rule once had a panel edge a rounding error from the
/// kink, and evaluated g' = NaN on it. The average reduces to one dimension:
/// `I3 = E[g'(x) x g(x)] = E[x² 1{|x| < 1}]`, `x ~ N(0, v)`, which the midpoint rule on 2e5
/// panels gives to about 1e-11 (its error is h²/24 times the integrand's curvature), so the
/// quadrature's 1e-10 sets the tolerance. A run with it then ends with finite numbers.
#[test]
fn a_hard_tanh_is_finite_where_a_unit_meets_itself() {
    let hard = user("hardtanh");
    for v in [0.01, 0.1563155, 1.0, 4.0] {
        let n = 200_000;
        let step = 2.0 / n as f64;
        let integral: f64 = (0..n)
            .map(|i| -1.0 + (i as f64 + 0.5) * step)
            .map(|x| x * x * (-x * x / (2.0 * v)).exp())
            .sum();
        let want = integral * step / (2.0 * std::f64::consts::PI * v).sqrt();
        let got = hard.average(Avg::I3, &[v; 6]);
        assert!(
            (got - want).abs() <= 1e-10 * want.max(1.0),
            "v = {v}: {got} against {want}"
        );
    }
    let path = temp("hardtanh.ae");
    std::fs::write(&path, source()).unwrap();
    let (code, out, err) = aedyn(&[
        "ode",
        "--equations",
        path.to_str().unwrap(),
        "--activation",
        "hardtanh",
        "--k",
        "2",
        "--spikes",
        "4,2",
        "--t-end",
        "1",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.to_lowercase().contains("nan"));
}

/// `abs` differentiates to `sign`, 0 at the kink: a preactivation exactly at a kink (a unit
/// whose encoder row is zero has one) gets a finite slope, where `a / |a|` gave 0/0 = NaN.
/// Exact values: each is a sum of halves of signs.
#[test]
fn a_kink_has_a_finite_slope_at_its_own_point() {
    let (ramp, hard) = (user("ramp"), user("hardtanh"));
    assert_eq!(ramp.dg(0.0), 0.5);
    assert_eq!(ramp.dg(-0.0), 0.5);
    assert_eq!((ramp.dg(2.0), ramp.dg(-2.0)), (1.0, 0.0));
    // (sign(x + 1) - sign(x - 1)) / 2 at its two kinks and between them.
    assert_eq!((hard.dg(1.0), hard.dg(-1.0), hard.dg(0.0)), (0.5, 0.5, 1.0));
}

/// Each bad declaration is refused with its file, line and column and a one-line reason, exit
/// code 2, before anything runs.
#[test]
fn bad_activations_are_refused_at_their_line() {
    let cases = [
        ("activation big(x) = exp(x^2)", "big", "is not finite at x = "),
        ("activation two(x, y) = x", "two", "one argument"),
        ("activation unknown(x) = x * y", "unknown", "`y`"),
        ("activation tanh(x) = x", "tanh", "built-in"),
        ("activation odd(x) = sigmoid(x)", "odd", "sigmoid"),
    ];
    let base = aedyn::models::shipped_source("vanilla").unwrap();
    let line = base.lines().count() + 2;
    for (i, (declaration, name, message)) in cases.iter().enumerate() {
        let path = temp(&format!("bad-activation-{i}.ae"));
        std::fs::write(&path, format!("{base}\n{declaration}\n")).unwrap();
        let path = path.to_str().unwrap();
        let out = temp(&format!("bad-activation-{i}.csv"));
        let (code, _, stderr) = aedyn(&[
            "ode",
            "--equations",
            path,
            "--activation",
            name,
            "--t-end",
            "1",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{declaration}: {stderr}");
        assert!(stderr.contains(&format!("{path}:{line}:")), "{declaration}: {stderr}");
        assert!(stderr.contains(message), "{declaration}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{declaration}: {stderr}");
        assert!(!out.exists(), "{declaration}: an output was written");
    }
}

/// ODE against SGD with softplus, D = 1000, K = 2, four replicas; the simulator evaluates the
/// same compiled g (no string matching on its name). The median relative deviation over the
/// grid stays within 3%, the bound of the built-in activations: finite-D corrections are
/// O(1/sqrt(D)) ~ 3% per run, which four replicas average down (measured: 0.6%; with erf on the
/// SGD side instead, 135%).
#[test]
fn softplus_ode_tracks_sgd() {
    use ae_runtime::data::Dim;
    use ae_runtime::ode::log_times;
    use ae_runtime::sgd::{Rule, SgdConfig};
    use aedyn::compare::CompareJob;
    let path = temp("softplus.ae");
    std::fs::write(&path, source()).unwrap();
    let mut ode = crate::common::figure2_job(
        path.to_str().unwrap(),
        "softplus",
        Dim::Finite(1000),
        0.0,
        log_times(0.05, 100.0, 30),
    );
    ode.k = 2;
    ode.source = aedyn::source::DataSource::spiked(Dim::Finite(1000), &[9.0, 3.0], 1.0, 3);
    let activation = ode.resolved_activation().unwrap();
    assert_eq!(activation.name(), "softplus");
    let sgd = SgdConfig {
        activation,
        rule: Rule::Vanilla,
        rates: ae_runtime::sgd::Rates { lr: 1.0, kappa: 0.0 },
        tied: false,
        train_bias: false,
        bias_init: 0.0,
        scaling: Default::default(),
    };
    let run = CompareJob {
        seeds: 4,
        ..CompareJob::new(ode, sgd)
    }
    .run()
    .unwrap();
    let deviations = crate::common::sorted_eg_deviations(&run);
    let median = deviations[deviations.len() / 2];
    assert!(median <= 0.03, "median deviation {median}");
}

/// A declared activation through the compiled kernels, unrolled (K = 3) and K-generic (K = 5):
/// against the interpreter with the same activation (the same averages, summed in other
/// orders: 1e-12 of the output's scale) and against the built-in tanh (the series against each
/// other's rounding: 1e-10).
#[test]
fn declared_activations_run_compiled_and_interpreted_alike() {
    use ae_core::kernel::Kernel;
    use ae_jit::{JitKernel, Shape};
    use std::sync::Arc;
    let source = source();
    let model = Arc::new(ae_dsl::compile("activations.ae", &source).unwrap());
    let scaled = |a: &[f64], b: &[f64]| {
        let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        a.iter().zip(b).map(|(x, y)| (x - y).abs() / scale).fold(0.0, f64::max)
    };
    for (shape, k) in [(Shape::Unrolled, 3), (Shape::Generic, 5)] {
        let (rho, inputs) = crate::common::random_state(&model, k, 24, 3, 5);
        let params = crate::common::generic_params(&model);
        let kernel = |activation: Activation| {
            let mut kernel = JitKernel::new(model.clone(), &source, k, activation, shape).unwrap();
            kernel.set_rho(rho.clone());
            kernel.params_mut().copy_from_slice(&params);
            kernel
        };
        let mut interp = ae_runtime::interp::Interpreter::new(model.clone(), &source, k, user("th"));
        interp.set_rho(rho.clone());
        interp.params_mut().copy_from_slice(&params);
        let y = interp.init(&inputs);
        let rhs = |kernel: &dyn Kernel| {
            let mut out = vec![0.0; y.len()];
            kernel.rhs(&y, &mut out);
            out
        };
        let (declared, builtin) = (rhs(&kernel(user("th"))), rhs(&kernel(ActivationKind::Tanh.into())));
        let d = scaled(&declared, &rhs(&interp));
        assert!(d <= 1e-12, "{shape:?} K = {k}: against the interpreter {d:e}");
        let d = scaled(&declared, &builtin);
        assert!(d <= 1e-10, "{shape:?} K = {k}: against the built-in tanh {d:e}");
    }
}

/// Which derivative jumps at a kink is measured from the compiled derivatives: g' (ReLU, hard
/// tanh), g'' (ELU, x|x|, and a jump of 4e-7 where g''' is 1), g''' (a shifted |x|^3), or
/// none (|x|^2, whose kink is only a spelling); g itself jumps in a step. A step's
/// `J2 = E[x1 g(x2)] = C12 / sqrt(2 pi C22)` then comes from g's values, not from Stein's
/// `C12 E[g']`, whose g' is 0 but for the Dirac part no rule sees (1e-10: the quadrature's). Gradients are exact (Price's theorem takes g'' and g''' from their values) only
/// where g'' is continuous, or where closed forms stand in (the piecewise-linear ones).
#[test]
fn the_derivative_that_jumps_at_a_kink_is_found() {
    for (name, continuous, exact) in [
        ("ramp", 1, true),
        ("hardtanh", 1, true),
        ("elu", 2, false),
        ("xabs", 2, false),
        ("faint", 2, false),
        ("cube", 3, true),
        ("square", 4, true),
        ("th", 4, true),
        ("step", 0, false),
    ] {
        let Activation::User(u) = user(name) else {
            unreachable!("declared")
        };
        assert_eq!(u.continuous_derivatives(), continuous, "{name}");
        assert_eq!(u.has_exact_gradients(), exact, "{name}");
    }
    let step = user("step");
    for (c11, c12, c22) in [(1.0, 0.3, 1.0), (2.0, -0.7, 0.5), (0.4, 0.1, 3.0)] {
        let want = c12 / (2.0 * std::f64::consts::PI * c22).sqrt();
        assert_close(
            format!("step J2 at {c11}, {c12}, {c22}"),
            &[step.average(Avg::J2, &[c11, c12, c22])],
            &[want],
            1e-10,
        );
    }
}

/// Where g itself jumps, I2 splits into g less its jumps (continuous: its series converge),
/// one-variable averages of that against the other unit passing a jump, and orthant
/// probabilities of two jumps. A step is only its jump: I2 = P(x1 > 0, x2 > 0) = 1/4 +
/// asin(rho) / (2 pi), to the orthant probabilities' 1e-15 (1e-12 here), and 1/2 exactly for
/// one unit seen twice, where the last bit of a rounded correlation of 1 would move it by 2e-9
/// (noise that made a differenced Jacobian useless). Jumps between curved
/// pieces meet the two-variable quadrature to the 1e-10 every average is held to, at strong
/// correlations too (0.999, where no series of g itself converges) and at a degenerate pair.
#[test]
fn where_g_jumps_i2_splits_off_its_jumps() {
    let step = user("step");
    for (c11, c12, c22) in [(1.0f64, 0.3, 1.0), (2.0, -1.9, 2.0), (0.4, 0.1, 3.0), (9.0, 8.99, 9.0)] {
        let rho = c12 / (c11 * c22).sqrt();
        let want = 0.25 + rho.asin() / (2.0 * std::f64::consts::PI);
        assert_close(
            format!("step I2 at {c11}, {c12}, {c22}"),
            &[step.average(Avg::I2, &[c11, c12, c22])],
            &[want],
            1e-12,
        );
    }
    // c / (sqrt(c) sqrt(c)) rounds below 1 for this variance (one met in a run).
    let c = 0.09946293321987723;
    assert_eq!(step.average(Avg::I2, &[c, c, c]), 0.5);
    let Activation::User(jumpy) = user("tanhstep") else {
        unreachable!("declared")
    };
    let covariances = [
        [1.0, 0.3, 1.0],
        [2.0, -1.9, 2.0],
        [4.0, 3.996, 4.0],
        [0.4, 0.1, 3.0],
        [3.0, -2.0, 1.5],
        [1.0, 1.0, 1.0],
    ];
    meets_the_quadrature_at(jumpy, "tanh + step I2", Avg::I2, &covariances);
    // J2 = c12 E[g'(x2)] with g''s Dirac parts at the jumps; I21 and I22 hold the pointwise g'.
    meets_the_quadrature_at(jumpy, "tanh + step J2", Avg::J2, &covariances);
    meets_the_quadrature_at(jumpy, "tanh + step I21", Avg::I21, &covariances);
    meets_the_quadrature_at(jumpy, "tanh + step I22", Avg::I22, &covariances);
}

/// `g`'s average `avg` against the two-variable quadrature at each covariance, to the 1e-10
/// every average is held to.
fn meets_the_quadrature_at<const N: usize>(g: &UserActivation, what: &str, avg: Avg, covariances: &[[f64; N]]) {
    for c in covariances {
        assert_close(
            format!("{what} at {c:?}"),
            &[g.average(avg, c)],
            &[g.average_by_quadrature(avg, c)],
            1e-10,
        );
    }
}

/// I3 splits the same way: with g' the pointwise derivative (the simulator's), it is I3 of g less
/// its jumps plus, for each jump at m, E[h'(x1) x2 1{x3 > m}], a one-variable average of h'
/// against x2's conditional mean times x3's probability of passing m and x2's conditional
/// covariance with x3 times x3's density at m. It meets the two-variable quadrature to the
/// 1e-10 every average is held to: at moderate and strong correlations of x1 and x3 (0.999,
/// where no series of g itself converges), one unit seen twice (x3 = x1, and x2 = x1), and
/// negative ones.
#[test]
fn where_g_jumps_i3_splits_off_its_jumps_too() {
    let Activation::User(jumpy) = user("tanhstep") else {
        unreachable!("declared")
    };
    // x2 = 0.4 x1 + 0.3 x3 + independent noise of variance 0.25, for each (c11, c13, c33).
    let with_x2 = |c11: f64, c13: f64, c33: f64| {
        let (c12, c23) = (0.4 * c11 + 0.3 * c13, 0.4 * c13 + 0.3 * c33);
        [c11, c12, c13, 0.16 * c11 + 0.09 * c33 + 0.24 * c13 + 0.25, c23, c33]
    };
    let covariances = [
        with_x2(1.0, 0.5, 0.9),
        with_x2(4.0, 3.996, 4.0),
        with_x2(2.0, -1.9, 2.0),
        with_x2(0.4, 0.1, 3.0),
        with_x2(1.0, 1.0, 1.0),
        [1.5, 1.5, 0.6, 1.5, 0.6, 0.8],
    ];
    meets_the_quadrature_at(jumpy, "tanh + step I3", Avg::I3, &covariances);
}

/// Kinks between curved pieces: where g' is continuous, Stein's lemma gives I3 as series in
/// g'' and g' (and, where g'' is continuous too, I21, I22 and every gradient). Those series
/// and the two-variable quadrature, with the kink as a panel edge, meet to 1e-9 (each holds
/// 1e-10; the tests of the piecewise-linear forms use the same bound) in every average at
/// every covariance. Where g'' is continuous the gradients meet central differences of the
/// averages to 1e-6 (steps of 1e-4: a truncation error of about 1e-8 and the averages' 1e-12
/// over the step). Where g'' jumps (ELU), the quadrature's gradient misses g''''s Dirac part,
/// which is why such an activation's Jacobians are differenced.
#[test]
fn kinks_between_curved_pieces_take_the_series_where_the_derivatives_allow() {
    for name in ["elu", "xabs", "cube"] {
        assert_meets_the_quadrature(user(name), 1e-9);
    }
    let cube = user("cube");
    let differences = |g: Activation, avg: Avg, args: &[f64]| -> Vec<f64> {
        let h = 1e-4;
        (0..args.len())
            .map(|i| {
                let at = |d: f64| {
                    let mut a = args.to_vec();
                    a[i] += d;
                    g.average(avg, &a)
                };
                (at(h) - at(-h)) / (2.0 * h)
            })
            .collect()
    };
    // Covariances whose variances are well above the step and whose correlations stay off
    // +-1, so that every step keeps them valid.
    let inner: Vec<[f64; 6]> = covariances()
        .into_iter()
        .filter(|c| {
            let corr = |a: f64, b: f64, ab: f64| ab.abs() / (a * b).sqrt();
            c[0].min(c[3]).min(c[5]) > 0.05
                && corr(c[0], c[3], c[1])
                    .max(corr(c[0], c[5], c[2]))
                    .max(corr(c[3], c[5], c[4]))
                    < 0.99
        })
        .collect();
    assert!(inner.len() >= 6, "{} covariances", inner.len());
    for c in &inner {
        for (avg_name, avg) in Avg::ALL {
            let args = arguments(avg, c);
            let gradient = cube.average_grad(avg, &args);
            let quadrature = cube.average_grad_by_quadrature(avg, &args);
            assert_close(
                format!("cube {avg_name} gradient at {c:?}"),
                &gradient,
                &quadrature,
                1e-9,
            );
            let differenced = differences(cube, avg, &args);
            assert_close(
                format!("cube {avg_name} differences at {c:?}"),
                &gradient,
                &differenced,
                1e-6,
            );
        }
    }
    let elu = user("elu");
    let missed = inner.iter().any(|c| {
        let quadrature = elu.average_grad_by_quadrature(Avg::I3, c);
        let differenced = differences(elu, Avg::I3, c);
        (quadrature[0] - differenced[0]).abs() > 1e-4 * differenced[0].abs().max(1.0)
    });
    assert!(missed, "ELU's I3 gradient by values should miss the Dirac part of g'''");
}

#[test]
fn homogeneity_is_found_in_any_spelling() {
    // Whether g(c x) = c g(x) decides whether compare writes the scale-free columns and warns
    // of the finite-D drift (docs/theory.md section 10); a user's ramp must count like ReLU.
    for (activation, homogeneous) in [
        (Activation::Builtin(ActivationKind::Relu), true),
        (Activation::Builtin(ActivationKind::Linear), true),
        (Activation::Builtin(ActivationKind::Erf), false),
        (Activation::Builtin(ActivationKind::Tanh), false),
        (user("ramp"), true),
        (user("lin"), true),
        (user("softplus"), false),
        (user("th"), false),
    ] {
        assert_eq!(activation.is_positively_homogeneous(), homogeneous, "{activation}");
    }
}

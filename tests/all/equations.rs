//! The shipped equation files against each other and against their own literal forms.

use crate::common;

use ae_core::kernel::Backend;

use std::sync::Arc;

use ae_core::averages::ActivationKind;
use ae_core::kernel::Kernel;
use ae_runtime::data::Dim;
use ae_runtime::init;
use ae_runtime::ode::Solver;
use aedyn::source::DataSource;
use aedyn::{run::OdeJob, source::InitChoice};
use common::*;

fn job(equations: &str, k: usize, d: usize, spikes: &[f64], times: Vec<f64>) -> OdeJob {
    let source = DataSource::spiked(Dim::Finite(d), spikes, 1.0, 1);
    OdeJob {
        init: InitChoice::Random { seed: 1, std: 0.1 },
        times,
        ..OdeJob::new(equations, k, ActivationKind::Erf, source)
    }
}

#[test]
fn ratio_rewrite_is_exact_off_the_aligned_manifold() {
    // The rewrite replaces [I21(..) + I22(..)]/S by an algebraically identical form; on generic
    // states (S well away from 0) both evaluate to rounding. The tolerance 1e-9 relative covers
    // the conditioning of the literal form's division by S (S/Q T is O(0.1) or more here).
    // Every shipped file that has the singular ratio (the reduced equations have none).
    let mut rewritten = 0;
    for name in aedyn::models::shipped_equations() {
        let (model, src) = shipped(name);
        let literal = Arc::new(ae_dsl::compile_literal(&model.path, src).unwrap());
        if model.ratio_rewrites == 0 {
            continue;
        }
        rewritten += 1;
        assert_eq!(literal.ratio_rewrites, 0);
        for act in [ActivationKind::Erf, ActivationKind::Linear, ActivationKind::Relu] {
            for k in 1..=3 {
                let (rho, inputs) = random_state(&model, k, 20, 2, 7 + k as u64);
                let a = interpreter(&model, src, k, act, &rho);
                let b = interpreter(&literal, src, k, act, &rho);
                let y = a.init(&inputs);
                let (mut da, mut db) = (vec![0.0; y.len()], vec![0.0; y.len()]);
                a.rhs(&y, &mut da);
                b.rhs(&y, &mut db);
                let scale = db.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                for (i, (x, z)) in da.iter().zip(&db).enumerate() {
                    assert!(
                        (x - z).abs() <= 1e-9 * scale,
                        "{name} {} K={k} entry {i}: {x} vs {z}",
                        act.name()
                    );
                }
            }
        }
    }
    // The spike+bulk, full-spectrum, density and truncated files all divide by S.
    assert!(
        rewritten >= 4,
        "only {rewritten} shipped files have the ratio rewritten"
    );
}

#[test]
fn rewritten_equations_are_finite_on_the_aligned_manifold() {
    // w_k = a e_k, v_k = b sqrt(D) e_k gives S_k = Q_kk T_kk - R_kk^2 = 0 exactly: the literal
    // 1/S form is 0/0 there, the rewritten form is finite.
    let (model, src) = shipped("vanilla");
    let literal = Arc::new(ae_dsl::compile_literal(&model.path, src).unwrap());
    let rho = vec![9.001, 3.001, 1.001];
    let inputs = init::informed(3, 3, 0.8, 1.3);
    let a = interpreter(&model, src, 3, ActivationKind::Erf, &rho);
    let b = interpreter(&literal, src, 3, ActivationKind::Erf, &rho);
    let y = a.init(&inputs);
    let (mut da, mut db) = (vec![0.0; y.len()], vec![0.0; y.len()]);
    a.rhs(&y, &mut da);
    b.rhs(&y, &mut db);
    assert!(da.iter().all(|v| v.is_finite()));
    assert!(db.iter().any(|v| v.is_nan()), "the literal form should hit 0/0 here");
}

#[test]
fn density_equations_agree_with_vector_form_up_to_t_1() {
    // docs/theory.md section 6: the literal density equations are the lift of the vector flow, exact while they stay
    // on the rank-one manifold; their rank-2 errors grow from rounding at rate ~3.3 per unit
    // time, so up to t = 1 both forms integrated at rtol 1e-10 must agree to 1e-6 (the bound the
    // issue sets; rounding amplified by e^3.3 ~ 30 stays far below it).
    let times: Vec<f64> = (0..=10).map(|i| i as f64 / 10.0).collect();
    let v = job("vanilla", 3, 1000, &[9.0, 3.0, 1.0], times.clone())
        .run(|_| {})
        .unwrap();
    let d = job("density", 3, 1000, &[9.0, 3.0, 1.0], times).run(|_| {}).unwrap();
    assert_eq!(v.observable_names, d.observable_names);
    for (ov, od) in v.trajectory.observables.iter().zip(&d.trajectory.observables) {
        for (name, (a, b)) in v.observable_names.iter().zip(ov.iter().zip(od)) {
            assert!(
                (a - b).abs() <= 1e-6 * a.abs().max(1e-3),
                "{name}: vanilla {a}, density {b}"
            );
        }
    }
}

/// `job` with dop853 at rtol 1e-10, atol 1e-12 (tighter than the defaults), for comparisons
/// whose tolerance is integrator tolerance.
fn tight(mut j: OdeJob) -> OdeJob {
    j.solver = Solver {
        method: ae_runtime::ode::Method::Dop853,
        rtol: 1e-10,
        atol: 1e-12,
        ..Solver::default()
    };
    j
}

#[test]
fn full_spectrum_equals_spike_plus_lumped_bulk() {
    // docs/theory.md section 6: the exactly lumped bulk makes spike+bulk equal to the full spectrum (measured 5e-8).
    // Both runs start from the same weights (the full-spectrum run sees the bulk through an
    // orthonormal completion of the spike directions); tolerance 1e-7 relative in eg is
    // integrator tolerance (rtol 1e-10) accumulated over 20 time units of a contracting flow.
    let times = ae_runtime::ode::log_times(0.1, 20.0, 12);
    let v = tight(job("vanilla", 2, 60, &[5.0, 2.0], times.clone()))
        .run(|_| {})
        .unwrap();
    let f = tight(job("full_spectrum", 2, 60, &[5.0, 2.0], times))
        .run(|_| {})
        .unwrap();
    let idx = |run: &aedyn::run::OdeRun, name: &str| run.observable_names.iter().position(|n| n == name).unwrap();
    let (ev, ef) = (idx(&v, "eg"), idx(&f, "eg"));
    for (ov, of) in v.trajectory.observables.iter().zip(&f.trajectory.observables) {
        assert!(
            (ov[ev] - of[ef]).abs() <= 1e-7 * ov[ev],
            "eg: vanilla {}, full spectrum {}",
            ov[ev],
            of[ef]
        );
    }
    // In the full-spectrum form T0 is also the sum over modes of the decoder outer products.
    for o in &f.trajectory.observables {
        for (a, b) in ["0,0", "0,1", "1,1"]
            .iter()
            .map(|ij| (idx(&f, &format!("T0[{ij}]")), idx(&f, &format!("T0_modes[{ij}]"))))
        {
            assert!(
                (o[a] - o[b]).abs() <= 1e-8 * o[a].abs().max(1e-6),
                "T0 {} vs sum over modes {}",
                o[a],
                o[b]
            );
        }
    }
}

#[test]
fn generated_and_interpreted_runs_are_identical() {
    // Same arithmetic in the same order: the whole integrated trajectory agrees bit for bit.
    // (An explicit method on both sides: `auto` would give the generated kernel's exact
    // Jacobian to Rodas4 and the interpreter finite differences.)
    let times = ae_runtime::ode::log_times(0.1, 10.0, 5);
    let g = tight(job("vanilla", 3, 1000, &[9.0, 3.0, 1.0], times.clone()))
        .run(|_| {})
        .unwrap();
    let mut j = tight(job("vanilla", 3, 1000, &[9.0, 3.0, 1.0], times));
    j.backend = Some(Backend::Interpreter);
    let i = j.run(|_| {}).unwrap();
    assert_eq!((g.backend, i.backend), (Backend::Generated, Backend::Interpreter));
    assert_eq!(g.trajectory.observables, i.trajectory.observables);
}

#[test]
fn stiff_and_explicit_integrators_agree() {
    // Rodas4 (rtol 1e-8) against Dop853 (rtol 1e-10) over the stiffening stretch t = 0..300 of
    // the vanilla equations: both control the local error, so eg must agree to the looser
    // tolerance times the O(1-10) growth of errors along a contracting flow; 1e-6 relative.
    let times = ae_runtime::ode::log_times(0.1, 300.0, 8);
    let explicit = tight(job("vanilla", 3, 1000, &[9.0, 3.0, 1.0], times.clone()))
        .run(|_| {})
        .unwrap();
    let mut j = job("vanilla", 3, 1000, &[9.0, 3.0, 1.0], times);
    j.solver = Solver {
        method: ae_runtime::ode::Method::Rodas4,
        rtol: 1e-8,
        atol: 1e-10,
        ..Solver::default()
    };
    let stiff = j.run(|_| {}).unwrap();
    for (a, b) in explicit
        .trajectory
        .observables
        .iter()
        .zip(&stiff.trajectory.observables)
    {
        assert!(
            (a[0] - b[0]).abs() <= 1e-6 * a[0],
            "eg: dop853 {}, rodas4 {}",
            a[0],
            b[0]
        );
    }
    // The explicit method is stability-limited here (measured: 8441 steps against 1024).
    assert!(
        stiff.trajectory.stats.accepted * 4 < explicit.trajectory.stats.accepted,
        "steps: dop853 {} rodas4 {}",
        explicit.trajectory.stats.accepted,
        stiff.trajectory.stats.accepted
    );
}

/// A compare run of the figure-2 configuration at D = 60, interpreted, for `equations`.
fn small_compare(equations: &str, interpret: bool) -> aedyn::compare::CompareRun {
    use ae_runtime::sgd::SgdConfig;
    let ode = OdeJob {
        backend: interpret.then_some(Backend::Interpreter),
        ..figure2_job(
            equations,
            ActivationKind::Erf,
            Dim::Finite(60),
            0.0,
            ae_runtime::ode::log_times(0.1, 20.0, 5),
        )
    };
    aedyn::compare::CompareJob::new(ode, SgdConfig::vanilla(ActivationKind::Erf))
        .run()
        .unwrap()
}

#[test]
fn spike_columns_follow_the_states_init_lines_not_their_names() {
    // Rust finds the per-mode overlaps through `init omega0[k; tau]`, so a file that calls them
    // something else gives the same spike columns. Both runs are interpreted: the same
    // arithmetic in the same order, so the numbers are equal, not merely close.
    let renamed = common::shipped("vanilla")
        .1
        .replace("omega[", "enc_overlap[")
        .replace("varpi[", "dec_overlap[")
        .replace("equations vanilla", "equations renamed");
    assert!(!renamed.contains("omega[") && renamed.contains("omega0["));
    let path = temp("renamed_vanilla.ae");
    std::fs::write(&path, renamed).unwrap();
    let shipped = small_compare("vanilla", true);
    let own = small_compare(path.to_str().unwrap(), true);
    let (a, b) = (shipped.ode_spikes.unwrap(), own.ode_spikes.unwrap());
    assert_eq!(a, b);
    assert!(a.last().unwrap()[0] > 0.5, "the first spike is learnt: {:?}", a.last());
}

#[test]
fn full_spectrum_on_the_spiked_model_tracks_the_spikes_like_vanilla() {
    // At finite D the full-spectrum file keeps every bulk mode explicit, vanilla lumps them
    // exactly (they obey the same linear equations): the same dynamics, so the ODE's spike
    // reconstructions agree up to integration error (rtol 1e-10 each, amplified over ~1e3
    // steps: 1e-6 absolute on fractions in [0, 1]). This once read the full-spectrum state
    // with the spike-only layout and gave negative fractions.
    let vanilla = small_compare("vanilla", false).ode_spikes.unwrap();
    let full = small_compare("full_spectrum", false).ode_spikes.unwrap();
    for (v, f) in vanilla.iter().zip(&full) {
        for (x, y) in v.iter().zip(f) {
            assert!((x - y).abs() <= 1e-6, "vanilla {v:?}, full spectrum {f:?}");
        }
    }
}

#[test]
fn reduced_vs_full_checks_the_shape_of_both_files_before_running() {
    use aedyn::reduced::ReducedJob;
    let (_, reduced) = common::shipped("reduced");
    let no_b = reduced
        .replace("b[;", "c[;")
        .replace("equations reduced", "equations no_b");
    let path = temp("reduced_without_b.ae");
    std::fs::write(&path, no_b).unwrap();
    let p = path.to_str().unwrap();
    let full = figure2_job(
        "vanilla",
        ActivationKind::Erf,
        Dim::Finite(1000),
        0.0,
        ae_runtime::ode::log_times(0.01, 1e4, 50),
    );
    let job = ReducedJob {
        full,
        reduced_equations: p.to_string(),
        t_reduced_end: 1e5,
        points: 10,
        align_tol: 1e-3,
    };
    let mut ran = false;
    let err = job.run(|_, _| ran = true).err().expect("an error");
    assert_eq!(
        err.to_string(),
        format!("{p}: reduced-vs-full needs a per-mode state `state b[; tau]` (the aligned decoder scale per spike)")
    );
    assert!(!ran, "nothing is integrated before the files are checked");
}

#[test]
fn a_carrier_is_a_state_whose_init_passes_an_input_through_unchanged() {
    use ae_dsl::ir::Input;
    let (vanilla, _) = common::shipped("vanilla");
    let name = |i: Option<usize>| i.map(|i| vanilla.states[i].name.clone());
    assert_eq!(name(vanilla.carrier(Input::Omega0)), Some("omega".into()));
    assert_eq!(name(vanilla.carrier(Input::Varpi0)), Some("varpi".into()));
    assert_eq!(name(vanilla.carrier(Input::Qb0)), Some("Qb".into()));
    assert_eq!(name(vanilla.carrier(Input::T00)), Some("T0".into()));
    // reduced.ae's a[; tau] is a sum over units of omega0, density.ae's q is a product: neither
    // holds omega0 itself.
    for file in ["reduced", "density"] {
        let (model, _) = common::shipped(file);
        assert_eq!(model.carrier(Input::Omega0), None, "{file}");
    }
}

/// An equation file whose right-hand side is one flat sum of `n` terms.
fn flat_sum_file(n: usize, name: &str) -> std::path::PathBuf {
    let terms = vec!["x[k]"; n].join(" + ");
    let path = common::temp(name);
    std::fs::write(
        &path,
        format!("equations flat\nhidden k\nparam lr = 1\nstate x[k] init T00[k, k]\nd/dt x[k] = -lr * ({terms}) / {n}\nobserve eg = x[0]\n"),
    )
    .unwrap();
    path
}

/// Long flat chains run (a sum of 20 000 terms overflowed the stack: every pass recurses along
/// the chain); beyond the parser's limit a chain is a located error, exit code 2.
#[test]
fn long_flat_sums_run_and_overlong_ones_are_located_errors() {
    let file = flat_sum_file(20_000, "flat-20000.ae");
    let (_, rows) = common::ode_csv(
        &[
            "--equations",
            file.to_str().unwrap(),
            "--k",
            "1",
            "--t-end",
            "0.01",
            "--points",
            "1",
        ],
        "flat-20000.csv",
    );
    // dx/dt = -x exactly: x(0.01) = x(0) e^-0.01 (dop853 at the default rtol 1e-7: its global
    // error is a few times that; 1e-6 leaves room).
    let (first, last) = (rows[0][1], rows[rows.len() - 1][1]);
    assert!(
        (last - first * (-0.01f64).exp()).abs() <= 1e-6 * first.abs(),
        "{first} -> {last}"
    );

    let file = flat_sum_file(ae_dsl::parser::MAX_CHAIN + 1, "flat-over.ae");
    let out = common::temp("flat-over.csv");
    let (code, _, stderr) = common::aedyn(&[
        "ode",
        "--equations",
        file.to_str().unwrap(),
        "--k",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&format!("{}:5:", file.display())), "{stderr}");
    assert!(stderr.contains("more than 50000 operands"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1);
    assert!(!out.exists());
}

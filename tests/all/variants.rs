//! Variants of SGD against their equation files (docs/theory.md sections 3 and 6, claims 6 and 3-5).

use crate::common;

use ae_core::averages::ActivationKind;
use ae_runtime::data::Dim;
use ae_runtime::ode::log_times;
use ae_runtime::sgd::{Rule, SgdConfig};
use aedyn::compare::CompareJob;

#[test]
fn truncated_ode_tracks_truncated_sgd() {
    // equations/truncated.ae against the truncated SGD rule, in the figure-2 configuration
    // (erf, K = M = 3, spikes 9,3,1, D = 1000, 4 replicas, t from 0.05 to 100): the same finite-D
    // argument and bounds as for vanilla (median 2.5%, worst 15%); measured 0.8% and 4.7%.
    let ode = common::figure2_job(
        "truncated",
        ActivationKind::Erf,
        Dim::Finite(1000),
        0.0,
        log_times(0.05, 100.0, 30),
    );
    let sgd = SgdConfig {
        rule: Rule::Truncated,
        ..SgdConfig::vanilla(ActivationKind::Erf)
    };
    let run = CompareJob {
        seeds: 4,
        ..CompareJob::new(ode, sgd)
    }
    .run()
    .unwrap();
    let dev = crate::common::sorted_eg_deviations(&run);
    let (median, worst) = (dev[dev.len() / 2], dev[dev.len() - 1]);
    assert!(median <= 0.025 && worst <= 0.15, "median {median}, worst {worst}");
}

#[test]
fn weight_decay_in_the_strict_limit_shrinks_the_bulk_exactly() {
    // At D = inf the bulk eigenvalue sigma^2/D vanishes, so the only force on the lumped bulk
    // Qb is the decay: dQb/dt = -2 kappa Qb, Qb(t) = Qb(0) exp(-2 kappa t) whatever the spikes
    // do. Bound: the integrator's relative tolerance 1e-10 times a factor 100 for the global
    // error accumulated over the run (atol 1e-16 stays far below Qb, which falls to 1e-5).
    let kappa = 0.1;
    let times = log_times(0.01, 50.0, 20);
    let mut job = common::figure2_job("vanilla", ActivationKind::Erf, Dim::Infinite, kappa, times);
    job.solver.rtol = 1e-10;
    job.solver.atol = 1e-16;
    let run = job.run(|_| {}).unwrap();
    let tr = &run.trajectory;
    for k in 0..3 {
        let i = run
            .state_names
            .iter()
            .position(|n| *n == format!("Qb[{k},{k}]"))
            .unwrap();
        let q0 = tr.states[0][i];
        assert!(q0 > 0.0);
        for (y, t) in tr.states.iter().zip(&tr.times) {
            let want = q0 * (-2.0 * kappa * t).exp();
            assert!(
                (y[i] - want).abs() <= 1e-8 * q0,
                "Qb[{k},{k}]({t}) = {}, want {want}",
                y[i]
            );
        }
    }
}

#[test]
fn a_perfect_start_has_exactly_the_aligned_excess() {
    // Noiseless data (sigma = 0: spikes only), K = M = 3, erf, and the perfect start of docs/theory.md
    // section 7 at a = 0.5: eg(0) from vanilla.ae's section-6 observable must equal the PCA
    // error (0: the three spikes are all the variance) plus the aligned excess
    // Σ ½ E[(u - b_k g(a u))^2] computed from the one-dimensional averages. Two formulas, one
    // number: rounding of a few terms of order one, so 1e-10.
    let spikes = [9.0, 3.0, 1.0];
    let (header, rows) = common::ode_csv(
        &[
            "--k",
            "3",
            "--spikes",
            "9,3,1",
            "--sigma",
            "0",
            "--perfect",
            "0.5",
            "--t-end",
            "1",
            "--points",
            "3",
        ],
        "perfect.csv",
    );
    let eg = header.iter().position(|h| h == "eg").unwrap();
    let act = ActivationKind::Erf;
    let expected: f64 = spikes
        .iter()
        .map(|&rho| {
            let b = ae_runtime::init::perfect_decoder(act, rho, 0.5);
            ae_runtime::init::aligned_excess(act, rho, 0.5, b)
        })
        .sum();
    assert!(
        (rows[0][eg] - expected).abs() <= 1e-10,
        "eg(0) = {}, aligned excess {expected}",
        rows[0][eg]
    );
    // The perfect b is the minimum: any other b has a larger excess.
    for rho in spikes {
        let b = ae_runtime::init::perfect_decoder(act, rho, 0.5);
        let best = ae_runtime::init::aligned_excess(act, rho, 0.5, b);
        for db in [-1e-3, 1e-3] {
            assert!(ae_runtime::init::aligned_excess(act, rho, 0.5, b + db) > best);
        }
    }
}

#[test]
fn a_random_start_joins_the_informed_one_after_alignment() {
    // Noiseless spike 4, K = M = 1 (paper figure 10). Once the random start has aligned with
    // the spike, both runs obey the reduced equations of docs/theory.md section 7, whose solutions all
    // approach the same power law eg ~ (π / (4 η t))^(2/3) ρ / 12 (the initial condition
    // enters only at higher order in 1/t): the relative gap of the two eg curves must shrink
    // after alignment and be small by t = 1e4. Measured: 0.8% at t = 96, 0.07% at t = 981,
    // below 0.03% at t = 1e4; bounds 3%, 0.5% and 0.1%.
    let common_args = [
        "--k", "1", "--spikes", "4", "--sigma", "0", "--d", "1000", "--t-end", "1e4", "--points", "60",
    ];
    let mut random_args = common_args.to_vec();
    random_args.extend_from_slice(&["--seed", "3"]);
    let mut informed_args = common_args.to_vec();
    informed_args.extend_from_slice(&["--informed", "0.5,0.5"]);
    let (header, random) = common::ode_csv(&random_args, "random-start.csv");
    let (_, informed) = common::ode_csv(&informed_args, "informed-start.csv");
    let (t, eg) = (0, header.iter().position(|h| h == "eg").unwrap());
    let gap_at = |time: f64| {
        let i = random.iter().position(|r| r[t] >= time).unwrap();
        (random[i][eg] - informed[i][eg]).abs() / informed[i][eg]
    };
    // Before alignment the two are far apart.
    assert!(gap_at(0.5) > 0.3, "gap at t = 0.5: {}", gap_at(0.5));
    let (early, middle, late) = (gap_at(100.0), gap_at(1000.0), gap_at(1e4));
    assert!(
        early < 0.03 && middle < 0.005 && late < 0.001,
        "gaps {early} {middle} {late}"
    );
    assert!(late < middle && middle < early);
}

//! What the equations promise at finite D (docs/theory.md section 10): for positively
//! homogeneous activations the ODE conserves B_k = |w_k|^2 - T0_kk, SGD drifts along it by
//! O(eta^2 / D) per unit time, and the per-unit scales Q_kk and T0_kk leave the ODE while the
//! scale-free quantities (eg, Q_kk T0_kk) do not.

use crate::common::figure2_job;

use ae_core::averages::ActivationKind;
use ae_runtime::data::{eigenvectors, Dim, EigenFamily, Weights};
use ae_runtime::ode::{log_times, Method, Solver};
use ae_runtime::sgd::{sample_rng, Sgd, SgdConfig, SpikedSampler};
use aedyn::compare::{CompareJob, CompareRun};
use aedyn::run::OdeRun;

const SPIKES: [f64; 3] = [9.0, 3.0, 1.0];

/// B_k of unit k along an ODE run of `vanilla`, at every output time: the spike modes' squared
/// projections, the lumped bulk's (Qb_kk over the bulk eigenvalue 1/D) minus T0_kk.
fn ode_norm_split(run: &OdeRun, k: usize, d: usize) -> Vec<f64> {
    let state = |name: &str| {
        run.state_names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    let omega: Vec<usize> = (0..SPIKES.len()).map(|t| state(&format!("omega[{k};{t}]"))).collect();
    let (qb, t0) = (state(&format!("Qb[{k},{k}]")), state(&format!("T0[{k},{k}]")));
    run.trajectory
        .states
        .iter()
        .map(|y| omega.iter().map(|&i| y[i] * y[i]).sum::<f64>() + y[qb] * d as f64 - y[t0])
        .collect()
}

fn tight_run(activation: ActivationKind, d: usize) -> OdeRun {
    let job = aedyn::run::OdeJob {
        solver: Solver {
            method: Method::Dop853,
            rtol: 1e-10,
            atol: 1e-12,
            ..Solver::default()
        },
        ..figure2_job("vanilla", activation, Dim::Finite(d), 0.0, log_times(0.1, 200.0, 20))
    };
    job.run(|_| {}).unwrap()
}

#[test]
fn the_ode_conserves_the_norm_split_of_homogeneous_units() {
    // g(lambda) = g'(lambda) lambda makes d/dt |w_k|^2 = d/dt T0_kk term by term. Over t = 200,
    // through the plateau and the escape, B_k moves by less than 1e-9 of its size: integrator
    // tolerance (rtol 1e-10; measured 1e-12). erf is not homogeneous and is the control: its
    // B_k moves by more than 1% in the same run, so the test can tell the two apart.
    let d = 500;
    for activation in [ActivationKind::Relu, ActivationKind::Linear, ActivationKind::Erf] {
        let run = tight_run(activation, d);
        for k in 0..3 {
            let split = ode_norm_split(&run, k, d);
            let scale = split[0].abs().max(1.0);
            let moved = split.iter().map(|b| (b - split[0]).abs()).fold(0.0, f64::max) / scale;
            if activation == ActivationKind::Erf {
                assert!(moved > 1e-2, "erf unit {k}: B moved only {moved:e}");
            } else {
                assert!(moved < 1e-9, "{activation:?} unit {k}: B moved by {moved:e} of {scale}");
            }
        }
    }
}

/// SGD's B_k (mean over units and seeds) after time `t` from the figure-2 start, ReLU, K = 3.
fn sgd_norm_split_drift(d: usize, lr: f64, t: f64) -> f64 {
    let (k, seeds) = (3, 2u64);
    let mut drift = 0.0;
    for seed in 0..seeds {
        let eig = eigenvectors(EigenFamily::Random, SPIKES.len(), d, seed);
        let start = Weights::random(k, d, 0.1, seed);
        let config = SgdConfig {
            rates: ae_runtime::sgd::Rates { lr, kappa: 0.0 },
            ..SgdConfig::vanilla(ActivationKind::Relu)
        };
        let mut sgd = Sgd::new(config, &start, vec![]);
        let mut sampler = SpikedSampler::new(eig, &SPIKES, 1.0);
        sgd.run(&mut sampler, &mut sample_rng(seed, 0), (t * d as f64) as u64);
        let split = |w: &Weights, j: usize| {
            let norm = |x: &[f64]| x.iter().map(|a| a * a).sum::<f64>();
            norm(&w.w[j]) - norm(&w.v[j]) / d as f64
        };
        let end = sgd.weights();
        drift += (0..k).map(|j| split(&end, j) - split(&start, j)).sum::<f64>();
    }
    drift / (k as f64 * seeds as f64)
}

#[test]
fn sgd_drifts_along_the_norm_split_by_eta_squared_over_d() {
    // Each step moves B_k by |dw_k|^2 - |dv_k|^2 / D, of order (eta / D)^2; over t D steps that
    // is of order eta^2 t / D, so D times the drift at fixed t and eta must not depend on D, and
    // doubling eta must multiply it by 4. The drift rate depends on the trajectory, which at
    // finite D deviates by O(1/sqrt(D)) (about 6% at D = 250; two seeds of three units each),
    // hence the 25% tolerance; a drift of order 1/sqrt(D) or 1/D^2 would miss it by 2x or 4x.
    let t = 20.0;
    let small = sgd_norm_split_drift(250, 1.0, t) * 250.0;
    let large = sgd_norm_split_drift(1000, 1.0, t) * 1000.0;
    assert!(small.abs() > 1e-3, "no drift to measure: {small:e}");
    assert!(
        (large / small - 1.0).abs() < 0.25,
        "D x drift: {small:e} at D = 250, {large:e} at D = 1000"
    );
    let half_rate = sgd_norm_split_drift(1000, 0.5, 2.0 * t) * 1000.0;
    // Half the rate over twice the time reaches the same point of the ODE's trajectory (its
    // time is lr t), so the drift there is (1/2)^2 x 2 = 1/2 of the full rate's.
    assert!(
        (half_rate / large - 0.5).abs() < 0.25 * 0.5,
        "D x drift at lr 0.5, t = 40: {half_rate:e}, at lr 1, t = 20: {large:e}"
    );
}

/// compare, ReLU K = 3 from the figure-2 start, 2 replicas, up to `t`.
fn relu_compare(d: usize, t: f64) -> CompareRun {
    let mut job = CompareJob::new(
        figure2_job(
            "vanilla",
            ActivationKind::Relu,
            Dim::Finite(d),
            0.0,
            log_times(1.0, t, 4),
        ),
        SgdConfig::vanilla(ActivationKind::Relu),
    );
    job.seeds = 2;
    job.run().unwrap()
}

/// Relative gap between SGD's replica mean and the ODE at the last time, mean over units, of the
/// quantity `f(observable)`.
fn final_gap(run: &CompareRun, f: impl Fn(&dyn Fn(&str) -> (f64, f64)) -> (f64, f64)) -> f64 {
    let last = run.times.len() - 1;
    let value = |name: &str| {
        let ode = run.ode.as_ref().unwrap();
        let i = run.ode_index(name).unwrap();
        let j = run.sgd_names.iter().position(|n| n == name).unwrap();
        let sgd = run.sgd.iter().map(|r| r[last][j]).sum::<f64>() / run.sgd.len() as f64;
        (ode.trajectory.observables[last][i], sgd)
    };
    let (ode, sgd) = f(&value);
    (sgd - ode).abs() / ode.abs()
}

#[test]
fn the_per_unit_gap_closes_with_d_while_scale_free_quantities_agree() {
    // At t = 20 the drift of B_k (lr t / D = 0.08 at D = 250) has moved Q_kk by tens of
    // percent. Sixteen times the dimension must close the largest per-unit gap by more than 5x:
    // 16x in the 1/D limit, 4x if it were a 1/sqrt(D) fluctuation (measured 10.7x, 0.40 to
    // 0.038; the gap is not yet linear in the drift at D = 250). eg and Q_kk T0_kk do not see
    // the flat direction: they agree within their own fluctuations, bounded by 1.5/sqrt(D)
    // (9.5% at D = 250, 2.4% at D = 4000; measured at most 4.3% and 0.4%), and at D = 250 the
    // per-unit gap is more than three times the largest scale-free one.
    let t = 20.0;
    let mut q_gaps = Vec::new();
    for d in [250, 4000] {
        let run = relu_compare(d, t);
        let bound = 1.5 / (d as f64).sqrt();
        let q = (0..3)
            .map(|k| final_gap(&run, |v| v(&format!("Q[{k},{k}]"))))
            .fold(0.0, f64::max);
        let mut scale_free = final_gap(&run, |v| v("eg"));
        for k in 0..3 {
            scale_free = scale_free.max(final_gap(&run, |v| {
                let (q, t0) = (v(&format!("Q[{k},{k}]")), v(&format!("T0[{k},{k}]")));
                (q.0 * t0.0, q.1 * t0.1)
            }));
        }
        assert!(
            scale_free < bound,
            "D = {d}: eg or Q T0 apart by {scale_free} (bound {bound})"
        );
        if d == 250 {
            assert!(q > 3.0 * scale_free, "D = 250: Q_kk gap {q}, scale-free {scale_free}");
        }
        q_gaps.push(q);
    }
    assert!(
        q_gaps[1] < q_gaps[0] / 5.0,
        "largest Q_kk gaps at D = 250, 4000: {q_gaps:?}"
    );
}

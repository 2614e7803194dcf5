//! The paper's figure 2 (docs/theory.md section 8, claims 1-2): ODE against SGD, erf, K = M = 3, spikes
//! (9, 3, 1), sigma = 1, lr = 1, initial std 0.1, random eigenvectors, t from 0.05 to 100.
//! The ODE starts from the order parameters of the very weights every SGD replica starts from.

use crate::common;

use ae_core::averages::ActivationKind;
use ae_runtime::data::Dim;
use ae_runtime::ode::{log_times, Method, Solver};
use ae_runtime::sgd::{Rule, SgdConfig};
use aedyn::compare::{mean_std, CompareJob, CompareRun};
use aedyn::run::OdeJob;

fn ode_job(act: ActivationKind, d: Dim, kappa: f64, times: Vec<f64>) -> OdeJob {
    common::figure2_job("vanilla", act, d, kappa, times)
}

fn compare(act: ActivationKind, d: usize, kappa: f64, seeds: usize) -> CompareRun {
    let ode = ode_job(act, Dim::Finite(d), kappa, log_times(0.05, 100.0, 30));
    let sgd = SgdConfig {
        activation: act.into(),
        rule: Rule::Vanilla,
        rates: ae_runtime::sgd::Rates { lr: 1.0, kappa },
        tied: false,
        train_bias: false,
        bias_init: 0.0,
        scaling: Default::default(),
    };
    CompareJob {
        seeds,
        ..CompareJob::new(ode, sgd)
    }
    .run()
    .unwrap()
}

/// Relative deviation of the seed-averaged SGD eg from the ODE eg at every t > 0.
fn deviations(run: &CompareRun) -> Vec<f64> {
    let (ode, sgd) = (run.ode_eg(), run.sgd_eg());
    ode.iter()
        .zip(&sgd)
        .skip(1)
        .map(|(o, (s, _))| (s - o).abs() / o)
        .collect()
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The first time at which each spike's variance is half reconstructed (linear interpolation).
fn half_times(times: &[f64], fractions: &[Vec<f64>]) -> Vec<f64> {
    (0..fractions[0].len())
        .map(|m| {
            for i in 1..times.len() {
                let (a, b) = (fractions[i - 1][m], fractions[i][m]);
                if a < 0.5 && b >= 0.5 {
                    return times[i - 1] + (0.5 - a) / (b - a) * (times[i] - times[i - 1]);
                }
            }
            f64::INFINITY
        })
        .collect()
}

#[test]
fn erf_ode_tracks_sgd_at_d1000_and_learns_components_in_order() {
    let run = compare(ActivationKind::Erf, 1000, 0.0, 4);
    let dev = deviations(&run);
    // At D = 1000 a single run's eg carries O(1/sqrt(D)) ~ 3% finite-size corrections and
    // fluctuations; four replicas average the fluctuating part. The bounds: 2.5% at the
    // median grid point, 15% at the worst (the plateau escapes, whose timing varies by seed).
    assert!(median(&dev) <= 0.025, "median deviation {}", median(&dev));
    let worst = dev.iter().cloned().fold(0.0, f64::max);
    assert!(worst <= 0.15, "worst deviation {worst}");

    // Claim 2: components are learnt one after the other, in order of eigenvalue.
    let times = &run.times;
    let ode = half_times(times, run.ode_spikes.as_ref().unwrap());
    let sgd_mean: Vec<Vec<f64>> = (0..times.len())
        .map(|i| {
            (0..3)
                .map(|m| mean_std(&run.sgd_spikes.iter().map(|r| r[i][m]).collect::<Vec<_>>()).0)
                .collect()
        })
        .collect();
    let sgd = half_times(times, &sgd_mean);
    for t in [&ode, &sgd] {
        assert!(
            t[0] < t[1] && t[1] < t[2] && t[2].is_finite(),
            "half-reconstruction times {t:?}"
        );
    }
}

#[test]
fn deviation_shrinks_with_dimension() {
    // Finite-D corrections scale as 1/sqrt(D): from D = 250 to D = 1000 the expected median
    // deviation halves; we require a strict decrease (measured 1.8% -> 0.58%, and 0.36% at
    // D = 2000). D = 1000, not 2000: an SGD run's cost grows as D^2 at a fixed t.
    let small = median(&deviations(&compare(ActivationKind::Erf, 250, 0.0, 4)));
    let large = median(&deviations(&compare(ActivationKind::Erf, 1000, 0.0, 4)));
    assert!(large < small, "median deviation D=250: {small}, D=1000: {large}");
}

/// Linear and ReLU units against four SGD replicas at dimension `d`, held to erf's bounds at
/// D = 1000 (2.5% at the median grid point, 15% at the worst).
fn linear_and_relu_track_sgd(d: usize) {
    for act in [ActivationKind::Linear, ActivationKind::Relu] {
        let dev = deviations(&compare(act, d, 0.0, 4));
        let worst = dev.iter().cloned().fold(0.0, f64::max);
        assert!(
            median(&dev) <= 0.025 && worst <= 0.15,
            "{}: median {} worst {worst}",
            act.name(),
            median(&dev)
        );
    }
}

#[test]
fn linear_and_relu_track_sgd_at_d1000() {
    // Single-run corrections ~1/sqrt(1000) ~ 3%, averaged over four replicas: the bounds of erf
    // at the same D (measured: linear 1.0% / 6.1%, ReLU 0.7% / 2.4%).
    linear_and_relu_track_sgd(1000);
}

#[test]
#[ignore = "heavy (SGD at D = 2000, about 20 s in a test build): run by .ci/run's step of ignored tests"]
fn linear_and_relu_track_sgd_at_d2000() {
    // ~1/sqrt(2000) ~ 2.2% corrections; the same bounds (measured: linear 0.5% / 5.0%, ReLU
    // 0.4% / 5.9%).
    linear_and_relu_track_sgd(2000);
}

#[test]
fn weight_decay_tracks_sgd() {
    // kappa = 0.1 adds -2 kappa X to every order parameter in the ODE and shrinks the weights
    // by (1 - kappa/D) per step in SGD; same tolerance argument as without decay (D = 1000).
    let dev = deviations(&compare(ActivationKind::Erf, 1000, 0.1, 4));
    let worst = dev.iter().cloned().fold(0.0, f64::max);
    assert!(
        median(&dev) <= 0.025 && worst <= 0.15,
        "median {} worst {worst}",
        median(&dev)
    );
}

#[test]
fn ode_reaches_the_pca_error_by_t1000() {
    // Claim 1/3: after learning all three components, eg approaches the rank-3 PCA error
    // from above (erf reaches it only asymptotically); within 10% at t = 1000.
    let mut job = ode_job(ActivationKind::Erf, Dim::Finite(1000), 0.0, log_times(1.0, 1000.0, 4));
    job.solver = Solver {
        method: Method::Rodas4,
        rtol: 1e-8,
        atol: 1e-10,
        ..Solver::default()
    };
    let run = job.run(|_| {}).unwrap();
    let eg = run.trajectory.observables.last().unwrap()[0];
    let pca3 = job.source.pca_errors(3)[2];
    assert!(eg >= pca3 && eg <= 1.10 * pca3, "eg {eg}, PCA(3) {pca3}");
}

#[test]
fn compare_output_does_not_depend_on_thread_count() {
    let make = |threads| {
        let ode = ode_job(ActivationKind::Erf, Dim::Finite(200), 0.0, log_times(0.1, 5.0, 6));
        let sgd = SgdConfig::vanilla(ActivationKind::Erf);
        let run = CompareJob {
            seeds: 3,
            threads,
            test_samples: 20,
            ..CompareJob::new(ode, sgd)
        }
        .run()
        .unwrap();
        let mut buf = Vec::new();
        run.write_csv(&mut buf).unwrap();
        buf
    };
    let one = make(1);
    assert_eq!(one, make(2));
    assert_eq!(one, make(3));
}

#[test]
fn monte_carlo_test_error_agrees_with_the_exact_eg_of_the_same_weights() {
    // The exact eg is E_x[||x - x_hat||^2 / (2D)] under the data distribution; the mean over a
    // held-out set of n = 2000 samples estimates it with a relative standard error of about
    // sqrt(Var[L]/n)/eg. ||x - x_hat||^2/D is a sum of D weakly dependent terms dominated by the
    // spikes (chi-square-like with O(M) degrees of freedom), so Var[L]/eg^2 = O(1) and the error
    // is ~1/sqrt(2000) ~ 2%: we allow 8% (4 standard errors).
    let ode = ode_job(ActivationKind::Erf, Dim::Finite(400), 0.0, log_times(0.5, 20.0, 4));
    let sgd = SgdConfig::vanilla(ActivationKind::Erf);
    let run = CompareJob {
        seeds: 2,
        test_samples: 2000,
        ..CompareJob::new(ode, sgd)
    }
    .run()
    .unwrap();
    for (replica, mc) in run.sgd.iter().zip(&run.sgd_test_eg) {
        for (obs, estimate) in replica.iter().zip(mc) {
            let exact = obs[0];
            assert!(
                (estimate - exact).abs() <= 0.08 * exact,
                "Monte Carlo {estimate}, exact {exact}"
            );
        }
    }
}

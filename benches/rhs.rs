//! Right-hand-side evaluation (generated vs interpreted) and a full integration, for README.
//! Run: `cargo bench --bench rhs`.

use std::hint::black_box;
use std::sync::Arc;

use ae_core::averages::ActivationKind;
use ae_core::kernel::Kernel;
use ae_runtime::data::{eigenvectors, Dim, EigenFamily, Spiked, Weights};
use ae_runtime::init;
use ae_runtime::interp::Interpreter;
use criterion::{criterion_group, criterion_main, Criterion};

fn vanilla_k3_state() -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let src = aedyn::models::shipped_source("vanilla").unwrap();
    let model = Arc::new(ae_dsl::compile("equations/vanilla.ae", src).unwrap());
    let data = Spiked {
        d: Dim::Finite(1000),
        spikes: vec![9.0, 3.0, 1.0],
        sigma: 1.0,
    };
    let weights = Weights::random(3, 1000, 0.3, 1);
    let eig = eigenvectors(EigenFamily::Random, 3, 1000, 1);
    let inputs = init::from_weights(&weights, &eig, &data);
    let interp = Interpreter::new(model, src, 3, ActivationKind::Erf);
    let params = vec![1.0, 0.0, data.rho_bulk(), data.bulk_trace()];
    (interp.init(&inputs), data.spike_rho(), params)
}

fn rhs(c: &mut Criterion) {
    let (y, rho, params) = vanilla_k3_state();
    let src = aedyn::models::shipped_source("vanilla").unwrap();
    let model = Arc::new(ae_dsl::compile("equations/vanilla.ae", src).unwrap());
    let mut generated = aedyn::models::generated("vanilla", 3, ActivationKind::Erf).unwrap();
    let mut interp = Interpreter::new(model, src, 3, ActivationKind::Erf);
    for k in [generated.as_mut(), &mut interp as &mut dyn Kernel] {
        k.set_rho(rho.clone());
        k.params_mut().copy_from_slice(&params);
    }
    let mut dy = vec![0.0; y.len()];
    let mut group = c.benchmark_group("vanilla K=3 erf, 3 spikes: one rhs");
    group.bench_function("generated", |b| b.iter(|| generated.rhs(black_box(&y), &mut dy)));
    group.bench_function("interpreted", |b| b.iter(|| interp.rhs(black_box(&y), &mut dy)));
    group.finish();
    let n = y.len();
    let mut jac = vec![0.0; n * n];
    let mut group = c.benchmark_group("vanilla K=3 erf, 3 spikes: one Jacobian");
    group.bench_function("symbolic (generated)", |b| {
        b.iter(|| generated.jacobian(black_box(&y), &mut jac))
    });
    // What Rodas4 does without it: one forward difference per column.
    let mut f0 = vec![0.0; n];
    group.bench_function("forward differences of the generated rhs", |b| {
        b.iter(|| {
            generated.rhs(black_box(&y), &mut f0);
            let mut x = y.clone();
            for j in 0..n {
                let h = f64::EPSILON.sqrt() * y[j].abs().max(1e-5);
                x[j] = y[j] + h;
                generated.rhs(&x, &mut dy);
                x[j] = y[j];
                for i in 0..n {
                    jac[j * n + i] = (dy[i] - f0[i]) / h;
                }
            }
        })
    });
    group.finish();
}

fn integration(c: &mut Criterion) {
    use ae_runtime::ode::{Method, Solver};
    let mut group = c.benchmark_group("vanilla K=3 erf, 3 spikes, D=1000: integrate t = 0..1000");
    group.sample_size(10);
    let source = aedyn::source::DataSource::spiked(Dim::Finite(1000), &[9.0, 3.0, 1.0], 1.0, 0);
    let job = aedyn::run::OdeJob::new("vanilla", 3, ActivationKind::Erf, source);
    let with = |method: Method, rtol: f64, atol: f64, fd_jacobian: bool| {
        let mut j = job.clone();
        j.solver = Solver {
            method,
            rtol,
            atol,
            fd_jacobian,
            ..Solver::default()
        };
        j
    };
    let (rtol, atol) = (Solver::default().rtol, Solver::default().atol);
    let runs = [
        (
            "default (auto: rodas4, symbolic Jacobian)",
            with(Method::Auto, rtol, atol, false),
        ),
        (
            "dop853 at the default tolerances",
            with(Method::Dop853, rtol, atol, false),
        ),
        (
            "rodas4 with a finite-difference Jacobian",
            with(Method::Rodas4, rtol, atol, true),
        ),
        (
            "dop853, rtol 1e-10 (the former default)",
            with(Method::Dop853, 1e-10, 1e-12, false),
        ),
        ("auto, rtol 1e-10", with(Method::Auto, 1e-10, 1e-12, false)),
    ];
    for (name, job) in runs {
        group.bench_function(name, |b| b.iter(|| job.run(|_| {}).unwrap()));
    }
    group.finish();
}

criterion_group!(benches, rhs, integration);
criterion_main!(benches);

//! Wide networks: one right-hand side of the full-spectrum equations (erf, D = 1024 modes)
//! for K = 4 unrolled, K-generic and interpreted, K = 8 K-generic and interpreted, and
//! K-generic for K = 16, 32, 64 (what runs beyond K = 4: no unrolled kernel is generated
//! there, the K-generic ones are as fast); and vanilla with
//! K = 6 units and 6 spikes integrated to t = 1000 by the K-generic kernel.
//! Run: `cargo bench --bench wide`.

use std::hint::black_box;
use std::sync::Arc;

use ae_core::averages::ActivationKind;
use ae_core::kernel::Kernel;
use ae_runtime::data::{eigenvectors, Dim, EigenFamily, Weights};
use ae_runtime::init;
use ae_runtime::interp::Interpreter;
use criterion::{criterion_group, criterion_main, Criterion};

const D: usize = 1024;

/// A power-law spectrum like natural images', normalised to tr(Omega)/D = 1, and the state of
/// i.i.d. initial weights (std 0.1) projected on canonical eigenvectors.
fn full_spectrum_state(k: usize) -> (Vec<f64>, Vec<f64>) {
    let src = aedyn::models::shipped_source("full_spectrum").unwrap();
    let model = Arc::new(ae_dsl::compile("equations/full_spectrum.ae", src).unwrap());
    let raw: Vec<f64> = (0..D).map(|i| 1.0 / (1.0 + i as f64).powf(0.8)).collect();
    let total: f64 = raw.iter().sum();
    let rho: Vec<f64> = raw.iter().map(|r| r / total).collect();
    let weights = Weights::random(k, D, 0.1, 3);
    let eig = eigenvectors(EigenFamily::Canonical, D, D, 0);
    let inputs = init::from_weights_full(&weights, &eig);
    let interp = Interpreter::new(model, src, k, ActivationKind::Erf);
    (interp.init(&inputs), rho)
}

fn configured(mut kernel: Box<dyn Kernel>, rho: &[f64]) -> Box<dyn Kernel> {
    kernel.set_rho(rho.to_vec());
    kernel.params_mut()[0] = 1.0;
    kernel
}

fn rhs(c: &mut Criterion) {
    let mut group = c.benchmark_group("full_spectrum erf, D = 1024: one rhs");
    group.sample_size(20);
    let src = aedyn::models::shipped_source("full_spectrum").unwrap();
    let model = Arc::new(ae_dsl::compile("equations/full_spectrum.ae", src).unwrap());
    for k in [4, 8] {
        let (y, rho) = full_spectrum_state(k);
        let mut dy = vec![0.0; y.len()];
        if let Some(unrolled) = aedyn::models::unrolled("full_spectrum", k, ActivationKind::Erf) {
            let unrolled = configured(unrolled, &rho);
            group.bench_function(format!("K = {k} unrolled"), |b| {
                b.iter(|| unrolled.rhs(black_box(&y), &mut dy))
            });
        }
        let generic = configured(
            aedyn::models::generic("full_spectrum", k, ActivationKind::Erf).unwrap(),
            &rho,
        );
        group.bench_function(format!("K = {k} generic"), |b| {
            b.iter(|| generic.rhs(black_box(&y), &mut dy))
        });
        let interp = configured(
            Box::new(Interpreter::new(model.clone(), src, k, ActivationKind::Erf)),
            &rho,
        );
        group.bench_function(format!("K = {k} interpreted"), |b| {
            b.iter(|| interp.rhs(black_box(&y), &mut dy))
        });
    }
    for k in [16, 32, 64] {
        let (y, rho) = full_spectrum_state(k);
        let mut dy = vec![0.0; y.len()];
        let generic = configured(
            aedyn::models::generic("full_spectrum", k, ActivationKind::Erf).unwrap(),
            &rho,
        );
        group.bench_function(format!("K = {k} generic"), |b| {
            b.iter(|| generic.rhs(black_box(&y), &mut dy))
        });
    }
    group.finish();
}

fn vanilla_k6(c: &mut Criterion) {
    let mut group = c.benchmark_group("vanilla K = 6 erf, spikes 6..1, D = 1000: integrate t = 0..1000");
    group.sample_size(10);
    let source = aedyn::source::DataSource::spiked(Dim::Finite(1000), &[6.0, 5.0, 4.0, 3.0, 2.0, 1.0], 1.0, 0);
    let job = aedyn::run::OdeJob {
        solver: ae_runtime::ode::Solver {
            method: ae_runtime::ode::Method::Rodas4,
            rtol: 1e-7,
            ..ae_runtime::ode::Solver::default()
        },
        ..aedyn::run::OdeJob::new("vanilla", 6, ActivationKind::Erf, source)
    };
    group.bench_function("K-generic, rodas4 rtol 1e-7", |b| b.iter(|| job.run(|_| {}).unwrap()));
    let mut explicit = job.clone();
    explicit.solver = ae_runtime::ode::Solver::default();
    group.bench_function("K-generic, dop853 rtol 1e-10", |b| {
        b.iter(|| explicit.run(|_| {}).unwrap())
    });
    group.finish();
}

criterion_group!(benches, rhs, vanilla_k6);
criterion_main!(benches);

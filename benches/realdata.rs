//! Real-data costs for README: the eigendecomposition of a D = 1024 empirical covariance, and a
//! full-spectrum ODE run for K = 8, D = 1024, t = 0..100. Run: `cargo bench --bench realdata`
//! (K = 8 runs on the K-generic kernel; `cargo bench --bench wide` compares it with the
//! interpreter).

use std::sync::Arc;

use ae_core::averages::ActivationKind;
use ae_runtime::data::{eigen, RealData, Samples};
use ae_runtime::ode::log_times;
use criterion::{criterion_group, criterion_main, Criterion};

mod common;

/// 3000 samples in D = 1024 with a power-law spectrum, like natural images.
fn samples(d: usize) -> Samples {
    Samples {
        source: "synthetic".into(),
        d,
        rows: common::power_law_rows(3000, d),
    }
}

fn bench(c: &mut Criterion) {
    let d = 1024;
    let data = RealData::new(samples(d)).unwrap();
    let mut cov = nalgebra::DMatrix::<f64>::zeros(d, d);
    for row in &data.rows {
        let x = nalgebra::DVectorView::from_slice(row, d);
        cov.ger(1.0 / data.rows.len() as f64, &x, &x, 1.0);
    }
    let mut group = c.benchmark_group("real data, D = 1024");
    group.sample_size(10);
    group.bench_function("symmetric eigendecomposition (nalgebra)", |b| {
        b.iter(|| eigen(cov.clone()))
    });
    let source = aedyn::source::DataSource::Empirical(Arc::new(data));
    let job = aedyn::run::OdeJob {
        init: aedyn::source::InitChoice::Random { seed: 1, std: 0.1 },
        times: log_times(0.1, 100.0, 10),
        ..aedyn::run::OdeJob::new("full_spectrum", 8, ActivationKind::Erf, source)
    };
    let generated = aedyn::models::generated("full_spectrum", 8, ActivationKind::Erf).is_some();
    let name = format!(
        "full-spectrum ODE, K = 8, t = 0..100 ({})",
        if generated { "generated" } else { "interpreted" }
    );
    group.bench_function(name, |b| b.iter(|| job.run(|_| {}).unwrap()));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! SGD steps per second at D = 1000, K = 3, one core (README figure). Run: `cargo bench --bench sgd`.

use ae_runtime::averages::ActivationKind;
use ae_runtime::data::{eigenvectors, EigenFamily, Weights};
use ae_runtime::sgd::{sample_rng, Rule, Sampler, Sgd, SgdConfig, SpikedSampler};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn sgd(c: &mut Criterion) {
    let (k, d) = (3, 1000);
    let eig = eigenvectors(EigenFamily::Random, 3, d, 1);
    let weights = Weights::random(k, d, 0.1, 1);
    let mut group = c.benchmark_group("SGD D=1000 K=3 erf, 1000 steps");
    group.throughput(Throughput::Elements(1000));
    for (name, rule) in [("vanilla", Rule::Vanilla), ("truncated", Rule::Truncated)] {
        let config = SgdConfig {
            activation: ActivationKind::Erf,
            rule,
            lr: 1.0,
            kappa: 0.0,
            tied: false,
            train_bias: false,
            bias_init: 0.0,
        };
        let mut sgd = Sgd::new(config, &weights, vec![]);
        let mut sampler = SpikedSampler::new(eig.clone(), &[9.0, 3.0, 1.0], 1.0);
        let mut rng = sample_rng(1, 0);
        group.bench_function(name, |b| b.iter(|| sgd.run(&mut sampler, &mut rng, 1000)));
    }
    let mut sampler = SpikedSampler::new(eig, &[9.0, 3.0, 1.0], 1.0);
    let mut rng = sample_rng(1, 0);
    let mut x = vec![0.0; d];
    group.bench_function("sampling x alone", |b| {
        b.iter(|| {
            for _ in 0..1000 {
                sampler.sample(&mut rng, &mut x);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, sgd);
criterion_main!(benches);

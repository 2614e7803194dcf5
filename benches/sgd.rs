//! SGD steps per second at D = 1000, K = 3, one core, beside the same steps on stored samples
//! (the step without drawing), the time to draw the samples alone, and the time to draw their
//! normals by the generator in use and by the former one (README figures). Run:
//! `cargo bench --bench sgd`.

use ae_core::averages::ActivationKind;
use ae_runtime::data::{eigenvectors, EigenFamily, Weights};
use ae_runtime::sgd::{sample_rng, Rule, Sampler, Sgd, SgdConfig, SpikedSampler};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

fn sgd(c: &mut Criterion) {
    let (k, d) = (3, 1000);
    let eig = eigenvectors(EigenFamily::Random, 3, d, 1);
    let weights = Weights::random(k, d, 0.1, 1);
    let mut group = c.benchmark_group("SGD D=1000 K=3 erf, 1000 steps");
    group.throughput(Throughput::Elements(1000));
    for (name, rule) in [("vanilla", Rule::Vanilla), ("truncated", Rule::Truncated)] {
        let config = SgdConfig {
            activation: ActivationKind::Erf.into(),
            rule,
            rates: ae_runtime::sgd::Rates::default(),
            tied: false,
            train_bias: false,
            bias_init: 0.0,
            scaling: Default::default(),
        };
        let mut sgd = Sgd::new(config, &weights, vec![]);
        let mut sampler = SpikedSampler::new(eig.clone(), &[9.0, 3.0, 1.0], 1.0);
        let mut rng = sample_rng(1, 0);
        group.bench_function(name, |b| b.iter(|| sgd.run(&mut sampler, &mut rng, 1000)));
    }
    // The step without drawing: 64 stored samples replayed (copying one costs little beside
    // the pass over 6 rows of D weights).
    let mut sampler = SpikedSampler::new(eig.clone(), &[9.0, 3.0, 1.0], 1.0);
    let mut rng = sample_rng(1, 0);
    let mut stored = Stored {
        xs: (0..64)
            .map(|_| {
                let mut x = vec![0.0; d];
                sampler.sample(&mut rng, &mut x);
                x
            })
            .collect(),
        next: 0,
    };
    let mut sgd = Sgd::new(SgdConfig::vanilla(ActivationKind::Erf), &weights, vec![]);
    group.bench_function("vanilla on stored samples", |b| {
        b.iter(|| sgd.run(&mut stored, &mut rng, 1000))
    });
    let mut x = vec![0.0; d];
    group.bench_function("sampling x alone", |b| {
        b.iter(|| {
            for _ in 0..1000 {
                sampler.sample(&mut rng, &mut x);
            }
        })
    });
    // The normals of one sample (D + 3) by the generator in use and by the former one
    // (rand_distr's ziggurat, one normal per call on one xoshiro256++ stream).
    let mut normals = vec![0.0; d + 3];
    group.bench_function("1003 normals alone", |b| {
        b.iter(|| {
            for _ in 0..1000 {
                rng.fill_normal(&mut normals);
            }
        })
    });
    let mut former = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
    group.bench_function("1003 normals alone, former generator", |b| {
        b.iter(|| {
            for _ in 0..1000 {
                for z in normals.iter_mut() {
                    *z = StandardNormal.sample(&mut former);
                }
            }
        })
    });
    group.finish();
}

/// Samples drawn beforehand, replayed in turn.
struct Stored {
    xs: Vec<Vec<f64>>,
    next: usize,
}

impl Sampler for Stored {
    fn d(&self) -> usize {
        self.xs[0].len()
    }
    fn sample(&mut self, _rng: &mut ae_runtime::sgd::SampleRng, x: &mut [f64]) {
        x.copy_from_slice(&self.xs[self.next % self.xs.len()]);
        self.next += 1;
    }
}

criterion_group!(benches, sgd);
criterion_main!(benches);

//! The cost of one Gaussian average of tanh: by the graded quadrature, by the Gauss-Hermite rule
//! that preceded it, and by Mehler series (with the coefficients kept, and with a new variance
//! every call, so that they are computed each time), beside erf's closed form.
//! Run: `cargo bench --bench averages`.

use std::hint::black_box;

use ae_core::averages::{gauss_hermite, Activation, Averages, Erf, Quadrature, Tanh, TanhFn};
use criterion::{criterion_group, criterion_main, Criterion};

/// The former rule: tensor Gauss-Hermite, 64 x 64 nodes (what covariance entries of 1 to 4
/// got), over the Cholesky factor. Off by 2e-5 relative at variance 3 (issue tracker).
fn i2_gauss_hermite(nodes: &(Vec<f64>, Vec<f64>), c11: f64, c12: f64, c22: f64) -> f64 {
    let l11 = c11.sqrt();
    let l21 = c12 / l11;
    let l22 = (c22 - l21 * l21).sqrt();
    let (x, w) = nodes;
    let mut acc = 0.0;
    for (z1, a) in x.iter().zip(w) {
        let g1 = TanhFn::g(l11 * z1);
        let mut inner = 0.0;
        for (z2, b) in x.iter().zip(w) {
            inner += b * TanhFn::g(l21 * z1 + l22 * z2);
        }
        acc += a * g1 * inner;
    }
    acc
}

fn averages(c: &mut Criterion) {
    let nodes = gauss_hermite(64);
    for (label, (c11, c12, c22)) in [("entries ~1", (1.0, 0.4, 0.8)), ("entries ~30", (30.0, 12.0, 24.0))] {
        let mut group = c.benchmark_group(format!("one I2, {label}"));
        group.bench_function("tanh, graded Gauss-Legendre", |b| {
            b.iter(|| Quadrature::<TanhFn>::i2(black_box(c11), black_box(c12), black_box(c22)))
        });
        group.bench_function("tanh, Mehler series, coefficients kept", |b| {
            b.iter(|| Tanh::i2(black_box(c11), black_box(c12), black_box(c22)))
        });
        // A variance never seen before on every call: both coefficient sets are computed.
        let mut nudge = 0.0;
        group.bench_function("tanh, Mehler series, new variances", |b| {
            b.iter(|| {
                nudge += 1e-9;
                Tanh::i2(black_box(c11 + nudge), black_box(c12), black_box(c22 + nudge))
            })
        });
        group.bench_function("tanh, Gauss-Hermite 64x64 (before)", |b| {
            b.iter(|| i2_gauss_hermite(&nodes, black_box(c11), black_box(c12), black_box(c22)))
        });
        group.bench_function("tanh gradient by quadrature (3 entries, Price's theorem)", |b| {
            b.iter(|| Quadrature::<TanhFn>::i2_grad(black_box(c11), black_box(c12), black_box(c22)))
        });
        group.bench_function("erf closed form", |b| {
            b.iter(|| Erf::i2(black_box(c11), black_box(c12), black_box(c22)))
        });
        group.finish();
    }
    let mut group = c.benchmark_group("one I3, entries ~1");
    group.bench_function("tanh, graded Gauss-Legendre", |b| {
        b.iter(|| Quadrature::<TanhFn>::i3(black_box(1.0), 0.3, 0.4, 0.9, 0.2, black_box(0.8)))
    });
    group.bench_function("tanh, Mehler series, coefficients kept", |b| {
        b.iter(|| Tanh::i3(black_box(1.0), 0.3, 0.4, 0.9, 0.2, black_box(0.8)))
    });
    group.finish();
}

criterion_group!(benches, averages);
criterion_main!(benches);

//! Claims of the paper about SGD variants (docs/theory.md section 8, claims 4-6), measured on the
//! simulator at D = 500, t = 1000 (5e5 steps per run), one replica each: the replica spread
//! measured with 2-4 replicas is at most 0.02 in eg, far below every margin used here.

use ae_core::averages::ActivationKind;
use ae_runtime::data::{eigenvectors, Dim, EigenFamily, Spiked, Weights};
use ae_runtime::sgd::{sample_rng, test_set, Rule, Sgd, SgdConfig, SpikedSampler};
use aedyn::compare::decoder_overlaps;

const D: usize = 500;
const T: f64 = 1000.0;
const SPIKES: [f64; 3] = [9.0, 3.0, 1.0];

fn data() -> Spiked {
    Spiked {
        d: Dim::Finite(D),
        spikes: SPIKES.to_vec(),
        sigma: 1.0,
    }
}

/// Trains from the seeded i.i.d. start (std 0.1) for time T; returns the run and the spikes.
fn train(config: SgdConfig, k: usize, family: EigenFamily, seed: u64) -> (Sgd, Vec<Vec<f64>>) {
    let eig = eigenvectors(family, SPIKES.len(), D, seed);
    let mut sgd = Sgd::new(config, &Weights::random(k, D, 0.1, seed), vec![]);
    let mut sampler = SpikedSampler::new(eig.clone(), &SPIKES, 1.0);
    let mut rng = sample_rng(seed, 0);
    sgd.run(&mut sampler, &mut rng, (T * D as f64) as u64);
    (sgd, eig)
}

/// eg on 20 000 held-out samples: its standard error is below 0.5% of eg (the per-sample loss
/// has a standard deviation comparable to its mean over D = 500 coordinates).
fn eg(sgd: &Sgd, eig: &[Vec<f64>]) -> f64 {
    let mut sampler = SpikedSampler::new(eig.to_vec(), &SPIKES, 1.0);
    sgd.test_error(&test_set(&mut sampler, 99, 20_000).unwrap())
}

#[test]
fn truncated_sgd_learns_the_eigenvectors_and_vanilla_a_rotation() {
    // Claim 6, sinusoidal eigenvectors, erf, K = M = 3. Both rules reach the rank-3 PCA error:
    // eg within a fifth of the gap between the rank-2 and rank-3 PCA errors (0.1). The ODEs are
    // 0.01 above PCA(3) at t = 1000 (erf approaches it as t^(-2/3)), and SGD at constant
    // learning rate and D = 500 keeps a noise floor above the ODE that grows with the decoder
    // norm b: measured 0.057 (truncated) and 0.027 (vanilla) above PCA(3); the largest
    // off-diagonal overlap of vanilla was 0.82, every one of truncated below 0.01.
    let pca = data();
    let gap = pca.pca_error(2) - pca.pca_error(3);
    let mut overlaps = Vec::new();
    for rule in [Rule::Truncated, Rule::Vanilla] {
        let config = SgdConfig {
            rule,
            ..SgdConfig::vanilla(ActivationKind::Erf)
        };
        let (sgd, eig) = train(config, 3, EigenFamily::Sinusoidal, 5);
        let e = eg(&sgd, &eig);
        assert!(
            e - pca.pca_error(3) < 0.2 * gap,
            "{rule:?}: eg {e}, PCA(3) {}",
            pca.pca_error(3)
        );
        overlaps.push(decoder_overlaps(&sgd.weights(), &eig));
    }
    // Truncated: the overlap matrix is the identity up to signs within 0.05 (the decoders'
    // bulk components, O(1/sqrt(D)) of their norm, and the last slow alignment steps).
    for (k, row) in overlaps[0].iter().enumerate() {
        for (m, o) in row.iter().enumerate() {
            let want = if k == m { 1.0 } else { 0.0 };
            assert!((o - want).abs() < 0.05, "truncated overlaps {:?}", overlaps[0]);
        }
    }
    // Vanilla learns the same subspace in a rotated basis: some off-diagonal entry above 0.2.
    let off = (0..3)
        .flat_map(|k| (0..3).filter(move |m| *m != k).map(move |m| (k, m)))
        .map(|(k, m)| overlaps[1][k][m])
        .fold(0.0, f64::max);
    assert!(off > 0.2, "vanilla overlaps {:?}", overlaps[1]);
}

#[test]
fn tied_erf_stays_far_above_the_pca_error() {
    // Claim 4. Measured (2 replicas): tied 2.83 +- 0.02, untied 0.526, PCA(3) 0.497, PCA(1)
    // 2.50. "Far above": the tied network does worse than even the rank-1 PCA error, while the
    // untied one is within a tenth of the rank-2/rank-3 gap of PCA(3).
    let pca = data();
    let gap = pca.pca_error(2) - pca.pca_error(3);
    let tied = SgdConfig {
        tied: true,
        ..SgdConfig::vanilla(ActivationKind::Erf)
    };
    let (sgd, eig) = train(tied, 3, EigenFamily::Random, 1);
    let e_tied = eg(&sgd, &eig);
    let (sgd, eig) = train(SgdConfig::vanilla(ActivationKind::Erf), 3, EigenFamily::Random, 1);
    let e_untied = eg(&sgd, &eig);
    assert!(e_tied > pca.pca_error(1), "tied {e_tied}, PCA(1) {}", pca.pca_error(1));
    assert!(e_untied - pca.pca_error(3) < 0.1 * gap, "untied {e_untied}");
}

#[test]
fn relu_needs_biases_or_more_units() {
    // Claim 5, ReLU, untied, K = M = 3. Measured: no bias 1.554, trained biases (from 0.5)
    // 0.975 (the rank-2 PCA error is 0.998) with biases 2.18, 2.16, 1.75, K = 6 without biases
    // 0.504 (PCA(3) 0.497).
    let pca = data();
    let (sgd, eig) = train(SgdConfig::vanilla(ActivationKind::Relu), 3, EigenFamily::Random, 1);
    let no_bias = eg(&sgd, &eig);
    let config = SgdConfig {
        train_bias: true,
        bias_init: 0.5,
        scaling: Default::default(),
        ..SgdConfig::vanilla(ActivationKind::Relu)
    };
    let (sgd, eig) = train(config, 3, EigenFamily::Random, 1);
    let with_bias = eg(&sgd, &eig);
    let biases = sgd.bias.clone();
    let (sgd, eig) = train(SgdConfig::vanilla(ActivationKind::Relu), 6, EigenFamily::Random, 1);
    let wide = eg(&sgd, &eig);
    // Without biases: well above the PCA error, at least 3/2 of the rank-2 PCA error.
    assert!(no_bias > 1.5 * pca.pca_error(2), "no bias {no_bias}");
    // With biases: clearly lower, at most the rank-2 PCA error plus 5% (test-set error 0.5%).
    assert!(with_bias < 1.05 * pca.pca_error(2), "bias {with_bias}");
    assert!(with_bias < no_bias - 0.3, "bias {with_bias}, no bias {no_bias}");
    // The biases end large and positive: each above its start of 0.5.
    assert!(biases.iter().all(|b| *b > 1.0), "biases {biases:?}");
    // K = 2M units: within 5% of PCA(3) (half of the excess left at t = 1000 by erf's slow
    // power law is 0.01 = 2%; the test-set error adds 0.5%).
    assert!(
        wide < 1.05 * pca.pca_error(3),
        "K = 6: {wide}, PCA(3) {}",
        pca.pca_error(3)
    );
}

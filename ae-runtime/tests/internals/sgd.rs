//! The SGD simulator against a naive reference step, in every variant, width and tile.

use ae_core::averages::{ActivationKind, Evaluate as _};
use ae_runtime::data::Weights;
use ae_runtime::data::{eigenvectors, EigenFamily};
use ae_runtime::internals::{GRAM_MAX_K, TILE};
use ae_runtime::sgd::*;

/// docs/theory.md section 3 written out naively, one neuron at a time, as the reference.
fn reference_step(config: &SgdConfig, w: &mut [Vec<f64>], v: &mut [Vec<f64>], bias: &mut [f64], x: &[f64]) {
    let (k, d) = (w.len(), x.len());
    // Rescaled: lambda = w.x/sqrt(D), steps eta/D, v.delta/D; standard: w.x, eta, v.delta.
    let (input, lr_d, overlap) = match config.scaling {
        Scaling::Rescaled => (1.0 / (d as f64).sqrt(), config.rates.lr / d as f64, d as f64),
        Scaling::Standard => (1.0, config.rates.lr, 1.0),
    };
    let act = config.activation;
    let lambda: Vec<f64> = (0..k)
        .map(|j| w[j].iter().zip(x).map(|(a, b)| a * b).sum::<f64>() * input + bias[j])
        .collect();
    let dec: Vec<Vec<f64>> = if config.tied { w.to_vec() } else { v.to_vec() };
    let (old_w, old_dec) = (w.to_vec(), dec.clone());
    for j in 0..k {
        let upto = if config.rule == Rule::Truncated { j + 1 } else { k };
        let delta: Vec<f64> = (0..d)
            .map(|i| x[i] - (0..upto).map(|a| old_dec[a][i] * act.g(lambda[a])).sum::<f64>())
            .collect();
        let vd = old_dec[j].iter().zip(&delta).map(|(a, b)| a * b).sum::<f64>() / overlap;
        let dec_step: Vec<f64> = delta.iter().map(|e| lr_d * act.g(lambda[j]) * e).collect();
        let enc_step: Vec<f64> = x.iter().map(|xi| lr_d * vd * act.dg(lambda[j]) * xi * input).collect();
        for i in 0..d {
            if config.tied {
                w[j][i] = old_w[j][i] + dec_step[i] + enc_step[i];
            } else {
                v[j][i] = old_dec[j][i] + dec_step[i];
                w[j][i] = old_w[j][i] + enc_step[i];
            }
        }
        if config.train_bias {
            bias[j] += lr_d * vd * act.dg(lambda[j]);
        }
    }
    let shrink = 1.0 - config.rates.kappa / d as f64;
    for row in w.iter_mut().chain(v.iter_mut()) {
        row.iter_mut().for_each(|x| *x *= shrink);
    }
}

/// Yields the given samples in turn.
struct Replay {
    xs: Vec<Vec<f64>>,
    next: usize,
}

impl Sampler for Replay {
    fn d(&self) -> usize {
        self.xs[0].len()
    }
    fn sample(&mut self, _rng: &mut SampleRng, x: &mut [f64]) {
        x.copy_from_slice(&self.xs[self.next % self.xs.len()]);
        self.next += 1;
    }
}

fn replay(xs: &[Vec<f64>]) -> Replay {
    Replay {
        xs: xs.to_vec(),
        next: 0,
    }
}

fn samples(n: usize, d: usize) -> Vec<Vec<f64>> {
    (0..n)
        .map(|s| (0..d).map(|i| (((i + 3 * s) * 7 % 11) as f64 - 5.0) / 3.0).collect())
        .collect()
}

fn every_config() -> Vec<SgdConfig> {
    let mut configs = vec![];
    for rule in [Rule::Vanilla, Rule::Truncated] {
        for tied in [false, true] {
            for train_bias in [false, true] {
                for activation in [ActivationKind::Erf, ActivationKind::Relu, ActivationKind::Tanh] {
                    for kappa in [0.3, 0.0] {
                        // Standard steps are not divided by D: a smaller rate keeps four
                        // steps on numbers of order one.
                        for (scaling, lr) in [(Scaling::Rescaled, 0.8), (Scaling::Standard, 0.002)] {
                            configs.push(SgdConfig {
                                activation: activation.into(),
                                rule,
                                rates: Rates { lr, kappa },
                                tied,
                                train_bias,
                                bias_init: 0.0,
                                scaling,
                            });
                        }
                    }
                }
            }
        }
    }
    configs
}

fn bits(sgd: &Sgd) -> Vec<u64> {
    let (w, v, bias, _) = sgd.raw_state();
    w.iter().chain(v).chain(bias).map(|x| x.to_bits()).collect()
}

/// `step`, and `run` (whose updates land in the next step's pass), against the naive
/// update. Shapes: a short row (whole blocks and single columns) at K = 3, the narrowest
/// and widest fused networks, a network wide enough to take the tile pass and the second
/// read of the decoder, and rows of several tiles.
/// Tolerance 1e-12: the same operations on numbers of order one, summed in other orders.
#[test]
fn every_rule_matches_the_reference_update() {
    for (k, d) in [
        (3, 37),
        (1, 37),
        (GRAM_MAX_K, 37),
        (GRAM_MAX_K + 2, 37),
        (3, 2 * TILE + 88),
    ] {
        let weights = Weights::random(k, d, 0.5, 4);
        let bias: Vec<f64> = (0..k).map(|j| 0.1 * j as f64 - 0.2).collect();
        let xs = samples(4, d);
        for config in every_config() {
            let (mut w, mut v, mut b) = (weights.w.clone(), weights.v.clone(), bias.clone());
            let mut stepped = Sgd::new(config.clone(), &weights, bias.clone());
            for x in &xs {
                stepped.step(x);
                reference_step(&config, &mut w, &mut v, &mut b, x);
            }
            let mut ran = Sgd::new(config.clone(), &weights, bias.clone());
            let mut rng = sample_rng(0, 0);
            ran.run(&mut replay(&xs), &mut rng, xs.len() as u64);
            let expect_v = if config.tied { w.clone() } else { v.clone() };
            for (how, sgd) in [("step", &stepped), ("run", &ran)] {
                let got = sgd.weights();
                for (a, e) in got
                    .w
                    .iter()
                    .flatten()
                    .zip(w.iter().flatten())
                    .chain(got.v.iter().flatten().zip(expect_v.iter().flatten()))
                {
                    assert!(
                        (a - e).abs() <= 1e-12 * e.abs().max(1.0),
                        "{how} K={k} D={d} {config:?}: {a} vs {e}"
                    );
                }
                if config.train_bias {
                    for (a, e) in sgd.raw_state().2.iter().zip(&b) {
                        assert!((a - e).abs() <= 1e-12, "{how} bias {a} vs {e}");
                    }
                }
                assert_eq!(sgd.steps, xs.len() as u64);
            }
        }
    }
}

/// A run split into pieces ends on the same bits as one run: the update pending at the
/// end of a piece is applied by the same operations as inside a run.
#[test]
fn split_runs_equal_one_run() {
    let (k, d) = (3, 300);
    let weights = Weights::random(k, d, 0.5, 5);
    let xs = samples(7, d);
    for config in every_config() {
        let mut whole = Sgd::new(config.clone(), &weights, vec![]);
        let mut pieces = whole.clone();
        let mut rng = sample_rng(0, 0);
        whole.run(&mut replay(&xs), &mut rng, 7);
        let mut pieces_replay = replay(&xs);
        for n in [1, 0, 2, 4] {
            pieces.run(&mut pieces_replay, &mut rng, n);
        }
        assert_eq!(bits(&whole), bits(&pieces), "{config:?}");
    }
}

/// The carried Gram matrix stays the decoder's own over many steps, across refreshes, for
/// every rule, tie and decay (K = 3, D = 37, 200 steps: three refreshes): within 1e-12
/// relative of the rows' products summed afresh (carrying adds about 1e-16 relative a step).
#[test]
fn the_carried_gram_matrix_is_the_decoder_s_own() {
    let (k, d) = (3, 37);
    let weights = Weights::random(k, d, 0.5, 9);
    let xs = samples(200, d);
    for config in every_config() {
        let mut sgd = Sgd::new(config.clone(), &weights, vec![]);
        let mut rng = sample_rng(0, 0);
        for chunk in xs.chunks(7) {
            sgd.run(&mut replay(chunk), &mut rng, chunk.len() as u64);
            let rows = sgd.weights().v;
            let scale = rows.iter().map(|r| dot(r, r)).fold(0.0, f64::max);
            for i in 0..k {
                for j in 0..k {
                    let exact = dot(&rows[i], &rows[j]);
                    let carried = sgd.raw_state().3[i * k + j];
                    assert!(
                        (carried - exact).abs() <= 1e-12 * scale,
                        "{config:?} after {} steps: G[{i}][{j}] {carried} vs {exact}",
                        sgd.steps
                    );
                }
            }
        }
    }
}

/// Over many steps the run stays on the naive update's trajectory: 200 steps at K = 3 and
/// D = 37 (several refreshes of the Gram matrix), for every configuration, within 1e-9
/// (the two differ by rounding, about 1e-16 a step, which 200 steps of a contracting
/// update do not amplify beyond that).
#[test]
fn long_runs_follow_the_reference_update() {
    let (k, d) = (3, 37);
    let weights = Weights::random(k, d, 0.5, 4);
    let xs = samples(200, d);
    for config in every_config() {
        let (mut w, mut v, mut b) = (weights.w.clone(), weights.v.clone(), vec![0.0; k]);
        for x in &xs {
            reference_step(&config, &mut w, &mut v, &mut b, x);
        }
        let mut ran = Sgd::new(config.clone(), &weights, vec![0.0; k]);
        let mut rng = sample_rng(0, 0);
        ran.run(&mut replay(&xs), &mut rng, xs.len() as u64);
        let expect_v = if config.tied { w.clone() } else { v.clone() };
        let got = ran.weights();
        for (a, e) in got
            .w
            .iter()
            .flatten()
            .zip(w.iter().flatten())
            .chain(got.v.iter().flatten().zip(expect_v.iter().flatten()))
        {
            assert!((a - e).abs() <= 1e-9 * e.abs().max(1.0), "{config:?}: {a} vs {e}");
        }
    }
}

/// The vectorised tile pass of wide networks (AVX2 where the CPU has it, as on the
/// machines this runs on) and the portable one give the same bits (the fused pass of
/// narrow ones has its own test in `fused`).
#[test]
fn the_vector_pass_equals_the_portable_pass() {
    let (k, d) = (GRAM_MAX_K + 2, TILE + 13);
    let weights = Weights::random(k, d, 0.5, 6);
    let xs = samples(5, d);
    for config in every_config() {
        let mut dispatched = Sgd::new(config.clone(), &weights, vec![]);
        let mut portable = dispatched.clone();
        let mut rng = sample_rng(0, 0);
        dispatched.run(&mut replay(&xs), &mut rng, xs.len() as u64);
        portable.advance_portable(Some(&xs[0]), None);
        for pair in xs.windows(2) {
            portable.advance_portable(Some(&pair[1]), Some(&pair[0]));
        }
        portable.advance_portable(None, xs.last().map(|x| x.as_slice()));
        assert_eq!(bits(&dispatched), bits(&portable), "{config:?}");
    }
}

/// A standard network and its rescaled weights compute the same function (so the order
/// parameters of `rescaled_weights` measure a standard run); the first units' partial
/// reconstruction is the sum of their own terms.
#[test]
fn rescaled_weights_compute_the_same_reconstruction() {
    let (k, d) = (4, 50);
    let weights = Weights::random(k, d, 0.3, 8);
    let config = SgdConfig {
        scaling: Scaling::Standard,
        ..SgdConfig::vanilla(ActivationKind::Erf)
    };
    let standard = Sgd::new(config, &weights, vec![]);
    let rescaled = Sgd::new(
        SgdConfig::vanilla(ActivationKind::Erf),
        &standard.rescaled_weights(),
        vec![],
    );
    let x = &samples(1, d)[0];
    let (mut a, mut b, mut first, mut rest) = (vec![0.0; d], vec![0.0; d], vec![0.0; d], vec![0.0; d]);
    standard.reconstruct(x, &mut a);
    rescaled.reconstruct(x, &mut b);
    for (p, q) in a.iter().zip(&b) {
        // One product by sqrt(D) and one division by it: a few ulps.
        assert!((p - q).abs() <= 1e-13 * p.abs().max(1.0), "{p} vs {q}");
    }
    standard.reconstruct_first(2, x, &mut first);
    let tail = Sgd::new(
        SgdConfig {
            scaling: Scaling::Standard,
            ..SgdConfig::vanilla(ActivationKind::Erf)
        },
        &Weights {
            w: weights.w[2..].to_vec(),
            v: weights.v[2..].to_vec(),
        },
        vec![],
    );
    tail.reconstruct(x, &mut rest);
    for ((p, f), r) in a.iter().zip(&first).zip(&rest) {
        assert!((p - (f + r)).abs() <= 1e-13 * p.abs().max(1.0));
    }
    assert_eq!(
        standard.partial_test_error(k, std::slice::from_ref(x)),
        standard.test_error(std::slice::from_ref(x))
    );
}

#[test]
fn sanger_rows_converge_to_the_unit_leading_eigenvectors() {
    // docs/theory.md section 3: for K = 3 and spikes (9, 3, 1) rows reach +-e_m with |w| = 1 by t = 30
    // (da/dt = eta a (rho~_m - Y)). The tolerance 0.05 on the overlap covers the O(1/sqrt(D))
    // fluctuations of the stationary state at D = 400 and the slow tail of the third row.
    let (k, d) = (3, 400);
    let eig = eigenvectors(EigenFamily::Random, 3, d, 2);
    let config = SgdConfig {
        rule: Rule::Sanger,
        ..SgdConfig::vanilla(ActivationKind::Linear)
    };
    let mut sgd = Sgd::new(config, &Weights::random(k, d, 0.05, 3), vec![]);
    let mut sampler = SpikedSampler::new(eig.clone(), &[9.0, 3.0, 1.0], 1.0);
    let mut rng = sample_rng(3, 0);
    sgd.run(&mut sampler, &mut rng, 30 * d as u64);
    let w = sgd.weights().w;
    for m in 0..k {
        let overlap = dot(&w[m], &eig[m]).abs();
        let norm = dot(&w[m], &w[m]).sqrt();
        assert!(
            (overlap - 1.0).abs() < 0.05 && (norm - 1.0).abs() < 0.05,
            "row {m}: overlap {overlap}, norm {norm}"
        );
    }
}

/// A held-out set larger than any address space is an error the caller can report, not
/// the allocator's abort: 2^44 rows take 422 TB for their headers alone.
#[test]
fn a_test_set_that_cannot_be_held_is_an_error() {
    let eig = eigenvectors(EigenFamily::Random, 1, 100, 2);
    let mut sampler = SpikedSampler::new(eig, &[4.0], 1.0);
    assert!(test_set(&mut sampler, 1, 1 << 44).is_err());
    assert_eq!(test_set(&mut sampler, 1, 3).unwrap().len(), 3);
}

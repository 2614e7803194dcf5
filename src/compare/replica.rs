//! One SGD replica: its own sample stream from the shared initial weights, measured at every
//! output time.

use ae_runtime::data::Weights;
use ae_runtime::sgd::{sample_rng, test_set, Sgd};

use super::{decoder_overlaps, CompareJob, Measure};
use crate::error::RunError;
use crate::memory::cannot_hold;

/// What one replica measured, each by output time, and its final state.
#[derive(Clone)]
pub(super) struct ReplicaRecord {
    pub(super) observables: Vec<Vec<f64>>,
    pub(super) reconstructed: Vec<Vec<f64>>,
    pub(super) test_eg: Vec<f64>,
    pub(super) partial_eg: Vec<f64>,
    /// (|w_k|, |v_k|) in the run's own scaling.
    pub(super) norms: Vec<(Vec<f64>, Vec<f64>)>,
    pub(super) bias: Vec<f64>,
    pub(super) overlaps: Vec<Vec<f64>>,
    pub(super) images: Option<Images>,
}

/// Held-out samples and replica 0's final reconstructions of them, one image per row, and its
/// first decoder rows (the directions its first units write).
#[derive(Debug, Clone)]
pub struct Images {
    pub originals: Vec<Vec<f64>>,
    /// By all K neurons.
    pub full: Vec<Vec<f64>>,
    /// By the first `partial_units` neurons alone (empty without `--partial`).
    pub partial: Vec<Vec<f64>>,
    pub partial_units: usize,
    pub decoder: Vec<Vec<f64>>,
}

impl CompareJob {
    /// Runs replica `replica` from `weights` on its own sample stream, measuring at `steps`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn replica(
        &self,
        replica: usize,
        measure: &Measure,
        steps: &[u64],
        weights: &Weights,
        eig: &[Vec<f64>],
        tracked: usize,
        seed: u64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<ReplicaRecord, RunError> {
        let mut sgd = Sgd::new(self.sgd.clone(), weights, vec![]);
        let mut sampler = self.ode.source.sampler(eig, self.draw);
        let mut rng = sample_rng(seed, replica as u64);
        let test = test_set(sampler.as_mut(), seed, self.test_samples).map_err(|_| {
            cannot_hold(
                &format!(
                    "replica {replica}'s {} held-out samples of D = {}",
                    self.test_samples, sgd.d
                ),
                self.test_samples as f64 * sgd.d as f64 * 8.0,
            )
        })?;
        let mut record = ReplicaRecord {
            observables: Vec::with_capacity(steps.len()),
            reconstructed: Vec::with_capacity(steps.len()),
            test_eg: Vec::new(),
            partial_eg: Vec::new(),
            norms: Vec::with_capacity(steps.len()),
            bias: vec![],
            overlaps: vec![],
            images: None,
        };
        for &s in steps {
            if ae_runtime::interrupt::requested() {
                // `run_with_progress` turns the cut-short records into an error.
                break;
            }
            let n = s.saturating_sub(sgd.steps);
            sgd.run(sampler.as_mut(), &mut rng, n);
            progress(n);
            let (mut o, r) = measure.observe(&sgd.rescaled_weights(), eig);
            let held_out = (!test.is_empty()).then(|| sgd.test_error(&test));
            if let (true, Some(eg)) = (self.sgd.train_bias, held_out) {
                // The order parameters do not see the biases: eg from the test set.
                o[measure.eg_column] = eg;
            }
            record.observables.push(o);
            record.reconstructed.push(r);
            record.norms.push(sgd.norms());
            record.test_eg.extend(held_out);
            if let Some(units) = self.partial {
                record.partial_eg.push(sgd.partial_test_error(units, &test));
            }
        }
        record.overlaps = decoder_overlaps(&sgd.weights(), &eig[..tracked]);
        record.bias = sgd.bias.clone();
        if replica == 0 && self.images > 0 {
            let originals: Vec<Vec<f64>> = test[..self.images].to_vec();
            let reconstruct = |units: usize| {
                originals
                    .iter()
                    .map(|x| {
                        let mut out = vec![0.0; sgd.d];
                        sgd.reconstruct_first(units, x, &mut out);
                        out
                    })
                    .collect::<Vec<_>>()
            };
            let partial_units = self.partial.unwrap_or(0);
            record.images = Some(Images {
                full: reconstruct(sgd.k),
                partial: if partial_units > 0 {
                    reconstruct(partial_units)
                } else {
                    vec![]
                },
                partial_units,
                decoder: sgd.weights().v.into_iter().take(self.images).collect(),
                originals,
            });
        }
        Ok(record)
    }
}

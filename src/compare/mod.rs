//! ODE against SGD on the same configuration: the ODE from the order parameters of the initial
//! weights, and N SGD replicas from those very weights on independent sample streams, run in
//! parallel. Writes one CSV with eg from both sides, the PCA errors and the order parameters.
//! Without the ODE (`aedyn sgd`) the same replicas run alone, in either scaling, and can also
//! report partial reconstructions, weight norms and reconstructed images.

mod measure;
mod output;
mod replica;

use std::sync::Arc;

use ae_dsl::ir::Input;
use ae_runtime::data::{Draw, Weights};
use ae_runtime::sgd::{Scaling, SgdConfig};

use crate::error::RunError;
use crate::run::{ModelHandle, OdeJob, OdeRun};
use crate::source::{DataSource, InitChoice};

pub use measure::Measure;
pub use output::{mean_std, CompareRun, ReplicaObservables};
pub use replica::Images;
use replica::ReplicaRecord;

/// What `aedyn compare` runs.
#[derive(Debug, Clone)]
pub struct CompareJob {
    pub ode: OdeJob,
    /// Number of SGD replicas (independent sample streams from the same initial weights).
    pub seeds: usize,
    pub sgd: SgdConfig,
    /// Worker threads for the replicas (0: all cores).
    pub threads: usize,
    /// Size of a held-out test set for a Monte-Carlo eg of each replica (0: none).
    pub test_samples: usize,
    /// How SGD draws from empirical data (the spiked model draws its own Gaussian samples).
    pub draw: Draw,
    /// Seed of the SGD sample streams: replica r draws stream r of it.
    pub sample_seed: u64,
    /// Integrate the ODE beside the replicas (`compare`), or run the replicas alone (`sgd`).
    pub with_ode: bool,
    /// Also measure, on the held-out set, eg of the reconstruction by the first this many
    /// neurons alone.
    pub partial: Option<usize>,
    /// Keep this many held-out samples with replica 0's final reconstructions (0: none).
    pub images: usize,
}

/// |cos| between each decoder row (the direction a unit writes) and each direction in `eig`.
pub fn decoder_overlaps(weights: &Weights, eig: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>();
    weights
        .v
        .iter()
        .map(|v| {
            eig.iter()
                .map(|e| (dot(v, e) / (dot(v, v) * dot(e, e)).sqrt()).abs())
                .collect()
        })
        .collect()
}

/// `w_k = a_k e_k`, `v_k = b_k sqrt(D) e_k` (K <= M).
fn aligned_weights(eig: &[Vec<f64>], d: usize, a: &[f64], b: &[f64]) -> Result<Weights, RunError> {
    let k = a.len();
    if k > eig.len() {
        return Err(RunError::Input(format!(
            "an informed or aligned start needs K <= M (K = {k}, M = {})",
            eig.len()
        )));
    }
    let sq = (d as f64).sqrt();
    Ok(Weights {
        w: (0..k).map(|i| eig[i].iter().map(|e| a[i] * e).collect()).collect(),
        v: (0..k).map(|i| eig[i].iter().map(|e| b[i] * sq * e).collect()).collect(),
    })
}

impl CompareJob {
    /// One SGD replica of `ode` on `sgd`'s rules, on all cores, without a test set; the sample
    /// streams come from the start's seed (or the eigenvectors' seed for other starts), as on
    /// the command line.
    pub fn new(ode: OdeJob, sgd: SgdConfig) -> CompareJob {
        let sample_seed = match (&ode.init, &ode.source) {
            (InitChoice::Random { seed, .. }, _) => *seed,
            (_, DataSource::Spiked { eigen_seed, .. }) => *eigen_seed,
            (_, DataSource::Empirical(_)) => 0,
        };
        CompareJob {
            ode,
            seeds: 1,
            sgd,
            threads: 0,
            test_samples: 0,
            draw: Draw::Online,
            sample_seed,
            with_ode: true,
            partial: None,
            images: 0,
        }
    }

    /// What the held-out set must hold: the samples `images` shows, and any at all for
    /// `partial` (checked by the command line before the run, and by the run itself).
    pub fn check_held_out(&self) -> Result<(), RunError> {
        if self.images > self.test_samples {
            return Err(RunError::Input(format!(
                "--images shows held-out samples: give --test-samples of at least {}",
                self.images
            )));
        }
        if self.partial.is_some() && self.test_samples == 0 {
            return Err(RunError::Input(
                "--partial is measured on a held-out set: give --test-samples (e.g. 2000)".into(),
            ));
        }
        Ok(())
    }

    pub fn d(&self) -> Result<usize, RunError> {
        self.ode.source.finite_d("compare")
    }

    /// The initial weights every replica starts from (the ODE starts from their order parameters).
    pub fn initial_weights(&self, eig: &[Vec<f64>]) -> Result<Weights, RunError> {
        let d = self.d()?;
        let k = self.ode.k;
        Ok(match &self.ode.init {
            InitChoice::Random { seed, std } => Weights::random(k, d, *std, *seed),
            InitChoice::Weights(w) => w.clone(),
            InitChoice::Informed { a, b } => aligned_weights(eig, d, &vec![*a; k], &vec![*b; k])?,
            InitChoice::Aligned { a, b } => aligned_weights(eig, d, a, b)?,
        })
    }

    pub fn run(&self) -> Result<CompareRun, RunError> {
        self.run_with_progress(&|_| {})
    }

    /// Runs, reporting every batch of SGD steps done (summed over replicas) to `progress`.
    pub fn run_with_progress(&self, progress: &(dyn Fn(u64) + Sync)) -> Result<CompareRun, RunError> {
        let d = self.d()?;
        let source = &self.ode.source;
        let (m, eig) = (source.tracked_modes(self.ode.k), source.eigenvectors(d));
        if self.sgd.train_bias && self.test_samples == 0 {
            return Err(RunError::Input(
                "with trained biases eg is measured on a test set: give --test-samples (e.g. 10000)".into(),
            ));
        }
        let weights = self.initial_weights(&eig)?;
        let ode = self.ode_side(&weights)?;
        self.check_held_out()?;
        // The SGD side is measured with the vanilla equations' observables, whatever ODE file
        // runs: they are exact functions of the weights' order parameters.
        let measure = Arc::new(Measure::new(&self.ode)?);
        let steps: Vec<u64> = self.ode.times.iter().map(|t| (t * d as f64).round() as u64).collect();
        let records = self.all_replicas(&measure, &steps, &weights, &eig, m, progress)?;
        if ae_runtime::interrupt::requested() {
            return Err(RunError::Interrupted);
        }
        let mut run = self.gather(records, &measure)?;
        run.pca = source.pca_errors(m);
        if let Some((handle, column, ode_run)) = ode {
            // From equations whose state holds the per-mode overlaps (not, say, the reduced ones).
            run.ode_spikes = handle.carries(&[Input::Omega0, Input::Varpi0]).then(|| {
                ode_run
                    .trajectory
                    .states
                    .iter()
                    .map(|y| {
                        ae_runtime::measure::top_mode_reconstruction(
                            handle.activation(),
                            &handle.order_parameters(y),
                            &handle.rho,
                            m,
                        )
                    })
                    .collect()
            });
            run.ode = Some(ode_run);
            run.ode_eg_column = column;
        }
        Ok(run)
    }

    /// The ODE's equations, compiled once and checked before anything runs, and their run from
    /// the order parameters of `weights` (none for `sgd`).
    fn ode_side(&self, weights: &Weights) -> Result<Option<(ModelHandle, usize, OdeRun)>, RunError> {
        if !self.with_ode {
            return Ok(None);
        }
        if self.sgd.scaling != Scaling::Rescaled {
            return Err(RunError::Input(
                "the ODE describes rescaled SGD (docs/theory.md section 3): run other scalings with `aedyn sgd`".into(),
            ));
        }
        let handle = OdeJob {
            init: InitChoice::Weights(weights.clone()),
            ..self.ode.clone()
        }
        .load()?;
        let ode_eg_column = handle.require_eg("compare")?;
        let run = handle.integrate(&self.ode.times, &self.ode.solver, |_| {})?;
        Ok(Some((handle, ode_eg_column, run)))
    }

    /// Every replica, on the worker threads, each taking the next replica not yet started.
    fn all_replicas(
        &self,
        measure: &Arc<Measure>,
        steps: &[u64],
        weights: &Weights,
        eig: &[Vec<f64>],
        m: usize,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<ReplicaRecord>, RunError> {
        let threads = worker_threads(self.threads, self.seeds);
        let mut results: Vec<Option<Result<ReplicaRecord, RunError>>> = (0..self.seeds).map(|_| None).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let seed = self.sample_seed;
        std::thread::scope(|scope| {
            let mut handles = Vec::new();
            for _ in 0..threads {
                let (measure, next) = (measure.clone(), &next);
                handles.push(scope.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let replica = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        if replica >= self.seeds {
                            break;
                        }
                        done.push((
                            replica,
                            self.replica(replica, &measure, steps, weights, eig, m, seed, progress),
                        ));
                    }
                    done
                }));
            }
            for h in handles {
                for (replica, record) in h.join().expect("an SGD worker panicked") {
                    results[replica] = Some(record);
                }
            }
        });
        results.into_iter().map(|r| r.expect("every replica ran")).collect()
    }

    /// The replicas' records as one run (without the ODE and the PCA errors); a diverged
    /// replica is an error, not NaN in the CSV (its eg would read as a number).
    fn gather(&self, records: Vec<ReplicaRecord>, measure: &Measure) -> Result<CompareRun, RunError> {
        let mut run = CompareRun::empty(self, measure);
        for (replica, record) in records.into_iter().enumerate() {
            let first_bad = record.observables.iter().zip(&self.ode.times).find_map(|(o, t)| {
                o.iter()
                    .position(|v| !v.is_finite())
                    .map(|j| (*t, measure.observable_names()[j].clone(), o[j]))
            });
            if let Some((t, name, value)) = first_bad {
                return Err(RunError::Diverged(format!(
                    "SGD replica {replica} diverged by t = {t}: {name} = {value} (lr = {}; a smaller --lr keeps it finite)",
                    self.sgd.rates.lr
                )));
            }
            run.final_bias.push(record.bias);
            run.final_overlaps.push(record.overlaps);
            run.sgd.push(record.observables);
            run.sgd_spikes.push(record.reconstructed);
            run.norms.push(record.norms);
            if !record.test_eg.is_empty() {
                run.sgd_test_eg.push(record.test_eg);
            }
            if !record.partial_eg.is_empty() {
                run.sgd_partial_eg.push(record.partial_eg);
            }
            run.images = run.images.or(record.images);
        }
        Ok(run)
    }
}

/// How many SGD replicas run at once: `requested` threads (0: one per core), no more than the
/// replicas, at least one.
pub fn worker_threads(requested: usize, seeds: usize) -> usize {
    let threads = if requested == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        requested
    };
    threads.min(seeds).max(1)
}

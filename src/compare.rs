//! ODE against SGD on the same configuration: the ODE from the order parameters of the initial
//! weights, and N SGD replicas from those very weights on independent sample streams, run in
//! parallel. Writes one CSV with eg from both sides, the PCA errors and the order parameters.

use std::sync::Arc;

use ae_runtime::data::Weights;
use ae_runtime::realdata::Draw;
use ae_runtime::sgd::{sample_rng, test_set, Sgd, SgdConfig};

use crate::run::{InitChoice, ModelHandle, OdeJob, OdeRun, RunError};
use crate::schema;
use crate::source::DataSource;
use ae_dsl::ir::Input;

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
}

/// One replica's observables, spike reconstructions and Monte-Carlo eg, each by time.
type ReplicaRecord = (Vec<Vec<f64>>, Vec<Vec<f64>>, Vec<f64>, Vec<f64>, Vec<Vec<f64>>);

/// Observables of every replica at every output time: `[replica][time][observable]`.
pub type ReplicaObservables = Vec<Vec<Vec<f64>>>;

pub struct CompareRun {
    pub ode: OdeRun,
    pub sgd: ReplicaObservables,
    /// Reconstructed fraction of each spike's variance: `[replica][time][spike]`.
    pub sgd_spikes: ReplicaObservables,
    /// The same from the ODE, `[time][spike]` (when the ODE file is spike+bulk vanilla).
    pub ode_spikes: Option<Vec<Vec<f64>>>,
    /// Monte-Carlo eg of each replica on the held-out set, `[replica][time]` (empty: none).
    pub sgd_test_eg: Vec<Vec<f64>>,
    pub pca: Vec<f64>,
    /// Each replica's biases at the end (zeros unless they are trained).
    pub final_bias: Vec<Vec<f64>>,
    /// Each replica's final |cos| between decoder row k and spike (or top eigenvector) m, K x M.
    pub final_overlaps: Vec<Vec<Vec<f64>>>,
    /// Names of the SGD side's observables (the measuring equations').
    pub sgd_names: Vec<String>,
    /// Columns of eg among the ODE's and the SGD side's observables.
    ode_eg_column: usize,
    sgd_eg_column: usize,
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
        }
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
        // The ODE's equations, compiled once and checked before anything runs.
        let handle = OdeJob {
            init: InitChoice::Weights(weights.clone()),
            ..self.ode.clone()
        }
        .load()?;
        let ode_eg_column = handle.require_eg("compare")?;
        let ode = handle.integrate(&self.ode.times, &self.ode.solver, |_| {})?;

        // The SGD side is measured with the vanilla equations' observables, whatever ODE file
        // runs: they are exact functions of the weights' order parameters.
        let measure = Arc::new(Measure::new(&self.ode)?);
        let steps: Vec<u64> = self.ode.times.iter().map(|t| (t * d as f64).round() as u64).collect();
        let threads = worker_threads(self.threads, self.seeds);
        let mut results: Vec<Option<ReplicaRecord>> = vec![None; self.seeds];
        let next = std::sync::atomic::AtomicUsize::new(0);
        let seed = self.sample_seed;
        std::thread::scope(|scope| {
            let mut handles = Vec::new();
            for _ in 0..threads {
                let (measure, steps, weights, eig, next) = (measure.clone(), &steps, &weights, &eig, &next);
                handles.push(scope.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let replica = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        if replica >= self.seeds {
                            break;
                        }
                        let mut sgd = Sgd::new(self.sgd.clone(), weights, vec![]);
                        let mut sampler = source.sampler(eig, self.draw);
                        let mut rng = sample_rng(seed, replica as u64);
                        let test = test_set(sampler.as_mut(), seed, self.test_samples);
                        let mut obs = Vec::with_capacity(steps.len());
                        let mut recon = Vec::with_capacity(steps.len());
                        let mut mc = Vec::new();
                        for &s in steps {
                            let n = s.saturating_sub(sgd.steps);
                            sgd.run(sampler.as_mut(), &mut rng, n);
                            progress(n);
                            let (mut o, r) = measure.observe(&sgd.weights(), eig);
                            if self.sgd.train_bias {
                                // The order parameters do not see the biases: eg from the test set.
                                o[measure.eg_column] = sgd.test_error(&test);
                            }
                            obs.push(o);
                            recon.push(r);
                            if !test.is_empty() {
                                mc.push(sgd.test_error(&test));
                            }
                        }
                        let overlaps = decoder_overlaps(&sgd.weights(), &eig[..m]);
                        done.push((replica, obs, recon, mc, sgd.bias.clone(), overlaps));
                    }
                    done
                }));
            }
            for h in handles {
                for (replica, obs, recon, mc, bias, overlaps) in h.join().expect("an SGD worker panicked") {
                    results[replica] = Some((obs, recon, mc, bias, overlaps));
                }
            }
        });
        let mut sgd = Vec::new();
        let mut sgd_spikes = Vec::new();
        let mut sgd_test_eg = Vec::new();
        let mut final_bias = Vec::new();
        let mut final_overlaps = Vec::new();
        for (replica, (obs, recon, mc, bias, overlaps)) in
            results.into_iter().map(|r| r.expect("every replica ran")).enumerate()
        {
            // A diverged replica is an error, not NaN in the CSV (its eg would read as a number).
            let first_bad = obs.iter().zip(&self.ode.times).find_map(|(o, t)| {
                o.iter()
                    .position(|v| !v.is_finite())
                    .map(|j| (*t, measure.observable_names()[j].clone(), o[j]))
            });
            if let Some((t, name, value)) = first_bad {
                return Err(RunError::Diverged(format!(
                    "SGD replica {replica} diverged by t = {t}: {name} = {value} (lr = {}; a smaller --lr keeps it finite)",
                    self.sgd.lr
                )));
            }
            final_bias.push(bias);
            final_overlaps.push(overlaps);
            sgd.push(obs);
            sgd_spikes.push(recon);
            if !mc.is_empty() {
                sgd_test_eg.push(mc);
            }
        }
        let pca = source.pca_errors(m);
        // From equations whose state holds the per-mode overlaps (not, say, the reduced ones).
        let ode_spikes = handle.carries(&[Input::Omega0, Input::Varpi0]).then(|| {
            ode.trajectory
                .states
                .iter()
                .map(|y| spikes::reconstruction_top(self.ode.activation, &handle.order_parameters(y), &handle.rho, m))
                .collect()
        });
        Ok(CompareRun {
            ode,
            sgd,
            sgd_spikes,
            ode_spikes,
            sgd_test_eg,
            pca,
            final_bias,
            final_overlaps,
            sgd_names: measure.observable_names().to_vec(),
            ode_eg_column,
            sgd_eg_column: measure.eg_column,
        })
    }
}

/// Observables (eg and order parameters) of weights, through the equations the data call for
/// (see `DataSource::measure_equations`): exact functions of the weights' order parameters.
pub struct Measure {
    /// The measuring equations, compiled once (generated code where it exists: at K = 64,
    /// D = 1024 the interpreter needs about a second per measurement).
    handle: ModelHandle,
    source: DataSource,
    /// Modes whose reconstruction is tracked (the spikes, or the top K modes of real data).
    tracked: usize,
    eg_column: usize,
}

impl Measure {
    pub fn new(job: &OdeJob) -> Result<Measure, RunError> {
        let handle = OdeJob {
            equations: job.source.measure_equations().to_string(),
            // Observables do not depend on the learning rule's parameters; the bulk's are
            // the source's (set by `load`).
            params: vec![],
            interpret: false,
            ..job.clone()
        }
        .load()?;
        let eg_column = handle.require_eg("measuring SGD")?;
        Ok(Measure {
            tracked: job.source.tracked_modes(job.k),
            source: job.source.clone(),
            eg_column,
            handle,
        })
    }

    /// The observables and the reconstructed fraction of each tracked mode's variance.
    pub fn observe(&self, weights: &Weights, eig: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>) {
        let inputs = self.source.order_parameters(weights, eig);
        let y = self.handle.state_of(&inputs);
        let mut out = vec![0.0; self.handle.observable_names.len()];
        self.handle.kernel.observe(&y, &mut out);
        let recon = spikes::reconstruction_top(self.handle.activation(), &inputs, &self.handle.rho, self.tracked);
        (out, recon)
    }

    pub fn observable_names(&self) -> &[String] {
        &self.handle.observable_names
    }
}

/// Mean and (sample) standard deviation.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

impl CompareRun {
    /// Index of an observable by name on both sides (the ODE file's names).
    pub fn ode_index(&self, name: &str) -> Option<usize> {
        self.ode.observable_names.iter().position(|n| n == name)
    }

    /// Seed-averaged SGD eg at every output time.
    pub fn sgd_eg(&self) -> Vec<(f64, f64)> {
        let j = self.sgd_eg_column;
        (0..self.ode.trajectory.times.len())
            .map(|i| mean_std(&self.sgd.iter().map(|r| r[i][j]).collect::<Vec<_>>()))
            .collect()
    }

    pub fn ode_eg(&self) -> Vec<f64> {
        let i = self.ode_eg_column;
        self.ode.trajectory.observables.iter().map(|o| o[i]).collect()
    }

    /// Each replica's final decoder overlaps: columns replica, unit, then one per spike.
    pub fn write_overlaps_csv(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let m = self
            .final_overlaps
            .first()
            .and_then(|r| r.first())
            .map_or(0, |row| row.len());
        let mut header = vec![schema::REPLICA.to_string(), schema::UNIT.to_string()];
        header.extend((0..m).map(schema::spike_overlap));
        writeln!(out, "{}", header.join(","))?;
        for (r, matrix) in self.final_overlaps.iter().enumerate() {
            for (k, row) in matrix.iter().enumerate() {
                let cells: Vec<String> = row.iter().map(|v| format!("{v:e}")).collect();
                writeln!(out, "{r},{k},{}", cells.join(","))?;
            }
        }
        Ok(())
    }

    pub fn write_csv(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let sgd_names = &self.sgd_names;
        let mut header: Vec<String> = [schema::TIME, schema::EG_ODE, schema::EG_SGD_MEAN, schema::EG_SGD_STD]
            .map(String::from)
            .into();
        if !self.sgd_test_eg.is_empty() {
            header.push(schema::EG_SGD_TEST_MEAN.into());
        }
        header.extend((1..=self.pca.len()).map(schema::eg_pca));
        // Order parameters present on both sides, ODE then SGD mean.
        let shared: Vec<(usize, usize, &String)> = sgd_names
            .iter()
            .enumerate()
            .skip(1)
            .filter_map(|(j, n)| self.ode_index(n).map(|i| (i, j, n)))
            .collect();
        for (_, _, n) in &shared {
            header.push(schema::ode_column(n));
            header.push(schema::sgd_column(n));
        }
        for m in 1..=self.pca.len() {
            if self.ode_spikes.is_some() {
                header.push(schema::spike_reconstructed(m, true));
            }
            header.push(schema::spike_reconstructed(m, false));
        }
        writeln!(out, "{}", header.join(","))?;
        let eg_sgd = self.sgd_eg();
        let eg_ode = self.ode_eg();
        for (i, t) in self.ode.trajectory.times.iter().enumerate() {
            let mut row = vec![
                format!("{t:e}"),
                format!("{:e}", eg_ode[i]),
                format!("{:e}", eg_sgd[i].0),
                format!("{:e}", eg_sgd[i].1),
            ];
            if !self.sgd_test_eg.is_empty() {
                let (mean, _) = mean_std(&self.sgd_test_eg.iter().map(|r| r[i]).collect::<Vec<_>>());
                row.push(format!("{mean:e}"));
            }
            row.extend(self.pca.iter().map(|p| format!("{p:e}")));
            for (oi, sj, _) in &shared {
                let (mean, _) = mean_std(&self.sgd.iter().map(|r| r[i][*sj]).collect::<Vec<_>>());
                row.push(format!("{:e}", self.ode.trajectory.observables[i][*oi]));
                row.push(format!("{mean:e}"));
            }
            for m in 0..self.pca.len() {
                if let Some(ode) = &self.ode_spikes {
                    row.push(format!("{:e}", ode[i][m]));
                }
                let (mean, _) = mean_std(&self.sgd_spikes.iter().map(|r| r[i][m]).collect::<Vec<_>>());
                row.push(format!("{mean:e}"));
            }
            writeln!(out, "{}", row.join(","))?;
        }
        Ok(())
    }
}

/// Per-spike reconstructed fraction of variance (see `ae_runtime::measure`) along a run.
pub mod spikes {
    use ae_runtime::averages::ActivationKind;
    use ae_runtime::interp::InitInputs;
    use ae_runtime::measure::mode_reconstruction;

    /// Q = sum_m rho_m omega omega^T + Qb from order-parameter inputs.
    pub fn q_matrix(inputs: &InitInputs, rho: &[f64]) -> Vec<Vec<f64>> {
        let k = inputs.k;
        (0..k)
            .map(|a| {
                (0..k)
                    .map(|b| {
                        inputs.qb0[a][b]
                            + rho
                                .iter()
                                .enumerate()
                                .map(|(m, r)| r * inputs.omega0[a][m] * inputs.omega0[b][m])
                                .sum::<f64>()
                    })
                    .collect()
            })
            .collect()
    }

    pub fn reconstruction(act: ActivationKind, inputs: &InitInputs, rho: &[f64]) -> Vec<f64> {
        mode_reconstruction(act, rho, &inputs.omega0, &inputs.varpi0, &q_matrix(inputs, rho))
    }

    /// Reconstruction of the first `tracked` modes, with Q from all of `rho`'s modes.
    pub fn reconstruction_top(act: ActivationKind, inputs: &InitInputs, rho: &[f64], tracked: usize) -> Vec<f64> {
        let q = q_matrix(inputs, rho);
        let cut = |m: &Vec<Vec<f64>>| m.iter().map(|r| r[..tracked].to_vec()).collect::<Vec<_>>();
        mode_reconstruction(act, &rho[..tracked], &cut(&inputs.omega0), &cut(&inputs.varpi0), &q)
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

//! ODE against SGD on the same configuration: the ODE from the order parameters of the initial
//! weights, and N SGD replicas from those very weights on independent sample streams, run in
//! parallel. Writes one CSV with eg from both sides, the PCA errors and the order parameters.
//! Without the ODE (`aedyn sgd`) the same replicas run alone, in either scaling, and can also
//! report partial reconstructions, weight norms and reconstructed images.

use std::sync::Arc;

use ae_runtime::data::Weights;
use ae_runtime::realdata::Draw;
use ae_runtime::sgd::{sample_rng, test_set, Scaling, Sgd, SgdConfig};

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
    /// Integrate the ODE beside the replicas (`compare`), or run the replicas alone (`sgd`).
    pub with_ode: bool,
    /// Also measure, on the held-out set, eg of the reconstruction by the first this many
    /// neurons alone.
    pub partial: Option<usize>,
    /// Keep this many held-out samples with replica 0's final reconstructions (0: none).
    pub images: usize,
}

/// What one replica measured, each by output time, and its final state.
#[derive(Clone)]
struct ReplicaRecord {
    observables: Vec<Vec<f64>>,
    reconstructed: Vec<Vec<f64>>,
    test_eg: Vec<f64>,
    partial_eg: Vec<f64>,
    /// (|w_k|, |v_k|) in the run's own scaling.
    norms: Vec<(Vec<f64>, Vec<f64>)>,
    bias: Vec<f64>,
    overlaps: Vec<Vec<f64>>,
    images: Option<Images>,
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

/// Observables of every replica at every output time: `[replica][time][observable]`.
pub type ReplicaObservables = Vec<Vec<Vec<f64>>>;

pub struct CompareRun {
    /// The output times (t = 0 first).
    pub times: Vec<f64>,
    /// The ODE's run (`compare`; none for `sgd`).
    pub ode: Option<OdeRun>,
    pub sgd: ReplicaObservables,
    /// Reconstructed fraction of each spike's variance: `[replica][time][spike]`.
    pub sgd_spikes: ReplicaObservables,
    /// The same from the ODE, `[time][spike]` (when the ODE file is spike+bulk vanilla).
    pub ode_spikes: Option<Vec<Vec<f64>>>,
    /// Monte-Carlo eg of each replica on the held-out set, `[replica][time]` (empty: none).
    pub sgd_test_eg: Vec<Vec<f64>>,
    /// The same for the first `partial` neurons' reconstruction (empty: none).
    pub sgd_partial_eg: Vec<Vec<f64>>,
    pub partial: Option<usize>,
    /// Each replica's (|w_k|, |v_k|) at every output time, `[replica][time]`.
    pub norms: Vec<Vec<(Vec<f64>, Vec<f64>)>>,
    /// Replica 0's reconstructions of held-out samples (when asked for).
    pub images: Option<Images>,
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
        // The ODE's equations, compiled once and checked before anything runs.
        let ode = if self.with_ode {
            if self.sgd.scaling != Scaling::Rescaled {
                return Err(RunError::Input(
                    "the ODE describes rescaled SGD (SPEC section 3): run other scalings with `aedyn sgd`".into(),
                ));
            }
            let handle = OdeJob {
                init: InitChoice::Weights(weights.clone()),
                ..self.ode.clone()
            }
            .load()?;
            let ode_eg_column = handle.require_eg("compare")?;
            let run = handle.integrate(&self.ode.times, &self.ode.solver, |_| {})?;
            Some((handle, ode_eg_column, run))
        } else {
            None
        };
        self.check_held_out()?;

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
        let mut sgd = Vec::new();
        let mut sgd_spikes = Vec::new();
        let mut sgd_test_eg = Vec::new();
        let mut sgd_partial_eg = Vec::new();
        let mut norms = Vec::new();
        let mut final_bias = Vec::new();
        let mut final_overlaps = Vec::new();
        let mut images = None;
        for (replica, record) in results.into_iter().map(|r| r.expect("every replica ran")).enumerate() {
            // A diverged replica is an error, not NaN in the CSV (its eg would read as a number).
            let first_bad = record.observables.iter().zip(&self.ode.times).find_map(|(o, t)| {
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
            final_bias.push(record.bias);
            final_overlaps.push(record.overlaps);
            sgd.push(record.observables);
            sgd_spikes.push(record.reconstructed);
            norms.push(record.norms);
            if !record.test_eg.is_empty() {
                sgd_test_eg.push(record.test_eg);
            }
            if !record.partial_eg.is_empty() {
                sgd_partial_eg.push(record.partial_eg);
            }
            images = images.or(record.images);
        }
        let pca = source.pca_errors(m);
        let (ode, ode_eg_column, ode_spikes) = match ode {
            Some((handle, column, run)) => {
                // From equations whose state holds the per-mode overlaps (not, say, the reduced ones).
                let spikes = handle.carries(&[Input::Omega0, Input::Varpi0]).then(|| {
                    run.trajectory
                        .states
                        .iter()
                        .map(|y| {
                            spikes::reconstruction_top(self.ode.activation, &handle.order_parameters(y), &handle.rho, m)
                        })
                        .collect()
                });
                (Some(run), column, spikes)
            }
            None => (None, 0, None),
        };
        Ok(CompareRun {
            times: self.ode.times.clone(),
            ode,
            sgd,
            sgd_spikes,
            ode_spikes,
            sgd_test_eg,
            sgd_partial_eg,
            partial: self.partial,
            norms,
            images,
            pca,
            final_bias,
            final_overlaps,
            sgd_names: measure.observable_names().to_vec(),
            ode_eg_column,
            sgd_eg_column: measure.eg_column,
        })
    }
}

impl CompareJob {
    /// Runs replica `replica` from `weights` on its own sample stream, measuring at `steps`.
    #[allow(clippy::too_many_arguments)]
    fn replica(
        &self,
        replica: usize,
        measure: &Measure,
        steps: &[u64],
        weights: &Weights,
        eig: &[Vec<f64>],
        tracked: usize,
        seed: u64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> ReplicaRecord {
        let mut sgd = Sgd::new(self.sgd.clone(), weights, vec![]);
        let mut sampler = self.ode.source.sampler(eig, self.draw);
        let mut rng = sample_rng(seed, replica as u64);
        let test = test_set(sampler.as_mut(), seed, self.test_samples);
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
        record
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

/// Order parameters are written as SGD-only columns up to this K (5 matrices of K^2 entries
/// each: at K = 64 they would be 20 000 columns).
const SGD_ONLY_OBSERVABLES_MAX_K: usize = 8;

impl CompareRun {
    /// Index of an observable by name on both sides (the ODE file's names).
    pub fn ode_index(&self, name: &str) -> Option<usize> {
        self.ode.as_ref()?.observable_names.iter().position(|n| n == name)
    }

    /// Seed-averaged SGD eg at every output time.
    pub fn sgd_eg(&self) -> Vec<(f64, f64)> {
        let j = self.sgd_eg_column;
        (0..self.times.len())
            .map(|i| mean_std(&self.sgd.iter().map(|r| r[i][j]).collect::<Vec<_>>()))
            .collect()
    }

    /// eg from the ODE at every output time (empty without the ODE).
    pub fn ode_eg(&self) -> Vec<f64> {
        let i = self.ode_eg_column;
        self.ode.as_ref().map_or_else(Vec::new, |ode| {
            ode.trajectory.observables.iter().map(|o| o[i]).collect()
        })
    }

    /// Mean over replicas of `value(replica)` at output `i`.
    fn replica_mean<T>(records: &[Vec<T>], i: usize, value: impl Fn(&T) -> f64) -> f64 {
        mean_std(&records.iter().map(|r| value(&r[i])).collect::<Vec<_>>()).0
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

    /// Replica 0's held-out samples, their reconstructions and its first decoder rows, one
    /// image per row: columns `image` (original, all, first<M> or decoder), `index`, then the
    /// D pixels.
    pub fn write_images_csv(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let Some(images) = &self.images else {
            return Ok(());
        };
        let d = images.originals.first().map_or(0, Vec::len);
        let mut header = vec![schema::IMAGE.to_string(), schema::INDEX.to_string()];
        header.extend((0..d).map(schema::pixel));
        writeln!(out, "{}", header.join(","))?;
        let partial = schema::partial_image(images.partial_units);
        for (what, rows) in [
            (schema::IMAGE_ORIGINAL, &images.originals),
            (schema::IMAGE_ALL, &images.full),
            (partial.as_str(), &images.partial),
            (schema::IMAGE_DECODER, &images.decoder),
        ] {
            for (i, row) in rows.iter().enumerate() {
                let cells: Vec<String> = row.iter().map(|v| format!("{v:e}")).collect();
                writeln!(out, "{what},{i},{}", cells.join(","))?;
            }
        }
        Ok(())
    }

    pub fn write_csv(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let k = self.norms.first().and_then(|r| r.first()).map_or(0, |(w, _)| w.len());
        let ode_names = self.ode.as_ref().map(|o| &o.observable_names[..]);
        let (header, shared) = header(&HeaderParts {
            sgd_names: &self.sgd_names,
            ode_names,
            pca: self.pca.len(),
            test: !self.sgd_test_eg.is_empty(),
            partial: self.partial,
            ode_spikes: self.ode_spikes.is_some(),
            k,
        });
        let with_norms = self.ode.is_none();
        writeln!(out, "{}", header.join(","))?;
        let eg_sgd = self.sgd_eg();
        let eg_ode = self.ode_eg();
        for (i, t) in self.times.iter().enumerate() {
            let mut row = vec![format!("{t:e}")];
            if let Some(eg) = eg_ode.get(i) {
                row.push(format!("{eg:e}"));
            }
            row.extend([format!("{:e}", eg_sgd[i].0), format!("{:e}", eg_sgd[i].1)]);
            if !self.sgd_test_eg.is_empty() {
                row.push(format!("{:e}", Self::replica_mean(&self.sgd_test_eg, i, |v| *v)));
            }
            if !self.sgd_partial_eg.is_empty() {
                row.push(format!("{:e}", Self::replica_mean(&self.sgd_partial_eg, i, |v| *v)));
            }
            row.extend(self.pca.iter().map(|p| format!("{p:e}")));
            for (oi, sj) in &shared {
                if let (Some(oi), Some(ode)) = (oi, &self.ode) {
                    row.push(format!("{:e}", ode.trajectory.observables[i][*oi]));
                }
                row.push(format!("{:e}", Self::replica_mean(&self.sgd, i, |o| o[*sj])));
            }
            for m in 0..self.pca.len() {
                if let Some(ode) = &self.ode_spikes {
                    row.push(format!("{:e}", ode[i][m]));
                }
                row.push(format!("{:e}", Self::replica_mean(&self.sgd_spikes, i, |r| r[m])));
            }
            if with_norms {
                for j in 0..k {
                    row.push(format!("{:e}", Self::replica_mean(&self.norms, i, |(w, _)| w[j])));
                }
                for j in 0..k {
                    row.push(format!("{:e}", Self::replica_mean(&self.norms, i, |(_, v)| v[j])));
                }
            }
            writeln!(out, "{}", row.join(","))?;
        }
        Ok(())
    }
}

/// What decides the columns of a `compare` or `sgd` CSV.
struct HeaderParts<'a> {
    /// The measuring equations' observables (eg first).
    sgd_names: &'a [String],
    /// The ODE's observables (`compare`), or none (`sgd`).
    ode_names: Option<&'a [String]>,
    /// PCA ranks 1..=pca.
    pca: usize,
    test: bool,
    partial: Option<usize>,
    /// Whether the ODE's state carries the per-mode overlaps (for its reconstructed fractions).
    ode_spikes: bool,
    k: usize,
}

/// The columns, and for each order parameter written its index on the ODE side (if any) and
/// on the SGD side.
fn header(p: &HeaderParts) -> (Vec<String>, Vec<(Option<usize>, usize)>) {
    let mut header: Vec<String> = vec![schema::TIME.into()];
    if p.ode_names.is_some() {
        header.push(schema::EG_ODE.into());
    }
    header.extend([schema::EG_SGD_MEAN, schema::EG_SGD_STD].map(String::from));
    if p.test {
        header.push(schema::EG_SGD_TEST_MEAN.into());
    }
    if let Some(units) = p.partial {
        header.push(schema::eg_sgd_partial(units));
    }
    header.extend((1..=p.pca).map(schema::eg_pca));
    // Order parameters: with the ODE those present on both sides, ODE then SGD mean;
    // without it the SGD means of narrow networks.
    let shared: Vec<(Option<usize>, usize)> = p
        .sgd_names
        .iter()
        .enumerate()
        .skip(1)
        .filter_map(|(j, n)| match p.ode_names {
            Some(ode) => ode.iter().position(|o| o == n).map(|i| (Some(i), j)),
            None => (p.k <= SGD_ONLY_OBSERVABLES_MAX_K).then_some((None, j)),
        })
        .collect();
    for (ode, j) in &shared {
        if ode.is_some() {
            header.push(schema::ode_column(&p.sgd_names[*j]));
        }
        header.push(schema::sgd_column(&p.sgd_names[*j]));
    }
    for m in 1..=p.pca {
        if p.ode_spikes {
            header.push(schema::spike_reconstructed(m, true));
        }
        header.push(schema::spike_reconstructed(m, false));
    }
    if p.ode_names.is_none() {
        header.extend((0..p.k).map(schema::encoder_norm));
        header.extend((0..p.k).map(schema::decoder_norm));
    }
    (header, shared)
}

impl CompareJob {
    /// The columns of the CSV this job writes, found by loading its equations, without
    /// running.
    pub fn header(&self) -> Result<Vec<String>, RunError> {
        let measure = Measure::new(&self.ode)?;
        let ode = if self.with_ode { Some(self.ode.load()?) } else { None };
        let k = self.ode.k;
        Ok(header(&HeaderParts {
            sgd_names: measure.observable_names(),
            ode_names: ode.as_ref().map(|h| &h.observable_names[..]),
            pca: self.ode.source.tracked_modes(k),
            test: self.test_samples > 0,
            partial: self.partial,
            ode_spikes: ode.as_ref().is_some_and(|h| h.carries(&[Input::Omega0, Input::Varpi0])),
            k,
        })
        .0)
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

//! Where a run's data come from, and everything a run asks of them: the dimension, the modes,
//! the eigenvectors, a sampler for SGD, the PCA errors and the initial order parameters.
//!
//! A new data model is a new variant here; the jobs (ODE, compare, reduced) ask the source
//! and never branch on what it is.

use std::sync::Arc;

use ae_dsl::Model;
use ae_runtime::data::{eigenvectors, Dim, EigenFamily, Spiked, Weights};
use ae_runtime::data::{DataSampler, Draw, RealData};
use ae_runtime::init;
use ae_runtime::interp::InitInputs;
use ae_runtime::sgd::{Sampler, SpikedSampler};

use crate::error::{input, RunError};

/// How the initial state is chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum InitChoice {
    /// I.i.d. N(0, std^2) weights from the seed (the same draw the simulator starts from).
    Random { seed: u64, std: f64 },
    /// w_k = a e_k, v_k = b sqrt(D) e_k.
    Informed { a: f64, b: f64 },
    /// Given weights (rows w_1..w_K then v_1..v_K).
    Weights(Weights),
    /// w_k = a_k e_k, v_k = b_k sqrt(D) e_k with a scale per unit (K <= M).
    Aligned { a: Vec<f64>, b: Vec<f64> },
}

/// The data a run learns from.
#[derive(Debug, Clone)]
pub enum DataSource {
    /// The spiked covariance model (docs/theory.md section 2): spikes on an isotropic bulk, with
    /// eigenvectors of the given family drawn from `eigen_seed`.
    Spiked {
        model: Spiked,
        family: EigenFamily,
        eigen_seed: u64,
    },
    /// An empirical data set (centred and scaled): every eigenmode of its covariance, no bulk.
    Empirical(Arc<RealData>),
}

/// Whether equations lump a bulk (spike+bulk form) or want every mode (full spectrum).
fn lumps_bulk(model: &Model) -> bool {
    model.param_index("rho_bulk").is_some()
}

/// Given weights must match the run's K and D.
fn check_weights(w: &Weights, k: usize, d: usize) -> Result<(), RunError> {
    if w.k() != k || w.d() != d {
        return input(format!(
            "the weights file has K = {}, D = {}, but the run has K = {k}, D = {d}",
            w.k(),
            w.d()
        ));
    }
    Ok(())
}

impl DataSource {
    /// The spiked model with random eigenvectors from `eigen_seed`.
    pub fn spiked(d: Dim, spikes: &[f64], sigma: f64, eigen_seed: u64) -> DataSource {
        DataSource::Spiked {
            model: Spiked {
                d,
                spikes: spikes.to_vec(),
                sigma,
            },
            family: EigenFamily::Random,
            eigen_seed,
        }
    }

    pub fn dim(&self) -> Dim {
        match self {
            DataSource::Spiked { model, .. } => model.d,
            DataSource::Empirical(real) => Dim::Finite(real.d),
        }
    }

    /// The dimension, which SGD (`what`) needs to be finite.
    pub fn finite_d(&self, what: &str) -> Result<usize, RunError> {
        match self.dim() {
            Dim::Finite(d) => Ok(d),
            Dim::Infinite => input(format!("{what} needs a finite --d (SGD runs in dimension D)")),
        }
    }

    /// The spiked model, for what only it has (the reduced equations, `--perfect`).
    pub fn as_spiked(&self) -> Option<&Spiked> {
        match self {
            DataSource::Spiked { model, .. } => Some(model),
            DataSource::Empirical(_) => None,
        }
    }

    pub fn as_empirical(&self) -> Option<&Arc<RealData>> {
        match self {
            DataSource::Spiked { .. } => None,
            DataSource::Empirical(real) => Some(real),
        }
    }

    /// The equations that describe the weights' observables exactly on these data: the
    /// spike+bulk vanilla file on the spiked model, the full spectrum on empirical data.
    pub fn measure_equations(&self) -> &'static str {
        match self {
            DataSource::Spiked { .. } => "vanilla",
            DataSource::Empirical(_) => "full_spectrum",
        }
    }

    /// Modes whose reconstruction is tracked for K units: the spikes, or the top K modes.
    pub fn tracked_modes(&self, k: usize) -> usize {
        match self {
            DataSource::Spiked { model, .. } => model.spikes.len(),
            DataSource::Empirical(real) => k.min(real.d),
        }
    }

    /// The parameters that describe the lumped bulk, for equations that declare them.
    pub fn bulk_params(&self) -> Vec<(String, f64)> {
        match self {
            DataSource::Spiked { model, .. } => vec![
                ("rho_bulk".to_string(), model.rho_bulk()),
                ("bulk_trace".to_string(), model.bulk_trace()),
            ],
            DataSource::Empirical(_) => vec![],
        }
    }

    /// Eigenvectors in dimension `d`: the spikes' directions, or every empirical eigenvector
    /// (largest eigenvalue first).
    pub fn eigenvectors(&self, d: usize) -> Vec<Vec<f64>> {
        match self {
            DataSource::Spiked {
                model,
                family,
                eigen_seed,
            } => eigenvectors(*family, model.spikes.len(), d, *eigen_seed),
            DataSource::Empirical(real) => real.eigenvectors.clone(),
        }
    }

    /// A fresh sample stream for SGD (`draw` says how empirical data are drawn).
    pub fn sampler(&self, eig: &[Vec<f64>], draw: Draw) -> Box<dyn Sampler> {
        match self {
            DataSource::Spiked { model, .. } => Box::new(SpikedSampler::new(eig.to_vec(), &model.spikes, model.sigma)),
            DataSource::Empirical(real) => Box::new(DataSampler::new(real.clone(), draw)),
        }
    }

    /// The error of PCA with r = 1..=m components.
    pub fn pca_errors(&self, m: usize) -> Vec<f64> {
        match self {
            DataSource::Spiked { model, .. } => (1..=m).map(|r| model.pca_error(r)).collect(),
            DataSource::Empirical(real) => (1..=m).map(|r| real.pca_error(r)).collect(),
        }
    }

    /// The order parameters of `weights` in the eigenbasis `eig` (see `eigenvectors`).
    pub fn order_parameters(&self, weights: &Weights, eig: &[Vec<f64>]) -> InitInputs {
        match self {
            DataSource::Spiked { model, .. } => init::from_weights(weights, eig, model),
            DataSource::Empirical(_) => init::from_weights_full(weights, eig),
        }
    }

    /// Modes (rescaled eigenvalues) and initial order parameters for `model` with K units.
    pub fn modes_and_init(
        &self,
        model: &Model,
        k: usize,
        start: &InitChoice,
    ) -> Result<(Vec<f64>, InitInputs), RunError> {
        match self {
            DataSource::Spiked {
                model: data,
                family,
                eigen_seed,
            } => spiked_modes_and_init(data, *family, *eigen_seed, model, k, start),
            DataSource::Empirical(real) => empirical_modes_and_init(real, model, k, start),
        }
    }

    /// One line about the data, for the run's report (empirical data only: the spiked model
    /// is what the options say).
    pub fn summary(&self) -> Option<String> {
        let real = self.as_empirical()?;
        Some(format!(
            "data: {}: {} samples, D = {} (centred, divided by {:.4} so that tr(Omega)/D = 1); top eigenvalue / D = {:.4}",
            real.source,
            real.rows.len(),
            real.d,
            real.scale,
            real.eigenvalues[0] / real.d as f64
        ))
    }
}

fn spiked_modes_and_init(
    data: &Spiked,
    family: EigenFamily,
    eigen_seed: u64,
    model: &Model,
    k: usize,
    start: &InitChoice,
) -> Result<(Vec<f64>, InitInputs), RunError> {
    let m = data.spikes.len();
    let lumped = lumps_bulk(model);
    let d = match data.d {
        Dim::Finite(d) => Some(d),
        Dim::Infinite => None,
    };
    let mut rho = data.spike_rho();
    match d {
        Some(d) if !lumped => rho.extend(std::iter::repeat_n(data.rho_bulk(), d - m)),
        None if !lumped => return input("equations without a lumped bulk need a finite --d (every mode is explicit)"),
        _ => {}
    }
    let inputs = match start {
        InitChoice::Informed { a, b } => {
            if k > m {
                return input(format!("--informed needs K <= M (K = {k}, M = {m})"));
            }
            init::informed(k, rho.len(), *a, *b)
        }
        InitChoice::Aligned { a, b } => {
            if k > m || a.len() != k || b.len() != k {
                return input(format!(
                    "an aligned start needs K <= M and one (a, b) per unit (K = {k}, M = {m}, {} a, {} b)",
                    a.len(),
                    b.len()
                ));
            }
            init::aligned(rho.len(), a, b)
        }
        InitChoice::Random { seed, std } => match d {
            None => init::typical_infinite(k, data, *std, *seed),
            Some(d) => {
                let key = RandomStart {
                    k,
                    d,
                    std: std.to_bits(),
                    seed: *seed,
                    spikes: data.spikes.iter().map(|s| s.to_bits()).collect(),
                    sigma: data.sigma.to_bits(),
                    family,
                    eigen_seed,
                    lumped,
                };
                key.drawn(|| {
                    weights_order_parameters(&Weights::random(k, d, *std, *seed), data, family, eigen_seed, lumped)
                })
            }
        },
        InitChoice::Weights(w) => match d {
            None => return input("--weights needs a finite --d"),
            Some(d) => {
                check_weights(w, k, d)?;
                weights_order_parameters(w, data, family, eigen_seed, lumped)
            }
        },
    };
    Ok((rho, inputs))
}

/// Everything that decides a random start on the spiked model (numbers by their bits, so that
/// equal keys mean equal draws).
#[derive(PartialEq)]
struct RandomStart {
    k: usize,
    d: usize,
    std: u64,
    seed: u64,
    spikes: Vec<u64>,
    sigma: u64,
    family: EigenFamily,
    eigen_seed: u64,
    lumped: bool,
}

/// The last random start drawn. A sweep checks every point before any runs, then runs each,
/// and points that differ only in rates or tolerances start alike: drawing the weights and
/// their order parameters again was a twentieth of a 4 ms `ode` point (docs/benchmarks.md).
static LAST_RANDOM_START: std::sync::Mutex<Option<(RandomStart, InitInputs)>> = std::sync::Mutex::new(None);

impl RandomStart {
    /// The start this key decides: the last one if it had the same key, else `draw()`.
    fn drawn(self, draw: impl FnOnce() -> InitInputs) -> InitInputs {
        let last = || LAST_RANDOM_START.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, inputs)) = last().as_ref().filter(|(key, _)| *key == self) {
            return inputs.clone();
        }
        // Drawn without the lock: workers with different starts do not wait for each other.
        let inputs = draw();
        *last() = Some((self, inputs.clone()));
        inputs
    }
}

/// The order parameters of weights in dimension D on the spiked model: per spike plus a lumped
/// bulk, or per eigenmode of a basis that starts with the spikes' directions.
fn weights_order_parameters(
    weights: &Weights,
    data: &Spiked,
    family: EigenFamily,
    eigen_seed: u64,
    lumped: bool,
) -> InitInputs {
    let d = weights.d();
    let eig = eigenvectors(family, data.spikes.len(), d, eigen_seed);
    if lumped {
        init::from_weights(weights, &eig, data)
    } else {
        let full = Weights {
            w: init::full_basis_coordinates(&weights.w, &eig),
            v: init::full_basis_coordinates(&weights.v, &eig),
        };
        init::from_coordinates(&full)
    }
}

fn empirical_modes_and_init(
    real: &RealData,
    model: &Model,
    k: usize,
    start: &InitChoice,
) -> Result<(Vec<f64>, InitInputs), RunError> {
    if lumps_bulk(model) {
        return input(format!(
            "real data has no spike/bulk split: use --equations full_spectrum (not `{}`)",
            model.name
        ));
    }
    let d = real.d;
    if d <= k {
        return input(format!("the data have D = {d}, which must exceed --k ({k})"));
    }
    let inputs = match start {
        InitChoice::Informed { a, b } => init::informed(k, d, *a, *b),
        InitChoice::Aligned { a, b } => init::aligned(d, a, b),
        InitChoice::Random { seed, std } => {
            init::from_weights_full(&Weights::random(k, d, *std, *seed), &real.eigenvectors)
        }
        InitChoice::Weights(w) => {
            check_weights(w, k, d)?;
            init::from_weights_full(w, &real.eigenvectors)
        }
    };
    Ok((real.rho(), inputs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kept start must be exactly the draw its key decides, whichever start came before.
    #[test]
    fn a_kept_random_start_is_the_draw_its_key_decides() {
        let file = crate::backend::equation_file("vanilla").unwrap();
        let model = crate::backend::compiled(&file).unwrap();
        let data = Spiked {
            d: Dim::Finite(200),
            spikes: vec![4.0, 2.0],
            sigma: 1.0,
        };
        let family = EigenFamily::Random;
        let start = |seed, std| {
            spiked_modes_and_init(&data, family, 3, &model, 2, &InitChoice::Random { seed, std })
                .unwrap()
                .1
        };
        let drawn = |seed, std| {
            let weights = Weights::random(2, 200, std, seed);
            weights_order_parameters(&weights, &data, family, 3, lumps_bulk(&model))
        };
        // Repeats, a new seed, and a scale that differs only in its sign bit.
        for (seed, std) in [(1, 0.1), (1, 0.1), (2, 0.1), (1, 0.1), (1, -0.1), (1, 0.1)] {
            assert_eq!(start(seed, std), drawn(seed, std), "seed {seed}, std {std}");
        }
    }
}

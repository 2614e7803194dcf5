//! The job of `ode` (and the ODE side of the other subcommands): every model option checked
//! in the order the command line documents them.

use super::super::args::ModelArgs;
use super::start::{check_init_std, perfect, start};
use super::{finite, load_data, spiked_model, value_name, MAX_T_END};
use crate::error::{input, RunError};
use crate::run::OdeJob;
use crate::source::DataSource;
use ae_runtime::data::{Dim, Spiked};
use ae_runtime::ode::{log_times, Method, Solver};
use ae_runtime::sgd::Rates;

pub(crate) fn ode_job(a: &ModelArgs) -> Result<OdeJob, RunError> {
    ode_job_with(a, Method::Auto)
}

/// The job the model arguments describe, with `default_method` when --method is not given.
pub(crate) fn ode_job_with(a: &ModelArgs, default_method: Method) -> Result<OdeJob, RunError> {
    if a.k == 0 {
        return input("--k must be at least 1");
    }
    let data = spiked_model(&a.data)?;
    if let Dim::Finite(d) = data.d {
        if d <= a.k {
            return input(format!("--d ({d}) must exceed --k ({})", a.k));
        }
    }
    let rates = rates(a)?;
    let times = output_times(a)?;
    check_tolerances(finite("rtol", a.rtol)?, finite("atol", a.atol)?)?;
    check_init_std(a)?;
    let solver = solver(a, default_method)?;
    check_reduced_pairing(a, &data)?;
    let init = start(a)?;
    let params = user_params(a)?;
    let activation = crate::backend::activation_named(&a.equations, &a.activation)?;
    let init = match a.perfect {
        None => init,
        Some(scale) => perfect(a, &data, activation, scale)?,
    };
    check_start_memory(a, &data)?;
    let source = match load_data(&a.data)? {
        Some(real) => DataSource::Empirical(real),
        None => DataSource::Spiked {
            model: data,
            family: a.data.eigenvectors,
            eigen_seed: a.seed,
        },
    };
    Ok(OdeJob {
        equations: a.equations.clone(),
        k: a.k,
        activation: a.activation.clone(),
        source,
        init,
        rates,
        params,
        times,
        solver,
        backend: a.backend,
    })
}

/// --lr (positive) and --kappa (non-negative).
fn rates(a: &ModelArgs) -> Result<Rates, RunError> {
    if finite("lr", a.lr)? <= 0.0 {
        return input("--lr must be positive");
    }
    if finite("kappa", a.kappa)? < 0.0 {
        return input("--kappa must be non-negative");
    }
    Ok(Rates {
        lr: a.lr,
        kappa: a.kappa,
    })
}

/// t = 0 and --points log-spaced times from --t-min to --t-end.
fn output_times(a: &ModelArgs) -> Result<Vec<f64>, RunError> {
    let t_end = finite("t-end", a.t_end)?;
    let t_min = finite("t-min", a.t_min)?;
    if t_end <= 0.0 {
        return input("--t-end must be positive");
    }
    if t_end > MAX_T_END {
        // Beyond, t + dt no longer changes for steps below t * 2^-52 (about 0.2 at 1e15); the
        // paper's longest runs end at 1e7.
        return input(format!(
            "--t-end {t_end:e} is beyond the largest time that can be integrated ({MAX_T_END:e})"
        ));
    }
    if t_min <= 0.0 || t_min > t_end {
        return input("--t-min must be positive and at most --t-end");
    }
    if a.points == 0 || a.points > 1_000_000 {
        return input("--points must be between 1 and 1000000");
    }
    Ok(log_times(t_min, t_end, a.points))
}

/// The integrator: --method (or the subcommand's default), tolerances, --fd-jacobian.
/// The loosest tolerances the integrators honour: beyond them an error estimate may be as
/// large as the solution itself, and a step that leaves it meaningless is accepted.
const MAX_TOLERANCE: f64 = 1e-2;
/// The tightest relative tolerance: a few times the rounding of doubles (2.2e-16).
const MIN_RTOL: f64 = 1e-14;

fn check_tolerances(rtol: f64, atol: f64) -> Result<(), RunError> {
    if rtol <= 0.0 || atol <= 0.0 {
        return input("--rtol and --atol must be positive");
    }
    for (name, value) in [("rtol", rtol), ("atol", atol)] {
        if value > MAX_TOLERANCE {
            return input(format!(
                "--{name} {value:e}: at most {MAX_TOLERANCE} (beyond it a step's error estimate may be as large as the solution, and the run's numbers mean nothing)"
            ));
        }
    }
    if rtol < MIN_RTOL {
        return input(format!(
            "--rtol {rtol:e}: at least {MIN_RTOL:e} (doubles round at 2.2e-16: a tighter relative tolerance cannot be met)"
        ));
    }
    Ok(())
}

fn solver(a: &ModelArgs, default_method: Method) -> Result<Solver, RunError> {
    let method = a.method.unwrap_or(default_method);
    if a.fd_jacobian && !method.uses_jacobian() {
        return input(format!(
            "--fd-jacobian is for --method bdf, rodas4 or auto (the explicit methods use no Jacobian; this run uses {})",
            value_name(method)
        ));
    }
    Ok(Solver {
        method,
        rtol: a.rtol,
        atol: a.atol,
        fd_jacobian: a.fd_jacobian,
        ..Solver::default()
    })
}

/// `reduced.ae` pairs each of its K neurons with one spike: other spikes would be ignored.
fn check_reduced_pairing(a: &ModelArgs, data: &Spiked) -> Result<(), RunError> {
    let equations_name = std::path::Path::new(&a.equations)
        .file_stem()
        .map_or(String::new(), |s| s.to_string_lossy().into_owned());
    if equations_name == "reduced" && a.data.data.is_none() && data.spikes.len() != a.k {
        return input(format!(
            "--equations reduced pairs each of the K neurons with one spike: give as many --spikes as --k (K = {}, {} spikes)",
            a.k,
            data.spikes.len()
        ));
    }
    Ok(())
}

/// `--param NAME=V`, repeatable; lr and kappa have options of their own.
fn user_params(a: &ModelArgs) -> Result<Vec<(String, f64)>, RunError> {
    let mut params = Vec::new();
    for p in &a.params {
        let Some((name, value)) = p.split_once('=') else {
            return input(format!("--param takes NAME=VALUE, got `{p}`"));
        };
        let value = value
            .trim()
            .parse::<f64>()
            .map_err(|_| RunError::Input(format!("--param {name}: `{value}` is not a number")))?;
        let name = name.trim();
        if Rates::default().named().iter().any(|(rate, _)| *rate == name) {
            // Through --param they would reach the ODE but not the SGD replicas, unchecked.
            return input(format!(
                "set {name} with --{name}, not --param (the SGD side and the checks read --{name})"
            ));
        }
        params.push((name.to_string(), finite("param", value)?));
    }
    Ok(params)
}

/// The start is made of weights: K encoder and K decoder rows of D numbers, and the spike
/// directions, before any order parameter exists (K = 3000, D = 1e6 took 24 GB and was killed).
fn check_start_memory(a: &ModelArgs, data: &Spiked) -> Result<(), RunError> {
    if let (Dim::Finite(d), None) = (data.d, &a.data.data) {
        let (k, d, m) = (a.k as f64, d as f64, data.spikes.len() as f64);
        crate::memory::check_memory(
            8.0 * (2.0 * k * d + m * d),
            &format!(
                "the initial weights of K = {} and D = {d} and the spike directions",
                a.k
            ),
        )?;
    }
    Ok(())
}

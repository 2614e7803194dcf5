//! Validation: the subcommands' arguments checked and turned into jobs, with a one-line error
//! naming the option for every value that cannot run.

mod ode;
mod replicas;
mod start;

use std::sync::Arc;

use super::args::{DataArgs, ReducedArgs, SpectrumArgs};
use crate::error::{input, RunError};
use crate::reduced::ReducedJob;
use crate::source::DataSource;
use ae_runtime::data::{self as loaders, Dim, LoadOptions, RealData, Spiked};
use ae_runtime::ode::Method;

pub(crate) use ode::{ode_job, ode_job_with};
pub(crate) use replicas::{compare_job, sgd_job};

/// The name the command line gives a value of one of its enums (`Method::Dop853` is `dop853`).
pub(crate) fn value_name(value: impl clap::ValueEnum) -> String {
    value
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string())
}

pub(crate) fn finite(name: &str, v: f64) -> Result<f64, RunError> {
    if v.is_finite() {
        Ok(v)
    } else {
        input(format!("--{name} must be a finite number, got {v}"))
    }
}

pub(crate) fn parse_list(name: &str, s: &str) -> Result<Vec<f64>, RunError> {
    s.split(',')
        .map(|x| {
            x.trim()
                .parse::<f64>()
                .map_err(|_| RunError::Input(format!("--{name}: `{}` is not a number", x.trim())))
                .and_then(|v| finite(name, v))
        })
        .collect()
}

/// The standard deviation of the initial weights in the rescaled model.
pub(crate) const DEFAULT_INIT_STD: f64 = 0.1;

/// The largest --t-end: at 1e15 a time step must exceed 0.2 to change t in double precision.
pub(crate) const MAX_T_END: f64 = 1e15;

/// The most SGD steps one `compare` may take, all replicas together.
pub(crate) const MAX_SGD_STEPS: f64 = 1e12;

pub(crate) fn spiked_model(a: &DataArgs) -> Result<Spiked, RunError> {
    let d = match a.d.as_str() {
        "inf" | "infinity" => Dim::Infinite,
        s => match s.parse::<usize>() {
            Ok(d) if d > 0 => Dim::Finite(d),
            _ => return input(format!("--d must be a positive whole number or `inf`, got `{s}`")),
        },
    };
    let spikes = parse_list("spikes", &a.spikes)?;
    if let Some(s) = spikes.iter().find(|s| **s <= 0.0) {
        return input(format!("--spikes must be positive, got {s}"));
    }
    if let Dim::Finite(d) = d {
        if spikes.len() > d {
            return input(format!("{} spikes do not fit in D = {d}", spikes.len()));
        }
        if d > 1 << 24 {
            return input(format!("--d {d} is too large (at most {})", 1 << 24));
        }
    }
    let sigma = finite("sigma", a.sigma)?;
    if sigma < 0.0 {
        return input("--sigma must be non-negative");
    }
    Ok(Spiked { d, spikes, sigma })
}

/// Loads, standardises and diagonalises `--data`, if given.
pub(crate) fn load_data(a: &DataArgs) -> Result<Option<Arc<RealData>>, RunError> {
    let Some(path) = &a.data else {
        if a.patch.is_some() || a.format.is_some() || a.stride.is_some() || a.drop_last_column {
            return input("--patch, --stride, --format and --drop-last-column go with --data");
        }
        return Ok(None);
    };
    let options = LoadOptions {
        format: a.format,
        patch: a.patch,
        stride: a.stride,
        drop_last_column: a.drop_last_column,
        max_samples: a.max_samples,
        max_bytes: Some(crate::memory::memory_limit_bytes()? as u64),
    };
    // A regular file's identity: its place, length and time of change, with the options.
    let identity = std::fs::canonicalize(path)
        .and_then(|p| Ok((p.clone(), std::fs::metadata(&p)?)))
        .ok()
        .filter(|(_, meta)| meta.is_file())
        .map(|(p, meta)| {
            format!(
                "{p:?} {} {:?} {:?}",
                meta.len(),
                meta.modified().ok(),
                options_key(&options)
            )
        });
    // Held while loading: a sweep's workers asking for the same file wait for one load.
    let mut last = LAST_DATA.lock().unwrap_or_else(|e| e.into_inner());
    if let (Some(id), Some((kept, data))) = (&identity, &*last) {
        if id == kept {
            return Ok(Some(data.clone()));
        }
    }
    let samples = loaders::load(path, &options).map_err(|e| RunError::Input(e.to_string()))?;
    let data = Arc::new(RealData::new(samples).map_err(|e| RunError::Input(e.to_string()))?);
    // Only the last set is kept, so a long session holds one at most.
    *last = identity.map(|id| (id, data.clone()));
    Ok(Some(data))
}

/// The last data set loaded from a regular file, kept for the next run of this process that
/// names the same file with the same options: a `reproduce`, a sweep and the checks before
/// them load it once, not once a run (an experiment of nine runs on 15 147 image patches of
/// D = 1024 spent 30 s of a debug build checking its runs).
static LAST_DATA: std::sync::Mutex<Option<(String, Arc<RealData>)>> = std::sync::Mutex::new(None);

/// What of the load options decides the samples (the byte limit only refuses).
fn options_key(o: &LoadOptions) -> String {
    format!(
        "{:?} {:?} {:?} {} {:?}",
        o.format, o.patch, o.stride, o.drop_last_column, o.max_samples
    )
}

pub(crate) fn reduced_job(args: &ReducedArgs) -> Result<ReducedJob, RunError> {
    let full = ode_job_with(&args.model, Method::Rodas4)?;
    if finite("t-reduced", args.t_reduced)? <= 0.0 {
        return input("--t-reduced must be positive");
    }
    if !(finite("align-tol", args.align_tol)? > 0.0 && args.align_tol < 1.0) {
        return input("--align-tol must lie in (0, 1)");
    }
    Ok(ReducedJob {
        full,
        reduced_equations: args.reduced_equations.clone(),
        t_reduced_end: args.t_reduced,
        points: args.model.points,
        align_tol: args.align_tol,
    })
}

/// Histogram bins of the bulk, unless --bins says.
const DEFAULT_BINS: usize = 60;

pub(crate) fn spectrum_job(a: &SpectrumArgs) -> Result<crate::spectrum::SpectrumJob, RunError> {
    let model = spiked_model(&a.data)?;
    if a.bins.is_some() && a.density.is_none() {
        return input("--bins sets the histogram of the --density file: give --density as well");
    }
    let bins = a.bins.unwrap_or(DEFAULT_BINS);
    if bins == 0 || bins > 100_000 {
        return input("--bins must be between 1 and 100000");
    }
    if let Some(real) = load_data(&a.data)? {
        if a.samples.is_some() {
            return input(
                "--samples goes with the spiked model: real data are diagonalised whole (--max-samples takes fewer)",
            );
        }
        return Ok(crate::spectrum::SpectrumJob {
            source: DataSource::Empirical(real),
            samples: 0,
            bins,
            seed: a.seed,
        });
    }
    let Dim::Finite(d) = model.d else {
        return input("spectrum needs a finite --d (it draws samples in dimension D)");
    };
    let samples = a.samples.unwrap_or(4 * d);
    if samples < d {
        // Then D - N eigenvalues are zero and the law has an atom there: not drawn here.
        return input(format!(
            "--samples {samples} is below D = {d}: the Marchenko-Pastur comparison needs N >= D"
        ));
    }
    let (n, df) = (samples as f64, d as f64);
    crate::memory::check_memory(
        8.0 * (n * df + 3.0 * df * df),
        &format!("{samples} samples of dimension {d} and their covariance"),
    )?;
    Ok(crate::spectrum::SpectrumJob {
        source: DataSource::Spiked {
            model,
            family: a.data.eigenvectors,
            eigen_seed: a.seed,
        },
        samples,
        bins,
        seed: a.seed,
    })
}

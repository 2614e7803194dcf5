//! Validation: the subcommands' arguments checked and turned into jobs, with a one-line error
//! naming the option for every value that cannot run.

use std::sync::Arc;

use super::args::{CompareArgs, DataArgs, ModelArgs, ReducedArgs, SgdArgs, SgdOptions, SpectrumArgs};
use crate::compare::CompareJob;
use crate::reduced::ReducedJob;
use crate::run::{InitChoice, OdeJob, RunError};
use crate::source::DataSource;
use ae_runtime::data::{Dim, Spiked, Weights};
use ae_runtime::integrate::{log_times, Method, Solver};
use ae_runtime::realdata::{self, Draw, LoadOptions, RealData};
use ae_runtime::sgd::{Rule, Scaling, SgdConfig};

/// The name the command line gives a value of one of its enums (`Method::Dop853` is `dop853`).
pub(crate) fn value_name(value: impl clap::ValueEnum) -> String {
    value
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string())
}

pub(crate) fn bad<T>(msg: impl Into<String>) -> Result<T, RunError> {
    Err(RunError::Input(msg.into()))
}

pub(crate) fn finite(name: &str, v: f64) -> Result<f64, RunError> {
    if v.is_finite() {
        Ok(v)
    } else {
        bad(format!("--{name} must be a finite number, got {v}"))
    }
}

fn parse_list(name: &str, s: &str) -> Result<Vec<f64>, RunError> {
    s.split(',')
        .map(|x| {
            x.trim()
                .parse::<f64>()
                .map_err(|_| RunError::Input(format!("--{name}: `{}` is not a number", x.trim())))
                .and_then(|v| finite(name, v))
        })
        .collect()
}

fn read_weights(path: &str, k: usize) -> Result<Weights, RunError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| RunError::Input(format!("cannot read --weights {path}: {e}")))?;
    let rows: Vec<Vec<f64>> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            l.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|x| !x.is_empty())
                .map(|x| {
                    x.parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .ok_or_else(|| RunError::Input(format!("{path}:{}: `{x}` is not a finite number", i + 1)))
                })
                .collect()
        })
        .collect::<Result<_, _>>()?;
    if rows.len() != 2 * k {
        return bad(format!(
            "{path}: expected {} rows (K encoder rows, then K decoder rows), found {}",
            2 * k,
            rows.len()
        ));
    }
    let d = rows[0].len();
    if let Some(i) = rows.iter().position(|r| r.len() != d) {
        return bad(format!(
            "{path}: row {} has {} numbers, row 1 has {d}",
            i + 1,
            rows[i].len()
        ));
    }
    let v = rows[k..].to_vec();
    let w = rows[..k].to_vec();
    Ok(Weights { w, v })
}

/// The standard deviation of the initial weights in the rescaled model.
pub(crate) const DEFAULT_INIT_STD: f64 = 0.1;

/// The largest --t-end: at 1e15 a time step must exceed 0.2 to change t in double precision.
pub(crate) const MAX_T_END: f64 = 1e15;

/// The most SGD steps one `compare` may take, all replicas together.
pub(crate) const MAX_SGD_STEPS: f64 = 1e12;

/// Where a file is or would be, for telling whether two names mean one file (the output need
/// not exist yet; its directory usually does).
fn resolved(path: &str) -> std::path::PathBuf {
    let p = std::path::Path::new(path);
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    let parent = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    match (parent.canonicalize(), p.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => p.to_path_buf(),
    }
}

/// Refuses an output file that is an input (`--weights`, `--data`, an `--equations` file) or
/// another output: it would be overwritten while or before it is read.
pub(crate) fn check_outputs(model: &ModelArgs, outputs: &[(&str, Option<&String>)]) -> Result<(), RunError> {
    let mut inputs: Vec<(&str, &str)> = Vec::new();
    if let Some(w) = &model.weights {
        inputs.push(("--weights", w));
    }
    if std::path::Path::new(&model.equations).is_file() {
        inputs.push(("--equations", &model.equations));
    }
    check_output_names(&model.data, &inputs, outputs)
}

/// `check_outputs` for a command whose only inputs are the data and `inputs`.
pub(crate) fn check_output_names(
    data: &DataArgs,
    inputs: &[(&str, &str)],
    outputs: &[(&str, Option<&String>)],
) -> Result<(), RunError> {
    let mut named: Vec<(&str, &str)> = inputs.to_vec();
    if let Some(d) = &data.data {
        named.push(("--data", d));
    }
    for (option, path) in outputs.iter().filter_map(|(o, p)| p.map(|p| (*o, p.as_str()))) {
        let target = resolved(path);
        if let Some((other, _)) = named.iter().find(|(_, q)| resolved(q) == target) {
            return bad(format!(
                "{option} {path} is the file of {other}: writing it would destroy what the run reads (choose another file)"
            ));
        }
        named.push((option, path));
    }
    Ok(())
}

pub(crate) fn spiked_model(a: &DataArgs) -> Result<Spiked, RunError> {
    let d = match a.d.as_str() {
        "inf" | "infinity" => Dim::Infinite,
        s => match s.parse::<usize>() {
            Ok(d) if d > 0 => Dim::Finite(d),
            _ => return bad(format!("--d must be a positive whole number or `inf`, got `{s}`")),
        },
    };
    let spikes = parse_list("spikes", &a.spikes)?;
    if let Some(s) = spikes.iter().find(|s| **s <= 0.0) {
        return bad(format!("--spikes must be positive, got {s}"));
    }
    if let Dim::Finite(d) = d {
        if spikes.len() > d {
            return bad(format!("{} spikes do not fit in D = {d}", spikes.len()));
        }
        if d > 1 << 24 {
            return bad(format!("--d {d} is too large (at most {})", 1 << 24));
        }
    }
    let sigma = finite("sigma", a.sigma)?;
    if sigma < 0.0 {
        return bad("--sigma must be non-negative");
    }
    Ok(Spiked { d, spikes, sigma })
}

pub(crate) fn ode_job(a: &ModelArgs) -> Result<OdeJob, RunError> {
    ode_job_with(a, Method::Auto)
}

/// The job the model arguments describe, with `default_method` when --method is not given.
pub(crate) fn ode_job_with(a: &ModelArgs, default_method: Method) -> Result<OdeJob, RunError> {
    let activation = a.activation;
    if a.k == 0 {
        return bad("--k must be at least 1");
    }
    let Spiked { d, spikes, sigma } = spiked_model(&a.data)?;
    if let Dim::Finite(d) = d {
        if d <= a.k {
            return bad(format!("--d ({d}) must exceed --k ({})", a.k));
        }
    }
    if finite("lr", a.lr)? <= 0.0 {
        return bad("--lr must be positive");
    }
    if finite("kappa", a.kappa)? < 0.0 {
        return bad("--kappa must be non-negative");
    }
    let t_end = finite("t-end", a.t_end)?;
    let t_min = finite("t-min", a.t_min)?;
    if t_end <= 0.0 {
        return bad("--t-end must be positive");
    }
    if t_end > MAX_T_END {
        // Beyond, t + dt no longer changes for steps below t * 2^-52 (about 0.2 at 1e15); the
        // paper's longest runs end at 1e7.
        return bad(format!(
            "--t-end {t_end:e} is beyond the largest time that can be integrated ({MAX_T_END:e})"
        ));
    }
    if t_min <= 0.0 || t_min > t_end {
        return bad("--t-min must be positive and at most --t-end");
    }
    if a.points == 0 || a.points > 1_000_000 {
        return bad("--points must be between 1 and 1000000");
    }
    if !(finite("rtol", a.rtol)? > 0.0 && finite("atol", a.atol)? > 0.0) {
        return bad("--rtol and --atol must be positive");
    }
    let init_std = a.init_std.unwrap_or(DEFAULT_INIT_STD);
    if finite("init-std", init_std)? <= 0.0 {
        return bad("--init-std must be positive");
    }
    let method = a.method.unwrap_or(default_method);
    if a.fd_jacobian && !matches!(method, Method::Rodas4 | Method::Bdf | Method::Auto) {
        return bad(format!(
            "--fd-jacobian is for --method bdf, rodas4 or auto (the explicit methods use no Jacobian; this run uses {})",
            value_name(method)
        ));
    }
    let equations_name = std::path::Path::new(&a.equations)
        .file_stem()
        .map_or(String::new(), |s| s.to_string_lossy().into_owned());
    if equations_name == "reduced" && a.data.data.is_none() && spikes.len() != a.k {
        // Each of its K neurons is aligned with one spike: other spikes would be ignored.
        return bad(format!(
            "--equations reduced pairs each of the K neurons with one spike: give as many --spikes as --k (K = {}, {} spikes)",
            a.k,
            spikes.len()
        ));
    }
    let starts = [a.informed.is_some(), a.weights.is_some(), a.perfect.is_some()];
    if starts.iter().filter(|s| **s).count() > 1 {
        return bad("give at most one of --informed, --perfect and --weights");
    }
    let init = match (&a.informed, &a.weights) {
        (Some(s), _) => {
            let v = parse_list("informed", s)?;
            let [a_, b_] = v[..] else {
                return bad("--informed takes two numbers `a,b`");
            };
            InitChoice::Informed { a: a_, b: b_ }
        }
        (None, Some(path)) => InitChoice::Weights(read_weights(path, a.k)?),
        (None, None) => InitChoice::Random {
            seed: a.seed,
            std: init_std,
        },
    };
    let mut params = vec![("lr".to_string(), a.lr), ("kappa".to_string(), a.kappa)];
    for p in &a.params {
        let Some((name, value)) = p.split_once('=') else {
            return bad(format!("--param takes NAME=VALUE, got `{p}`"));
        };
        let value = value
            .trim()
            .parse::<f64>()
            .map_err(|_| RunError::Input(format!("--param {name}: `{value}` is not a number")))?;
        let name = name.trim();
        if name == "lr" || name == "kappa" {
            // Through --param they would reach the ODE but not the SGD replicas, unchecked.
            return bad(format!(
                "set {name} with --{name}, not --param (the SGD side and the checks read --{name})"
            ));
        }
        params.push((name.to_string(), finite("param", value)?));
    }
    let data = Spiked { d, spikes, sigma };
    let init = match a.perfect {
        None => init,
        Some(scale) => {
            if !scale.is_finite() || scale == 0.0 {
                return bad("--perfect takes a finite, non-zero encoder scale a");
            }
            if a.data.data.is_some() {
                return bad("--perfect needs the spiked model (not --data)");
            }
            let rho = data.spike_rho();
            if a.k > rho.len() {
                return bad(format!("--perfect needs K <= M (K = {}, M = {})", a.k, rho.len()));
            }
            let b = rho[..a.k]
                .iter()
                .map(|r| ae_runtime::init::perfect_decoder(activation, *r, scale))
                .collect();
            InitChoice::Aligned { a: vec![scale; a.k], b }
        }
    };
    if let (Dim::Finite(d), None) = (data.d, &a.data.data) {
        // The start is made of weights: K encoder and K decoder rows of D numbers, and the
        // spike directions, before any order parameter exists (K = 3000, D = 1e6 took 24 GB
        // and was killed).
        let (k, d, m) = (a.k as f64, d as f64, data.spikes.len() as f64);
        crate::run::check_memory(
            8.0 * (2.0 * k * d + m * d),
            &format!(
                "the initial weights of K = {} and D = {d} and the spike directions",
                a.k
            ),
        )?;
    }
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
        activation,
        source,
        init,
        params,
        times: log_times(t_min, t_end, a.points),
        solver: Solver {
            method,
            rtol: a.rtol,
            atol: a.atol,
            fd_jacobian: a.fd_jacobian,
            ..Solver::default()
        },
        interpret: a.interpret,
    })
}

/// Loads, standardises and diagonalises `--data`, if given.
pub(crate) fn load_data(a: &DataArgs) -> Result<Option<Arc<RealData>>, RunError> {
    let Some(path) = &a.data else {
        if a.patch.is_some() || a.format.is_some() || a.stride.is_some() || a.drop_last_column {
            return bad("--patch, --stride, --format and --drop-last-column go with --data");
        }
        return Ok(None);
    };
    let options = LoadOptions {
        format: a.format,
        patch: a.patch,
        stride: a.stride,
        drop_last_column: a.drop_last_column,
        max_samples: a.max_samples,
        max_bytes: Some(crate::run::memory_limit_bytes()? as u64),
    };
    let samples = realdata::load(path, &options).map_err(|e| RunError::Input(e.to_string()))?;
    let data = RealData::new(samples).map_err(|e| RunError::Input(e.to_string()))?;
    Ok(Some(Arc::new(data)))
}

pub(crate) fn compare_job(a: &CompareArgs) -> Result<CompareJob, RunError> {
    replicas_job(&a.model, &a.sgd, Scaling::Rescaled, true)
}

/// The options of the ODE, which `aedyn sgd` does not run.
fn refuse_ode_options(m: &ModelArgs) -> Result<(), RunError> {
    let given = [
        ("--equations", m.equations != "vanilla"),
        ("--method", m.method.is_some()),
        ("--rtol", m.rtol != ae_runtime::integrate::DEFAULT_RTOL),
        ("--atol", m.atol != ae_runtime::integrate::DEFAULT_ATOL),
        ("--fd-jacobian", m.fd_jacobian),
        ("--interpret", m.interpret),
        ("--param", !m.params.is_empty()),
    ];
    match given.iter().find(|(_, g)| *g) {
        Some((option, _)) => bad(format!(
            "{option} is an option of the ODE, and `aedyn sgd` runs none (compare runs both)"
        )),
        None => Ok(()),
    }
}

pub(crate) fn sgd_job(a: &SgdArgs) -> Result<CompareJob, RunError> {
    refuse_ode_options(&a.model)?;
    if a.scaling == Scaling::Standard && a.sgd.rule == Rule::Sanger {
        return bad("--rule sanger is written in the rescaled form only (SPEC section 3): drop --scaling standard");
    }
    match (a.images, &a.images_out) {
        (0, Some(_)) => return bad("--images-out needs --images N (how many held-out samples to reconstruct)"),
        (n, None) if n > 0 => return bad("--images needs --images-out FILE"),
        _ => {}
    }
    let mut job = replicas_job(&a.model, &a.sgd, a.scaling, false)?;
    if a.images > 10_000 {
        return bad("--images must be at most 10000");
    }
    job.images = a.images;
    job.check_held_out()?;
    if a.scaling == Scaling::Standard && a.model.init_std.is_none() {
        // Standard initialisation: i.i.d. entries of variance 1/D, so that w.x is of order one.
        let d = job.d()?;
        if let InitChoice::Random { std, .. } = &mut job.ode.init {
            *std = 1.0 / (d as f64).sqrt();
        }
    }
    Ok(job)
}

/// The replicas of `compare` (with the ODE) or `sgd` (without).
fn replicas_job(model: &ModelArgs, a: &SgdOptions, scaling: Scaling, with_ode: bool) -> Result<CompareJob, RunError> {
    let ode = ode_job(model)?;
    if a.seeds == 0 || a.seeds > 10_000 {
        return bad("--seeds must be between 1 and 10000");
    }
    let t_end = ode.times.last().copied().unwrap_or(0.0);
    let d = ode.source.finite_d(if with_ode { "compare" } else { "sgd" })?;
    // Per replica running at once: encoder, decoder and a few D-vectors; shared: the held-out
    // set and the spike directions; and every replica's outputs.
    let threads = crate::compare::worker_threads(a.threads, a.seeds) as f64;
    let (k, df) = (ode.k as f64, d as f64);
    let per_replica = 8.0 * (2.0 * k * df + 6.0 * df);
    let shared = 8.0 * (a.test_samples as f64 * df + k.max(1.0) * df);
    let recorded = 8.0 * a.seeds as f64 * ode.times.len() as f64 * (4.0 * k * k + 4.0);
    crate::run::check_memory(
        threads * per_replica + shared + recorded,
        &format!(
            "{threads} SGD replicas at a time of K = {} and D = {d}, {} held-out samples",
            ode.k, a.test_samples
        ),
    )?;
    let steps = a.seeds as f64 * t_end * d as f64;
    if steps > MAX_SGD_STEPS {
        return bad(format!(
            "--seeds {} x --t-end {t_end:e} x D {d} is {steps:.3e} SGD steps, more than {MAX_SGD_STEPS:e} (about two months at 200 000 steps/s)",
            a.seeds
        ));
    }
    if a.test_samples > 1_000_000 {
        return bad("--test-samples must be at most 1000000");
    }
    let sgd = SgdConfig {
        activation: ode.activation,
        rule: a.rule,
        lr: model.lr,
        kappa: model.kappa,
        tied: a.tied,
        train_bias: a.bias,
        bias_init: finite("bias-init", a.bias_init)?,
        scaling,
    };
    if let Some(units) = a.partial {
        if units == 0 || units > ode.k {
            return bad(format!("--partial takes a number of neurons from 1 to K = {}", ode.k));
        }
    }
    if a.draw.is_some() && model.data.data.is_none() {
        return bad("--draw goes with --data (the spiked model draws its own Gaussian samples)");
    }
    let draw = a.draw.unwrap_or(Draw::Online);
    if a.bias && a.test_samples == 0 {
        return bad("with --bias eg is measured on a test set: give --test-samples (e.g. 10000)");
    }
    let job = CompareJob {
        draw,
        ode,
        seeds: a.seeds,
        sgd,
        threads: a.threads,
        test_samples: a.test_samples,
        sample_seed: model.seed,
        with_ode,
        partial: a.partial,
        images: 0,
    };
    job.check_held_out()?;
    Ok(job)
}

pub(crate) fn reduced_job(args: &ReducedArgs) -> Result<ReducedJob, RunError> {
    let full = ode_job_with(&args.model, Method::Rodas4)?;
    if finite("t-reduced", args.t_reduced)? <= 0.0 {
        return bad("--t-reduced must be positive");
    }
    if !(finite("align-tol", args.align_tol)? > 0.0 && args.align_tol < 1.0) {
        return bad("--align-tol must lie in (0, 1)");
    }
    Ok(ReducedJob {
        full,
        reduced_equations: args.reduced_equations.clone(),
        t_reduced_end: args.t_reduced,
        points: args.model.points,
        align_tol: args.align_tol,
    })
}

pub(crate) fn spectrum_job(a: &SpectrumArgs) -> Result<crate::spectrum::SpectrumJob, RunError> {
    let model = spiked_model(&a.data)?;
    if a.bins == 0 || a.bins > 100_000 {
        return bad("--bins must be between 1 and 100000");
    }
    if let Some(real) = load_data(&a.data)? {
        if a.samples.is_some() {
            return bad(
                "--samples goes with the spiked model: real data are diagonalised whole (--max-samples takes fewer)",
            );
        }
        return Ok(crate::spectrum::SpectrumJob {
            source: DataSource::Empirical(real),
            samples: 0,
            bins: a.bins,
            seed: a.seed,
        });
    }
    let Dim::Finite(d) = model.d else {
        return bad("spectrum needs a finite --d (it draws samples in dimension D)");
    };
    let samples = a.samples.unwrap_or(4 * d);
    if samples < d {
        // Then D - N eigenvalues are zero and the law has an atom there: not drawn here.
        return bad(format!(
            "--samples {samples} is below D = {d}: the Marchenko-Pastur comparison needs N >= D"
        ));
    }
    let (n, df) = (samples as f64, d as f64);
    crate::run::check_memory(
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
        bins: a.bins,
        seed: a.seed,
    })
}

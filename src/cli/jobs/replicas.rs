//! The jobs of `compare` and `sgd`: the ODE job of the model options and the SGD replicas'
//! options, checked together.

use super::super::args::{CompareArgs, ModelArgs, SgdArgs, SgdOptions};
use super::{finite, ode_job, value_name, MAX_SGD_STEPS};
use crate::compare::CompareJob;
use crate::error::{input, RunError};
use crate::run::OdeJob;
use crate::source::InitChoice;
use ae_runtime::data::Draw;
use ae_runtime::sgd::{Rule, Scaling, SgdConfig};

/// Where trained biases start, unless --bias-init says.
const DEFAULT_BIAS_INIT: f64 = 0.5;

pub(crate) fn compare_job(a: &CompareArgs) -> Result<CompareJob, RunError> {
    replicas_job(&a.model, &a.sgd, Scaling::Rescaled, true)
}

/// The options of the ODE, which `aedyn sgd` does not run.
fn refuse_ode_options(m: &ModelArgs) -> Result<(), RunError> {
    let given = [
        ("--equations", m.equations != "vanilla"),
        ("--method", m.method.is_some()),
        ("--rtol", m.rtol != ae_runtime::ode::DEFAULT_RTOL),
        ("--atol", m.atol != ae_runtime::ode::DEFAULT_ATOL),
        ("--fd-jacobian", m.fd_jacobian),
        ("--backend", m.backend.is_some()),
        ("--param", !m.params.is_empty()),
    ];
    match given.iter().find(|(_, g)| *g) {
        Some((option, _)) => input(format!(
            "{option} is an option of the ODE, and `aedyn sgd` runs none (compare runs both)"
        )),
        None => Ok(()),
    }
}

pub(crate) fn sgd_job(a: &SgdArgs) -> Result<CompareJob, RunError> {
    refuse_ode_options(&a.model)?;
    if a.scaling == Scaling::Standard && a.sgd.rule == Some(Rule::Sanger) {
        return input(
            "--rule sanger is written in the rescaled form only (docs/theory.md section 3): drop --scaling standard",
        );
    }
    match (a.images, &a.images_out) {
        (0, Some(_)) => return input("--images-out needs --images N (how many held-out samples to reconstruct)"),
        (n, None) if n > 0 => return input("--images needs --images-out FILE"),
        _ => {}
    }
    let mut job = replicas_job(&a.model, &a.sgd, a.scaling, false)?;
    if a.images > 10_000 {
        return input("--images must be at most 10000");
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

/// The SGD rule whose dynamics `ode`'s equations describe, as the file says on its `sgd` line:
/// `compare` runs that rule, and refuses another, or a file that does not say. Parameters of
/// the file that the simulator has no counterpart for are refused too: SGD would run without
/// them.
fn paired_rule(ode: &OdeJob, a: &SgdOptions) -> Result<Rule, RunError> {
    let file = crate::backend::equation_file(&ode.equations)?;
    let model = crate::backend::compiled(&file)?;
    // A name the file does not declare is refused as such when the equations load.
    if let Some((name, _)) = ode.params.iter().find(|(name, _)| model.param_index(name).is_some()) {
        return input(format!(
            "--param {name}=...: the SGD simulator has no parameter `{name}` (it runs the rates of --lr and --kappa), so compare would set it on the ODE side alone; run the equations with `aedyn ode`"
        ));
    }
    let Some(declared) = &model.sgd else {
        return input(format!(
            "{} does not say which SGD its equations describe, so compare cannot pair them with the simulator: add a line `sgd vanilla` (or truncated, sanger) to the file (docs/equations-language.md)",
            file.path
        ));
    };
    let rule = <Rule as clap::ValueEnum>::from_str(&declared.rule, false)
        .map_err(|_| RunError::Input(format!("{}: unknown SGD rule `{}`", file.path, declared.rule)))?;
    match a.rule {
        Some(given) if given != rule => input(format!(
            "--rule {}: {}:{} says its equations describe {} SGD; drop --rule, or give equations for {} SGD",
            value_name(given),
            file.path,
            declared.span.line,
            declared.rule,
            value_name(given)
        )),
        _ => Ok(rule),
    }
}

/// The replicas of `compare` (with the ODE) or `sgd` (without).
fn replicas_job(model: &ModelArgs, a: &SgdOptions, scaling: Scaling, with_ode: bool) -> Result<CompareJob, RunError> {
    let ode = ode_job(model)?;
    if a.seeds == 0 || a.seeds > 10_000 {
        return input("--seeds must be between 1 and 10000");
    }
    let t_end = ode.times.last().copied().unwrap_or(0.0);
    let d = ode.source.finite_d(if with_ode { "compare" } else { "sgd" })?;
    // Per replica running at once: encoder, decoder, a few D-vectors and its own held-out set
    // (each replica draws it); shared: the spike directions; and every replica's outputs.
    let threads = crate::compare::worker_threads(a.threads, a.seeds) as f64;
    let (k, df) = (ode.k as f64, d as f64);
    let per_replica = 8.0 * (2.0 * k * df + 6.0 * df + a.test_samples as f64 * df);
    let shared = 8.0 * k.max(1.0) * df;
    let recorded = 8.0 * a.seeds as f64 * ode.times.len() as f64 * (4.0 * k * k + 4.0);
    crate::memory::check_memory(
        threads * per_replica + shared + recorded,
        &format!(
            "{threads} SGD replicas at a time of K = {} and D = {d}, {} held-out samples",
            ode.k, a.test_samples
        ),
    )?;
    let steps = a.seeds as f64 * t_end * d as f64;
    if steps > MAX_SGD_STEPS {
        return input(format!(
            "--seeds {} x --t-end {t_end:e} x D {d} is {steps:.3e} SGD steps, more than {MAX_SGD_STEPS:e} (about two months at 200 000 steps/s)",
            a.seeds
        ));
    }
    if a.test_samples > 1_000_000 {
        return input("--test-samples must be at most 1000000");
    }
    let sgd = SgdConfig {
        activation: ode.resolved_activation()?,
        rule: if with_ode {
            paired_rule(&ode, a)?
        } else {
            a.rule.unwrap_or(Rule::Vanilla)
        },
        rates: ode.rates,
        tied: a.tied,
        train_bias: a.bias,
        bias_init: match a.bias_init {
            Some(_) if !a.bias => return input("--bias-init sets the trained biases' start: give --bias as well"),
            Some(value) => finite("bias-init", value)?,
            None => DEFAULT_BIAS_INIT,
        },
        scaling,
    };
    if let Some(units) = a.partial {
        if units == 0 || units > ode.k {
            return input(format!("--partial takes a number of neurons from 1 to K = {}", ode.k));
        }
    }
    if a.draw.is_some() && model.data.data.is_none() {
        return input("--draw goes with --data (the spiked model draws its own Gaussian samples)");
    }
    let draw = a.draw.unwrap_or(Draw::Online);
    if a.bias && a.test_samples == 0 {
        return input("with --bias eg is measured on a test set: give --test-samples (e.g. 10000)");
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

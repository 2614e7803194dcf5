//! The subcommands `ode`, `compare`, `sgd` and `reduced-vs-full`: run the validated job, write
//! its CSV files, and report.

use super::args::{CompareArgs, ModelArgs, OdeArgs, Output, ReducedArgs, Reporting, SgdArgs, SpectrumArgs};
use super::jobs::{compare_job, ode_job, reduced_job, sgd_job, spectrum_job};
use super::outputs::{check_output_names, check_outputs};
use super::provenance::Record;
use super::report::{check_json, print_json, report_data, Progress};
use crate::compare::{CompareJob, CompareRun};
use crate::error::RunError;
use crate::experiment::RunCommand;
use crate::run::write_csv;
use crate::schema::Outputs;
use ae_runtime::data::Dim;

pub(crate) fn run_compare(a: &CompareArgs, record: &Record) -> Result<(), RunError> {
    let second = (
        "--overlaps",
        a.overlaps.as_ref(),
        CompareRun::write_overlaps_csv as SecondWriter,
    );
    run_replicas_command(&a.model, &a.output, second, record, || compare_job(a))
}

pub(crate) fn run_sgd(a: &SgdArgs, record: &Record) -> Result<(), RunError> {
    let second = (
        "--images-out",
        a.images_out.as_ref(),
        CompareRun::write_images_csv as SecondWriter,
    );
    run_replicas_command(&a.model, &a.output, second, record, || sgd_job(a))
}

/// Writes the second file of `compare` (--overlaps) or `sgd` (--images-out).
type SecondWriter = fn(&CompareRun, &mut dyn std::io::Write) -> std::io::Result<()>;

/// `compare` and `sgd`: checks the outputs against the inputs, builds the job, runs it and
/// writes the main CSV and, where asked for, the second file (option, path, writer).
fn run_replicas_command(
    model: &ModelArgs,
    output: &Output,
    (option, path, writer): (&str, Option<&String>, SecondWriter),
    record: &Record,
    job: impl FnOnce() -> Result<CompareJob, RunError>,
) -> Result<(), RunError> {
    check_outputs(model, &[("--out", output.out.as_ref()), (option, path)])?;
    let job = job()?;
    run_replicas(&job, &output.out, &output.report, record, |run| {
        let mut files = Vec::new();
        if let Some(path) = path {
            let mut bytes = Vec::new();
            writer(run, &mut bytes)?;
            files.push((path.clone(), bytes));
        }
        Ok(files)
    })
}

/// Runs the replicas of `compare` or `sgd` with a progress bar, writes the main CSV to `out`
/// and the files `extra` makes of the run, and reports.
fn run_replicas(
    job: &CompareJob,
    out: &Option<String>,
    report: &Reporting,
    record: &Record,
    extra: impl Fn(&CompareRun) -> Result<Vec<(String, Vec<u8>)>, RunError>,
) -> Result<(), RunError> {
    let d = job.d()?;
    check_json(report.json, out)?;
    if !report.quiet {
        report_data(&job.ode);
    }
    let start = std::time::Instant::now();
    let t_end = job.ode.times.last().copied().unwrap_or(0.0);
    let total = (job.seeds as f64 * t_end * d as f64) as u64;
    let progress = Progress::new(report.quiet, total, "SGD steps");
    let run = job.run_with_progress(&|n| progress.inc(n))?;
    drop(progress);
    let mut buf = Vec::new();
    run.write_csv(&mut buf).map_err(|e| RunError::Io(e.to_string()))?;
    for (path, bytes) in extra(&run)? {
        record.write_output(&Some(path), &bytes)?;
    }
    record.write_output(out, &buf)?;
    let (mean, std) = run.sgd_eg().last().copied().unwrap_or((f64::NAN, f64::NAN));
    let eg_ode = run.ode_eg().last().copied();
    let seconds = start.elapsed().as_secs_f64();
    let command = if job.with_ode { "compare" } else { "sgd" };
    if !report.quiet {
        let ode = eg_ode.map_or_else(String::new, |e| format!("ODE {e:.6}, "));
        note!(
            "t = {t_end}: eg {ode}SGD {mean:.6} +- {std:.6} ({} replicas) in {seconds:.2} s",
            job.seeds,
        );
        if let Some(note) = flat_direction_note(job, &run, d) {
            note!("{note}");
        }
    }
    print_json(
        report.json,
        record.with_summary(serde_json::json!({
            "command": command,
            "t_end": t_end,
            "eg_ode": eg_ode,
            "eg_sgd_mean": mean,
            "eg_sgd_std": std,
            "replicas": job.seeds,
            "pca_errors": run.pca,
            "final_bias": run.final_bias,
            "seconds": seconds,
            "out": out,
        })),
    )?;
    Ok(())
}

pub(crate) fn run_ode(args: &OdeArgs, record: &Record) -> Result<(), RunError> {
    let a = &args.model;
    check_outputs(a, &[("--out", args.output.out.as_ref())])?;
    let job = ode_job(a)?;
    if job.source.dim() == Dim::Infinite && !args.output.report.quiet {
        note!("warning: --d inf is the strict limit: the bulk freezes, which is not uniform in time (docs/theory.md section 6); finite D keeps every term");
    }
    if !args.output.report.quiet {
        report_data(&job);
    }
    check_json(args.output.report.json, &args.output.out)?;
    let start = std::time::Instant::now();
    let (t_min, t_end) = (
        job.times.get(1).copied().unwrap_or(1.0),
        job.times.last().copied().unwrap_or(1.0),
    );
    let progress = Progress::new(args.output.report.quiet, 1000, "ODE time");
    let handle = job.load()?;
    handle.check_memory(job.times.len(), &job.solver, args.states)?;
    let run = handle.integrate(&job.times, &job.solver, |t| {
        progress.set(Progress::log_position(t, t_min, t_end))
    })?;
    drop(progress);
    let elapsed = start.elapsed();
    let columns = crate::run::ode_csv_columns(run.observable_names.len(), &run.state_columns, args.states);
    let mut buf = text_buffer(crate::run::csv_text_bytes(run.trajectory.times.len(), columns))?;
    write_csv(&run, args.states, &mut buf).map_err(|e| RunError::Io(e.to_string()))?;
    record.write_output(&args.output.out, &buf)?;
    // A file of one's own need not observe eg: then the summary names none.
    let eg_index = run.observable_names.iter().position(|n| n == crate::schema::EG);
    let final_eg = eg_index.and_then(|i| run.trajectory.observables.last().map(|o| o[i]));
    if !args.output.report.quiet {
        let tr = &run.trajectory;
        let last = final_eg.map_or_else(|| "(no eg observable)".to_string(), |v| format!("{v:.6}"));
        let backend = match run.compile_seconds {
            s if s > 0.0 => format!("{}, compiled in {:.1} ms", run.backend.name(), s * 1e3),
            _ => run.backend.name().to_string(),
        };
        note!(
            "{} K={} {} ({backend}): t = {} eg = {last} in {:.1} ms ({} evaluations; {})",
            job.equations,
            job.k,
            job.activation,
            tr.times.last().copied().unwrap_or(0.0),
            elapsed.as_secs_f64() * 1e3,
            tr.stats.evaluations,
            tr.stats.describe()
        );
    }
    let tr = &run.trajectory;
    print_json(
        args.output.report.json,
        record.with_summary(serde_json::json!({
            "command": "ode",
            "equations": job.equations,
            "k": job.k,
            "activation": job.activation,
            "backend": run.backend.name(),
            "compile_seconds": run.compile_seconds,
            "t_end": tr.times.last(),
            "eg": final_eg,
            "evaluations": tr.stats.evaluations,
            "steps": tr.stats.accepted,
            "method": tr.stats.started_with.name(),
            "stiff_method": tr.stats.stiff.map(|m| m.name()),
            "stiff_steps": tr.stats.stiff_accepted,
            "explicit_steps": tr.stats.accepted - tr.stats.stiff_accepted,
            "switched_to_stiff_at": tr.stats.switched_at,
            "stiffness_declined_at": tr.stats.stiffness_declined_at,
            "jacobians": tr.stats.jacobians,
            "seconds": elapsed.as_secs_f64(),
            "out": args.output.out,
        })),
    )?;
    Ok(())
}

pub(crate) fn run_reduced(args: &ReducedArgs, record: &Record) -> Result<(), RunError> {
    let files = Outputs::of(RunCommand::ReducedVsFull, &args.out_prefix).all();
    let named: Vec<(&str, Option<&String>)> = files.iter().map(|f| ("--out-prefix", Some(f))).collect();
    check_outputs(&args.model, &named)?;
    let job = reduced_job(args)?;
    let start = std::time::Instant::now();
    let t_min = job.full.times.get(1).copied().unwrap_or(1.0);
    let progress = Progress::new(args.report.quiet, 1000, "full");
    let run = job.run(|stage, t| {
        if progress.bar.message() != stage {
            progress.bar.set_message(stage.to_string());
        }
        // The reduced stage starts back at the alignment time, inside the span the full run has
        // covered: the bar waits there instead of going back.
        let pos = Progress::log_position(t, t_min, job.t_reduced_end);
        progress.set(pos.max(progress.bar.position()));
    })?;
    drop(progress);
    let mut full_csv = Vec::new();
    run.write_full_csv(&mut full_csv)
        .map_err(|e| RunError::Io(e.to_string()))?;
    let mut reduced_csv = Vec::new();
    write_csv(&run.reduced, true, &mut reduced_csv).map_err(|e| RunError::Io(e.to_string()))?;
    let outputs = Outputs::of(RunCommand::ReducedVsFull, &args.out_prefix);
    record.write_output(&Some(outputs.main.clone()), &full_csv)?;
    record.write_output(&outputs.second.clone(), &reduced_csv)?;
    let files = outputs.all();
    let seconds = start.elapsed().as_secs_f64();
    if !args.report.quiet {
        note_text!("{}", run.summary(&job.full.activation, seconds));
    }
    let predicted = aedyn_predicted(&job.full.activation);
    print_json(
        args.report.json,
        record.with_summary(serde_json::json!({
            "command": "reduced-vs-full",
            "aligned_at": run.alignment.t,
            "misalignment": run.alignment.misalignment,
            "unit_to_spike": run.alignment.mode,
            "max_relative_deviation": run.max_relative_deviation,
            "max_excess_deviation": run.max_excess_deviation,
            "eg_pca": run.pca_error,
            "fitted": {"alpha": run.fitted.alpha, "beta": run.fitted.beta, "gamma": run.fitted.gamma},
            "derived": predicted,
            "seconds": seconds,
            "out": files,
        })),
    )?;
    Ok(())
}

/// Drift along the flat direction of a homogeneous activation past which `compare` says that
/// per-unit scales will leave the ODE: lr t / D of 2% (measured with ReLU, K = 2: a relative gap
/// in Q_kk of 1-3% at lr t / D = 0.005, 16% at 0.05).
const FLAT_DRIFT_NOTED: f64 = 0.02;

/// The summary's note on per-unit scales at finite D (docs/theory.md section 10), when due.
fn flat_direction_note(job: &CompareJob, run: &CompareRun, d: usize) -> Option<String> {
    let t_end = job.ode.times.last().copied().unwrap_or(0.0);
    let drift = job.sgd.rates.lr * t_end / d as f64;
    (job.with_ode && run.homogeneous && drift > FLAT_DRIFT_NOTED).then(|| {
        format!(
            "note: {} is positively homogeneous and lr t / D = {drift:.3}: SGD drifts along w -> c w, v -> v / c, \
             so Q_kk and T0_kk are expected to leave the ODE while eg, R and QT0_k_k agree (docs/theory.md section 10)",
            job.ode.activation
        )
    })
}

fn aedyn_predicted(activation: &str) -> serde_json::Value {
    match crate::reduced::predicted_exponents(activation) {
        Some(p) => serde_json::json!({"alpha": p.alpha, "beta": p.beta, "gamma": p.gamma}),
        None => serde_json::Value::Null,
    }
}

pub(crate) fn run_spectrum(a: &SpectrumArgs, record: &Record) -> Result<(), RunError> {
    let outputs = [("--out", a.output.out.as_ref()), ("--density", a.density.as_ref())];
    check_output_names(&a.data, &[], &outputs)?;
    let job = spectrum_job(a)?;
    check_json(a.output.report.json, &a.output.out)?;
    let start = std::time::Instant::now();
    let spectrum = job.run()?;
    let mut buf = Vec::new();
    spectrum.write_csv(&mut buf).map_err(|e| RunError::Io(e.to_string()))?;
    if let Some(path) = &a.density {
        let mut density = Vec::new();
        spectrum
            .write_density_csv(&mut density)
            .map_err(|e| RunError::Io(e.to_string()))?;
        record.write_output(&Some(path.clone()), &density)?;
    }
    record.write_output(&a.output.out, &buf)?;
    let seconds = start.elapsed().as_secs_f64();
    let bulk = spectrum.bulk();
    let (low, high) = (
        bulk.last().copied().unwrap_or(0.0),
        bulk.first().copied().unwrap_or(0.0),
    );
    let theory = spectrum.theory.as_ref();
    if !a.output.report.quiet {
        match theory {
            Some(t) => {
                let (a_, b_) = t.law.edges();
                let outliers: Vec<String> = (0..t.outliers)
                    .map(|i| {
                        format!(
                            "{:.4} (predicted {:.4} +- {:.4})",
                            spectrum.eigenvalues[i],
                            t.predicted[i],
                            t.stderr[i].unwrap_or(0.0)
                        )
                    })
                    .collect();
                note!(
                    "N = {}, D/N = {:.4}: bulk [{low:.4}, {high:.4}] (Marchenko-Pastur [{a_:.4}, {b_:.4}]); outliers: {} ({seconds:.2} s)",
                    spectrum.samples,
                    t.law.ratio,
                    if outliers.is_empty() { "none".to_string() } else { outliers.join(", ") }
                );
            }
            None => note!(
                "{} samples, D = {}: eigenvalues from {high:.4e} down to {low:.4e} ({seconds:.2} s)",
                spectrum.samples,
                spectrum.eigenvalues.len()
            ),
        }
    }
    print_json(
        a.output.report.json,
        record.with_summary(serde_json::json!({
            "command": "spectrum",
            "samples": spectrum.samples,
            "ratio": theory.map(|t| t.law.ratio),
            "edges": theory.map(|t| t.law.edges()),
            "outliers": theory.map(|t| &spectrum.eigenvalues[..t.outliers]),
            "predicted": theory.map(|t| &t.predicted[..t.outliers]),
            "stderr": theory.map(|t| t.stderr[..t.outliers].to_vec()),
            "bulk": [low, high],
            "seconds": seconds,
            "out": a.output.out,
        })),
    )?;
    Ok(())
}

/// An empty buffer that can hold `bytes` of output text: the estimate's blind spots become an
/// error, not an abort, when the allocation fails.
fn text_buffer(bytes: f64) -> Result<Vec<u8>, RunError> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(bytes as usize)
        .map_err(|_| crate::memory::cannot_hold("the output's text", bytes))?;
    Ok(buf)
}
